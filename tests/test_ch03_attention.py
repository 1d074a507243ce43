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
