"""Chapter 7: instruction fine-tuning (the specification of its data, batching, metrics, judge and chat).

Tolerances: the metrics are ratios of small integers, so they are compared with
pytest.approx's default (relative 1e-6), far below the smallest difference a wrong
count would make (1 / 100 for the longest answers used here).
"""

import http.server
import io
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from ch07_instruction.instruction import (
    JudgeError,
    baseline_answers,
    chat_loop,
    exact_match,
    generate_response,
    instruction_model_dir,
    judge_responses,
    load_instruction_data,
    load_instruction_model,
    normalize_answer,
    ollama_is_running,
    query_ollama,
    rouge_l,
    save_responses,
    score_responses,
    split_entries,
    stream_tokens,
    token_f1,
)
from shared import (
    GPTConfig,
    GPTModel,
    InstructionDataset,
    extract_response,
    format_input,
    generate,
    gpt2_encoding,
    instruction_collate,
    save_model_folder,
)
from shared.export import render_module

ROOT = Path(__file__).resolve().parent.parent


def test_module_is_generated_from_the_notebook_and_imports_alone():
    notebook = ROOT / "ch07_instruction" / "instruction.ipynb"
    assert (ROOT / "ch07_instruction" / "instruction.py").read_text(encoding="utf-8") == render_module(notebook)
    subprocess.run([sys.executable, "-c", "import ch07_instruction.instruction"], check=True, cwd=ROOT)


# --- prompt format -----------------------------------------------------------------


def test_format_input_without_input_is_the_alpaca_prompt():
    entry = {"instruction": "Name a primary colour.", "input": "", "output": "Red."}
    assert format_input(entry) == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n"
        "### Instruction:\nName a primary colour.\n\n"
        "### Response:\n"
    )


