"""``python -m llm_course ...``: the course command line (what torchrun starts: ``-m llm_course pretrain``)."""

import sys

from llm_course.cli import main

sys.exit(main())
