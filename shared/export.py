"""Notebook -> module export: the notebooks are the source of the course code.

A code cell whose first line is ``#| export`` belongs to the chapter's module.
``chNN_topic/topic.ipynb`` exports, in cell order, to ``chNN_topic/topic.py``:

- a generated header, the notebook's title as docstring, and ``__all__``: the public
  names the exported cells define (functions, classes, UPPER_CASE constants);
- each exported cell, under a comment naming its notebook and section;
- the whole text sorted (imports) and formatted by ruff with the repository's settings,
  so a module is formatter-clean and ``--check`` compares against exactly that text.

``shared`` reads every module's ``__all__`` (``generated_modules``) to build its import
surface, so a name becomes ``shared.NAME`` by being public in an exported cell.
Teaching versions stay in unmarked cells.
"""

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.files import atomic_write

MARKER = "#| export"
REPO_ROOT = Path(__file__).resolve().parent.parent
GENERATED = "# GENERATED from"  # first words of every generated module

CHAPTER_GLOBS = ("ch[0-9][0-9]_*/*.ipynb", "appendix_*/*.ipynb")  # appendices come after every chapter
MODULE_GLOBS = tuple(pattern.replace(".ipynb", ".py") for pattern in CHAPTER_GLOBS)

# "## 5.3 Training an LLM (~20 min)" or "### A.2.1 What DDP does" -> number, title
SECTION = re.compile(r"#{2,3} ([0-9A-Z]+(?:\.\d+){1,2}) (.+?)(?: \(~\d+ min\))?")
CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*")


class ExportError(RuntimeError):
    """The export cannot produce a module (ruff missing, or a cell ruff cannot format)."""


@dataclass(frozen=True)
class ExportCell:
    source: str  # the cell's code, without the marker line
    section: str  # "5.3 Training an LLM"; "setup" above the first numbered heading


def is_translation(notebook: Path) -> bool:
    """``topic.ko.ipynb`` is a translated twin of ``topic.ipynb`` (``llm-course translate``), not a source."""
    return "." in notebook.stem


def chapter_notebooks(root: Path = REPO_ROOT) -> list[Path]:
    """Every chapter or appendix notebook that has at least one export cell, in course order."""
    found = [nb for pattern in CHAPTER_GLOBS for nb in sorted(root.glob(pattern)) if not is_translation(nb)]
    return [nb for nb in found if export_cells(nb)]


def _cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def export_cells(notebook: Path) -> list[ExportCell]:
    """The notebook's ``#| export`` cells, in order, each with the numbered section it sits in."""
    found, section = [], "setup"
    for cell in _cells(notebook):
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            for line in text.splitlines():
                match = SECTION.fullmatch(line.strip())
                section = f"{match[1]} {match[2]}" if match else section
        elif cell["cell_type"] == "code" and text.split("\n", 1)[0].strip() == MARKER:
            found.append(ExportCell(text.split("\n", 1)[1] if "\n" in text else "", section))
    return found


def _title(notebook: Path) -> str:
    for cell in _cells(notebook):  # the title cell (the Colab badge above it is a link, not a title)
        text = "".join(cell["source"]).strip()
        if cell["cell_type"] == "markdown" and text.startswith("# "):
            return text.splitlines()[0].lstrip("# ").strip()
    return notebook.stem


def defined_names(source: str) -> list[str]:
    """Public top-level names a cell defines: functions, classes and UPPER_CASE constants.

    Imported names and names starting with ``_`` are left out."""
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [name for target in targets for name in _bound_names(target) if CONSTANT.fullmatch(name)]
    return [name for name in names if not name.startswith("_")]


def _bound_names(target: ast.expr) -> list[str]:
    """Names an assignment target binds: ``A`` and ``A, (B, *C)``, not ``A[0]`` or ``A.b``."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    if isinstance(target, ast.Tuple | ast.List):
        return [name for element in target.elts for name in _bound_names(element)]
    return []


def public_names(notebook: Path) -> list[str]:
    """The sorted ``__all__`` of the notebook's module."""
    return sorted({name for cell in export_cells(notebook) for name in defined_names(cell.source)})


