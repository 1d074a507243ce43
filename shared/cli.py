"""The course command line: ``llm-course run | fetch | check | chat | export``."""

import argparse
import hashlib
import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path

from shared.config import PROFILES, ProfileError, settings
from shared.export import REPO_ROOT

DIST = "llm-from-scratch-course"


def _use_profile(profile: str | None) -> None:
    """Make ``--profile`` win over the environment, for this process and its children."""
    if profile:
        os.environ["LLM_COURSE_PROFILE"] = profile


def cmd_fetch(args) -> int:
    from shared.data import REGISTRY, ChecksumError, FetchError, entries_for, fetch

    _use_profile(args.profile)
    profile = settings().profile
    entries = [REGISTRY[n] for n in args.names] if args.names else entries_for(profile)
    failed = 0
    for entry in entries:
        try:
            path = fetch(entry)
        except (ChecksumError, FetchError) as exc:
            failed += 1
            print(f"FAIL {entry.name}\n{exc}", file=sys.stderr)
        else:
            print(f"OK   {entry.name:<20} {entry.verification:<26} {path}")
    print(f"{len(entries) - failed}/{len(entries)} files ready for profile '{profile}'")
    return 1 if failed else 0


def _check_lines():
    """(ok, label, detail) for every item of the environment report."""
    from packaging.requirements import Requirement

    try:
        cfg = settings()
    except ProfileError as exc:
        yield False, "profile", str(exc)
        return
    yield True, "profile", f"{cfg.profile} ({PROFILES[cfg.profile]})"
    yield sys.version_info >= (3, 10), "python", platform.python_version() + " (needs >= 3.10)"
    for spec in importlib.metadata.requires(DIST) or []:
        req = Requirement(spec)
        if req.marker is not None:
            continue  # extras (test-only packages) are not required to run the course
        try:
            version = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            yield False, req.name, f"not installed (needs {req.specifier})"
            continue
        yield req.specifier.contains(version, prereleases=True), req.name, f"{version} (needs {req.specifier or 'any'})"

    from shared.runtime import get_device
    yield True, "device", str(get_device())
    yield True, "cache", f"{cfg.cache_dir} ({'exists' if cfg.cache_dir.exists() else 'empty, created on first fetch'})"
    mirror_ok = cfg.mirror is None or cfg.mirror.is_dir()
    yield mirror_ok, "mirror", str(cfg.mirror) if cfg.mirror else "not set (LLM_COURSE_MIRROR)"
    yield from _offline_lines(cfg)


def _offline_lines(cfg):
    from shared.data import ChecksumError, entries_for, verify, _TIKTOKEN_FILES

    for entry in entries_for(cfg.profile):
        places = [cfg.cache_dir / entry.relpath] + ([cfg.mirror / entry.relpath] if cfg.mirror else [])
        found = next((p for p in places if p.exists()), None)
        if found is None:
            yield False, entry.name, "not available offline: run `llm-course fetch` (or set LLM_COURSE_MIRROR)"
            continue
        try:
            verify(entry, found)
            yield True, entry.name, f"offline copy verified ({entry.verification}): {found}"
        except ChecksumError as exc:
            yield False, entry.name, str(exc).splitlines()[0]
    tiktoken_dir = os.environ.get("TIKTOKEN_CACHE_DIR")
    if tiktoken_dir:
        names = [hashlib.sha1(url.encode()).hexdigest() for url in _TIKTOKEN_FILES.values()]
        ok = all((Path(tiktoken_dir) / n).exists() for n in names)
        yield ok, "gpt2 tokenizer", f"TIKTOKEN_CACHE_DIR={tiktoken_dir} ({'complete' if ok else 'missing files'})"
    else:
        yield True, "gpt2 tokenizer", "built from the registry's gpt2-encoder/gpt2-vocab-bpe on first use"


def cmd_check(args) -> int:
    _use_profile(args.profile)
    failed = 0
    for ok, label, detail in _check_lines():
        failed += not ok
        print(f"{'OK  ' if ok else 'FAIL'} {label:<20} {detail}")
    print("all checks passed" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0


def cmd_export(args) -> int:
    from shared.export import export, stale_modules

    if args.check:
        stale = stale_modules()
        for path in stale:
            print(f"stale: {path.relative_to(REPO_ROOT)} differs from its notebook; run `llm-course export`")
        if not stale:
            print("all chapter modules match their notebooks")
        return 1 if stale else 0
    changed = export()
    for path in changed:
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    print(f"{len(changed)} module(s) updated")
    return 0


def cmd_run(args) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    _use_profile(args.profile)
    settings()  # fail early on an unknown profile
    out = Path(args.out or REPO_ROOT / "runs" / time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    notebooks = sorted(REPO_ROOT.glob("ch[0-9][0-9]_*/*.ipynb"))
    notebooks = [nb for nb in notebooks if nb.name != "solutions.ipynb"]
    rows, failed = [], 0
    for nb_path in notebooks:
        print(f"running {nb_path.parent.name}/{nb_path.name} ...", flush=True)
        nb = nbformat.read(nb_path, as_version=4)
        client = NotebookClient(nb, timeout=1800, kernel_name="python3",
                                resources={"metadata": {"path": str(nb_path.parent)}})
        start, status = time.perf_counter(), "ok"
        try:
            client.execute()
        except CellExecutionError as exc:
            status, failed = f"FAILED: {str(exc).strip().splitlines()[-1][:60]}", failed + 1
        elapsed = time.perf_counter() - start
        nbformat.write(nb, out / f"{nb_path.parent.name}.ipynb")
        rows.append((nb_path.parent.name, status, elapsed))
    print(f"\n{'chapter':<22} {'status':<10} {'time':>8}")
    for chapter, status, elapsed in rows:
        print(f"{chapter:<22} {status:<10} {elapsed:7.1f} s")
    print(f"executed notebooks in {out}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    profile_help = f"profile ({' or '.join(PROFILES)}); default: LLM_COURSE_PROFILE or quick"

    run = sub.add_parser("run", help="run the course end to end")
    run.add_argument("--profile", help=profile_help)
    run.add_argument("--out", help="output folder (default: runs/<timestamp>)")
    run.set_defaults(func=cmd_run)

    fetch = sub.add_parser("fetch", help="download and verify every file a profile needs")
    fetch.add_argument("--profile", help=profile_help)
    fetch.add_argument("names", nargs="*", help="registry names (default: all of the profile)")
    fetch.set_defaults(func=cmd_fetch)

    check = sub.add_parser("check", help="report on the environment, one OK/FAIL line each")
    check.add_argument("--profile", help=profile_help)
    check.set_defaults(func=cmd_check)

    export = sub.add_parser("export", help="regenerate chapter modules from their notebooks")
    export.add_argument("--check", action="store_true", help="only report stale modules (exit 1 if any)")
    export.set_defaults(func=cmd_export)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
