"""Chapter 4 specification: the GPT parts, parameter counts, generation, the cache protocol.

Every model here is tiny (a few thousand parameters) or built on the meta device, where
tensors have shapes but no storage, so the whole file runs in seconds.
"""

import dataclasses
import re

import pytest
import torch
from torch import nn

from ch04_gpt_model.checks import (
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    check_exercise_4,
    check_exercise_5,
)
from ch04_gpt_model.figures import show_diff
from ch04_gpt_model.gpt_model import (
    GELU,
    FeedForward,
    LayerNorm,
    TransformerBlock,
    count_parameters,
)
from shared import GPT_CONFIGS, GPTConfig, GPTModel, MultiHeadAttention, generate_text_simple

TINY = GPTConfig(vocab_size=97, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0, qkv_bias=True)


def tiny_model(seed=0, **changes):
    torch.manual_seed(seed)
    return GPTModel(dataclasses.replace(TINY, **changes)).eval()


def expected_parameters(config, tied):
    """GPT-2's parameter count written out layer by layer, independent of the module code."""
    V, C, d, L = config.vocab_size, config.context_length, config.emb_dim, config.n_layers
    embeddings = V * d + C * d
    attention = 3 * d * d + (3 * d if config.qkv_bias else 0) + d * d + d  # W_q, W_k, W_v, out_proj
    feed_forward = d * 4 * d + 4 * d + 4 * d * d + d
    layer_norms = 2 * (2 * d)  # scale + shift, twice per block
    final_norm = 2 * d
    head = 0 if tied else V * d
    return embeddings + L * (attention + feed_forward + layer_norms) + final_norm + head


def meta_model(config, tied):
    with torch.device("meta"):
        model = GPTModel(config)
    if tied:
        model.out_head.weight = model.tok_emb.weight
    return model


# ---------------------------------------------------------------- parts


def test_layernorm_matches_torch():
    torch.manual_seed(0)
    ours, theirs = LayerNorm(48), nn.LayerNorm(48, eps=1e-5)
    with torch.no_grad():
        ours.scale.copy_(torch.rand(48) + 0.5)
        ours.shift.copy_(torch.randn(48))
        theirs.weight.copy_(ours.scale)
        theirs.bias.copy_(ours.shift)
    for x in (torch.randn(3, 5, 48), 7 * torch.randn(2, 48) - 4, 1e-3 * torch.randn(4, 48)):
        # Same formula in float32; only the summation order differs (~1e-6 on outputs of size ~1).
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_layernorm_parameters_and_statistics():
    norm = LayerNorm(10)
    assert dict(norm.named_parameters()).keys() == {"scale", "shift"}
    assert norm.eps == 1e-5
    y = norm(torch.randn(4, 10) * 3 + 2)
    torch.testing.assert_close(y.mean(-1), torch.zeros(4), atol=1e-5, rtol=0)
    # biased variance, as GPT-2: 1 up to eps / var (~1e-6) and rounding
    torch.testing.assert_close(y.var(-1, unbiased=False), torch.ones(4), atol=1e-4, rtol=0)


def test_gelu_matches_torch_tanh_approximation():
    x = torch.cat([torch.linspace(-10, 10, 2001), torch.randn(1000)])
    # one float32 formula against PyTorch's kernel: differences are a few ulps
    torch.testing.assert_close(GELU()(x), nn.functional.gelu(x, approximate="tanh"), rtol=1e-5, atol=1e-6)


def test_feedforward_expands_four_times_and_keeps_shape():
    ff = FeedForward(TINY)
    first, act, last = ff.layers
    assert (first.in_features, first.out_features) == (32, 128)
    assert isinstance(act, GELU)
    assert (last.in_features, last.out_features) == (128, 32)
    assert ff(torch.randn(2, 5, 32)).shape == (2, 5, 32)


