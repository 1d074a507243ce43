"""Session setup for the notebook tests, and a report of each notebook's wall time."""

from collections import defaultdict

_notebook_seconds = defaultdict(float)


def pytest_configure(config):
    # On a fresh machine matplotlib builds its font cache on first import and says so on
    # stderr; do it here, once, so that message never lands in a notebook's outputs.
    import matplotlib.font_manager  # noqa: F401


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook wall times")
    for path, seconds in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_notebook_seconds.values()):7.1f} s  all notebooks")
