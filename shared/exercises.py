"""Helpers for the exercise self-checks in each chapter's ``checks.py``.

A check never raises on a reader's unfinished or wrong answer: it prints what is off, so
the reader can try again.
"""

NOT_ANSWERED = "Not answered yet: replace the `None` / fill in the function, then run the check again."


def not_answered(answer, message=NOT_ANSWERED) -> bool:
    """True (after printing ``message``) if ``answer`` is still a placeholder: None or ``...``."""
    if answer is None or answer is Ellipsis:
        print(message)
        return True
    return False


def call_safely(fn, *args):
    """``(True, fn(*args))``, or a printed explanation and ``(False, None)`` if the reader's code raises."""
    try:
        return True, fn(*args)
    except Exception as error:  # the reader's code: report, don't crash the notebook
        print(f"Your function raised {type(error).__name__}: {error}")
        return False, None