def test_block_shape_members_and_pre_layernorm_shortcuts():
    torch.manual_seed(0)
    block = TransformerBlock(TINY).eval()
    assert isinstance(block.att, MultiHeadAttention)
    assert isinstance(block.norm1, LayerNorm) and isinstance(block.norm2, LayerNorm)
    assert isinstance(block.ff, FeedForward) and isinstance(block.drop_shortcut, nn.Dropout)
    x = torch.randn(2, 7, 32)
    assert block(x).shape == x.shape
    # With both branches' last layers zeroed, a pre-LN block with shortcuts is the identity
    # (a post-LN block would still normalise x).
    with torch.no_grad():
        for layer in (block.att.out_proj, block.ff.layers[2]):
            layer.weight.zero_()
            layer.bias.zero_()
    assert torch.equal(block(x), x)


# ---------------------------------------------------------------- config


def test_presets_are_gpt2_sizes():
    sizes = {name: (c.emb_dim, c.n_layers, c.n_heads) for name, c in GPT_CONFIGS.items()}
    # Radford et al. (2019), table 2, and OpenAI's released hparams.json files
    assert sizes == {
        "gpt2-small (124M)": (768, 12, 12),
        "gpt2-medium (355M)": (1024, 24, 16),
        "gpt2-large (774M)": (1280, 36, 20),
        "gpt2-xl (1558M)": (1600, 48, 25),
    }
    for config in GPT_CONFIGS.values():
        assert (config.vocab_size, config.context_length, config.qkv_bias) == (50257, 1024, True)


def test_config_defaults():
    assert dataclasses.asdict(GPTConfig()) == dict(
        vocab_size=50257,
        context_length=1024,
        emb_dim=768,
        n_heads=12,
        n_layers=12,
        drop_rate=0.1,
        qkv_bias=False,
        use_sdpa=False,
    )


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(emb_dim=770), ["770", "12", "divisible"]),
        (dict(n_layers=0), ["n_layers", "0"]),
        (dict(vocab_size=-5), ["vocab_size", "-5"]),
        (dict(context_length=10.0), ["context_length"]),
        (dict(drop_rate=1.0), ["drop_rate", "1.0"]),
        (dict(drop_rate=-0.1), ["drop_rate"]),
        (dict(qkv_bias="yes"), ["qkv_bias"]),
        (dict(use_sdpa=1), ["use_sdpa"]),
    ],
)
def test_invalid_config_raises_clear_error(changes, words):
    with pytest.raises(ValueError) as err:
        GPTConfig(**changes)
    for word in words:
        assert word in str(err.value)


def test_config_is_frozen_so_presets_cannot_be_changed():
    with pytest.raises(dataclasses.FrozenInstanceError):
        GPT_CONFIGS["gpt2-small (124M)"].drop_rate = 0.0
    assert dataclasses.replace(GPT_CONFIGS["gpt2-small (124M)"], drop_rate=0.0).drop_rate == 0.0


def test_model_needs_a_config():
    with pytest.raises(TypeError, match="GPTConfig"):
        GPTModel({"emb_dim": 768})


# ---------------------------------------------------------------- model


def test_logits_shape_and_state_dict_names():
    model = tiny_model()
    assert model(torch.randint(0, 97, (3, 9))).shape == (3, 9, 97)
    keys = set(model.state_dict())
    for key in [
        "tok_emb.weight",
        "pos_emb.weight",
        "final_norm.scale",
        "final_norm.shift",
        "out_head.weight",
        "trf_blocks.1.norm1.scale",
        "trf_blocks.1.att.W_query.bias",
        "trf_blocks.1.att.out_proj.weight",
        "trf_blocks.1.ff.layers.0.weight",
        "trf_blocks.1.ff.layers.2.bias",
        "trf_blocks.1.norm2.shift",
    ]:
        assert key in keys
    assert "out_head.bias" not in keys
    assert not any("mask" in key for key in keys)  # the causal mask is rebuilt, not saved


def test_forward_is_embeddings_blocks_final_norm_head():
    model = tiny_model(seed=4)
    idx = torch.randint(0, 97, (2, 6))
    with torch.no_grad():
        x = model.tok_emb(idx) + model.pos_emb(torch.arange(6))
        for block in model.trf_blocks:
            x = block(x)
        expected = model.out_head(model.final_norm(x))
        torch.testing.assert_close(model(idx), expected, rtol=0, atol=0)  # same operations, same order
        model.final_norm.scale.zero_()  # the head (no bias) sees only the final norm's output
        assert torch.equal(model(idx), torch.zeros(2, 6, 97))


