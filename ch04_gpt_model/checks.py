"""Self-checks for the chapter 4 exercises (used by gpt_model.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off. A check never
raises on a wrong answer: it calls the reader's code only through ``call_safely`` and
explains, so the reader can try again.
"""

import contextlib
import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from ch04_gpt_model.gpt_model import TransformerBlock, count_parameters
from shared import GPT_CONFIGS, GPTConfig, GPTModel, generate_text_simple
from shared.exercises import RETURNED_NONE, call_safely, is_integer, not_a_function, not_answered, report

# Small enough to check in milliseconds; dropout on, so forgetting a dropout shows.
SMALL = GPTConfig(vocab_size=50, context_length=8, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.2, qkv_bias=True)
SEED = 1  # the seed of every call of the reader's code, and of the reference it is compared with


class ShortcutNotAllowed(Exception):
    """Raised inside the reader's code when it calls what the exercise asks them to write."""


@contextlib.contextmanager
def _forbid(targets, message):
    """Temporarily replace each ``(owner, attribute)`` in ``targets`` by a function that raises ``message``."""

    def refuse(*args, **kwargs):
        raise ShortcutNotAllowed(message)

    saved = [(owner, name, getattr(owner, name)) for owner, name in targets]
    try:
        for owner, name, _ in saved:
            setattr(owner, name, refuse)
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def _answer(label, fn, *args):
    """Call the reader's ``fn(*args)`` safely, seeded: ``(None, result)``, or ``(what is off, None)``.

    The random generator is seeded with ``SEED``, so dropout draws the same masks as the
    reference run; the caller's random state is left alone.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        ok, got = call_safely(fn, *args)
    if not ok:
        return f"{label} raised an error (see above)", None
    if got is None:
        return RETURNED_NONE, None
    return None, got


def _tensor_problem(got, expected_shape, what):
    """A message if ``got`` is not a tensor of ``expected_shape``, else None."""
    if not isinstance(got, torch.Tensor):
        return f"{what} should return a tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(expected_shape):
        return f"{what} should return shape {tuple(expected_shape)}, got {tuple(got.shape)}"
    return None


def _check_function(fn, name, find_problem):
    """Check a reader's function ``fn``: answered, callable, then ``find_problem(fn)`` (None or what is off)."""
    if not_a_function(fn, name):
        return
    with torch.random.fork_rng(devices=[]):  # the checks seed their own models: leave the caller's state alone
        problem = find_problem(fn)
    report(problem, prefix="Not yet: ")


# ---------------------------------------------------------------- exercise 1


def check_exercise_1(att_params, ff_params):
    """Exercise 1 (book exercise 4.1): parameters of one gpt2-medium block's ``att`` and ``ff`` layers."""
    if not_answered(att_params, "Not answered yet: set att_params to your number.") or not_answered(
        ff_params, "Not answered yet: set ff_params to your number."
    ):
        return
    report(_parameter_problem(att_params, ff_params), prefix="Not yet: ")


def _parameter_problem(att_params, ff_params):
    for name, value in [("att_params", att_params), ("ff_params", ff_params)]:
        if not is_integer(value):
            return f"{name} should be a whole number (an int), got {type(value).__name__} {value!r}"
    with torch.device("meta"):  # shapes only, no memory
        block = TransformerBlock(GPT_CONFIGS["gpt2-medium (355M)"])
    att, ff = count_parameters(block.att), count_parameters(block.ff)
    problems = []
    if att_params != att:
        problems.append(
            f"att_params = {att_params:,} is off by {att_params - att:+,}: count W_query, W_key, "
            "W_value (GPT-2 gives them biases) and out_proj (always has a bias)"
        )
    if ff_params != ff:
        problems.append(
            f"ff_params = {ff_params:,} is off by {ff_params - ff:+,}: two Linear layers, "
            "emb_dim -> 4*emb_dim -> emb_dim, each with a bias"
        )
    return "; ".join(problems) or None


# ---------------------------------------------------------------- exercise 2


def _block_variants(block, x):
    """Outputs of the typical wrong block forwards (eval mode), to name the mistake."""
    att, ff = block.att, block.ff
    h = block.norm1(x + att(x))
    post_ln = block.norm2(h + ff(h))
    h = att(block.norm1(x))
    no_shortcut = ff(block.norm2(h))
    h = x + att(block.norm1(x))
    one_norm = h + ff(block.norm1(h))
    h = x + att(x)
    no_norm = h + ff(h)
    return {
        "it normalizes after adding the shortcut (post-LayerNorm, the original transformer's order); "
        "GPT-2 normalizes the input of each half": post_ln,
        "it has no shortcuts: add each half's input back to its output": no_shortcut,
        "it uses norm1 for both halves: the feed-forward half has its own norm2": one_norm,
        "it never normalizes: each half starts with its LayerNorm": no_norm,
    }