def test_format_input_with_input_adds_the_input_section_and_its_preamble():
    entry = {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"}
    assert format_input(entry) == (
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nTranslate to French.\n\n"
        "### Input:\nGood morning\n\n"
        "### Response:\n"
    )


def test_a_missing_input_field_counts_as_no_input():
    assert format_input({"instruction": "Hi"}) == format_input({"instruction": "Hi", "input": ""})


def test_format_input_rejects_an_entry_without_instruction():
    with pytest.raises(ValueError, match="instruction"):
        format_input({"input": "x", "output": "y"})


# --- data and split ------------------------------------------------------------------


@pytest.fixture(scope="module")
def entries():
    return load_instruction_data()


def test_split_sizes_are_85_10_5(entries):
    train, test, val = split_entries(entries)
    assert (len(entries), len(train), len(test), len(val)) == (1100, 935, 110, 55)


def test_split_is_a_seeded_partition(entries):
    train, test, val = split_entries(entries, seed=123)
    again = split_entries(entries, seed=123)
    assert (train, test, val) == again
    assert split_entries(entries, seed=7)[0] != train
    key = lambda e: json.dumps(e, sort_keys=True)  # noqa: E731
    parts = [key(e) for part in (train, test, val) for e in part]
    assert sorted(parts) == sorted(key(e) for e in entries)


def test_split_rejects_fractions_that_do_not_sum_to_one(entries):
    with pytest.raises(ValueError, match="sum"):
        split_entries(entries, fractions=(0.8, 0.1, 0.05))


def test_dataset_items_are_prompt_then_response_tokens():
    tokenizer = gpt2_encoding()
    entry = {"instruction": "Say hi.", "input": "", "output": "Hi there!"}
    ((ids, prompt_length),) = InstructionDataset([entry], tokenizer)
    assert tokenizer.decode(ids) == format_input(entry) + "Hi there!"
    assert tokenizer.decode(ids[:prompt_length]) == format_input(entry)


# --- collate -------------------------------------------------------------------------

PAD, IGN = 50256, -100
BATCH = [([11, 12, 13, 14, 15], 2), ([21, 22], 1), ([31, 32, 33], 3)]


def test_collate_pads_shifts_and_keeps_only_the_first_end_of_text():
    inputs, targets = instruction_collate(BATCH)
    # longest sequence has 5 tokens: everything is padded to 5 + 1 and shifted by one
    assert inputs.tolist() == [
        [11, 12, 13, 14, 15],
        [21, 22, PAD, PAD, PAD],
        [31, 32, 33, PAD, PAD],
    ]
    assert targets.tolist() == [
        [12, 13, 14, 15, PAD],
        [22, PAD, IGN, IGN, IGN],
        [32, 33, PAD, IGN, IGN],
    ]
    assert inputs.dtype == targets.dtype == torch.long


def test_collate_truncates_to_allowed_max_length():
    inputs, targets = instruction_collate(BATCH, allowed_max_length=3)
    assert inputs.tolist() == [[11, 12, 13], [21, 22, PAD], [31, 32, 33]]
    assert targets.tolist() == [[12, 13, 14], [22, PAD, IGN], [32, 33, PAD]]


def test_collate_can_mask_the_prompt():
    _, targets = instruction_collate(BATCH, mask_prompt=True)
    # prompt lengths 2, 1, 3: targets that are still prompt tokens (the first p - 1) are hidden
    assert targets.tolist() == [
        [IGN, 13, 14, 15, PAD],
        [22, PAD, IGN, IGN, IGN],
        [IGN, IGN, PAD, IGN, IGN],
    ]


def test_collate_honours_custom_pad_and_ignore_values():
    inputs, targets = instruction_collate([([1, 2], 0), ([3], 0)], pad_token_id=0, ignore_index=-1)
    assert inputs.tolist() == [[1, 2], [3, 0]]
    assert targets.tolist() == [[2, 0], [0, -1]]


@pytest.mark.parametrize(
    "batch, message", [([], "empty batch"), ([([], 0)], "empty"), ([([1, 2], 3)], "prompt_length 3")]
)
def test_collate_rejects_bad_batches(batch, message):
    with pytest.raises(ValueError, match=message):
        instruction_collate(batch)


def test_collate_ignored_positions_do_not_count_in_the_loss():
    inputs, targets = instruction_collate(BATCH)
    logits = torch.randn(*inputs.shape, 50257, generator=torch.Generator().manual_seed(0))
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    keep = targets.flatten() != IGN
    manual = torch.nn.functional.cross_entropy(logits.flatten(0, 1)[keep], targets.flatten()[keep])
    assert torch.allclose(loss, manual)


# --- extract_response ------------------------------------------------------------------


def test_extract_response_takes_the_text_after_the_header():
    prompt = format_input({"instruction": "Name a colour."})
    assert extract_response(prompt + " Blue.\n") == "Blue."


def test_extract_response_stops_at_end_of_text_and_at_a_new_section():
    prompt = format_input({"instruction": "Name a colour."})
    assert extract_response(prompt + "Blue.<|endoftext|>### Response:\nRed") == "Blue."
    assert extract_response(prompt + "Blue.\n\n### Instruction:\nName another.") == "Blue."


def test_extract_response_of_an_empty_answer_is_empty():
    prompt = format_input({"instruction": "Name a colour."})
    assert extract_response(prompt) == ""
    assert extract_response(prompt + "<|endoftext|>") == ""


def test_extract_response_without_a_header_is_an_error():
    with pytest.raises(ValueError, match="no response header"):
        extract_response("Once upon a time")


# --- metrics -----------------------------------------------------------------------


def test_normalize_answer_drops_case_punctuation_and_articles():
    assert normalize_answer("  The Cat, an APPLE!  ") == "cat apple"


@pytest.mark.parametrize("metric", [exact_match, token_f1, rouge_l])
def test_identical_answers_score_one_and_disjoint_answers_zero(metric):
    assert metric("Paris is the capital.", "paris is the capital") == 1.0
    assert metric("Paris is the capital.", "Berlin, Germany") == 0.0


@pytest.mark.parametrize("metric", [exact_match, token_f1, rouge_l])
def test_empty_answers(metric):
    assert metric("", "") == 1.0
    assert metric("", "something") == 0.0 and metric("something", "") == 0.0


def test_token_f1_and_rouge_l_on_a_hand_computed_pair():
    # normalised: prediction "cat sat on mat" (4 words), reference "on cat mat" (3 words)
    # bag overlap = 3 -> P = 3/4, R = 3/3, F1 = 2 * (3/4) / (7/4) = 6/7
    # longest common subsequence in order: "cat mat" (or "on mat") = 2 -> P = 2/4, R = 2/3, F = 4/7
    assert token_f1("The cat sat on the mat.", "On a cat mat") == pytest.approx(6 / 7)
    assert rouge_l("The cat sat on the mat.", "On a cat mat") == pytest.approx(4 / 7)
    assert exact_match("The cat sat on the mat.", "On a cat mat") == 0.0


def test_token_f1_counts_repeated_words_once_per_match():
    # prediction "yes yes yes", reference "yes": overlap 1 -> P = 1/3, R = 1, F1 = 0.5
    assert token_f1("yes yes yes", "yes") == pytest.approx(0.5)


def test_score_responses_has_one_row_per_pair_and_checks_lengths():
    scores = score_responses(["a b", "c"], ["a b", "d"])
    assert scores.to_dict("list") == {"exact_match": [1.0, 0.0], "token_f1": [1.0, 0.0], "rouge_l": [1.0, 0.0]}
    with pytest.raises(ValueError, match="2 responses but 1 references"):
        score_responses(["a", "b"], ["a"])


# --- Ollama judge against a stub server ------------------------------------------------


class StubOllama(http.server.BaseHTTPRequestHandler):
    reply = b""  # the body POST /api/chat answers with
    requests = []  # JSON bodies received

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._send(200, b"Ollama is running")

    def do_POST(self):  # noqa: N802
        length = int(self.headers["Content-Length"])
        type(self).requests.append(json.loads(self.rfile.read(length)))
        self._send(200, type(self).reply)

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_server():
    StubOllama.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StubOllama)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def chat_reply(content):
    return json.dumps({"model": "llama3", "message": {"role": "assistant", "content": content}, "done": True}).encode()


