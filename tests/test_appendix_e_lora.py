"""Appendix E: LoRA (the specification of LoRALinear, apply_lora, merge_lora, the adapter file and the checks).

Tolerances: merged and unmerged models add the same products in a different order, so their
float32 logits (of order 1 here) agree to 1e-5 absolute, not exactly; everything that does not
reorder arithmetic (a zero B, a reloaded adapter) is compared exactly.
"""

import json

import pytest
import torch
import torch.nn as nn
from safetensors.torch import save

from appendix_e_lora.checks import check_exercise_1, check_exercise_2
from appendix_e_lora.lora import (
    ADAPTER_FORMAT,
    LoRAConfig,
    LoRALinear,
    adapter_state_dict,
    apply_lora,
    load_adapter,
    lora_layers,
    merge_lora,
    read_adapter,
    save_adapter,
    training_costs,
)
from shared import GPTConfig, GPTModel, LlamaConfig, LlamaModel, calc_loss_batch

TINY = GPTConfig(vocab_size=50, context_length=16, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=True)


def tiny_gpt(seed=0, cfg=TINY):
    torch.manual_seed(seed)
    return GPTModel(cfg).eval()


def tiny_llama(seed=0):
    torch.manual_seed(seed)
    return LlamaModel(
        LlamaConfig(vocab_size=50, context_length=16, emb_dim=16, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=24)
    ).eval()


IDS = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(1))


def randomize_lora(model, seed=2):
    """Non-zero B everywhere, as after training."""
    torch.manual_seed(seed)
    for layer in lora_layers(model).values():
        nn.init.normal_(layer.lora_B, std=0.1)
    return model


def linear_shapes(model, config):
    """(in, out) of every nn.Linear the config selects, read from a model without LoRA."""
    return [
        (m.in_features, m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and any(f".{t}." in f".{name}." for t in config.targets)
    ]


# --- zero-initialised B ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [tiny_gpt, tiny_llama])
def test_zero_b_leaves_outputs_unchanged(make):
    model = make()
    with torch.no_grad():
        before = model(IDS)
        apply_lora(model, LoRAConfig(rank=4, alpha=8))
        after = model(IDS)
    assert all(torch.count_nonzero(layer.lora_B) == 0 for layer in lora_layers(model).values())
    assert torch.equal(before, after)


def test_lora_linear_wraps_only_linear_layers_with_a_positive_rank():
    with pytest.raises(TypeError, match="wraps an nn.Linear"):
        LoRALinear(nn.Embedding(3, 4), rank=2, alpha=2)
    with pytest.raises(ValueError, match="rank must be at least 1"):
        LoRALinear(nn.Linear(3, 4), rank=0, alpha=2)


def test_lora_linear_computes_base_plus_scaled_low_rank_path():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(6, 4), rank=2, alpha=6)
    nn.init.normal_(layer.lora_B)
    x = torch.randn(3, 6)
    expected = layer.base(x) + 3.0 * (x @ layer.lora_A.T @ layer.lora_B.T)
    assert layer.scaling == 3.0
    assert torch.allclose(layer(x), expected, atol=1e-6)


# --- which parameters train, and how many --------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        LoRAConfig(rank=4, alpha=8),
        LoRAConfig(rank=1, alpha=1, targets=("W_query", "W_value")),
        LoRAConfig(rank=3, alpha=6, targets=("ff",)),
        LoRAConfig(rank=2, alpha=2, targets=("att.out_proj", "out_head")),
    ],
)
@pytest.mark.parametrize("make", [tiny_gpt, tiny_llama])
def test_only_lora_parameters_train_and_their_count_is_the_formula(config, make):
    if "att.out_proj" in config.targets and make is tiny_llama:
        config = LoRAConfig(rank=2, alpha=2, targets=("attn.out_proj", "out_head"))
    shapes = linear_shapes(make(), config)
    model = apply_lora(make(), config)
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(name.endswith((".lora_A", ".lora_B")) for name in trainable)
    assert sum(p.numel() for p in trainable.values()) == sum(config.rank * (i + o) for i, o in shapes)
    assert len(lora_layers(model)) == len(shapes)


def test_train_also_keeps_a_new_head_trainable():
    model = tiny_gpt()
    model.out_head = nn.Linear(TINY.emb_dim, 2)
    apply_lora(model, LoRAConfig(rank=2, alpha=4, train_also=("out_head",)))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert {"out_head.weight", "out_head.bias"} <= trainable
    assert all(name.startswith("out_head.") or "lora_" in name for name in trainable)


def test_training_moves_only_the_adapters():
    model = apply_lora(tiny_gpt(), LoRAConfig(rank=2, alpha=4))
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    lora_b = {name: p.detach().clone() for name, p in model.named_parameters() if name.endswith("lora_B")}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    for _ in range(3):
        optimizer.zero_grad()
        calc_loss_batch(IDS[:, :-1], IDS[:, 1:], model, "cpu").backward()
        optimizer.step()
    params = dict(model.named_parameters())
    assert all(torch.equal(params[name], value) for name, value in frozen.items())
    assert any(not torch.equal(params[name], value) for name, value in lora_b.items())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(rank=0), "rank must be a positive integer"),
        (dict(rank=2.5), "rank must be a positive integer"),
        (dict(alpha=0), "alpha must be a positive number"),
        (dict(targets="ff"), "targets must be a list"),
        (dict(targets=()), "targets is empty"),
        (dict(train_also=("",)), "train_also must be a list"),
    ],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LoRAConfig(**kwargs)


