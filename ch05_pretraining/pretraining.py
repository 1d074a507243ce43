# GENERATED from pretraining.ipynb by `llm-course export`. Do not edit by hand:
# change the notebook's `#| export` cells and run `llm-course export` again.
# ruff: noqa: E402 (each cell keeps its own imports, where the notebook needs them)
"""Chapter 5 — Pretraining on unlabeled data"""

__all__ = [
    "COURSE_BASE_RECIPE",
    "GPT2_WEIGHTS",
    "KVCache",
    "PretrainSettings",
    "calc_loss_batch",
    "calc_loss_loader",
    "course_base_config",
    "course_base_dir",
    "course_base_texts",
    "end_of_text_id",
    "evaluate_model",
    "fast_path_options",
    "generate",
    "generate_and_print_sample",
    "load_checkpoint",
    "load_course_base",
    "load_gpt2_weights",
    "load_pretrained",
    "load_tokenizer",
    "lr_at_step",
    "read_model_folder",
    "read_model_info",
    "read_model_tokenizer",
    "sample_next_token",
    "save_checkpoint",
    "save_model_folder",
    "set_sdpa",
    "text_to_token_ids",
    "token_ids_to_text",
    "top_k_filter",
    "top_p_filter",
    "train_course_base",
    "train_course_base_tokenizer",
    "train_model",
    "unigram_baseline_loss",
]


# ch05_pretraining/pretraining.ipynb, setup
import dataclasses
import io
import json
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from shared import (
    END_OF_TEXT,
    GPT_CONFIGS,
    REGISTRY,
    BPETokenizer,
    FetchError,
    GPTConfig,
    GPTModel,
    atomic_write,
    create_dataloader,
    fetch,
    generate_text_simple,
    gpt2_encoding,
    settings,
    sha256_of,
)
from shared.validation import require_int, require_number


# ch05_pretraining/pretraining.ipynb, 5.1.1 Using GPT to generate text
def text_to_token_ids(text, tokenizer):
    """Encode ``text`` as a batch of one sequence: str -> LongTensor (1, num_tokens).

    ``tokenizer`` is tiktoken's GPT-2 encoding or chapter 2's ``BPETokenizer``. If the
    tokenizer has the end-of-text marker ``<|endoftext|>``, the marker may appear in the
    text and becomes its id; a tokenizer without it encodes those characters as plain text.
    """
    known = getattr(tokenizer, "special_tokens_set", None) or getattr(tokenizer, "special_tokens", ())
    ids = tokenizer.encode(text, allowed_special={END_OF_TEXT} & set(known))
    return torch.tensor(ids, dtype=torch.long).unsqueeze(0)


def end_of_text_id(tokenizer):
    """The id of ``<|endoftext|>`` in ``tokenizer`` (50256 in GPT-2's; the last id in course-base's).

    Chapters 6 and 7 pad and stop generation with it, so they ask the tokenizer instead of
    assuming GPT-2's number. A tokenizer without the marker raises ValueError.
    """
    return tokenizer.encode(END_OF_TEXT, allowed_special={END_OF_TEXT})[0]


def token_ids_to_text(token_ids, tokenizer):
    """Decode token ids back to text: a (1, num_tokens) batch or a (num_tokens,) sequence."""
    if token_ids.dim() == 2:
        if token_ids.shape[0] != 1:
            raise ValueError(
                f"token_ids holds {token_ids.shape[0]} sequences; decode them one at a time "
                "(token_ids_to_text(token_ids[i], tokenizer))"
            )
        token_ids = token_ids[0]
    if token_ids.dim() != 1:
        raise ValueError(f"token_ids must have shape (1, num_tokens) or (num_tokens,), got {tuple(token_ids.shape)}")
    return tokenizer.decode(token_ids.tolist())


# ch05_pretraining/pretraining.ipynb, 5.1.3 Calculating the training and validation set losses
def calc_loss_batch(input_batch, target_batch, model, device):
    """Mean next-token cross-entropy (nats per token) of ``model`` on one batch.

    input_batch, target_batch: (batch, num_tokens) token ids, the targets being the
    inputs shifted by one token. Returns a scalar tensor that can be back-propagated.
    The loss is computed in float32 even when the model runs in bfloat16 (autocast).
    """
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)  # (batch, num_tokens, vocab_size)
    return F.cross_entropy(logits.flatten(0, 1).float(), target_batch.flatten())


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Average of ``calc_loss_batch`` over the first ``num_batches`` batches (all if None).

    Runs without gradients and returns a float. Asking for more batches than the loader
    has simply uses all of them. The caller chooses train/eval mode (use ``model.eval()``
    for a measurement without dropout).
    """
    if len(data_loader) == 0:
        raise ValueError(
            "the data loader yields no batches: its text is shorter than one batch of "
            "windows; use a smaller batch_size or context_length, or drop_last=False"
        )
    require_int("num_batches", num_batches, 1, none_ok=True)
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    total = 0.0
    with torch.no_grad():
        for i, (input_batch, target_batch) in enumerate(data_loader):
            if i == num_batches:
                break
            total += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total / num_batches


# ch05_pretraining/pretraining.ipynb, 5.2.1 A minimal training loop
def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """(train_loss, val_loss) on up to ``eval_iter`` batches of each loader, without dropout.

    Evaluation runs inside ``torch.random.fork_rng``: iterating a shuffled loader draws
    from the random generator, and evaluation must not change the training run it observes
    (nor how a resumed run continues). The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[]):
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train(was_training)
    return train_loss, val_loss


