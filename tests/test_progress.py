"""Progress bars in a log file: whole lines at each tenth, no carriage returns."""

import io
import sys
import types

from tqdm import tqdm

from shared.progress import LineProgress, log_friendly_progress


def test_a_long_loop_writes_about_one_line_per_tenth():
    log = io.StringIO()
    for step in LineProgress(range(1000), desc="training", file=log, mininterval=0):
        if step == 500:
            LineProgress.write("evaluation at step 500", file=log)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    bars = [line for line in lines if line.startswith("training:")]
    assert 10 <= len(bars) <= 12, bars  # 0 %, each tenth, and the end
    assert bars[-1].startswith("training: 100%|") and "1000/1000" in bars[-1]
    assert "evaluation at step 500" in lines and "" not in lines  # the message on its own line, no blank lines


def test_a_loop_without_total_writes_at_most_a_line_a_minute():
    log = io.StringIO()
    for _ in LineProgress(iter(range(5000)), desc="reading", file=log, mininterval=0):
        pass
    assert len(log.getvalue().splitlines()) == 2  # the start and the end


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_chapter_bars_are_swapped_only_when_stderr_is_not_a_terminal(monkeypatch):
    chapter = types.ModuleType("fake_chapter")
    chapter.tqdm = tqdm
    monkeypatch.setitem(sys.modules, "fake_chapter", chapter)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with log_friendly_progress(["fake_chapter"]):
        assert chapter.tqdm is LineProgress
    assert chapter.tqdm is tqdm
    monkeypatch.setattr(sys, "stderr", Terminal())
    with log_friendly_progress(["fake_chapter"]):
        assert chapter.tqdm is tqdm
