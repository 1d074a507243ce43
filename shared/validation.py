"""Argument checks for the chapter modules' public functions, each with one clear message.

Python counts ``True`` as the integer 1, so ``isinstance(x, int)`` alone would accept
``top_k=True``; these helpers reject booleans wherever a count or a number is expected.
A failed check raises ``ValueError`` naming the argument, what it must be and what it got.
"""

import math


def is_int(value) -> bool:
    """True for an ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """True for a real ``int`` or ``float`` that is not a ``bool`` (NaN and infinities included)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fail(name, expected, value, none_ok):
    alternative = " or None" if none_ok else ""
    raise ValueError(f"{name} must be {expected}{alternative}, got {value!r}")


def require_int(name, value, minimum=None, *, none_ok=False):
    """Raise ValueError unless ``value`` is an integer >= ``minimum`` (or None, if ``none_ok``)."""
    if value is None and none_ok:
        return
    if not is_int(value) or (minimum is not None and value < minimum):
        _fail(name, "an integer" if minimum is None else f"an integer >= {minimum}", value, none_ok)


def require_number(name, value, low=-math.inf, high=math.inf, *, low_open=False, high_open=False, none_ok=False):
    """Raise ValueError unless ``value`` is a number in the interval from ``low`` to ``high``.

    The interval is closed unless ``low_open`` / ``high_open``; with an infinite bound the
    value must still be finite. NaN is always rejected. None passes if ``none_ok``.
    """
    if value is None and none_ok:
        return
    if is_number(value) and math.isfinite(value):
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if above and below:
            return
    bounds = []
    if low > -math.inf:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high < math.inf:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    _fail(name, " ".join(["a finite number", " and ".join(bounds)]).strip(), value, none_ok)
