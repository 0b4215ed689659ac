"""The reference interpreter: slow, obviously correct, the oracle for every other backend.

It is a direct transcription of the defining equations of ``docs/semantics.md``
(and ``stlspec/ir.py``): a recursive function ``value(formula, t, env)`` over
positions ``t`` and variable assignments ``env``, with no vectorization, no
caching and no algebraic shortcuts. Quantifiers loop over injective
assignments; temporal operators recurse one position at a time.

Windows. For a window ``[lo, hi]`` (``Window.frames(T)``; ``None`` is
``[0, T−1]``) the positions it covers from ``t`` are
``W(t) = [t+lo, t+hi] ∩ [0, T)``. When ``W(t)`` is empty, ``eventually`` and
``until`` are 0 and ``always`` is 1. Otherwise the unfolding runs exactly over
``W(t)``: the strong/weak ``next`` that would step past the end of the trace or
of the window contributes no operand. For ``boolean``/``godel``/``product``
this is identical to the literal equations (0 is the identity of ∨ and
absorbing for ∧); for ``smooth`` it keeps phantom "false" operands out of the
log-sum-exp folds, so ``eventually φ`` is exactly the n-ary smooth ∨ of φ over
``W(t)``.

Logics: ``boolean``, ``godel``, ``product``, ``smooth`` (τ) fold scalars
(:mod:`stlspec.logics`); ``exact`` enumerates every assignment of the uncertain
facts the formula can read and sums the probabilities of the worlds in which it
holds (E601 beyond ``max_uncertain_facts``).

Witnesses follow the definition in ``stlspec/ir.py``, literally: for event ``k``
and frame ``q``, the formula is re-evaluated with the head of the event's
``then`` chain replaced by "the earlier events fit, in order, before ``q``, and
event ``k``'s body holds at ``q``" (``Pre_k(q) ∧ Body_k(q)``, see :meth:`pinned`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from stlspec import ir
from stlspec.diagnostics import Diagnostic, StlError
from stlspec.logics import Logic, get_logic
from stlspec.trace import Trace

__all__ = ["Result", "evaluate", "evaluate_formula", "evaluate_program", "ReferenceBackend",
           "ReferenceEvaluator", "BACKEND", "MAX_UNCERTAIN_FACTS", "uncertain_facts"]

#: Default limit of the ``exact`` logic: 2**16 worlds.
MAX_UNCERTAIN_FACTS = 16


@dataclass(frozen=True, slots=True)
class Result:
    """A spec's value at position 0 and one witness distribution over frames per event."""

    value: float
    witnesses: tuple[tuple[float, ...], ...] = ()


# ---------------------------------------------------------------------- interpreter

Env = Mapping[str, int]
Pin = tuple[int, int]  # (event index, pinned frame)


class _Interpreter:
    """``value(f, t, env)`` for one trace (as plain lists), one logic and an optional pin."""

    def __init__(self, trace: Trace, logic: Logic, names: list, unary: list, binary: list):
        self.trace = trace
        self.logic = logic
        self.T = trace.num_frames
        self.N = trace.num_tracks
        # Plain nested lists: the ``exact`` logic overwrites entries in place per world.
        self.names, self.unary, self.binary = names, unary, binary
        self.present = trace.present.tolist()
        self.pin: Pin | None = None

    def window(self, w: ir.Window | None) -> tuple[int, int]:
        return (0, self.T - 1) if w is None else w.frames(self.T)

    def covered(self, w: ir.Window | None, t: int) -> tuple[int, int]:
        """``(lo, hi)`` offsets and whether ``W(t)`` is non-empty, as ``(lo, hi)`` or ``(1, 0)``."""
        lo, hi = self.window(w)
        if lo > hi or t + lo > self.T - 1:
            return 1, 0
        return lo, hi

    # -- atoms

    def unary_fact(self, pred: str, n: int, t: int) -> float:
        col = self.trace.unary_index.get(pred)
        if col is None or not self.present[t][n]:  # unknown predicate / absent track: 0
            return 0.0
        return self.logic.atom(self.unary[t][n][col])

    def binary_fact(self, pred: str, n: int, m: int, t: int) -> float:
        col = self.trace.binary_index.get(pred)
        if col is None or not (self.present[t][n] and self.present[t][m]):
            return 0.0
        return self.logic.atom(self.binary[t][n][m][col])

    def category(self, cat: str, n: int) -> float:
        col = self.trace.category_index.get(cat)
        return 0.0 if col is None else self.logic.atom(self.names[n][col])

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
            case ir.Next(arg, weak, steps):
                # Strong next is false past the end, weak next is true.
                if t + steps < self.T:
                    return self.value(arg, t + steps, env)
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