def test_head_is_untied_by_default_and_can_be_tied():
    model = tiny_model()
    assert model.out_head.weight is not model.tok_emb.weight
    model.out_head.weight = model.tok_emb.weight
    assert count_parameters(model) == expected_parameters(TINY, tied=True)
    # the tied matrix gets gradient from both uses
    model(torch.randint(0, 97, (1, 4))).sum().backward()
    assert model.tok_emb.weight.grad is model.out_head.weight.grad


def test_too_long_input_raises_naming_both_numbers():
    model = tiny_model()
    with pytest.raises(ValueError) as err:
        model(torch.zeros(1, 17, dtype=torch.long))
    message = str(err.value)
    assert re.search(r"\b17\b", message) and re.search(r"\b16\b", message)
    model(torch.zeros(1, 16, dtype=torch.long))  # exactly context_length is fine


def test_bad_idx_shapes_raise():
    model = tiny_model()
    with pytest.raises(ValueError, match="batch, num_tokens"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="no tokens"):
        model(torch.zeros(1, 0, dtype=torch.long))


def test_dropout_only_in_training():
    model = tiny_model(drop_rate=0.5)
    idx = torch.randint(0, 97, (2, 8))
    assert torch.equal(model(idx), model(idx))
    model.train()
    assert not torch.equal(model(idx), model(idx))


def test_use_sdpa_reaches_attention_and_gives_the_same_logits():
    plain, fused = tiny_model(seed=3), tiny_model(seed=3, use_sdpa=True)
    assert all(block.att.use_sdpa for block in fused.trf_blocks)
    idx = torch.randint(0, 97, (2, 16))
    # two float32 routes to the same softmax(QK^T)V; logits are O(1), rounding ~1e-6
    torch.testing.assert_close(fused(idx), plain(idx), rtol=1e-5, atol=1e-5)


class ListCache:
    """The smallest object honouring the cache protocol (chapter 5 has the real one)."""

    def __init__(self):
        self.length = 0
        self.keys, self.values = {}, {}

    def update(self, layer, k, v):
        if layer in self.keys:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    def advance(self, num_tokens):
        self.length += num_tokens


def test_cache_fed_token_by_token_equals_full_forward():
    model = tiny_model(seed=1)
    idx = torch.randint(0, 97, (2, 16))
    with torch.no_grad():
        full = model(idx)
        cache = ListCache()
        steps = [model(idx[:, :5], cache=cache)]  # a 5-token prefill, then one token at a time
        steps += [model(idx[:, i : i + 1], cache=cache) for i in range(5, 16)]
    assert cache.length == 16
    assert len(cache.keys) == TINY.n_layers
    # same arithmetic split into pieces; float32 rounding ~1e-7 on logits of size ~1
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError) as err:  # the cache is full: 16 cached + 1 new > 16
        model(idx[:, :1], cache=cache)
    assert "16" in str(err.value) and "1 new" in str(err.value)


# ---------------------------------------------------------------- counting


@pytest.mark.parametrize("name", list(GPT_CONFIGS))
@pytest.mark.parametrize("tied", [False, True])
def test_parameter_counts_of_presets(name, tied):
    config = GPT_CONFIGS[name]
    assert count_parameters(meta_model(config, tied)) == expected_parameters(config, tied)


def test_published_book_counts_without_qkv_bias():
    # Raschka, "Build a Large Language Model (From Scratch)", ch. 4: GPT-2 small without qkv biases
    book = dataclasses.replace(GPT_CONFIGS["gpt2-small (124M)"], qkv_bias=False)
    assert count_parameters(meta_model(book, tied=False)) == 163_009_536
    assert count_parameters(meta_model(book, tied=True)) == 124_412_160
    # GPT-2 has those biases: 3 projections x 768 x 12 blocks more
    small = GPT_CONFIGS["gpt2-small (124M)"]
    assert count_parameters(meta_model(small, tied=True)) == 124_412_160 + 3 * 768 * 12


