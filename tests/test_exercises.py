"""shared.exercises: the helpers every chapter's checks.py uses, and the rule that they all use them."""

import re
from pathlib import Path

import numpy as np
import torch

from shared.exercises import (
    NOT_ANSWERED,
    RETURNED_NONE,
    aten_ops_called,
    call_answer,
    call_safely,
    is_integer,
    is_number,
    names_used,
    not_a_function,
    not_answered,
    report,
)

ROOT = Path(__file__).resolve().parent.parent
CHECKS = sorted(ROOT.glob("*/checks.py"))


def test_not_answered_knows_the_placeholders(capsys):
    assert not_answered(None) and not_answered(...)
    assert capsys.readouterr().out == 2 * (NOT_ANSWERED + "\n")
    assert not not_answered(0) and not not_answered("") and not not_answered([])
    assert capsys.readouterr().out == ""
    assert not_answered(None, "custom")
    assert capsys.readouterr().out == "custom\n"


def test_not_a_function_needs_something_callable(capsys):
    assert not_a_function(None, "f(x)")
    assert capsys.readouterr().out.startswith("Not answered yet")
    assert not_a_function(3.5, "f(x)")
    out = capsys.readouterr().out
    assert "function itself" in out and "float" in out and "f(x)" in out
    assert not not_a_function(len, "f(x)") and capsys.readouterr().out == ""


def test_call_safely_and_call_answer_never_raise(capsys):
    assert call_safely(lambda a, b=1: a + b, 1, b=2) == (True, 3)
    assert call_safely(lambda: 1 / 0) == (False, None)
    assert "raised ZeroDivisionError" in capsys.readouterr().out
    assert call_answer(lambda: None) == (False, None)
    assert capsys.readouterr().out == RETURNED_NONE + "\n"
    assert call_answer(lambda: 0) == (True, 0) and capsys.readouterr().out == ""


def test_numbers_exclude_booleans():
    assert is_integer(3) and is_integer(np.int64(3)) and not is_integer(True) and not is_integer(3.0)
    assert is_number(3) and is_number(2.5) and is_number(np.float32(1)) and is_number(float("nan"))
    assert not is_number(False) and not is_number("1") and not is_number(torch.tensor(1.0))


def test_report_prints_the_first_problem_or_correct(capsys):
    assert report(None, None) is True and capsys.readouterr().out == "Correct!\n"
    assert report(None, "first", "second", prefix="Not yet: ") is False
    assert capsys.readouterr().out == "Not yet: first\n"
    report(RETURNED_NONE, prefix="Not yet: ")
    assert capsys.readouterr().out == RETURNED_NONE + "\n"  # a placeholder notice is not "not yet"
    report(correct="Correct! 3 of 3.")
    assert capsys.readouterr().out == "Correct! 3 of 3.\n"


def test_names_used_sees_nested_code():
    def outer(x):
        def inner():
            return GPTDataset(x)  # noqa: F821 - never called

        return x.mask, "attribute"

    assert {"GPTDataset", "mask", "attribute"} <= names_used(outer)
    assert names_used(len) == set()


def test_aten_ops_called_sees_every_route_to_an_operator(capsys):
    from torch import topk as imported_topk

    x = torch.randn(3, 5)
    routes = [
        lambda: torch.topk(x, 2),
        lambda: x.topk(2),
        lambda: imported_topk(x, 2),
        lambda: torch.ops.aten.topk(x, 2),
    ]
    for route in routes:
        ok, _, ops = aten_ops_called(route)
        assert ok and "topk" in ops
    ok, _, ops = aten_ops_called(lambda: torch.sort(x, descending=True))
    assert ok and "sort" in ops and "topk" not in ops
    assert aten_ops_called(lambda: 1 / 0) == (False, None, set())
    assert "raised ZeroDivisionError" in capsys.readouterr().out


def test_every_check_takes_its_helpers_from_shared_exercises():
    """One helper set: no checks.py keeps its own copy of the placeholder, safe-call or report helpers."""
    assert len(CHECKS) >= 11
    for path in CHECKS:
        source = path.read_text(encoding="utf-8")
        assert "from shared.exercises import" in source, path
        assert not re.search(
            r"^def _?(not_answered|call_safely|report|print_first_problem|verdict|is_function)\(", source, re.MULTILINE
        ), path
        assert not re.search(r"^\s*except Exception", source, re.MULTILINE), (
            f"{path}: call the reader's code via call_safely"
        )
