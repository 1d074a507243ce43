# GENERATED from instruction.ipynb by `llm-course export`. Do not edit by hand:
# change the notebook's `#| export` cells and run `llm-course export` again.
# ruff: noqa: E402 (each cell keeps its own imports, where the notebook needs them)
"""Chapter 7 — Instruction fine-tuning: from a base model to an assistant you can evaluate"""

__all__ = [
    "DENOMINATOR",
    "FINETUNE_SETTINGS",
    "FinetuneSettings",
    "InstructionDataset",
    "JudgeError",
    "METRICS",
    "NEW_SECTION",
    "NUMBER",
    "OLLAMA_URL",
    "PREAMBLE",
    "PREAMBLE_WITH_INPUT",
    "RANGE",
    "RESPONSE_HEADER",
    "UnparseableReply",
    "baseline_answers",
    "chat_loop",
    "chat_prompt",
    "exact_match",
    "extract_response",
    "finetune",
    "finetune_instruction_model",
    "format_input",
    "generate_response",
    "generate_responses",
    "instruction_collate",
    "instruction_model_dir",
    "instruction_question",
    "judge_prompt",
    "judge_responses",
    "load_instruction_data",
    "load_instruction_model",
    "make_instruction_loaders",
    "normalize_answer",
    "ollama_is_running",
    "parse_score",
    "query_ollama",
    "read_messages",
    "rouge_l",
    "save_responses",
    "score_responses",
    "split_entries",
    "stream_tokens",
    "token_f1",
]


# ch07_instruction/instruction.ipynb, 7.1 What instruction fine-tuning changes
import json
import random
import re
import string
import sys
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from functools import partial

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from shared import (
    END_OF_TEXT,
    END_OF_TEXT_ID,
    KVCache,
    atomic_write,
    end_of_text_id,
    fetch,
    generate,
    get_device,
    load_pretrained,
    load_tokenizer,
    read_model_folder,
    sample_next_token,
    save_model_folder,
    set_seed,
    settings,
    text_to_token_ids,
    token_ids_to_text,
    train_model,
)


# ch07_instruction/instruction.ipynb, 7.1 What instruction fine-tuning changes
@dataclass(frozen=True)
class FinetuneSettings:
    """How chapter 7 fine-tunes and evaluates in one profile."""

    base_model: str  # a load_pretrained name
    num_epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    max_new_tokens: int  # longest answer generated for a test example
    mask_prompt: bool  # hide the prompt tokens from the loss (section 7.3)
    max_steps: int | None = None  # stop after this many optimizer steps (None: every epoch)


# fmt: off
FINETUNE_SETTINGS = {  # per profile (a table: one profile per entry)
    "quick": FinetuneSettings("course-base", num_epochs=6, batch_size=8, learning_rate=2e-3,
                              weight_decay=0.1, max_new_tokens=48, mask_prompt=False),
    "book": FinetuneSettings("gpt2-medium (355M)", num_epochs=2, batch_size=8, learning_rate=5e-5,
                             weight_decay=0.1, max_new_tokens=256, mask_prompt=False),
}
# fmt: on


# ch07_instruction/instruction.ipynb, 7.2 The data: 1,100 instructions with answers
def load_instruction_data():
    """The 1,100 instruction/input/output entries, through the course's data registry."""
    with open(fetch("instruction-data"), encoding="utf-8") as f:
        entries = json.load(f)
    for i, entry in enumerate(entries):
        missing = {"instruction", "input", "output"} - set(entry)
        if missing:
            raise ValueError(f"entry {i} lacks the field(s) {sorted(missing)}: the data file is not in Alpaca format")
    return entries


# ch07_instruction/instruction.ipynb, 7.2.1 The Alpaca prompt format
RESPONSE_HEADER = "### Response:"
PREAMBLE = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
PREAMBLE_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides "
    "further context. Write a response that appropriately completes the request."
)


