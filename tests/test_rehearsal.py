"""The ``book`` rehearsal: every stage of ``llm-course run --profile book`` on random GPT-2 weights.

The weights have GPT-2's real shapes (124M for chapters 5-6, 355M for chapter 7) in the
hub's safetensors layout, in a temporary course cache. To stay within 3 minutes on a
2-core CPU the rehearsal is capped harder than ``REHEARSAL_PLAN``: one optimizer step
per fine-tuning at batch size 1, the 100 shortest instructions (short sequences), one
evaluation batch of one window, 3 generated tokens. The figures it measures are checked
for being there and positive; the committed ones come from ``llm-course run --profile
book --rehearse`` at the real batch sizes.
"""

import dataclasses
import json
import socket
from types import SimpleNamespace

import pytest
import torch

from ch04_gpt_model.gpt_model import GPT_CONFIGS, GPTModel
from ch05_pretraining import pretraining as ch05
from ch06_classification import classification as ch06
from ch07_instruction import instruction as ch07
from llm_course import cli, estimate, rehearsal
from llm_course.stages import STAGES
from shared.data import REGISTRY, ChecksumError, check_gpt2_safetensors, verify
from shared.export import REPO_ROOT


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


STAGE_NAMES = [stage.name for stage in STAGES]
TEST_PLAN = dataclasses.replace(
    rehearsal.REHEARSAL_PLAN,
    max_steps=1,
    eval_batch_size=1,
    eval_context=64,
    tokenizer_chars=2000,
    sample_prompts=("ROMEO:\n",),
    sample_tokens=3,
    max_new_tokens=3,
    judge_url=closed_port_url(),
    judge_timeout=0.5,
)


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory):
    """One rehearsal of the book profile, with smaller batches and shorter instructions."""
    entries = ch07.load_instruction_data()
    shortest = sorted(entries, key=lambda e: len(ch07.format_input(e)) + len(e["output"]))[:100]
    out = tmp_path_factory.mktemp("rehearsal")
    originals = {name: REGISTRY[name] for name in ("gpt2-124M", "gpt2-355M")}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in test_pipeline: two threads are much slower on a busy 2-core machine
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLM_COURSE_CACHE", str(tmp_path_factory.mktemp("cache")))  # the user's cache stays untouched
        mp.setitem(ch06.SPAM_SETTINGS, "book", dataclasses.replace(ch06.SPAM_SETTINGS["book"], batch_size=1))
        mp.setitem(ch07.FINETUNE_SETTINGS, "book", dataclasses.replace(ch07.FINETUNE_SETTINGS["book"], batch_size=1))
        mp.setattr(ch07, "load_instruction_data", lambda: list(shortest))
        figures = rehearsal.rehearse(out, TEST_PLAN)
        counts = estimate.unit_counts("book", TEST_PLAN)  # with the same smaller recipes and data
    torch.set_num_threads(threads)
    return SimpleNamespace(out=out, figures=figures, counts=counts, originals=originals)


def test_every_book_stage_completes_and_writes_its_record(rehearsed):
    for name in STAGE_NAMES:
        record = json.loads((rehearsed.out / "stages" / f"{name}.json").read_text())
        assert record["stage"] == name and record["result"], name
    assert (rehearsed.out / "report.md").is_file()
    assert json.loads((rehearsed.out / rehearsal.ESTIMATE_FILE).read_text()) == json.loads(
        json.dumps(rehearsed.figures)
    )
    base = json.loads((rehearsed.out / "stages" / "base.json").read_text())["result"]
    assert [(m["name"], m["parameters"]) for m in base["models"]] == [
        ("gpt2-small (124M)", 124_439_808),
        ("gpt2-medium (355M)", 354_823_168),
    ]  # GPT-2's published sizes


def test_each_stage_has_positive_timings_for_its_units(rehearsed):
    stages = rehearsed.figures["stages"]
    assert list(stages) == STAGE_NAMES
    for name, stage in stages.items():
        assert stage["seconds"] > 0 and stage["fixed_seconds"] >= 0, name
        for unit, measured in stage["units"].items():
            assert measured["count"] > 0 and measured["seconds"] > 0, (name, unit)
    expected = {
        "base-eval": {
            "eval batch, 124M",
            "prompt, 124M",
            "token, 124M",
            "eval batch, 355M",
            "prompt, 355M",
            "token, 355M",
        },
        "spam": {"train step, 124M", "eval batch, 124M"},
        "instruct": {"train step, 355M", "eval batch, 355M"},
        "instruct-eval": {"prompt, 355M", "token, 355M"},
    }
    for name, units in expected.items():
        assert set(stages[name]["units"]) == units, name
    assert stages["spam"]["units"]["train step, 124M"]["count"] == 1
    assert stages["instruct"]["units"]["train step, 355M"]["count"] == 1


def test_the_counts_of_work_predict_what_the_rehearsal_did(rehearsed):
    """The same functions count the full run's work: on the rehearsal's plan they must match what it did."""
    stages = rehearsed.figures["stages"]
    for name, counts in rehearsed.counts.items():
        observed = stages[name]["units"]
        for (kind, label), count in counts.items():
            done = sum(
                u["count"]
                for unit, u in observed.items()
                if unit.split(", ")[0] == kind and (label is None or unit == f"{kind}, {label}")
            )
            if kind == "token":  # a generation may end early, at end-of-text
                assert 0 < done <= count, (name, kind, label, done, count)
            else:
                assert done == count, (name, kind, label, done, count)


