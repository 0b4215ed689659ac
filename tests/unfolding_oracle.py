"""The literal unfolding of the defining equations: the reference interpreter's own oracle.

This is the first reference interpreter, kept (moved here, not copied) as an
independent oracle for the vectorised one in ``stlspec/backends/reference.py``:
``value(formula, t, env)`` recurses one position at a time, exactly as
``docs/semantics.md`` writes the equations, and witnesses are computed by
re-evaluating the formula once per pinned frame. It costs ``O(T^depth)`` and
recursion depth ``O(T)``, so the tests run it on small traces only
(``tests/test_reference_vectorised.py``).
"""

from __future__ import annotations

import itertools
import math
from typing import Mapping

from stlspec import ir
from stlspec.logics import Logic, get_logic
from stlspec.backends.reference import _Interpreter as _Atoms, _chain_to  # the chain shape of ir.py
from stlspec.trace import Trace

Env = Mapping[str, int]
Pin = tuple[int, int]  # (event index, pinned frame)


class _Interpreter(_Atoms):
    """``value(f, t, env)`` for one trace (as plain lists), one logic and an optional pin.

    Reads facts like the reference interpreter (its atom helpers are shared: they are one line each); the
    temporal and quantifier semantics below are this module's own, position by position.
    """

    def __init__(self, trace: Trace, logic: Logic, names: list, unary: list, binary: list):
        super().__init__(trace, logic, names, unary, binary)
        self.pin: Pin | None = None

    def window(self, w: ir.Window | None) -> tuple[int, int]:
        return (0, self.T - 1) if w is None else w.frames(self.T)

    def covered(self, w: ir.Window | None, t: int) -> tuple[int, int]:  # type: ignore[override]
        """``(lo, hi)`` offsets and whether ``W(t)`` is non-empty, as ``(lo, hi)`` or ``(1, 0)``."""
        lo, hi = self.window(w)
        if lo > hi or t + lo > self.T - 1:
            return 1, 0
        return lo, hi

    # -- formulas

    def value(self, f: ir.Formula, t: int, env: Env) -> float:
        L = self.logic
        match f:
            case ir.Const(v):
                return 1.0 if v else 0.0
            case ir.Unary(pred, var):
                return self.unary_fact(pred, env[var], t)
            case ir.Binary(pred, a, b):
                return self.binary_fact(pred, env[a], env[b], t)
            case ir.Eq(a, b):
                return 1.0 if env[a] == env[b] else 0.0
            case ir.Not(arg):
                return L.not_(self.value(arg, t, env))
            case ir.And(args):
                return L.and_([self.value(a, t, env) for a in args])
            case ir.Or(args):
                return L.or_([self.value(a, t, env) for a in args])
            case ir.Next(arg, weak):
                # Strong next is false past the end, weak next is true (next[k]: k frames on).
                k = f.steps
                if t + k < self.T:
                    return self.value(arg, t + k, env)
                return 1.0 if weak else 0.0
            case ir.Eventually(arg, w, event):
                if self.pin is not None and event is not None:
                    chain = _chain_to(f, self.pin[0])
                    if chain is not None:
                        return self.pinned(chain, t, env)
                lo, hi = self.covered(w, t)
                return 0.0 if lo > hi else self.eventually(arg, lo, hi, t, env)
            case ir.Always(arg, w):
                lo, hi = self.covered(w, t)
                return 1.0 if lo > hi else self.always(arg, lo, hi, t, env)
            case ir.Until(left, right, w):
                lo, hi = self.covered(w, t)
                return 0.0 if lo > hi else self.until(left, right, lo, hi, t, env)
            case ir.Exists(block, body):
                # ∨ over injective assignments of (category conjuncts ∧ body).
                values = []
                for ns in itertools.permutations(range(self.N), len(block)):
                    inner = {**env, **{v: n for (v, _), n in zip(block, ns)}}
                    cats = [self.category(c, n) for (_, c), n in zip(block, ns) if c is not None]
                    values.append(L.and_(cats + [self.value(body, t, inner)]))
                return L.or_(values)
            case ir.Forall(block, body):
                # ∧ over injective assignments of (¬ category conjuncts ∨ body).
                values = []
                for ns in itertools.permutations(range(self.N), len(block)):
                    inner = {**env, **{v: n for (v, _), n in zip(block, ns)}}
                    cats = [self.category(c, n) for (_, c), n in zip(block, ns) if c is not None]
                    b = self.value(body, t, inner)
                    values.append(L.or_([L.not_(L.and_(cats)), b]) if cats else b)
                return L.and_(values)
        raise TypeError(f"not a core formula: {f!r}")

    # The three unfoldings below assume W(t) is non-empty (checked by ``covered``):
    # ``lo > 0`` steps forward with next, then position by position until ``hi``
    # or the last frame, where the next step would leave the window or trace.

    def eventually(self, arg: ir.Formula, lo: int, hi: int, t: int, env: Env) -> float:
        if lo > 0:
            return self.eventually(arg, lo - 1, hi - 1, t + 1, env)
        here = self.value(arg, t, env)
        if hi == 0 or t + 1 == self.T:
            return here
        return self.logic.or_([here, self.eventually(arg, 0, hi - 1, t + 1, env)])

    def always(self, arg: ir.Formula, lo: int, hi: int, t: int, env: Env) -> float:
        if lo > 0:
            return self.always(arg, lo - 1, hi - 1, t + 1, env)
        here = self.value(arg, t, env)
        if hi == 0 or t + 1 == self.T:
            return here
        return self.logic.and_([here, self.always(arg, 0, hi - 1, t + 1, env)])

    def until(self, left: ir.Formula, right: ir.Formula, lo: int, hi: int, t: int, env: Env) -> float:
        L = self.logic
        if lo > 0:
            # Before the window: φ must hold and the until continues at t+1.
            return L.and_([self.value(left, t, env), self.until(left, right, lo - 1, hi - 1, t + 1, env)])
        here = self.value(right, t, env)
        if hi == 0 or t + 1 == self.T:
            return here
        return L.or_([here, L.and_([self.value(left, t, env), self.until(left, right, 0, hi - 1, t + 1, env)])])

    def pinned(self, chain: list[ir.Eventually], u: int, env: Env) -> float:
        """The chain ``chain[0] … chain[-1]`` (evaluated at ``u``) with its last event pinned at ``q``.

        ``Pre ∧ Body_k(q)``: ``Pre_0(q)`` is "q is in the head's window from u" (an
        indicator, not a conjunct); ``Pre_{j+1}(q) = ∨_{s : q ∈ W_{j+1}(s+1)} (Pre_j(s) ∧ A_j(s))``:
        the earlier events fit, in order, before ``q``. ``Body_k`` is the pinned event's own body
        (its condition and, through ``next``, the events after it).
        """
        assert self.pin is not None
        L, q, T = self.logic, self.pin[1], self.T
        lo, hi = self.covered(chain[0].window, u)
        in_head = [lo <= s - u <= hi for s in range(T)]
        if len(chain) == 1:
            return self.value(chain[0].arg, q, env) if in_head[q] else 0.0

        def cond(j: int) -> ir.Formula:
            return chain[j].arg.args[0]  # type: ignore[attr-defined]  # chain shape: And((A_j, Next(...)))

        # x(s) = Pre_j(s) ∧ A_j(s); Pre_0 is the head's window, an indicator rather than a conjunct.
        x = [self.value(cond(0), s, env) if in_head[s] else 0.0 for s in range(T)]
        for j in range(1, len(chain)):
            windows = [self.covered(chain[j].window, s + 1) if s + 1 < T else (1, 0) for s in range(T)]
            pre = [L.or_([x[s] for s in range(T) if windows[s][0] <= r - (s + 1) <= windows[s][1]])
                   for r in range(T)]
            if j == len(chain) - 1:
                return L.and_([pre[q], self.value(chain[j].arg, q, env)])
            x = [L.and_([pre[s], self.value(cond(j), s, env)]) for s in range(T)]
        raise AssertionError("unreachable")  # pragma: no cover


def evaluate_literal(spec: ir.Spec, trace: Trace, logic: str = "godel", temperature: float = 0.1
                     ) -> tuple[float, tuple[tuple[float, ...], ...]]:
    """``(value, witnesses)`` of ``spec`` by literal unfolding (no ``exact``: pass a scalar logic)."""
    L = get_logic(logic, temperature)
    assert not L.enumerates
    interp = _Interpreter(trace, L, trace.names.tolist(), trace.unary.tolist(), trace.binary.tolist())
    value = interp.value(spec.formula, 0, {})
    dists = []
    for ev in spec.events:
        scores = []
        for q in range(trace.num_frames):
            interp.pin = (ev.index, q)
            scores.append(max(interp.value(spec.formula, 0, {}), 0.0))
        interp.pin = None
        total = math.fsum(scores)
        dists.append(tuple(x / total for x in scores) if total > 0 else tuple(0.0 for _ in scores))
    return value, tuple(dists)