@pytest.mark.parametrize("name", list(GPT_CONFIGS))
def test_tied_counts_match_huggingface_gpt2(name):
    transformers = pytest.importorskip("transformers")
    config = GPT_CONFIGS[name]
    hf_config = transformers.GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.context_length,
        n_embd=config.emb_dim,
        n_layer=config.n_layers,
        n_head=config.n_heads,
    )
    with torch.device("meta"):
        hf_model = transformers.GPT2LMHeadModel(hf_config)  # ties lm_head to wte, like GPT-2
    assert count_parameters(meta_model(config, tied=True)) == sum(p.numel() for p in hf_model.parameters())


# ---------------------------------------------------------------- generation


def test_greedy_generation_is_argmax_step_by_step_and_deterministic():
    model = tiny_model(seed=2)
    prompt = torch.randint(0, 97, (2, 4))
    out = generate_text_simple(model, prompt, max_new_tokens=6, context_size=16)
    assert out.shape == (2, 10)
    assert torch.equal(out[:, :4], prompt)
    expected = prompt
    for _ in range(6):
        with torch.no_grad():
            next_id = model(expected)[:, -1].argmax(dim=-1, keepdim=True)
        expected = torch.cat([expected, next_id], dim=1)
    assert torch.equal(out, expected)
    assert torch.equal(generate_text_simple(model, prompt, 6, 16), out)


def test_generation_crops_a_prompt_longer_than_the_context():
    model = tiny_model(seed=2)
    prompt = torch.randint(0, 97, (1, 40))  # 40 > context_length 16: cropped, not an error
    out = generate_text_simple(model, prompt, max_new_tokens=5, context_size=16)
    assert out.shape == (1, 45)
    assert torch.equal(out[:, :40], prompt)
    only_last = generate_text_simple(model, prompt[:, -16:], max_new_tokens=5, context_size=16)
    assert torch.equal(out[:, 40:], only_last[:, 16:])


def test_generation_validates_its_arguments():
    model = tiny_model()
    prompt = torch.zeros(1, 3, dtype=torch.long)
    assert torch.equal(generate_text_simple(model, prompt, 0, 16), prompt)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_text_simple(model, prompt, -1, 16)
    with pytest.raises(ValueError, match="context_size"):
        generate_text_simple(model, prompt, 2, 0)


# ---------------------------------------------------------------- figures.py


def _simple(x):
    y = x + 1
    return y


def _full(x, scale=1):
    if x < 0:
        raise ValueError("x must be >= 0")
    y = x + 1
    return y * scale


def test_show_diff_marks_added_removed_and_shared_lines(capsys):
    show_diff(_simple, _full)
    assert capsys.readouterr().out.splitlines() == [
        "-def _simple(x):",
        "+def _full(x, scale=1):",
        "+    if x < 0:",
        '+        raise ValueError("x must be >= 0")',
        "     y = x + 1",
        "-    return y",
        "+    return y * scale",
    ]


# ---------------------------------------------------------------- exercises
# For every exercise: the solution passes, typical wrong answers and forbidden shortcuts are
# rejected, and nothing a reader passes in makes a check raise.


def verdicts(capsys):
    """The check's printed lines since the last call."""
    return capsys.readouterr().out


def assert_correct(capsys):
    out = verdicts(capsys)
    assert out.strip().endswith("Correct!") and "Not yet" not in out, out


def assert_rejected(capsys, *words):
    out = verdicts(capsys)
    assert "Correct!" not in out and ("Not yet" in out or "Not answered" in out), out
    for word in words:
        assert word in out, (word, out)


def test_exercise_1_block_parameters(capsys):
    d = 1024
    check_exercise_1(4 * d * d + 4 * d, 8 * d * d + 5 * d)
    assert_correct(capsys)
    check_exercise_1(4 * d * d + d, 8 * d * d + 5 * d)  # forgot the query/key/value biases
    assert_rejected(capsys, "att_params", "-3,072")
    check_exercise_1(4 * d * d + 4 * d, 8 * d * d)  # forgot the feed-forward biases
    assert_rejected(capsys, "ff_params")
    check_exercise_1(4 * 768 * 768 + 4 * 768, 8 * 768 * 768 + 5 * 768)  # GPT-2 small, not medium
    assert_rejected(capsys)
    check_exercise_1("4198400", 8 * d * d + 5 * d)
    assert_rejected(capsys, "whole number")
    check_exercise_1(None, None)
    assert_rejected(capsys, "Not answered")