def test_the_registry_is_pinned_only_during_the_rehearsal(rehearsed):
    pins = rehearsed.figures["registry_pins"]
    assert set(pins) == {"gpt2-124M", "gpt2-355M"} and all(len(sha) == 64 for sha in pins.values())
    record = json.loads((rehearsed.out / "stages" / "base.json").read_text())
    assert record["inputs"]["data"] == pins  # the fingerprint names the fake weights, never the real ones
    for name, entry in rehearsed.originals.items():
        assert REGISTRY[name] is entry


def test_a_pinned_entry_refuses_any_other_file_and_is_restored_after_an_error(tmp_path):
    fake, other = tmp_path / "fake.bin", tmp_path / "other.bin"
    fake.write_bytes(b"rehearsal weights")
    other.write_bytes(b"something else")
    original = REGISTRY["gpt2-124M"]
    with pytest.raises(RuntimeError, match="boom"):
        with rehearsal.pinned_registry({"gpt2-124M": fake}):
            verify(REGISTRY["gpt2-124M"], fake)
            with pytest.raises(ChecksumError, match="sha256 mismatch"):
                verify(REGISTRY["gpt2-124M"], other)
            raise RuntimeError("boom")
    assert REGISTRY["gpt2-124M"] is original


def test_the_weights_have_the_hub_layout_and_load_in_chapter_5(tmp_path):
    config = dataclasses.replace(
        GPT_CONFIGS["gpt2-small (124M)"], emb_dim=16, n_heads=2, n_layers=2, context_length=8, vocab_size=50
    )
    path = rehearsal.write_gpt2_weights(config, tmp_path / "model.safetensors")
    assert path.stat().st_size == rehearsal.gpt2_file_size(config)
    check_gpt2_safetensors(n_layers=2, emb_dim=16, vocab_size=50)(path)  # the registry's structural check
    from safetensors.torch import load_file

    state = load_file(path)
    assert sorted((k, tuple(v.shape)) for k, v in state.items()) == sorted(rehearsal.gpt2_hub_tensors(config))
    assert torch.equal(state["h.0.attn.bias"][0, 0], torch.tril(torch.ones(8, 8)))
    model = ch05.load_gpt2_weights(GPTModel(config), path)
    assert torch.equal(model.tok_emb.weight, state["wte.weight"])
    assert torch.equal(model.trf_blocks[1].ff.layers[0].weight, state["h.1.mlp.c_fc.weight"].T)


def test_the_dry_run_multiplies_the_figures_by_the_full_run(rehearsed, capsys):
    path = rehearsed.out / rehearsal.ESTIMATE_FILE
    assert cli.main(["run", "--profile", "book", "--dry-run", "--estimate", str(path)]) == 0
    text = capsys.readouterr().out
    for name in STAGE_NAMES + ["total", "gpt2-355M", "1.52 GB"]:
        assert name in text, name
    full = estimate.unit_counts("book")
    assert full["instruct"][("train step", "355M")] == 2 * (935 // 8)  # 2 epochs of 935 training examples
    rows = estimate.estimate(rehearsed.figures, full)
    instruct = rows["instruct"]
    each = rehearsed.figures["stages"]["instruct"]["units"]["train step, 355M"]["seconds"]
    assert instruct[2] >= 232 * each and f"232 x train step, 355M at {each:.2f} s" in text


def test_the_committed_estimate_covers_every_stage_and_unit():
    figures = json.loads(rehearsal.COMMITTED_ESTIMATE.read_text())
    assert figures["profile"] == "book" and figures["machine"]["cpu"]
    rows = estimate.estimate(figures, estimate.unit_counts("book"))
    assert list(rows) == STAGE_NAMES and all(total > 0 for _, _, total in rows.values())


def test_the_dry_run_of_quick_lists_the_work_and_runs_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_COURSE_CACHE", str(tmp_path))
    assert cli.main(["run", "--profile", "quick", "--dry-run", "--out", str(tmp_path / "run")]) == 0
    text = capsys.readouterr().out
    assert "dry run" in text and "instruct-judge" in text and "x train step" in text and "not estimated" in text
    assert list(tmp_path.iterdir()) == []  # nothing written: no run folder, no cache


def test_rehearse_refuses_the_quick_profile(capsys):
    assert cli.main(["run", "--profile", "quick", "--rehearse"]) == 2
    assert "add --profile book" in capsys.readouterr().err


def test_the_readmes_state_the_committed_estimate():
    figures = json.loads(rehearsal.COMMITTED_ESTIMATE.read_text())
    rows = estimate.estimate(figures, estimate.unit_counts("book"))
    hours = sum(total for _, _, total in rows.values()) / 3600
    steps = figures["stages"]["instruct"]["units"]["train step, 355M"]
    step = steps["seconds"] / steps["count"]
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    korean = (REPO_ROOT / "README.ko.md").read_text(encoding="utf-8")
    assert f"**about {hours:.1f} h**" in readme and f"**약 {hours:.1f}시간**" in korean
    assert f"{step:.1f} per step" in readme and f"스텝당 {step:.1f}" in korean
    for text in (readme, korean):
        assert "llm-course run --profile book --dry-run" in text and "llm-course run --profile book --rehearse" in text
