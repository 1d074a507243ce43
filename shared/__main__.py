"""``python -m shared ...``: the course command line (what torchrun starts: ``-m shared pretrain``)."""

import sys

from shared.cli import main

sys.exit(main())
