"""``llm-course run``: the whole course end to end, text -> chatbot, with a report.

The stages (``llm_course.stages``) run in order: tokenizer check, base model, its evaluation,
spam classifier, instruction fine-tuning, instruction evaluation, SmolLM2-135M-Instruct
(chapter 8) and four baselines on the same test items, LLM judge; then ``DIR/report.md`` and
its plots are written.

Caching. Each stage has a fingerprint: the sha256 of its inputs, i.e. its name, the
profile, the device type, the torch version, the chapter settings it reads, the
``RunPlan`` fields it uses, the registry hashes of its data files, the sha256 of the
chapter modules it runs (and of ``llm_course/stages.py``), what it checks at each run (the
judge server) and, for each stage it builds on, that stage's fingerprint and the sha256
of the files it produced. Its result is stored in ``DIR/stages/<name>.json`` with that
fingerprint and the sha256 of the files it wrote (e.g. ``DIR/instruct-model/``, or
course-base in the course cache). A later run reuses a stage whose fingerprint matches
and whose files are intact; a change anywhere upstream changes the fingerprints
downstream. A stage whose result asks for it (a judge that did not answer) runs again
at the next run. ``fresh=True`` (``--fresh``) runs every stage again. Models that
chapter 5 keeps in the course cache (course-base, validated against its recipe) are
reused either way.

Progress bars. When standard error is not a terminal (a log file, CI), the chapters'
tqdm bars write one line per tenth of the way instead of carriage-return frames.

Interruptions. A stage's old record is deleted before it runs, its files are written
atomically and its record last, so Ctrl-C leaves the finished stages intact and nothing
half-done that looks done; the next run resumes at the interrupted stage.
"""

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from llm_course.stages import (
    INSTRUCT_MODEL_DIR,
    PLANS,
    RESPONSES_FILE,
    STAGES,
    PipelineError,
    RunContext,
    judge_line,
    read_run_model,
    read_run_tokenizer,
)
from shared.config import PROFILES, settings
from shared.data import REGISTRY, entries_for, fetch, sha256_of
from shared.export import REPO_ROOT
from shared.files import atomic_write
from shared.progress import log_friendly_progress
from shared.runtime import get_device

REPORT = "report.md"

__all__ = [
    "PipelineError",
    "run_pipeline",
    "default_out",
    "ensure_writable",
    "read_run_model",
    "read_run_tokenizer",
    "INSTRUCT_MODEL_DIR",
]


def default_out(profile):
    """``runs/<profile>`` in the course folder: re-running the same command reuses its stages."""
    return REPO_ROOT / "runs" / profile