def test_apply_lora_explains_what_is_wrong():
    with pytest.raises(ValueError, match="no nn.Linear matches targets"):
        apply_lora(tiny_gpt(), LoRAConfig(targets=("W_qkv",)))
    with pytest.raises(ValueError, match="does not have"):
        apply_lora(tiny_gpt(), LoRAConfig(train_also=("classifier",)))
    with pytest.raises(ValueError, match="both a LoRA target and in train_also"):
        apply_lora(tiny_gpt(), LoRAConfig(targets=("ff", "out_head"), train_also=("out_head",)))
    model = apply_lora(tiny_gpt(), LoRAConfig())
    with pytest.raises(ValueError, match="already has LoRA layers"):
        apply_lora(model, LoRAConfig())


def test_a_config_is_a_prepare_model_hook():
    model = tiny_gpt()
    assert LoRAConfig(rank=2, alpha=2)(model) is model
    assert len(lora_layers(model)) == 6 * TINY.n_layers


# --- merging ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [tiny_gpt, tiny_llama])
def test_merged_and_unmerged_outputs_agree(make):
    model = randomize_lora(apply_lora(make(), LoRAConfig(rank=4, alpha=8)))
    with torch.no_grad():
        unmerged = model(IDS)
        merged_model = merge_lora(model)
        merged = merged_model(IDS)
    assert lora_layers(merged_model) == {}
    assert not torch.equal(unmerged, make()(IDS))  # the update does change the model
    assert torch.allclose(unmerged, merged, atol=1e-5)


def test_merged_layer_is_a_plain_linear_with_the_update_folded_in():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(5, 3), rank=2, alpha=4)
    nn.init.normal_(layer.lora_B)
    merged = layer.merged()
    assert type(merged) is nn.Linear and not any(p.requires_grad for p in merged.parameters())
    assert torch.allclose(merged.weight, layer.base.weight + 2.0 * layer.lora_B @ layer.lora_A)
    assert torch.equal(merged.bias, layer.base.bias)


# --- the adapter file -----------------------------------------------------------------------------


def trained_classifier(seed=0):
    """A tiny GPT with a new 2-class head and LoRA, as chapter 6 + appendix E build it, 'trained'."""
    model = tiny_gpt(seed)
    model.out_head = nn.Linear(TINY.emb_dim, 2)
    config = LoRAConfig(rank=4, alpha=8, train_also=("out_head",))
    apply_lora(model, config)
    randomize_lora(model, seed=seed + 1)
    return model, config


def fresh_base(seed=0):
    model = tiny_gpt(seed)
    model.out_head = nn.Linear(TINY.emb_dim, 2)  # the same head shape; its values come from the adapter
    return model


def test_adapter_reloads_onto_a_fresh_base_and_reproduces_the_outputs(tmp_path):
    model, config = trained_classifier()
    path = save_adapter(model, config, tmp_path / "adapter.safetensors")
    reloaded = load_adapter(fresh_base(), path)
    with torch.no_grad():
        assert torch.equal(reloaded(IDS), model(IDS))
    assert not torch.equal(fresh_base()(IDS), model(IDS))  # the adapter carries the change


def test_adapter_file_holds_only_the_adapter(tmp_path):
    model, config = trained_classifier()
    path = save_adapter(model, config, tmp_path / "adapter.safetensors")
    saved_config, tensors = read_adapter(path)
    assert saved_config == config
    assert set(tensors) == set(adapter_state_dict(model, config))
    assert all(name.endswith((".lora_A", ".lora_B")) or name.startswith("out_head.") for name in tensors)
    adapter_bytes = sum(t.numel() * 4 for t in tensors.values())
    model_bytes = sum(p.numel() * 4 for p in model.parameters())
    assert path.stat().st_size < adapter_bytes + 10_000 < model_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["adapter.safetensors"]  # no temporary file left


def test_saving_a_model_without_lora_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no LoRA layers"):
        save_adapter(tiny_gpt(), LoRAConfig(), tmp_path / "a.safetensors")


