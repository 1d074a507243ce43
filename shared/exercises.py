"""Helpers for the exercise self-checks in each chapter's ``checks.py``.

A check never raises on a reader's unfinished or wrong answer: it prints what is off, so
the reader can try again. Every check uses these helpers: placeholders are recognised by
``not_answered`` (and ``not_a_function`` for a function answer), the reader's code runs only
through ``call_safely`` (``call_answer`` when a ``None`` result means "unfinished"), numbers are
type-checked with ``is_number`` / ``is_integer``, shortcuts are found with ``names_used`` or
``aten_ops_called``, and the verdict is printed by ``report``.
"""

from numbers import Integral, Real

from torch.utils._python_dispatch import TorchDispatchMode

NOT_ANSWERED = "Not answered yet: replace the `None` / fill in the function, then run the check again."
RETURNED_NONE = "Not answered yet: your function returned None. Fill it in, then run the check again."
CORRECT = "Correct!"


def not_answered(answer, message=NOT_ANSWERED) -> bool:
    """True (after printing ``message``) if ``answer`` is still a placeholder: None or ``...``."""
    if answer is None or answer is Ellipsis:
        print(message)
        return True
    return False


def not_a_function(answer, signature, message=NOT_ANSWERED) -> bool:
    """True (after printing why) unless ``answer`` is a function the check can call.

    ``signature`` names the expected function in the message, e.g. ``"my_top_k(logits, k)"``.
    """
    if not_answered(answer, message):
        return True
    if not callable(answer):
        print(
            f"Not yet: pass your function itself, not its result (got a {type(answer).__name__}): the check calls "
            f"{signature}."
        )
        return True
    return False


def call_safely(fn, *args, **kwargs):
    """``(True, fn(*args, **kwargs))``, or a printed explanation and ``(False, None)`` if the reader's code raises."""
    try:
        return True, fn(*args, **kwargs)
    except Exception as error:  # the reader's code: report, don't crash the notebook
        print(f"Your function raised {type(error).__name__}: {error}")
        return False, None


def call_answer(fn, *args, message=RETURNED_NONE, **kwargs):
    """Like ``call_safely``, but a result of None (an unfinished body) also gives ``(False, None)``, after ``message``."""
    ok, result = call_safely(fn, *args, **kwargs)
    if ok and not_answered(result, message):
        return False, None
    return ok, result


def is_integer(value) -> bool:
    """True for an integer (Python's or NumPy's), but not for ``True``/``False``."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """True for a real number (int, float, NumPy scalar, NaN and infinities too), but not for ``True``/``False``."""
    return isinstance(value, Real) and not isinstance(value, bool)


def report(*problems, correct=CORRECT, prefix="") -> bool:
    """Print the first problem that is not None (with ``prefix``), or ``correct`` if there is none.

    A placeholder notice (a message starting "Not answered yet") is printed without the prefix.
    Returns True when everything was correct.
    """
    problem = next((p for p in problems if p is not None), None)
    if problem is None:
        print(correct)
        return True
    print(problem if problem.startswith("Not answered yet") else prefix + problem)
    return False


def names_used(fn) -> set[str]:
    """Global and attribute names and string constants in ``fn``'s code, nested functions included.

    A cheap way to spot a forbidden shortcut (a class or function the exercise asks the reader
    to do without) before running the reader's code.
    """
    names, stack = set(), [getattr(fn, "__code__", None)]
    while stack:
        code = stack.pop()
        if code is None:
            continue
        names |= set(code.co_names) | {c for c in code.co_consts if isinstance(c, str)}
        stack += [c for c in code.co_consts if hasattr(c, "co_names")]
    return names


class _AtenRecorder(TorchDispatchMode):
    """Records the name of every ATen operator that runs while it is active."""

    def __init__(self, names):
        super().__init__()
        self.names = names

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.overloadpacket.__name__)  # "topk", "sort", ...
        return func(*args, **(kwargs or {}))


def aten_ops_called(fn, *args, **kwargs):
    """``(ok, result, ops)``: ``call_safely(fn, *args, **kwargs)`` and the set of ATen operators it ran.

    Every route to an operator (``torch.topk``, ``x.topk``, a name imported before the check,
    a helper that calls it) ends in the same ATen operator, so ``"topk" in ops`` finds them all.
    """
    names = []
    with _AtenRecorder(names):
        ok, result = call_safely(fn, *args, **kwargs)
    return ok, result, set(names)
