"""The stages of ``llm-course run``: each one calls chapter code, nothing else.

A stage is a function ``run(ctx) -> result`` (a JSON-able dict) plus what its result
depends on: the chapter settings it reads (``recipe``), the chapter modules whose code it
runs, the data files it reads, the stages it builds on and the ``RunPlan`` fields it
uses, and what it checks afresh at each run (``live``: e.g. whether a judge server
answers). ``llm_course.pipeline`` turns those into a fingerprint and caches the result.

Chapters are imported like any reader's script imports them, by their public names;
settings are read through the module (``ch06.SPAM_SETTINGS``), so that a test can shrink
a chapter's recipe with ``monkeypatch``.
"""

import dataclasses
import importlib.metadata
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ch02_tokenization import tokenization as ch02
from ch05_pretraining import pretraining as ch05
from ch06_classification import classification as ch06
from ch07_instruction import instruction as ch07
from ch08_modern_llm import modern_llm as ch08
from llm_course import PipelineError
from llm_course.judge import describe_failures, find_model, judge_all, probe_ollama, worth_retrying
from shared import GPT_CONFIGS
from shared.data import REGISTRY, FetchError, fetch, gpt2_encoding, local_copy
from shared.progress import progress_class
from shared.runtime import set_seed

CH02, CH03, CH04 = "ch02_tokenization.tokenization", "ch03_attention.attention", "ch04_gpt_model.gpt_model"
CH05, CH06, CH07 = "ch05_pretraining.pretraining", "ch06_classification.classification", "ch07_instruction.instruction"
CH08 = "ch08_modern_llm.modern_llm"
SMOLLM2 = "smollm2-135m-instruct"  # chapter 8's pretrained assistant, in the data registry
MODEL_CHAPTERS = (CH02, CH03, CH04, CH05)  # the code behind a GPTModel, its data loaders and generate
INSTRUCT_MODEL_DIR = "instruct-model"  # inside the run folder: what `llm-course chat --run` opens
RESPONSES_FILE = "instruction_responses.json"


@dataclass(frozen=True)
class RunPlan:
    """How much the pipeline measures, per profile (the chapters' recipes say how models are trained)."""

    tokenizer_chars: int = 20_000  # characters of The Verdict both tokenizers encode
    eval_batches: int | None = None  # validation batches for the base model's loss (None: all)
    eval_batch_size: int = 8
    eval_context: int | None = None  # tokens per validation window (None: the model's context length)
    sample_prompts: tuple[str, ...] = ("ROMEO:\n", "I had always thought")
    sample_tokens: int = 40  # tokens per sample generation
    instruction_examples: int | None = None  # test instructions answered (None: the whole test split)
    max_new_tokens: int | None = None  # longest answer (None: the chapter's FINETUNE_SETTINGS value)
    report_examples: int = 3  # answers shown in the report
    max_steps: int | None = None  # optimizer steps per fine-tuning (None: the chapter recipe's)
    spam_eval_batches: int | None = None  # batches per split for the spam classifier's accuracy (None: all)
    seed: int = 123
    judge_url: str | None = None  # the Ollama server that judges (None: chapter 7's OLLAMA_URL)
    judge_model: str = "llama3"  # chapter 7's judge model
    judge_timeout: float = 120.0  # seconds one judge query may take before it is skipped


PLANS = {"quick": RunPlan(), "book": RunPlan(eval_batch_size=4)}


@dataclass
class RunContext:
    """What every stage gets: the profile, the run folder, the plan and the device."""

    profile: str
    out: Path
    plan: RunPlan
    device: object  # torch.device


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: how to run it, and what its result depends on (for its fingerprint)."""

    name: str
    doing: str  # shown while the stage runs
    run: Callable[[RunContext], dict]
    summary: Callable[[dict], str]  # one line from the result
    recipe: Callable[[str], object] = lambda profile: None  # the chapter settings it reads
    chapters: tuple[str, ...] = ()  # modules whose source is fingerprinted
    data: tuple[str, ...] | Callable[[str], tuple] = ()  # registry files it reads (or profile -> them)
    deps: tuple[str, ...] = ()  # stages whose results it builds on
    plan_fields: tuple[str, ...] = ()
    live: Callable[[RunContext], object] | None = None  # what it checks at each run (part of its fingerprint)


def base_models(profile):
    """The pretrained models the profile fine-tunes (chapter 6's, then chapter 7's), once each."""
    names = [ch06.SPAM_SETTINGS[profile].base_model, ch07.FINETUNE_SETTINGS[profile].base_model]
    return list(dict.fromkeys(names))


def base_recipe(profile):
    """What determines each base model: course-base's recipe, or a GPT-2 size and its weights file."""
    return {
        name: ch05.COURSE_BASE_RECIPE
        if name == "course-base"
        else {"config": GPT_CONFIGS[name], "weights": ch05.GPT2_WEIGHTS[name]}
        for name in base_models(profile)
    }


