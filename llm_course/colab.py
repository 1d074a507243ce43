"""Open every notebook in Google Colab: a badge at the top, and a setup cell before the first code cell.

In Colab a notebook arrives alone, without the course beside it. The setup cell clones the
course, installs it, and moves into the notebook's chapter folder, so the cells below run as
they do on a laptop. Anywhere else (a laptop, the CI) it does nothing and prints nothing.

The cell cannot import the course (the course is what it installs), so its source is plain
Python built here from a template. ``add_colab_cells`` inserts or updates the badge and the
cell in a notebook and is idempotent: running it twice changes nothing, and existing cells
keep their ids. ``llm-course colab`` applies it to every notebook; ``--check`` only reports.
"""

import json
import sys
from pathlib import Path

from llm_course.classroom import chapter_folders, read_notebook, write_notebook
from shared.export import REPO_ROOT

# The course's public repository (owner/name on GitHub) and the branch Colab opens.
GITHUB_REPOSITORY = "llm-from-scratch-course/llm-from-scratch-course"
BRANCH = "main"

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
SETUP_MARKER = "# Google Colab only: install the course. Anywhere else this cell does nothing."
BADGE_ID, SETUP_ID = "colab-badge", "colab-setup"

_SETUP_TEMPLATE = """{marker}
import os
import sys

if "COLAB_RELEASE_TAG" in os.environ or "google.colab" in sys.modules:
    import subprocess

    course = os.path.expanduser("~/{name}")
    if not os.path.isdir(course):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{branch}",
                        "https://github.com/{repository}", course], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--editable", course], check=True)
    if course not in sys.path:
        sys.path.insert(0, course)  # this kernel started before the install
    os.chdir(os.path.join(course, "{folder}"))"""


def notebook_relpath(notebook: Path) -> str:
    """``chNN_topic/name.ipynb``: where the notebook sits in the repository (every chapter folder is at its top)."""
    notebook = Path(notebook)
    return f"{notebook.parent.name}/{notebook.name}"


def setup_source(relpath: str) -> str:
    """The setup cell for the notebook at ``relpath`` (e.g. ``ch02_tokenization/tokenization.ipynb``)."""
    return _SETUP_TEMPLATE.format(
        marker=SETUP_MARKER,
        name=GITHUB_REPOSITORY.split("/")[1],
        branch=BRANCH,
        repository=GITHUB_REPOSITORY,
        folder=Path(relpath).parent.as_posix(),
    )


def colab_url(relpath: str) -> str:
    return f"https://colab.research.google.com/github/{GITHUB_REPOSITORY}/blob/{BRANCH}/{relpath}"


def badge_source(relpath: str) -> str:
    """The badge's markdown: an image link that opens the notebook at ``relpath`` in Colab."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(relpath)})"


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _find(cells: list[dict], kind: str, test) -> int | None:
    return next((i for i, cell in enumerate(cells) if cell["cell_type"] == kind and test(_source(cell))), None)


def is_badge(text: str) -> bool:
    return BADGE_IMAGE in text


def _is_setup(text: str) -> bool:
    return text.startswith(SETUP_MARKER)


def _fresh_id(cells: list[dict], wanted: str) -> str:
    taken = {cell.get("id") for cell in cells}
    candidate, number = wanted, 1
    while candidate in taken:
        number += 1
        candidate = f"{wanted}-{number}"
    return candidate


def add_colab_cells(nb: dict, relpath: str) -> dict:
    """A copy of ``nb`` with the badge as its first cell and the setup cell before its first other code cell.

    Cells already there are updated in place (same id, same position); a cell already right
    is left untouched, so a second call returns an equal notebook.
    """
    nb = json.loads(json.dumps(nb))
    cells = nb["cells"]
    wanted = {"markdown": badge_source(relpath), "code": setup_source(relpath)}
    for kind, test, cell_id in (("markdown", is_badge, BADGE_ID), ("code", _is_setup, SETUP_ID)):
        index = _find(cells, kind, test)
        if index is not None:
            if _source(cells[index]) != wanted[kind]:
                cells[index]["source"] = wanted[kind].splitlines(keepends=True)
            continue
        cell = {
            "cell_type": kind,
            "id": _fresh_id(cells, cell_id),
            "metadata": {},
            "source": wanted[kind].splitlines(keepends=True),
        }
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
            first_code = _find(cells, "code", lambda text: True)
            cells.insert(len(cells) if first_code is None else first_code, cell)
        else:
            cells.insert(0, cell)
    return nb


def colab_problems(nb: dict, relpath: str) -> list[str]:
    """What is missing or out of date in ``nb``; [] when its badge and setup cell are right."""
    problems = []
    badge = _find(nb["cells"], "markdown", is_badge)
    if badge is None:
        problems.append("no 'Open in Colab' badge")
    elif _source(nb["cells"][badge]) != badge_source(relpath):
        problems.append("the Colab badge links elsewhere")
    setup = _find(nb["cells"], "code", _is_setup)
    if setup is None:
        problems.append("no Colab setup cell")
    elif _source(nb["cells"][setup]) != setup_source(relpath):
        problems.append("the Colab setup cell is out of date")
    elif setup != _find(nb["cells"], "code", lambda text: True):
        problems.append("the Colab setup cell is not the first code cell")
    return problems


def course_notebooks(root: Path = REPO_ROOT) -> list[Path]:
    """Every chapter, appendix and solutions notebook (the Korean twins are generated from these)."""
    return [nb for folder in chapter_folders(root) for nb in sorted(folder.glob("*.ipynb")) if ".ko." not in nb.name]


def cmd_colab(args) -> int:
    notebooks = [Path(p).resolve() for p in args.notebooks] or course_notebooks()
    failed = 0
    for path in notebooks:
        relpath, nb = notebook_relpath(path), read_notebook(path)
        if args.check:
            problems = colab_problems(nb, relpath)
            failed += bool(problems)
            for problem in problems:
                print(f"FAIL {relpath}: {problem}; run `llm-course colab`", file=sys.stderr)
            continue
        updated = add_colab_cells(nb, relpath)
        if updated != nb:
            write_notebook(path, updated)
            print(f"updated {relpath}")
    if args.check and failed:
        print(f"{failed} of {len(notebooks)} notebook(s) lack a current Colab badge or setup cell")
    elif args.check:
        print(f"all {len(notebooks)} notebooks open in Colab")
    return 1 if failed else 0


def add_colab_command(sub) -> None:
    """Register ``llm-course colab [--check] [NOTEBOOK ...]`` on the CLI's subparsers."""
    parser = sub.add_parser("colab", help="add or update each notebook's 'Open in Colab' badge and setup cell")
    parser.add_argument("--check", action="store_true", help="only report notebooks that lack them (exit 1 if any)")
    parser.add_argument(
        "notebooks", nargs="*", metavar="NOTEBOOK", help="notebooks of the course (default: all of them)"
    )
    parser.set_defaults(func=cmd_colab)
