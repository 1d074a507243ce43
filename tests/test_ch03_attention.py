"""Chapter 3: causal multi-head attention (the specification of `MultiHeadAttention`).

Tolerances: everything runs in float32 on small tensors whose outputs are of order 1.
Two implementations of the same attention differ only in the order of their floating-point
sums, which changes results by a few units in the last place (~1e-7); we allow ATOL = 1e-6.
Every bug these tests guard against (a wrong mask, scale, head layout or cache offset)
changes outputs by 1e-2 or more.
"""

import pytest
import torch
import torch.nn.functional as F

from ch03_attention.attention import CausalAttention, MultiHeadAttentionWrapper
from shared import MultiHeadAttention
from shared.export import stale_modules

ATOL = 1e-6  # see the module docstring


def make_mha(d_in=16, d_out=12, context_length=10, dropout=0.0, num_heads=3, qkv_bias=False, use_sdpa=False, seed=0):
    torch.manual_seed(seed)
    return MultiHeadAttention(d_in, d_out, context_length, dropout, num_heads, qkv_bias=qkv_bias, use_sdpa=use_sdpa)


def random_input(batch=2, num_tokens=7, d_in=16, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, num_tokens, d_in, generator=generator)


def close(a, b):
    return torch.allclose(a, b, atol=ATOL, rtol=0)


class ListCache:
    """The smallest object honouring the KV-cache protocol: keep everything, per layer."""

    def __init__(self):
        self.keys, self.values = {}, {}

    def update(self, layer, keys, values):
        assert keys.dim() == 4 and keys.shape[1] == layer.num_heads and keys.shape[3] == layer.head_dim
        if layer in self.keys:
            keys = torch.cat([self.keys[layer], keys], dim=2)
            values = torch.cat([self.values[layer], values], dim=2)
        self.keys[layer], self.values[layer] = keys, values
        return keys, values


def sdpa_reference(mha, x):
    """Attention from mha's own weights through PyTorch's fused kernel, independent of mha.forward."""
    b, T, _ = x.shape
    heads = lambda t: t.view(b, T, mha.num_heads, mha.head_dim).transpose(1, 2)  # noqa: E731
    q, k, v = heads(mha.W_query(x)), heads(mha.W_key(x)), heads(mha.W_value(x))
    context = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return mha.out_proj(context.transpose(1, 2).reshape(b, T, mha.d_out))


def test_module_is_exported_from_current_notebook():
    assert not [p for p in stale_modules() if p.parent.name == "ch03_attention"]


def test_output_shape_and_gpt2_small_parameter_count():
    mha = MultiHeadAttention(d_in=768, d_out=768, context_length=1024, dropout=0.1, num_heads=12, qkv_bias=True)
    assert mha(torch.zeros(2, 5, 768)).shape == (2, 5, 768)
    # four 768x768 projections (query, key, value, output), each with a bias of 768
    assert sum(p.numel() for p in mha.parameters()) == 4 * 768 * 768 + 4 * 768
    assert mha.head_dim == 64


def test_contract_members_and_state_dict_holds_only_weights():
    mha = make_mha(qkv_bias=True)
    for name in ("W_query", "W_key", "W_value", "out_proj"):
        assert isinstance(getattr(mha, name), torch.nn.Linear)
    assert isinstance(mha.dropout, torch.nn.Dropout)
    assert set(mha.state_dict()) == {
        f"{layer}.{kind}" for layer in ("W_query", "W_key", "W_value", "out_proj") for kind in ("weight", "bias")
    }
    assert make_mha(qkv_bias=False).W_query.bias is None


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_wrapper_equals_mha_equals_sdpa_reference(qkv_bias):
    torch.manual_seed(0)
    wrapper = MultiHeadAttentionWrapper(16, 12, 10, 0.0, num_heads=3, qkv_bias=qkv_bias)
    mha = make_mha(qkv_bias=qkv_bias, seed=5)
    with torch.no_grad():  # head h's projection = rows h*head_dim:(h+1)*head_dim of mha's
        for name in ("W_query", "W_key", "W_value"):
            getattr(mha, name).weight.copy_(torch.cat([getattr(h, name).weight for h in wrapper.heads]))
            if qkv_bias:
                getattr(mha, name).bias.copy_(torch.cat([getattr(h, name).bias for h in wrapper.heads]))
        mha.out_proj.weight.copy_(torch.eye(12))  # the wrapper has no output projection
        mha.out_proj.bias.zero_()
    x = random_input()
    with torch.no_grad():
        out_wrapper, out_mha, out_ref = wrapper(x), mha(x), sdpa_reference(mha, x)
    assert close(out_wrapper, out_mha)
    assert close(out_mha, out_ref)