def format_input(entry):
    """The Alpaca prompt for one entry: everything the model sees before it answers.

    ``entry`` is a dict with ``instruction`` and an optional ``input`` (an empty
    string counts as no input). The prompt ends with the response header and a
    newline, so the training text is simply ``format_input(entry) + entry["output"]``
    and, at inference, the model continues right where its answer should begin.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("instruction"), str):
        raise ValueError(f"expected a dict with a string 'instruction' (and optional 'input'), got {entry!r:.80}")
    extra = entry.get("input") or ""
    preamble = PREAMBLE_WITH_INPUT if extra else PREAMBLE
    prompt = f"{preamble}\n\n### Instruction:\n{entry['instruction']}"
    if extra:
        prompt += f"\n\n### Input:\n{extra}"
    return prompt + f"\n\n{RESPONSE_HEADER}\n"


# ch07_instruction/instruction.ipynb, 7.2.2 Train, test and validation sets
def split_entries(entries, fractions=(0.85, 0.10, 0.05), seed=123):
    """Shuffle ``entries`` with ``seed`` and cut them into (train, test, validation).

    The sizes are the rounded fractions, the validation part taking the rest:
    1,100 entries give 935 / 110 / 55. The same seed always gives the same split.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    order = list(range(len(entries)))
    random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(entries))
    n_test = round(fractions[1] * len(entries))
    shuffled = [entries[i] for i in order]
    return shuffled[:n_train], shuffled[n_train : n_train + n_test], shuffled[n_train + n_test :]


# ch07_instruction/instruction.ipynb, 7.3 Batching: padding that the loss ignores
class InstructionDataset(Dataset):
    """Instruction entries, tokenised once up front.

    Item ``i`` is a pair ``(token_ids, prompt_length)``: the ids of
    ``format_fn(entry) + entry["output"]`` (a list of ints) and how many of them
    belong to the prompt, which ``instruction_collate`` needs to mask the prompt.
    """

    def __init__(self, entries, tokenizer, format_fn=format_input):
        self.examples = []
        for entry in entries:
            prompt_ids = tokenizer.encode(format_fn(entry))
            response_ids = tokenizer.encode(entry["output"])
            self.examples.append((prompt_ids + response_ids, len(prompt_ids)))

    def __getitem__(self, index):
        return self.examples[index]

    def __len__(self):
        return len(self.examples)


# ch07_instruction/instruction.ipynb, 7.3 Batching: padding that the loss ignores
def instruction_collate(
    batch, pad_token_id=END_OF_TEXT_ID, ignore_index=-100, allowed_max_length=None, device="cpu", mask_prompt=False
):
    """Turn ``(token_ids, prompt_length)`` pairs into padded ``(inputs, targets)`` tensors.

    Each sequence gets one end-of-text token (``pad_token_id``) and is padded with
    it to the batch's longest + 1; inputs drop the last position, targets the
    first (the next-token shift). In the targets the first end-of-text is kept,
    so the model learns to stop, and every later padding position becomes
    ``ignore_index``, which the cross-entropy loss skips. ``mask_prompt=True``
    also hides the prompt tokens, so only the response is learned.
    ``allowed_max_length`` cuts both tensors to that many positions, on purpose.
    Returns two LongTensors of shape (batch, longest) on ``device``.
    """
    if not batch:
        raise ValueError("instruction_collate got an empty batch")
    for ids, prompt_length in batch:
        if not ids:
            raise ValueError("a sequence in the batch is empty: every example needs at least one token")
        if not 0 <= prompt_length <= len(ids):
            raise ValueError(f"prompt_length {prompt_length} is outside 0..{len(ids)}, the sequence length")
    width = max(len(ids) for ids, _ in batch) + 1
    inputs, targets = [], []
    for ids, prompt_length in batch:
        padded = torch.tensor(list(ids) + [pad_token_id] * (width - len(ids)))
        target = padded[1:].clone()
        target[len(ids) :] = ignore_index  # position len(ids) - 1 keeps the end-of-text
        if mask_prompt:
            target[: max(prompt_length - 1, 0)] = ignore_index  # targets that are still prompt tokens
        inputs.append(padded[:-1])
        targets.append(target)
    inputs, targets = torch.stack(inputs), torch.stack(targets)
    if allowed_max_length is not None:
        inputs, targets = inputs[:, :allowed_max_length], targets[:, :allowed_max_length]
    return inputs.to(device), targets.to(device)


