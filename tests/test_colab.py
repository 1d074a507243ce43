"""`llm-course colab`: the 'Open in Colab' badge and the setup cell that installs the course in Colab only."""

import ast
import json
import os
import subprocess
import sys

import pytest

from llm_course import colab
from shared.export import REPO_ROOT

NOTEBOOK = REPO_ROOT / "ch01_intro" / "intro.ipynb"
RELPATH = "ch01_intro/intro.ipynb"


@pytest.fixture
def recorded_commands(monkeypatch, tmp_path):
    """Stub ``subprocess.run``: record each command; a `git clone` creates the folders it would."""
    commands = []

    def run(command, **kwargs):
        commands.append(list(command))
        if command[:2] == ["git", "clone"]:
            os.makedirs(os.path.join(command[-1], "ch01_intro"))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the cell may add the course to it
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    return commands


def run_setup_cell():
    exec(compile(colab.setup_source(RELPATH), "<colab setup cell>", "exec"), {})


def test_setup_cell_installs_the_course_in_colab(recorded_commands, monkeypatch, tmp_path):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    run_setup_cell()
    course = str(tmp_path / colab.GITHUB_REPOSITORY.split("/")[1])
    clone, install = recorded_commands
    assert clone[:2] == ["git", "clone"] and f"https://github.com/{colab.GITHUB_REPOSITORY}" in clone
    assert clone[-1] == course
    assert install == [sys.executable, "-m", "pip", "install", "--quiet", "--editable", course]
    assert sys.path[0] == course
    assert os.getcwd() == os.path.join(course, "ch01_intro")  # relative paths work as on a laptop

    run_setup_cell()  # run again: no second clone, the install is repeated (pip finds it done)
    assert [c[:2] for c in recorded_commands] == [["git", "clone"], [sys.executable, "-m"], [sys.executable, "-m"]]
    assert sys.path.count(course) == 1


def test_setup_cell_does_nothing_elsewhere(recorded_commands, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    path_before = list(sys.path)
    run_setup_cell()
    assert recorded_commands == []
    assert sys.path == path_before and os.getcwd() == str(tmp_path)
    assert capsys.readouterr() == ("", "")


def test_setup_cell_imports_nothing_of_the_course():
    """It runs before the course is installed, so it may import only the standard library."""
    tree = ast.parse(colab.setup_source(RELPATH))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert imported == {"os", "sys", "subprocess"}
    assert not any(isinstance(node, ast.ImportFrom) for node in ast.walk(tree))


def test_badge_links_to_the_notebook_in_colab():
    badge = colab.badge_source(RELPATH)
    assert colab.BADGE_IMAGE in badge
    assert f"colab.research.google.com/github/{colab.GITHUB_REPOSITORY}/blob/{colab.BRANCH}/{RELPATH})" in badge


def without_colab_cells(nb):
    """The notebook as it was before `llm-course colab` (the repository's notebooks have the cells)."""
    nb = json.loads(json.dumps(nb))
    nb["cells"] = [
        c
        for c in nb["cells"]
        if not colab.is_badge("".join(c["source"])) and not "".join(c["source"]).startswith(colab.SETUP_MARKER)
    ]
    return nb


def test_the_repository_notebook_has_its_cells_and_stripping_them_leaves_none():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert colab.colab_problems(nb, RELPATH) == []
    assert len(colab.colab_problems(without_colab_cells(nb), RELPATH)) == 2


def test_adding_is_idempotent_and_keeps_cell_ids():
    original = without_colab_cells(json.loads(NOTEBOOK.read_text(encoding="utf-8")))
    updated = colab.add_colab_cells(original, RELPATH)
    cells = updated["cells"]
    assert "".join(cells[0]["source"]) == colab.badge_source(RELPATH)
    first_code = next(c for c in cells if c["cell_type"] == "code")
    assert "".join(first_code["source"]) == colab.setup_source(RELPATH)
    added = {cells[0]["id"], first_code["id"]}
    assert [c for c in cells if c["id"] not in added] == original["cells"]  # nothing else changed
    assert colab.add_colab_cells(updated, RELPATH) == updated

    stale = json.loads(json.dumps(updated))  # an older version of the cell is replaced in place
    stale["cells"][cells.index(first_code)]["source"] = [colab.SETUP_MARKER + "\n", "print('old')\n"]
    refreshed = colab.add_colab_cells(stale, RELPATH)
    assert refreshed == updated


def llm_course(*args):
    return subprocess.run(
        [sys.executable, "-m", "llm_course.cli", "colab", *args], capture_output=True, text=True, timeout=120
    )


def test_check_fails_on_a_notebook_without_badge_or_cell(tmp_path):
    notebook = tmp_path / "ch01_intro" / "intro.ipynb"
    notebook.parent.mkdir()
    notebook.write_text(
        json.dumps(without_colab_cells(json.loads(NOTEBOOK.read_text(encoding="utf-8")))), encoding="utf-8"
    )
    result = llm_course("--check", str(notebook))
    assert result.returncode == 1
    assert (
        f"{RELPATH}: no 'Open in Colab' badge" in result.stderr and f"{RELPATH}: no Colab setup cell" in result.stderr
    )

    assert llm_course(str(notebook)).returncode == 0
    assert llm_course("--check", str(notebook)).returncode == 0
    assert colab.colab_problems(json.loads(notebook.read_text(encoding="utf-8")), RELPATH) == []

    nb = json.loads(notebook.read_text(encoding="utf-8"))
    del nb["cells"][0]  # the badge
    notebook.write_text(json.dumps(nb), encoding="utf-8")
    result = llm_course("--check", str(notebook))
    assert result.returncode == 1 and "no 'Open in Colab' badge" in result.stderr and "setup cell" not in result.stderr