def base_data(profile):
    return tuple(
        entry
        for name in base_models(profile)
        for entry in (list(ch05.COURSE_BASE_RECIPE.texts) if name == "course-base" else [ch05.GPT2_WEIGHTS[name]])
    )


def capped(recipe, plan):
    """A chapter's settings with the plan's step cap (``max_steps``), when the plan sets a lower one."""
    if plan.max_steps is None or (recipe.max_steps is not None and recipe.max_steps <= plan.max_steps):
        return recipe
    return dataclasses.replace(recipe, max_steps=plan.max_steps)


def _history(history, keys):
    """The plottable lists of a training history (drops the resume position and its RNG state)."""
    return {key: list(history[key]) for key in keys}


# --- 1. tokenizer -------------------------------------------------------------------------------

TOKENIZER_EDGE_CASES = "\n\nnaïve café, 東京 🙂  two  spaces,\ttab, 1,234.5 <|endoftext|> the end"


def check_tokenizer(ctx):
    """Chapter 2's BPETokenizer.from_gpt2() must give tiktoken's GPT-2 ids and decode back exactly."""
    text = fetch("the-verdict").read_text(encoding="utf-8")[: ctx.plan.tokenizer_chars] + TOKENIZER_EDGE_CASES
    special = {"<|endoftext|>"}
    tokenizer = ch02.BPETokenizer.from_gpt2()
    ours = tokenizer.encode(text, allowed_special=special)
    reference = gpt2_encoding().encode(text, allowed_special=special)
    if ours != reference:
        at = next((i for i, (a, b) in enumerate(zip(ours, reference)) if a != b), min(len(ours), len(reference)))
        raise PipelineError(
            f"chapter 2's BPETokenizer disagrees with tiktoken's gpt2 encoding at token {at}: "
            f"{ours[at : at + 5]} vs {reference[at : at + 5]} (of {len(reference)} tokens)"
        )
    if tokenizer.decode(ours) != text:
        raise PipelineError("chapter 2's BPETokenizer does not decode its ids back to the original text")
    return {"characters": len(text), "tokens": len(ours), "identical_ids": True, "round_trip": True}


# --- 2. base model ------------------------------------------------------------------------------


def pretrain_base(ctx):
    """Load every base model with chapter 5's load_pretrained (course-base is pretrained if not cached).

    course-base's files in the course cache are listed as the stage's artifacts, so a later
    run redoes this stage when one of them is deleted or altered.
    """
    models, artifacts = [], []
    for name in base_models(ctx.profile):
        before = ch05.read_model_info(ch05.course_base_dir()) if name == "course-base" else None
        start = time.perf_counter()
        model = ch05.load_pretrained(name)
        info = {
            "name": name,
            "parameters": sum(p.numel() for p in model.parameters()),
            "config": dataclasses.asdict(model.config),
            "seconds": time.perf_counter() - start,
        }
        if name == "course-base":
            meta = ch05.read_model_info(ch05.course_base_dir())
            info["source"] = "reused from the course cache" if meta == before else "pretrained now (chapter 5)"
            info.update({key: meta[key] for key in ("steps", "tokens_seen", "final_train_loss", "final_val_loss")})
            artifacts += [
                str(ch05.course_base_dir() / file) for file in ("model.safetensors", "config.json", "tokenizer.json")
            ]
        else:
            info["source"] = "OpenAI's GPT-2 weights (data registry)"
        models.append(info)
    return {"models": models, "artifacts": artifacts}


def _base_summary(result):
    return ", ".join(f"{m['name']} {m['parameters'] / 1e6:.1f} M parameters, {m['source']}" for m in result["models"])


# --- 3. base model evaluation -------------------------------------------------------------------


def base_eval_recipe(profile):
    """The validation text: course_base_texts() is cut from these files at this fraction."""
    recipe = ch05.COURSE_BASE_RECIPE
    return {"texts": list(recipe.texts), "val_fraction": recipe.val_fraction}