def test_mha_with_output_projection_matches_sdpa_reference():
    mha = make_mha(qkv_bias=True)
    x = random_input()
    with torch.no_grad():
        assert close(mha(x), sdpa_reference(mha, x))


@pytest.mark.parametrize("training", [False, True])
def test_sdpa_path_equals_manual_path(training):
    # dropout 0.3 in eval mode checks that SDPA gets no dropout then; in training the
    # random masks differ between the paths, so compare training mode with dropout 0.
    mha = make_mha(dropout=0.0 if training else 0.3)
    mha.train(training)
    x = random_input()
    manual = mha(x)
    mha.use_sdpa = True  # a plain attribute, flipped on the existing module
    assert close(mha(x), manual)


@pytest.mark.parametrize("use_sdpa", [False, True])
@pytest.mark.parametrize("t", [0, 3, 6])
def test_causality(use_sdpa, t):
    mha = make_mha(use_sdpa=use_sdpa).eval()
    x = random_input(num_tokens=8)
    altered = x.clone()
    altered[:, t + 1 :] = random_input(num_tokens=8, seed=99)[:, t + 1 :]
    with torch.no_grad():
        before, after = mha(x), mha(altered)
    # masked positions get weight exactly 0, but allow rounding from kernels that tile differently
    assert close(before[:, : t + 1], after[:, : t + 1])
    if t + 1 < 8:
        assert not close(before[:, t + 1 :], after[:, t + 1 :])  # the change is visible later on


def test_causal_attention_single_head_is_causal():
    torch.manual_seed(0)
    ca = CausalAttention(16, 4, 10, 0.0)
    x = random_input()
    altered = x.clone()
    altered[:, 4:] += 1.0
    assert close(ca(x)[:, :4], ca(altered)[:, :4])


@pytest.mark.parametrize("use_sdpa", [False, True])
def test_dropout_only_in_training_and_eval_is_deterministic(use_sdpa):
    mha = make_mha(dropout=0.5, use_sdpa=use_sdpa)
    x = random_input()
    torch.manual_seed(0)
    assert not torch.equal(mha(x), mha(x))  # training: each call draws a new dropout mask

    mha.eval()
    first = mha(x)
    assert torch.equal(first, mha(x))
    no_dropout = make_mha(dropout=0.0, use_sdpa=use_sdpa).eval()  # same seed, same weights
    assert close(first, no_dropout(x))


def test_error_when_d_out_not_divisible_by_num_heads():
    with pytest.raises(ValueError, match=r"d_out \(10\).*num_heads \(3\)"):
        MultiHeadAttention(d_in=16, d_out=10, context_length=8, dropout=0.0, num_heads=3)
    with pytest.raises(ValueError, match=r"d_out \(10\).*num_heads \(3\)"):
        MultiHeadAttentionWrapper(d_in=16, d_out=10, context_length=8, dropout=0.0, num_heads=3)


def test_error_when_longer_than_context_length():
    mha = make_mha(context_length=6)
    with pytest.raises(ValueError, match=r"7 tokens.*context_length is 6"):
        mha(random_input(num_tokens=7))
    mha(random_input(num_tokens=6))  # exactly context_length is fine


@pytest.mark.parametrize("shape", [(7, 16), (16,), (1, 2, 7, 16)])
def test_error_on_wrong_input_rank(shape):
    with pytest.raises(ValueError, match=rf"{len(shape)}-D"):
        make_mha()(torch.zeros(shape))


def test_error_on_wrong_feature_size():
    with pytest.raises(ValueError, match=r"15 features.*d_in=16"):
        make_mha()(torch.zeros(1, 3, 15))


