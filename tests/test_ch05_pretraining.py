"""Chapter 5: loss, training loop, decoding, KV cache, checkpoints, GPT-2 loading, course-base.

Small random models keep the whole file fast. Expected values come from independent
computations (hand-written formulas, Hugging Face's GPT-2, straight training runs),
never from numbers copied out of the implementation.
"""

import dataclasses
import json
import math
import random

import pytest
import torch

import ch05_pretraining.pretraining as ch05
from ch05_pretraining.pretraining import (
    KVCache,
    calc_loss_batch,
    calc_loss_loader,
    generate,
    load_checkpoint,
    load_gpt2_weights,
    load_pretrained,
    save_checkpoint,
    text_to_token_ids,
    token_ids_to_text,
    train_model,
)
from shared import FetchError, GPTConfig, GPTModel, generate_text_simple


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: one thread is fastest for them, and robust on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = GPTConfig(vocab_size=97, context_length=32, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0)


def tiny_model(config=TINY, seed=0):
    torch.manual_seed(seed)
    return GPTModel(config).eval()


class FixedLogits(torch.nn.Module):
    """A stand-in model that returns given logits, whatever the input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, idx):
        return self.logits


# --- loss and perplexity -------------------------------------------------------------------


def test_cross_entropy_matches_a_hand_computation():
    # vocabulary of 3; two positions with logits whose softmax is easy to write down
    logits = torch.tensor([[[0.0, math.log(3.0), 0.0], [math.log(2.0), 0.0, math.log(2.0)]]])
    targets = torch.tensor([[1, 0]])
    # position 1: softmax = (1, 3, 1) / 5 -> p(target 1) = 3/5; position 2: (2, 1, 2) / 5 -> p(0) = 2/5
    expected = -(math.log(3 / 5) + math.log(2 / 5)) / 2
    loss = calc_loss_batch(torch.zeros(1, 2, dtype=torch.long), targets, FixedLogits(logits), "cpu")
    assert loss.item() == pytest.approx(expected, abs=1e-6)  # float32 rounding of log/softmax
    assert math.exp(loss.item()) == pytest.approx(5 / math.sqrt(6), rel=1e-5)  # perplexity = 1/geomean(p)


def test_uniform_logits_give_ln_vocab_size():
    vocab = 50257
    logits = torch.zeros(2, 5, vocab)
    targets = torch.randint(0, vocab, (2, 5), generator=torch.Generator().manual_seed(0))
    loss = calc_loss_batch(torch.zeros(2, 5, dtype=torch.long), targets, FixedLogits(logits), "cpu")
    assert loss.item() == pytest.approx(math.log(vocab), rel=1e-6)  # float32 log-sum-exp of 50,257 zeros


def test_calc_loss_loader_averages_batches_and_caps_num_batches():
    model = tiny_model()
    data = torch.randint(0, TINY.vocab_size, (4, 2, 9), generator=torch.Generator().manual_seed(1))
    loader = [(batch[:, :-1], batch[:, 1:]) for batch in data]
    per_batch = [calc_loss_batch(x, y, model, "cpu").item() for x, y in loader]
    # the same batch losses; only the float summation order may differ (rel 1e-6)
    assert calc_loss_loader(loader, model, "cpu") == pytest.approx(sum(per_batch) / 4, rel=1e-6)
    assert calc_loss_loader(loader, model, "cpu", num_batches=2) == pytest.approx(sum(per_batch[:2]) / 2, rel=1e-6)
    assert calc_loss_loader(loader, model, "cpu", num_batches=10) == pytest.approx(sum(per_batch) / 4, rel=1e-6)
    with pytest.raises(ValueError, match="no batches"):
        calc_loss_loader([], model, "cpu")


def test_text_token_round_trip_with_tiktoken_and_chapter_2_tokenizer():
    from shared import BPETokenizer, gpt2_encoding

    text = "Hello, world.<|endoftext|>Bye"
    ids = text_to_token_ids(text, gpt2_encoding())
    assert ids.shape[0] == 1 and ids.dtype == torch.long and 50256 in ids[0].tolist()
    assert token_ids_to_text(ids, gpt2_encoding()) == text
    ours = BPETokenizer.from_gpt2()
    assert torch.equal(text_to_token_ids(text, ours), ids)
    assert token_ids_to_text(ids[0], ours) == text
    with pytest.raises(ValueError, match="2 sequences"):
        token_ids_to_text(torch.zeros(2, 3, dtype=torch.long), ours)


@pytest.fixture(scope="module")
def verdict_text():
    from shared import fetch

    return fetch("the-verdict").read_text(encoding="utf-8")


@pytest.mark.parametrize("special_tokens", [(), ("<|endoftext|>",)], ids=["no-special", "endoftext"])
def test_helpers_work_with_a_tokenizer_trained_in_chapter_2(verdict_text, special_tokens):
    """Chapter 2's trained tokenizers may lack <|endoftext|>; the helpers must work either way."""
    from shared import BPETokenizer

    tok = BPETokenizer().train(verdict_text[:5000], 300, special_tokens=special_tokens)
    ids = text_to_token_ids("Every effort moves you", tok)
    assert ids.shape[0] == 1 and token_ids_to_text(ids, tok) == "Every effort moves you"
    marked = text_to_token_ids("end<|endoftext|>start", tok)[0].tolist()
    if special_tokens:
        assert tok.special_tokens["<|endoftext|>"] in marked
    else:  # no such token: the characters are ordinary text
        assert max(marked) < tok.vocab_size and token_ids_to_text(torch.tensor(marked), tok) == "end<|endoftext|>start"