def block_forward_solution(block, x):
    x = x + block.drop_shortcut(block.att(block.norm1(x)))
    return x + block.drop_shortcut(block.ff(block.norm2(x)))


def test_exercise_2_block_forward(capsys):
    check_exercise_2(block_forward_solution)
    assert_correct(capsys)

    def post_layernorm(block, x):
        x = block.norm1(x + block.drop_shortcut(block.att(x)))
        return block.norm2(x + block.drop_shortcut(block.ff(x)))

    def without_shortcut_dropout(block, x):
        x = x + block.att(block.norm1(x))
        return x + block.ff(block.norm2(x))

    def one_norm(block, x):
        x = x + block.drop_shortcut(block.att(block.norm1(x)))
        return x + block.drop_shortcut(block.ff(block.norm1(x)))

    def no_shortcut(block, x):
        x = block.drop_shortcut(block.att(block.norm1(x)))
        return block.drop_shortcut(block.ff(block.norm2(x)))

    def halves_swapped(block, x):
        x = x + block.drop_shortcut(block.ff(block.norm2(x)))
        return x + block.drop_shortcut(block.att(block.norm1(x)))

    check_exercise_2(post_layernorm)
    assert_rejected(capsys, "post-LayerNorm")
    check_exercise_2(without_shortcut_dropout)
    assert_rejected(capsys, "training mode", "drop_shortcut")
    check_exercise_2(one_norm)
    assert_rejected(capsys, "norm2")
    check_exercise_2(no_shortcut)
    assert_rejected(capsys, "no shortcuts")
    check_exercise_2(halves_swapped)
    assert_rejected(capsys, "differs")


def test_exercise_2_refuses_calling_the_block(capsys):
    shortcuts = [
        lambda block, x: block(x),
        lambda block, x: block.forward(x),
        lambda block, x: TransformerBlock.forward(block, x),
        lambda block, x: nn.Module.__call__(block, x),
    ]
    for shortcut in shortcuts:
        check_exercise_2(shortcut)
        assert_rejected(capsys, "ShortcutNotAllowed", "block(x)")
    # the refusal is undone afterwards: the real block works again
    block = TransformerBlock(TINY)
    assert block(torch.randn(1, 3, 32)).shape == (1, 3, 32)


def test_exercise_2_unfinished_or_broken_answers_do_not_raise(capsys):
    check_exercise_2(lambda block, x: None)
    assert_rejected(capsys, "Not answered")
    check_exercise_2(lambda block, x: 1 / 0)
    assert_rejected(capsys, "ZeroDivisionError")
    check_exercise_2(lambda block: block)  # wrong signature
    assert_rejected(capsys, "TypeError")
    check_exercise_2(lambda block, x: x.tolist())
    assert_rejected(capsys, "tensor")
    check_exercise_2(lambda block, x: x[:, :1])
    assert_rejected(capsys, "shape")
    check_exercise_2("x + att(norm1(x))")
    assert_rejected(capsys, "function")


def dropout_solution(config, emb_rate, shortcut_rate, attention_rate):
    model = GPTModel(config)
    model.drop_emb = nn.Dropout(emb_rate)
    for block in model.trf_blocks:
        block.drop_shortcut = nn.Dropout(shortcut_rate)
        block.att.dropout = nn.Dropout(attention_rate)
    return model


def test_exercise_3_separate_dropout_rates(capsys):
    check_exercise_3(dropout_solution)
    assert_correct(capsys)

    def setting_p(config, emb_rate, shortcut_rate, attention_rate):  # changing p in place is fine too
        model = GPTModel(config)
        model.drop_emb.p = emb_rate
        for block in model.trf_blocks:
            block.drop_shortcut.p, block.att.dropout.p = shortcut_rate, attention_rate
        return model

    check_exercise_3(setting_p)
    assert_correct(capsys)