def test_unreadable_adapter_files_give_clear_errors(tmp_path):
    model, config = trained_classifier()
    good = save_adapter(model, config, tmp_path / "good.safetensors").read_bytes()
    with pytest.raises(FileNotFoundError, match="no adapter file"):
        load_adapter(fresh_base(), tmp_path / "missing.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_adapter(fresh_base(), cut)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_adapter(garbage)
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(save({"w": torch.zeros(2)}))
    with pytest.raises(ValueError, match="not a LoRA adapter"):
        read_adapter(plain)
    bad_config = tmp_path / "bad_config.safetensors"
    bad_config.write_bytes(
        save({"w": torch.zeros(2)}, metadata={"format": ADAPTER_FORMAT, "config": json.dumps({"rank": -1})})
    )
    with pytest.raises(ValueError, match="unreadable LoRA settings"):
        read_adapter(bad_config)


def test_an_adapter_for_another_model_does_not_load(tmp_path):
    model, config = trained_classifier()
    path = save_adapter(model, config, tmp_path / "adapter.safetensors")
    wider = GPTModel(GPTConfig(**{**TINY.__dict__, "emb_dim": 32}))
    wider.out_head = nn.Linear(32, 2)
    with pytest.raises(ValueError, match="has shape .* the model expects"):
        load_adapter(wider, path)
    deeper = GPTModel(GPTConfig(**{**TINY.__dict__, "n_layers": 3}))
    deeper.out_head = nn.Linear(TINY.emb_dim, 2)
    with pytest.raises(ValueError, match="does not fit this model: missing"):
        load_adapter(deeper, path)


# --- measuring ----------------------------------------------------------------------------------


def test_training_costs_count_adamw_state_and_leave_the_model_alone():
    model = apply_lora(tiny_gpt(), LoRAConfig(rank=2, alpha=4))
    before = {name: t.clone() for name, t in model.state_dict().items()}
    batches = [(IDS[:, :-1], IDS[:, 1:])]
    costs = training_costs(model, batches, calc_loss_batch, "cpu", n_steps=2, warmup=1)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert costs["trainable"] == trainable
    n_tensors = sum(1 for p in model.parameters() if p.requires_grad)
    # AdamW: two float32 moments per parameter and one float32 step counter per tensor
    assert costs["optimizer_MB"] * 1e6 == pytest.approx(8 * trainable + 4 * n_tensors)
    assert costs["gradients_MB"] * 1e6 == pytest.approx(4 * trainable)
    assert costs["step_ms"] > 0
    assert all(torch.equal(t, model.state_dict()[name]) for name, t in before.items())


# --- the exercise checks --------------------------------------------------------------------------


def merged_weight_solution(layer):
    return layer.base.weight.detach() + layer.scaling * layer.lora_B.detach() @ layer.lora_A.detach()


def best_low_rank_solution(delta, rank):
    U, S, Vh = torch.linalg.svd(delta, full_matrices=False)
    return U[:, :rank] * S[:rank], Vh[:rank]


def test_exercise_1_accepts_the_solution(capsys):
    check_exercise_1(merged_weight_solution)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (None, "Not answered"),
        (42, "function itself"),
        (lambda layer: None, "Not answered yet"),
        (lambda layer: layer.merged().weight, "merged() is switched off"),
        (lambda layer: layer.base.weight.detach().clone(), "that is the frozen weight"),
        (
            lambda layer: layer.base.weight.detach() + layer.lora_B.detach() @ layer.lora_A.detach(),
            "scaled by alpha / rank",
        ),
        (
            lambda layer: (
                (layer.base.weight.detach() + layer.scaling * layer.lora_B.detach() @ layer.lora_A.detach()).T
            ),
            "Expected shape",
        ),
        (
            lambda layer: layer.base.weight.detach() - layer.scaling * layer.lora_B.detach() @ layer.lora_A.detach(),
            "values differ",
        ),
        (lambda layer: [[0.0]], "Expected a tensor"),
        (lambda layer: 1 / 0, "raised ZeroDivisionError"),
    ],
)
def test_exercise_1_rejects_wrong_answers_and_the_shortcut(wrong, message, capsys):
    check_exercise_1(wrong)
    out = capsys.readouterr().out
    assert message in out and "Correct!" not in out


def test_exercise_1_rejects_an_answer_that_merges_in_place(capsys):
    def in_place(layer):
        with torch.no_grad():
            layer.base.weight += layer.scaling * layer.lora_B @ layer.lora_A
        return layer.base.weight.detach().clone()

    check_exercise_1(in_place)
    out = capsys.readouterr().out
    assert "changed the layer" in out and "Correct!" not in out


def test_exercise_2_accepts_the_solution(capsys):
    check_exercise_2(best_low_rank_solution)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (None, "Not answered"),
        (42, "function itself"),
        (lambda delta, rank: None, "Not answered yet"),
        (lambda delta, rank: (delta[:, :rank], torch.eye(delta.shape[1])[:rank]), "best rank-"),  # keep columns
        (lambda delta, rank: (torch.zeros(delta.shape[0], rank), torch.zeros(rank, delta.shape[1])), "best rank-"),
        (lambda delta, rank: best_low_rank_solution(delta, rank)[::-1], "Expected B of shape"),
        (lambda delta, rank: best_low_rank_solution(delta, rank)[0], "pair of tensors"),
        (
            lambda delta, rank: (lambda U, S, Vh: (U[:, -rank:] * S[-rank:], Vh[-rank:]))(
                *torch.linalg.svd(delta, full_matrices=False)
            ),
            "best rank-",
        ),  # smallest values
        (lambda delta, rank: (delta.mul_(0), None)[1], "changed delta"),
    ],
)
def test_exercise_2_rejects_wrong_answers(wrong, message, capsys):
    check_exercise_2(wrong)
    out = capsys.readouterr().out
    assert message in out and "Correct!" not in out