def generate_and_print_sample(model, tokenizer, device, start_context, max_new_tokens=50):
    """Print a greedy continuation of ``start_context`` on one line (training progress you can read); return it."""
    was_training = model.training
    model.eval()
    idx = text_to_token_ids(start_context, tokenizer).to(device)
    out = generate_text_simple(model, idx, max_new_tokens, context_size=model.config.context_length)
    text = token_ids_to_text(out, tokenizer)
    tqdm.write(text.replace("\n", " "))
    model.train(was_training)
    return text


# ch05_pretraining/pretraining.ipynb, 5.2.3 Learning-rate warmup, cosine decay and gradient clipping
def lr_at_step(step, total_steps, peak_lr, warmup_steps=0, cosine_decay=False, min_lr=0.0):
    """Learning rate for optimizer step ``step`` (0-based) of a ``total_steps``-step run.

    Linear warmup from peak_lr / warmup_steps to peak_lr over the first ``warmup_steps``
    steps; then constant, or with ``cosine_decay`` half a cosine from peak_lr down to
    ``min_lr`` (reached just after the last step).
    """
    if warmup_steps < 0 or warmup_steps > total_steps:
        raise ValueError(f"warmup_steps must be between 0 and total_steps={total_steps}, got {warmup_steps}")
    if not 0 <= min_lr <= peak_lr:
        raise ValueError(f"min_lr must be between 0 and the peak learning rate {peak_lr}, got {min_lr}")
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    if not cosine_decay:
        return peak_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)  # 0 -> almost 1
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ch05_pretraining/pretraining.ipynb, 5.2.4 `train_model`: the minimal loop plus its extras
def _epoch_batches(train_loader, position):
    """An iterator over the current epoch's batches, in the order a straight run would use.

    A fresh epoch records the random state its shuffle is drawn from. A resumed epoch
    replays that shuffle (then restores the current state) and skips the batches done.
    """
    if position["batch"] == 0:
        position["epoch_rng_state"] = torch.get_rng_state()
        return iter(train_loader)
    current = torch.get_rng_state()
    torch.set_rng_state(position["epoch_rng_state"])
    batches = iter(train_loader)
    for _ in range(position["batch"]):  # the shuffle is drawn when the first batch is taken
        next(batches)
    torch.set_rng_state(current)
    return batches


def train_model(
    model,
    train_loader,
    val_loader,
    optimizer,
    device,
    num_epochs,
    eval_freq,
    eval_iter,
    start_context,
    tokenizer,
    *,
    warmup_steps=0,
    cosine_decay=False,
    min_lr=0.0,
    grad_clip=None,
    autocast_dtype=None,
    max_steps=None,
    stop_at_step=None,
    resume=None,
    progress=True,
):
    """Pretrain ``model`` on next-token prediction; return its history.

    Every step: loss of one batch -> backward -> optional gradient clipping (``grad_clip``,
    max L2 norm) -> optimizer step, with the learning rate set by ``lr_at_step`` (peak:
    the optimizer's lr). Every ``eval_freq`` steps and after the last one, the train and
    validation loss on ``eval_iter`` batches are recorded; after each epoch (and at the end)
    a greedy continuation of ``start_context`` is printed (``start_context=None`` skips it).

    autocast_dtype: e.g. torch.bfloat16 to run matmuls in bf16 (fast path), None = float32.
    max_steps:      train this many steps instead of num_epochs full epochs (if fewer);
                    the learning-rate schedule spans the shortened run.
    stop_at_step:   stop after this step as if interrupted; the schedule is unchanged, so
                    the run can be resumed later (see save_checkpoint).
    resume:         a ``position`` returned earlier (or by ``load_checkpoint``) to continue from.
    progress:       show a tqdm bar, the evaluations and the samples (False: train silently).

    Returns a dict of lists, one entry per evaluation: "steps", "tokens_seen", "train_losses",
    "val_losses"; "lrs" (one per step); and "position", where the run stopped.
    """
    if len(train_loader) == 0:
        raise ValueError("train_loader yields no batches: the text is shorter than one batch")
    require_int("eval_freq", eval_freq, 1)
    require_int("eval_iter", eval_iter, 1)
    device = torch.device(device)
    total_steps = num_epochs * len(train_loader)
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    stop = total_steps if stop_at_step is None else min(stop_at_step, total_steps)
    for group in optimizer.param_groups:  # the peak rate; kept in the optimizer's state_dict
        group.setdefault("initial_lr", group["lr"])
    position = (
        dict(resume)
        if resume is not None
        else {"step": 0, "epoch": 0, "batch": 0, "tokens_seen": 0, "epoch_rng_state": None}
    )
    history = {"steps": [], "tokens_seen": [], "train_losses": [], "val_losses": [], "lrs": []}
    log = tqdm.write if progress else (lambda text: None)

    model.train()
    bar = tqdm(total=stop, initial=position["step"], desc="training", unit="step", disable=not progress)
    while position["step"] < stop:
        for input_batch, target_batch in _epoch_batches(train_loader, position):
            for group in optimizer.param_groups:
                group["lr"] = lr_at_step(
                    position["step"], total_steps, group["initial_lr"], warmup_steps, cosine_decay, min_lr
                )
            optimizer.zero_grad()  # forget the previous step's gradients
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()  # gradient of the loss for every parameter
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()  # one AdamW step downhill

            position["step"] += 1
            position["batch"] += 1
            position["tokens_seen"] += input_batch.numel()
            history["lrs"].append(optimizer.param_groups[0]["lr"])
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if position["step"] % eval_freq == 0 or position["step"] == stop:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                for key, value in [
                    ("steps", position["step"]),
                    ("tokens_seen", position["tokens_seen"]),
                    ("train_losses", train_loss),
                    ("val_losses", val_loss),
                ]:
                    history[key].append(value)
                log(
                    f"epoch {position['epoch'] + 1}, step {position['step']:>5}: "
                    f"train loss {train_loss:.3f}, val loss {val_loss:.3f}"
                )
            if position["step"] == stop:
                break
        epoch_complete = position["batch"] == len(train_loader)
        if epoch_complete:
            position["epoch"] += 1
            position["batch"] = 0
        if progress and start_context is not None and (epoch_complete or position["step"] == total_steps):
            generate_and_print_sample(model, tokenizer, device, start_context)
    bar.close()
    history["position"] = position
    return history


