"""The reference interpreter: slow, obviously correct, the oracle for every other backend.

It transcribes the defining equations of ``docs/semantics.md`` (and
``stlspec/ir.py``) one sub-formula at a time: the value of a sub-formula under
a variable assignment ``env`` is a *vector* over the frames ``t = 0 … T−1``,
computed from its operands' vectors by one exhaustive ``match``
(:meth:`_Interpreter.combine`). The tree is walked with an explicit stack, so
neither long traces nor deep nesting recurse in Python; each node costs
``O(T)`` (``O(T·|W|)`` for a bounded window of ``|W|`` frames), times the
number of assignments of its free variables. No vectorisation library, no
algebraic shortcuts beyond the equations themselves: an unbounded
``eventually``/``always``/``until`` is the backward recursion the equations
state (``φ(t) ∨ next …``), a bounded one folds exactly the frames of its window.

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

Witnesses follow the factored definition in ``stlspec/ir.py``: for event ``k``
the head of its ``then`` chain (always read at frame 0: events sit at positive
top-level positions) is replaced by the vector ``c_k(q) = Pre_k(q) ∧ Body_k(q)``
over pinned frames ``q``, computed once per assignment (:class:`_Pinned`), and
its ancestors (``And``/``Or``/``Exists``/``Forall`` only) are combined per ``q``:
one extra pass per event instead of one per event and frame. The vectors of
event nodes and each chain's prefixes ``Pre_j ∧ A_j`` are memoised per
assignment, so the passes of a K-event chain together cost ``O(K)`` nodes, not
``O(K²)``.
``tests/unfolding_oracle.py`` keeps the literal position-by-position unfolding
(with per-frame pinning) that this interpreter is differentially tested against.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, assert_never


from stlspec import ir
from stlspec.diagnostics import StlError, input_too_large
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
Vector = list[float]  # one value per frame (or, for the pinned head's ancestors, per pinned frame q)


class _Interpreter:
    """Truth vectors ``[value at t for t in range(T)]`` of sub-formulas, for one trace and one logic.

    :meth:`vector` walks the formula with an explicit stack (post-order): each
    task is ``(node, env)``; a node's operands are evaluated first and its value
    is then combined from theirs, frame by frame, by :meth:`combine` -- one
    exhaustive ``match`` that transcribes the defining equations.
    """

    def __init__(self, trace: Trace, logic: Logic, names: list, unary: list, binary: list):
        self.trace = trace
        self.logic = logic
        self.T = trace.num_frames
        self.N = trace.num_tracks
        # Plain nested lists: the ``exact`` logic overwrites entries in place per world.
        self.names, self.unary, self.binary = names, unary, binary
        self.present = trace.present.tolist()
        # Memoised per assignment (see :meth:`memo_key`): the vectors of event nodes, and each chain head's
        # prefix vectors ``Pre_j ∧ A_j``. A witness pass reads the rest of its chain, which the value pass
        # (or an earlier event's pass) already computed: without the memo a K-event chain costs O(K²) nodes.
        self.memo: dict[tuple, Any] = {}

    @staticmethod
    def memo_key(f: ir.Formula, env: Env) -> tuple | None:
        """The memo key of an event node under ``env``; ``None`` for every other node (not memoised)."""
        if isinstance(f, ir.Eventually) and f.event is not None:
            return (id(f), tuple(sorted(env.items())))
        return None

    # -- windows

    def window(self, w: ir.Window | None) -> tuple[int, int]:
        """Frame offsets ``(lo, hi)`` with ``hi`` capped at ``T − 1`` (may be empty: ``lo > hi``)."""
        if w is None:
            return 0, self.T - 1
        lo, hi = w.frames(self.T)
        return lo, min(hi, self.T - 1)

    def covered(self, lo: int, hi: int, t: int) -> tuple[int, int] | None:
        """``W(t) = [t+lo, t+hi] ∩ [0, T)`` as absolute ``(first, last)``, or ``None`` when empty."""
        first, last = t + lo, min(t + hi, self.T - 1)
        return (first, last) if lo <= hi and first <= last else None

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

    def assignments(self, block: tuple[tuple[str, str | None], ...], env: Env) -> list[tuple[dict, list[float]]]:
        """Injective assignments of ``block``: ``(extended env, category values)`` in a fixed order."""
        out = []
        for ns in itertools.permutations(range(self.N), len(block)):
            inner = {**env, **{v: n for (v, _), n in zip(block, ns)}}
            out.append((inner, [self.category(c, n) for (_, c), n in zip(block, ns) if c is not None]))
        return out

    # -- the evaluator

    def operands(self, f: ir.Formula, env: Env) -> list[tuple[ir.Formula, Env]]:
        """The ``(sub-formula, env)`` tasks whose vectors :meth:`combine` needs for ``f``."""
        match f:
            case ir.Exists(block, body) | ir.Forall(block, body):
                return [(body, inner) for inner, _ in self.assignments(block, env)]
            case _:
                return [(c, env) for c in ir.children(f)]

    def vector(self, root: ir.Formula, env: Env, head: "_Pinned | None" = None) -> Vector:
        """``root``'s truth vector under ``env``; with ``head``, its values per pinned frame (see :class:`_Pinned`)."""
        results: list[tuple[Vector, bool]] = []  # (vector, indexed by the pinned frame q)
        stack: list[tuple[ir.Formula, Env, int]] = [(root, env, -1)]
        while stack:
            f, e, arity = stack.pop()
            if arity < 0:
                if head is not None and f is head.node:
                    results.append((head.scores(self, e), True))
                    continue
                key = self.memo_key(f, e)
                if key is not None and key in self.memo:
                    results.append((self.memo[key], False))
                    continue
                tasks = self.operands(f, e)
                stack.append((f, e, len(tasks)))
                stack.extend((c, ce, -1) for c, ce in reversed(tasks))
                continue
            args = results[len(results) - arity:]
            del results[len(results) - arity:]
            pinned = any(p for _, p in args)
            if pinned:
                # Only And/Or/Exists/Forall lie above an event's head (ir.py), and they combine frame by
                # frame: the other operands enter with their value at frame 0, where the head is read.
                assert isinstance(f, (ir.And, ir.Or, ir.Exists, ir.Forall)), type(f).__name__
                vecs = [v if p else [v[0]] * self.T for v, p in args]
            else:
                vecs = [v for v, _ in args]
            vec = self.combine(f, e, vecs)
            key = None if pinned else self.memo_key(f, e)
            if key is not None:
                self.memo[key] = vec
            results.append((vec, pinned))
        return results[0][0]

    def combine(self, f: ir.Formula, env: Env, args: list[Vector]) -> Vector:
        """``f``'s vector from its operands' vectors (``args``, in :meth:`operands` order)."""
        L, T = self.logic, self.T
        match f:
            case ir.Const(v):
                return [1.0 if v else 0.0] * T
            case ir.Unary(pred, var):
                return [self.unary_fact(pred, env[var], t) for t in range(T)]
            case ir.Binary(pred, a, b):
                return [self.binary_fact(pred, env[a], env[b], t) for t in range(T)]
            case ir.Eq(a, b):
                return [1.0 if env[a] == env[b] else 0.0] * T
            case ir.Not():
                return [L.not_(x) for x in args[0]]
            case ir.And():
                return [L.and_([a[t] for a in args]) for t in range(T)]
            case ir.Or():
                return [L.or_([a[t] for a in args]) for t in range(T)]
            case ir.Next(_, weak):
                # φ at t + k (next[k] is one node); past the end strong next is false, weak next true.
                a, k = args[0], f.steps
                return [a[t + k] if t + k < T else (1.0 if weak else 0.0) for t in range(T)]
            case ir.Eventually(_, w):
                return self.fold_window(args[0], w, L.or_, 0.0)
            case ir.Always(_, w):
                return self.fold_window(args[0], w, L.and_, 1.0)
            case ir.Until(_, _, w):
                return self.until(args[0], args[1], w)
            case ir.Exists(block, _):
                # ∨ over injective assignments of (category conjuncts ∧ body).
                cats = [c for _, c in self.assignments(block, env)]
                return [L.or_([L.and_(c + [b[t]]) for c, b in zip(cats, args)]) for t in range(T)]
            case ir.Forall(block, _):
                # ∧ over injective assignments of (¬ category conjuncts ∨ body).
                cats = [c for _, c in self.assignments(block, env)]
                return [L.and_([L.or_([L.not_(L.and_(c)), b[t]]) if c else b[t] for c, b in zip(cats, args)])
                        for t in range(T)]
            case _:
                assert_never(f)

    # The temporal folds. With W(t) = [t+lo, t+hi] ∩ [0, T): empty gives 0 (eventually, until) or 1
    # (always); otherwise the unfolding runs exactly over W(t) (no phantom operand past the end).

    def fold_window(self, a: Vector, w: ir.Window | None, op, empty: float) -> Vector:
        """``op`` (the logic's ∨ or ∧) of ``a`` over ``W(t)``, for every ``t``."""
        T = self.T
        lo, hi = self.window(w)
        if lo <= hi and hi >= T - 1:
            # Unbounded: the suffix fold s(t) = a(t) op s(t+1), read at t + lo. O(T).
            suffix = list(a)
            for t in range(T - 2, -1, -1):
                suffix[t] = op([a[t], suffix[t + 1]])
            return [suffix[t + lo] if t + lo < T else empty for t in range(T)]
        out = []
        for t in range(T):
            cov = self.covered(lo, hi, t)
            out.append(empty if cov is None else op(a[cov[0]:cov[1] + 1]))
        return out

    def until(self, phi: Vector, psi: Vector, w: ir.Window | None) -> Vector:
        """``u(t) = ψ(t) ∨ (φ(t) ∧ u(t+1))`` over ``W(t)``, preceded by ``φ(t) ∧ …`` for the ``lo`` steps before it."""
        L, T = self.logic, self.T
        lo, hi = self.window(w)
        suffix: Vector | None = None
        if lo <= hi and hi >= T - 1:
            # Unbounded: one backward recursion serves every t (the window ends at the last frame).
            suffix = list(psi)
            for s in range(T - 2, -1, -1):
                suffix[s] = L.or_([psi[s], L.and_([phi[s], suffix[s + 1]])])
        out = []
        for t in range(T):
            cov = self.covered(lo, hi, t)
            if cov is None:
                out.append(0.0)
                continue
            first, last = cov
            if suffix is not None:
                v = suffix[first]
            else:
                v = psi[last]
                for s in range(last - 1, first - 1, -1):
                    v = L.or_([psi[s], L.and_([phi[s], v])])
            for s in range(first - 1, t - 1, -1):  # the lo steps before the window: φ must hold
                v = L.and_([phi[s], v])
            out.append(v)
        return out