def test_judge_scores_through_the_chat_api(stub_server):
    StubOllama.reply = chat_reply("85")
    entry = {"instruction": "Name a colour.", "input": "", "output": "Blue."}
    assert ollama_is_running(stub_server)
    assert judge_responses([entry], ["Red."], model="llama3", url=stub_server) == [85]
    (request,) = StubOllama.requests
    assert request["model"] == "llama3" and request["stream"] is False
    assert request["options"]["temperature"] == 0
    prompt = request["messages"][0]["content"]
    assert "Name a colour." in prompt and "Blue." in prompt and "Red." in prompt


def test_judge_malformed_reply_is_a_clear_error(stub_server):
    StubOllama.reply = b"<html>not json</html>"
    with pytest.raises(JudgeError, match="malformed reply"):
        query_ollama("hello", url=stub_server)
    StubOllama.reply = json.dumps({"done": True}).encode()  # JSON, but no message.content
    with pytest.raises(JudgeError, match="message.content"):
        query_ollama("hello", url=stub_server)


def test_judge_reply_without_a_score_is_a_clear_error(stub_server):
    StubOllama.reply = chat_reply("I would rather not say.")
    with pytest.raises(JudgeError, match="no score between 0 and 100"):
        judge_responses([{"instruction": "x", "input": "", "output": "y"}], ["z"], url=stub_server)


def test_judge_without_a_server_skips_and_says_how_to_start_one(capsys):
    with socket.socket() as s:  # a port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert (
        judge_responses([{"instruction": "x", "input": "", "output": "y"}], ["z"], url=f"http://127.0.0.1:{port}")
        is None
    )
    out = capsys.readouterr().out
    assert "ollama serve" in out and "ollama pull llama3" in out


# --- chat, streaming and the saved model (tiny random models, never course-base) ----------


def tiny_model(context_length=96, seed=0):
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=50257, context_length=context_length, emb_dim=16, n_heads=2, n_layers=1, drop_rate=0.0)
    return GPTModel(cfg).eval()


class RecordingStream(io.StringIO):
    """A StringIO that remembers every write, to see that answers arrive in pieces."""

    def __init__(self):
        super().__init__()
        self.writes = []

    def write(self, text):
        self.writes.append(text)
        return super().write(text)


def run_chat(model, script, **kwargs):
    out = RecordingStream()
    kwargs.setdefault("temperature", 0.0)
    answers = chat_loop(model, gpt2_encoding(), io.StringIO(script), out, **kwargs)
    return answers, out


def test_baseline_answers_need_no_model_and_never_see_the_test_references():
    train = [
        {"instruction": "Give a synonym for 'fast'.", "input": "", "output": "A synonym for 'fast' is 'quick'."},
        {"instruction": "Give a synonym for 'big'.", "input": "", "output": "A synonym for 'big' is 'large'."},
        {"instruction": "Correct the grammar.", "input": "He go home.", "output": "He goes home."},
    ]
    test = [
        {"instruction": "Give a synonym for 'small'.", "input": "", "output": "SECRET"},
        {"instruction": "Make it passive.", "input": "The cat ate the fish.", "output": "SECRET"},
    ]
    answers = baseline_answers(train, test)
    assert list(answers) == ["most common opening", "echo", "input, else instruction", "nearest training example"]
    assert answers["most common opening"] == ["A synonym", "A synonym"]  # two of the three training answers
    assert answers["echo"] == ["Give a synonym for 'small'.", "Make it passive.\n\nThe cat ate the fish."]
    assert answers["input, else instruction"] == ["Give a synonym for 'small'.", "The cat ate the fish."]
    assert answers["nearest training example"][0] in {train[0]["output"], train[1]["output"]}
    assert not any("SECRET" in answer for replies in answers.values() for answer in replies)