# ch07_instruction/instruction.ipynb, 7.4 Data loaders
def make_instruction_loaders(
    train_entries, val_entries, tokenizer, batch_size, context_length, device="cpu", mask_prompt=False, seed=123
):
    """Training and validation DataLoaders of (inputs, targets) batches on ``device``.

    The training loader shuffles with its own seeded generator (the same order on
    every run) and drops the last incomplete batch; sequences longer than the
    model's ``context_length`` are cut to it by the collate function, which pads
    with the tokenizer's <|endoftext|>, and ``mask_prompt`` is handed on to it.
    """
    collate = partial(
        instruction_collate,
        pad_token_id=end_of_text_id(tokenizer),
        allowed_max_length=context_length,
        device=device,
        mask_prompt=mask_prompt,
    )
    train_loader = DataLoader(
        InstructionDataset(train_entries, tokenizer),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed),
    )
    val_loader = DataLoader(InstructionDataset(val_entries, tokenizer), batch_size=batch_size, collate_fn=collate)
    return train_loader, val_loader


# ch07_instruction/instruction.ipynb, 7.6 Fine-tuning
def finetune(
    model,
    train_loader,
    val_loader,
    recipe,
    device,
    eval_freq=20,
    eval_iter=5,
    start_context=None,
    tokenizer=None,
    progress=True,
):
    """Fine-tune ``model`` in place with chapter 5's ``train_model``; return its history.

    AdamW over the parameters that have ``requires_grad``, with the profile's learning
    rate and weight decay, a short linear warmup, then a cosine decay to a tenth of the
    peak, and gradient clipping. With
    ``start_context`` (a prompt) and ``tokenizer``, prints the model's greedy answer
    after every epoch. ``progress=False`` trains silently.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    return train_model(
        model,
        train_loader,
        val_loader,
        optimizer,
        device,
        recipe.num_epochs,
        eval_freq,
        eval_iter,
        start_context,
        tokenizer,
        warmup_steps=min(10, len(train_loader), recipe.max_steps or 10),
        cosine_decay=True,
        min_lr=recipe.learning_rate / 10,
        grad_clip=1.0,
        max_steps=recipe.max_steps,
        progress=progress,
    )


def finetune_instruction_model(profile=None, device=None, prepare_model=None, recipe=None, progress=True):
    """Sections 7.2-7.6 in one call: data, split, loaders, base model and fine-tuning.

    ``recipe`` replaces the profile's FinetuneSettings (e.g. ``dataclasses.replace(FINETUNE_SETTINGS["quick"],
    learning_rate=5e-3)``). ``prepare_model`` (optional) receives the base model on ``device``
    before the optimizer is built and returns the model to fine-tune; only the parameters that
    then have ``requires_grad`` are trained. ``progress=False`` trains silently.
    Returns (model, history), the model in eval mode on ``device``. Data, split, seeds
    and settings are the chapter's, so the notebook's cells give the same numbers.
    """
    recipe = recipe or FINETUNE_SETTINGS[settings(profile).profile]
    device = device or get_device()
    tokenizer = load_tokenizer(recipe.base_model)
    train_entries, _, val_entries = split_entries(load_instruction_data(), seed=123)
    model = load_pretrained(recipe.base_model).to(device)
    if prepare_model is not None:
        model = prepare_model(model)
    train_loader, val_loader = make_instruction_loaders(
        train_entries,
        val_entries,
        tokenizer,
        recipe.batch_size,
        model.config.context_length,
        device=device,
        mask_prompt=recipe.mask_prompt,
    )
    set_seed(123)
    history = finetune(model, train_loader, val_loader, recipe, device, progress=progress)
    return model.eval(), history


# ch07_instruction/instruction.ipynb, 7.7 Answers to the test set
NEW_SECTION = re.compile(r"^\s*###", flags=re.MULTILINE)  # a line that starts another "### ..." block


def extract_response(text, header=RESPONSE_HEADER):
    """The model's answer inside ``text`` (prompt + generated continuation).

    That is the text after the first ``header``, up to the first end-of-text
    marker or the first new ``###`` section (a model that starts writing another
    prompt has finished answering), without surrounding whitespace. Raises
    ValueError when ``text`` holds no header: then it is not a prompt + answer.
    """
    start = text.find(header)
    if start < 0:
        raise ValueError(
            f"no response header {header!r} in the text (starts {text[:60]!r}): pass the whole "
            "prompt + generated text; format_input ends every prompt with the header"
        )
    response = text[start + len(header) :].split(END_OF_TEXT, 1)[0]
    response = NEW_SECTION.split(response, maxsplit=1)[0]
    return response.strip()


# ch07_instruction/instruction.ipynb, 7.7 Answers to the test set
def generate_response(model, tokenizer, prompt, max_new_tokens, temperature=0.0, top_k=None, header=RESPONSE_HEADER):
    """The model's answer to one prompt: generate until end-of-text, then ``extract_response``.

    Greedy by default (temperature 0), so the same model always gives the same answer.
    Uses chapter 5's ``generate`` with its KV cache; ``model`` must be in eval mode.
    """
    device = next(model.parameters()).device
    idx = text_to_token_ids(prompt, tokenizer).to(device)  # (1, prompt_tokens)
    out = generate(
        model,
        idx,
        max_new_tokens,
        context_size=model.config.context_length,
        temperature=temperature,
        top_k=top_k,
        eos_id=end_of_text_id(tokenizer),
        use_cache=True,
    )
    return extract_response(token_ids_to_text(out, tokenizer), header=header)


def generate_responses(model, tokenizer, entries, max_new_tokens, desc="generating"):
    """Greedy answers to every entry's Alpaca prompt, in order, with a progress bar."""
    model.eval()
    return [
        generate_response(model, tokenizer, format_input(entry), max_new_tokens) for entry in tqdm(entries, desc=desc)
    ]


