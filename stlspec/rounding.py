"""Exact rounding of fraction windows and time hints: the one helper every stage and backend uses.

A fraction bound ``a`` (``0 ≤ a ≤ 1``, written with a decimal point in a spec)
means the exact decimal number written. Stored as a float, it is read back as
the *shortest decimal that round-trips to that float* (``repr``), so ``0.3``
is exactly ``3/10`` and not the double ``0.29999999999999998889…``. For a
trace of ``T`` frames the window ``[a, b]`` covers the frame offsets
``[ceil(a·(T−1)), floor(b·(T−1))]``, computed in exact rational arithmetic:
no epsilon, so ``0.3·10`` is exactly 3 and ``0.10000000002·10`` rounds up to 2.

Backends that cannot call Python per trace use the same numbers as integer
formulas on :func:`as_ratio`'s ``(p, q)``: ``ceil(p·s/q) = (p·s + q − 1) // q``
and ``floor(p·s/q) = (p·s) // q`` with ``s = T − 1`` (the Scallop backend emits
exactly these), or look up :func:`fraction_frames` once per distinct ``T``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

__all__ = ["as_ratio", "fraction_value", "ceil_scaled", "floor_scaled", "fraction_frames"]


@lru_cache(maxsize=4096, typed=True)
def fraction_value(x: float | int | Fraction) -> Fraction:
    """The exact rational a fraction bound stands for (the shortest decimal of a float)."""
    if isinstance(x, Fraction):
        return x
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"a fraction bound is a number, not {type(x).__name__}")
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueError(f"a fraction bound must be finite, got {x!r}")
    return Fraction(repr(x)) if isinstance(x, float) else Fraction(x)


def as_ratio(x: float | int | Fraction) -> tuple[int, int]:
    """``(p, q)`` in lowest terms with ``p/q`` = :func:`fraction_value` ``(x)``."""
    fr = fraction_value(x)
    return fr.numerator, fr.denominator


def ceil_scaled(x: float | int | Fraction, span: int) -> int:
    """``ceil(x · span)``, exactly."""
    p, q = as_ratio(x)
    return -((-p * span) // q)


def floor_scaled(x: float | int | Fraction, span: int) -> int:
    """``floor(x · span)``, exactly."""
    p, q = as_ratio(x)
    return (p * span) // q


def fraction_frames(lo: float | int | Fraction, hi: float | int | Fraction, length: int) -> tuple[int, int]:
    """Frame offsets ``[ceil(lo·(T−1)), floor(hi·(T−1))]`` of the fraction window ``[lo, hi]`` for ``T = length``.

    May be empty (``lo > hi``). ``length`` 0 is treated like 1 (span 0).
    """
    span = max(int(length) - 1, 0)
    return ceil_scaled(lo, span), floor_scaled(hi, span)