# ch05_pretraining/pretraining.ipynb, 5.2.5 The fast path
def set_sdpa(model, enabled=True):
    """Switch every attention layer of ``model`` to (or from) PyTorch's fused SDPA kernel."""
    for module in model.modules():
        if hasattr(module, "use_sdpa"):
            module.use_sdpa = enabled
    return model


def fast_path_options(device):
    """What the training fast path can use on ``device``.

    Returns {"fused_adamw": bool, "autocast_dtype": torch.bfloat16 or None}. bf16 autocast
    is chosen only where the hardware computes in bf16 natively (a CUDA GPU that supports
    it, or a CPU with AMX or AVX512-BF16 whose AVX-512 kernels PyTorch uses); elsewhere it
    would be emulated and slower.
    """
    device = torch.device(device)
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        bf16 = torch.backends.cpu.get_cpu_capability().startswith("AVX512") and any(
            getattr(torch.cpu, name, lambda: False)() for name in checks
        )
    else:
        bf16 = False
    return {"fused_adamw": device.type in ("cpu", "cuda"), "autocast_dtype": torch.bfloat16 if bf16 else None}


# ch05_pretraining/pretraining.ipynb, 5.3.2 Top-k and top-p sampling
def top_k_filter(logits, k):
    """Keep the ``k`` largest logits of each row, set the others to -inf. (..., vocab) -> same."""
    require_int("top_k", k, 1)
    if k > logits.shape[-1]:
        raise ValueError(f"top_k={k} is larger than the vocabulary ({logits.shape[-1]} tokens)")
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits, p):
    """Keep, per row, the fewest most-probable tokens whose probability sums to >= ``p``.

    (..., vocab) -> same, the dropped logits set to -inf. The most probable token always
    stays; ``p = 1`` keeps everything.
    """
    require_number("top_p", p, 0, 1, low_open=True)
    if p == 1:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    sorted_probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # probability of the tokens ranked above
    sorted_logits = sorted_logits.masked_fill(mass_before >= p, float("-inf"))
    return torch.empty_like(logits).scatter_(-1, order, sorted_logits)


# ch05_pretraining/pretraining.ipynb, 5.3.3 Modifying the text generation function
def sample_next_token(logits, temperature=0.0, top_k=None, top_p=None):
    """Choose one next token per row: logits (batch, vocab_size) -> ids (batch, 1).

    temperature 0 is greedy (argmax). Otherwise the logits are divided by the temperature,
    filtered by top-k and then top-p, and a token is drawn from the softmax of the rest
    (using torch's global random generator: seed it for reproducible samples).
    """
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1)


def _check_generate_args(model, idx, max_new_tokens, context_size, temperature, top_k, top_p, eos_id):
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.shape[1] == 0 or idx.dtype != torch.long:
        raise ValueError(
            "idx must be a LongTensor of shape (batch, num_tokens) with at least one token: "
            "use text_to_token_ids(text, tokenizer)"
        )
    require_int("max_new_tokens", max_new_tokens, 0)
    require_int("context_size", context_size, 1)
    model_context = getattr(getattr(model, "config", None), "context_length", None)
    if model_context is not None and context_size > model_context:
        raise ValueError(
            f"context_size={context_size} exceeds the model's context_length={model_context}: "
            f"use context_size=model.config.context_length"
        )
    require_number("temperature", temperature, 0)  # 0 = greedy
    require_int("top_k", top_k, 1, none_ok=True)
    require_number("top_p", top_p, 0, 1, low_open=True, none_ok=True)
    require_int("eos_id", eos_id, 0, none_ok=True)


