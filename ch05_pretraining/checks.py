"""Self-checks for the chapter 5 exercises (used by pretraining.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off. A check never
raises on a wrong answer: it explains, so the reader can try again. Expected answers come
from the exercise's statement or from the chapter's own code (``top_k_filter``, ``KVCache``,
``load_gpt2_weights``), not from stored numbers.
"""

import math

import torch

from ch05_pretraining.pretraining import top_k_filter
from shared import GPTConfig, GPTModel, KVCache, load_gpt2_weights
from shared.exercises import (
    NOT_ANSWERED,
    aten_ops_called,
    call_answer,
    call_safely,
    is_number,
    not_a_function,
    not_answered,
)


def check_exercise_1(loss, perplexity):
    """Cross-entropy and perplexity of the target probabilities 0.5, 0.25, 0.8, 0.1."""
    if not_answered(loss) or not_answered(perplexity):
        return
    if not is_number(loss) or not is_number(perplexity):
        print(
            f"loss and perplexity should be numbers (floats), got {type(loss).__name__} and "
            f"{type(perplexity).__name__}."
        )
        return
    probs = [0.5, 0.25, 0.8, 0.1]
    expected = -sum(math.log(p) for p in probs) / len(probs)
    if abs(loss - expected) > 1e-4:
        if abs(loss - expected / math.log(2)) < 1e-4 or abs(loss - expected / math.log(10)) < 1e-4:
            print("Close: use the natural logarithm (math.log), as PyTorch's cross_entropy does.")
        elif abs(loss + expected) < 1e-4:
            print("Sign error: the loss is the *negative* mean log-probability (it is positive).")
        else:
            print(f"loss = {loss} is not right: average -ln(p) over the four probabilities.")
        return
    if abs(perplexity - math.exp(expected)) > 1e-3 * math.exp(expected):
        if abs(perplexity - 2**expected) < 1e-3:
            print("The loss is right; the perplexity is exp(loss), the inverse of the natural log, not 2 ** loss.")
        else:
            print(f"The loss is right; the perplexity is exp(loss), not {perplexity}.")
        return
    print(
        f"Correct! Perplexity {perplexity:.2f}: as unsure as a uniform choice among about {round(perplexity)} tokens."
    )


def check_exercise_2(my_top_k):
    """``my_top_k(logits, k)`` must keep exactly the k largest entries of every row, without topk.

    The reader's function runs under ``aten_ops_called``, which sees PyTorch's topk operator
    however it is reached: ``torch.topk``, ``logits.topk``, a name imported before the check,
    ``top_k_filter``, or ``torch.ops.aten.topk``.
    """
    if not_a_function(my_top_k, "my_top_k(logits, k)"):
        return
    generator = torch.Generator().manual_seed(0)
    cases = [
        (torch.randn(10, generator=generator), 3),
        (torch.randn(4, 50, generator=generator), 1),
        (torch.randn(2, 3, 20, generator=generator), 7),
        (torch.randn(5, 8, generator=generator), 8),
    ]
    for logits, k in cases:
        ok, got, ops = aten_ops_called(my_top_k, logits.clone(), k)
        if "topk" in ops:
            print(
                "Your function calls torch.topk (directly or through top_k_filter): the exercise is to do "
                "without it. Sort each row with torch.sort and use the k-th value as a threshold."
            )
            return
        if not ok or not_answered(got):
            return
        expected = top_k_filter(logits, k)
        if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
            print(f"Return a tensor of the input's shape {tuple(logits.shape)}.")
            return
        if not torch.equal(got, expected):
            kept = torch.isfinite(got).sum(dim=-1).flatten().tolist()
            print(
                f"For shape {tuple(logits.shape)}, k={k}: rows keep {kept} entries, each should keep {k} "
                "unchanged and the rest should be -inf."
            )
            return
    print("Correct!")


def check_exercise_3(warmup_linear):
    """Linear warmup, then a straight line to min_lr at step total_steps - 1."""
    if not_a_function(warmup_linear, "warmup_linear(step, total_steps, peak_lr, warmup_steps, min_lr)"):
        return
    for total, peak, warmup, floor in [(100, 1.0, 10, 0.1), (50, 3e-3, 0, 3e-4), (20, 2.0, 5, 0.0)]:
        for step in range(total):
            if step < warmup:
                expected = peak * (step + 1) / warmup
            else:
                expected = peak + (floor - peak) * (step - warmup) / (total - 1 - warmup)
            ok, got = call_safely(warmup_linear, step, total, peak, warmup, floor)
            if not ok or not_answered(got):
                return
            if not is_number(got):
                print(f"warmup_linear should return a number (the learning rate), got {type(got).__name__}.")
                return
            if not math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12):
                print(
                    f"total_steps={total}, peak_lr={peak}, warmup_steps={warmup}, min_lr={floor}: "
                    f"step {step} should get {expected:.6g}, yours gives {got:.6g}."
                )
                return
    print("Correct!")


def _allocated_cache_bytes(config, batch, tokens, dtype):
    """Bytes KVCache really allocates for ``tokens`` positions of a ``config`` model in ``dtype``."""
    torch.manual_seed(0)
    model = GPTModel(config).to(dtype).eval()
    cache = KVCache(tokens)
    with torch.no_grad():
        model(torch.zeros(batch, tokens, dtype=torch.long), cache=cache)
    return sum(t.numel() * t.element_size() for store in (cache._keys, cache._values) for t in store.values())