def test_stream_tokens_matches_generate_with_and_without_cache():
    model, tokenizer = tiny_model(), gpt2_encoding()
    idx = torch.tensor([tokenizer.encode(format_input({"instruction": "Name a colour."}))])
    streamed = list(stream_tokens(model, idx, max_new_tokens=12))
    reference = generate(model, idx, 12, context_size=96, use_cache=False)[0, idx.shape[1] :].tolist()
    assert streamed == reference[: len(streamed)] and len(streamed) == 12  # random model: no end-of-text


def test_stream_tokens_refuses_to_overflow_the_context():
    model = tiny_model(context_length=32)
    with pytest.raises(ValueError, match="exceed the model's context_length 32"):
        next(stream_tokens(model, torch.zeros(1, 30, dtype=torch.long), max_new_tokens=5))


def test_chat_streams_answers_through_stdin_and_stdout():
    model, tokenizer = tiny_model(), gpt2_encoding()
    answers, out = run_chat(model, "Name a colour.\n/quit\n", max_new_tokens=10)
    transcript = out.getvalue()
    assert answers == 1
    assert transcript.rstrip().endswith("Bye.")
    # the greedy answer is what generate() produces for the same Alpaca prompt
    expected = generate_response(model, tokenizer, format_input({"instruction": "Name a colour."}), 10)
    assert f"Model: {expected}\n" in transcript
    # streamed: the answer arrived in several writes, not one
    start = out.writes.index("Model: ")
    assert len([w for w in out.writes[start + 1 :] if w.strip()]) > 1


def prompt_lengths(model):
    """Record the prompt length of every answer (the first forward call of each turn)."""
    lengths = []
    model.register_forward_pre_hook(
        lambda module, args: lengths.append(args[0].shape[1]) if args[0].shape[1] > 1 else None
    )
    return lengths


def test_chat_answers_each_message_on_its_own_by_default():
    tokenizer = gpt2_encoding()
    model = tiny_model(context_length=512)
    lengths = prompt_lengths(model)
    _, out = run_chat(model, "Hi.\nAnd now?\n/quit\n", max_new_tokens=5)
    assert lengths == [len(tokenizer.encode(format_input({"instruction": m}))) for m in ("Hi.", "And now?")]
    assert "each message stands alone" in out.getvalue()


def test_chat_with_remember_keeps_history_and_reset_forgets_it():
    tokenizer = gpt2_encoding()
    model = tiny_model(context_length=512)
    lengths = prompt_lengths(model)
    run_chat(model, "Hi.\nAnd now?\n/reset\nAnd now?\n/quit\n", max_new_tokens=5, remember=True)
    fresh = len(tokenizer.encode(format_input({"instruction": "And now?"})))
    assert len(lengths) == 3
    assert lengths[1] > fresh  # the second turn's prompt holds the first turn
    assert lengths[2] == fresh  # after /reset it does not


def test_chat_drops_the_oldest_turn_when_the_context_is_full():
    model = tiny_model(context_length=96)
    _, out = run_chat(model, "Hi.\nHello.\n/quit\n", max_new_tokens=20, remember=True)
    assert "oldest turn dropped" in out.getvalue()


def test_chat_refuses_a_message_too_long_for_the_context_and_goes_on():
    model = tiny_model(context_length=64)
    answers, out = run_chat(model, "word " * 100 + "\nHi\n/quit\n", max_new_tokens=8)
    assert "please shorten it" in out.getvalue()
    assert answers == 1


def test_chat_ends_at_end_of_input_and_rejects_unknown_commands():
    answers, out = run_chat(tiny_model(), "/help\n", max_new_tokens=4)
    assert answers == 0
    assert "unknown command /help" in out.getvalue() and out.getvalue().rstrip().endswith("Bye.")