def _next_token_logits(model, idx, context_size, cache):
    """Logits (batch, vocab_size) for the token after ``idx``, seeing <= context_size tokens.

    With a cache, only the newest token is fed, once the cache holds the ones before it.
    When the window is full, the cache is rebuilt from the last ``context_size`` tokens:
    the window has shifted, so every position (and every stored key) changes. Past that
    point each step costs a full forward pass, as without a cache, and the tokens stay
    identical to the uncached ones.
    """
    if cache is None:
        return model(idx[:, -context_size:])[:, -1, :]
    if cache.length == 0 or cache.length + 1 > context_size:
        cache.reset()
        return model(idx[:, -context_size:], cache=cache)[:, -1, :]
    return model(idx[:, -1:], cache=cache)[:, -1, :]


def generate(
    model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, top_p=None, eos_id=None, use_cache=False
):
    """Extend each sequence of ``idx`` (batch, num_tokens) by up to ``max_new_tokens`` tokens.

    The model sees at most the last ``context_size`` tokens. ``temperature``/``top_k``/``top_p``
    shape the next-token distribution (see ``sample_next_token``; temperature 0 = greedy, the
    same tokens as chapter 4's ``generate_text_simple``). With ``eos_id``, generation stops once
    every sequence has produced it; the eos token is kept, and sequences that finished earlier
    are padded with it. ``use_cache=True`` reuses keys and values through a ``KVCache``: the same
    tokens, computed much faster. Call ``model.eval()`` first (dropout would make every run differ).
    Returns (batch, num_tokens + generated) token ids.
    """
    _check_generate_args(model, idx, max_new_tokens, context_size, temperature, top_k, top_p, eos_id)
    cache = KVCache(context_size) if use_cache else None
    finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = _next_token_logits(model, idx, context_size, cache)  # (batch, vocab_size)
        next_id = sample_next_token(logits, temperature, top_k, top_p)  # (batch, 1)
        if eos_id is not None:
            next_id = next_id.masked_fill(finished.unsqueeze(1), eos_id)
            finished |= next_id.squeeze(1) == eos_id
        idx = torch.cat([idx, next_id], dim=1)
        if eos_id is not None and finished.all():
            break
    return idx


# ch05_pretraining/pretraining.ipynb, 5.3.4 The KV cache: generating without recomputing the past
class KVCache:
    """Keys and values of every attention layer for the tokens processed so far.

    The protocol chapters 3-4 follow: during a forward pass each attention layer calls
    ``update(layer, keys, values)`` with its new keys/values (batch, heads, new_tokens,
    head_dim) and attends over the returned (batch, heads, length + new_tokens, head_dim);
    after the last block the model calls ``advance(new_tokens)``. ``length`` is the number
    of positions stored, which is also the position of the next token.

    Room for ``max_length`` positions is allocated on first use; going beyond it raises a
    ValueError (with absolute position embeddings, old entries cannot be shifted out: start
    over with ``reset()`` and the last tokens, as ``generate`` does).
    """

    def __init__(self, max_length):
        require_int("max_length", max_length, 1)
        self.max_length = max_length
        self.reset()

    def reset(self):
        """Forget everything: the next forward pass starts again at position 0."""
        self.length = 0
        self._keys, self._values = {}, {}

    def update(self, layer, keys, values):
        """Store ``keys``/``values`` of the new tokens for ``layer``; return those of all positions."""
        new_tokens = keys.shape[2]
        end = self.length + new_tokens
        if end > self.max_length:
            raise ValueError(
                f"the cache holds {self.length} positions and has room for {self.max_length}; "
                f"{new_tokens} more do not fit: reset() it and start again from the last tokens"
            )
        if layer not in self._keys:  # first tokens for this layer: allocate its buffers
            batch, heads, _, head_dim = keys.shape
            self._keys[layer] = keys.new_empty(batch, heads, self.max_length, head_dim)
            self._values[layer] = values.new_empty(batch, heads, self.max_length, head_dim)
        self._keys[layer][:, :, self.length : end] = keys
        self._values[layer][:, :, self.length : end] = values
        return self._keys[layer][:, :, :end], self._values[layer][:, :, :end]

    def advance(self, num_tokens):
        """Called by the model once all layers have stored ``num_tokens`` new positions."""
        self.length += num_tokens


# ch05_pretraining/pretraining.ipynb, 5.4 Loading and saving model weights: checkpoints
def _is_tied(model):
    return model.out_head.weight is model.tok_emb.weight


def _check_state_dict(model, state_dict, source, saved_config=None):
    """Raise ValueError unless ``state_dict`` has exactly the model's tensors with its shapes."""
    expected = model.state_dict()
    hint = ""
    if saved_config is not None:
        differ = [
            f"{k}={saved_config[k]} (model: {v})"
            for k, v in dataclasses.asdict(model.config).items()
            if k in saved_config and saved_config[k] != v
        ]
        hint = f" It was saved with {', '.join(differ)}." if differ else ""
    for name, tensor in expected.items():
        if name not in state_dict:
            raise ValueError(f"{source} has no tensor {name!r}, which the model needs.{hint}")
        if tuple(state_dict[name].shape) != tuple(tensor.shape):
            raise ValueError(
                f"{source} does not fit this model: first mismatching tensor {name!r} has shape "
                f"{tuple(state_dict[name].shape)} in the file but {tuple(tensor.shape)} in the model.{hint} "
                "Build the model with the configuration the file was saved from."
            )
    unexpected = sorted(set(state_dict) - set(expected))
    if unexpected:
        raise ValueError(f"{source} has tensors the model does not: {', '.join(unexpected[:5])}.{hint}")


