"""The output policy (docs/NOTEBOOKS.md): stored outputs that hold on every reader's machine."""

import pytest

from shared.export import REPO_ROOT
from shared.notebook_policy import (
    IGNORE_TAG,
    load_cells,
    over_precise_floats,
    significant_digits,
    skip_markers,
    unguarded_marked_cells,
)

NOTEBOOKS = sorted(p for pattern in ("ch[0-9][0-9]_*/*.ipynb", "appendix_*/*.ipynb") for p in REPO_ROOT.glob(pattern))
ids = [str(p.relative_to(REPO_ROOT)) for p in NOTEBOOKS]


def code(text, outputs=(), marked=False):
    """A code cell as Jupyter stores it."""
    return {
        "cell_type": "code",
        "source": text,
        "metadata": {"tags": [IGNORE_TAG] if marked else []},
        "outputs": [{"output_type": "stream", "name": "stdout", "text": out} for out in outputs],
    }


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_every_marked_cell_is_followed_by_a_guard(notebook):
    missing = unguarded_marked_cells(load_cells(notebook))
    assert not missing, (
        f"cells {missing} are tagged {IGNORE_TAG!r} but the next code cell asserts nothing: "
        "add a cell that asserts what the prose claims about their result"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_no_skip_markers(notebook):
    assert skip_markers(load_cells(notebook)) == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_no_over_precise_float_in_a_compared_output(notebook):
    found = over_precise_floats(load_cells(notebook))
    assert not found, (
        f"stored outputs print floats with more than 6 significant digits: {found[:5]}; "
        "round them to the precision that carries the meaning, or mark a trajectory cell"
    )


def test_every_notebook_is_found():
    assert len(NOTEBOOKS) >= 14 and all(p.exists() for p in NOTEBOOKS)


# The checks themselves must be able to fail.


def test_an_unrounded_print_is_flagged():
    cells = [code("print(probs.sum(-1).tolist())", ["[0.9999998807907104, 1.0]\n"])]
    assert over_precise_floats(cells) == ["cell 0: 0.9999998807907104"]
    rounded = [code("print([round(s, 4) for s in probs.sum(-1).tolist()])", ["[1.0, 1.0]\n"])]
    assert over_precise_floats(rounded) == []
    assert over_precise_floats([code("train(model)", ["loss 5.123456789\n"], marked=True)]) == []


@pytest.mark.parametrize(
    "text, digits",
    [("0.9999998807907104", 16), ("0.00125", 3), ("-12.5", 3), ("1.234567e-05", 7), ("100000.0", 1), ("1.0000001", 8)],
)
def test_significant_digits(text, digits):
    assert significant_digits(text) == digits


def test_versions_and_addresses_are_not_floats():
    cells = [code("print(versions)", ["torch 2.13.0+cpu at 127.0.0.1, python 3.11.7, v1.2345678\n"])]
    assert over_precise_floats(cells) == []


def test_a_marked_cell_without_a_guard_is_flagged():
    cells = [
        code("history = train()", marked=True),
        {"cell_type": "markdown", "source": "text"},
        code("print(history[-1])"),
    ]
    assert unguarded_marked_cells(cells) == [0]
    cells[2] = code("assert history[-1] < 2.0, 'the loss should fall below 2 (stored run: 1.6)'")
    assert unguarded_marked_cells(cells) == []
    assert unguarded_marked_cells([code("x = sample()", marked=True)]) == [0]  # nothing follows it


def test_a_guard_must_not_be_marked_itself():
    cells = [code("a = train()", marked=True), code("assert a > 0", marked=True), code("assert a < 9")]
    assert unguarded_marked_cells(cells) == [0]


def test_skip_markers_are_found():
    skipped = code("train()")
    skipped["metadata"]["tags"] = ["nbval-skip"]
    assert skip_markers([skipped, code("# NBVAL_IGNORE_OUTPUT\ntrain()")]) == [
        "cell 0: tag 'nbval-skip'",
        "cell 1: comment NBVAL_IGNORE_OUTPUT",
    ]
