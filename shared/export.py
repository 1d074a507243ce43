"""Notebook -> module export: the notebooks are the source of the course code.

A code cell whose first line is ``#| export`` belongs to the chapter's module.
``chNN_topic/topic.ipynb`` exports, in cell order, to ``chNN_topic/topic.py``
under a generated header. Teaching versions stay in unmarked cells.
"""

import json
from pathlib import Path

MARKER = "#| export"
REPO_ROOT = Path(__file__).resolve().parent.parent


CHAPTER_GLOBS = ("ch[0-9][0-9]_*/*.ipynb", "appendix_*/*.ipynb")  # appendices come after every chapter


def is_translation(notebook: Path) -> bool:
    """``topic.ko.ipynb`` is a translated twin of ``topic.ipynb`` (``llm-course translate``), not a source."""
    return "." in notebook.stem


def chapter_notebooks(root: Path = REPO_ROOT) -> list[Path]:
    """Every chapter or appendix notebook that has at least one export cell, in course order."""
    found = [nb for pattern in CHAPTER_GLOBS for nb in sorted(root.glob(pattern)) if not is_translation(nb)]
    return [nb for nb in found if _export_cells(nb)]


def _export_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    sources = ("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return [s.split("\n", 1)[1] if "\n" in s else "" for s in sources if s.split("\n", 1)[0].strip() == MARKER]


def _title(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for cell in cells:  # the title cell (the Colab badge above it is a link, not a title)
        text = "".join(cell["source"]).strip()
        if cell["cell_type"] == "markdown" and text.startswith("# "):
            return text.splitlines()[0].lstrip("# ").strip()
    return notebook.stem


def render_module(notebook: Path) -> str:
    """The module text a notebook exports to."""
    header = (
        f"# GENERATED from {notebook.name} by `llm-course export`. Do not edit by hand:\n"
        f"# change the notebook's `{MARKER}` cells and run `llm-course export` again.\n"
        f'"""{_title(notebook)}"""\n'
    )
    body = "\n\n".join(cell.strip("\n") for cell in _export_cells(notebook))
    return header + "\n" + body + "\n"


def module_path(notebook: Path) -> Path:
    return notebook.with_suffix(".py")


def export(root: Path = REPO_ROOT) -> list[Path]:
    """Write every chapter module; return those whose content changed."""
    changed = []
    for notebook in chapter_notebooks(root):
        target, text = module_path(notebook), render_module(notebook)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            tmp = target.with_suffix(".py.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)
            changed.append(target)
        init = target.parent / "__init__.py"
        if not init.exists():
            init.write_text(f'"""{_title(notebook)}"""\n', encoding="utf-8")
    return changed


def stale_modules(root: Path = REPO_ROOT) -> list[Path]:
    """Chapter modules that differ from (or are missing for) their notebooks."""
    return [
        module_path(nb) for nb in chapter_notebooks(root)
        if not module_path(nb).exists() or module_path(nb).read_text(encoding="utf-8") != render_module(nb)
    ]