def save_responses(path, entries, **responses):
    """Save the entries with the models' answers next to them, e.g.
    ``save_responses(path, test_entries, model_response=answers)`` writes a JSON list of
    ``{"instruction", "input", "output", "model_response"}`` records."""
    for key, answers in responses.items():
        if len(answers) != len(entries):
            raise ValueError(f"{key} has {len(answers)} answers for {len(entries)} entries: they must pair up")
    records = [
        dict(entry, **{key: answers[i] for key, answers in responses.items()}) for i, entry in enumerate(entries)
    ]
    return atomic_write(path, json.dumps(records, indent=2, ensure_ascii=False))


# ch07_instruction/instruction.ipynb, 7.8 Evaluation that works offline
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text):
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


def exact_match(prediction, reference):
    """1.0 when both normalise to the same string, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction, reference):
    """Harmonic mean of precision and recall over the normalised words (a bag: order ignored).

    Two empty answers agree (1.0); one empty answer scores 0.0.
    """
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    overlap = sum((Counter(pred) & Counter(ref)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a, b):
    """Length of the longest common subsequence of two word lists (dynamic programming).

    ``table[i][j]`` is the answer for the first ``i`` words of ``a`` and ``j`` of ``b``.
    """
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, start=1):
        for j, y in enumerate(b, start=1):
            table[i][j] = table[i - 1][j - 1] + 1 if x == y else max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


def rouge_l(prediction, reference):
    """ROUGE-L F1: like ``token_f1`` but the overlap is the longest common
    subsequence of normalised words, so word order counts."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    lcs = _lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


METRICS = {"exact_match": exact_match, "token_f1": token_f1, "rouge_l": rouge_l}


def score_responses(responses, references):
    """Per-example scores: a DataFrame with one row per pair, one column per metric."""
    if len(responses) != len(references):
        raise ValueError(f"{len(responses)} responses but {len(references)} references: they must pair up")
    return pd.DataFrame(
        {name: [metric(p, r) for p, r in zip(responses, references)] for name, metric in METRICS.items()}
    )


# ch07_instruction/instruction.ipynb, 7.8 Evaluation that works offline
def instruction_question(entry):
    """A data entry as one question: the instruction, then its input (if any)."""
    return entry["instruction"] + (f"\n\n{entry['input']}" if entry["input"] else "")