def _chain_to(head: ir.Eventually, event: int) -> list[ir.Eventually] | None:
    """``[head, …, node of event]`` when ``event`` lies on ``head``'s ``then`` chain, else ``None``."""
    chain, node = [head], head
    while node.event != event:
        body = node.arg
        if not (isinstance(body, ir.And) and len(body.args) == 2 and isinstance(body.args[1], ir.Next)
                and not body.args[1].weak and body.args[1].steps == 1 and isinstance(body.args[1].arg, ir.Eventually)
                and body.args[1].arg.event is not None):
            return None
        node = body.args[1].arg
        chain.append(node)
    return chain


# ---------------------------------------------------------------------- exact


def _touched(formula: ir.Formula) -> tuple[set[str], set[str], set[str]]:
    """Categories, unary and binary predicates the formula can read."""
    cats, ups, bps = set(), set(), set()
    for node in ir.walk(formula):
        match node:
            case ir.Unary(pred, _):
                ups.add(pred)
            case ir.Binary(pred, _, _):
                bps.add(pred)
            case ir.Exists(block, _) | ir.Forall(block, _):
                cats.update(c for _, c in block if c is not None)
    return cats, ups, bps


def uncertain_facts(formula: ir.Formula, trace: Trace) -> list[tuple]:
    """Index paths ``(array, *index)`` of the facts with 0 < p < 1 that ``formula`` can read.

    Facts at frames where a track is absent are already 0 (certain) in a
    :class:`Trace`, so they never count.
    """
    cats, ups, bps = _touched(formula)
    out: list[tuple] = []
    for c in sorted(cats):
        if c in trace.category_index:
            ci = trace.category_index[c]
            out += [("names", n, ci) for n in range(trace.num_tracks) if 0 < trace.names[n, ci] < 1]
    for p in sorted(ups):
        if p in trace.unary_index:
            pi = trace.unary_index[p]
            out += [("unary", t, n, pi) for t in range(trace.num_frames) for n in range(trace.num_tracks)
                    if 0 < trace.unary[t, n, pi] < 1]
    for r in sorted(bps):
        if r in trace.binary_index:
            ri = trace.binary_index[r]
            out += [("binary", t, n, m, ri) for t in range(trace.num_frames) for n in range(trace.num_tracks)
                    for m in range(trace.num_tracks) if 0 < trace.binary[t, n, m, ri] < 1]
    return out


def _set(lists: dict[str, list], path: tuple, value: float) -> None:
    target = lists[path[0]]
    for i in path[1:-1]:
        target = target[i]
    target[path[-1]] = value


def _evaluate_all(formula: ir.Formula, trace: Trace, logic: Logic, pins: list[Pin | None],
                  max_uncertain_facts: int) -> list[float]:
    """The formula's value at position 0 under each pin (``None`` = unpinned)."""
    lists = {"names": trace.names.tolist(), "unary": trace.unary.tolist(), "binary": trace.binary.tolist()}
    interp = _Interpreter(trace, logic, lists["names"], lists["unary"], lists["binary"])

    def run() -> list[float]:
        out = []
        for pin in pins:
            interp.pin = pin
            out.append(interp.value(formula, 0, {}))
        return out

    if not logic.enumerates:
        return run()

    facts = uncertain_facts(formula, trace)
    if len(facts) > max_uncertain_facts:
        raise StlError([Diagnostic(
            "E601",
            f"the exact logic would enumerate 2^{len(facts)} worlds: the formula reads {len(facts)} uncertain "
            f"facts (probability strictly between 0 and 1), more than the limit of {max_uncertain_facts}",
            hints=("use logic='product' (exact for facts read once along independent positions) or 'godel'",
                   "or raise the limit with max_uncertain_facts=... (the cost doubles with each fact)"))])
    probs = [float(getattr(trace, path[0])[path[1:]]) for path in facts]
    totals = [0.0] * len(pins)
    # Every world sets every uncertain fact, so the lists can be overwritten in place.
    for world in itertools.product((0.0, 1.0), repeat=len(facts)):
        weight = 1.0
        for path, p, bit in zip(facts, probs, world):
            _set(lists, path, bit)
            weight *= p if bit else 1.0 - p
        if weight == 0.0:
            continue
        for i, v in enumerate(run()):
            totals[i] += weight * v
    return totals