def save_checkpoint(path, model, optimizer=None, position=None):
    """Atomically save model weights + config, optimizer state, training position and RNG state.

    ``position`` is the dict ``train_model`` returns in ``history["position"]`` (it holds the
    step). Returns the path. Load it with ``load_checkpoint``.
    """
    checkpoint = {
        "format": "llm-course-checkpoint-1",
        "config": dataclasses.asdict(model.config),
        "tied_head": _is_tied(model),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "position": position,
        "rng": {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
    }
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return atomic_write(path, buffer.getvalue())


def load_checkpoint(path, model, optimizer=None, restore_rng=True):
    """Load a ``save_checkpoint`` file into ``model`` (and ``optimizer``); return its position.

    The model must have the configuration the checkpoint was saved from; otherwise a
    ValueError names the first mismatching tensor and both shapes. With ``restore_rng`` the
    random generators continue exactly where the saved run was, which makes a resumed
    ``train_model(..., resume=position)`` bit-identical to an uninterrupted run (on CPU).
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # runs no code from the file
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != "llm-course-checkpoint-1":
        raise ValueError(f"{path} is not a checkpoint written by save_checkpoint")
    _check_state_dict(model, checkpoint["model"], f"checkpoint {Path(path).name}", checkpoint["config"])
    if checkpoint["tied_head"] != _is_tied(model):
        state = "tied to" if checkpoint["tied_head"] else "separate from"
        raise ValueError(
            f"the checkpoint's output head is {state} the token embedding, the model's is not: "
            "tie (model.out_head.weight = model.tok_emb.weight) or untie the model to match"
        )
    model.load_state_dict(checkpoint["model"])
    if optimizer is not None:
        if checkpoint["optimizer"] is None:
            raise ValueError(f"{path} holds no optimizer state: it was saved without an optimizer")
        optimizer.load_state_dict(checkpoint["optimizer"])
    if restore_rng:
        torch.set_rng_state(checkpoint["rng"]["torch"])
        random.setstate(checkpoint["rng"]["python"])
        if torch.cuda.is_available() and len(checkpoint["rng"]["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(checkpoint["rng"]["cuda"])
    return checkpoint["position"]


# ch05_pretraining/pretraining.ipynb, 5.5 Loading pretrained weights from OpenAI
_ATTENTION_MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")  # causal masks some exports include


def load_gpt2_weights(model, state_dict_or_path):
    """Copy GPT-2 weights in the Hugging Face layout into ``model`` (a GPTModel); tie its head.

    ``state_dict_or_path``: a state dict, or the path of a ``.safetensors`` file (anything else
    is read with ``torch.load(weights_only=True)``). Keys may carry the ``transformer.`` prefix
    or not. Conv1D weights (in, out) are transposed to nn.Linear's (out, in); ``c_attn`` is
    split into the query, key and value projections. ``out_head.weight`` becomes the very
    same Parameter as ``tok_emb.weight``, as in GPT-2. Shapes are checked; a mismatch names
    the tensor and both shapes. Returns the model.
    """
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        path = Path(state_dict_or_path)
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state_dict_or_path = load_file(path)
        else:
            state_dict_or_path = torch.load(path, map_location="cpu", weights_only=True)
    weights = {
        name.removeprefix("transformer."): tensor
        for name, tensor in state_dict_or_path.items()
        if not name.endswith(_ATTENTION_MASK_BUFFERS)
    }
    head = weights.pop("lm_head.weight", None)
    cfg = model.config
    if not cfg.qkv_bias:
        raise ValueError(
            "GPT-2 has query/key/value biases: build the model with qkv_bias=True (every GPT_CONFIGS preset does)"
        )

    def take(name, shape):
        if name not in weights:
            raise ValueError(
                f"the GPT-2 weights have no tensor {name!r}: they are for a different size "
                f"than this model (n_layers={cfg.n_layers}, emb_dim={cfg.emb_dim})"
            )
        tensor = weights.pop(name)
        if tuple(tensor.shape) != shape:
            raise ValueError(
                f"GPT-2 tensor {name!r} has shape {tuple(tensor.shape)}, this model needs {shape}: "
                "use the GPTConfig of the same GPT-2 size (GPT_CONFIGS)"
            )
        return tensor

    d = cfg.emb_dim
    with torch.no_grad():
        model.tok_emb.weight.copy_(take("wte.weight", (cfg.vocab_size, d)))
        model.pos_emb.weight.copy_(take("wpe.weight", (cfg.context_length, d)))
        for i, block in enumerate(model.trf_blocks):
            prefix = f"h.{i}."
            for norm, name in [(block.norm1, "ln_1"), (block.norm2, "ln_2")]:
                norm.scale.copy_(take(f"{prefix}{name}.weight", (d,)))
                norm.shift.copy_(take(f"{prefix}{name}.bias", (d,)))
            qkv_weight = take(f"{prefix}attn.c_attn.weight", (d, 3 * d)).split(d, dim=1)  # 3 x (d, d)
            qkv_bias = take(f"{prefix}attn.c_attn.bias", (3 * d,)).split(d)
            for linear, weight, bias in zip(
                [block.att.W_query, block.att.W_key, block.att.W_value], qkv_weight, qkv_bias
            ):
                linear.weight.copy_(weight.T)
                linear.bias.copy_(bias)
            for linear, name, shape in [
                (block.att.out_proj, "attn.c_proj", (d, d)),
                (block.ff.layers[0], "mlp.c_fc", (d, 4 * d)),
                (block.ff.layers[2], "mlp.c_proj", (4 * d, d)),
            ]:
                linear.weight.copy_(take(f"{prefix}{name}.weight", shape).T)
                linear.bias.copy_(take(f"{prefix}{name}.bias", (shape[1],)))
        model.final_norm.scale.copy_(take("ln_f.weight", (d,)))
        model.final_norm.shift.copy_(take("ln_f.bias", (d,)))
    if weights:
        raise ValueError(
            f"the GPT-2 weights have tensors this model has no place for: {', '.join(sorted(weights)[:5])} "
            f"(more blocks than n_layers={cfg.n_layers}?)"
        )
    if head is not None and not torch.equal(head.to(model.tok_emb.weight.dtype), model.tok_emb.weight.detach().cpu()):
        raise ValueError(
            "the file's lm_head.weight differs from wte.weight, but GPT-2 ties them: "
            "these are not GPT-2 weights this loader can tie"
        )
    model.out_head.weight = model.tok_emb.weight  # one shared Parameter, as in GPT-2
    return model


# ch05_pretraining/pretraining.ipynb, 5.5 Loading pretrained weights from OpenAI
GPT2_WEIGHTS = {  # GPT_CONFIGS name -> data-registry name of its Hugging Face safetensors file
    "gpt2-small (124M)": "gpt2-124M",
    "gpt2-medium (355M)": "gpt2-355M",
    "gpt2-large (774M)": "gpt2-774M",
    "gpt2-xl (1558M)": "gpt2-1558M",
}


def _gpt2_weights_file(name, download):
    """Path of a verified local copy of a GPT-2 size's weights (fetching them only if ``download``)."""
    entry = REGISTRY[GPT2_WEIGHTS[name]]
    if not download:
        where = settings()
        local = [where.cache_dir / entry.relpath] + ([where.mirror / entry.relpath] if where.mirror else [])
        if not any(path.exists() for path in local):
            how = (
                "`llm-course fetch --profile book`" if "book" in entry.profiles else f"`llm-course fetch {entry.name}`"
            )
            raise FetchError(
                f"OpenAI's GPT-2 weights for {name} are not on this machine (looked for "
                f"{entry.relpath} in the course cache and mirror). Get them with {how}, "
                f"or call load_pretrained({name!r}, download=True)."
            )
    return fetch(entry.name)


def load_pretrained(name, download=True):
    """A pretrained GPTModel in eval mode, on the CPU (move it with ``.to(device)``).

    name: a GPT_CONFIGS key ("gpt2-small (124M)" ... "gpt2-xl (1558M)") for OpenAI's weights
    through the data registry (``download=False``: only if already cached or mirrored, else
    FetchError), or "course-base" for the course's own small model (cached, or pretrained on
    the spot; see ``load_course_base``).
    """
    if name == "course-base":
        return load_course_base()
    if name not in GPT2_WEIGHTS:
        raise ValueError(f"unknown model {name!r}: choose 'course-base' or one of {', '.join(map(repr, GPT2_WEIGHTS))}")
    model = GPTModel(GPT_CONFIGS[name])
    load_gpt2_weights(model, _gpt2_weights_file(name, download))
    return model.eval()


# ch05_pretraining/pretraining.ipynb, 5.6 `course-base`: the course's own pretrained GPT
@dataclass(frozen=True)
class PretrainSettings:
    """Everything that determines a pretrained model: its cache is rebuilt when any field changes."""

    config: GPTConfig
    texts: tuple[str, ...]  # data-registry names, read in this order
    val_fraction: float  # the end of each text that is held out for validation
    batch_size: int
    num_epochs: int
    max_steps: int | None  # stop after this many optimizer steps (None: run every epoch)
    learning_rate: float  # the peak, reached after the warmup
    min_learning_rate: float  # where the cosine decay ends
    warmup_steps: int
    weight_decay: float
    grad_clip: float
    embedding_std: float  # initial spread of the token and position embeddings
    sdpa: bool  # the fast path without bf16 (exact float32 on every CPU)
    fused_adamw: bool
    eval_freq: int
    eval_iter: int
    seed: int


# fmt: off
COURSE_BASE_RECIPE = PretrainSettings(  # laid out as a table: the model, the data, the optimizer, the rest
    config=GPTConfig(vocab_size=4096, context_length=256, emb_dim=128, n_heads=4, n_layers=6, drop_rate=0.0,
                     qkv_bias=False, use_sdpa=False),
    texts=("tinyshakespeare", "the-verdict"), val_fraction=0.1, batch_size=8, num_epochs=5, max_steps=600,
    learning_rate=2e-3, min_learning_rate=2e-4, warmup_steps=20, weight_decay=0.1, grad_clip=1.0,
    embedding_std=0.02, sdpa=True, fused_adamw=True, eval_freq=100, eval_iter=4, seed=123,
)
# fmt: on


def course_base_config():
    """The GPTConfig of course-base (its own 4,096-token vocabulary, 256-token context, 6 blocks of width 128)."""
    return COURSE_BASE_RECIPE.config


def course_base_texts():
    """(train_text, val_text) of course-base: each text split 90/10, the parts joined by <|endoftext|>."""
    texts = [fetch(name).read_text(encoding="utf-8") for name in COURSE_BASE_RECIPE.texts]
    cuts = [round(len(text) * (1 - COURSE_BASE_RECIPE.val_fraction)) for text in texts]
    train = END_OF_TEXT.join(text[:cut] for text, cut in zip(texts, cuts))
    val = END_OF_TEXT.join(text[cut:] for text, cut in zip(texts, cuts))
    return train, val


def train_course_base_tokenizer():
    """course-base's tokenizer: chapter 2's byte-level BPE, trained on course-base's training text.

    Its ``config.vocab_size`` ids are the 256 bytes, the merges learned from the text, and
    <|endoftext|> as the last id. Deterministic (the same text gives the same merges) and
    fast: about a second.
    """
    train_text, _ = course_base_texts()
    return BPETokenizer().train(train_text, course_base_config().vocab_size, special_tokens=[END_OF_TEXT])


def train_course_base(tokenizer, progress=True):
    """Pretrain course-base from scratch on the CPU, on text encoded by ``tokenizer``; return (model, history).

    ``tokenizer`` is ``train_course_base_tokenizer()``. Deterministic: seeded, float32, CPU.
    Runs inside ``torch.random.fork_rng``, so the caller's random state is the same afterwards.
    """
    recipe = COURSE_BASE_RECIPE
    config = course_base_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = GPTModel(config)
        torch.nn.init.normal_(model.tok_emb.weight, std=recipe.embedding_std)
        torch.nn.init.normal_(model.pos_emb.weight, std=recipe.embedding_std)
        model.out_head.weight = model.tok_emb.weight  # tied head
        set_sdpa(model, recipe.sdpa)
        train_text, val_text = course_base_texts()
        loader_args = dict(
            batch_size=recipe.batch_size,
            context_length=config.context_length,
            stride=config.context_length,
            tokenizer=tokenizer,
        )
        train_loader = create_dataloader(train_text, shuffle=True, drop_last=True, **loader_args)
        val_loader = create_dataloader(val_text, shuffle=False, drop_last=False, **loader_args)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay, fused=recipe.fused_adamw
        )
        history = train_model(
            model,
            train_loader,
            val_loader,
            optimizer,
            "cpu",
            recipe.num_epochs,
            recipe.eval_freq,
            recipe.eval_iter,
            start_context="ROMEO:",
            tokenizer=tokenizer,
            warmup_steps=recipe.warmup_steps,
            cosine_decay=True,
            min_lr=recipe.min_learning_rate,
            grad_clip=recipe.grad_clip,
            max_steps=recipe.max_steps,
            progress=progress,
        )
    set_sdpa(model, config.use_sdpa)  # back to what its config says
    return model.eval(), history


