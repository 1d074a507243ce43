"""Progress bars that suit a log file as well as a terminal.

tqdm redraws its bar with carriage returns several times a second: right in a terminal,
but a log file or a CI page keeps every frame on one endless line. ``LineProgress`` is a
tqdm that writes a whole line at each tenth of the way (and at the end) instead.
``log_friendly_progress(modules)`` puts it in place of the ``tqdm`` that chapter modules
imported, for as long as a run lasts, when standard error is not a terminal.
"""

import importlib
import sys
import time
from contextlib import contextmanager

from tqdm import tqdm


class LineProgress(tqdm):
    """tqdm for logs: one full line per tenth of the total (or per minute without a total), no '\\r'."""

    monitor_interval = 0  # no monitor thread forcing extra redraws
    seconds_per_line = 60.0  # when the total is unknown

    def __init__(self, *args, **kwargs):
        self._shown = None  # (n, time) of the last line written
        super().__init__(*args, **kwargs)

    def _due(self):
        if self._shown is None:
            return True
        if self.total:
            return self.n - self._shown[0] >= self.total / 10 or (self.n == self.total != self._shown[0])
        return time.monotonic() - self._shown[1] >= self.seconds_per_line

    def _write_line(self):
        self.fp.write(self.__str__() + "\n")
        self.fp.flush()
        self._shown = (self.n, time.monotonic())

    def display(self, msg=None, pos=None):
        if msg is not None:  # tqdm clears a terminal line with msg=""; a log has nothing to clear
            return False
        if self._due():
            self._write_line()
        return True

    def clear(self, nolock=False):
        """Nothing to clear: every line written stays (tqdm.write calls this around its message)."""

    def close(self):
        if not getattr(self, "disable", True) and self._shown is not None and self._shown[0] != self.n:
            self._write_line()  # the final count
        self.leave = False  # tqdm would otherwise end the (already finished) line once more
        super().close()


def is_terminal(stream=None):
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_class():
    """The tqdm class to use now: tqdm in a terminal, LineProgress otherwise."""
    return tqdm if is_terminal() else LineProgress


@contextmanager
def log_friendly_progress(module_names):
    """While inside, the named modules' ``tqdm`` is ``LineProgress`` when stderr is not a terminal."""
    replaced = []
    if not is_terminal():
        for name in module_names:
            module = importlib.import_module(name)
            if getattr(module, "tqdm", None) is tqdm:
                replaced.append(module)
                module.tqdm = LineProgress
    try:
        yield
    finally:
        for module in replaced:
            module.tqdm = tqdm
