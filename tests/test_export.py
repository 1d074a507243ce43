"""The export: section markers, generated ``__all__``, formatting, and the import surface built from them."""

import ast
import json
import os
import re
import sys
from pathlib import Path

import pytest

import shared
from shared import export
from shared.export import (
    REPO_ROOT,
    ExportError,
    chapter_notebooks,
    defined_names,
    format_source,
    generated_modules,
    is_translation,
    module_path,
    read_all,
    render_module,
    stale_modules,
)

MODULES = generated_modules()
SHARED_SUBMODULES = {path.stem for path in (REPO_ROOT / "shared").glob("*.py")} | {
    path.name for path in (REPO_ROOT / "shared").iterdir() if (path / "__init__.py").exists()
}


def _notebook(path: Path, cells: list[tuple[str, str]]) -> Path:
    """Write a minimal notebook of (cell_type, source) pairs."""
    nb = {
        "cells": [
            {"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": source}
            | ({"outputs": [], "execution_count": None} if kind == "code" else {})
            for i, (kind, source) in enumerate(cells)
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


@pytest.fixture
def demo(tmp_path):
    return _notebook(
        tmp_path / "ch99_demo" / "demo.ipynb",
        [
            ("markdown", "# Chapter 99 — A demo"),
            ("code", "#| export\nimport torch\nimport math"),
            ("markdown", "## 99.1 First steps (~5 min)\n\nSome prose."),
            ("code", "#| export\nSCALE=2\n_cache = {}\ndef double(x): return SCALE*x"),
            ("code", "def not_exported(): pass"),
            ("markdown", "### 99.1.1 A detail\n\n## Not a numbered heading"),
            ("code", "#| export\nfrom math import sqrt\nclass Box:\n    size=1\nlimit = 3"),
        ],
    )


# --- module text ----------------------------------------------------------------------


def test_each_block_names_its_notebook_and_section(demo):
    text = render_module(demo)
    assert "# ch99_demo/demo.ipynb, setup\nimport math\n\nimport torch\n" in text  # imports sorted too
    assert "# ch99_demo/demo.ipynb, 99.1 First steps\nSCALE = 2\n" in text  # time estimate left out
    assert "# ch99_demo/demo.ipynb, 99.1.1 A detail\nfrom math import sqrt\n" in text  # unnumbered heading skipped
    assert "not_exported" not in text


def test_the_module_is_formatted_with_pep8_spacing(demo):
    text = render_module(demo)
    assert "\n\n\ndef double(x):\n    return SCALE * x\n\n\n# ch99_demo" in text
    assert format_source(text, module_path(demo)) == text  # already formatter-clean


def test_all_lists_public_functions_classes_and_constants(demo):
    text = render_module(demo)
    assert '__all__ = ["Box", "SCALE", "double"]\n' in text
    module_path(demo).write_text(text, encoding="utf-8")
    assert read_all(module_path(demo)) == ["Box", "SCALE", "double"]


def test_defined_names_leave_out_private_imported_and_lowercase_variables():
    source = (
        "import os\nfrom math import pi as PI\n_HIDDEN = 1\nlimit = 2\nA, (B, c, *D) = 1, (2, 3)\n"
        "PI.x = 1\nTABLE = {}\nTABLE['k'] = 0\nasync def run(): pass"
    )
    assert defined_names(source) == ["A", "B", "D", "TABLE", "run"]


def test_a_hand_edited_module_is_stale(demo):
    module_path(demo).write_text(render_module(demo).replace("SCALE * x", "SCALE*x"), encoding="utf-8")
    assert stale_modules(demo.parent.parent) == [module_path(demo)]


def test_missing_ruff_is_named_with_its_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(export.shutil, "which", lambda *args, **kwargs: None)
    monkeypatch.setattr(export.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(ExportError, match=r"ruff, which is not installed: run `pip install -r requirements-test.txt`"):
        format_source("x = 1\n", tmp_path / "m.py")


def test_code_ruff_cannot_parse_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match="ruff .* failed on the code for .*m.py"):
        format_source("def broken(:\n", tmp_path / "m.py")


# --- every chapter module ------------------------------------------------------------


@pytest.mark.parametrize("notebook", chapter_notebooks(), ids=lambda p: p.parent.name)
def test_every_exported_cell_sits_under_its_marker(notebook):
    text = module_path(notebook).read_text(encoding="utf-8")
    markers = re.findall(rf"^# {notebook.parent.name}/{notebook.name}, (.+)$", text, flags=re.M)
    assert len(markers) == len(export.export_cells(notebook))
    assert all(re.fullmatch(r"setup|[0-9A-Z]+(\.\d+){1,2} .+", m) for m in markers), markers


@pytest.mark.parametrize("module", sorted(MODULES), ids=str)
def test_all_matches_the_module_top_level(module):
    """``__all__`` is exactly the public functions, classes and UPPER_CASE constants the module defines."""
    path = REPO_ROOT / Path(*module.split(".")).with_suffix(".py")
    assert MODULES[module] == sorted(defined_names(path.read_text(encoding="utf-8")))
    assert MODULES[module] == sorted(MODULES[module])


# --- the import surface -----------------------------------------------------------------


def test_the_surface_has_every_public_name_but_the_listed_exclusions():
    for module, names in MODULES.items():
        kept_off = shared._NOT_ON_SURFACE.get(module, set())
        for name in names:
            if name not in kept_off:
                assert shared._EXPORTS.get(name) == module, (
                    f"{module}.{name} is public but shared.{name} is "
                    f"{shared._EXPORTS.get(name)!r}: list it in shared._NOT_ON_SURFACE, with the reason"
                )


def test_every_surface_name_is_in_its_modules_all():
    for name, module in shared._EXPORTS.items():
        if module in shared._PLUMBING.values():
            assert shared._PLUMBING[name] == module
            assert module.split(".")[1] in SHARED_SUBMODULES
        else:
            assert name in MODULES[module], f"shared.{name} points at {module}, whose __all__ lacks it"


def test_every_exclusion_names_a_public_name_of_its_module():
    for module, names in shared._NOT_ON_SURFACE.items():
        assert module in MODULES, f"_NOT_ON_SURFACE names {module}, which is not a generated module"
        stale = sorted(set(names) - set(MODULES[module]))
        assert not stale, f"_NOT_ON_SURFACE lists {stale} for {module}, whose __all__ lacks them: drop the entry"


def test_a_name_public_in_two_places_is_listed_as_an_exclusion():
    owners = {name: ["plumbing"] for name in shared._PLUMBING}
    for module, names in MODULES.items():
        for name in set(names) - shared._NOT_ON_SURFACE.get(module, set()):
            owners.setdefault(name, []).append(module)
    clashes = {name: where for name, where in owners.items() if len(where) > 1}
    assert not clashes, f"public in more than one place (rename one, or list it in shared._NOT_ON_SURFACE): {clashes}"


def test_no_surface_name_hides_a_shared_submodule():
    assert not set(shared._EXPORTS) & SHARED_SUBMODULES


def _names_imported_from_shared(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a notebook cell with IPython magics
        return set()
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "shared" and node.level == 0
        for alias in node.names
    }


def _course_sources():
    """(path, code) of every Python file and every code cell of an English notebook in the repository."""
    for folder, subfolders, files in os.walk(REPO_ROOT):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in {"runs", "__pycache__"}]
        for name in files:
            path = Path(folder) / name
            if path.suffix == ".py":
                yield path, path.read_text(encoding="utf-8")
            elif path.suffix == ".ipynb" and not is_translation(path):
                for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
                    if cell["cell_type"] == "code":
                        yield path, "".join(cell["source"])


def test_every_name_the_course_imports_from_shared_is_on_the_surface():
    used = {}
    for path, source in _course_sources():
        for name in _names_imported_from_shared(source):
            used.setdefault(name, path.relative_to(REPO_ROOT))
    assert len(used) > 40, "the scan found too few imports to be a scan of the course"
    missing = {name: str(where) for name, where in used.items() if name not in {*shared.__all__, *SHARED_SUBMODULES}}
    assert not missing, f"imported from shared but not on its surface: {missing}"