def check_exercise_2(block_forward):
    """Exercise 2: ``block_forward(block, x)`` must compute ``TransformerBlock``'s forward pass.

    It is compared with the block's own forward on a small block with random weights (and
    random LayerNorm scales, so the two norms differ), in evaluation mode and in training
    mode with the same dropout masks. Calling the block itself is refused.
    """
    _check_function(block_forward, "block_forward(block, x)", _block_forward_problem)


def _block_forward_problem(block_forward):
    torch.manual_seed(0)
    block = TransformerBlock(SMALL)
    with torch.no_grad():
        for norm in (block.norm1, block.norm2):
            norm.scale.uniform_(0.5, 1.5)
            norm.shift.normal_(0.0, 0.5)
    x = torch.randn(2, 6, SMALL.emb_dim)  # (batch, tokens, emb_dim)
    refusal = "write the forward pass from the block's parts; block(x) and block.forward are what you replace"
    for mode in ("eval", "train"):
        block.train(mode == "train")
        with torch.no_grad():
            torch.manual_seed(SEED)
            expected = block(x)
            variants = _block_variants(block, x) if mode == "eval" else {}
        with torch.no_grad(), _forbid([(TransformerBlock, "forward")], refusal):
            problem, got = _answer(f"block_forward ({mode} mode)", block_forward, block, x)
        problem = problem or _tensor_problem(got, x.shape, "block_forward")
        if problem:
            return problem
        if torch.allclose(got, expected, rtol=1e-5, atol=1e-6):  # same operations; float32 rounding only
            continue
        if mode == "train":
            return (
                "right without dropout, wrong in training mode: apply block.drop_shortcut to each half's "
                "output before adding it back (the attention layer applies its own dropout inside)"
            )
        named = [why for why, out in variants.items() if torch.allclose(got, out, rtol=1e-5, atol=1e-6)]
        return (
            named[0]
            if named
            else (
                "the output differs from the block's forward: x + drop(att(norm1(x))), then the same with norm2 and ff"
            )
        )
    return None


# ---------------------------------------------------------------- exercise 3


def _dropout_rates(model):
    """``{module name: p}`` for every dropout layer in ``model``."""
    return {name: module.p for name, module in model.named_modules() if isinstance(module, nn.Dropout)}


def _expected_rates(config, emb_rate, shortcut_rate, attention_rate):
    rates = {"drop_emb": emb_rate}
    for i in range(config.n_layers):
        rates[f"trf_blocks.{i}.att.dropout"] = attention_rate
        rates[f"trf_blocks.{i}.drop_shortcut"] = shortcut_rate
    return rates


def _reference_gpt(config, emb_rate, shortcut_rate, attention_rate):
    """GPTModel(config) with its three kinds of dropout layers replaced (the check's own answer)."""
    model = GPTModel(config)
    model.drop_emb = nn.Dropout(emb_rate)
    for block in model.trf_blocks:
        block.att.dropout = nn.Dropout(attention_rate)
        block.drop_shortcut = nn.Dropout(shortcut_rate)
    return model


def check_exercise_3(build_gpt):
    """Exercise 3 (book exercise 4.3): ``build_gpt(config, emb_rate, shortcut_rate, attention_rate)``.

    Each call uses three different rates (none equal to ``config.drop_rate``), so a rate
    that lands in the wrong place, or the configuration's single rate left in place, shows.
    The model must have each rate in the right dropout layers and, in training mode, give
    exactly the output of a reference model with the same weights and dropout masks.
    """
    _check_function(build_gpt, "build_gpt(config, emb_rate, shortcut_rate, attention_rate)", _dropout_problem)


def _dropout_problem(build_gpt):
    config = dataclasses.replace(SMALL, drop_rate=0.05)
    idx = torch.tensor([[3, 14, 15, 9, 26, 5], [35, 8, 9, 7, 9, 32]])  # (batch, tokens)
    for rates in [(0.1, 0.2, 0.3), (0.4, 0.0, 0.15)]:
        label = "build_gpt(config, emb_rate={}, shortcut_rate={}, attention_rate={})".format(*rates)
        problem, model = _answer(label, build_gpt, config, *rates)
        if problem:
            return problem
        if not isinstance(model, nn.Module):
            return f"{label} should return the model (an nn.Module), got {type(model).__name__}"
        got_rates, expected_rates = _dropout_rates(model), _expected_rates(config, *rates)
        wrong = [
            f"{name} has p={got_rates.get(name)}, expected {p}"
            for name, p in expected_rates.items()
            if got_rates.get(name) != p
        ]
        if wrong:
            return f"{label}: " + "; ".join(wrong[:3]) + ("; ..." if len(wrong) > 3 else "")
        extra = sorted(set(got_rates) - set(expected_rates))
        if extra:
            return f"{label}: unexpected dropout layers {extra}; GPT-2 has dropout in three kinds of places only"
        if set(_dropout_rates(GPTModel(config)).values()) != {config.drop_rate}:
            return (
                "GPTModel itself has changed: GPTModel(config) must still use config.drop_rate everywhere; "
                "change only the model your function returns"
            )
        reference = _reference_gpt(config, *rates)
        ok, _ = call_safely(lambda reference=reference, model=model: reference.load_state_dict(model.state_dict()))
        if not ok:
            return f"{label}: the model's weights don't have GPTModel's names and shapes (see above)"
        reference.train()
        model.train()
        with torch.no_grad():
            problem, got = _answer(f"{label}: the model, in training mode,", model, idx)
            torch.manual_seed(SEED)
            expected = reference(idx)
        problem = problem or _tensor_problem(got, expected.shape, "the model")
        if problem:
            return problem
        if not torch.allclose(got, expected, rtol=1e-5, atol=1e-6):  # same operations and masks
            return (
                f"{label}: in training mode the output differs from a GPTModel with these rates: "
                "are the dropout layers you set the ones forward actually calls?"
            )
    return None