def base_eval_data(profile):
    return tuple(dict.fromkeys(base_eval_recipe(profile)["texts"] + list(base_data(profile))))


def evaluate_base(ctx):
    """Validation loss/perplexity vs the unigram baseline, bits per byte, throughput and samples (chapter 5).

    Each model is measured in its own tokens (course-base has its own vocabulary, GPT-2 its
    own), against a unigram baseline on the same tokens; bits per byte compares across tokenizers.
    """
    import torch

    plan = ctx.plan
    train_text, val_text = ch05.course_base_texts()
    val_bytes = len(val_text.encode("utf-8"))
    models = []
    for name in base_models(ctx.profile):
        tokenizer = ch05.load_tokenizer(name)
        train_ids, val_ids = (
            torch.tensor(tokenizer.encode(text, allowed_special={"<|endoftext|>"})) for text in (train_text, val_text)
        )
        model = ch05.load_pretrained(name).to(ctx.device).eval()
        baseline = ch05.unigram_baseline_loss(train_ids, val_ids, model.config.vocab_size)
        context = model.config.context_length
        window = min(plan.eval_context or context, context)
        loader = ch02.create_dataloader(
            val_ids,
            batch_size=plan.eval_batch_size,
            context_length=window,
            stride=window,
            shuffle=False,
            drop_last=False,
        )
        n_batches = len(loader) if plan.eval_batches is None else min(plan.eval_batches, len(loader))
        start = time.perf_counter()
        loss = ch05.calc_loss_loader(loader, model, ctx.device, num_batches=n_batches)
        eval_seconds = time.perf_counter() - start
        eval_tokens = sum(inputs.numel() for _, (inputs, _) in zip(range(n_batches), loader))
        samples, generated, gen_seconds = [], 0, 0.0
        for prompt in plan.sample_prompts:
            set_seed(plan.seed)
            idx = ch05.text_to_token_ids(prompt, tokenizer).to(ctx.device)
            start = time.perf_counter()
            out = ch05.generate(model, idx, plan.sample_tokens, context, temperature=0.8, top_k=40, use_cache=True)
            continuation = ch05.token_ids_to_text(out[0, idx.shape[1] :], tokenizer)  # .tolist() waits for the device
            gen_seconds += time.perf_counter() - start
            generated += out.shape[1] - idx.shape[1]
            samples.append({"prompt": prompt, "continuation": continuation})
        models.append(
            {
                "name": name,
                "val_loss": loss,
                "perplexity": math.exp(loss),
                "unigram_loss": baseline,
                "bits_per_byte": loss * len(val_ids) / (val_bytes * math.log(2)),
                "val_tokens": eval_tokens,
                "eval_tokens_per_s": eval_tokens / eval_seconds,
                "generate_tokens_per_s": generated / gen_seconds,
                "samples": samples,
            }
        )
    return {"models": models}


def _eval_summary(result):
    return "; ".join(
        f"{m['name']} val loss {m['val_loss']:.3f} (unigram {m['unigram_loss']:.3f}), "
        f"{m['generate_tokens_per_s']:,.0f} tokens/s"
        for m in result["models"]
    )


# --- 4. spam classifier -------------------------------------------------------------------------


def spam_recipe(profile):
    return {"settings": ch06.SPAM_SETTINGS[profile]}  # the rest of the recipe is chapter 6's code


def finetune_spam(ctx):
    """Chapter 6's recipe in one call (``finetune_spam_classifier``, as the notebook runs it), then the
    accuracy on each split and the confusion matrix on the test set."""
    recipe = capped(ch06.SPAM_SETTINGS[ctx.profile], ctx.plan)
    model, history, loaders = ch06.finetune_spam_classifier(ctx.profile, ctx.device, recipe=recipe)
    n = ctx.plan.spam_eval_batches
    accuracy = {
        split: ch06.calc_accuracy_loader(loader, model, ctx.device, num_batches=n) for split, loader in loaders.items()
    }
    predicted, true = ch06.predict_loader(model, itertools.islice(loaders["test"], n), ctx.device)
    return {
        "base_model": ch06.SPAM_SETTINGS[ctx.profile].base_model,
        "examples": {split: len(loader.dataset) for split, loader in loaders.items()},
        "max_length": loaders["train"].dataset.max_length,
        "accuracy": accuracy,
        "class_names": list(ch06.CLASS_NAMES),
        "confusion": ch06.confusion_matrix(predicted, true),
        "history": history,
    }