def test_train_model_samples_with_a_tokenizer_trained_in_chapter_2(verdict_text, capsys):
    """End-of-epoch samples go through text_to_token_ids; a trained tokenizer without specials must not crash."""
    from shared import BPETokenizer

    tok = BPETokenizer().train(verdict_text[:5000], 300)
    cfg = dataclasses.replace(TINY, vocab_size=tok.vocab_size)
    torch.manual_seed(0)
    model = GPTModel(cfg)
    ids = torch.tensor(tok.encode(verdict_text[:600]))
    from shared import create_dataloader

    loader = create_dataloader(ids, batch_size=2, context_length=8, stride=8, shuffle=False, drop_last=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_model(
        model,
        loader,
        loader,
        optimizer,
        "cpu",
        num_epochs=1,
        eval_freq=100,
        eval_iter=1,
        start_context="Every effort",
        tokenizer=tok,
    )
    assert "Every effort" in capsys.readouterr().out


# --- generate ------------------------------------------------------------------------------


def test_temperature_zero_is_greedy_and_equals_generate_text_simple():
    model = tiny_model()
    idx = torch.tensor([[1, 2, 3], [4, 5, 6]])
    expected = generate_text_simple(model, idx, 20, context_size=TINY.context_length)
    assert torch.equal(generate(model, idx, 20, TINY.context_length), expected)
    # filters cannot change the argmax, so greedy ignores them
    assert torch.equal(generate(model, idx, 20, TINY.context_length, top_k=3, top_p=0.5), expected)


def _next_logits(model, idx):
    with torch.no_grad():
        return model(idx)[:, -1, :]


def test_top_k_never_samples_outside_the_k_best():
    model = tiny_model()
    idx = torch.tensor([[7, 8, 9]])
    allowed = set(_next_logits(model, idx)[0].topk(5).indices.tolist())
    torch.manual_seed(0)
    drawn = {generate(model, idx, 1, TINY.context_length, temperature=1.5, top_k=5)[0, -1].item() for _ in range(300)}
    assert drawn <= allowed
    assert len(drawn) > 1  # it does sample


def test_top_p_never_samples_outside_the_nucleus():
    model = tiny_model()
    idx = torch.tensor([[7, 8, 9]])
    probs = torch.softmax(_next_logits(model, idx)[0], dim=-1)
    ranked = probs.argsort(descending=True).tolist()
    nucleus, mass = set(), 0.0
    for token in ranked:  # smallest set of top tokens reaching 0.3
        nucleus.add(token)
        mass += probs[token].item()
        if mass >= 0.3:
            break
    torch.manual_seed(0)
    drawn = {generate(model, idx, 1, TINY.context_length, temperature=1.0, top_p=0.3)[0, -1].item() for _ in range(300)}
    assert drawn <= nucleus
    assert 1 < len(nucleus) < TINY.vocab_size  # the test is meaningful for this model


def test_sampling_is_reproducible_with_a_seed_and_varies_without():
    model = tiny_model()
    idx = torch.tensor([[1, 2]])
    torch.manual_seed(5)
    a = generate(model, idx, 15, TINY.context_length, temperature=1.0)
    torch.manual_seed(5)
    b = generate(model, idx, 15, TINY.context_length, temperature=1.0)
    c = generate(model, idx, 15, TINY.context_length, temperature=1.0)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_eos_stops_generation_and_is_kept():
    model = tiny_model()
    idx = torch.tensor([[1, 2, 3]])
    full = generate(model, idx, 12, TINY.context_length)[0, 3:].tolist()
    stop = full[4]
    first = full.index(stop)
    out = generate(model, idx, 12, TINY.context_length, eos_id=stop)
    assert out[0, 3:].tolist() == full[: first + 1]
    never = next(t for t in range(TINY.vocab_size) if t not in full)
    assert generate(model, idx, 12, TINY.context_length, eos_id=never).shape == (1, 15)


def test_eos_pads_finished_rows_in_a_batch():
    model = tiny_model()
    idx = torch.tensor([[1, 2, 3], [10, 11, 12]])
    rows = generate(model, idx, 12, TINY.context_length)[:, 3:].tolist()
    stop = rows[0][2]
    out = generate(model, idx, 12, TINY.context_length, eos_id=stop)[:, 3:].tolist()
    for row, new in zip(rows, out):
        if stop in row:
            k = row.index(stop)
            assert new[: k + 1] == row[: k + 1] and set(new[k:]) == {stop}
        else:
            assert new == row
    assert any(row[-1] == stop for row in out)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(temperature=-0.5), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(temperature=1.0, top_k=0), "top_k"),
        (dict(temperature=1.0, top_k=2.5), "top_k"),
        (dict(temperature=1.0, top_p=0.0), "top_p"),
        (dict(temperature=1.0, top_p=1.2), "top_p"),
        (dict(eos_id=-1), "eos_id"),
        (dict(context_size=64), "context_size"),
        (dict(max_new_tokens=-1), "max_new_tokens"),
    ],
)
def test_invalid_generate_arguments_raise_clear_errors(kwargs, message):
    args = dict(max_new_tokens=3, context_size=TINY.context_length) | kwargs
    with pytest.raises(ValueError, match=message):
        generate(tiny_model(), torch.tensor([[1, 2]]), **args)


