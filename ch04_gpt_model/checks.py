"""Self-checks for the chapter 4 exercises (used by gpt_model.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off. A check
never raises on a wrong answer: it explains, so the reader can try again.
"""

import torch
import torch.nn as nn

from ch04_gpt_model.gpt_model import GPT_CONFIGS, GPTConfig, GPTModel, TransformerBlock, count_parameters, generate_text_simple


def _report(problems):
    """Print the self-check verdict: ``Correct!`` or each problem found."""
    print("Correct!" if not problems else "Not yet:\n- " + "\n- ".join(problems))


def check_exercise_1(att_params, ff_params):
    """Exercise 1: parameters of one gpt2-medium block's ``att`` and ``ff`` layers."""
    if att_params is None or ff_params is None:
        print("Not answered yet: set att_params and ff_params to your two numbers.")
        return
    with torch.device("meta"):  # shapes only, no memory
        block = TransformerBlock(GPT_CONFIGS["gpt2-medium (355M)"])
    problems = []
    if att_params != count_parameters(block.att):
        problems.append(
            f"att_params = {att_params:,} is off by {att_params - count_parameters(block.att):+,}: count "
            "W_query, W_key, W_value (GPT-2 gives them biases) and out_proj (always has a bias)"
        )
    if ff_params != count_parameters(block.ff):
        problems.append(
            f"ff_params = {ff_params:,} is off by {ff_params - count_parameters(block.ff):+,}: "
            "two Linear layers, emb_dim -> 4*emb_dim -> emb_dim, each with a bias"
        )
    _report(problems)


def check_exercise_2(count_fn):
    """Exercise 2: ``count_fn(config, tied)`` must equal the real count for many configs."""
    configs = {**GPT_CONFIGS, "GPTConfig()": GPTConfig(),
               "a tiny config": GPTConfig(vocab_size=1000, context_length=64, emb_dim=48, n_heads=4, n_layers=3)}
    problems = []
    for name, config in configs.items():
        with torch.device("meta"):
            model = GPTModel(config)
        for tied in (False, True):
            if tied:
                model.out_head.weight = model.tok_emb.weight
            expected, got = count_parameters(model), count_fn(config, tied=tied)
            if got is None:
                print("Not answered yet: count_fn returned None.")
                return
            if got != expected:
                problems.append(f"{name}, tied={tied}: you get {got:,}, the model has {expected:,} ({got - expected:+,})")
    _report(problems)


def check_exercise_3(rmsnorm_cls):
    """Exercise 3: ``rmsnorm_cls(emb_dim)`` must match ``torch.nn.RMSNorm(emb_dim, eps=1e-5)``."""
    if rmsnorm_cls is None:
        print("Not answered yet: set RMSNorm to your class.")
        return
    generator = torch.Generator().manual_seed(0)
    norm = rmsnorm_cls(16)
    names = sorted(name for name, _ in norm.named_parameters())
    if names != ["scale"]:
        _report([f"RMSNorm should have one parameter, scale (no shift); it has {names}"])
        return
    reference = nn.RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        norm.scale.copy_(torch.rand(16, generator=generator) + 0.5)
        reference.weight.copy_(norm.scale)
    problems = []
    for label, x in [("ordinary input", 3 * torch.randn(2, 3, 16, generator=generator) + 1),
                     ("tiny input, where eps matters", 1e-3 * torch.randn(2, 3, 16, generator=generator))]:
        with torch.no_grad():
            got, expected = norm(x), reference(x)
        # float32 rounding of the same formula stays far below 1e-5 relative
        if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-5, atol=1e-6):
            problems.append(f"{label}: output differs from torch.nn.RMSNorm (check the mean of squares, eps=1e-5, scale)")
    _report(problems)


def check_exercise_4(generate_fn):
    """Exercise 4: ``generate_fn(model, idx, max_new_tokens, context_size, eos_id)`` stops after eos_id."""
    config = GPTConfig(vocab_size=50, context_length=8, emb_dim=32, n_heads=4, n_layers=2)
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
        torch.manual_seed(0)
        model = GPTModel(config).eval()
    prompt = torch.tensor([[1, 2, 3]])
    full = generate_text_simple(model, prompt, max_new_tokens=12, context_size=8)
    new = full[0, 3:].tolist()
    stop = new[5]
    absent = next(i for i in range(config.vocab_size) if i not in new)
    cases = [(stop, full[:, : 3 + new.index(stop) + 1], f"eos_id={stop} (generated)"),
             (absent, full, f"eos_id={absent} (never generated)")]
    problems = []
    for eos_id, expected, label in cases:
        got = generate_fn(model, prompt, 12, 8, eos_id)
        if got is None:
            print("Not answered yet: your function returned None.")
            return
        if got.shape != expected.shape or not torch.equal(got, expected):
            problems.append(f"{label}: expected {expected.tolist()}, got {got.tolist()}")
    _report(problems)
