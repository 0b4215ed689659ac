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

Each logic carries both its **scalar** operations (floats; the reference
interpreter) and its **tensor** operations (``torch`` tensors; the torch
backend), so the choice of logic is made once, by :func:`get_logic`, and no
evaluator needs an ``if logic == ...`` chain. torch is imported lazily inside
the tensor methods; ``import stlspec.logics`` needs only the standard library.
The tensor API:

* :meth:`Logic.tensor_atom`, :meth:`Logic.tensor_not`, :meth:`Logic.tensor_and`,
  :meth:`Logic.tensor_or`: elementwise, as the scalar ones (broadcasting).
* :meth:`Logic.fold_space` ``(disjunction)``: ``(to, op, identity, back)`` --
  ∨ (or ∧) as an associative, commutative binary ``op`` with ``identity`` in a
  transformed space: ``max``/``min`` for the min-max logics, products of
  ``1 − x`` (∨) or ``x`` (∧) for ``product``, ``logaddexp`` of ``±x/τ`` for
  ``smooth``. ``back(op-fold of to(x_i))`` is the n-ary ∨ (∧) of the ``x_i``.
* :meth:`Logic.space_reduce` ``(z, dims, disjunction)`` and
  :meth:`Logic.space_cumulate` ``(z, disjunction, reverse)``: that fold as one
  reduction over ``dims`` / one cumulative op along the last dimension, in the
  transformed space (``z = to(x)``).
* :attr:`Logic.identity_is_exact`: whether folding the space's identity is the
  same as leaving an operand out (false only for ``smooth``, whose identity is
  the finite stand-in :data:`BIG` for log 0, so an *empty* fold must be fixed
  up to 0 or 1 by the caller).
* :meth:`Logic.until_maps`: the monoid of maps ``x ↦ ψ ∨ (φ ∧ x)`` used to scan
  ``until`` (see :class:`UntilMaps`).

``exact`` is not a scalar logic: it is the probability that the formula holds
when every uncertain fact is an independent coin, computed by enumerating
worlds in the reference interpreter. :func:`get_logic` returns a marker for it
(``enumerates=True``) whose scalar operations are the boolean ones used inside
each world; backends that cannot enumerate reject it with E602.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

from stlspec.diagnostics import StlError, did_you_mean, unknown_logic

__all__ = ["Logic", "Boolean", "Godel", "Product", "Smooth", "Exact", "LOGICS", "SCALAR_LOGICS", "get_logic",
           "UntilMaps", "BIG"]

#: Logics evaluated by folding scalar operations.
SCALAR_LOGICS: tuple[str, ...] = ("boolean", "godel", "product", "smooth")
#: Every logic name; ``exact`` is handled by the reference interpreter only.
LOGICS: tuple[str, ...] = SCALAR_LOGICS + ("exact",)

#: Threshold at which ``boolean`` reads a probability as true.
BOOLEAN_THRESHOLD = 0.5

#: Stand-in for log(0) in the log-space folds of ``smooth``: finite, so gradients stay finite.
BIG = 1e30


def _torch():
    import torch  # lazily: the scalar side of this module must not need torch

    return torch