def test_exercise_3_rejects_rates_in_the_wrong_places(capsys):
    def swapped(config, emb_rate, shortcut_rate, attention_rate):
        return dropout_solution(config, emb_rate, attention_rate, shortcut_rate)

    def one_rate(config, emb_rate, shortcut_rate, attention_rate):
        return GPTModel(dataclasses.replace(config, drop_rate=emb_rate))

    def first_block_only(config, emb_rate, shortcut_rate, attention_rate):
        model = dropout_solution(config, emb_rate, shortcut_rate, attention_rate)
        model.trf_blocks[1].drop_shortcut = nn.Dropout(config.drop_rate)
        return model

    def forgot_attention(config, emb_rate, shortcut_rate, attention_rate):
        model = dropout_solution(config, emb_rate, shortcut_rate, attention_rate)
        for block in model.trf_blocks:
            block.att.dropout = nn.Dropout(config.drop_rate)
        return model

    def new_names(config, emb_rate, shortcut_rate, attention_rate):  # layers forward never calls
        model = GPTModel(config)
        model.emb_dropout = nn.Dropout(emb_rate)
        return model

    for wrong, words in [
        (swapped, ["att.dropout", "0.2"]),
        (one_rate, ["drop_shortcut"]),
        (first_block_only, ["trf_blocks.1.drop_shortcut"]),
        (forgot_attention, ["att.dropout"]),
        (new_names, ["drop_emb"]),
    ]:
        check_exercise_3(wrong)
        assert_rejected(capsys, *words)


def test_exercise_3_rejects_a_model_whose_forward_ignores_its_dropout_layers(capsys):
    class NoDropout(GPTModel):
        def forward(self, idx):
            self.eval()
            return super().forward(idx)

    def build(config, emb_rate, shortcut_rate, attention_rate):
        model = NoDropout(config)
        model.drop_emb = nn.Dropout(emb_rate)
        for block in model.trf_blocks:
            block.drop_shortcut, block.att.dropout = nn.Dropout(shortcut_rate), nn.Dropout(attention_rate)
        return model

    check_exercise_3(build)
    assert_rejected(capsys, "training mode")


def test_exercise_3_rejects_changing_gptmodel_itself(capsys, monkeypatch):
    original_init = GPTModel.__init__

    def patch_the_class(config, emb_rate, shortcut_rate, attention_rate):
        def init(self, cfg):
            original_init(self, cfg)
            self.drop_emb = nn.Dropout(emb_rate)
            for block in self.trf_blocks:
                block.drop_shortcut, block.att.dropout = nn.Dropout(shortcut_rate), nn.Dropout(attention_rate)

        monkeypatch.setattr(GPTModel, "__init__", init)  # undone after the test
        return GPTModel(config)

    check_exercise_3(patch_the_class)
    assert_rejected(capsys, "GPTModel itself has changed")


def test_exercise_3_unfinished_or_broken_answers_do_not_raise(capsys):
    check_exercise_3(lambda config, e, s, a: None)
    assert_rejected(capsys, "Not answered")
    check_exercise_3(lambda config, e, s, a: {"drop_emb": e})
    assert_rejected(capsys, "nn.Module")
    check_exercise_3(lambda config: GPTModel(config))
    assert_rejected(capsys, "TypeError")
    check_exercise_3(lambda config, e, s, a: nn.Linear(3, 3))
    assert_rejected(capsys, "drop_emb")
    check_exercise_3(0.1)
    assert_rejected(capsys, "function")


class RMSNormSolution(nn.Module):
    def __init__(self, emb_dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(emb_dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.scale


def test_exercise_4_rmsnorm(capsys):
    check_exercise_4(RMSNormSolution)
    assert_correct(capsys)

    class NoEps(RMSNormSolution):
        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True)) * self.scale

    class SubtractsMean(RMSNormSolution):
        def forward(self, x):
            x = x - x.mean(dim=-1, keepdim=True)
            return super().forward(x)

    class WithShift(RMSNormSolution):
        def __init__(self, emb_dim, eps=1e-5):
            super().__init__(emb_dim, eps)
            self.shift = nn.Parameter(torch.zeros(emb_dim))

    for wrong, words in [
        (NoEps, ["tiny input"]),
        (SubtractsMean, ["differs"]),
        (WithShift, ["shift"]),
        (nn.RMSNorm, ["weight"]),
        (nn.LayerNorm, ["weight"]),
    ]:
        check_exercise_4(wrong)
        assert_rejected(capsys, *words)


