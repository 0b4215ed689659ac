"""Fraction windows round exactly (stlspec/rounding.py), the same in every stage and backend."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyp import examples
from stlspec import ir
from stlspec.rounding import as_ratio, ceil_scaled, floor_scaled, fraction_frames, fraction_value


def test_decimals_are_exact():
    assert fraction_value(0.3) == Fraction(3, 10)
    assert fraction_frames(0.3, 0.3, 11) == (3, 3)  # 0.3 * 10 is exactly 3 (floats give 2.9999999999999996)
    assert fraction_frames(0.7, 0.7, 11) == (7, 7)


def test_no_epsilon():
    # The issue: an epsilon of 1e-9 made ceil(1.0000000002) = 1.
    assert ceil_scaled(0.10000000002, 10) == 2
    assert floor_scaled(0.09999999998, 10) == 0
    assert ir.Window(0.10000000002, 1.0, "fraction").frames(11) == (2, 10)


@settings(max_examples=examples(300), deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 6), st.integers(1, 10**7))
def test_matches_decimal_arithmetic(digits, places, length):
    text = f"{digits}e-{places}"
    x = float(Decimal(text))
    if x > 1:
        return
    exact = Fraction(Decimal(text))
    span = length - 1
    assert fraction_frames(x, x, length) == (math.ceil(exact * span), math.floor(exact * span))
    p, q = as_ratio(x)
    # The integer formulas backends without Python use (Scallop's head expressions).
    assert ((p * span + q - 1) // q, (p * span) // q) == fraction_frames(x, x, length)


def test_window_frames_uses_the_helper():
    for T in range(1, 50):
        assert ir.Window(0.25, 0.75, "fraction").frames(T) == fraction_frames(0.25, 0.75, T)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.5", True])
def test_rejects_non_numbers(bad):
    with pytest.raises((TypeError, ValueError)):
        fraction_value(bad)