@pytest.mark.parametrize("use_sdpa", [False, True])
@pytest.mark.parametrize("prefill", [1, 4])
def test_kv_cache_token_by_token_equals_full_forward(use_sdpa, prefill):
    mha = make_mha(qkv_bias=True, use_sdpa=use_sdpa).eval()
    x = random_input(num_tokens=9)
    cache = ListCache()
    with torch.no_grad():
        full = mha(x)
        steps = [mha(x[:, :prefill], cache=cache)]  # a prompt, then one token at a time
        steps += [mha(x[:, t : t + 1], cache=cache) for t in range(prefill, 9)]
    assert close(torch.cat(steps, dim=1), full)
    assert cache.keys[mha].shape == (2, 3, 9, 4)  # (batch, heads, all positions, head_dim)


@pytest.mark.parametrize("use_sdpa", [False, True])
def test_kv_cache_several_new_tokens_at_once(use_sdpa):
    # the offset mask must also be causal among the new tokens themselves
    mha = make_mha(use_sdpa=use_sdpa).eval()
    x = random_input(num_tokens=8)
    cache = ListCache()
    with torch.no_grad():
        full = mha(x)
        parts = [mha(x[:, :3], cache=cache), mha(x[:, 3:8], cache=cache)]
    assert close(torch.cat(parts, dim=1), full)


def test_kv_cache_error_when_cache_plus_new_exceeds_context_length():
    mha = make_mha(context_length=6).eval()
    cache = ListCache()
    mha(random_input(num_tokens=4), cache=cache)
    with pytest.raises(ValueError, match=r"4 cached \+ 3 new.*context_length 6"):
        mha(random_input(num_tokens=3), cache=cache)


# --- the minimal version, and the full one as a diff from it ---------------------------------

import importlib.util  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

from ch03_attention.figures import code_diff, text_colour  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parent.parent / "ch03_attention" / "attention.ipynb"


