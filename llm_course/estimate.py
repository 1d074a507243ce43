"""``llm-course run --dry-run``: what a run will do, download and (for ``book``) how long it takes.

Nothing is run. The counts of work (optimizer steps, evaluation batches, prompts, generated
tokens) are computed from the chapters' settings, the ``RunPlan`` and the sizes of the
data files; the seconds per unit come from a rehearsal (``llm_course.rehearsal``), measured
on the machine its ``book_estimate.json`` names. Estimate = each stage's fixed seconds
(loading, saving, data) + the sum of count x seconds per unit.
"""

import json
import math
import re
from pathlib import Path

from ch02_tokenization import tokenization as ch02
from ch04_gpt_model import gpt_model as ch04
from ch05_pretraining import pretraining as ch05
from ch06_classification import classification as ch06
from ch07_instruction import instruction as ch07
from llm_course.stages import PLANS, STAGES, base_models, capped
from shared.config import PROFILES, settings
from shared.data import entries_for, local_copy

SPAM_EVAL_FREQ, SPAM_EVAL_ITER = 20, 5  # chapter 6's finetune_spam_classifier: an estimate every 20 steps, 5 batches
INSTRUCT_EVAL_FREQ, INSTRUCT_EVAL_ITER = 20, 5  # chapter 7's finetune defaults (eval_freq, eval_iter)
SMOLLM2_LABEL = None  # chapter 8's model: its units are matched by kind alone (the stage runs one model)


class MissingData(RuntimeError):
    """A data file the counts are computed from is not on this machine yet."""


def _size_label(name):
    """The model size in a GPT_CONFIGS name, e.g. "355M" in "gpt2-medium (355M)"."""
    found = re.search(r"\((\d+M)\)", name)
    return found.group(1) if found else None


def _text(name):
    path = local_copy(name)
    if path is None or path.suffix == ".whl":
        raise MissingData(
            f"the data file '{name}' is not on this machine: `llm-course fetch {name}` "
            "(or set LLM_COURSE_MIRROR), then ask again"
        )
    return path.read_text(encoding="utf-8")


def _batches(n_items, batch_size, drop_last=False):
    return n_items // batch_size if drop_last else math.ceil(n_items / batch_size)


def _generation(counts, label, sequences, max_new_tokens):
    """A generation of up to ``max_new_tokens`` tokens for each sequence: one prompt pass, then a pass per token."""
    counts[("prompt", label)] = counts.get(("prompt", label), 0) + sequences
    counts[("token", label)] = counts.get(("token", label), 0) + sequences * (max_new_tokens - 1)


def _training(counts, label, steps, eval_freq, eval_iter, loaders, final_eval):
    """``steps`` optimizer steps, and the estimates of ``eval_iter`` batches of each loader along the way."""
    evals = steps // eval_freq + (final_eval and steps % eval_freq != 0)
    counts[("train step", label)] = steps
    counts[("eval batch", label)] = counts.get(("eval batch", label), 0) + evals * sum(
        min(eval_iter, n) for n in loaders
    )


def base_eval_counts(profile, plan):
    for name in ch05.COURSE_BASE_RECIPE.texts:
        _text(name)  # on this machine: course_base_texts() will not download
    _, val_text = ch05.course_base_texts()
    counts = {}
    for name in base_models(profile):
        label = _size_label(name)
        config = ch05.course_base_config() if name == "course-base" else ch04.GPT_CONFIGS[name]
        window = min(plan.eval_context or config.context_length, config.context_length)
        n = _batches(len(ch02.GPTDataset(val_text, window, stride=window)), plan.eval_batch_size)
        counts[("eval batch", label)] = n if plan.eval_batches is None else min(plan.eval_batches, n)
        _generation(counts, label, len(plan.sample_prompts), plan.sample_tokens)
    return counts


