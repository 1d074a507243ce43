"""shared.validation: the argument checks accept what they promise and reject everything else."""

import math
import re

import pytest

from shared.validation import is_int, is_number, require_int, require_number


def test_booleans_are_not_counts_or_numbers():
    assert is_int(3) and not is_int(True) and not is_int(3.0) and not is_int("3")
    assert is_number(2.5) and is_number(-1) and not is_number(False) and not is_number("2.5")


@pytest.mark.parametrize("value", [1, 2, 10**9])
def test_require_int_accepts_integers_at_or_above_the_minimum(value):
    require_int("top_k", value, 1)


@pytest.mark.parametrize("value", [0, -3, True, 2.0, "2", None])
def test_require_int_rejects_with_the_name_and_the_value(value):
    with pytest.raises(ValueError, match=re.escape(f"top_k must be an integer >= 1, got {value!r}")):
        require_int("top_k", value, 1)


def test_require_int_none_ok_and_no_minimum():
    require_int("eos_id", None, 0, none_ok=True)
    require_int("offset", -5)
    with pytest.raises(ValueError, match="eos_id must be an integer >= 0 or None, got -1"):
        require_int("eos_id", -1, 0, none_ok=True)


@pytest.mark.parametrize("value", [1e-9, 0.5, 1, 1.0])
def test_require_number_half_open_interval(value):
    require_number("top_p", value, 0, 1, low_open=True)


@pytest.mark.parametrize("value", [0, 0.0, 1.0001, -1, math.nan, True, "0.5", None])
def test_require_number_rejects_outside_the_interval(value):
    with pytest.raises(ValueError, match=r"top_p must be a finite number > 0 and <= 1, got"):
        require_number("top_p", value, 0, 1, low_open=True)


def test_require_number_with_an_open_upper_bound_still_wants_a_finite_value():
    require_number("temperature", 0, 0)
    require_number("temperature", 1e6, 0)
    require_number("temperature", None, 0, none_ok=True)
    for bad in (math.inf, -0.5, math.nan):
        with pytest.raises(ValueError, match="temperature must be a finite number >= 0, got"):
            require_number("temperature", bad, 0)