# ch05_pretraining/pretraining.ipynb, 5.6 `course-base`: the course's own pretrained GPT
def save_model_folder(model, folder, tokenizer=None, **info):
    """Save a GPTModel to ``folder`` as ``model.safetensors`` + ``config.json``, each atomically.

    config.json holds the GPTConfig, whether the output head is tied to the token embedding
    (a tied matrix is stored once), the weights' SHA-256 and any JSON-able ``info`` given
    (e.g. the recipe and the final losses). A ``tokenizer`` (chapter 2's ``BPETokenizer``)
    is saved beside them as ``tokenizer.json``, with its SHA-256 in config.json. config.json
    is written last: a folder without it holds no model. Chapter 7 saves its fine-tuned
    models in the same format.
    """
    from safetensors.torch import save

    folder = Path(folder)
    tied = model.out_head.weight is model.tok_emb.weight
    state = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in model.state_dict().items()
        if not (tied and name == "out_head.weight")
    }
    weights = atomic_write(folder / "model.safetensors", save(state, metadata={"format": "pt"}))
    meta = {
        "config": dataclasses.asdict(model.config),
        "tied_head": tied,
        "sha256": sha256_of(weights),
        "torch": torch.__version__,
        **info,
    }
    if tokenizer is not None:
        meta["tokenizer_sha256"] = sha256_of(tokenizer.save(folder / "tokenizer.json"))
    atomic_write(folder / "config.json", json.dumps(meta, indent=2, default=_json_default))