def _spam_summary(result):
    return f"test accuracy {100 * result['accuracy']['test']:.1f} %"


# --- 5. instruction fine-tuning -----------------------------------------------------------------


def finetune_instructions(ctx):
    """Chapter 7's finetune_instruction_model, saved into the run folder for `llm-course chat --run`."""
    recipe = capped(ch07.FINETUNE_SETTINGS[ctx.profile], ctx.plan)
    model, history = ch07.finetune_instruction_model(ctx.profile, ctx.device, recipe=recipe)
    folder = ctx.out / INSTRUCT_MODEL_DIR
    tokenizer = ch05.load_tokenizer(recipe.base_model)
    own_tokenizer = isinstance(tokenizer, ch02.BPETokenizer)  # course-base's; GPT-2's needs no copy
    ch05.save_model_folder(
        model,
        folder,
        tokenizer if own_tokenizer else None,
        profile=ctx.profile,
        base_model=ch07.FINETUNE_SETTINGS[ctx.profile].base_model,
        val_loss=history["val_losses"][-1],
    )
    return {
        "history": _history(history, ("steps", "tokens_seen", "train_losses", "val_losses")),
        "steps": history["position"]["step"],
        "model_dir": INSTRUCT_MODEL_DIR,
        "artifacts": [
            f"{INSTRUCT_MODEL_DIR}/{name}"
            for name in ("model.safetensors", "config.json") + (("tokenizer.json",) if own_tokenizer else ())
        ],
    }


def _instruct_summary(result):
    h = result["history"]
    return f"val loss {h['val_losses'][-1]:.3f} after {result['steps']} steps"


# --- 6. instruction evaluation ------------------------------------------------------------------


def _test_items(ctx):
    """The training items and the test items the run answers (chapter 7's split), and the answer length."""
    train_entries, test_entries, _ = ch07.split_entries(ch07.load_instruction_data(), seed=123)
    max_new_tokens = ctx.plan.max_new_tokens or ch07.FINETUNE_SETTINGS[ctx.profile].max_new_tokens
    return train_entries, test_entries[: ctx.plan.instruction_examples], max_new_tokens


def read_run_model(run_dir, device=None):
    """The instruction-tuned model a run saved in ``run_dir`` (eval mode), or None if there is none."""
    model = ch05.read_model_folder(Path(run_dir) / INSTRUCT_MODEL_DIR)
    return None if model is None else model.to(device or "cpu").eval()


def read_run_tokenizer(run_dir):
    """The tokenizer of that model: the one saved beside it (course-base's vocabulary), else GPT-2's."""
    path = Path(run_dir) / INSTRUCT_MODEL_DIR / "tokenizer.json"
    return ch02.BPETokenizer.load(path) if path.exists() else gpt2_encoding()


def evaluate_instructions(ctx):
    """Chapter 7, sections 7.7-7.8: answers of the base and the fine-tuned model to the test split, scored."""
    ft = ch07.FINETUNE_SETTINGS[ctx.profile]
    _, entries, max_new_tokens = _test_items(ctx)
    tokenizer = ch05.load_tokenizer(ft.base_model)
    tuned = read_run_model(ctx.out, ctx.device)
    if tuned is None:
        raise PipelineError(f"no intact fine-tuned model in {ctx.out / INSTRUCT_MODEL_DIR}: run again with --fresh")
    base = ch05.load_pretrained(ft.base_model).to(ctx.device).eval()
    answers = {
        "base": ch07.generate_responses(base, tokenizer, entries, max_new_tokens, desc="base model"),
        "fine-tuned": ch07.generate_responses(tuned, tokenizer, entries, max_new_tokens, desc="fine-tuned"),
    }
    references = [entry["output"] for entry in entries]
    scores = {
        model: ch07.score_responses(responses, references).mean().to_dict() for model, responses in answers.items()
    }
    ch07.save_responses(
        ctx.out / RESPONSES_FILE, entries, base_response=answers["base"], model_response=answers["fine-tuned"]
    )
    return {"examples": len(entries), "max_new_tokens": max_new_tokens, "scores": scores, "artifacts": [RESPONSES_FILE]}


