"""Atomic file writes: a reader never sees a half-written file.

The data goes to a temporary file in the target's folder, which is then renamed over
the target (``os.replace`` is atomic on one file system). An interrupted write leaves
the previous file, if any, untouched.
"""

import os
import tempfile
from pathlib import Path


def _default_mode() -> int:
    """The permissions ``open()`` would give a new file: 0o666 minus the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path, data: bytes | str) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically; create its folder.

    The file gets the usual permissions of a new file (mkstemp's temporary file is
    private to its owner, so they are set before the rename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _default_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