def _json_default(value):
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def read_model_info(folder):
    """The ``config.json`` of a saved model folder as a dict, or None when it is missing or unreadable."""
    try:
        return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _intact_model_info(folder, with_tokenizer, expected):
    """``folder``'s config.json if its entries match ``expected`` and the tokenizer saved with the model
    (required when ``with_tokenizer``) matches its SHA-256; else None. The weights are not read."""
    meta = read_model_info(folder)
    if meta is None or any(
        meta.get(key) != json.loads(json.dumps(value, default=_json_default)) for key, value in expected.items()
    ):
        return None
    if "tokenizer_sha256" not in meta:
        return None if with_tokenizer else meta
    tokenizer = Path(folder) / "tokenizer.json"
    return meta if tokenizer.exists() and sha256_of(tokenizer) == meta["tokenizer_sha256"] else None


def read_model_folder(folder, with_tokenizer=False, **expected):
    """The GPTModel saved in ``folder`` (eval mode, CPU), or None when it is missing or not intact.

    Not intact: config.json is unreadable, the weights (or the tokenizer saved with them) do
    not match their SHA-256, an entry of config.json differs from ``expected`` (compared as JSON, e.g.
    ``recipe=COURSE_BASE_RECIPE``: a model trained with another recipe does not count), or
    ``with_tokenizer`` is set and no tokenizer was saved with the model.
    """
    from safetensors.torch import load_file

    meta = _intact_model_info(folder, with_tokenizer, expected)
    weights = Path(folder) / "model.safetensors"
    if meta is None or not weights.exists() or sha256_of(weights) != meta.get("sha256"):
        return None
    with torch.random.fork_rng(devices=[]):  # the random initialisation is overwritten anyway
        model = GPTModel(GPTConfig(**meta["config"]))
    state = load_file(weights)
    if meta["tied_head"]:
        model.out_head.weight = model.tok_emb.weight
        state["out_head.weight"] = state["tok_emb.weight"]
    _check_state_dict(model, state, f"{weights}")
    model.load_state_dict(state)
    return model.eval()


