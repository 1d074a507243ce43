"""The classroom bundle: one folder a teacher copies to a USB stick or a shared drive.

``llm-course classroom build DIR`` writes::

    DIR/START_HERE.md        the two setup commands, and what to do offline
    DIR/use-bundle.sh        points the course at this folder's data and cache (bash, zsh)
    DIR/use-bundle.ps1       the same for Windows PowerShell
    DIR/course/              the student copy: chapter notebooks (no solutions), modules, checks, library
    DIR/data/                the data files of one profile, laid out like the course's mirror
    DIR/cache/               a pretrained course-base, so no laptop pretrains it again
    DIR/teacher/             solutions notebooks, the notebooks with stored outputs, the session plans
    DIR/MANIFEST.sha256      the sha256 of every other file (``sha256sum -c`` reads it too)

Everything except ``teacher/`` is the student part. The bundle is built in a temporary
folder beside ``DIR`` and renamed into place at the end, so an interrupted build never
leaves a half bundle. ``llm-course classroom check DIR`` verifies it: the hashes, that every
notebook opens, and that no solution reached the student part.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from shared.config import PROFILES, settings
from shared.data import REGISTRY, ChecksumError, FetchError, entries_for, fetch, sha256_of, verify
from shared.export import REPO_ROOT
from shared.files import atomic_write

COURSE, DATA, CACHE, TEACHER = "course", "data", "cache", "teacher"
MANIFEST = "MANIFEST.sha256"
COURSE_BASE = Path("models") / "course-base"
TOP_LEVEL_FILES = (
    "README.md",
    "README.ko.md",
    "pyproject.toml",
    "requirements.txt",
    "LICENSE",
)  # what `pip install` needs, and the Korean README
CHAPTER_PATTERNS = ("ch[0-9][0-9]_*", "appendix_*")  # chapters first, appendices after
# Files a chapter fetches by name although no profile lists them: chapter 8's pretrained model.
CHAPTER_DATA = ("smollm2-135m-instruct",)
# Made by Python, Jupyter or pip (installing from the bundle) while it is used; never part of what was built.
IGNORED_PARTS = ("__pycache__", ".ipynb_checkpoints", "build")
IGNORED_SUFFIXES = (".pyc", ".egg-info")


class BundleError(RuntimeError):
    """The bundle cannot be built, or a built bundle is broken."""


def chapter_folders(root: Path = REPO_ROOT) -> list[Path]:
    """Every chapter and appendix folder, in course order."""
    return [p for pattern in CHAPTER_PATTERNS for p in sorted(root.glob(pattern)) if p.is_dir()]


def is_solutions(path: Path) -> bool:
    return path.suffix == ".ipynb" and path.name.startswith("solutions")


def _ignored(relpath: Path) -> bool:
    return any(part in IGNORED_PARTS or part.endswith(IGNORED_SUFFIXES) for part in relpath.parts)


def _files(folder: Path):
    """Every file below ``folder`` that belongs to the course (no caches, checkpoints or build output)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not _ignored(path.relative_to(folder)):
            yield path