def _eval_instructions_summary(result):
    base, tuned = result["scores"]["base"]["rouge_l"], result["scores"]["fine-tuned"]["rouge_l"]
    return f"ROUGE-L {base:.3f} -> {tuned:.3f} (base -> fine-tuned)"


# --- 7. a real pretrained assistant and four baselines -------------------------------------------


def smollm2_at_hand(ctx):
    """Whether SmolLM2's file is on this machine (cache or mirror), checked at every run.

    Part of the stage's fingerprint, so the stage runs again once the file appears.
    """
    return {"file": REGISTRY[SMOLLM2].relpath, "at_hand": local_copy(SMOLLM2) is not None}


def evaluate_references(ctx):
    """Chapter 7's four baselines (section 7.8) and chapter 8's SmolLM2-135M-Instruct on the test items of stage 6.

    The baselines need no model. SmolLM2 answers each
    question as a chat message, greedily and at the same length as the course's models; when
    its file can't be had (no mirror, no cache, no package index) that row is skipped and the
    result says how to get it.
    """
    train_entries, entries, max_new_tokens = _test_items(ctx)
    answers = ch07.baseline_answers(train_entries, entries)
    result = {"examples": len(entries), "max_new_tokens": max_new_tokens}
    try:
        assistant = ch08.load_smollm2()
    except FetchError as error:
        result["smollm2_skipped"] = (
            f"{str(error).splitlines()[0]} To add its row: `llm-course fetch {SMOLLM2}` "
            "(online), or point LLM_COURSE_MIRROR at the course data, then run again"
        )
    else:
        questions = [ch07.instruction_question(entry) for entry in entries]
        answers["SmolLM2-135M-Instruct"] = assistant.answer(questions, max_new_tokens=max_new_tokens)
        result["smollm2_examples"] = answers["SmolLM2-135M-Instruct"][: ctx.plan.report_examples]
    references = [entry["output"] for entry in entries]
    result["scores"] = {
        name: ch07.score_responses(replies, references).mean().to_dict() for name, replies in answers.items()
    }
    return result


def _references_summary(result):
    scores = result["scores"]
    smol = scores.get("SmolLM2-135M-Instruct")
    smol = f"SmolLM2 {smol['token_f1']:.3f}" if smol else "SmolLM2 skipped (file not available)"
    return f"token-F1: echo {scores['echo']['token_f1']:.3f}, {smol}"


# --- 8. LLM judge -------------------------------------------------------------------------------


def judge_server(ctx):
    """The judge as this run finds it: its URL, model, whether it answers and the model's digest.

    Part of the judge stage's fingerprint, so a judge that appears (or a re-pulled model)
    re-runs the judging, and only it.
    """
    url = ctx.plan.judge_url or ch07.OLLAMA_URL
    found = probe_ollama(url, ctx.plan.judge_model)
    name = find_model(found["models"], ctx.plan.judge_model)
    return {
        "url": url,
        "model": ctx.plan.judge_model,
        "answers": found["answers"],
        "models_listed": found["models"] is not None,
        "digest": found["models"][name] if name else None,
    }


def _judge_unavailable(server):
    """Why the judge cannot be asked at all (with what to do), or None when it can."""
    url, model = server["url"], server["model"]
    if not server["answers"]:
        return (
            f"no Ollama server answers at {url}; to use the judge, install Ollama (https://ollama.com), "
            f"start it with `ollama serve`, run `ollama pull {model}`, then run this command again"
        )
    if not server["models_listed"]:
        return f"the server at {url} does not list its models (GET /api/tags): is it Ollama?"
    if server["digest"] is None:
        return f"the Ollama server at {url} has no model {model!r}: run `ollama pull {model}`, then run again"
    return None