def read_model_tokenizer(folder, **expected):
    """The tokenizer saved with the model in ``folder`` (a ``BPETokenizer``), or None when there is none,
    it does not match its SHA-256 or config.json differs from ``expected``. Reads no weights."""
    meta = _intact_model_info(folder, True, expected)
    return None if meta is None else BPETokenizer.load(Path(folder) / "tokenizer.json")


def course_base_dir():
    """Where course-base lives: ``<course cache>/models/course-base`` (``settings().cache_dir``)."""
    return settings().cache_dir / "models" / "course-base"


def load_course_base(progress=True):
    """course-base from the cache (``course_base_dir()``), training it if needed.

    Returns a GPTModel in eval mode on the CPU, bit-identical whether it came from the cache
    or was just trained (the fresh weights are saved, then read back). Training prints what
    it does; the caller's random state is left unchanged either way.
    """
    folder = course_base_dir()
    model = read_model_folder(folder, with_tokenizer=True, recipe=COURSE_BASE_RECIPE)
    if model is None:
        print(
            f"course-base is not in the cache ({folder}); pretraining it now on Tiny Shakespeare "
            "+ The Verdict (under 3 minutes on a 2-core CPU, once per machine)"
        )
        tokenizer = train_course_base_tokenizer()
        trained, history = train_course_base(tokenizer, progress=progress)
        save_model_folder(
            trained,
            folder,
            tokenizer,
            name="course-base",
            recipe=COURSE_BASE_RECIPE,
            steps=history["position"]["step"],
            tokens_seen=history["position"]["tokens_seen"],
            final_train_loss=history["train_losses"][-1],
            final_val_loss=history["val_losses"][-1],
        )
        model = read_model_folder(folder, with_tokenizer=True, recipe=COURSE_BASE_RECIPE)
        print(f"saved course-base to {folder}")
    return model


def load_tokenizer(name):
    """The tokenizer that goes with ``load_pretrained(name)``.

    course-base has its own vocabulary: chapter 2's ``BPETokenizer`` saved with the model
    (trained with it when the cache lacks it). OpenAI's GPT-2 sizes use GPT-2's encoding.
    """
    if name == "course-base":
        tokenizer = read_model_tokenizer(course_base_dir(), recipe=COURSE_BASE_RECIPE)
        if tokenizer is None:  # course-base is not trained yet (or damaged): the two are made together
            load_course_base()
            tokenizer = read_model_tokenizer(course_base_dir(), recipe=COURSE_BASE_RECIPE)
        return tokenizer
    if name not in GPT2_WEIGHTS:
        raise ValueError(f"unknown model {name!r}: choose 'course-base' or one of {', '.join(map(repr, GPT2_WEIGHTS))}")
    return gpt2_encoding()


# ch05_pretraining/pretraining.ipynb, 5.6 `course-base`: the course's own pretrained GPT
def unigram_baseline_loss(train_ids, val_ids, vocab_size):
    """Cross-entropy on ``val_ids`` of predicting every token by its ``train_ids`` frequency.

    Both are 1-D LongTensors of token ids below ``vocab_size``. Counts are add-one smoothed, so a token never seen
    in training keeps a small probability. A model that uses context must beat this number.
    """
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1
    return -torch.log(counts / counts.sum())[val_ids].mean().item()