@pytest.fixture(scope="module")
def Minimal(tmp_path_factory):
    """The notebook's teaching class MinimalMultiHeadAttention (not exported), loaded from its cell.

    The cell goes into a module file, so that `inspect` can read its source for the diff."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    (source,) = [
        "".join(c["source"])
        for c in cells
        if c["cell_type"] == "code" and "class MinimalMultiHeadAttention(" in "".join(c["source"])
    ]
    path = tmp_path_factory.mktemp("notebook") / "minimal_mha.py"
    path.write_text("import torch\nimport torch.nn as nn\n\n" + source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("minimal_mha", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MinimalMultiHeadAttention


@pytest.mark.parametrize("qkv_bias", [False, True])
@pytest.mark.parametrize("num_heads", [1, 3, 4])
def test_minimal_equals_full_with_the_same_weights(Minimal, qkv_bias, num_heads):
    torch.manual_seed(0)
    minimal = Minimal(16, 12, 10, 0.3, num_heads, qkv_bias=qkv_bias).eval()
    full = make_mha(num_heads=num_heads, qkv_bias=qkv_bias, dropout=0.3, seed=7).eval()
    assert not close(full(random_input()), minimal(random_input()))  # different weights: the test can fail
    full.load_state_dict(minimal.state_dict())  # same parameter names, so the full layer takes them all
    x = random_input()
    with torch.no_grad():
        assert close(minimal(x), full(x))
        assert close(minimal(x), sdpa_reference(minimal, x))


def test_minimal_equals_wrapper(Minimal):
    torch.manual_seed(0)
    wrapper = MultiHeadAttentionWrapper(16, 12, 10, 0.0, num_heads=3)
    minimal = Minimal(16, 12, 10, 0.0, num_heads=3)
    with torch.no_grad():
        for name in ("W_query", "W_key", "W_value"):
            getattr(minimal, name).weight.copy_(torch.cat([getattr(h, name).weight for h in wrapper.heads]))
        minimal.out_proj.weight.copy_(torch.eye(12))
        minimal.out_proj.bias.zero_()
        x = random_input()
        assert close(wrapper(x), minimal(x))


def test_minimal_version_is_about_25_lines(Minimal):
    lines = code_diff(torch.nn.Module, Minimal)  # every line counts as added
    code = [
        line for line in lines if line.startswith("+ ") and line[2:].strip() and not line[2:].strip().startswith("#")
    ]
    assert 20 <= len(code) <= 30, len(code)


def test_full_version_only_adds_to_the_minimal_one(Minimal):
    """The diff shown in 3.7: besides the two signatures, only the mask line (and its shape comment) change."""
    removed = [line[2:].strip() for line in code_diff(Minimal, MultiHeadAttention) if line.startswith("- ")]
    assert removed == [
        "def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):",
        "def forward(self, x):",
        "scores = queries @ keys.transpose(2, 3)  # (b, heads, T, T)",
        'scores = scores.masked_fill(self.mask[:num_tokens, :num_tokens], float("-inf"))',
    ]


def test_heatmap_text_is_dark_on_light_and_light_on_dark():
    assert text_colour((1.0, 1.0, 1.0, 1.0)) == "black"
    assert text_colour((0.03, 0.19, 0.42, 1.0)) == "white"  # the darkest blue of the "Blues" map


# --- exercise checks: the solution passes, typical wrong answers and shortcuts are rejected ----

from ch03_attention import checks  # noqa: E402

INPUTS = torch.tensor(
    [[0.1, 0.2, 0.9], [0.9, 0.1, 0.2], [0.8, 0.3, 0.1], [0.2, 0.1, 0.8], [0.1, 0.9, 0.3], [0.7, 0.6, 0.1]]
)
BATCH = torch.stack((INPUTS, INPUTS))


def verdict(capsys, check, *answer):
    check(*answer)
    return capsys.readouterr().out


def test_exercise_1(capsys):
    good = torch.softmax(INPUTS @ INPUTS[5], dim=0)
    assert "Correct!" in verdict(capsys, checks.check_exercise_1, good, INPUTS)
    assert "raw scores" in verdict(capsys, checks.check_exercise_1, INPUTS @ INPUTS[5], INPUTS)
    assert "another query" in verdict(capsys, checks.check_exercise_1, torch.softmax(INPUTS @ INPUTS[1], 0), INPUTS)
    assert "sum to 1" in verdict(capsys, checks.check_exercise_1, torch.exp(INPUTS @ INPUTS[5]), INPUTS)
    scaled = torch.softmax(INPUTS @ INPUTS[5] / 3**0.5, dim=0)
    assert "Not quite" in verdict(capsys, checks.check_exercise_1, scaled, INPUTS)
    for wrong_type in ("0.2", [0.1] * 6, 3):
        assert "Expected a torch tensor" in verdict(capsys, checks.check_exercise_1, wrong_type, INPUTS)
    assert "shape" in verdict(capsys, checks.check_exercise_1, torch.ones(6, 6) / 6, INPUTS)
    assert "Not answered" in verdict(capsys, checks.check_exercise_1, None, INPUTS)


def attention_forward_solution(layer, x, scale=True, mask=True, transpose=True, project=True):
    """The reference answer to exercise 2; the flags make the typical mistakes."""
    b, T, _ = x.shape

    def split(t):
        if not transpose:
            return t.view(b, layer.num_heads, T, layer.head_dim)
        return t.view(b, T, layer.num_heads, layer.head_dim).transpose(1, 2)

    q, k, v = split(layer.W_query(x)), split(layer.W_key(x)), split(layer.W_value(x))
    scores = q @ k.transpose(2, 3)
    if mask:
        scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    weights = torch.softmax(scores / (layer.head_dim**0.5 if scale else 1.0), dim=-1)
    context = weights @ v
    context = context.transpose(1, 2).reshape(b, T, layer.d_out) if transpose else context.reshape(b, T, layer.d_out)
    return layer.out_proj(context) if project else context


@pytest.mark.parametrize(
    "mistake, message",
    [
        (dict(scale=False), "not scaled"),
        (dict(mask=False), "future is not masked"),
        (dict(transpose=False), "heads are split wrongly"),
        (dict(project=False), "output projection is missing"),
    ],
)
def test_exercise_2_rejects_typical_mistakes(capsys, mistake, message):
    out = verdict(capsys, checks.check_exercise_2, lambda layer, x: attention_forward_solution(layer, x, **mistake))
    assert message in out and "Correct!" not in out


def test_exercise_2_solution_passes(capsys):
    assert "Correct!" in verdict(capsys, checks.check_exercise_2, attention_forward_solution)


def sdpa_shortcut(layer, x):
    b, T, _ = x.shape
    split = lambda t: t.view(b, T, layer.num_heads, layer.head_dim).transpose(1, 2)  # noqa: E731
    context = F.scaled_dot_product_attention(
        split(layer.W_query(x)), split(layer.W_key(x)), split(layer.W_value(x)), is_causal=True
    )
    return layer.out_proj(context.transpose(1, 2).reshape(b, T, layer.d_out))


def torch_mha_shortcut(layer, x, train=False):
    module = torch.nn.MultiheadAttention(layer.d_out, layer.num_heads, batch_first=True).train(train)
    h = layer.W_query(x)
    return module(h, h, h, need_weights=False)[0]


def test_exercise_2_rejects_shortcuts(capsys):
    out = verdict(capsys, checks.check_exercise_2, lambda layer, x: layer(x))  # calling the layer
    assert "forbids" in out and "Correct!" not in out
    out = verdict(capsys, checks.check_exercise_2, sdpa_shortcut)  # correct result, through SDPA
    assert "scaled_dot_product_attention" in out and "forbids" in out and "Correct!" not in out
    for train in (False, True):  # PyTorch's own layer, on its fast path (eval) and its Python path (train)
        out = verdict(
            capsys, checks.check_exercise_2, lambda layer, x, train=train: torch_mha_shortcut(layer, x, train)
        )
        assert "forbids" in out and "Correct!" not in out
    assert F.scaled_dot_product_attention is torch._C._nn.scaled_dot_product_attention  # the check put them back


def test_exercise_2_never_raises(capsys):
    assert "raised ZeroDivisionError" in verdict(capsys, checks.check_exercise_2, lambda layer, x: 1 / 0)
    assert "Expected a torch tensor" in verdict(capsys, checks.check_exercise_2, lambda layer, x: "context")
    assert "Wrong output shape" in verdict(capsys, checks.check_exercise_2, lambda layer, x: x)
    assert "function itself" in verdict(capsys, checks.check_exercise_2, 42)
    assert "Not answered" in verdict(capsys, checks.check_exercise_2, lambda layer, x: None)


def test_exercise_3(capsys):
    def wrapper(d_out, num_heads):
        torch.manual_seed(123)
        return MultiHeadAttentionWrapper(d_in=3, d_out=d_out, context_length=6, dropout=0.0, num_heads=num_heads)

    assert "Correct!" in verdict(capsys, checks.check_exercise_3, wrapper(2, 2), 1, BATCH)
    assert "(2, 6, 4)" in verdict(capsys, checks.check_exercise_3, wrapper(4, 2), 2, BATCH)  # unchanged
    assert "keeps num_heads=2" in verdict(capsys, checks.check_exercise_3, wrapper(2, 1), 2, BATCH)
    shrunk = torch.nn.Sequential(wrapper(4, 2), torch.nn.Linear(4, 2))  # a layer added after it: the shortcut
    assert "do not add layers" in verdict(capsys, checks.check_exercise_3, shrunk, 1, BATCH)
    assert "do not add layers" in verdict(capsys, checks.check_exercise_3, MultiHeadAttentionWrapper, 1, BATCH)
    assert "do not add layers" in verdict(
        capsys, checks.check_exercise_3, make_mha(d_in=3, d_out=2, num_heads=2), 1, BATCH
    )
    assert "head_width = 2?" in verdict(capsys, checks.check_exercise_3, wrapper(2, 2), 2, BATCH)
    assert "should be an integer" in verdict(capsys, checks.check_exercise_3, wrapper(2, 2), True, BATCH)
    assert "should be an integer" in verdict(capsys, checks.check_exercise_3, wrapper(2, 2), "1", BATCH)
    assert "Not answered" in verdict(capsys, checks.check_exercise_3, wrapper(2, 2), None, BATCH)
    assert "`batch`" in verdict(capsys, checks.check_exercise_3, wrapper(2, 2), 1, INPUTS)


def local_mask_solution(num_tokens, window):
    i, j = torch.arange(num_tokens).unsqueeze(1), torch.arange(num_tokens).unsqueeze(0)
    return (j > i) | (j <= i - window)


def test_exercise_4(capsys):
    assert "Correct!" in verdict(capsys, checks.check_exercise_4, local_mask_solution)
    plain = lambda n, w: torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)  # noqa: E731
    assert "plain causal mask" in verdict(capsys, checks.check_exercise_4, plain)
    one_too_many = lambda n, w: local_mask_solution(n, w + 1)  # noqa: E731
    assert "Off by one" in verdict(capsys, checks.check_exercise_4, one_too_many)
    one_too_few = lambda n, w: local_mask_solution(n, w - 1)  # noqa: E731
    assert "Off by one" in verdict(capsys, checks.check_exercise_4, one_too_few)
    as_int = lambda n, w: local_mask_solution(n, w).int()  # noqa: E731
    assert "Expected a bool tensor" in verdict(capsys, checks.check_exercise_4, as_int)
    assert "raised IndexError" in verdict(capsys, checks.check_exercise_4, lambda n, w: [][0])
    assert "Expected a torch tensor" in verdict(capsys, checks.check_exercise_4, lambda n, w: "mask")
    assert "function itself" in verdict(capsys, checks.check_exercise_4, local_mask_solution(4, 2))


def offset_mask_solution(num_cached, num_new):
    query_pos = num_cached + torch.arange(num_new).unsqueeze(1)
    return torch.arange(num_cached + num_new).unsqueeze(0) > query_pos


SMALL_MHA = make_mha(context_length=8)
BIG_MHA = make_mha(context_length=4096)


def test_exercise_5(capsys):
    assert "Correct!" in verdict(capsys, checks.check_exercise_5, offset_mask_solution)
    triu = lambda c, n: torch.triu(torch.ones(n, c + n, dtype=torch.bool), diagonal=c + 1)  # noqa: E731
    assert "Correct!" in verdict(capsys, checks.check_exercise_5, triu)
    top_left = lambda c, n: torch.triu(torch.ones(n, c + n, dtype=torch.bool), diagonal=1)  # noqa: E731
    assert "top-left corner" in verdict(capsys, checks.check_exercise_5, top_left)
    square = lambda c, n: torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)  # noqa: E731
    assert "one column per position" in verdict(capsys, checks.check_exercise_5, square)
    assert "Expected a bool tensor" in verdict(
        capsys, checks.check_exercise_5, lambda c, n: offset_mask_solution(c, n).float()
    )
    assert "raised" in verdict(capsys, checks.check_exercise_5, lambda c, n: c / 0)
    assert "function itself" in verdict(capsys, checks.check_exercise_5, "mask")


@pytest.mark.parametrize(
    "shortcut",
    [
        lambda c, n: SMALL_MHA.mask[c : c + n, : c + n],  # the buffer of a layer in the notebook
        lambda c, n: BIG_MHA.mask[c : c + n, : c + n],  # a buffer long enough for every test size
        lambda c, n: BIG_MHA.mask[c : c + n, : c + n],
        lambda c, n: (lambda m: m.mask[c : c + n, : c + n])(BIG_MHA),
    ],
    ids=["small-buffer", "big-buffer", "getattr", "nested"],
)
def test_exercise_5_rejects_slicing_the_buffer(capsys, shortcut):
    out = verdict(capsys, checks.check_exercise_5, shortcut)
    assert "shortcut" in out and "Correct!" not in out


WEIRD_ANSWERS = [
    1,
    "answer",
    [],
    object(),
    torch.zeros(3),
    lambda *args: 1 / 0,
    lambda *args: "text",
    lambda *args: torch.zeros(2, 2),
    torch.nn.Linear(3, 2),
]


@pytest.mark.parametrize("answer", WEIRD_ANSWERS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize(
    "check, extra",
    [
        (checks.check_exercise_1, (INPUTS,)),
        (checks.check_exercise_2, ()),
        (checks.check_exercise_3, (1, BATCH)),
        (checks.check_exercise_4, ()),
        (checks.check_exercise_5, ()),
    ],
    ids=["ex1", "ex2", "ex3", "ex4", "ex5"],
)
def test_checks_never_raise_and_reject_odd_answers(capsys, check, extra, answer):
    out = verdict(capsys, check, answer, *extra)
    assert out.strip() and "Correct!" not in out


def test_exercise_1_needs_the_toy_embeddings(capsys):
    good = torch.softmax(INPUTS @ INPUTS[5], dim=0)
    assert "toy embeddings" in verdict(capsys, checks.check_exercise_1, good, "inputs")