def _reduce(fn, xs):
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    return out


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

    # -- tensors (the min-max logics here; subclasses override what differs)

    #: ∧/∨ are min/max (``boolean``, ``godel``): until maps are ``x ↦ max(a, min(b, x))``.
    minmax: ClassVar[bool] = True
    #: Folding :meth:`fold_space`'s identity equals leaving the operand out.
    identity_is_exact: ClassVar[bool] = True
    #: The Scallop provenance computing this logic exactly (``None``: none does).
    scallop_provenance: ClassVar[str | None] = "minmaxprob"

    def tensor_atom(self, p: Any) -> Any:
        """The value of facts with probabilities ``p`` (a tensor)."""
        return p

    def tensor_not(self, x: Any) -> Any:
        return 1.0 - x

    def tensor_and(self, xs: Sequence[Any]) -> Any:
        """Elementwise n-ary ∧ of broadcastable tensors (at least one)."""
        return xs[0] if len(xs) == 1 else _reduce(_torch().minimum, xs)

    def tensor_or(self, xs: Sequence[Any]) -> Any:
        """Elementwise n-ary ∨ of broadcastable tensors (at least one)."""
        return xs[0] if len(xs) == 1 else _reduce(_torch().maximum, xs)

    def fold_space(self, disjunction: bool) -> tuple[Callable, Callable, float, Callable]:
        """``(to, op, identity, back)``: ∨ (or ∧) as an associative ``op`` with an identity."""
        torch = _torch()
        ident = lambda x: x  # noqa: E731
        if disjunction:  # values lie in [0, 1], so 0 is max's identity and 1 is min's
            return ident, torch.maximum, 0.0, ident
        return ident, torch.minimum, 1.0, ident

    def space_reduce(self, z: Any, dims: int | tuple[int, ...], disjunction: bool, keepdim: bool = False) -> Any:
        """The fold of ``z`` (already in :meth:`fold_space`) over ``dims``."""
        return z.amax(dims, keepdim=keepdim) if disjunction else z.amin(dims, keepdim=keepdim)

    def space_cumulate(self, z: Any, disjunction: bool, reverse: bool = False) -> Any:
        """Cumulative fold of ``z`` (in :meth:`fold_space`) along the last dim; ``reverse``: suffix folds."""
        if reverse:
            return self.space_cumulate(z.flip(-1), disjunction).flip(-1)
        return (z.cummax(-1) if disjunction else z.cummin(-1)).values

    def until_maps(self) -> "UntilMaps":
        """The monoid of maps ``x ↦ ψ ∨ (φ ∧ x)`` of this logic (for scanning ``until``)."""
        return _MinMaxMaps()


@dataclass(frozen=True, slots=True)
class Godel(Logic):
    name: str = "godel"


@dataclass(frozen=True, slots=True)
class Boolean(Logic):
    name: str = "boolean"
    # minmaxprob reads a fuzzy fact as its probability; boolean thresholds it (equal only on 0/1 facts).
    scallop_provenance: ClassVar[str | None] = None

    def atom(self, p: float) -> float:
        return 1.0 if p >= BOOLEAN_THRESHOLD else 0.0

    def tensor_atom(self, p: Any) -> Any:
        return (p >= BOOLEAN_THRESHOLD).to(p.dtype)


@dataclass(frozen=True, slots=True)
class Product(Logic):
    name: str = "product"

    def and_(self, xs: Sequence[float]) -> float:
        return math.prod(xs)

    def or_(self, xs: Sequence[float]) -> float:
        # x ∨ y = 1 − (1 − x)(1 − y), folded: 1 − ∏(1 − x_i).
        return 1.0 - math.prod(1.0 - x for x in xs)

    minmax: ClassVar[bool] = False
    scallop_provenance: ClassVar[str | None] = None  # addmultprob's ∨ is a clamped sum, not x + y − xy

    def tensor_and(self, xs: Sequence[Any]) -> Any:
        return xs[0] if len(xs) == 1 else _reduce(_torch().mul, xs)

    def tensor_or(self, xs: Sequence[Any]) -> Any:
        return xs[0] if len(xs) == 1 else 1.0 - _reduce(_torch().mul, [1.0 - x for x in xs])

    def fold_space(self, disjunction: bool) -> tuple[Callable, Callable, float, Callable]:
        # Products are computed directly (not as exp Σ log): finite gradients at exactly 0 and 1.
        torch = _torch()
        if disjunction:
            return (lambda x: 1.0 - x), torch.mul, 1.0, (lambda y: 1.0 - y)
        return (lambda x: x), torch.mul, 1.0, (lambda y: y)

    def space_reduce(self, z: Any, dims: int | tuple[int, ...], disjunction: bool, keepdim: bool = False) -> Any:
        if isinstance(dims, int):
            return z.prod(dims, keepdim=keepdim)
        out = z
        for d in sorted((d % z.dim() for d in dims), reverse=True):
            out = out.prod(d, keepdim=keepdim)
        return out

    def space_cumulate(self, z: Any, disjunction: bool, reverse: bool = False) -> Any:
        if reverse:
            return _suffix_prod(z)
        return z.cumprod(-1)

    def until_maps(self) -> "UntilMaps":
        return _AffineMaps()


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
            raise StlError([unknown_logic(f"the smooth logic needs a finite temperature > 0, got {t!r}")])

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

    minmax: ClassVar[bool] = False
    identity_is_exact: ClassVar[bool] = False  # −BIG stands for log 0: an empty fold gives ∓τ·BIG
    scallop_provenance: ClassVar[str | None] = None

    def tensor_and(self, xs: Sequence[Any]) -> Any:
        if len(xs) == 1:
            return xs[0]
        torch = _torch()
        return -self.temperature * torch.logsumexp(torch.stack(torch.broadcast_tensors(*xs)) / -self.temperature, 0)

    def tensor_or(self, xs: Sequence[Any]) -> Any:
        if len(xs) == 1:
            return xs[0]
        torch = _torch()
        return self.temperature * torch.logsumexp(torch.stack(torch.broadcast_tensors(*xs)) / self.temperature, 0)

    def fold_space(self, disjunction: bool) -> tuple[Callable, Callable, float, Callable]:
        torch, tau = _torch(), self.temperature
        if disjunction:
            return (lambda x: x / tau), torch.logaddexp, -BIG, (lambda y: tau * y)
        return (lambda x: -x / tau), torch.logaddexp, -BIG, (lambda y: -tau * y)

    def space_reduce(self, z: Any, dims: int | tuple[int, ...], disjunction: bool, keepdim: bool = False) -> Any:
        return _torch().logsumexp(z, dims, keepdim=keepdim)

    def space_cumulate(self, z: Any, disjunction: bool, reverse: bool = False) -> Any:
        if reverse:
            return z.flip(-1).logcumsumexp(-1).flip(-1)
        return z.logcumsumexp(-1)

    def until_maps(self) -> "UntilMaps":
        return _MobiusMaps(self.temperature)