# ---------------------------------------------------------------------- public API


def _check_closed(formula: ir.Formula) -> None:
    free = ir.free_vars(formula)
    if free:
        raise ValueError(f"the formula has free variables {sorted(free)}; only closed formulas can be evaluated")


def evaluate_formula(formula: ir.Formula, trace: Trace, logic: str | Logic = "godel", temperature: float = 0.1,
                     *, max_uncertain_facts: int = MAX_UNCERTAIN_FACTS) -> float:
    """The value of a closed formula at position 0."""
    _check_closed(formula)
    return _evaluate_all(formula, trace, get_logic(logic, temperature), [None], max_uncertain_facts)[0]


def evaluate(spec: ir.Spec, trace: Trace, logic: str | Logic = "godel", temperature: float = 0.1, *,
             witnesses: bool = True, max_uncertain_facts: int = MAX_UNCERTAIN_FACTS) -> Result:
    """Evaluate ``spec`` on ``trace``: its value at position 0 and, per event, a witness distribution.

    ``witnesses=False`` skips the (T times more expensive) pinning runs and
    returns an empty ``witnesses`` tuple. Raises E603 for an unknown logic and
    E601 when ``exact`` would enumerate more than ``2**max_uncertain_facts`` worlds.
    """
    _check_closed(spec.formula)
    L = get_logic(logic, temperature)
    T = trace.num_frames
    events = [e.index for e in spec.events] if witnesses else []
    pins: list[Pin | None] = [None] + [(k, t) for k in events for t in range(T)]
    values = _evaluate_all(spec.formula, trace, L, pins, max_uncertain_facts)
    dists = []
    for i in range(len(events)):
        s = [max(v, 0.0) for v in values[1 + i * T: 1 + (i + 1) * T]]
        total = math.fsum(s)
        dists.append(tuple(x / total for x in s) if total > 0 else tuple(0.0 for _ in s))
    return Result(values[0], tuple(dists))


def evaluate_program(program: ir.CoreProgram, trace: Trace, logic: str | Logic = "godel",
                     temperature: float = 0.1, **options: Any) -> dict[str, Result]:
    """:func:`evaluate` every spec of ``program``; keys are spec names, in program order."""
    L = get_logic(logic, temperature)
    return {s.name: evaluate(s, trace, L, **options) for s in program.specs}


@dataclass(frozen=True)
class ReferenceEvaluator:
    """A compiled program: call it with a trace to evaluate every spec."""

    program: ir.CoreProgram
    logic: str | Logic = "godel"
    temperature: float = 0.1
    options: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, trace: Trace, logic: str | Logic | None = None,
                 temperature: float | None = None) -> dict[str, Result]:
        return evaluate_program(self.program, trace, self.logic if logic is None else logic,
                                self.temperature if temperature is None else temperature, **self.options)


class ReferenceBackend:
    """Registry entry ``"reference"``: ``compile`` returns a :class:`ReferenceEvaluator`."""

    name = "reference"

    def compile(self, program: ir.CoreProgram, *, logic: str | Logic = "godel", temperature: float = 0.1,
                witnesses: bool = True, max_uncertain_facts: int = MAX_UNCERTAIN_FACTS) -> ReferenceEvaluator:
        get_logic(logic, temperature)  # fail early on an unknown logic
        return ReferenceEvaluator(program, logic, temperature,
                                  {"witnesses": witnesses, "max_uncertain_facts": max_uncertain_facts})


BACKEND = ReferenceBackend()
