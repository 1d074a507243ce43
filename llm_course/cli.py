"""The course command line: ``llm-course run | fetch | check | chat | pretrain | export``."""

import argparse
import importlib.metadata
import os
import platform
import sys
from pathlib import Path

from llm_course import PipelineError
from llm_course.classroom import add_classroom_command
from llm_course.colab import add_colab_command
from llm_course.translate import add_translate_command
from shared.config import PROFILES, ProfileError, settings
from shared.data import ChecksumError, FetchError
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
    from shared.data import ChecksumError, entries_for, tiktoken_cache_files, verify

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
        ok = all(path.exists() for path in tiktoken_cache_files(tiktoken_dir).values())
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
    from llm_course.pipeline import run_pipeline

    _use_profile(args.profile)
    profile = settings().profile
    if args.dry_run:
        from llm_course.estimate import dry_run

        print(dry_run(profile, args.estimate))
        return 0
    if args.rehearse:
        return _rehearse(profile, args)
    run_pipeline(profile, args.out, fresh=args.fresh)
    return 0


def _rehearse(profile, args) -> int:
    """``llm-course run --profile book --rehearse``: every stage on random GPT-2 weights, then the estimate."""
    import dataclasses

    from llm_course.estimate import dry_run
    from llm_course.pipeline import default_out
    from llm_course.rehearsal import ESTIMATE_FILE, REHEARSAL_PLAN, rehearse

    if profile != "book":
        raise PipelineError(
            f"--rehearse rehearses the book profile (its GPT-2 weights are faked), not {profile!r}: add --profile book"
        )
    out = Path(args.out) if args.out else default_out("book-rehearsal")
    plan = dataclasses.replace(REHEARSAL_PLAN, max_steps=args.steps) if args.steps else REHEARSAL_PLAN
    rehearse(out, plan)
    print(f"rehearsal passed: every stage ran and wrote its record in {out / 'stages'}\n")
    print(dry_run(profile, out / ESTIMATE_FILE))
    return 0


def cmd_chat(args) -> int:
    from ch05_pretraining import pretraining as ch05
    from ch07_instruction import instruction as ch07
    from llm_course.pipeline import INSTRUCT_MODEL_DIR, read_run_model, read_run_tokenizer
    from shared.runtime import get_device

    _use_profile(args.profile)
    if args.model == "smollm2":
        return _chat_smollm2(args)
    profile, device = settings().profile, get_device()
    if args.run:
        model = read_run_model(args.run, device)
        if model is None:
            raise PipelineError(
                f"no fine-tuned model in {Path(args.run) / INSTRUCT_MODEL_DIR}: "
                f"run `llm-course run --out {args.run}` first"
            )
        tokenizer = read_run_tokenizer(args.run)
    else:
        model = ch07.load_instruction_model(profile, device)  # fine-tunes it first if it is not cached
        tokenizer = ch05.load_tokenizer(ch07.FINETUNE_SETTINGS[profile].base_model)
    ch07.chat_loop(model, tokenizer, remember=args.remember, **_chat_options(args))
    return 0


def _chat_options(args) -> dict:
    """The sampling options both chats take; a piped stdin is echoed, so a transcript reads like a chat."""
    return dict(
        temperature=args.temperature,
        top_k=args.top_k or None,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        echo=not sys.stdin.isatty(),
    )


def _chat_smollm2(args) -> int:
    """``llm-course chat --model smollm2``: chapter 8's SmolLM2-135M-Instruct, on the CPU."""
    from ch08_modern_llm.modern_llm import load_smollm2, smollm2_chat_loop

    smollm2_chat_loop(load_smollm2(), **_chat_options(args))
    return 0


def cmd_pretrain(args) -> int:
    """Appendix A's ``pretrain``, which parses its own options (see ``llm-course pretrain --help``)."""
    from appendix_a_distributed.distributed import pretrain_main

    return pretrain_main(args.args)


def _at_least(kind, low):
    """An argparse type: ``kind(text)``, refused with a clear message when below ``low``."""

    def parse(text):
        value = kind(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    profile_help = f"profile ({' or '.join(PROFILES)}); default: LLM_COURSE_PROFILE or quick"

    run = sub.add_parser(
        "run",
        help="run the course end to end (text -> chatbot) and write a report",
        description="Tokenizer check, base model, its evaluation, spam classifier, instruction "
        "fine-tuning and its evaluation, SmolLM2-135M-Instruct and four baselines on "
        "the same test items (chapter 8; skipped when its file can't be had), the LLM "
        "judge (when an Ollama server answers), then DIR/report.md. Finished stages are stored in DIR/stages and "
        "reused while their inputs are unchanged; the judge server is looked for "
        "at every run.",
    )
    run.add_argument("--profile", help=profile_help)
    run.add_argument(
        "--out",
        metavar="DIR",
        help="run folder (default: runs/<profile> in the course folder; running again reuses its finished stages)",
    )
    run.add_argument("--fresh", action="store_true", help="redo every stage, ignoring the stored ones")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="run nothing: list the stages, the downloads and the work, with a time estimate for book",
    )
    run.add_argument(
        "--estimate",
        metavar="FILE",
        help="with --dry-run: the rehearsal figures to use (default: "
        "the ones measured for the course, llm_course/book_estimate.json)",
    )
    run.add_argument(
        "--rehearse",
        action="store_true",
        help="book only: run every stage on random weights of GPT-2's shapes (no download), a few steps "
        "each, and measure the time per step (default DIR: runs/book-rehearsal)",
    )
    run.add_argument(
        "--steps", type=_at_least(int, 1), help="with --rehearse: optimizer steps per fine-tuning (default 2)"
    )
    run.set_defaults(func=cmd_run)

    chat = sub.add_parser("chat", help="chat with the instruction-tuned model")
    chat.add_argument(
        "--run",
        metavar="DIR",
        help="use the model a `llm-course run` saved in DIR (default: chapter 7's model, fine-tuned now if missing)",
    )
    chat.add_argument("--profile", help=profile_help)
    chat.add_argument(
        "--model",
        choices=("course", "smollm2"),
        default="course",
        help="course: chapter 7's instruction-tuned model (default); smollm2: chapter 8's SmolLM2-135M-Instruct",
    )
    chat.add_argument("--temperature", type=_at_least(float, 0), default=0.7, help="0 = greedy (default 0.7)")
    chat.add_argument(
        "--top-k", type=_at_least(int, 0), default=40, help="sample from the k likeliest tokens; 0 = all (default 40)"
    )
    chat.add_argument("--max-new-tokens", type=_at_least(int, 1), default=128, help="longest answer (default 128)")
    chat.add_argument("--seed", type=int, help="make the sampling repeatable")
    chat.add_argument(
        "--remember",
        action="store_true",
        help="keep earlier turns in the prompt (course models; they were fine-tuned on single instructions)",
    )
    chat.set_defaults(func=cmd_chat)

    pretrain = sub.add_parser(
        "pretrain",
        add_help=False,
        prefix_chars="+",  # its options go to appendix A
        help="pretrain course-base or any GPTConfig, on several processes under torchrun",
    )
    pretrain.add_argument("args", nargs=argparse.REMAINDER)
    pretrain.set_defaults(func=cmd_pretrain)

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

    add_classroom_command(sub)
    add_colab_command(sub)
    add_translate_command(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ProfileError, PipelineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FetchError, ChecksumError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