def judge_instructions(ctx):
    """Chapter 7, section 7.8.1 ("An LLM as the judge"): a local LLM scores each fine-tuned answer 0-100.

    A failed query (timeout, dropped connection, HTTP error, a reply without a score) skips
    that answer and is counted by reason; timeouts and connection failures also mark the
    result for retrying at the next run.
    """
    server = judge_server(ctx)
    unavailable = _judge_unavailable(server)
    if unavailable:
        return {"skipped": unavailable, "server": server}
    answers = json.loads((ctx.out / RESPONSES_FILE).read_text(encoding="utf-8"))
    prompts = [ch07.judge_prompt(entry, entry["model_response"]) for entry in answers]

    def ask(prompt):
        return ch07.query_ollama(prompt, model=server["model"], url=server["url"], timeout=ctx.plan.judge_timeout)

    verdicts = judge_all(
        prompts, ask, errors=(ch07.JudgeError,), progress=lambda items: progress_class()(items, desc="judging")
    )
    points = [score for score in verdicts["scores"] if score is not None]
    result = {
        "server": server,
        "answers": len(points),
        "mean": sum(points) / len(points) if points else None,
        "scores": verdicts["scores"],
        "failed": verdicts["failed"],
        "examples": verdicts["examples"],
    }
    retry = {kind: n for kind, n in verdicts["failed"].items() if worth_retrying(kind)}
    if retry:
        result["retry"] = f"the judge did not answer last time ({describe_failures(retry)})"
    return result


def judge_line(result):
    """One sentence on the judging, e.g. "mean 71.3 / 100 over 108 answers; 2 skipped: 1 timeout, ..."."""
    if "skipped" in result:
        return f"skipped ({result['skipped']})"
    failures = describe_failures(result["failed"])
    n = result["answers"]
    scored = f"mean {result['mean']:.1f} / 100 over {n} answer{'s' * (n != 1)}" if n else "no answer was scored"
    return scored + (f"; {failures}" if failures else "")


def _judge_summary(result):
    return "judge " + judge_line(result)


STAGES = [
    Stage(
        "tokenizer",
        "chapter 2's BPE tokenizer vs tiktoken",
        check_tokenizer,
        lambda r: f"{r['tokens']:,} tokens identical to tiktoken, round trip exact",
        recipe=lambda profile: {"tiktoken": importlib.metadata.version("tiktoken")},
        chapters=(CH02,),
        data=("the-verdict", "gpt2-encoder", "gpt2-vocab-bpe"),
        plan_fields=("tokenizer_chars",),
    ),
    Stage(
        "base",
        "loading (or pretraining) the base model",
        pretrain_base,
        _base_summary,
        recipe=base_recipe,
        chapters=MODEL_CHAPTERS,
        data=base_data,
    ),
    Stage(
        "base-eval",
        "evaluating the base model",
        evaluate_base,
        _eval_summary,
        recipe=base_eval_recipe,
        chapters=MODEL_CHAPTERS,
        deps=("base",),
        data=base_eval_data,
        plan_fields=("eval_batches", "eval_batch_size", "eval_context", "sample_prompts", "sample_tokens", "seed"),
    ),
    Stage(
        "spam",
        "fine-tuning the spam classifier (chapter 6)",
        finetune_spam,
        _spam_summary,
        recipe=spam_recipe,
        chapters=MODEL_CHAPTERS + (CH06,),
        data=("sms-spam-collection",),
        deps=("base",),
        plan_fields=("max_steps", "spam_eval_batches"),
    ),
    Stage(
        "instruct",
        "instruction fine-tuning (chapter 7)",
        finetune_instructions,
        _instruct_summary,
        recipe=lambda profile: ch07.FINETUNE_SETTINGS[profile],
        chapters=MODEL_CHAPTERS + (CH07,),
        data=("instruction-data",),
        deps=("base",),
        plan_fields=("max_steps",),
    ),
    Stage(
        "instruct-eval",
        "answering and scoring the test instructions",
        evaluate_instructions,
        _eval_instructions_summary,
        chapters=MODEL_CHAPTERS + (CH07,),
        data=("instruction-data",),
        deps=("base", "instruct"),
        plan_fields=("instruction_examples", "max_new_tokens"),
    ),
    Stage(
        "smollm2-eval",
        "answering the test instructions with SmolLM2 (chapter 8) and four baselines",
        evaluate_references,
        _references_summary,
        recipe=lambda profile: {
            "model": REGISTRY[SMOLLM2].sha256,
            "max_new_tokens": ch07.FINETUNE_SETTINGS[profile].max_new_tokens,
        },
        chapters=MODEL_CHAPTERS + (CH07, CH08),
        data=("instruction-data",),
        plan_fields=("instruction_examples", "max_new_tokens", "report_examples"),
        live=smollm2_at_hand,
    ),
    Stage(
        "instruct-judge",
        "asking the LLM judge (Ollama) to score the answers",
        judge_instructions,
        _judge_summary,
        chapters=(CH07, "llm_course.judge"),
        deps=("instruct-eval",),
        live=judge_server,
    ),
]