@dataclass(frozen=True, eq=False)
class _Pinned:
    """Event ``k``'s witness scores: the chain head's value replaced by ``c_k(q)`` (see ``stlspec/ir.py``).

    The head lies at a positive top-level position, so it is read at frame 0 only:
    ``c_k(q) = Pre_k(q) ∧ Body_k(q)`` with ``Pre_0(q) = [q ∈ W_0(0)]`` and
    ``Pre_{j+1}(r) = ∨_{s : r ∈ W_{j+1}(s+1)} (Pre_j(s) ∧ A_j(s))``. Computed once
    per assignment of the head's free variables (memoised), ``O(T·|W|)`` per chain link.
    """

    node: ir.Eventually
    chain: tuple[ir.Eventually, ...]

    def scores(self, interp: _Interpreter, env: Env) -> Vector:
        L, T, chain = interp.logic, interp.T, self.chain
        lo, hi = interp.window(chain[0].window)
        cov = interp.covered(lo, hi, 0)
        in_head = [cov is not None and cov[0] <= s <= cov[1] for s in range(T)]
        body = interp.vector(chain[-1].arg, env)
        if len(chain) == 1:
            return [body[q] if in_head[q] else 0.0 for q in range(T)]
        # xs[j](s) = Pre_j(s) ∧ A_j(s), shared by every event of this chain (memoised per assignment);
        # Pre_0 is the head's window, an indicator rather than a conjunct.
        xs = interp.memo.setdefault(("prefixes", id(self.node), tuple(sorted(env.items()))), [])
        while len(xs) < len(chain) - 1:
            j = len(xs)
            cond = interp.vector(_condition(chain[j]), env)
            if j == 0:
                xs.append([cond[s] if in_head[s] else 0.0 for s in range(T)])
            else:
                pre = self.spread(interp, xs[j - 1], chain[j].window)
                xs.append([L.and_([pre[s], cond[s]]) for s in range(T)])
        pre = self.spread(interp, xs[len(chain) - 2], chain[-1].window)
        return [L.and_([pre[q], body[q]]) for q in range(T)]

    @staticmethod
    def spread(interp: _Interpreter, x: Vector, w: ir.Window | None) -> Vector:
        """``pre(r) = ∨ of x(s) over the s with r ∈ W(s+1)``."""
        L, T = interp.logic, interp.T
        lo, hi = interp.window(w)
        if lo == 0 and hi >= T - 1:
            # Unbounded window from s+1: every s < r, a running prefix ∨. O(T).
            pre, acc = [0.0] * T, None
            for r in range(1, T):
                acc = x[r - 1] if acc is None else L.or_([acc, x[r - 1]])
                pre[r] = acc
            return pre
        sources: list[list[float]] = [[] for _ in range(T)]
        for s in range(T - 1):
            cov = interp.covered(lo, hi, s + 1)
            if cov is not None:
                for r in range(cov[0], cov[1] + 1):
                    sources[r].append(x[s])
        return [L.or_(v) for v in sources]