def read_notebook(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_notebook(path: Path, nb: dict) -> None:
    """Write a notebook the way the course stores them (one-space indent, UTF-8 as is)."""
    atomic_write(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def clear_outputs(nb: dict) -> dict:
    """A copy of ``nb`` whose code cells have no outputs and no execution counts; ids and tags stay."""
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            cell.get("metadata", {}).pop("execution", None)  # run timestamps
    return nb


# ---------------------------------------------------------------------------------------- build


def build_bundle(target, profile: str | None = None, keep_outputs: bool = False, root: Path = REPO_ROOT) -> list[str]:
    """Write the classroom bundle to ``target`` (which must not exist, or be empty); return notes for the teacher.

    Data files come through the registry (cache, then mirror, then download), and each copy is
    verified against the registry again. The course-base model is copied from the course cache
    when it is there and current.
    """
    target = Path(target).expanduser().resolve()
    profile = settings(profile).profile
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BundleError(f"{target} already exists and is not an empty folder: remove it or choose another")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.building-"))
    try:
        _copy_course(root, tmp / COURSE, keep_outputs)
        _copy_teacher(root, tmp / TEACHER)
        _copy_data(profile, tmp / DATA)
        notes = _copy_course_base(tmp / CACHE / COURSE_BASE)
        _write_guides(tmp, profile, has_course_base=not notes)
        write_manifest(tmp)
        if target.exists():
            target.rmdir()
        os.rename(tmp, target)
    except BaseException:  # also Ctrl-C: never leave half a bundle behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return notes


def _copy_course(root: Path, dest: Path, keep_outputs: bool) -> None:
    """The student copy: top-level install files, the library, every chapter folder without solutions."""
    for name in TOP_LEVEL_FILES:
        if (root / name).exists():
            _copy_file(root / name, dest / name)
    for path in _files(root / "shared"):
        _copy_file(path, dest / path.relative_to(root))
    for folder in chapter_folders(root):
        for path in _files(folder):
            relpath = path.relative_to(root)
            if is_solutions(path):
                continue
            if path.suffix == ".ipynb" and not keep_outputs:
                write_notebook(dest / relpath, clear_outputs(read_notebook(path)))
            else:
                _copy_file(path, dest / relpath)


def _copy_teacher(root: Path, dest: Path) -> None:
    """Solutions and chapter notebooks as stored (with outputs), and the session plans."""
    for folder in chapter_folders(root):
        for path in sorted(folder.glob("*.ipynb")):
            _copy_file(path, dest / path.relative_to(root))
    teaching = root / "docs" / "teaching"
    if teaching.is_dir():
        for path in _files(teaching):
            _copy_file(path, dest / "teaching" / path.relative_to(teaching))


def bundle_entries(profile: str):
    """The registry files a bundle for ``profile`` carries: the profile's own, plus chapter 8's model."""
    entries = entries_for(profile)
    return entries + [REGISTRY[name] for name in CHAPTER_DATA if REGISTRY[name] not in entries]


def _copy_data(profile: str, dest: Path) -> None:
    """Each file at its registry path (the mirror layout), verified again after copying."""
    lines = []
    for entry in bundle_entries(profile):
        source = fetch(entry)  # cache -> mirror -> download; verified
        copy = _copy_file(source, dest / entry.relpath)
        verify(entry, copy)
        lines.append(f"| `{entry.relpath}` | {entry.about} | {entry.urls[0]} |")
    sources = (
        "# Data in this bundle\n\nEach file is verified against the course's data registry "
        "(`shared/data.py`) when it is used. Sources and licences:\n\n"
        "| file | what, licence | source |\n|---|---|---|\n" + "\n".join(lines) + "\n\n"
        "The SMS Spam Collection is by Tiago A. Almeida and José María Gómez Hidalgo (CC BY 4.0); "
        "keep this attribution when you pass the data on.\n"
    )
    atomic_write(dest / "SOURCES.md", sources)


def course_base_problem(folder: Path) -> str | None:
    """Why the cached course-base in ``folder`` cannot be used as it is (None: it can).

    The same test chapter 5 applies before loading it: the recipe it was trained with must be
    the current one, and the weights and the tokenizer must match the hashes recorded beside them.
    """
    from ch05_pretraining.pretraining import COURSE_BASE_RECIPE, read_model_folder, read_model_info

    if read_model_info(folder) is None:
        return f"no readable {folder / 'config.json'}"
    if read_model_folder(folder, with_tokenizer=True, recipe=COURSE_BASE_RECIPE) is None:
        return (
            f"{folder} holds a course-base of an older recipe, without its tokenizer (tokenizer.json), "
            "or with files that do not match their recorded sha256"
        )
    return None


TRAIN_COURSE_BASE = "python -c \"from shared import load_pretrained; load_pretrained('course-base')\""


def _copy_course_base(dest: Path) -> list[str]:
    """Copy course-base from the course cache; return notes (empty when it was copied)."""
    source = settings().cache_dir / COURSE_BASE
    problem = course_base_problem(source)
    if problem:
        return [
            f"course-base is not in the bundle ({problem}). Train it once on this machine "
            f"(about 3 minutes on a 2-core CPU) with\n    {TRAIN_COURSE_BASE}\n"
            "(or `llm-course run`), then build the bundle again; without it every laptop pretrains "
            "its own copy the first time chapters 5-7 need it."
        ]
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        _copy_file(source / name, dest / name)
    if course_base_problem(dest):
        raise BundleError(f"the copy of course-base in {dest} does not match {source}: {course_base_problem(dest)}")
    return []


def _copy_file(source: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)  # contents only: files from a read-only mirror stay writable here
    return dest


def _write_guides(folder: Path, profile: str, has_course_base: bool) -> None:
    atomic_write(folder / "START_HERE.md", start_here(profile, has_course_base))
    atomic_write(
        folder / "use-bundle.sh",
        (
            "# Point the course at this bundle's data and model cache. Use it with `. ../use-bundle.sh`\n"
            "# from the course folder (a plain `bash use-bundle.sh` would set nothing in your terminal).\n"
            'bundle="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"\n'
            f'export LLM_COURSE_MIRROR="$bundle/{DATA}" LLM_COURSE_CACHE="$bundle/{CACHE}" LLM_COURSE_PROFILE={profile}\n'
            'echo "course data: $LLM_COURSE_MIRROR, cache: $LLM_COURSE_CACHE"\n'
        ),
    )
    atomic_write(
        folder / "use-bundle.ps1",
        (
            "# Point the course at this bundle's data and model cache: `. ..\\use-bundle.ps1` from the course folder.\n"
            "$bundle = Split-Path -Parent $MyInvocation.MyCommand.Path\n"
            f'$env:LLM_COURSE_MIRROR = Join-Path $bundle "{DATA}"\n'
            f'$env:LLM_COURSE_CACHE = Join-Path $bundle "{CACHE}"\n'
            f'$env:LLM_COURSE_PROFILE = "{profile}"\n'
            'Write-Output "course data: $env:LLM_COURSE_MIRROR, cache: $env:LLM_COURSE_CACHE"\n'
        ),
    )


def start_here(profile: str, has_course_base: bool) -> str:
    """The bundle's front page, for students and the teacher."""
    base = (
        "`cache/` holds `course-base`, the small GPT that chapter 5 pretrains, already trained: "
        "chapters 5–7 load it instead of training it again."
        if has_course_base
        else "This bundle has **no** pretrained `course-base`: each laptop pretrains it (about 3 minutes on "
        "2 cores) the first time chapters 5–7 need it. Teacher: to avoid that, train it once on your "
        f"machine with `{TRAIN_COURSE_BASE}` and build the bundle again."
    )
    return f"""# Start here

This folder is the whole course for a class: the notebooks, the course library, the data of the
`{profile}` profile and a model cache. Once the Python packages are installed it needs no internet.

## Setup (once per laptop)

Copy this folder to your laptop (students: without `teacher/`). Open a terminal in its `course`
folder and run these two commands (Python 3.10 or newer):

```bash
pip install -r requirements.txt
. ../use-bundle.sh && llm-course check
```

On Windows PowerShell the second one is `. ..\\use-bundle.ps1; llm-course check`.
The first installs the course and its packages; the second points the course at this folder's
`data/` and `cache/` and checks that everything is there: every line should say `OK`.
Then start Jupyter from the same terminal and open `ch01_intro/intro.ipynb`
(`ch00_pytorch/pytorch.ipynb` first if you are new to PyTorch):

```bash
jupyter lab
```

In a new terminal, run `. ../use-bundle.sh` again before `jupyter lab`: the notebooks find the
data through the variables it sets.

## Offline

- **Data:** nothing to do. `data/` holds every file the course reads, checked against its
  sha256 when it is used.
- **Packages:** `pip install` needs the internet once. For a room without it, the teacher runs
  `pip download -r requirements.txt -d wheels` on a connected machine with the same operating
  system and Python version, copies `wheels/` next to this file, and students install with
  `pip install --no-index --find-links ../wheels -r requirements.txt`.
- **Model:** {base}
- **A read-only shared drive:** leave the bundle there, set only `LLM_COURSE_MIRROR` to its
  `data` folder, and copy `cache/models/course-base` to `~/.cache/llm-course/models/` on each
  laptop (the course writes its trained models to the cache, which must be writable).

## What is where

| folder | what |
|---|---|
| `course/` | one folder per chapter: the notebook, the module made from it, `checks.py` for the exercises |
| `data/` | the texts, data sets and tokenizer files (`data/SOURCES.md`: sources and licences) |
| `cache/` | the course cache: pretrained models |
| `teacher/` | for the teacher only: solutions notebooks, the notebooks with stored outputs, session plans |

Every exercise ends with a check: run it on your answer and it prints `Correct!` or says what is off.
Until you answer, it says "Not answered yet".

Teacher: `llm-course classroom check <this folder>` verifies the bundle (hashes, notebooks, and that
no solution is in `course/`) before you hand it out. Hand out everything except `teacher/`.
"""


# -------------------------------------------------------------------------------------- manifest


def write_manifest(folder: Path) -> Path:
    """``MANIFEST.sha256``: one ``<sha256>  <path>`` line per file, in the format of ``sha256sum``."""
    lines = [
        f"{sha256_of(path)}  {path.relative_to(folder).as_posix()}"
        for path in _files(folder)
        if path.relative_to(folder).as_posix() != MANIFEST
    ]
    return atomic_write(folder / MANIFEST, "\n".join(lines) + "\n")


def read_manifest(folder: Path) -> dict[str, str]:
    """path -> sha256 from the bundle's manifest."""
    entries = {}
    for number, line in enumerate((folder / MANIFEST).read_text(encoding="utf-8").splitlines(), 1):
        digest, sep, relpath = line.partition("  ")
        if not sep or len(digest) != 64:
            raise BundleError(f"{folder / MANIFEST}, line {number}: not '<sha256>  <path>': {line!r}")
        entries[relpath] = digest
    return entries


# ----------------------------------------------------------------------------------------- check


def check_bundle(folder) -> list[str]:
    """Every problem of the bundle in ``folder``, one line each naming the file; [] when it is sound."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        return [f"{folder / MANIFEST} is missing: is {folder} a bundle made by `llm-course classroom build`?"]
    try:
        manifest = read_manifest(folder)
    except BundleError as exc:
        return [str(exc)]
    problems = _hash_problems(folder, manifest) + _data_problems(folder)
    notebooks = [p for p in _files(folder) if p.suffix == ".ipynb"]
    opened = {}
    for path in notebooks:
        try:
            opened[path] = _open_notebook(path)
        except Exception as exc:  # nbformat raises several kinds; each means the file will not open
            problems.append(
                f"notebook does not open: {path.relative_to(folder)} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})"
            )
    return problems + _solution_problems(folder, opened)


def _hash_problems(folder: Path, manifest: dict[str, str]) -> list[str]:
    problems = []
    for relpath, digest in manifest.items():
        path = folder / relpath
        if not path.is_file():
            problems.append(f"missing: {relpath}")
        elif sha256_of(path) != digest:
            problems.append(f"changed since the build: {relpath} (sha256 {sha256_of(path)}, manifest {digest})")
    for path in _files(folder):
        relpath = path.relative_to(folder).as_posix()
        if relpath != MANIFEST and relpath not in manifest:
            problems.append(f"not in the manifest: {relpath}")
    return problems


def _data_problems(folder: Path) -> list[str]:
    """Data files checked against the course's registry too, not only against the manifest."""
    problems = []
    for entry in REGISTRY.values():
        path = folder / DATA / entry.relpath
        if path.is_file():
            try:
                verify(entry, path)
            except ChecksumError as exc:
                problems.append(
                    f"data file does not match the registry: {DATA}/{entry.relpath} ({str(exc).splitlines()[0]})"
                )
    return problems


def _open_notebook(path: Path) -> dict:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _cell_texts(nb) -> list[str]:
    texts = (_normalise("".join(cell["source"])) for cell in nb["cells"])
    return [text for text in texts if text]


def _solution_problems(folder: Path, opened: dict[Path, dict]) -> list[str]:
    """Solutions in the student part: a solutions notebook, or a solution cell inside a student notebook.

    A cell of a solutions notebook that also stands in the chapter's own notebook (the
    teacher's copy: the settings cell, a heading, a call of a check) is shared text, not a
    solution; any other solution cell found in a student notebook is a leak.
    """
    student = {p: nb for p, nb in opened.items() if p.relative_to(folder).parts[0] == COURSE}
    solutions = [(p, text) for p, nb in opened.items() if is_solutions(p) for text in _cell_texts(nb)]
    problems = [f"solutions notebook in the student part: {p.relative_to(folder)}" for p in student if is_solutions(p)]
    for path, nb in student.items():
        if is_solutions(path):
            continue
        reference_path = folder / TEACHER / path.relative_to(folder / COURSE)
        reference = _cell_texts(opened[reference_path]) if reference_path in opened else []
        cells = _cell_texts(nb)
        for source, text in solutions:
            if any(text in cell for cell in cells) and not any(text in cell for cell in reference):
                first_line = text.splitlines()[0][:60]
                problems.append(
                    f"solution in a student notebook: {path.relative_to(folder)} contains a cell of "
                    f"{source.relative_to(folder)} ({first_line!r})"
                )
    return problems


# ------------------------------------------------------------------------------------ command line


def cmd_classroom(args) -> int:
    if args.action == "build":
        print(f"building the classroom bundle in {args.dir} (profile {settings(args.profile).profile}) ...")
        try:
            notes = build_bundle(args.dir, profile=args.profile, keep_outputs=args.keep_outputs)
        except (BundleError, FetchError, ChecksumError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        for note in notes:
            print(f"note: {note}")
        print(
            f"wrote {Path(args.dir).resolve()}: start with its START_HERE.md; "
            f"check it with `llm-course classroom check {args.dir}`"
        )
        return 0
    problems = check_bundle(args.dir)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    print(
        f"{len(problems)} problem(s) in {args.dir}"
        if problems
        else f"bundle {args.dir} is sound: hashes match, every notebook opens, no solutions in the student part"
    )
    return 1 if problems else 0


def add_classroom_command(sub) -> None:
    """Register ``llm-course classroom build|check`` on the CLI's subparsers."""
    parser = sub.add_parser(
        "classroom", help="build or check a bundle a teacher hands out to a class", description=__doc__.split("\n\n")[0]
    )
    actions = parser.add_subparsers(dest="action", required=True)
    build = actions.add_parser("build", help="write the bundle: student notebooks, data, course-base, teacher/")
    build.add_argument("dir", metavar="DIR", help="the bundle folder to create (must not exist, or be empty)")
    build.add_argument(
        "--profile", choices=tuple(PROFILES), help="whose data to include (default: LLM_COURSE_PROFILE or quick)"
    )
    build.add_argument("--keep-outputs", action="store_true", help="keep the stored outputs in the student notebooks")
    check = actions.add_parser("check", help="verify a bundle: hashes, notebooks, no solutions for students")
    check.add_argument("dir", metavar="DIR", help="the bundle folder")
    for action in (build, check):
        action.set_defaults(func=cmd_classroom)