def spam_counts(profile, plan):
    recipe = capped(ch06.SPAM_SETTINGS[profile], plan)
    splits = _spam_split_sizes()
    loaders = {split: _batches(n, recipe.batch_size, drop_last=split == "train") for split, n in splits.items()}
    steps = recipe.num_epochs * loaders["train"]
    if recipe.max_steps is not None:
        steps = min(steps, recipe.max_steps)
    counts = {}
    label = _size_label(recipe.base_model)
    # during training: loss and accuracy on the training and validation loaders, every 20 steps
    _training(
        counts,
        label,
        steps,
        SPAM_EVAL_FREQ,
        SPAM_EVAL_ITER,
        2 * [loaders["train"], loaders["validation"]],
        final_eval=False,
    )
    # afterwards: the accuracy on each split, and the test predictions for the confusion matrix
    final = [loaders["train"], loaders["validation"], loaders["test"], loaders["test"]]
    n = plan.spam_eval_batches
    counts[("eval batch", label)] += sum(b if n is None else min(n, b) for b in final)
    return counts


def _spam_split_sizes():
    """Messages per split, as chapter 6's prepare_spam_splits cuts them (without writing the files)."""
    _text("sms-spam-collection")
    splits = ch06.split_dataset(ch06.balance_classes(ch06.load_sms_spam(), seed=123), seed=123)
    return {name: len(split) for name, split in zip(ch06.SPLIT_NAMES, splits)}


def _instruction_data():
    _text("instruction-data")
    return ch07.load_instruction_data()


def instruct_counts(profile, plan):
    recipe = capped(ch07.FINETUNE_SETTINGS[profile], plan)
    train, _, val = ch07.split_entries(_instruction_data(), seed=123)
    loaders = [_batches(len(train), recipe.batch_size, drop_last=True), _batches(len(val), recipe.batch_size)]
    steps = recipe.num_epochs * loaders[0]
    if recipe.max_steps is not None:
        steps = min(steps, recipe.max_steps)
    counts = {}
    _training(
        counts, _size_label(recipe.base_model), steps, INSTRUCT_EVAL_FREQ, INSTRUCT_EVAL_ITER, loaders, final_eval=True
    )
    return counts


def _test_item_count(profile, plan):
    _, test, _ = ch07.split_entries(_instruction_data(), seed=123)
    n = len(test[: plan.instruction_examples])
    return n, plan.max_new_tokens or ch07.FINETUNE_SETTINGS[profile].max_new_tokens


def instruct_eval_counts(profile, plan):
    n, max_new_tokens = _test_item_count(profile, plan)
    counts = {}
    _generation(counts, _size_label(ch07.FINETUNE_SETTINGS[profile].base_model), 2 * n, max_new_tokens)  # base, tuned
    return counts


def smollm2_counts(profile, plan):
    n, max_new_tokens = _test_item_count(profile, plan)
    counts = {}
    _generation(counts, SMOLLM2_LABEL, n, max_new_tokens)
    return counts


COUNTS = {
    "base-eval": base_eval_counts,
    "spam": spam_counts,
    "instruct": instruct_counts,
    "instruct-eval": instruct_eval_counts,
    "smollm2-eval": smollm2_counts,
}


def unit_counts(profile, plan=None):
    """{stage: {(kind, model size label): count}} of a run; generated tokens are an upper bound.

    The stages not listed (tokenizer, base, the judge) have only fixed costs.
    """
    plan = plan or PLANS[profile]
    return {stage: count(profile, plan) for stage, count in COUNTS.items()}


def _per_unit(units, kind, label):
    """Mean seconds per unit of ``kind`` (and model ``label``; None: any) in a stage's measured units."""
    found = [
        u for name, u in units.items() if name.split(", ")[0] == kind and (label is None or name == f"{kind}, {label}")
    ]
    count = sum(u["count"] for u in found)
    return sum(u["seconds"] for u in found) / count if count else None


def estimate(figures, counts):
    """Per stage: (fixed seconds, [(unit, count, seconds per unit)], total seconds) for a full run."""
    rows = {}
    for stage in STAGES:
        measured = figures["stages"].get(stage.name)
        if measured is None:
            raise ValueError(f"the rehearsal figures have no stage {stage.name!r}: rehearse again")
        units, total = [], measured["fixed_seconds"]
        for (kind, label), count in counts.get(stage.name, {}).items():
            each = _per_unit(measured["units"], kind, label)
            if each is None:
                raise ValueError(f"the rehearsal measured no {kind!r} for the {stage.name} stage: rehearse again")
            units.append((f"{kind}, {label}" if label else kind, count, each))
            total += count * each
        rows[stage.name] = (measured["fixed_seconds"], units, total)
    return rows