def _condition(node: ir.Eventually) -> ir.Formula:
    return node.arg.args[0]  # type: ignore[attr-defined]  # chain shape: And((A_j, Next(...)))


def _chain_to(head: ir.Eventually, event: int) -> tuple[ir.Eventually, ...] | None:
    """``(head, …, node of event)`` when ``event`` lies on ``head``'s ``then`` chain, else ``None``."""
    chain, node = [head], head
    while node.event != event:
        body = node.arg
        if not (isinstance(body, ir.And) and len(body.args) == 2 and isinstance(body.args[1], ir.Next)
                and not body.args[1].weak and body.args[1].steps == 1
                and isinstance(body.args[1].arg, ir.Eventually)
                and body.args[1].arg.event is not None):
            return None
        node = body.args[1].arg
        chain.append(node)
    return tuple(chain)


def _pinned_head(formula: ir.Formula, event: int) -> _Pinned | None:
    """The chain head whose ``then`` chain (or own node) is event ``event``, searched from the root."""
    for node in ir.walk(formula):
        if isinstance(node, ir.Eventually) and node.event is not None:
            chain = _chain_to(node, event)
            if chain is not None:
                return _Pinned(node, chain)
    return None


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


def _evaluate_all(formula: ir.Formula, trace: Trace, logic: Logic, events: list[int],
                  max_uncertain_facts: int) -> tuple[float, list[Vector]]:
    """The formula's value at position 0 and, per event, its unnormalised witness scores ``s_k(q)``."""
    lists = {"names": trace.names.tolist(), "unary": trace.unary.tolist(), "binary": trace.binary.tolist()}
    interp = _Interpreter(trace, logic, lists["names"], lists["unary"], lists["binary"])
    heads = [_pinned_head(formula, k) for k in events]

    def run() -> tuple[float, list[Vector]]:
        interp.memo.clear()  # ``exact`` overwrites the facts between worlds
        value = interp.vector(formula, {})[0]
        scores = [[0.0] * trace.num_frames if h is None else interp.vector(formula, {}, h) for h in heads]
        return value, scores

    if not logic.enumerates:
        return run()

    facts = uncertain_facts(formula, trace)
    if len(facts) > max_uncertain_facts:
        raise StlError([input_too_large(
            f"the exact logic would enumerate 2^{len(facts)} worlds: the formula reads {len(facts)} uncertain "
            f"facts (probability strictly between 0 and 1), more than the limit of {max_uncertain_facts}",
            hints=("use logic='product' (exact for facts read once along independent positions) or 'godel'",
                   "or raise the limit with max_uncertain_facts=... (the cost doubles with each fact)"))])
    probs = [float(getattr(trace, path[0])[path[1:]]) for path in facts]
    total = 0.0
    totals = [[0.0] * trace.num_frames for _ in heads]
    # Every world sets every uncertain fact, so the lists can be overwritten in place.
    for world in itertools.product((0.0, 1.0), repeat=len(facts)):
        weight = 1.0
        for path, p, bit in zip(facts, probs, world):
            _set(lists, path, bit)
            weight *= p if bit else 1.0 - p
        if weight == 0.0:
            continue
        value, scores = run()
        total += weight * value
        for acc, sc in zip(totals, scores):
            for q, v in enumerate(sc):
                acc[q] += weight * v
    return total, totals