# (config, batch, num_tokens, dtype, pass bytes_per_value?): every text is shorter than the context
# (the cache grows with the text, not with context_length), most configs have several heads (they
# share emb_dim), and the sizes come in float32, by default and given explicitly, and in bf16.
KV_CACHE_CASES = [
    (GPTConfig(vocab_size=50, context_length=16, emb_dim=32, n_heads=4, n_layers=2), 1, 9, torch.float32, False),
    (GPTConfig(vocab_size=50, context_length=24, emb_dim=24, n_heads=2, n_layers=3), 3, 7, torch.float32, True),
    (GPTConfig(vocab_size=50, context_length=20, emb_dim=16, n_heads=1, n_layers=2), 2, 5, torch.bfloat16, True),
    (GPTConfig(vocab_size=50, context_length=32, emb_dim=48, n_heads=6, n_layers=1), 4, 11, torch.bfloat16, True),
]


def check_exercise_4(kv_cache_bytes):
    """Bytes of keys + values for a config, compared with what KVCache allocates (``KV_CACHE_CASES``)."""
    if not_a_function(kv_cache_bytes, "kv_cache_bytes(config, batch_size, num_tokens, bytes_per_value=4)"):
        return
    for config, batch, tokens, dtype, explicit in KV_CACHE_CASES:
        allocated = _allocated_cache_bytes(config, batch, tokens, dtype)
        bytes_per_value = torch.finfo(dtype).bits // 8
        args = (config, batch, tokens, bytes_per_value) if explicit else (config, batch, tokens)
        ok, got = call_answer(kv_cache_bytes, *args, message=NOT_ANSWERED)
        if not ok:
            return
        if not is_number(got):
            print(f"kv_cache_bytes should return a number of bytes, got {type(got).__name__}.")
            return
        if got != allocated:
            print(
                f"{config.n_layers} layers, emb_dim {config.emb_dim}, {config.n_heads} heads, context_length "
                f"{config.context_length}, batch {batch}, {tokens} tokens, {bytes_per_value} bytes "
                f"per value: KVCache allocates {allocated:,} bytes, you compute {got:,}."
            )
            return
    ok, half = call_safely(kv_cache_bytes, GPTConfig(), 1, 1024, 2)
    ok_xl, xl = call_safely(kv_cache_bytes, GPTConfig(emb_dim=1600, n_heads=25, n_layers=48), 1, 1024)
    if ok and ok_xl and is_number(half) and is_number(xl):
        print(
            f"Correct! GPT-2 small at 1,024 tokens in 16-bit: {half / 2**20:.0f} MiB per sequence; "
            f"GPT-2 XL in float32: {xl / 2**20:.0f} MiB."
        )


def _tiny_gpt2_names():
    config = GPTConfig(vocab_size=50, context_length=8, emb_dim=8, n_heads=2, n_layers=2, qkv_bias=True)
    names = ["wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"]
    for i in range(2):
        for part in ["ln_1", "ln_2", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]:
            names += [f"h.{i}.{part}.weight", f"h.{i}.{part}.bias"]
    return config, names


def check_exercise_5(course_name):
    """``course_name(hf_name) -> (name, transpose)``, checked by loading marked weights."""
    if not_a_function(course_name, "course_name(hf_name)"):
        return
    config, names = _tiny_gpt2_names()
    model = GPTModel(config)
    shapes = {"wte.weight": (50, 8), "wpe.weight": (8, 8)}
    d = config.emb_dim
    state = {}
    for i in range(config.n_layers):  # GPT-2 shapes (Conv1D weights are (in, out))
        shapes |= {
            f"h.{i}.attn.c_attn.weight": (d, 3 * d),
            f"h.{i}.attn.c_attn.bias": (3 * d,),
            f"h.{i}.attn.c_proj.weight": (d, d),
            f"h.{i}.mlp.c_fc.weight": (d, 4 * d),
            f"h.{i}.mlp.c_fc.bias": (4 * d,),
            f"h.{i}.mlp.c_proj.weight": (4 * d, d),
        }
    generator = torch.Generator().manual_seed(0)
    for name in names + [f"h.{i}.attn.c_attn.{p}" for i in range(2) for p in ("weight", "bias")]:
        state[name] = torch.randn(shapes.get(name, (d,)), generator=generator)
    load_gpt2_weights(model, state)
    params = dict(model.named_parameters())
    for hf_name in names:
        ok, got = call_safely(course_name, hf_name)
        if not ok or not_answered(got):
            return
        if not (isinstance(got, tuple) and len(got) == 2):
            print(f"course_name({hf_name!r}) should return a pair (name, transpose), got {got!r}.")
            return
        name, transpose = got
        if not isinstance(name, str) or not isinstance(transpose, bool):
            print(f"course_name({hf_name!r}) should return (a str, a bool), got {got!r}.")
            return
        if name not in params:
            print(
                f"course_name({hf_name!r}) gives {name!r}, which is not a GPTModel parameter "
                "(see [n for n, _ in model.named_parameters()])."
            )
            return
        source = state[hf_name].T if transpose else state[hf_name]
        if params[name].shape != source.shape or not torch.equal(params[name].detach(), source):
            print(
                f"course_name({hf_name!r}) = {got!r} is not where the loader puts that tensor "
                "(check the name, and whether a Conv1D weight needs transposing)."
            )
            return
    print("Correct!")