def test_chat_sampling_is_repeatable_with_a_seed():
    script = "Tell me a story.\n/quit\n"
    first = run_chat(tiny_model(), script, temperature=1.0, top_k=20, max_new_tokens=8, seed=5)[1].getvalue()
    second = run_chat(tiny_model(), script, temperature=1.0, top_k=20, max_new_tokens=8, seed=5)[1].getvalue()
    assert first == second


def test_saved_model_reloads_identically(course_env):
    model = tiny_model()
    save_model_folder(model, instruction_model_dir())
    reloaded = load_instruction_model(device="cpu", train_if_missing=False)
    assert reloaded.config == model.config
    for (name, a), b in zip(model.state_dict().items(), reloaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_damaged_weights_count_as_missing(course_env):
    save_model_folder(tiny_model(), instruction_model_dir())
    weights = instruction_model_dir() / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])  # e.g. a copy that stopped short
    with pytest.raises(FileNotFoundError, match="no fine-tuned model"):
        load_instruction_model(device="cpu", train_if_missing=False)


def test_missing_model_without_training_is_a_clear_error(course_env):
    with pytest.raises(FileNotFoundError, match="no fine-tuned model"):
        load_instruction_model(device="cpu", train_if_missing=False)


def test_save_responses_writes_entries_with_answers_next_to_them(tmp_path):
    entries = [{"instruction": "a", "input": "", "output": "b"}, {"instruction": "c", "input": "d", "output": "e"}]
    path = save_responses(tmp_path / "out" / "responses.json", entries, model_response=["x", "y"])
    assert json.loads(path.read_text()) == [dict(entries[0], model_response="x"), dict(entries[1], model_response="y")]
    assert [p.name for p in path.parent.iterdir()] == ["responses.json"]  # no temporary file left
    with pytest.raises(ValueError, match="1 answers for 2 entries"):
        save_responses(tmp_path / "bad.json", entries, model_response=["x"])


def test_finetune_instruction_model_trains_what_the_hook_leaves_trainable(monkeypatch):
    """The one-call recipe with a tiny base model, three steps, and a hook that freezes the position embedding."""
    from dataclasses import replace

    import ch07_instruction.instruction as instruction

    torch.manual_seed(0)
    base = GPTModel(GPTConfig(vocab_size=50257, context_length=32, emb_dim=8, n_heads=2, n_layers=1, drop_rate=0.0))
    monkeypatch.setattr(instruction, "load_pretrained", lambda name: base)
    monkeypatch.setattr(instruction, "load_tokenizer", lambda name: gpt2_encoding())
    seen = {}

    def freeze_positions(model):
        model.pos_emb.requires_grad_(False)
        seen["pos"] = model.pos_emb.weight.detach().clone()
        seen["block"] = model.trf_blocks[0].ff.layers[0].weight.detach().clone()
        return model

    ft = replace(instruction.FINETUNE_SETTINGS["quick"], num_epochs=1, batch_size=16, max_steps=3)
    model, history = instruction.finetune_instruction_model("quick", "cpu", prepare_model=freeze_positions, recipe=ft)
    assert torch.equal(model.pos_emb.weight, seen["pos"])
    assert not torch.equal(model.trf_blocks[0].ff.layers[0].weight, seen["block"])
    assert history["train_losses"] and not model.training


# --- exercise checks: each rejects the typical wrong answers and accepts the solution ----------

from ch07_instruction import checks  # noqa: E402


def _verdict(capsys, check, answer):
    check(answer)
    return capsys.readouterr().out


def _phi3(entry):  # the worked solution
    lines = ["<|user|>", entry["instruction"]]
    if entry.get("input"):
        lines.append(entry["input"])
    return "\n".join(lines + ["<|assistant|>"]) + "\n"


@pytest.mark.parametrize(
    "answer, fragment",
    [
        (
            lambda e: f"<|user|>\n{e['instruction']}\n{e.get('input', '')}\n<|assistant|>\n",
            "Not yet",
        ),  # blank input line
        (
            lambda e: f"<|user|>\n{e['instruction']}\n{e['input']}\n<|assistant|>\n" if e["input"] else _phi3(e),
            "raised KeyError",
        ),  # no input field
        (lambda e: _phi3(e).rstrip("\n"), "Not yet"),  # no newline after the marker
        (lambda e: _phi3(e).replace("<|assistant|>", "<|assistant|>\n"), "Not yet"),  # an extra blank line
        (lambda e: format_input(e), "Not yet"),  # Alpaca's format
        (lambda e: _phi3(e).split("\n"), "as a string"),
        (lambda e: None, "Not answered yet"),
        (None, "Not answered yet"),
        (_phi3({"instruction": "Say hi.", "input": ""}), "function itself"),
    ],
)
def test_exercise_1_check_rejects_wrong_prompts(capsys, answer, fragment):
    out = _verdict(capsys, checks.check_exercise_1, answer)
    assert fragment in out and "Correct" not in out, out


