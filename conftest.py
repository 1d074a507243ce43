"""Session setup for the notebook tests; a report of each notebook's marked cells and wall time."""

from collections import defaultdict
from pathlib import Path

_notebook_seconds = defaultdict(float)


def pytest_configure(config):
    # On a fresh machine matplotlib builds its font cache on first import and says so on
    # stderr; do it here, once, so that message never lands in a notebook's outputs.
    import matplotlib.font_manager  # noqa: F401


def pytest_ignore_collect(collection_path, config):
    # A translated twin (topic.ko.ipynb) has the English notebook's code and stored outputs, which
    # nbval checks once; `llm-course translate --check` (tests/test_translate.py) checks the twin.
    if collection_path.name.endswith(".ipynb") and "." in collection_path.name[: -len(".ipynb")]:
        return True
    return None


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    from shared.notebook_policy import marked_cell_count

    terminalreporter.section("marked cells (output not compared, guarded by an assert)")
    root = Path(terminalreporter.config.rootpath)
    counts = {path: marked_cell_count(root / path) for path in sorted(_notebook_seconds)}
    for path, count in counts.items():
        terminalreporter.write_line(f"{count:4d}  {path}")
    terminalreporter.write_line(f"{sum(counts.values()):4d}  all notebooks")
    terminalreporter.section("notebook wall times")
    for path, seconds in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_notebook_seconds.values()):7.1f} s  all notebooks")