def _duration(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _bytes(n):
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def download_lines(profile):
    """One line per data file of the profile: where it is, or what its download will weigh."""
    from llm_course.rehearsal import gpt2_file_size

    cfg, lines, to_fetch = settings(profile), [], 0
    sizes = {entry: ch04.GPT_CONFIGS[name] for name, entry in ch05.GPT2_WEIGHTS.items()}
    for entry in entries_for(profile):
        found = local_copy(entry.name)
        if found is not None:
            where = "course cache" if found.is_relative_to(cfg.cache_dir) else "mirror"
            lines.append(f"  {entry.name:<22} {_bytes(found.stat().st_size):>9}  on this machine ({where})")
        elif entry.name in sizes:
            size = gpt2_file_size(sizes[entry.name])
            to_fetch += size
            lines.append(f"  {entry.name:<22} {_bytes(size):>9}  to download ({entry.urls[0]})")
        else:
            lines.append(f"  {entry.name:<22} {'(small)':>9}  to download ({entry.urls[0]})")
    return lines, to_fetch


def dry_run(profile, estimate_file=None):
    """The text ``llm-course run --dry-run`` prints: stages, downloads, counts and (book) the time."""
    from llm_course.rehearsal import COMMITTED_ESTIMATE

    plan = PLANS[profile]
    lines = [
        f"llm-course run --profile {profile} (dry run: nothing is run or downloaded)",
        f"profile {profile}: {PROFILES[profile]}",
        "",
        "stages:",
    ]
    lines += [f"  {number}. {stage.name:<14} {stage.doing}" for number, stage in enumerate(STAGES, start=1)]
    files, to_fetch = download_lines(profile)
    lines += ["", f"data ({_bytes(to_fetch)} to download):" if to_fetch else "data:", *files]
    try:
        counts = unit_counts(profile, plan)
    except MissingData as exc:
        return "\n".join(lines + ["", f"no time estimate: {exc}"])
    lines += ["", "work (generated tokens: at most):"]
    lines += [
        f"  {stage:<14} "
        + ", ".join(f"{n:,} x {kind}" + (f" ({label})" if label else "") for (kind, label), n in c.items())
        for stage, c in counts.items()
    ]
    if profile != "book":
        lines += [
            "",
            "time: not estimated (the rehearsal figures are for book); the work above is what a cold run does, "
            "and a second run reuses every finished stage",
        ]
        return "\n".join(lines)
    path = Path(estimate_file) if estimate_file else COMMITTED_ESTIMATE
    try:
        figures = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return "\n".join(
            lines
            + [
                "",
                f"no time estimate: cannot read the rehearsal figures {path} ({exc}); "
                "make them with `llm-course run --profile book --rehearse --out DIR`",
            ]
        )
    rows = estimate(figures, counts)
    m = figures["machine"]
    lines += [
        "",
        f"time estimate from a rehearsal on {m['cpu']} ({m['cores']} cores, {m['torch_threads']} torch "
        f"thread{'s' * (m['torch_threads'] != 1)}, torch {m['torch']}, load average {m['load_average'][0]}), {figures['measured']} "
        f"({path.name}):",
    ]
    for stage, (fixed, units, total) in rows.items():
        work = "; ".join(f"{n:,} x {unit} at {each:.2f} s" for unit, n, each in units)
        lines.append(f"  {stage:<14} {_duration(total):>8}   {work + ' + ' if work else ''}{fixed:.0f} s fixed")
    total = sum(row[2] for row in rows.values())
    lines += [
        f"  {'total':<14} {_duration(total):>8}   plus the download",
        "",
        "Generated tokens are counted up to max_new_tokens (an upper bound: answers that end earlier "
        "take less). The judge stage is counted as skipped (no Ollama server). Another CPU scales all of "
        "this: rehearse on yours with `llm-course run --profile book --rehearse --out DIR`, then "
        "`llm-course run --profile book --dry-run --estimate DIR/book_estimate.json`.",
    ]
    return "\n".join(lines)