def test_top_k_larger_than_vocabulary_is_an_error():
    with pytest.raises(ValueError, match="larger than the vocabulary"):
        generate(tiny_model(), torch.tensor([[1]]), 2, TINY.context_length, temperature=1.0, top_k=TINY.vocab_size + 1)


# --- KV cache ------------------------------------------------------------------------------


@pytest.mark.parametrize("context_size", [32, 12])  # 12: the window fills and slides
def test_cache_gives_the_same_tokens_as_no_cache(context_size):
    model = tiny_model()
    idx = torch.tensor([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]])
    plain = generate(model, idx, 60, context_size)
    cached = generate(model, idx, 60, context_size, use_cache=True)
    assert torch.equal(plain, cached)
    torch.manual_seed(1)
    sampled = generate(model, idx, 60, context_size, temperature=1.0, top_k=20)
    torch.manual_seed(1)
    assert torch.equal(sampled, generate(model, idx, 60, context_size, temperature=1.0, top_k=20, use_cache=True))


def test_cached_logits_match_a_full_forward_pass():
    model = tiny_model()
    idx = torch.randint(0, TINY.vocab_size, (2, 20), generator=torch.Generator().manual_seed(2))
    cache = KVCache(TINY.context_length)
    with torch.no_grad():
        full = model(idx)
        parts = [model(idx[:, :8], cache=cache)] + [model(idx[:, t : t + 1], cache=cache) for t in range(8, 20)]
    assert cache.length == 20
    # same math in a different order of float32 operations: agreement to ~1e-6
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


def test_cache_overflow_is_an_error():
    cache = KVCache(4)
    layer = object()
    cache.update(layer, torch.zeros(1, 2, 3, 8), torch.zeros(1, 2, 3, 8))
    cache.advance(3)
    with pytest.raises(ValueError, match="room for 4"):
        cache.update(layer, torch.zeros(1, 2, 2, 8), torch.zeros(1, 2, 2, 8))


# --- training ------------------------------------------------------------------------------


def token_loader(seed=0, n_windows=12, batch_size=2, length=16, vocab=TINY.vocab_size, shuffle=True):
    from shared import create_dataloader

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (n_windows * length + 1,), generator=generator)
    return create_dataloader(
        ids, batch_size=batch_size, context_length=length, stride=length, shuffle=shuffle, drop_last=True
    )


def test_training_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = GPTModel(TINY)
    loader = token_loader(n_windows=2, batch_size=2, shuffle=False)  # one fixed batch
    x, y = next(iter(loader))
    before = calc_loss_batch(x, y, model.eval(), "cpu").item()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = train_model(
        model,
        loader,
        loader,
        optimizer,
        "cpu",
        num_epochs=30,
        eval_freq=10,
        eval_iter=1,
        start_context=None,
        tokenizer=None,
        progress=False,
    )
    after = calc_loss_batch(x, y, model.eval(), "cpu").item()
    assert after < 0.5 * before  # 30 steps on one batch of random tokens: memorisation begins
    assert history["steps"] == [10, 20, 30]
    assert history["tokens_seen"] == [10 * 32, 20 * 32, 30 * 32]


def test_schedule_warmup_and_cosine():
    from ch05_pretraining.pretraining import lr_at_step

    lrs = [lr_at_step(s, 100, 1.0, warmup_steps=10, cosine_decay=True, min_lr=0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the decay: the midpoint
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] > 0.1
    with pytest.raises(ValueError, match="min_lr"):
        lr_at_step(0, 10, 1.0, min_lr=2.0)


def test_max_steps_shortens_the_run_and_its_schedule(capsys):
    torch.manual_seed(0)
    model = GPTModel(TINY)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.0)
    loader = token_loader()  # 6 batches per epoch
    history = train_model(
        model,
        loader,
        loader,
        optimizer,
        "cpu",
        num_epochs=5,
        eval_freq=100,
        eval_iter=1,
        start_context=None,
        tokenizer=None,
        warmup_steps=2,
        cosine_decay=True,
        min_lr=0.0,
        max_steps=8,
        progress=False,
    )
    assert history["position"]["step"] == 8 and history["steps"] == [8]
    # the schedule spans the 8 steps: warmup over 2, then half a cosine over the remaining 6
    expected = [0.5, 1.0] + [0.5 * (1 + math.cos(math.pi * k / 6)) for k in range(6)]
    assert history["lrs"] == pytest.approx(expected)
    assert capsys.readouterr().out == ""  # progress=False is silent