def ensure_writable(out):
    """Create ``out`` and prove that a file can be written in it, before any work is done."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PipelineError(f"cannot write the run to {out}: {exc.strerror or exc}. Choose a writable --out.") from None
    return out


def _plain(value):
    """The JSON form of what recipes hold besides JSON types: dataclasses and sets."""
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def _json(value, **kwargs):
    return json.dumps(value, default=_plain, sort_keys=True, **kwargs)


def _source_sha256(module_name):
    return sha256_of(Path(importlib.util.find_spec(module_name).origin))


def _torch_version():
    import torch

    return torch.__version__


def stage_inputs(stage, ctx, fingerprints):
    """Everything a stage's result depends on, as JSON (what its fingerprint hashes).

    fingerprints: {stage name: ``output_id`` of its record} for the stages run before.
    """
    data = stage.data(ctx.profile) if callable(stage.data) else stage.data
    inputs = {
        "stage": stage.name,
        "profile": ctx.profile,
        "device": ctx.device.type,
        "torch": _torch_version(),
        "recipe": stage.recipe(ctx.profile),
        "plan": {field: getattr(ctx.plan, field) for field in stage.plan_fields},
        "data": {name: REGISTRY[name].sha256 or REGISTRY[name].relpath for name in data},
        "sources": {module: _source_sha256(module) for module in stage.chapters + ("llm_course.stages",)},
        "depends_on": {name: fingerprints[name] for name in stage.deps},
    }
    if stage.live is not None:
        inputs["live"] = stage.live(ctx)
    return json.loads(_json(inputs))  # as it reads back from a record


def fingerprint(inputs):
    return hashlib.sha256(_json(inputs).encode()).hexdigest()


def output_id(record):
    """What a later stage builds on: the record's fingerprint and the sha256 of the files it produced.

    A stage redone with the same inputs but different files (e.g. weights trained anew on
    another machine) thus changes the fingerprints of the stages after it.
    """
    if not record.get("artifacts"):
        return record["fingerprint"]
    return hashlib.sha256(_json([record["fingerprint"], sorted(record["artifacts"].values())]).encode()).hexdigest()


def _record_path(out, name):
    return Path(out) / "stages" / f"{name}.json"


def load_record(out, name):
    """A stage's stored record, or None when there is none (or it is unreadable)."""
    try:
        return json.loads(_record_path(out, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def rerun_reason(record, inputs, out, fresh):
    """Why a stage must run, or None when its stored record can be reused."""
    if fresh:
        return "--fresh"
    if record is None:
        return "no record yet"
    if record.get("fingerprint") != fingerprint(inputs):
        before = record.get("inputs", {})
        changed = [
            key if key != "live" else _live_change(before.get("live") or {}, inputs["live"])
            for key in inputs
            if before.get(key) != inputs[key]
        ]
        return f"changed: {', '.join(changed) or 'inputs'}"
    for rel, sha in record.get("artifacts", {}).items():
        path = out / rel  # rel may be absolute (a file in the course cache)
        if not path.is_file():
            return f"file {rel} is missing"
        if sha256_of(path) != sha:
            return f"file {rel} was altered since the stage ran"
    retry = record.get("result", {}).get("retry")  # e.g. the judge did not answer: worth asking again
    return retry or None


def _live_change(before, now):
    """What a stage found different at this run, e.g. "answers False -> True" for the judge server."""
    return ", ".join(f"{key} {before.get(key)} -> {now[key]}" for key in now if before.get(key) != now[key])


def fetch_all(profile):
    """Every data file the profile needs, verified up front: a missing one fails before any work."""
    for entry in entries_for(profile):
        fetch(entry)


def run_pipeline(profile=None, out=None, fresh=False, plan=None):
    """Run (or reuse) every stage, then write the report; return the report's path.

    profile: "quick" or "book" (default: ``LLM_COURSE_PROFILE``); out: the run folder
    (default ``runs/<profile>``); plan: a ``RunPlan`` (default ``PLANS[profile]``).
    Raises ProfileError, PipelineError (e.g. an unwritable ``out``), FetchError or ChecksumError.
    """
    cfg = settings(profile)
    out = ensure_writable(out if out is not None else default_out(cfg.profile))
    ctx = RunContext(cfg.profile, out, plan or PLANS[cfg.profile], get_device())
    print(f"llm-course run: profile {ctx.profile}, device {ctx.device}, folder {out}", flush=True)
    fetch_all(ctx.profile)
    chapters = dict.fromkeys(module for stage in STAGES for module in stage.chapters)
    with log_friendly_progress(chapters):
        records, timings = _run_stages(ctx, fresh)

    total = len(STAGES) + 1
    start = time.perf_counter()
    report = write_report(ctx, records, timings)
    print(f"[{total}/{total}] {'report':<14} {report}   ({time.perf_counter() - start:.1f} s)")
    print(f"chat with the result: llm-course chat --run {out}")
    print("chat with SmolLM2-135M-Instruct (chapter 8): llm-course chat --model smollm2")
    return report


def _run_stages(ctx, fresh):
    """Run or reuse each stage in order, printing one line per stage; return (records, timings)."""
    out, total = ctx.out, len(STAGES) + 1
    fingerprints, records, timings = {}, {}, {}
    for number, stage in enumerate(STAGES, start=1):
        label = f"[{number}/{total}] {stage.name:<14}"
        inputs = stage_inputs(stage, ctx, fingerprints)
        record = load_record(out, stage.name)
        reason = rerun_reason(record, inputs, out, fresh)
        if reason is None:
            timings[stage.name] = None
            print(f"{label} {stage.summary(record['result'])}   (cached)", flush=True)
        else:
            print(f"{label} {stage.doing} ({reason}) ...", flush=True)
            record = _run_stage(stage, ctx, inputs, label)
            timings[stage.name] = record["seconds"]
            print(f"{label} {stage.summary(record['result'])}   ({record['seconds']:.1f} s)", flush=True)
        fingerprints[stage.name] = output_id(record)
        records[stage.name] = record
    return records, timings


def _run_stage(stage, ctx, inputs, label):
    """Run one stage and store its record (atomically, after its files); return the record."""
    path = _record_path(ctx.out, stage.name)
    path.unlink(missing_ok=True)  # a stage being redone must not look done
    start = time.perf_counter()
    try:
        result = stage.run(ctx)
    except KeyboardInterrupt:
        print(
            f"\n{label} interrupted: the finished stages are kept in {ctx.out / 'stages'}; "
            "run the same command again to resume.",
            file=sys.stderr,
        )
        raise
    seconds = time.perf_counter() - start
    artifacts = {rel: sha256_of(ctx.out / rel) for rel in result.pop("artifacts", [])}
    record = {
        "stage": stage.name,
        "fingerprint": fingerprint(inputs),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": seconds,
        "inputs": inputs,
        "artifacts": artifacts,
        "result": json.loads(json.dumps(result, default=_plain)),
    }  # as it reads back
    atomic_write(path, json.dumps(record, indent=2, ensure_ascii=False))
    return record


# --- the report ---------------------------------------------------------------------------------


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def _pct(x):
    return f"{100 * x:.1f} %"


def _one_line(text, limit=300):
    text = " ".join(str(text).split())
    return (text[:limit] + " ...") if len(text) > limit else (text or "(empty)")


def _save_figure(fig, path):
    """Render ``fig`` with matplotlib's Agg canvas (no display needed) and write the PNG atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write(path, buffer.getvalue())
    return path.name


def _plots(out, records):
    """The report's PNGs beside it; returns {purpose: file name}."""
    from matplotlib.figure import Figure

    spam, instruct, scores = (
        records["spam"]["result"],
        records["instruct"]["result"],
        records["instruct-eval"]["result"],
    )
    all_scores = {**scores["scores"], **records["smollm2-eval"]["result"]["scores"]}
    names = {}

    fig = Figure(figsize=(9, 3.4))
    history = spam["history"]
    for ax, metric, title in zip(fig.subplots(1, 2), ("loss", "acc"), ("loss", "accuracy")):
        for split in ("train", "val"):
            ax.plot(
                history["examples_seen"],
                history[f"{split}_{metric}"],
                marker=".",
                label="training" if split == "train" else "validation",
            )
        ax.set_xlabel("examples seen")
        ax.set_title(f"spam classifier: {title} (estimates during training)")
        ax.legend()
    names["spam_curves"] = _save_figure(fig, out / "spam_curves.png")

    fig = Figure(figsize=(4.4, 3.8))
    ax = fig.subplots()
    counts, classes = spam["confusion"], spam["class_names"]
    ax.imshow(counts, cmap="Blues")
    top = max(max(row) for row in counts)
    for row, values in enumerate(counts):
        for col, count in enumerate(values):
            ax.text(
                col, row, count, ha="center", va="center", fontsize=14, color="white" if count > top / 2 else "black"
            )
    ax.set_xticks(range(len(classes)), [f"predicted {c}" for c in classes])
    ax.set_yticks(range(len(classes)), [f"true {c}" for c in classes])
    ax.set_title("spam classifier, test set")
    names["spam_confusion"] = _save_figure(fig, out / "spam_confusion.png")

    fig = Figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    history = instruct["history"]
    ax.plot(history["steps"], history["train_losses"], marker=".", label="training")
    ax.plot(history["steps"], history["val_losses"], marker=".", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("instruction fine-tuning")
    ax.legend()
    names["instruct_loss"] = _save_figure(fig, out / "instruct_loss.png")

    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    metrics = list(scores["scores"]["base"])
    width = 0.8 / len(all_scores)
    for number, (model, values) in enumerate(all_scores.items()):
        bars = ax.bar(
            [i + (number - (len(all_scores) - 1) / 2) * width for i in range(len(metrics))],
            [values[m] for m in metrics],
            width=width,
            label=model,
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=7)  # small scores stay readable
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_ylim(0, 1)
    ax.set_title(f"test instructions ({scores['examples']} answers)")
    ax.legend(fontsize=8)
    names["instruction_scores"] = _save_figure(fig, out / "instruction_scores.png")
    return names


def _environment(device):
    import torch

    name = str(device)
    if device.type == "cuda":
        name += f" ({torch.cuda.get_device_name(device)})"
    return [
        ("device", name),
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("tiktoken", importlib.metadata.version("tiktoken")),
    ]


def _judge_lines(judge):
    """The judge's sentence in the report, and one example message per reason an answer was skipped."""
    if "skipped" in judge:
        return [f"LLM judge: {judge_line(judge)}."]
    model = f"{judge['server']['model']} at {judge['server']['url']}"
    lines = [f"LLM judge (Ollama, {model}): {judge_line(judge)}."]
    for kind, message in judge["examples"].items():
        lines += ["", f"- {kind}, e.g.: {_one_line(message, 200)}"]
    if judge.get("retry"):
        lines += ["", "The next `llm-course run` asks the judge again."]
    return lines


def write_report(ctx, records, timings):
    """Write ``report.md`` and its plots into the run folder, from the stage records alone."""
    out, plan = ctx.out, ctx.plan
    plots = _plots(out, records)
    r = {name: record["result"] for name, record in records.items()}
    lines = [
        f"# Course run report: profile `{ctx.profile}`",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M')} by `llm-course run` into `{out}`. "
        f"Profile `{ctx.profile}`: {PROFILES[ctx.profile]}.",
        "",
    ]
    lines += _table(["setting", "value"], _environment(ctx.device) + [("profile", ctx.profile)])

    lines += [
        "",
        "## Stages",
        "",
        "A cached stage was reused from `stages/<name>.json` (its inputs were unchanged).",
        "",
    ]
    rows = []
    for number, name in enumerate(records, start=1):
        this_run = "cached" if timings[name] is None else f"{timings[name]:.1f} s"
        rows.append((number, name, this_run, f"{records[name]['seconds']:.1f} s", records[name]["finished"]))
    lines += _table(["#", "stage", "this run", "compute time", "computed at"], rows)

    tok = r["tokenizer"]
    lines += [
        "",
        "## 1. Tokenizer",
        "",
        f"Chapter 2's `BPETokenizer.from_gpt2()` and tiktoken's `gpt2` encoding on {tok['characters']:,} "
        f"characters (The Verdict + edge cases): {tok['tokens']:,} tokens, ids identical: "
        f"{'yes' if tok['identical_ids'] else 'no'}, exact round trip: {'yes' if tok['round_trip'] else 'no'}.",
    ]

    lines += ["", "## 2. Base model", ""]
    rows = [(m["name"], f"{m['parameters']:,}", m["source"]) for m in r["base"]["models"]]
    lines += _table(["model", "parameters", "source"], rows)
    for m in r["base"]["models"]:
        if "steps" in m:
            lines += [
                "",
                f"{m['name']}: pretrained for {m['steps']:,} steps on {m['tokens_seen']:,} tokens; "
                f"final training loss {m['final_train_loss']:.3f}, validation loss {m['final_val_loss']:.3f}.",
            ]

    ev = r["base-eval"]
    lines += [
        "",
        "## 3. Base model evaluation",
        "",
        "Cross-entropy (nats per token) on the validation part of `course_base_texts()`, against a unigram "
        "model on the same tokens (every token predicted by its training frequency). Bits per byte compare "
        "models whose tokenizers differ.",
        "",
    ]
    rows = [
        (
            m["name"],
            f"{m['val_loss']:.3f}",
            f"{m['unigram_loss']:.3f}",
            f"{m['unigram_loss'] - m['val_loss']:.3f}",
            f"{m['bits_per_byte']:.3f}",
            f"{m['perplexity']:,.1f}",
            f"{m['val_tokens']:,}",
            f"{m['eval_tokens_per_s']:,.0f}",
            f"{m['generate_tokens_per_s']:,.0f}",
        )
        for m in ev["models"]
    ]
    lines += _table(
        [
            "model",
            "validation loss",
            "unigram baseline",
            "gap",
            "bits per byte",
            "perplexity",
            "validation tokens",
            "evaluation tokens/s",
            "generation tokens/s",
        ],
        rows,
    )
    lines += ["", f"Samples (temperature 0.8, top-k 40, {plan.sample_tokens} tokens, seed {plan.seed}):", ""]
    for m in ev["models"]:
        for sample in m["samples"]:
            lines += [
                f"- {m['name']}, prompt {sample['prompt']!r}:",
                "",
                "  ```text",
                *[f"  {line}" for line in (sample["prompt"] + sample["continuation"]).splitlines()],
                "  ```",
            ]

    spam = r["spam"]
    classes = spam["class_names"]
    lines += [
        "",
        "## 4. Spam classifier",
        "",
        f"{spam['base_model']} fine-tuned as in chapter 6; {spam['examples']['train']:,} training, "
        f"{spam['examples']['validation']:,} validation and {spam['examples']['test']:,} test messages, "
        f"padded to {spam['max_length']} tokens.",
        "",
    ]
    lines += _table(["split", "accuracy"], [(split, _pct(accuracy)) for split, accuracy in spam["accuracy"].items()])
    lines += ["", "Confusion matrix on the test set:", ""]
    lines += _table(
        [""] + [f"predicted {c}" for c in classes], [[f"true {c}"] + row for c, row in zip(classes, spam["confusion"])]
    )
    lines += ["", f"![confusion matrix]({plots['spam_confusion']})", "", f"![training curves]({plots['spam_curves']})"]

    ins = r["instruct"]
    lines += [
        "",
        "## 5. Instruction fine-tuning",
        "",
        f"Chapter 7's `finetune_instruction_model`: {ins['steps']:,} steps, final training loss "
        f"{ins['history']['train_losses'][-1]:.3f}, validation loss {ins['history']['val_losses'][-1]:.3f}. "
        f"Saved in `{ins['model_dir']}/`.",
        "",
        f"![instruction fine-tuning loss]({plots['instruct_loss']})",
    ]

    ie, ref = r["instruct-eval"], r["smollm2-eval"]
    scores = {**ie["scores"], **ref["scores"]}
    lines += [
        "",
        "## 6. Instruction evaluation",
        "",
        f"Greedy answers (at most {ie['max_new_tokens']} tokens) to {ie['examples']} test instructions, "
        "scored against the reference answers: the base model and its fine-tuned version (chapter 7), "
        "chapter 7's four baselines that need no model (most common opening: the same two words for every "
        "item; echo: the question itself; input, else instruction; nearest training example: the answer to "
        "the most similar training question), and SmolLM2-135M-Instruct, a pretrained "
        "assistant run on chapter 8's code. A model that does not beat the baselines has learned little "
        "that these word-overlap metrics can see.",
        "",
    ]
    lines += _table(
        ["metric", *scores],
        [(metric, *(f"{values[metric]:.3f}" for values in scores.values())) for metric in ie["scores"]["base"]],
    )
    if "smollm2_skipped" in ref:
        lines += ["", f"SmolLM2-135M-Instruct: skipped ({ref['smollm2_skipped']})."]
    lines += [
        "",
        *_judge_lines(r["instruct-judge"]),
        "",
        f"![instruction scores]({plots['instruction_scores']})",
        "",
        "### Example answers",
    ]
    answers = json.loads((out / RESPONSES_FILE).read_text(encoding="utf-8"))
    smol_answers = ref.get("smollm2_examples", [])
    for number, entry in enumerate(answers[: plan.report_examples]):
        lines += ["", f"- **Instruction:** {_one_line(entry['instruction'])}"]
        if entry.get("input"):
            lines += [f"  **Input:** {_one_line(entry['input'])}"]
        lines += [
            f"  - reference: {_one_line(entry['output'])}",
            f"  - base: {_one_line(entry['base_response'])}",
            f"  - fine-tuned: {_one_line(entry['model_response'])}",
        ]
        if number < len(smol_answers):
            lines += [f"  - SmolLM2-135M-Instruct: {_one_line(smol_answers[number])}"]
    lines += [
        "",
        f"All answers: `{RESPONSES_FILE}`.",
        "",
        f"Chat with the result: `llm-course chat --run {out}`",
        "",
        "Chat with SmolLM2-135M-Instruct (chapter 8): `llm-course chat --model smollm2`",
    ]
    return atomic_write(out / REPORT, "\n".join(lines) + "\n")
