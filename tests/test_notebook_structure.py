"""One numbering, one book map and honest time estimates in every chapter notebook.

The rules (docs/NOTEBOOKS.md, "Structure of a chapter notebook"):
- the title is ``# Chapter N — ...`` (``# Appendix X — ...`` for an appendix);
- every ``##`` heading is ``N.M Title (~T min)``, with M increasing, except the three
  unnumbered ones: ``Book ↔ course``, ``Exercises`` and ``Summary``;
- every ``###`` heading in section N.M is ``N.M.K Title``, with K increasing; under
  ``Exercises`` it is ``Exercise K — title``, with K = 1, 2, 3, ...;
- chapters that follow a chapter of the book (1–7) and the appendices open with the
  ``Book ↔ course`` table, before their first numbered section;
- the solutions notebook has one ``## Exercise K — title`` per exercise, with the same titles.
"""

import json
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CHAPTER_DIRS = sorted(p for p in REPO_ROOT.glob("ch[0-9][0-9]_*") if p.is_dir())
APPENDIX_DIRS = sorted(p for p in REPO_ROOT.glob("appendix_*") if p.is_dir())
BOOK_CHAPTERS = {f"{n}" for n in range(1, 8)}
UNNUMBERED = {"Book ↔ course", "Exercises", "Summary"}
TIME = r"\(~\d+ min\)"


def chapter_notebook(folder: Path) -> Path:
    (notebook,) = [p for p in folder.glob("*.ipynb") if p.name != "solutions.ipynb" and ".ko." not in p.name]
    return notebook


def chapter_label(folder: Path) -> str:
    """'3' for ch03_attention, 'A' for appendix_a_distributed."""
    if folder.name.startswith("appendix_"):
        return folder.name.split("_")[1].upper()
    return str(int(folder.name[2:4]))


def headings(notebook: Path) -> list[tuple[int, str]]:
    """(level, text) of every markdown heading, in order (fenced code blocks skipped)."""
    found = []
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        fenced = False
        for line in "".join(cell["source"]).splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
            match = None if fenced else re.match(r"(#{1,3}) (.+?)\s*$", line)
            if match:
                found.append((len(match.group(1)), match.group(2)))
    return found


def structure_problems(notebook: Path, label: str, needs_map: bool) -> list[str]:
    """Every way the notebook breaks the rules in this module's docstring."""
    problems = []
    found = headings(notebook)
    kind = "Appendix" if label.isalpha() else "Chapter"
    if not found or found[0][0] != 1 or not found[0][1].startswith(f"{kind} {label} — "):
        problems.append(f"the first heading must be '# {kind} {label} — ...'")
    section, last_section, last_sub, last_exercise, seen_map, seen_numbered = None, 0, 0, 0, False, False
    for level, text in found[1:]:
        if level == 1:
            problems.append(f"a second title: {text!r}")
        elif level == 2:
            if text in UNNUMBERED:
                section = text
                if text == "Book ↔ course":
                    seen_map = True
                    if seen_numbered:
                        problems.append("the Book ↔ course map must come before section 1")
                continue
            match = re.fullmatch(rf"{label}\.(\d+) .+ {TIME}", text)
            if not match:
                problems.append(f"section heading {text!r} is not '{label}.M Title (~T min)'")
                continue
            number = int(match.group(1))
            if number <= last_section:
                problems.append(f"section {label}.{number} comes after {label}.{last_section}")
            section, last_section, last_sub, seen_numbered = f"{label}.{number}", number, 0, True
        elif section == "Exercises":
            match = re.fullmatch(r"Exercise (\d+) — .+", text)
            if not match or int(match.group(1)) != last_exercise + 1:
                problems.append(f"exercise heading {text!r} is not 'Exercise {last_exercise + 1} — title'")
            else:
                last_exercise += 1
        elif section is None or section in UNNUMBERED:
            problems.append(f"subsection {text!r} outside a numbered section")
        else:
            match = re.fullmatch(rf"{re.escape(section)}\.(\d+) .+", text)
            if not match or int(match.group(1)) <= last_sub:
                problems.append(f"subsection {text!r} is not '{section}.{last_sub + 1} Title'")
            else:
                last_sub = int(match.group(1))
    if needs_map and not seen_map:
        problems.append("no '## Book ↔ course' map")
    return problems


def exercise_titles(notebook: Path, level: int) -> list[str]:
    return [text for lv, text in headings(notebook) if lv == level and re.match(r"Exercise \d+ — ", text)]


FOLDERS = CHAPTER_DIRS + APPENDIX_DIRS


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_numbering_and_book_map(folder):
    label = chapter_label(folder)
    needs_map = label in BOOK_CHAPTERS or label.isalpha()
    assert structure_problems(chapter_notebook(folder), label, needs_map) == []


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_solutions_follow_the_exercises(folder):
    assert exercise_titles(folder / "solutions.ipynb", 2) == exercise_titles(chapter_notebook(folder), 3)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_book_map_is_a_table(folder):
    """The map has at least a header, a rule and one row."""
    nb = json.loads(chapter_notebook(folder).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and text.startswith("## Book ↔ course"):
            assert sum(line.startswith("|") for line in text.splitlines()) >= 3


def test_the_rules_catch_a_broken_notebook(tmp_path):
    """The checker itself fails on each kind of mistake."""

    def notebook(*cells):
        path = tmp_path / "nb.ipynb"
        path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": c} for c in cells]}))
        return path

    good = [
        "# Chapter 3 — Attention",
        "## Book ↔ course\n|a|b|\n|-|-|\n|x|y|",
        "## 3.1 Idea (~5 min)",
        "### 3.1.1 Part",
        "## 3.2 More (~10 min)",
        "## Exercises",
        "### Exercise 1 — one",
        "## Summary",
    ]
    assert structure_problems(notebook(*good), "3", True) == []
    assert structure_problems(notebook(*good[:1], *good[2:]), "3", True) == ["no '## Book ↔ course' map"]
    broken = [
        ["# Chapter 3 — Attention", "## 1. Idea (~5 min)"],  # old numbering
        ["# Chapter 3 — Attention", "## 3.1 Idea"],  # no time estimate
        ["# Chapter 3 — Attention", "## 3.2 A (~5 min)", "## 3.1 B (~5 min)"],  # out of order
        ["# Chapter 3 — Attention", "## 3.1 A (~5 min)", "### Loose part"],  # unnumbered subsection
        ["# Chapter 3 — Attention", "## Exercises", "### Exercise 2 — skipped one"],
        ["# Chapter 4 — Wrong chapter", "## 3.1 A (~5 min)"],
        ["# Chapter 3 — Attention", "## 3.1 A (~5 min)", "## Book ↔ course\n|a|"],
    ]
    for cells in broken:
        assert structure_problems(notebook(*cells), "3", False), cells