def test_sdpa_fast_path_computes_the_same_logits():
    from ch05_pretraining.pretraining import set_sdpa

    model = tiny_model()
    idx = torch.randint(0, TINY.vocab_size, (2, 20), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        textbook = model(idx)
        fast = set_sdpa(model)(idx)
    assert all(m.use_sdpa for m in model.modules() if hasattr(m, "use_sdpa"))
    torch.testing.assert_close(fast, textbook, atol=1e-5, rtol=1e-5)  # same math, fused kernel


@pytest.mark.parametrize(
    "capability, amx, expected",
    [("AVX512", True, torch.bfloat16), ("AVX2", True, None), ("DEFAULT", True, None), ("AVX512", False, None)],
)
def test_fast_path_offers_bf16_only_where_pytorch_reaches_bf16_units(monkeypatch, capability, amx, expected):
    """bf16 needs the units (AMX / AVX512-BF16) and PyTorch dispatching to its AVX-512 kernels."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    options = ch05.fast_path_options("cpu")
    assert options == {"fused_adamw": True, "autocast_dtype": expected}


def test_evaluation_does_not_change_the_training_run():
    """How often we evaluate must not alter the weights (evaluation draws from a shuffled loader)."""
    runs = []
    for eval_freq in (1, 100):
        torch.manual_seed(0)
        model = GPTModel(dataclasses.replace(TINY, drop_rate=0.1))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        loader = token_loader()
        train_model(
            model,
            loader,
            loader,
            optimizer,
            "cpu",
            num_epochs=2,
            eval_freq=eval_freq,
            eval_iter=2,
            start_context=None,
            tokenizer=None,
            progress=False,
        )
        runs.append(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(runs[0].values(), runs[1].values()))


# --- checkpoints ---------------------------------------------------------------------------


def _run(stop_at_step=None, resume_from=None, seed=0):
    """Train a dropout model with warmup + cosine + clipping; optionally interrupt or resume."""
    config = dataclasses.replace(TINY, drop_rate=0.1)
    torch.manual_seed(seed)
    model = GPTModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.1)
    position = None
    if resume_from is not None:
        position = load_checkpoint(resume_from, model, optimizer)
    loader = token_loader(seed=3)
    history = train_model(
        model,
        loader,
        loader,
        optimizer,
        "cpu",
        num_epochs=3,
        eval_freq=4,
        eval_iter=2,
        start_context=None,
        tokenizer=None,
        warmup_steps=3,
        cosine_decay=True,
        min_lr=1e-4,
        grad_clip=0.5,
        stop_at_step=stop_at_step,
        resume=position,
        progress=False,
    )
    return model, optimizer, history


@pytest.mark.parametrize("interrupt_at", [4, 6, 13])  # mid-epoch, an epoch boundary, mid-epoch 3
def test_resume_is_bit_exact(tmp_path, interrupt_at):
    torch.manual_seed(99)
    straight, _, full = _run()
    assert full["position"]["step"] == 18  # 6 batches x 3 epochs

    torch.manual_seed(99)
    first, optimizer, part = _run(stop_at_step=interrupt_at)
    assert part["position"]["step"] == interrupt_at
    path = save_checkpoint(tmp_path / "ckpt.pt", first, optimizer, part["position"])
    torch.manual_seed(12345)  # whatever happens in between must not matter
    random.random()
    resumed, _, rest = _run(resume_from=path, seed=7)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert rest["lrs"] == full["lrs"][interrupt_at:]


def test_checkpoint_round_trip_restores_model_optimizer_and_position(tmp_path):
    model, optimizer, history = _run(stop_at_step=5)
    path = save_checkpoint(tmp_path / "a.pt", model, optimizer, history["position"])
    other = GPTModel(dataclasses.replace(TINY, drop_rate=0.1))
    other_optimizer = torch.optim.AdamW(other.parameters(), lr=2e-3, weight_decay=0.1)
    position = load_checkpoint(path, other, other_optimizer)
    assert position["step"] == 5 and position["tokens_seen"] == 5 * 2 * 16
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    saved, loaded = optimizer.state_dict(), other_optimizer.state_dict()
    assert all(torch.equal(saved["state"][k]["exp_avg_sq"], loaded["state"][k]["exp_avg_sq"]) for k in saved["state"])
    # loading needs no pickled code: the file opens with weights_only=True
    assert "model" in torch.load(path, weights_only=True)


def test_wrong_config_names_the_first_mismatching_tensor(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", tiny_model())
    wider = GPTModel(dataclasses.replace(TINY, emb_dim=48))
    with pytest.raises(ValueError, match=r"'tok_emb\.weight' has shape \(97, 32\) in the file but \(97, 48\)") as info:
        load_checkpoint(path, wider)
    assert "emb_dim=32 (model: 48)" in str(info.value)
    deeper = GPTModel(dataclasses.replace(TINY, n_layers=3))
    with pytest.raises(ValueError, match=r"no tensor 'trf_blocks\.2\."):
        load_checkpoint(path, deeper)


@pytest.mark.parametrize("where", ["serialising", "renaming"])
def test_an_interrupted_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch, where):
    import os

    model = tiny_model()
    path = save_checkpoint(tmp_path / "ckpt.pt", model)
    before = path.read_bytes()

    def crash_while_serialising(obj, f, *args, **kwargs):
        f.write(b"partial bytes of a checkpoint")
        raise KeyboardInterrupt("power cut")

    def crash_before_rename(src, dst):  # the new file is complete on disk, the rename never happens
        raise KeyboardInterrupt("power cut")

    if where == "serialising":
        monkeypatch.setattr(torch, "save", crash_while_serialising)
    else:
        monkeypatch.setattr(os, "replace", crash_before_rename)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, tiny_model(seed=1))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left behind
    restored = GPTModel(TINY)
    load_checkpoint(path, restored)
    assert torch.equal(restored.tok_emb.weight, model.tok_emb.weight)


def test_tied_checkpoint_needs_a_tied_model(tmp_path):
    model = tiny_model()
    model.out_head.weight = model.tok_emb.weight
    path = save_checkpoint(tmp_path / "tied.pt", model)
    with pytest.raises(ValueError, match="tied"):
        load_checkpoint(path, GPTModel(TINY))
    other = GPTModel(TINY)
    other.out_head.weight = other.tok_emb.weight
    load_checkpoint(path, other)
    assert other.out_head.weight is other.tok_emb.weight and torch.equal(other.tok_emb.weight, model.tok_emb.weight)


# --- GPT-2 weights: parity with Hugging Face transformers ----------------------------------

HF_SHAPES = [
    dict(n_layer=1, n_head=1, n_embd=16),
    dict(n_layer=2, n_head=4, n_embd=32),
    dict(n_layer=3, n_head=2, n_embd=24),
]


def hf_gpt2(shape, seed):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=50257, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **shape
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # make the biases and norms non-trivial, so a mix-up cannot hide
        for name, param in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                param.add_(0.1 * torch.randn_like(param))
    return model


def save_hub_layout(model, path):
    """model.safetensors as the hub serves GPT-2: no `transformer.` prefix, no lm_head, mask buffers."""
    from safetensors.torch import save_file

    state = {
        k.removeprefix("transformer."): v.contiguous()
        for k, v in model.state_dict().items()
        if not k.startswith("lm_head")
    }
    n_pos = model.config.n_positions
    for i in range(model.config.n_layer):  # the hub's GPT-2 files carry these causal-mask buffers
        state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n_pos, n_pos)).view(1, 1, n_pos, n_pos)
    save_file(state, path)
    return path


def save_pretrained_layout(model, folder):
    model.save_pretrained(folder, safe_serialization=True)
    return folder / "model.safetensors"


def hf_greedy(model, idx, n):
    for _ in range(n):
        with torch.no_grad():
            next_id = model(idx).logits[:, -1].argmax(-1, keepdim=True)
        idx = torch.cat([idx, next_id], dim=1)
    return idx


@pytest.mark.parametrize("layout", ["hub", "save_pretrained"])
@pytest.mark.parametrize("shape_index", range(len(HF_SHAPES)))
def test_gpt2_loader_matches_huggingface(tmp_path, layout, shape_index):
    shape = HF_SHAPES[shape_index]
    hf = hf_gpt2(shape, seed=shape_index)
    path = (
        save_hub_layout(hf, tmp_path / "model.safetensors") if layout == "hub" else save_pretrained_layout(hf, tmp_path)
    )
    config = GPTConfig(
        vocab_size=50257,
        context_length=64,
        emb_dim=shape["n_embd"],
        n_heads=shape["n_head"],
        n_layers=shape["n_layer"],
        drop_rate=0.0,
        qkv_bias=True,
    )
    ours = load_gpt2_weights(GPTModel(config), path).eval()

    assert ours.out_head.weight is ours.tok_emb.weight  # tied: one Parameter ...
    assert ours.out_head.weight.data_ptr() == ours.tok_emb.weight.data_ptr()  # ... one storage
    idx = torch.randint(0, 50257, (2, 40), generator=torch.Generator().manual_seed(shape_index))
    with torch.no_grad():
        theirs_logits, ours_logits = hf(idx).logits, ours(idx)
    # the same float32 math in a different operation order: differences ~1e-6 at these sizes
    torch.testing.assert_close(ours_logits, theirs_logits, atol=1e-5, rtol=0)
    prompt = idx[:, :4]
    assert torch.equal(generate(ours, prompt, 30, context_size=64), hf_greedy(hf, prompt, 30))
    assert torch.equal(generate(ours, prompt, 30, context_size=64, use_cache=True), hf_greedy(hf, prompt, 30))


def test_gpt2_loader_accepts_a_state_dict_and_rejects_the_wrong_shape():
    hf = hf_gpt2(HF_SHAPES[1], seed=0)
    config = GPTConfig(vocab_size=50257, context_length=64, emb_dim=32, n_heads=4, n_layers=2, qkv_bias=True)
    load_gpt2_weights(GPTModel(config), hf.state_dict())  # with the "transformer." prefix and lm_head
    with pytest.raises(ValueError, match=r"'wte\.weight' has shape \(50257, 32\), this model needs \(50257, 48\)"):
        load_gpt2_weights(GPTModel(dataclasses.replace(config, emb_dim=48)), hf.state_dict())
    with pytest.raises(ValueError, match="qkv_bias=True"):
        load_gpt2_weights(GPTModel(dataclasses.replace(config, qkv_bias=False)), hf.state_dict())
    with pytest.raises(ValueError, match="no place for: h.1"):
        load_gpt2_weights(GPTModel(dataclasses.replace(config, n_layers=1)), hf.state_dict())


def test_load_pretrained_without_weights_says_how_to_get_them(course_env):
    with pytest.raises(FetchError, match="llm-course fetch --profile book"):
        load_pretrained("gpt2-small (124M)", download=False)
    with pytest.raises(ValueError, match="unknown model 'gpt-5'"):
        load_pretrained("gpt-5")


def test_load_pretrained_uses_a_local_copy(course_env, tmp_path, monkeypatch):
    """The plumbing from a registry file to a tied, eval-mode model (a tiny stand-in for 124M)."""
    hf = hf_gpt2(HF_SHAPES[0], seed=3)
    weights = save_hub_layout(hf, tmp_path / "tiny.safetensors")
    tiny = GPTConfig(vocab_size=50257, context_length=64, emb_dim=16, n_heads=1, n_layers=1, qkv_bias=True)
    monkeypatch.setitem(ch05.GPT_CONFIGS, "gpt2-small (124M)", tiny)
    monkeypatch.setattr(ch05, "fetch", lambda name: weights if name == "gpt2-124M" else None)
    model = load_pretrained("gpt2-small (124M)")
    assert not model.training and model.out_head.weight is model.tok_emb.weight
    idx = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        torch.testing.assert_close(model(idx), hf(idx).logits, atol=1e-5, rtol=0)


# --- course-base ---------------------------------------------------------------------------

TINY_RECIPE = dataclasses.replace(
    ch05.COURSE_BASE_RECIPE,
    max_steps=3,
    warmup_steps=1,
    eval_freq=2,
    eval_iter=1,
    batch_size=2,
    config=dataclasses.replace(ch05.COURSE_BASE_RECIPE.config, context_length=16, emb_dim=8, n_heads=2, n_layers=1),
)


@pytest.fixture
def tiny_course_base(tmp_path, monkeypatch):
    """course-base with a 3-step recipe, cached in an empty folder (the real data via the mirror)."""
    monkeypatch.setenv("LLM_COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ch05, "COURSE_BASE_RECIPE", TINY_RECIPE)
    return tmp_path / "cache" / "models" / "course-base"


def test_course_base_is_identical_cold_and_warm_and_keeps_the_random_state(tiny_course_base, capsys):
    torch.manual_seed(42)
    random.seed(42)
    expected_torch, expected_python = torch.rand(3), random.random()
    torch.manual_seed(42)
    random.seed(42)
    cold = load_pretrained("course-base")
    assert torch.equal(torch.rand(3), expected_torch) and random.random() == expected_python
    assert "pretraining it now" in capsys.readouterr().out
    assert sorted(p.name for p in tiny_course_base.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]

    warm = load_pretrained("course-base")
    assert capsys.readouterr().out == ""  # nothing to train
    assert not warm.training and warm.out_head.weight is warm.tok_emb.weight
    assert warm.config == ch05.course_base_config()
    for (name, a), b in zip(cold.state_dict().items(), warm.state_dict().values()):
        assert torch.equal(a, b), name
    meta = json.loads((tiny_course_base / "config.json").read_text())
    assert meta["recipe"]["max_steps"] == 3 and meta["steps"] == 3


def test_course_base_retrains_when_the_cache_is_damaged_or_stale(tiny_course_base, monkeypatch, capsys):
    first = load_pretrained("course-base")
    weights = tiny_course_base / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # flip bits of the last weight
    weights.write_bytes(bytes(data))
    capsys.readouterr()
    again = load_pretrained("course-base")
    assert "pretraining it now" in capsys.readouterr().out
    assert torch.equal(first.tok_emb.weight, again.tok_emb.weight)  # deterministic retraining

    monkeypatch.setattr(ch05, "COURSE_BASE_RECIPE", dataclasses.replace(TINY_RECIPE, max_steps=2))
    changed = load_pretrained("course-base")
    assert "pretraining it now" in capsys.readouterr().out
    assert not torch.equal(first.tok_emb.weight, changed.tok_emb.weight)


def test_course_base_keeps_its_own_tokenizer_beside_the_weights(tiny_course_base):
    from shared import BPETokenizer, gpt2_encoding

    load_pretrained("course-base")
    tokenizer = ch05.load_tokenizer("course-base")
    assert isinstance(tokenizer, BPETokenizer) and tokenizer.vocab_size == ch05.course_base_config().vocab_size
    assert ch05.end_of_text_id(tokenizer) == tokenizer.vocab_size - 1  # the last id
    assert ch05.end_of_text_id(gpt2_encoding()) == 50256
    text = "ROMEO: Thou art\n<|endoftext|>Every effort"
    assert tokenizer.decode(tokenizer.encode(text, allowed_special="all")) == text
    with pytest.raises(ValueError, match="unknown model 'gpt-5'"):
        ch05.load_tokenizer("gpt-5")


def test_load_tokenizer_reads_no_weights_and_a_damaged_tokenizer_voids_the_folder(tiny_course_base, capsys):
    load_pretrained("course-base")
    expected = ch05.load_tokenizer("course-base").merges
    (tiny_course_base / "model.safetensors").write_bytes(b"damaged")  # the tokenizer does not need the weights
    capsys.readouterr()
    assert ch05.load_tokenizer("course-base").merges == expected
    assert capsys.readouterr().out == ""  # nothing retrained

    load_pretrained("course-base")  # the damaged weights are retrained
    (tiny_course_base / "tokenizer.json").write_text("{}")
    assert ch05.read_model_folder(tiny_course_base, recipe=ch05.COURSE_BASE_RECIPE) is None
    assert ch05.read_model_tokenizer(tiny_course_base) is None
    capsys.readouterr()
    assert ch05.load_tokenizer("course-base").merges == expected  # trained again, the same merges
    assert "pretraining it now" in capsys.readouterr().out


def test_with_tokenizer_requires_a_saved_tokenizer(tmp_path):
    model = GPTModel(dataclasses.replace(ch05.course_base_config(), n_layers=1))
    ch05.save_model_folder(model, tmp_path / "plain")
    assert ch05.read_model_folder(tmp_path / "plain") is not None
    assert ch05.read_model_folder(tmp_path / "plain", with_tokenizer=True) is None
    assert ch05.read_model_tokenizer(tmp_path / "plain") is None


def test_end_of_text_id_refuses_a_tokenizer_without_the_marker():
    from shared import BPETokenizer

    with pytest.raises(ValueError, match="endoftext"):
        ch05.end_of_text_id(BPETokenizer())


def test_unigram_baseline_matches_a_hand_computation():
    # vocabulary of 3; training counts 3, 1, 0 -> add-one smoothed 4, 2, 1 out of 7
    train_ids, val_ids = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 2])
    expected = -(math.log(4 / 7) + math.log(1 / 7)) / 2
    assert ch05.unigram_baseline_loss(train_ids, val_ids, vocab_size=3) == pytest.approx(expected, rel=1e-12)


# --- exercise checks: each rejects the typical wrong answers and accepts the solution ----------

from ch05_pretraining import checks  # noqa: E402


def _verdict(capsys):
    return capsys.readouterr().out


def test_exercise_1_check(capsys):
    probs = [0.5, 0.25, 0.8, 0.1]
    loss = -sum(math.log(p) for p in probs) / 4
    checks.check_exercise_1(loss, math.exp(loss))
    assert _verdict(capsys).startswith("Correct!")
    for wrong, hint in [
        ((loss / math.log(2), 2 ** (loss / math.log(2))), "natural logarithm"),  # log2
        ((-loss, math.exp(-loss)), "Sign error"),
        ((-sum(math.log(p) for p in probs), 1.0), "not right"),  # a sum, not a mean
        ((loss, 2**loss), "not 2 ** loss"),
        (("1.15", "3.16"), "should be numbers"),
        ((True, 3.16), "should be numbers"),
    ]:
        checks.check_exercise_1(*wrong)
        out = _verdict(capsys)
        assert hint in out and "Correct" not in out, wrong
    checks.check_exercise_1(None, None)
    assert "Not answered" in _verdict(capsys)


def _my_top_k(logits, k):  # the worked solution
    threshold = torch.sort(logits, dim=-1, descending=True).values[..., k - 1 : k]
    return torch.where(logits < threshold, torch.tensor(float("-inf")), logits)


def test_exercise_2_check(capsys):
    checks.check_exercise_2(_my_top_k)
    assert _verdict(capsys) == "Correct!\n"
    assert torch.topk is not None and torch.topk(torch.tensor([1.0, 3.0]), 1).indices.item() == 1  # restored
    from ch05_pretraining.pretraining import top_k_filter

    shortcuts = [
        lambda logits, k: top_k_filter(logits, k),
        lambda logits, k: logits.masked_fill(logits < logits.topk(k, dim=-1).values[..., -1:], float("-inf")),
        lambda logits, k: logits.masked_fill(logits < torch.topk(logits, k).values[..., -1:], float("-inf")),
    ]
    from torch import topk as imported_topk  # bound before the check runs: patching torch.topk would miss it

    shortcuts += [
        lambda logits, k: logits.masked_fill(logits < imported_topk(logits, k).values[..., -1:], float("-inf")),
        lambda logits, k: logits.masked_fill(logits < torch.ops.aten.topk(logits, k)[0][..., -1:], float("-inf")),
    ]
    for shortcut in shortcuts:
        checks.check_exercise_2(shortcut)
        out = _verdict(capsys)
        assert "torch.topk" in out and "Correct" not in out
    wrong = [
        lambda logits, k: logits.masked_fill(
            logits <= torch.sort(logits, dim=-1, descending=True).values[..., k - 1 : k], float("-inf")
        ),  # drops the k-th itself
        lambda logits, k: torch.where(
            logits < torch.sort(logits.flatten(), descending=True).values[k - 1], float("-inf"), logits
        ),  # one threshold for all rows
        lambda logits, k: logits[..., :k],  # wrong shape
        lambda logits, k: 1 / 0,
    ]
    for answer in wrong:
        checks.check_exercise_2(answer)
        assert "Correct" not in _verdict(capsys)
    checks.check_exercise_2("my_top_k")
    assert "function itself" in _verdict(capsys)
    for placeholder in (None, lambda logits, k: None):
        checks.check_exercise_2(placeholder)
        assert _verdict(capsys).startswith("Not answered yet")


def _warmup_linear(step, total_steps, peak_lr, warmup_steps, min_lr):  # the worked solution
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    return peak_lr + (min_lr - peak_lr) * (step - warmup_steps) / (total_steps - 1 - warmup_steps)


def test_exercise_3_check(capsys):
    checks.check_exercise_3(_warmup_linear)
    assert _verdict(capsys) == "Correct!\n"
    wrong = [
        lambda s, t, p, w, m: p * s / w if s < w else p + (m - p) * (s - w) / (t - 1 - w),  # warmup from 0
        lambda s, t, p, w, m: p * (s + 1) / w if s < w else p + (m - p) * (s - w) / (t - w),  # ends one step late
        lambda s, t, p, w, m: p * (s + 1) / w if s < w else p + (m - p) * s / (t - 1),  # ignores the warmup
        lambda s, t, p, w, m: str(p),
        lambda s, t, p, w, m: None,
        "warmup_linear",
    ]
    for answer in wrong:
        checks.check_exercise_3(answer)
        assert "Correct" not in _verdict(capsys)


def _kv_cache_bytes(config, batch_size, num_tokens, bytes_per_value=4):  # the worked solution
    return 2 * config.n_layers * batch_size * num_tokens * config.emb_dim * bytes_per_value


def test_exercise_4_check(capsys):
    checks.check_exercise_4(_kv_cache_bytes)
    assert _verdict(capsys).startswith("Correct! GPT-2 small at 1,024 tokens in 16-bit: 36 MiB")
    wrong = [
        lambda c, b, n, v=4: 2 * c.n_layers * b * c.context_length * c.emb_dim * v,  # the whole context
        lambda c, b, n, v=4: 2 * c.n_layers * b * n * c.emb_dim * 4,  # bytes_per_value ignored
        lambda c, b, n, v=4: c.n_layers * b * n * c.emb_dim * v,  # keys only
        lambda c, b, n, v=4: 2 * c.n_layers * b * n * c.emb_dim * c.n_heads * v,  # emb_dim per head
        lambda c, b, n, v=4: 2 * c.n_layers * n * c.emb_dim * v,  # batch ignored
        lambda c, b, n, v=4: str(2 * c.n_layers * b * n * c.emb_dim * v),
        lambda c, b, n, v=2: 2 * c.n_layers * b * n * c.emb_dim * v,  # wrong default (bf16)
        lambda c, b, n, v=4: 2 * c.n_layers * b * n * c.emb_dim * (4 if v == 4 else 2.5),  # only float32 right
        lambda c, b, n, v=4: None,
    ]
    for answer in wrong:
        checks.check_exercise_4(answer)
        assert "Correct" not in _verdict(capsys)


def test_exercise_4_cases_separate_the_text_from_the_context_and_both_precisions():
    """The loopholes a KV-cache formula can hide in: context_length for num_tokens, bytes_per_value unused."""
    cases = checks.KV_CACHE_CASES
    assert all(tokens < config.context_length for config, _, tokens, _, _ in cases)
    assert {dtype for *_, dtype, _ in cases} == {torch.float32, torch.bfloat16}
    assert {explicit for *_, explicit in cases} == {True, False}  # the default 4 is used, and a value passed
    assert any(config.n_heads > 1 for config, *_ in cases) and any(batch > 1 for _, batch, *_ in cases)


def _course_name(hf_name):  # the worked solution
    top = {
        "wte.weight": "tok_emb.weight",
        "wpe.weight": "pos_emb.weight",
        "ln_f.weight": "final_norm.scale",
        "ln_f.bias": "final_norm.shift",
    }
    block = {
        "ln_1.weight": "norm1.scale",
        "ln_1.bias": "norm1.shift",
        "ln_2.weight": "norm2.scale",
        "ln_2.bias": "norm2.shift",
        "attn.c_proj.weight": "att.out_proj.weight",
        "attn.c_proj.bias": "att.out_proj.bias",
        "mlp.c_fc.weight": "ff.layers.0.weight",
        "mlp.c_fc.bias": "ff.layers.0.bias",
        "mlp.c_proj.weight": "ff.layers.2.weight",
        "mlp.c_proj.bias": "ff.layers.2.bias",
    }
    if hf_name in top:
        return top[hf_name], False
    _, i, rest = hf_name.split(".", 2)
    return f"trf_blocks.{i}.{block[rest]}", rest.endswith(".weight") and not rest.startswith("ln_")


def test_exercise_5_check(capsys):
    checks.check_exercise_5(_course_name)
    assert _verdict(capsys) == "Correct!\n"
    wrong = [
        lambda name: (_course_name(name)[0], False),  # never transposes
        lambda name: (_course_name(name)[0], name.endswith("weight")),  # transposes LayerNorm weights too
        lambda name: (_course_name(name)[0].replace("layers.2", "layers.1"), _course_name(name)[1]),  # GELU slot
        lambda name: [*_course_name(name)],  # a list, not a pair
        lambda name: (["tok_emb.weight"], False),  # unhashable name
        lambda name: (_course_name(name)[0], "yes"),
        lambda name: None,
        None,
    ]
    for answer in wrong:
        checks.check_exercise_5(answer)
        assert "Correct" not in _verdict(capsys)
