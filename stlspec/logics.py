"""Scalar logics: the choice of ∧, ∨, ¬ on [0, 1] a formula is evaluated under.

=========  ==========================  ============================  =========
logic      x ∧ y                       x ∨ y                         ¬x
=========  ==========================  ============================  =========
boolean    min (on 0/1)                max (on 0/1)                  1 − x
godel      min(x, y)                   max(x, y)                     1 − x
product    x·y                         x + y − x·y                   1 − x
smooth(τ)  −τ·log(e^(−x/τ) + e^(−y/τ))  τ·log(e^(x/τ) + e^(y/τ))      1 − x
=========  ==========================  ============================  =========

Every ∧/∨ here is associative and commutative, so the n-ary folds
:meth:`Logic.and_` / :meth:`Logic.or_` are well defined. ``smooth`` folds n
operands as *one* n-ary log-sum-exp, which is exactly (not just approximately)
the nested binary fold; it tends to ``godel`` as τ → 0 and its values may leave
[0, 1] by at most τ·log n per fold. An empty ∧ is 1 and an empty ∨ is 0 in every
logic (for ``smooth`` these are the conventional identities, not the limit of
log-sum-exp, which would be ∓∞).

``boolean`` reads each atom as true iff its probability is ≥ 0.5
(:meth:`Logic.atom`); the other logics use the probability itself.

``exact`` is not a scalar logic: it is the probability that the formula holds
when every uncertain fact is an independent coin, computed by enumerating
worlds in the reference interpreter. :func:`get_logic` returns a marker for it
(``enumerates=True``) whose scalar operations are the boolean ones used inside
each world; backends that cannot enumerate reject it with E602.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from stlspec.diagnostics import Diagnostic, StlError, did_you_mean

__all__ = ["Logic", "Boolean", "Godel", "Product", "Smooth", "Exact", "LOGICS", "SCALAR_LOGICS", "get_logic"]

#: Logics evaluated by folding scalar operations.
SCALAR_LOGICS: tuple[str, ...] = ("boolean", "godel", "product", "smooth")
#: Every logic name; ``exact`` is handled by the reference interpreter only.
LOGICS: tuple[str, ...] = SCALAR_LOGICS + ("exact",)

#: Threshold at which ``boolean`` reads a probability as true.
BOOLEAN_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class Logic:
    """Base class: ``godel`` operations; subclasses override what differs."""

    name: str = "godel"
    #: True only for ``exact``: values come from enumerating worlds, not from folds.
    enumerates: bool = False

    def atom(self, p: float) -> float:
        """The value of a fact with probability ``p``."""
        return float(p)

    def not_(self, x: float) -> float:
        return 1.0 - x

    def and_(self, xs: Sequence[float]) -> float:
        """n-ary ∧; 1 for no operands."""
        return min(xs) if xs else 1.0

    def or_(self, xs: Sequence[float]) -> float:
        """n-ary ∨; 0 for no operands."""
        return max(xs) if xs else 0.0

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Godel(Logic):
    name: str = "godel"


@dataclass(frozen=True, slots=True)
class Boolean(Logic):
    name: str = "boolean"

    def atom(self, p: float) -> float:
        return 1.0 if p >= BOOLEAN_THRESHOLD else 0.0


@dataclass(frozen=True, slots=True)
class Product(Logic):
    name: str = "product"

    def and_(self, xs: Sequence[float]) -> float:
        return math.prod(xs)

    def or_(self, xs: Sequence[float]) -> float:
        # x ∨ y = 1 − (1 − x)(1 − y), folded: 1 − ∏(1 − x_i).
        return 1.0 - math.prod(1.0 - x for x in xs)


def _logsumexp(xs: Sequence[float]) -> float:
    m = max(xs)
    if math.isinf(m):
        return m
    return m + math.log(math.fsum(math.exp(x - m) for x in xs))


@dataclass(frozen=True, slots=True)
class Smooth(Logic):
    """Log-sum-exp ∨ and ∧ with temperature ``temperature`` (τ > 0)."""

    name: str = "smooth"
    temperature: float = 0.1

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (t > 0 and math.isfinite(t)):
            raise StlError([Diagnostic("E603", f"the smooth logic needs a finite temperature > 0, got {t!r}")])

    def and_(self, xs: Sequence[float]) -> float:
        if not xs:
            return 1.0
        if len(xs) == 1:
            return float(xs[0])
        tau = self.temperature
        return -tau * _logsumexp([-x / tau for x in xs])

    def or_(self, xs: Sequence[float]) -> float:
        if not xs:
            return 0.0
        if len(xs) == 1:
            return float(xs[0])
        tau = self.temperature
        return tau * _logsumexp([x / tau for x in xs])

    def __str__(self) -> str:
        return f"smooth(τ={self.temperature:g})"


@dataclass(frozen=True, slots=True)
class Exact(Boolean):
    """Marker for the enumerating ``exact`` logic; each world is evaluated with boolean operations."""

    name: str = "exact"
    enumerates: bool = True


def get_logic(name: "str | Logic", temperature: float = 0.1) -> Logic:
    """The logic called ``name`` (``temperature`` is used by ``smooth`` only).

    A :class:`Logic` instance is returned unchanged. Unknown names raise
    :class:`StlError` E603 with a did-you-mean hint.
    """
    if isinstance(name, Logic):
        return name
    match name:
        case "boolean":
            return Boolean()
        case "godel":
            return Godel()
        case "product":
            return Product()
        case "smooth":
            return Smooth(temperature=temperature)
        case "exact":
            return Exact()
    close = did_you_mean(str(name), LOGICS)
    hints = [f"did you mean {close[0]!r}?"] if close else []
    hints.append(f"choose one of: {', '.join(LOGICS)}")
    raise StlError([Diagnostic("E603", f"unknown logic {name!r}", hints=tuple(hints))])