def test_exercise_4_refuses_pytorchs_rms_norm(capsys):
    class Functional(RMSNormSolution):
        def forward(self, x):
            return nn.functional.rms_norm(x, self.scale.shape, self.scale, self.eps)

    class TorchOp(RMSNormSolution):
        def forward(self, x):
            return torch.rms_norm(x, self.scale.shape, self.scale, self.eps)

    class Borrowed(RMSNormSolution):
        def forward(self, x):
            inner = nn.RMSNorm(x.shape[-1], eps=self.eps, elementwise_affine=False)
            return inner(x) * self.scale

    for shortcut in (Functional, TorchOp, Borrowed):
        check_exercise_4(shortcut)
        assert_rejected(capsys, "ShortcutNotAllowed")
    torch.testing.assert_close(nn.functional.rms_norm(torch.ones(2, 4), (4,)), torch.ones(2, 4))  # restored


def test_exercise_4_unfinished_or_broken_answers_do_not_raise(capsys):
    check_exercise_4(None)
    assert_rejected(capsys, "Not answered")
    check_exercise_4(RMSNormSolution(16))  # an instance, not the class
    assert_rejected(capsys, "class")

    class NeedsTwoArguments(RMSNormSolution):
        def __init__(self, emb_dim, something):
            super().__init__(emb_dim)

    check_exercise_4(NeedsTwoArguments)
    assert_rejected(capsys, "TypeError")

    class ReturnsList(RMSNormSolution):
        def forward(self, x):
            return x.tolist()

    check_exercise_4(ReturnsList)
    assert_rejected(capsys, "tensor")


def generate_until_solution(model, idx, max_new_tokens, context_size, eos_id):
    for _ in range(max_new_tokens):
        idx = generate_text_simple(model, idx, max_new_tokens=1, context_size=context_size)
        if idx[0, -1].item() == eos_id:
            break
    return idx


def test_exercise_5_stop_at_the_end(capsys):
    check_exercise_5(generate_until_solution)
    assert_correct(capsys)

    def drops_the_eos(model, idx, max_new_tokens, context_size, eos_id):
        for _ in range(max_new_tokens):
            longer = generate_text_simple(model, idx, 1, context_size)
            if longer[0, -1].item() == eos_id:
                break
            idx = longer
        return idx

    def ignores_eos(model, idx, max_new_tokens, context_size, eos_id):
        return generate_text_simple(model, idx, max_new_tokens, context_size)

    def never_crops(model, idx, max_new_tokens, context_size, eos_id):
        return generate_until_solution(model, idx, max_new_tokens, 10**6, eos_id)

    check_exercise_5(drops_the_eos)
    assert_rejected(capsys, "expected")
    check_exercise_5(ignores_eos)
    assert_rejected(capsys, "expected")
    check_exercise_5(never_crops)  # the model's context is 8 tokens; the check generates 15
    assert_rejected(capsys, "ValueError")


def test_exercise_5_unfinished_or_broken_answers_do_not_raise(capsys):
    check_exercise_5(lambda *args: None)
    assert_rejected(capsys, "Not answered")
    check_exercise_5(lambda *args: [1, 2, 3])
    assert_rejected(capsys, "tensor")
    check_exercise_5(lambda model, idx: idx)
    assert_rejected(capsys, "TypeError")
    check_exercise_5([1, 2])
    assert_rejected(capsys, "function")


def test_checks_leave_the_random_state_alone(capsys):
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    check_exercise_2(block_forward_solution)
    check_exercise_3(dropout_solution)
    check_exercise_4(RMSNormSolution)
    check_exercise_5(generate_until_solution)
    assert verdicts(capsys).count("Correct!") == 4
    assert torch.equal(torch.random.get_rng_state(), before)