# ---------------------------------------------------------------------- public API


def _check_closed(formula: ir.Formula) -> None:
    free = ir.free_vars(formula)
    if free:
        raise ValueError(f"the formula has free variables {sorted(free)}; only closed formulas can be evaluated")


def evaluate_formula(formula: ir.Formula, trace: Trace, logic: str | Logic = "godel", temperature: float = 0.1,
                     *, max_uncertain_facts: int = MAX_UNCERTAIN_FACTS) -> float:
    """The value of a closed formula at position 0."""
    _check_closed(formula)
    return _evaluate_all(formula, trace, get_logic(logic, temperature), [], max_uncertain_facts)[0]


def evaluate(spec: ir.Spec, trace: Trace, logic: str | Logic = "godel", temperature: float = 0.1, *,
             witnesses: bool = True, max_uncertain_facts: int = MAX_UNCERTAIN_FACTS) -> Result:
    """Evaluate ``spec`` on ``trace``: its value at position 0 and, per event, a witness distribution.

    ``witnesses=False`` skips the witness passes (one more evaluation per event)
    and returns an empty ``witnesses`` tuple. Raises E603 for an unknown logic and
    E601 when ``exact`` would enumerate more than ``2**max_uncertain_facts`` worlds.
    """
    _check_closed(spec.formula)
    L = get_logic(logic, temperature)
    events = [e.index for e in spec.events] if witnesses else []
    value, scores = _evaluate_all(spec.formula, trace, L, events, max_uncertain_facts)
    dists = []
    for sc in scores:
        s = [max(v, 0.0) for v in sc]
        total = math.fsum(s)
        dists.append(tuple(x / total for x in s) if total > 0 else tuple(0.0 for _ in s))
    return Result(value, tuple(dists))


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
