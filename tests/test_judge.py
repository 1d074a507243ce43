"""The LLM judge stage against a stand-in Ollama server that stalls, hangs up, or answers garbage.

Every fault must end as skipped answers with a reason, never as an exception. The client
timeout is 0.5 s (a stall lasts 2 s), so the whole file runs in a few seconds.
"""

import http.client
import io
import json
import socket
import urllib.error

import pytest
import torch
from ollama_stub import DIGEST, DROP, ERROR, GARBAGE, NOT_HTTP, STALL, OllamaStub

from ch07_instruction import instruction as ch07
from ch07_instruction.instruction import UnparseableReply, parse_score
from llm_course import stages
from llm_course.judge import failure_kind, judge_all

TIMEOUT = 0.5


@pytest.mark.parametrize(
    "reply, score",
    [
        ("70", 70),
        ("Score: 85", 85),
        ("I'd give it 70/100", 70),
        ("On a scale of 0 to 100, this answer deserves 70.", 70),
        ("On a scale from 0-100: 0", 0),
        ("It gets 100 out of 100.", 100),
        ("Hmm, 40? No: 65", 65),  # the last number is the answer
    ],
)
def test_parse_score_takes_the_score_not_the_scale(reply, score):
    assert parse_score(reply) == score


@pytest.mark.parametrize("reply", ["", "A good answer.", "150", "Score: 8.5", "7/10", "7 out of 10", "0 to 100"])
def test_parse_score_refuses_replies_without_a_score_in_0_to_100(reply):
    with pytest.raises(UnparseableReply, match="score"):
        parse_score(reply)


def judge_error_from(exc):
    """Chapter 7's JudgeError raised while handling ``exc``, as query_ollama raises it (``from None``)."""
    try:
        raise exc
    except Exception:
        try:
            raise ch07.JudgeError("the judge failed") from None
        except ch07.JudgeError as judge_error:
            return judge_error


@pytest.mark.parametrize(
    "exc, kind",
    [
        (TimeoutError("timed out"), "timeout"),
        (urllib.error.URLError(TimeoutError("timed out")), "timeout"),
        (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), "connection refused"),
        (http.client.RemoteDisconnected("Remote end closed connection without response"), "connection dropped"),
        (ConnectionResetError(104, "Connection reset by peer"), "connection dropped"),
        (urllib.error.URLError("no route"), "connection error"),
        (judge_error_from(urllib.error.HTTPError("http://x", 404, "Not Found", {}, io.BytesIO(b""))), "HTTP 404"),
        (judge_error_from(json.JSONDecodeError("Expecting value", "<html>", 0)), "unparseable reply"),
        (UnparseableReply("no score"), "unparseable reply"),
    ],
)
def test_each_failure_gets_its_reason(exc, kind):
    assert failure_kind(exc) == kind


def test_a_refused_connection_is_skipped_and_counted():
    def ask(prompt):
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    verdicts = judge_all(["a", "b", "c", "d", "e"], ask)
    assert verdicts["scores"] == [None] * 5
    assert verdicts["failed"] == {"connection refused": 3, "not asked (the judge had stopped answering)": 2}


@pytest.fixture
def answered(tmp_path):
    """A run folder holding four fine-tuned answers, as the instruct-eval stage saves them."""
    entries = ch07.load_instruction_data()[:4]
    ch07.save_responses(
        tmp_path / stages.RESPONSES_FILE,
        entries,
        base_response=["-"] * 4,
        model_response=[entry["output"] for entry in entries],
    )
    return tmp_path


def judge(out, url, model="llama3"):
    plan = stages.RunPlan(judge_url=url, judge_model=model, judge_timeout=TIMEOUT)
    return stages.judge_instructions(stages.RunContext("quick", out, plan, torch.device("cpu")))


def test_a_judge_that_follows_the_prompt_is_averaged(answered):
    with OllamaStub(["On a scale of 0 to 100, I would give this answer a 70", "Score: 80"]) as stub:
        result = judge(answered, stub.url)
    assert result["scores"] == [70, 80, 70, 80] and result["mean"] == 75.0 and result["failed"] == {}
    assert result["server"]["digest"] == DIGEST and "retry" not in result
    assert stages.judge_line(result) == "mean 75.0 / 100 over 4 answers"


def test_a_stalled_judge_times_out_and_is_given_up_after_three(answered):
    with OllamaStub([STALL]) as stub:
        result = judge(answered, stub.url)
        chats = stub.chats
    assert chats == 3  # the fourth answer is not sent to a server that stopped answering
    assert result["failed"] == {"timeout": 3, "not asked (the judge had stopped answering)": 1}
    assert result["mean"] is None and result["scores"] == [None] * 4
    assert stages.judge_line(result) == (
        "no answer was scored; 4 skipped: 3 timeout, 1 not asked (the judge had stopped answering)"
    )
    assert "3 timeout" in result["retry"]  # asked again at the next run


def test_a_dropped_connection_skips_that_answer_only(answered):
    with OllamaStub([DROP, "90"]) as stub:
        result = judge(answered, stub.url)
    assert result["scores"] == [None, 90, None, 90]
    assert stages.judge_line(result) == "mean 90.0 / 100 over 2 answers; 2 skipped: 2 connection dropped"
    assert "connection dropped" in result["retry"]


@pytest.mark.parametrize("fault", [GARBAGE, NOT_HTTP, "I cannot grade this."])
def test_garbage_is_an_unparseable_reply_and_is_not_retried(answered, fault):
    with OllamaStub([fault, "Score: 60"]) as stub:
        result = judge(answered, stub.url)
    assert result["failed"] == {"unparseable reply": 2} and result["mean"] == 60.0
    assert stages.judge_line(result) == "mean 60.0 / 100 over 2 answers; 2 skipped: 2 unparseable reply"
    assert "retry" not in result  # the same prompt would get the same reply


def test_mixed_faults_are_counted_by_reason(answered):
    with OllamaStub([STALL, "Score: 85", GARBAGE, ERROR]) as stub:
        result = judge(answered, stub.url)
    assert result["failed"] == {"timeout": 1, "unparseable reply": 1, "HTTP 500": 1}
    assert stages.judge_line(result) == (
        "mean 85.0 / 100 over 1 answer; 3 skipped: 1 HTTP 500, 1 timeout, 1 unparseable reply"
    )
    assert "HTTP 500" in result["examples"]["HTTP 500"] and "not json" in result["examples"]["unparseable reply"]


def test_no_server_skips_the_judge_and_says_how_to_start_one(answered):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed
    result = judge(answered, url)
    assert result["server"]["answers"] is False
    assert f"no Ollama server answers at {url}" in result["skipped"] and "ollama serve" in result["skipped"]


def test_a_server_without_the_judge_model_says_which_to_pull(answered):
    with OllamaStub(["50"]) as stub:
        result = judge(answered, stub.url, model="mistral")
        assert stub.chats == 0
    assert "has no model 'mistral'" in result["skipped"] and "ollama pull mistral" in result["skipped"]


def test_the_stage_reads_the_saved_answers(answered):
    """The prompt sent is chapter 7's judge_prompt for each saved answer, in order."""
    prompts = []

    def record(prompt, **kwargs):
        prompts.append(prompt)
        return "50"

    saved = json.loads((answered / stages.RESPONSES_FILE).read_text())
    with OllamaStub(["unused"]) as stub, pytest.MonkeyPatch.context() as mp:
        mp.setattr(ch07, "query_ollama", record)
        judge(answered, stub.url)
    assert prompts == [ch07.judge_prompt(entry, entry["model_response"]) for entry in saved]
