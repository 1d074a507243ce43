"""An LLM judge that cannot stop a run: failure reasons, retries, a server probe.

Chapter 7 asks a local Ollama server to grade each answer ("Reply with the integer
score only") and reads the score with its ``parse_score``. A judge model does not always
obey, and a server can stall, drop the connection or answer garbage. ``judge_all`` turns
each such failure into a skipped answer with a reason (``"timeout"``, ``"connection
dropped"``, ``"unparseable reply"``, ...), so the scores that did arrive still count. The
caller passes the function that asks the judge (chapter 7's ``query_ollama``).
"""

import http.client
import json
import urllib.error
import urllib.request
from collections import Counter

from ch07_instruction.instruction import UnparseableReply, parse_score

TRANSIENT = ("timeout", "connection refused", "connection dropped", "connection error")
GAVE_UP = "not asked (the judge had stopped answering)"


def _causes(exc):
    """``exc`` and what lies behind it: a URLError's reason, the exception it was raised from or during."""
    seen = []
    while exc is not None and not any(exc is e for e in seen):
        seen.append(exc)
        reason = getattr(exc, "reason", None) if isinstance(exc, urllib.error.URLError) else None
        exc = reason if isinstance(reason, BaseException) else (exc.__cause__ or exc.__context__)
    return seen


def failure_kind(exc):
    """A short reason for a failed judge query: "timeout", "connection dropped", "HTTP 404", ..."""
    for cause in _causes(exc):
        if isinstance(cause, TimeoutError):  # socket.timeout is TimeoutError
            return "timeout"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionError)):
            return "connection dropped"
        if isinstance(cause, urllib.error.HTTPError):
            return f"HTTP {cause.code}"
        if isinstance(cause, (UnparseableReply, http.client.HTTPException, ValueError, KeyError, TypeError)):
            return "unparseable reply"  # no score, no JSON, or no HTTP at all
    return "connection error" if isinstance(exc, OSError) else "judge error"


def judge_all(prompts, ask, errors=(), max_failures_in_a_row=3, progress=iter):
    """Score every prompt with ``ask(prompt) -> reply``; a failed item is skipped, never raised.

    errors: exception types of ``ask`` besides OSError and http.client.HTTPException that
    mean "no usable reply" (e.g. chapter 7's JudgeError). After ``max_failures_in_a_row``
    timeouts or connection failures the server is taken for gone and the rest are not asked.
    Returns {"scores": [int or None per prompt], "failed": {reason: count}, "examples": {reason: message}}.
    """
    catch = (OSError, http.client.HTTPException, UnparseableReply) + tuple(errors)
    scores, failed, examples, in_a_row = [], Counter(), {}, 0
    for prompt in progress(prompts):
        if in_a_row >= max_failures_in_a_row:
            scores.append(None)
            failed[GAVE_UP] += 1
            continue
        try:
            scores.append(parse_score(ask(prompt)))
            in_a_row = 0
        except catch as exc:
            kind = failure_kind(exc)
            scores.append(None)
            failed[kind] += 1
            examples.setdefault(kind, " ".join(str(exc).split())[:300] or type(exc).__name__)
            in_a_row = in_a_row + 1 if kind in TRANSIENT else 0
    return {"scores": scores, "failed": dict(failed), "examples": examples}


def probe_ollama(url, model, timeout=2.0):
    """What the judge server at ``url`` offers: {"answers": bool, "models": {name: digest} or None}.

    Reads Ollama's model list (``GET /api/tags``); "models" is None when something answers
    but gives no such list (not an Ollama server, or an error status).
    """
    try:
        with urllib.request.urlopen(f"{url}/api/tags", timeout=timeout) as response:
            body = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError:
        return {"answers": True, "models": None}
    except (OSError, http.client.HTTPException, ValueError):  # ValueError: not an http:// URL
        return {"answers": False, "models": None}
    try:
        return {"answers": True, "models": {m["name"]: m.get("digest", "") for m in json.loads(body)["models"]}}
    except (ValueError, KeyError, TypeError):
        return {"answers": True, "models": None}


def find_model(models, model):
    """The name under which Ollama lists ``model`` ("llama3" is listed as "llama3:latest"), or None."""
    for name in (model, f"{model}:latest"):
        if name in (models or {}):
            return name
    return None


def worth_retrying(kind):
    """Whether a failure may pass by itself (a busy or restarting server), unlike a reply without a score."""
    return kind in TRANSIENT or kind == GAVE_UP or kind.startswith("HTTP 5")


def describe_failures(failed):
    """ "2 skipped: 1 timeout, 1 unparseable reply" (largest count first), or "" when none failed."""
    if not failed:
        return ""
    parts = ", ".join(f"{count} {kind}" for kind, count in sorted(failed.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{sum(failed.values())} skipped: {parts}"
