"""The course's shape: notebooks export their modules, chapters layer, `shared` resolves."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import shared
from shared.export import MARKER, REPO_ROOT, chapter_notebooks, export, module_path, read_all, stale_modules

CHAPTER_MODULES = sorted(module_path(nb) for nb in chapter_notebooks())
EXERCISE_CHECKS = sorted(
    p for pattern in ("ch[0-9][0-9]_*/checks.py", "appendix_*/checks.py") for p in REPO_ROOT.glob(pattern)
)
# The plumbing every chapter may use: every file of shared/. The application (llm_course/: the CLI,
# the end-to-end run, its stages, the chat front-end and the judge client) sits on top of all chapters.
PLUMBING = sorted((REPO_ROOT / "shared").glob("*.py"))
APPLICATION = sorted((REPO_ROOT / "llm_course").glob("*.py"))


def chapter_number(module: str) -> int | None:
    """ch05_pretraining -> 5; appendix_a_distributed -> 101 (appendices come after every chapter)."""
    match = re.match(r"ch(\d\d)_", module)
    if match:
        return int(match.group(1))
    match = re.match(r"appendix_([a-z])_", module)
    return 100 + ord(match.group(1)) - ord("a") + 1 if match else None


def imported_chapters(path: Path) -> set[int]:
    """Chapter numbers a source file imports, directly or through `from shared import NAME`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "shared":
                names = [shared._EXPORTS.get(alias.name, "") for alias in node.names]
        else:
            continue
        found |= {n for n in map(chapter_number, names) if n is not None}
    return found


def test_every_chapter_has_a_module():
    assert CHAPTER_MODULES, "no chapter notebook with export cells found"
    for module in CHAPTER_MODULES:
        assert module.exists(), f"{module} is missing: run `llm-course export`"


def test_modules_match_their_notebooks():
    assert stale_modules() == [], "run `llm-course export` and commit the result"


def test_drift_check_catches_an_edited_export_cell(tmp_path):
    """Copy a chapter, change one exported line in the notebook: the check must flag it."""
    source = chapter_notebooks()[0]
    chapter = tmp_path / source.parent.name
    shutil.copytree(source.parent, chapter)
    assert stale_modules(tmp_path) == []
    notebook = chapter / source.name
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).startswith(MARKER))
    cell["source"] = "".join(cell["source"]) + "\n# an edit the module has not seen\n"
    notebook.write_text(json.dumps(nb), encoding="utf-8")
    assert stale_modules(tmp_path) == [chapter / f"{source.stem}.py"]
    export(tmp_path)
    assert stale_modules(tmp_path) == []
    assert "# an edit the module has not seen" in (chapter / f"{source.stem}.py").read_text()


def test_cli_export_check_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "llm_course.cli", "export", "--check"], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module", CHAPTER_MODULES + EXERCISE_CHECKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_chapters_import_only_earlier_chapters(module):
    own = chapter_number(module.parent.name)
    allowed = {own} if module.name == "checks.py" else set()  # exercise checks may use their own chapter
    later = {n for n in imported_chapters(module) if n >= own} - allowed
    assert not later, f"{module.name} imports chapter(s) {sorted(later)}; a chapter may use only earlier ones"


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports (``import a.b`` and ``from a.b import c`` give ``a.b``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_layers_have_files():
    assert len(PLUMBING) > 10 and (REPO_ROOT / "shared" / "__init__.py") in PLUMBING
    assert {p.name for p in APPLICATION} >= {"cli.py", "pipeline.py", "stages.py", "judge.py"}


@pytest.mark.parametrize("module", PLUMBING, ids=lambda p: p.name)
def test_plumbing_imports_no_chapter_and_no_application(module):
    assert imported_chapters(module) == set()
    application = {m for m in imported_modules(module) if m.split(".")[0] == "llm_course"}
    assert not application, f"shared/{module.name} imports the application ({sorted(application)})"


def chapter_modules_imported(tree: ast.AST) -> dict[str, str]:
    """{local name: chapter module} for ``from chXX_topic import topic as alias`` / ``import chXX_topic.topic``."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and chapter_number(node.module):
            if "." not in node.module:  # from ch05_pretraining import pretraining as ch05
                aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        elif isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname and chapter_number(a.name)})
    return aliases


def private_chapter_uses(path: Path) -> list[str]:
    """How an application file reaches chapter code other than by a public name (a module's ``__all__``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    public = {
        name: set(read_all(REPO_ROOT / Path(*name.split(".")).with_suffix(".py")))
        for name in {
            module_path(nb).relative_to(REPO_ROOT).with_suffix("").as_posix().replace("/", ".")
            for nb in chapter_notebooks()
        }
    }
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in public:
            problems += [
                f"line {node.lineno}: from {node.module} import {a.name}"
                for a in node.names
                if a.name not in public[node.module]
            ]
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            problems.append(f"line {node.lineno}: import_module(...) hides which chapter is used")
    aliases = chapter_modules_imported(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            module = aliases[node.value.id]
            if node.attr not in public.get(module, set()):
                problems.append(f"line {node.lineno}: {node.value.id}.{node.attr} is not in {module}.__all__")
    return problems


@pytest.mark.parametrize("module", APPLICATION, ids=lambda p: p.name)
def test_application_uses_chapters_by_public_names_only(module):
    assert private_chapter_uses(module) == []


def test_the_public_name_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from ch05_pretraining import pretraining as ch05\n"
        "from ch07_instruction.instruction import _ARTICLES\n"
        "import importlib\n"
        "ch05._check_state_dict(None, {}, '')\n"
        "importlib.import_module('ch06_classification.classification')\n"
    )
    problems = private_chapter_uses(bad)
    assert len(problems) == 3 and any("_check_state_dict" in p for p in problems), problems


@pytest.mark.parametrize("module", CHAPTER_MODULES, ids=lambda p: p.parent.name)
def test_chapter_module_imports_alone(module, tmp_path):
    """A fresh interpreter can import each chapter module by itself (no import cycles).

    It runs in an empty folder, so only the installed course is on the path."""
    name = f"{module.parent.name}.{module.stem}"
    result = subprocess.run(
        [sys.executable, "-c", f"import {name}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=os.environ,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def test_every_public_name_resolves():
    for name, module in shared._EXPORTS.items():
        assert getattr(shared, name) is not None, f"shared.{name} ({module})"


def test_unknown_public_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'GPTModle'"):
        shared.GPTModle  # noqa: B018


def test_importing_shared_loads_no_chapter(tmp_path):
    code = "import sys, shared; print(sorted(m for m in sys.modules if m.startswith('ch0')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.stdout.strip() == "[]", result.stderr