@dataclass(frozen=True, slots=True)
class Exact(Boolean):
    """Marker for the enumerating ``exact`` logic; each world is evaluated with boolean operations."""

    name: str = "exact"
    enumerates: bool = True

    # Top-k proofs approximate exact (equal with k at least the number of proofs, on positive programs).
    scallop_provenance: ClassVar[str | None] = "topkproofs"


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
    raise StlError([unknown_logic(f"unknown logic {name!r}", hints=hints)])


# ---------------------------------------------------------------------- tensors: suffix products, until maps


def _suffix_prod(z: Any) -> Any:
    """``∏_{s ≥ t} z_s`` along the last dim, with a cheap exact backward when gradients are needed."""
    if z.requires_grad and _torch().is_grad_enabled():
        return _suffix_prod_fn().apply(z)
    return z.flip(-1).cumprod(-1).flip(-1)


_SUFFIX_PROD = None


def _suffix_prod_fn() -> Any:
    """The autograd function behind :func:`_suffix_prod` (defined on first use: it subclasses a torch class).

    ``∂L/∂z_s = Σ_{t ≤ s} g_t p_t / z_s`` is a *forward* cumulative sum divided by ``z`` (torch's
    own ``cumprod`` backward uses the same formula), so no time flips are needed in the backward
    pass. Where some ``z`` is exactly 0 the division is undefined: the backward then
    differentiates the plain ``flip∘cumprod∘flip`` composition instead (exact, rare).
    """
    global _SUFFIX_PROD
    if _SUFFIX_PROD is None:
        torch = _torch()

        class SuffixProd(torch.autograd.Function):
            @staticmethod
            def forward(ctx, z):
                p = z.flip(-1).cumprod(-1).flip(-1)
                ctx.save_for_backward(z, p)
                return p

            @staticmethod
            def backward(ctx, g):
                z, p = ctx.saved_tensors
                if bool((z == 0).any()):
                    with torch.enable_grad():
                        zz = z.detach().requires_grad_(True)
                        return torch.autograd.grad(zz.flip(-1).cumprod(-1).flip(-1), zz, g)[0]
                return (g * p).cumsum(-1) / z

        _SUFFIX_PROD = SuffixProd
    return _SUFFIX_PROD