def ruff_command() -> list[str]:
    """The command that runs ruff: the one installed with this Python, else the one on PATH."""
    beside_python = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if beside_python:
        return [beside_python]
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    on_path = shutil.which("ruff")
    if on_path:
        return [on_path]
    raise ExportError(
        "`llm-course export` formats the modules it writes with ruff, which is not installed: "
        'run `pip install -r requirements-test.txt` (or `pip install "ruff~=0.17.6"`)'
    )


def format_source(text: str, path: Path) -> str:
    """``text`` with its imports sorted and the rest formatted by ruff, as if it were ``path``.

    The settings are the repository's ``pyproject.toml``, wherever ``path`` lies."""
    settings = ["--config", str(REPO_ROOT / "pyproject.toml"), "--stdin-filename", str(path)]
    steps = (["check", "--select", "I", "--fix-only", "--quiet", *settings, "-"], ["format", *settings, "-"])
    for step in steps:
        result = subprocess.run([*ruff_command(), *step], input=text, capture_output=True, text=True, encoding="utf-8")
        if result.returncode != 0:
            raise ExportError(f"ruff {step[0]} failed on the code for {path}:\n{result.stderr}")
        text = result.stdout
    return text


def render_module(notebook: Path) -> str:
    """The module text a notebook exports to (formatted)."""
    header = (
        f"{GENERATED} {notebook.name} by `llm-course export`. Do not edit by hand:\n"
        f"# change the notebook's `{MARKER}` cells and run `llm-course export` again.\n"
        "# ruff: noqa: E402 (each cell keeps its own imports, where the notebook needs them)\n"
        f'"""{_title(notebook)}"""\n\n'
        f"__all__ = {json.dumps(public_names(notebook))}\n"
    )
    where = f"{notebook.parent.name}/{notebook.name}"
    blocks = [f"# {where}, {cell.section}\n{cell.source.strip()}" for cell in export_cells(notebook)]
    return format_source(header + "\n\n" + "\n\n\n".join(blocks) + "\n", module_path(notebook))


def module_path(notebook: Path) -> Path:
    return notebook.with_suffix(".py")


def read_all(module: Path) -> list[str]:
    """The ``__all__`` list of a generated module, read from its text (nothing is imported).

    A module written before ``__all__`` was generated has none yet: it contributes no names
    until ``llm-course export`` rewrites it (``export --check`` reports it as stale), so that
    ``import shared`` and the export itself still work.
    """
    text = module.read_text(encoding="utf-8")
    marker = "\n__all__ = "
    if marker not in text:
        return []
    start = text.index(marker) + len(marker)
    return ast.literal_eval(text[start : text.index("]", start) + 1])


def generated_modules(root: Path = REPO_ROOT) -> dict[str, list[str]]:
    """Dotted name -> ``__all__`` of every generated chapter module under ``root``, in course order."""
    modules = {}
    for pattern in MODULE_GLOBS:
        for path in sorted(root.glob(pattern)):
            with path.open(encoding="utf-8") as f:
                if f.readline().startswith(GENERATED):
                    modules[f"{path.parent.name}.{path.stem}"] = read_all(path)
    return modules


def export(root: Path = REPO_ROOT) -> list[Path]:
    """Write every chapter module; return those whose content changed."""
    changed = []
    for notebook in chapter_notebooks(root):
        target, text = module_path(notebook), render_module(notebook)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            atomic_write(target, text)
            changed.append(target)
        init = target.parent / "__init__.py"
        if not init.exists():
            atomic_write(init, f'"""{_title(notebook)}"""\n')
    return changed


def stale_modules(root: Path = REPO_ROOT) -> list[Path]:
    """Chapter modules that differ from (or are missing for) their notebooks."""
    return [
        module_path(nb)
        for nb in chapter_notebooks(root)
        if not module_path(nb).exists() or module_path(nb).read_text(encoding="utf-8") != render_module(nb)
    ]