def test_exercise_1_check_accepts_the_solution(capsys):
    assert _verdict(capsys, checks.check_exercise_1, _phi3).startswith("Correct! This prompt has 22 tokens")


def _mask_prompt_targets(targets, prompt_lengths, ignore_index=-100):  # the worked solution
    masked = targets.clone()
    for row, prompt_length in enumerate(prompt_lengths):
        masked[row, : max(prompt_length - 1, 0)] = ignore_index
    return masked


def _mask_in_place(targets, prompt_lengths, ignore_index=-100):
    for row, prompt_length in enumerate(prompt_lengths):
        targets[row, : max(prompt_length - 1, 0)] = ignore_index
    return targets


def _mask_whole_prompt(targets, prompt_lengths, ignore_index=-100):  # forgets the shift
    masked = targets.clone()
    for row, prompt_length in enumerate(prompt_lengths):
        masked[row, :prompt_length] = ignore_index
    return masked


def _mask_one_short(targets, prompt_lengths, ignore_index=-100):
    masked = targets.clone()
    for row, prompt_length in enumerate(prompt_lengths):
        masked[row, : max(prompt_length - 2, 0)] = ignore_index
    return masked


@pytest.mark.parametrize(
    "answer, fragment",
    [
        (_mask_in_place, "changed the targets"),
        (_mask_whole_prompt, "the target at position j is token j + 1"),
        (_mask_one_short, "the target at position j is token j + 1"),
        (lambda t, p, i=-100: t.clone(), "Not yet"),  # no masking at all
        (lambda t, p, i=-100: _mask_prompt_targets(t, p, 0), "Not yet"),  # ignores ignore_index
        (lambda t, p, i=-100: _mask_prompt_targets(t, p, i).tolist(), "Not yet"),  # not a tensor
        (lambda t, p, i=-100: None, "Not answered yet"),
        ("mask_prompt_targets", "function itself"),
    ],
)
def test_exercise_2_check_rejects_wrong_masks(capsys, answer, fragment):
    out = _verdict(capsys, checks.check_exercise_2, answer)
    assert fragment in out and "Correct" not in out, out


def test_exercise_2_check_accepts_the_solution(capsys):
    assert _verdict(capsys, checks.check_exercise_2, _mask_prompt_targets).startswith("Correct!")


def _freeze_all_but_top(model, num_blocks):  # the worked solution
    model.requires_grad_(False)
    for module in [*list(model.trf_blocks)[len(model.trf_blocks) - num_blocks :], model.final_norm, model.out_head]:
        module.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _freeze_head_first(model, num_blocks):
    """Unfreezes the top, then freezes the rest: a tied embedding freezes the head again."""
    model.requires_grad_(True)
    for module in [*list(model.trf_blocks)[: len(model.trf_blocks) - num_blocks], model.tok_emb, model.pos_emb]:
        module.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _count_twice(model, num_blocks):
    _freeze_all_but_top(model, num_blocks)
    return sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False) if p.requires_grad)


def _blocks_only(model, num_blocks):  # forgets the final norm and the head
    model.requires_grad_(False)
    for block in list(model.trf_blocks)[len(model.trf_blocks) - num_blocks :]:
        block.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    "answer, fragment",
    [
        (_freeze_head_first, "wrong requires_grad"),
        (_count_twice, "Count each parameter once"),
        (_blocks_only, "wrong requires_grad"),
        (lambda m, n: _freeze_all_but_top(m, n + 1) if n < 3 else _freeze_all_but_top(m, n), "wrong requires_grad"),
        (lambda m, n: float(_freeze_all_but_top(m, n)), "an int"),
        (lambda m, n: None, "Not answered yet"),
        (None, "Not answered yet"),
    ],
)
def test_exercise_3_check_rejects_wrong_freezing(capsys, answer, fragment):
    out = _verdict(capsys, checks.check_exercise_3, answer)
    assert fragment in out and "Correct" not in out, out


def test_exercise_3_check_accepts_the_solution(capsys):
    assert _verdict(capsys, checks.check_exercise_3, _freeze_all_but_top).startswith("Correct!")