class UntilMaps:
    """The monoid of maps ``x ↦ ψ ∨ (φ ∧ x)`` of one logic, each map a tuple of tensors.

    ``f(φ, ψ)`` is that map, ``g(φ)`` the map ``x ↦ φ ∧ x``, ``identity(like)`` the
    identity map shaped like ``like``, ``identity_value()`` its components as
    Python floats (fill values), ``compose(m1, m2) = m1 ∘ m2`` (``m2`` first),
    ``apply(m, x)``. The maps are closed under composition in every logic, so a
    windowed ``until`` is a range fold of maps (``O(log T)`` doubling steps).
    """

    def f(self, phi: Any, psi: Any) -> tuple: raise NotImplementedError
    def g(self, phi: Any) -> tuple: raise NotImplementedError
    def identity_value(self) -> tuple[float, ...]: raise NotImplementedError
    def compose(self, m1: tuple, m2: tuple) -> tuple: raise NotImplementedError
    def apply(self, m: tuple, x: Any) -> Any: raise NotImplementedError

    def identity(self, like: Any) -> tuple:
        torch = _torch()
        return tuple(torch.full_like(like, v) for v in self.identity_value())


class _MinMaxMaps(UntilMaps):
    """``x ↦ max(a, min(b, x))`` as ``(a, b)``."""

    def f(self, phi, psi):
        return (psi, phi)

    def g(self, phi):
        return (_torch().zeros_like(phi), phi)

    def identity_value(self):
        return (0.0, 1.0)

    def compose(self, m1, m2):
        torch = _torch()
        (a1, b1), (a2, b2) = m1, m2
        return (torch.maximum(a1, torch.minimum(b1, a2)), torch.minimum(b1, b2))

    def apply(self, m, x):
        torch = _torch()
        a, b = m
        return torch.maximum(a, torch.minimum(b, x))


class _AffineMaps(UntilMaps):
    """``x ↦ a + b·x`` as ``(a, b)`` (``ψ ∨ (φ ∧ x) = ψ + (1 − ψ)·φ·x`` under ``product``)."""

    def f(self, phi, psi):
        return (psi, (1.0 - psi) * phi)

    def g(self, phi):
        return (_torch().zeros_like(phi), phi)

    def identity_value(self):
        return (0.0, 1.0)

    def compose(self, m1, m2):
        (a1, b1), (a2, b2) = m1, m2
        return (a1 + b1 * a2, b1 * b2)

    def apply(self, m, x):
        a, b = m
        return a + b * x


class _MobiusMaps(UntilMaps):
    """Under ``smooth``, Möbius maps of ``X = e^{x/τ}``: 2×2 matrices ``(p, q; r, s)`` kept in log space.

    ``X ↦ Ψ + ΦX/(Φ+X) = ((Ψ+Φ)X + ΨΦ) / (X + Φ)``; products are renormalised so
    the largest entry is 0 (projective maps: a common factor does not change them).
    """

    def __init__(self, tau: float):
        self.tau = float(tau)

    def f(self, phi, psi):
        torch = _torch()
        u, v = psi / self.tau, phi / self.tau
        return (torch.logaddexp(u, v), u + v, torch.zeros_like(v), v)

    def g(self, phi):
        torch = _torch()
        v = phi / self.tau
        return (v, torch.full_like(v, -BIG), torch.zeros_like(v), v)

    def identity_value(self):
        return (0.0, -BIG, -BIG, 0.0)

    def compose(self, m1, m2):
        torch = _torch()
        p1, q1, r1, s1 = m1
        p2, q2, r2, s2 = m2
        p = torch.logaddexp(p1 + p2, q1 + r2)
        q = torch.logaddexp(p1 + q2, q1 + s2)
        r = torch.logaddexp(r1 + p2, s1 + r2)
        s = torch.logaddexp(r1 + q2, s1 + s2)
        m = torch.maximum(torch.maximum(p, q), torch.maximum(r, s)).detach()
        return (p - m, q - m, r - m, s - m)

    def apply(self, m, x):
        torch = _torch()
        p, q, r, s = m
        lx = x / self.tau
        return self.tau * (torch.logaddexp(p + lx, q) - torch.logaddexp(r + lx, s))