def baseline_answers(train_entries, entries):
    """Answers to ``entries`` that need no model: {baseline name: one answer per entry}.

    The replies are explained in section 7.8; only ``train_entries`` (never the test
    references) are used to build them.
    """
    openings = Counter(" ".join(entry["output"].split()[:2]) for entry in train_entries)

    def nearest(entry):
        question = instruction_question(entry)
        return max(train_entries, key=lambda t: token_f1(instruction_question(t), question))["output"]

    return {
        "most common opening": [openings.most_common(1)[0][0]] * len(entries),
        "echo": [instruction_question(entry) for entry in entries],
        "input, else instruction": [entry["input"] or entry["instruction"] for entry in entries],
        "nearest training example": [nearest(entry) for entry in entries],
    }


# ch07_instruction/instruction.ipynb, 7.8.1 An LLM as the judge (optional, needs Ollama)
OLLAMA_URL = "http://localhost:11434"


class JudgeError(RuntimeError):
    """The Ollama server answered, but not with a usable reply."""


def query_ollama(prompt, model="llama3", url=OLLAMA_URL, seed=123, timeout=120.0):
    """Send one user message to an Ollama server's ``/api/chat``; return the reply text.

    Greedy decoding (temperature 0) with a fixed seed, so a judge gives the same
    score to the same answer. Raises ``urllib.error.URLError`` when no server
    answers and ``JudgeError`` when the reply is not what the API documents.
    """
    payload = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": False,
        "options": {"temperature": 0, "seed": seed},
    }
    request = urllib.request.Request(
        f"{url}/api/chat", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")[:200]
        raise JudgeError(
            f"Ollama at {url} answered HTTP {exc.code}: {detail}. If the model is missing, run `ollama pull {model}`."
        ) from None
    try:
        return json.loads(body)["message"]["content"]
    except (ValueError, KeyError, TypeError):
        raise JudgeError(
            f"malformed reply from Ollama at {url}/api/chat: expected JSON with message.content, got {body[:200]!r}"
        ) from None


def ollama_is_running(url=OLLAMA_URL, timeout=2.0):
    """True when something answers HTTP at ``url`` (Ollama's root says "Ollama is running")."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # an HTTP error status is still an answer
    except (urllib.error.URLError, OSError):
        return False


def judge_prompt(entry, response):
    """The question the judge model answers for one test example."""
    return (
        "You are grading answers to instructions.\n\n"
        f"{format_input(entry)}{entry['output']}\n\n"
        'The text after "### Response:" above is the reference answer. '
        f"Here is the answer to grade:\n{response}\n\n"
        "Score the answer from 0 (useless) to 100 (as good as the reference). "
        "Reply with the integer score only."
    )


class UnparseableReply(JudgeError):
    """The judge's reply holds no score between 0 and 100."""


NUMBER = re.compile(r"\d+(?:\.\d+)?")
RANGE = re.compile(r"\d+(?:\.\d+)?\s*(?:to|-|–|—)\s*\d+(?:\.\d+)?")  # "0 to 100", "0-100"
DENOMINATOR = re.compile(r"\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?)", re.IGNORECASE)  # "/100", "out of 100"


def parse_score(reply):
    """The score a judge's reply gives: its last number that stands as an answer, 0..100.

    A judge does not always reply with the bare integer the prompt asks for. Numbers that
    only state the scale are passed over: both ends of a range ("on a scale of 0 to 100")
    and a denominator ("70/100" and "70 out of 100" give 70). A score out of anything but
    100 ("7/10"), a fraction ("8.5"), a number above 100 or no number at all raise
    ``UnparseableReply``.
    """
    text = str(reply)
    in_range = {m.start() for r in RANGE.finditer(text) for m in NUMBER.finditer(text, r.start(), r.end())}
    denominators, candidates = set(), []
    for m in NUMBER.finditer(text):
        if m.start() in in_range or m.start() in denominators:
            continue
        below = DENOMINATOR.match(text, m.end())
        if below:
            denominators.add(below.start(1))
        candidates.append((m.group(), below.group(1) if below else None))
    number, denominator = candidates[-1] if candidates else (None, None)
    if number is None or denominator not in (None, "100") or not number.isdigit() or int(number) > 100:
        raise UnparseableReply(f"the judge's reply holds no score between 0 and 100: {text[:200]!r}")
    return int(number)


def judge_responses(entries, responses, model="llama3", url=OLLAMA_URL):
    """Scores 0-100 from a local Ollama judge, or None (with how to start one) when none runs."""
    if not ollama_is_running(url):
        print(
            f"No Ollama server answers at {url}, so the LLM judge is skipped.\n"
            f"To use it: install Ollama (https://ollama.com), start it with `ollama serve`,\n"
            f"download a judge once with `ollama pull {model}`, then run this cell again."
        )
        return None
    return [
        parse_score(query_ollama(judge_prompt(entry, response), model=model, url=url))
        for entry, response in tqdm(list(zip(entries, responses)), desc="judging")
    ]


# ch07_instruction/instruction.ipynb, 7.10 Saving the model, and a chat
def instruction_model_dir(profile=None):
    """Where the profile's fine-tuned model lives: ``<cache>/models/<base>-instruct``."""
    cfg = settings(profile)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", FINETUNE_SETTINGS[cfg.profile].base_model).strip("-")
    return cfg.cache_dir / "models" / f"{slug}-instruct"


def load_instruction_model(profile=None, device=None, train_if_missing=True):
    """The profile's instruction-tuned GPT, in eval mode on ``device`` (default: ``get_device()``).

    Loads what chapter 7 saved in ``instruction_model_dir(profile)``. When nothing
    (or nothing intact: chapter 5's ``read_model_folder`` checks the weights' SHA-256) is there,
    fine-tunes it first with ``finetune_instruction_model`` and saves it (a few
    minutes on a CPU in the quick profile), unless ``train_if_missing=False``, which
    raises FileNotFoundError instead.
    """
    device = device or get_device()
    folder = instruction_model_dir(profile)
    model = read_model_folder(folder)
    if model is None:
        if not train_if_missing:
            raise FileNotFoundError(
                f"no fine-tuned model in {folder}: run chapter 7's notebook, or call "
                "load_instruction_model(train_if_missing=True) to fine-tune it now"
            )
        print(f"No fine-tuned model in {folder}: fine-tuning one now, as in chapter 7.")
        trained, history = finetune_instruction_model(profile, device)
        save_model_folder(trained, folder, val_loss=history["val_losses"][-1])
        model = read_model_folder(folder)
    return model.to(device).eval()


# ch07_instruction/instruction.ipynb, 7.10 Saving the model, and a chat
def stream_tokens(model, idx, max_new_tokens, temperature=0.0, top_k=None, eos_id=None):
    """Yield new token ids (ints) one at a time, as soon as each is chosen.

    idx (1, prompt_tokens) on the model's device. The prompt is read once into a
    key/value cache; every later step feeds only the newest token, so each token
    costs the same no matter how long the conversation is. Stops before ``eos_id``
    (the tokenizer's ``end_of_text_id``; None: never) or after ``max_new_tokens`` tokens. The prompt plus ``max_new_tokens`` must fit
    in the model's context.
    """
    context_length = model.config.context_length
    if idx.shape[1] + max_new_tokens > context_length:
        raise ValueError(
            f"{idx.shape[1]} prompt tokens + max_new_tokens={max_new_tokens} exceed the model's "
            f"context_length {context_length}: shorten the prompt or ask for fewer tokens"
        )
    cache = KVCache(context_length)
    with torch.no_grad():
        logits = model(idx, cache=cache)[:, -1, :]  # (1, vocab_size)
        for _ in range(max_new_tokens):
            next_id = sample_next_token(logits, temperature=temperature, top_k=top_k)  # (1, 1)
            if next_id.item() == eos_id:
                return
            yield next_id.item()
            logits = model(next_id, cache=cache)[:, -1, :]


def chat_prompt(history, message):
    """The Alpaca-formatted conversation: earlier (message, answer) turns, then the new message."""
    turns = "".join(f"{format_input({'instruction': user})}{answer}\n\n" for user, answer in history)
    return turns + format_input({"instruction": message})


def _stream_answer(model, tokenizer, idx, max_new_tokens, temperature, top_k, out):
    """Write the answer to ``out`` while it is generated; return (answer, stopped_by_limit).

    Text is decoded from all ids so far, so a character split over several tokens
    appears once complete. A trailing '#', space or newline is held back until the
    next token shows whether the model is starting a new ``###`` section, which
    ends the answer (as in ``extract_response``).
    """
    ids, shown, count, section = [], "", 0, None
    for token_id in stream_tokens(model, idx, max_new_tokens, temperature, top_k, end_of_text_id(tokenizer)):
        ids.append(token_id)
        count += 1
        text = tokenizer.decode(ids)
        section = NEW_SECTION.search(text)
        if section:
            break
        if text.endswith("\ufffd"):  # an incomplete UTF-8 character
            continue
        visible = text.lstrip().rstrip(" \n#")
        out.write(visible[len(shown) :])
        out.flush()
        shown = visible
    answer = extract_response(RESPONSE_HEADER + tokenizer.decode(ids))
    out.write(answer[len(shown) :] + "\n")
    out.flush()
    return answer, count == max_new_tokens and not section


def read_messages(inp, out, echo=False):
    """The user's chat messages, one per line of ``inp``, with the chat commands handled.

    Writes the "You: " prompt to ``out`` before each line. Yields each message, or None after
    ``/reset`` (the caller forgets the conversation); stops at ``/quit`` or at the end of the
    input. Empty lines are skipped, unknown commands answered with a hint. ``echo=True``
    repeats each line after the prompt, for input that is not typed.
    """
    while True:
        out.write("\nYou: ")
        out.flush()
        line = inp.readline()
        if not line:  # end of input (Ctrl-D)
            out.write("\n")
            return
        message = line.strip()
        if echo:
            out.write(message + "\n")
        if message == "/quit":
            return
        if message == "/reset":
            out.write("(conversation reset)\n")
            yield None
        elif message.startswith("/"):
            out.write(f"(unknown command {message}: use /reset or /quit)\n")
        elif message:
            yield message


def chat_loop(
    model,
    tokenizer,
    input_stream=None,
    output_stream=None,
    temperature=0.7,
    top_k=40,
    max_new_tokens=128,
    seed=None,
    echo=False,
    remember=False,
):
    """A terminal chat with an instruction-tuned model; returns the number of answers given.

    Reads one message per line from ``input_stream`` (default stdin) and streams the
    answer to ``output_stream`` (default stdout) token by token. Every message is one
    Alpaca prompt, answered on its own, as in fine-tuning: the course's models learned
    single instructions, not conversations. ``remember=True`` keeps earlier turns in
    the prompt, oldest dropped first (with a note) when the model's context would
    overflow; ``/reset`` forgets them. ``/quit`` or end of input leaves. ``temperature`` 0 is greedy;
    ``seed`` makes sampling repeatable. ``echo=True`` repeats each message after the
    prompt, for input that is not typed (a file, a pipe, a StringIO).
    """
    inp = input_stream or sys.stdin
    out = output_stream or sys.stdout
    if seed is not None:
        set_seed(seed)
    model.eval()
    device = next(model.parameters()).device
    context_length = model.config.context_length
    reserve = min(max_new_tokens, context_length // 2)  # room kept for the answer
    history, answers = [], 0
    memory = "earlier turns stay in the prompt, /reset forgets them" if remember else "each message stands alone"
    out.write(f"Chat with the instruction-tuned model ({memory}). /quit leaves.\n")
    for message in read_messages(inp, out, echo):
        if message is None:  # /reset
            history = []
            continue
        ids = tokenizer.encode(chat_prompt(history, message))
        while history and len(ids) + reserve > context_length:
            history = history[1:]
            out.write("(oldest turn dropped: the conversation no longer fits the context)\n")
            ids = tokenizer.encode(chat_prompt(history, message))
        if len(ids) + reserve > context_length:
            out.write(
                f"(your message makes a {len(ids)}-token prompt; with {reserve} tokens kept for the "
                f"answer the model's {context_length}-token context is exceeded: please shorten it)\n"
            )
            continue
        limit = min(max_new_tokens, context_length - len(ids))
        out.write("Model: ")
        idx = torch.tensor([ids], device=device)
        answer, cut = _stream_answer(model, tokenizer, idx, limit, temperature, top_k, out)
        if cut:
            out.write(f"(answer stopped at {limit} tokens)\n")
        if remember:
            history.append((message, answer))
        answers += 1
    out.write("Bye.\n")
    out.flush()
    return answers
