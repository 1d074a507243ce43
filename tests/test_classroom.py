"""`llm-course classroom`: the bundle a teacher hands out, and its check.

One bundle is built per test session (from the repository, the data mirror and a cache holding
a course-base); tests that break it work on a copy whose files are hard links, replaced (never
written through) when a test changes them.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llm_course import classroom
from llm_course.classroom import (
    COURSE,
    DATA,
    MANIFEST,
    TEACHER,
    build_bundle,
    chapter_folders,
    check_bundle,
    is_solutions,
    write_manifest,
)
from shared.data import REGISTRY, sha256_of
from shared.export import REPO_ROOT, is_translation

STUDENT_NOTEBOOKS = [
    nb for folder in chapter_folders() for nb in sorted(folder.glob("*.ipynb")) if not is_solutions(nb)
]
SOLUTIONS = [nb for folder in chapter_folders() for nb in sorted(folder.glob("solutions*.ipynb"))]
# Translated twins (topic.ko.ipynb) go to students too; their code and outputs are the English
# notebook's by construction (`llm-course translate --check`), so the English ones are checked here.
ENGLISH_STUDENT_NOTEBOOKS = [nb for nb in STUDENT_NOTEBOOKS if not is_translation(nb)]
NOT_ANSWERED = re.compile(r"not answered yet|no answer yet", re.IGNORECASE)


def save_course_base(folder: Path) -> None:
    """A course-base in the cache layout, with random weights: loading it must not need training."""
    import torch

    from shared import COURSE_BASE_RECIPE, GPTModel, course_base_config, save_model_folder, train_course_base_tokenizer

    torch.manual_seed(0)
    model = GPTModel(course_base_config())
    model.out_head.weight = model.tok_emb.weight
    save_model_folder(model, folder, train_course_base_tokenizer(), name="course-base", recipe=COURSE_BASE_RECIPE)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A bundle built from this repository, as `llm-course classroom build` writes it."""
    cache = tmp_path_factory.mktemp("teacher-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLM_COURSE_CACHE", str(cache))
        save_course_base(cache / "models" / "course-base")
        target = tmp_path_factory.mktemp("usb") / "llm-course-class"
        notes = build_bundle(target, profile="quick")
    assert notes == [], notes
    return target


@pytest.fixture
def bundle_copy(bundle, tmp_path):
    """A copy of the bundle made of hard links (cheap); change files only with `replace`."""
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy, copy_function=os.link)
    return copy


def replace(path: Path, data: str | bytes) -> None:
    """Give ``path`` new contents without touching the file it is a hard link to."""
    path.unlink()
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def llm_course(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "llm_course.cli", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, **env),
        timeout=300,
    )


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


# ------------------------------------------------------------------------------------- the bundle


def test_build_then_check_passes(bundle):
    assert check_bundle(bundle) == []
    result = llm_course("classroom", "check", str(bundle))
    assert result.returncode == 0, result.stderr
    assert "is sound" in result.stdout


def test_bundle_has_every_part(bundle):
    student = sorted(p.relative_to(bundle / COURSE) for p in (bundle / COURSE).rglob("*.ipynb"))
    assert student == sorted(nb.relative_to(REPO_ROOT) for nb in STUDENT_NOTEBOOKS)
    assert any(is_translation(nb) for nb in student)  # the Korean twins too
    for nb in SOLUTIONS + STUDENT_NOTEBOOKS:  # the teacher gets the notebooks as stored, with outputs
        assert (bundle / TEACHER / nb.relative_to(REPO_ROOT)).read_bytes() == nb.read_bytes()
    for folder in chapter_folders():
        for module in folder.glob("*.py"):
            assert (bundle / COURSE / module.relative_to(REPO_ROOT)).read_bytes() == module.read_bytes()
    for entry in classroom.bundle_entries("quick"):
        assert sha256_of(bundle / DATA / entry.relpath) == entry.sha256, entry.name
    assert classroom.course_base_problem(bundle / "cache" / "models" / "course-base") is None
    start = (bundle / "START_HERE.md").read_text(encoding="utf-8")
    assert "pip install -r requirements.txt" in start and ". ../use-bundle.sh && llm-course check" in start
    manifest = classroom.read_manifest(bundle)
    assert len(manifest) == sum(1 for p in bundle.rglob("*") if p.is_file()) - 1


def test_student_code_cells_are_the_chapter_notebooks_code_cells(bundle):
    """The student copy is the chapter notebook (which CI runs with the exercises unanswered), minus outputs."""
    for notebook in STUDENT_NOTEBOOKS:
        original, student = cells(notebook), cells(bundle / COURSE / notebook.relative_to(REPO_ROOT))
        assert [(c["id"], c["cell_type"], c["source"]) for c in student] == [
            (c["id"], c["cell_type"], c["source"]) for c in original
        ], notebook.name
        code = [c for c in student if c["cell_type"] == "code"]
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), notebook.name