# ---------------------------------------------------------------- exercise 4


def check_exercise_4(rmsnorm_cls):
    """Exercise 4: ``rmsnorm_cls(emb_dim)`` must match ``torch.nn.RMSNorm(emb_dim, eps=1e-5)``, computed by hand."""
    if not_answered(rmsnorm_cls, "Not answered yet: set RMSNorm to your class."):
        return
    if not (isinstance(rmsnorm_cls, type) and issubclass(rmsnorm_cls, nn.Module)):
        return report(f"RMSNorm should be a class derived from nn.Module, got {rmsnorm_cls!r}", prefix="Not yet: ")
    report(_rmsnorm_problem(rmsnorm_cls), prefix="Not yet: ")


def _rmsnorm_problem(rmsnorm_cls):
    problem, norm = _answer("RMSNorm(16)", rmsnorm_cls, 16)
    if problem:
        return problem
    names = sorted(name for name, _ in norm.named_parameters())
    if names != ["scale"]:
        return f"RMSNorm should have one parameter, scale (no shift); it has {names}"
    generator = torch.Generator().manual_seed(0)
    reference = nn.RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        norm.scale.copy_(torch.rand(16, generator=generator) + 0.5)
        reference.weight.copy_(norm.scale)
    refusal = "write the formula yourself: PyTorch's RMSNorm is what the check compares against"
    forbidden = [(F, "rms_norm"), (torch, "rms_norm"), (nn.RMSNorm, "forward")]
    for label, x in [
        ("ordinary input", 3 * torch.randn(2, 3, 16, generator=generator) + 1),
        ("tiny input, where eps matters", 1e-3 * torch.randn(2, 3, 16, generator=generator)),
    ]:
        with torch.no_grad():
            expected = reference(x)
            with _forbid(forbidden, refusal):
                problem, got = _answer(f"{label}: your module", norm, x)
        problem = problem or _tensor_problem(got, expected.shape, "RMSNorm")
        if problem:
            return problem
        # float32 rounding of the same formula stays far below 1e-5 relative
        if not torch.allclose(got, expected, rtol=1e-5, atol=1e-6):
            return f"{label}: the output differs from torch.nn.RMSNorm (check the mean of squares, eps=1e-5, scale)"
    return None


# ---------------------------------------------------------------- exercise 5


def check_exercise_5(generate_fn):
    """Exercise 5: ``generate_fn(model, idx, max_new_tokens, context_size, eos_id)`` stops right after eos_id."""
    _check_function(
        generate_fn, "generate_until(model, idx, max_new_tokens, context_size, eos_id)", _generation_problem
    )


def _generation_problem(generate_fn):
    config = GPTConfig(vocab_size=50, context_length=8, emb_dim=32, n_heads=4, n_layers=2)
    torch.manual_seed(0)
    model = GPTModel(config).eval()
    prompt = torch.tensor([[1, 2, 3]])
    full = generate_text_simple(model, prompt, max_new_tokens=12, context_size=8)  # 15 > 8 tokens: crops
    new = full[0, 3:].tolist()
    absent = next(i for i in range(config.vocab_size) if i not in new)
    cases = [
        (new[5], full[:, : 3 + new.index(new[5]) + 1], f"eos_id={new[5]} (generated)"),
        (new[0], full[:, :4], f"eos_id={new[0]} (the first new token)"),
        (absent, full, f"eos_id={absent} (never generated)"),
    ]
    for eos_id, expected, label in cases:
        problem, got = _answer(f"{label}: generate_until", generate_fn, model, prompt, 12, 8, eos_id)
        if problem:
            return problem
        if not isinstance(got, torch.Tensor):
            return f"generate_until should return a tensor of token ids, got {type(got).__name__}"
        if got.shape != expected.shape or not torch.equal(got, expected):
            return f"{label}: expected {expected.tolist()}, got {got.tolist()}"
    return None