def exercise_check_cells(notebook: Path) -> list[dict]:
    """The code cells of the Exercises section that call a check on the reader's answer."""
    found, in_exercises = [], False
    for cell in cells(notebook):
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and re.search(r"^## ", text, re.MULTILINE):
            in_exercises = re.search(r"^## (?:[\d.]+ )?Exercises\b", text, re.MULTILINE) is not None
        elif in_exercises and cell["cell_type"] == "code" and re.search(r"^check_exercise_\w*\(", text, re.MULTILINE):
            found.append(cell)
    return found


@pytest.mark.parametrize("notebook", ENGLISH_STUDENT_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_unanswered_exercise_checks_say_so_without_a_traceback(notebook):
    """The stored outputs, from a full run with the exercises unanswered (as students get them)."""
    defined = set(
        re.findall(
            r"^def (check_exercise_\w+)\(", (notebook.parent / "checks.py").read_text(encoding="utf-8"), re.MULTILINE
        )
    )
    checks = exercise_check_cells(notebook)
    called = {
        name
        for cell in checks
        for name in re.findall(r"^(check_exercise_\w+)\(", "".join(cell["source"]), re.MULTILINE)
    }
    assert defined and called == defined, f"{notebook.name}: checks never called in the Exercises section"
    for cell in checks:
        outputs = cell["outputs"]
        text = "".join("".join(o.get("text", "")) for o in outputs)
        assert not any(o["output_type"] == "error" for o in outputs) and "Traceback" not in text, cell["id"]
        assert NOT_ANSWERED.search(text), f"{notebook.name}, cell {cell['id']}: {text!r}"


def test_keep_outputs_keeps_the_stored_outputs(tmp_path):
    classroom._copy_course(REPO_ROOT, tmp_path, keep_outputs=True)
    notebook = STUDENT_NOTEBOOKS[0]
    assert (tmp_path / notebook.relative_to(REPO_ROOT)).read_bytes() == notebook.read_bytes()
    assert not list(tmp_path.rglob("solutions*.ipynb"))


# --------------------------------------------------------------------------- the check catches problems


def test_a_changed_file_fails_the_check_naming_it(bundle_copy):
    checks = bundle_copy / COURSE / "ch01_intro" / "checks.py"
    replace(checks, checks.read_text(encoding="utf-8") + "\nCorrect = True\n")
    assert [p for p in check_bundle(bundle_copy) if "course/ch01_intro/checks.py" in p and "changed" in p]
    result = llm_course("classroom", "check", str(bundle_copy))
    assert result.returncode == 1 and "course/ch01_intro/checks.py" in result.stderr


def test_missing_and_extra_files_fail_the_check(bundle_copy):
    (bundle_copy / DATA / REGISTRY["the-verdict"].relpath).unlink()
    (bundle_copy / COURSE / "notes.txt").write_text("answers: ...")
    problems = check_bundle(bundle_copy)
    assert f"missing: {DATA}/{REGISTRY['the-verdict'].relpath}" in problems
    assert f"not in the manifest: {COURSE}/notes.txt" in problems


def test_a_data_file_that_differs_from_the_registry_fails_even_with_a_new_manifest(bundle_copy):
    verdict = bundle_copy / DATA / REGISTRY["the-verdict"].relpath
    replace(verdict, verdict.read_bytes().replace(b"Gisburn", b"Gisborn"))
    write_manifest(bundle_copy)
    problems = check_bundle(bundle_copy)
    assert len(problems) == 1 and "the_verdict/the-verdict.txt" in problems[0] and "registry" in problems[0]


def first_solution_only_cell(solutions: Path, chapter_notebook: Path) -> dict:
    """A code cell of the solutions notebook that the chapter notebook does not contain."""
    chapter_sources = {"".join(c["source"]).strip() for c in cells(chapter_notebook)}
    return next(
        c
        for c in cells(solutions)
        if c["cell_type"] == "code" and "".join(c["source"]).strip() not in chapter_sources and len(c["source"]) > 2
    )


def test_a_solution_cell_in_a_student_notebook_fails_the_check(bundle_copy):
    """Even with the manifest rewritten to match, so that only the solution check can see it."""
    student = bundle_copy / COURSE / "ch03_attention" / "attention.ipynb"
    solution = first_solution_only_cell(
        REPO_ROOT / "ch03_attention" / "solutions.ipynb", REPO_ROOT / "ch03_attention" / "attention.ipynb"
    )
    nb = json.loads(student.read_text(encoding="utf-8"))
    nb["cells"].append(dict(solution, id="leaked", outputs=[], execution_count=None))
    replace(student, json.dumps(nb, indent=1, ensure_ascii=False))
    write_manifest(bundle_copy)
    problems = check_bundle(bundle_copy)
    assert problems == [
        p for p in problems if p.startswith("solution in a student notebook: course/ch03_attention/attention.ipynb")
    ]
    assert problems and "teacher/ch03_attention/solutions.ipynb" in problems[0]


def test_a_solutions_notebook_in_the_student_part_fails_the_check(bundle_copy):
    shutil.copyfile(
        bundle_copy / TEACHER / "ch02_tokenization" / "solutions.ipynb",
        bundle_copy / COURSE / "ch02_tokenization" / "solutions.ipynb",
    )
    write_manifest(bundle_copy)
    assert "solutions notebook in the student part: course/ch02_tokenization/solutions.ipynb" in check_bundle(
        bundle_copy
    )


def test_a_notebook_that_does_not_open_fails_the_check(bundle_copy):
    student = bundle_copy / COURSE / "ch01_intro" / "intro.ipynb"
    nb = json.loads(student.read_text(encoding="utf-8"))
    del nb["cells"][0]["cell_type"]  # valid JSON, invalid notebook
    replace(student, json.dumps(nb))
    write_manifest(bundle_copy)
    assert [
        p for p in check_bundle(bundle_copy) if p.startswith("notebook does not open: course/ch01_intro/intro.ipynb")
    ]


def test_check_of_a_folder_that_is_no_bundle_says_so(tmp_path):
    result = llm_course("classroom", "check", str(tmp_path))
    assert result.returncode == 1 and MANIFEST in result.stderr


# -------------------------------------------------------------------------------------- building


def test_build_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "keep.txt").write_text("mine")
    result = llm_course("classroom", "build", str(tmp_path / "bundle"))
    assert result.returncode == 1 and "not an empty folder" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_a_failed_build_leaves_nothing_behind(tmp_path, monkeypatch):
    def offline(entry, progress=True):
        raise classroom.FetchError(f"could not fetch '{entry.name}'")

    monkeypatch.setattr(classroom, "fetch", offline)
    with pytest.raises(classroom.FetchError):
        build_bundle(tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


def test_without_a_course_base_the_build_says_how_to_train_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_COURSE_CACHE", str(tmp_path / "empty-cache"))
    notes = classroom._copy_course_base(tmp_path / "bundle" / "cache" / "models" / "course-base")
    assert len(notes) == 1 and classroom.TRAIN_COURSE_BASE in notes[0]
    assert not (tmp_path / "bundle").exists()
    assert classroom.TRAIN_COURSE_BASE in classroom.start_here("quick", has_course_base=False)


def test_a_course_base_of_an_older_recipe_is_not_bundled(tmp_path):
    folder = tmp_path / "course-base"
    save_course_base(folder)
    assert classroom.course_base_problem(folder) is None
    meta = json.loads((folder / "config.json").read_text())
    meta["recipe"]["max_steps"] += 1
    (folder / "config.json").write_text(json.dumps(meta))
    assert "older recipe" in classroom.course_base_problem(folder)


# ------------------------------------------------------------------------------- using the bundle


def test_chapter_6_uses_the_bundles_course_base_without_training(bundle, tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file

    from ch05_pretraining import pretraining
    from ch06_classification.classification import SPAM_SETTINGS
    from shared import load_pretrained

    def no_training(*args, **kwargs):
        raise AssertionError("course-base was trained again")

    monkeypatch.setattr(pretraining, "train_course_base", no_training)
    name = SPAM_SETTINGS["quick"].base_model  # what chapter 6 loads in `quick`

    monkeypatch.setenv("LLM_COURSE_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(AssertionError, match="trained again"):  # without the bundle it would train
        load_pretrained(name)

    monkeypatch.setenv("LLM_COURSE_CACHE", str(bundle / "cache"))
    model = load_pretrained(name)
    stored = load_file(bundle / "cache" / "models" / "course-base" / "model.safetensors")
    assert torch.equal(model.tok_emb.weight, stored["tok_emb.weight"])
    assert check_bundle(bundle) == []  # loading wrote nothing into the bundle


def test_a_student_notebook_runs_from_the_bundle(bundle, tmp_path, monkeypatch):
    """Chapter 1 as a student gets it, run top to bottom against the bundle's own course and data."""
    import nbformat
    from nbclient import NotebookClient

    path = bundle / COURSE / "ch01_intro" / "intro.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import shared; print(shared.__file__)"))
    # The kernel inherits this environment: the bundle's course and data, nothing of the repository's.
    for key, value in {
        "PYTHONPATH": str(bundle / COURSE),
        "LLM_COURSE_MIRROR": str(bundle / DATA),
        "LLM_COURSE_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = {
        cell.id: "".join(o.get("text", "") for o in cell.outputs) for cell in nb.cells if cell.cell_type == "code"
    }
    assert outputs[nb.cells[-1].id].strip() == str(bundle / COURSE / "shared" / "__init__.py")
    checks = {cell["id"] for cell in exercise_check_cells(path)}
    assert checks and all(NOT_ANSWERED.search(outputs[cell_id]) for cell_id in checks)
