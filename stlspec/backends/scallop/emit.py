"""Core IR → Scallop program text: one relation per sub-formula, stratified.

The program is *compiled*, not interpreted: every sub-formula ``φ`` with free
entity variables ``x1 … xk`` becomes a relation ``rN(t, x1, …, xk)`` whose tag,
under Scallop's ``minmaxprob`` provenance, is ``φ``'s ``godel`` value at frame
``t`` for that assignment (a missing tuple means 0). Negation only ever
applies to a relation of a strictly smaller sub-formula, so the program is
stratified by construction; recursion (over frames) only occurs inside one
temporal operator's own relation, never through ``not``.

Input schema (see ``docs/scallop.md``)::

    frame(t: i32)                 every frame 0 … T-1
    num_frames(n: i32)            T (one fact)
    track(n: i32)                 every track 0 … N-1 (the quantifiers' domain)
    name(n: i32, c: String)       track n is a c                (probabilistic)
    unary(p: String, t: i32, n: i32)          p(n) at t          (probabilistic)
    binary(r: String, t: i32, n: i32, m: i32) r(n, m) at t       (probabilistic)

Predicate and category names appear as string literals encoded by
:func:`names.literal`; facts about absent tracks must be left out (or be 0).

Output: ``sat(spec: String)`` (the value of each spec at frame 0, keyed by the
encoded spec name) and per event ``k`` of spec number ``i`` a relation
``witness_s{i}_e{k}(t: i32)`` whose tag at ``t`` is the *unnormalised* pinned
score ``s_k(t)`` of ``stlspec/ir.py`` (the runner normalises it).

How each operator becomes rules (``G(...)`` grounds a column: ``frame(p)`` for
the pinned-frame column ``p``, ``track(v)`` for an entity variable)::

    true            r(t) = frame(t)                          false: no rule
    p(x)            r(t, x) = unary("p", t, x)
    x == y          r(t, x, y) = frame(t) and track(x) and track(y) and x == y
    not a           r(t, V) = frame(t) and G(V) and not a(t, V)
    a and b         r(t, V) = a(t, Va) and b(t, Vb)            (min)
    a or b          r(t, V) = a(t, Va) and G(V - Va); ... one rule per operand (max)
    next a          r(t, V) = succ(t, s) and a(s, V)          weak: + last(t) and G(V)
    next[k] a       r(t, V) = shiftk(t, s) and a(s, V)        weak: + pastk(t) and G(V)
    eventually a    r(t, V) = a(t, V);  r(t, V) = succ(t, s) and r(s, V)
    eventually[w] a r(t, V) = win(t, s) and a(s, V)
    always a        r(t, V) = last(t) and a(t, V);  r(t, V) = a(t, V) and succ(t, s) and r(s, V)
    always[w] a     not eventually[w] not a          (exact under godel)
    a until b       r(t, V) = b(t, Vb) and G(V - Vb);  r(t, V) = a(t, Va) and succ(t, s) and r(s, V)
    a until[w] b    q(t, s, Va): min of a over [t, s) (q(t, t) = 1, then step);
                    r(t, V) = win(t, s) and q(t, s, Va) and b(s, Vb) and G(...)
    exists x: c. a  r(t, V - x) = a(t, V) and name(x, "c") and x1 != x2 ...   (max over assignments)
    forall x: c. a  not exists x: c. not a             (exact under godel, De Morgan with 1 - p)

Witnesses (pinning): for event ``k`` the relations on the path from the spec
root to the event's ``Eventually`` node are emitted a second time with an
extra column ``p`` (the pinned frame, grounded by ``frame(p)``); the event node
itself becomes ``r(t, p, V) = win(t, p) and body(p, V)``. Sub-formulas off the
path are shared with the unpinned program.

Window bounds: frame windows are constants in ``win`` helper relations; a
fraction window ``[a, b]`` is turned into frame offsets from ``num_frames`` in a
helper relation using integer arithmetic in the *head* (``ceil(a·(T−1))`` as
``(p * (n - 1) + q - 1) / q`` for ``a = p/q``), because Scallop silently drops
``*``/``/`` constraints in rule bodies. Fractions must therefore be ratios with
a denominator of at most 10 000 (any bound written with up to 4 decimals; the
exact value is that of ``stlspec/rounding.py``); others are E602.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, Iterable, Sequence, assert_never


from stlspec import diagnostics, ir
from stlspec.diagnostics import StlError
from stlspec.rounding import fraction_value
from stlspec.backends.core_text import window_text
from stlspec.backends import unsupported
from stlspec.backends.scallop import names as nm

__all__ = ["ScallopProgram", "compile_program", "INPUT_RELATIONS", "OUTPUT_SAT", "format_probability",
           "MAX_SPEC_RULES"]

#: The input relations every program declares, with field names and types.
INPUT_RELATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "frame": (("t", "i32"),),
    "num_frames": (("n", "i32"),),
    "track": (("n", "i32"),),
    "candidate": (("n", "i32"), ("c", "String")),
    "name": (("n", "i32"), ("c", "String")),
    "unary": (("p", "String"), ("t", "i32"), ("n", "i32")),
    "binary": (("r", "String"), ("t", "i32"), ("n", "i32"), ("m", "i32")),
}

OUTPUT_SAT = "sat"

#: Largest denominator of a fraction-window bound (keeps ``p * (n - 1)`` inside i32).
MAX_FRACTION_DENOMINATOR = 10_000

#: Traces run by Scallop have fewer frames than this (frame numbers and ``t + offset`` stay inside i32).
MAX_FRAMES = 999_999_999
#: Frame-window offsets are capped here: from any frame of a trace shorter than :data:`MAX_FRAMES`, an offset
#: of at least this lies past the end, so a larger ``lo`` (an empty window) or ``hi`` (to the end) means the same.
MAX_OFFSET = 999_999_999

#: The most rules one spec may need (its sub-formulas' relations, and their pinned copies with witnesses).
#: Scallop 0.2.5's compiler takes time growing faster than the square of a program's size, whatever the
#: nesting (measured with ``scli``/scallopy on the loaded 2-core machine: 600 independent one-rule relations
#: in about 2.5 s, 1,200 in about 17 s, a chain of 1,200 not/next relations in 29 s, 1,500 rules of
#: not/and/or/always/eventually in 61 s; a formula at the language's nesting limit needs ~15,000: hours),
#: so a spec needing more is E601. ``tests/test_scallop_real.py`` runs a spec at the limit.
MAX_SPEC_RULES = 1_000

PIN = "p"  # the pinned-frame column; entity variables are all ``v_…`` so they cannot clash


@dataclass(frozen=True)
class ScallopProgram:
    """A compiled Scallop program and the facts needed to use it.

    ``text`` is the program; ``inputs``/``outputs`` give each input/output
    relation's fields as ``(name, type)`` pairs; ``sat_keys`` maps each spec
    name to its key in ``sat``; ``witnesses`` maps each spec name to its witness
    relations in event order (``(event index, relation)`` pairs); ``literals``
    maps every encoded string literal back to the original name;
    ``standalone`` tells whether a trace's facts are embedded.
    """

    text: str
    inputs: dict[str, tuple[tuple[str, str], ...]]
    outputs: dict[str, tuple[tuple[str, str], ...]]
    specs: tuple[str, ...]
    sat_keys: dict[str, str]
    witnesses: dict[str, tuple[tuple[int, str], ...]]
    literals: dict[str, str] = field(default_factory=dict)
    standalone: bool = False
    #: The embedded trace's facts (a contiguous part of ``text``; empty without a trace).
    fact_block: str = ""

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------- helpers


def format_probability(x: float) -> str:
    """A Scallop float literal: digits on both sides of the dot, never an exponent."""
    text = format(Decimal(repr(float(x))), "f")
    if "." not in text:
        text += ".0"
    return text


def _fraction(x: float) -> Fraction:
    """``x`` as the exact ratio of stlspec/rounding.py, or E602 when its denominator is too large for i32."""
    fr = fraction_value(x)
    # The head computes p * (n - 1) in i32: keep p <= q <= 10 000 (bounds with at most 4 decimals).
    if fr.denominator > MAX_FRACTION_DENOMINATOR:
        raise unsupported("scallop", f"the fraction-window bound {x!r}",
                          f"write fraction bounds with at most 4 decimals (denominator <= {MAX_FRACTION_DENOMINATOR})")
    return fr


def _round_expr(fr: Fraction, up: bool) -> str:
    """Scallop head expression for ``ceil`` (``up``) or ``floor`` of ``fr · (n − 1)``, ``n = num_frames``."""
    p, q = fr.numerator, fr.denominator
    if p == 0:
        return "0"
    scaled = "n - 1" if p == 1 else f"{p} * (n - 1)"
    if q == 1:
        return scaled
    # Integer division truncates (the operands are never negative), so ceil adds q - 1 first.
    return f"({scaled} + {q - 1}) / {q}" if up else f"({scaled}) / {q}"


def _describe(f: ir.Formula, rel_of) -> str:
    """One-line description of a node for the comment above its relation."""
    c = nm.comment
    match f:
        case ir.Const(v):
            return "true" if v else "false"
        case ir.Unary(p, v):
            return f"unary {c(repr(p))}({c(v)})"
        case ir.Binary(p, a, b):
            return f"binary {c(repr(p))}({c(a)}, {c(b)})"
        case ir.Eq(a, b):
            return f"{c(a)} == {c(b)}"
    kids = ", ".join(rel_of(k) for k in ir.children(f))
    match f:
        case ir.Next(_, weak, steps):
            return f"{'weak next' if weak else 'next'}{'' if steps == 1 else f'[{steps}]'} {kids}"
        case ir.Eventually(_, w, ev):
            return f"eventually{window_text(w)} {kids}" + ("" if ev is None else f"  (event {ev})")
        case ir.Always(_, w):
            return f"always{window_text(w)} {kids}"
        case ir.Until(_, _, w):
            return f"until{window_text(w)} {kids}"
        case ir.Exists(vs, _) | ir.Forall(vs, _):
            q = "exists" if isinstance(f, ir.Exists) else "forall"
            binders = ", ".join(c(v) + (f": {c(repr(k))}" if k is not None else "") for v, k in vs)
            return f"{q} {binders}. {kids}"
    return f"{type(f).__name__.lower()} {kids}"


Scope = dict  # encoded variable name -> its category (or None) at this point of the formula


def _capped(w: ir.Window | None) -> ir.Window | None:
    """``w`` with frame offsets capped at :data:`MAX_OFFSET` (``None`` for "to the end from t")."""
    if w is None or w.unit != "frames":
        return w
    lo = min(int(w.lo), MAX_OFFSET)
    hi = None if w.hi is None or int(w.hi) >= MAX_OFFSET else int(w.hi)
    if lo == 0 and hi is None:
        return None
    return ir.Window(lo, hi) if (lo, hi) != (w.lo, w.hi) else w


@dataclass(frozen=True)
class _Rel:
    """An emitted relation: name and its columns after ``t`` (sorted; ``p`` first if pinned)."""

    name: str
    cols: tuple[str, ...]

    def atom(self, time: str = "t", cols: Sequence[str] | None = None) -> str:
        return f"{self.name}({', '.join((time, *(self.cols if cols is None else cols)))})"


# ---------------------------------------------------------------------- emitter


class _Emitter:
    """Emits one relation per (sub-formula, pinned event, categories of its free variables).

    Sub-formulas are hash-consed bottom-up (:meth:`intern`: structurally equal
    nodes share one id, with their free variables and events), and every
    traversal uses an explicit stack, so neither deep nesting nor structural
    hashing of deep trees recurses in Python.
    """

    def __init__(self) -> None:
        self.blocks: list[list[str]] = []  # one block of lines per relation, in dependency order
        self.memo: dict[tuple, _Rel] = {}
        self.windows: dict[tuple, str] = {}
        self.helpers: set[str] = set()
        self.literals: dict[str, str] = {}
        self.counter = 0
        # Hash-consing: id(node) -> canonical id; canonical key -> id; per id: free vars, events.
        self.by_obj: dict[int, int] = {}
        self.by_key: dict[tuple, int] = {}
        self.keep: list[ir.Formula] = []  # keeps interned nodes alive (their id() must not be reused)
        self.free: list[frozenset[str]] = []
        self.events: list[frozenset[int]] = []

    # -- names

    def lit(self, name: str) -> str:
        body = nm.literal(name)
        self.literals[body] = name
        return f'"{body}"'

    @staticmethod
    def var(name: str) -> str:
        return nm.ident("v_", name)

    def fresh(self, kind: str, pin: int | None) -> str:
        self.counter += 1
        return f"r{self.counter}_{kind}" + ("" if pin is None else f"_pin{pin}")

    def ground(self, cols: Iterable[str], scope: "Scope") -> list[str]:
        """Atoms grounding ``cols``: ``frame(p)``; ``candidate(v, "c")`` for a variable of category c, else ``track(v)``."""
        out = []
        for c in cols:
            if c == PIN:
                out.append(f"frame({c})")
            elif scope.get(c) is not None:
                out.append(f"candidate({c}, {self.lit(scope[c])})")  # type: ignore[arg-type]
            else:
                out.append(f"track({c})")
        return out

    def restrict(self, variables: Iterable[str], scope: "Scope") -> list[str]:
        """``candidate`` atoms for the categorised ``variables``: a leaf's early domain restriction."""
        return [f"candidate({self.var(v)}, {self.lit(scope[self.var(v)])})"  # type: ignore[arg-type]
                for v in dict.fromkeys(variables) if scope.get(self.var(v)) is not None]

    def declare(self, name: str, fields: Sequence[tuple[str, str]], comment: str, rules: list[str]) -> None:
        decl = f"type {name}({', '.join(f'{f}: {ty}' for f, ty in fields)})"
        self.blocks.append([f"// {comment}", decl, *rules])

    def relation(self, name: str, cols: tuple[str, ...], comment: str, bodies: list[tuple[str, list[str]]]) -> _Rel:
        """Declare ``name(t, *cols)`` with one rule per ``(head args, body atoms)``."""
        rel = _Rel(name, cols)
        fields = [("t", "i32"), *((c, "i32") for c in cols)]
        rules = [f"rel {name}({head}) = {' and '.join(body)}" for head, body in bodies]
        self.declare(name, fields, comment, rules)
        return rel

    def helper(self, name: str) -> str:
        self.helpers.add(name)
        return name

    # -- hash-consing

    def intern(self, root: ir.Formula) -> int:
        """The canonical id of ``root`` (structurally equal formulas get the same id)."""
        stack: list[tuple[ir.Formula, bool]] = [(root, False)]
        while stack:
            f, ready = stack.pop()
            if id(f) in self.by_obj:
                continue
            kids = ir.children(f)
            if not ready:
                stack.append((f, True))
                stack.extend((k, False) for k in kids)
                continue
            ids = tuple(self.by_obj[id(k)] for k in kids)
            match f:
                case ir.Exists(block, _) | ir.Forall(block, _):
                    fields: tuple = (block,)
                case ir.Const(v):
                    fields = (v,)
                case ir.Unary(p, v):
                    fields = (p, v)
                case ir.Binary(p, a, b):
                    fields = (p, a, b)
                case ir.Eq(a, b):
                    fields = (a, b)
                case ir.Next(_, weak):
                    fields = (weak, f.steps)
                case ir.Eventually(_, w, ev):
                    fields = (w, ev)
                case ir.Always(_, w) | ir.Until(_, _, w):
                    fields = (w,)
                case ir.Not() | ir.And() | ir.Or():
                    fields = ()
                case _:
                    assert_never(f)
            key = (type(f).__name__, fields, ids)
            cid = self.by_key.get(key)
            if cid is None:
                cid = len(self.free)
                self.by_key[key] = cid
                free: frozenset[str] = frozenset().union(*(self.free[i] for i in ids)) if ids else frozenset()
                match f:
                    case ir.Unary(_, v):
                        free = frozenset((v,))
                    case ir.Binary(_, a, b) | ir.Eq(a, b):
                        free = frozenset((a, b))
                    case ir.Exists(block, _) | ir.Forall(block, _):
                        free = free - {v for v, _ in block}
                evs = frozenset().union(*(self.events[i] for i in ids)) if ids else frozenset()
                if isinstance(f, ir.Eventually) and f.event is not None:
                    evs = evs | {f.event}
                self.free.append(free)
                self.events.append(evs)
            self.by_obj[id(f)] = cid
            self.keep.append(f)
        return self.by_obj[id(root)]

    def contains_event(self, f: ir.Formula, event: int) -> bool:
        return event in self.events[self.intern(f)]

    # -- windows

    def window(self, w: ir.Window | None) -> str:
        """A helper relation ``W(t, s)``: ``s`` lies in the window from ``t`` (and in the trace)."""
        w = _capped(w)
        if w is None or (w.unit == "frames" and w.lo == 0 and w.hi is None):
            return self.helper("later")
        key = (w.lo, w.hi, w.unit)
        if key in self.windows:
            return self.windows[key]
        self.counter += 1
        name = f"win{self.counter}"
        self.windows[key] = name
        if w.unit == "frames":
            cons = [f"s >= t + {int(w.lo)}" if w.lo else "s >= t"]
            if w.hi is not None:
                cons.append(f"t + {int(w.hi)} >= s")
            self.declare(name, [("t", "i32"), ("s", "i32")], f"window {window_text(w)}: frame s is in it from t",
                         [f"rel {name}(t, s) = frame(t) and frame(s) and {' and '.join(cons)}"])
        else:
            bounds = self.bounds(w)
            self.declare(name, [("t", "i32"), ("s", "i32")], f"window {window_text(w)}: frame s is in it from t",
                         [f"rel {name}(t, s) = {bounds}(lo, hi) and frame(t) and frame(s) "
                          f"and s >= t + lo and t + hi >= s"])
        return name

    def bounds(self, w: ir.Window) -> str:
        """The helper relation ``B(lo, hi)`` of a fraction window's frame offsets for this trace."""
        key = ("bounds", w.lo, w.hi)
        if key not in self.windows:
            lo, hi = _fraction(float(w.lo)), _fraction(float(w.hi))  # type: ignore[arg-type]
            self.counter += 1
            name = f"bounds{self.counter}"
            self.windows[key] = name
            self.declare(name, [("lo", "i32"), ("hi", "i32")],
                         f"window {window_text(w)} in frames: [ceil({lo} (T - 1)), floor({hi} (T - 1))]",
                         [f"rel {name}({_round_expr(lo, True)}, {_round_expr(hi, False)}) = num_frames(n)"])
        return self.windows[key]

    # -- formulas

    def key(self, f: ir.Formula, pin: int | None, scope: "Scope") -> tuple:
        cid = self.intern(f)
        cats = tuple(sorted((v, scope.get(self.var(v))) for v in self.free[cid]))
        return cid, (pin if pin is not None and pin in self.events[cid] else None), cats

    def emit(self, f: ir.Formula, pin: int | None = None, scope: "Scope | None" = None) -> _Rel:
        """The relation of ``f`` (emitting it and every sub-formula first, with an explicit stack)."""
        scope = {} if scope is None else scope
        stack: list[tuple[ir.Formula, int | None, Scope, bool]] = [(f, pin, scope, False)]
        while stack:
            node, p, sc, ready = stack.pop()
            k = self.key(node, p, sc)
            if k in self.memo:
                continue
            p = k[1]
            if ready:
                self.memo[k] = self._emit(node, p, sc)
                continue
            stack.append((node, p, sc, True))
            match node:
                case ir.Exists(block, body) | ir.Forall(block, body):
                    inner = {**sc, **{self.var(v): c for v, c in block}}
                    stack.append((body, p, inner, False))
                case ir.Eventually(arg, _, event) if p is not None and event == p:
                    stack.append((arg, None, sc, False))  # the pinned event reads its body unpinned
                case _:
                    # Reversed, so operands are emitted first to last (stable relation numbering).
                    stack.extend((c, p, sc, False) for c in reversed(ir.children(node)))
        return self.memo[self.key(f, pin, scope)]

    def cols_of(self, f: ir.Formula, pin: int | None) -> tuple[str, ...]:
        cid = self.intern(f)
        cols = {self.var(v) for v in self.free[cid]}
        if pin is not None and pin in self.events[cid]:
            cols.add(PIN)
        return tuple(sorted(cols))  # "p" sorts before every "v_…"

    def _emit(self, f: ir.Formula, pin: int | None, scope: "Scope") -> _Rel:
        """``f``'s relation; its operands' relations are already in the memo (see :meth:`emit`)."""
        cols = self.cols_of(f, pin)
        sub = lambda k, p=pin: self.emit(k, p, scope)  # noqa: E731  (a memo hit for every operand)
        name_of = lambda k: sub(k).name  # noqa: E731
        head = ", ".join(("t", *cols))
        match f:
            case ir.Const(True):
                return self.relation(self.fresh("true", pin), cols, "true", [(head, ["frame(t)"])])
            case ir.Const(False):
                return self.relation(self.fresh("false", pin), cols, "false (no rule: always empty)", [])
            case ir.Const():
                raise AssertionError("unreachable")  # pragma: no cover
            case ir.Unary(p, v):
                return self.relation(self.fresh("unary", pin), cols, _describe(f, name_of),
                                     [(head, [f"unary({self.lit(p)}, t, {self.var(v)})", *self.restrict([v], scope)])])
            case ir.Binary(p, a, b):
                return self.relation(self.fresh("binary", pin), cols, _describe(f, name_of),
                                     [(head, [f"binary({self.lit(p)}, t, {self.var(a)}, {self.var(b)})",
                                              *self.restrict([a, b], scope)])])
            case ir.Eq(a, b):
                body = ["frame(t)", *self.ground(cols, scope)]
                if a != b:
                    body.append(f"{self.var(a)} == {self.var(b)}")
                return self.relation(self.fresh("eq", pin), cols, _describe(f, name_of), [(head, body)])
            case ir.Not(arg):
                a = sub(arg)
                return self.relation(self.fresh("not", pin), cols, _describe(f, name_of),
                                     [(head, ["frame(t)", *self.ground(cols, scope), f"not {a.atom()}"])])
            case ir.And(args):
                rels = [sub(x) for x in args]
                return self.relation(self.fresh("and", pin), cols, _describe(f, name_of),
                                     [(head, [r.atom() for r in rels])])
            case ir.Or(args):
                rels = [sub(x) for x in args]
                bodies = [(head, [r.atom(), *self.ground((c for c in cols if c not in r.cols), scope)])
                          for r in rels]
                return self.relation(self.fresh("or", pin), cols, _describe(f, name_of), bodies)
            case ir.Next(arg, weak):
                a = sub(arg)
                k = f.steps  # next[k] is one node: s = t + k
                step = self.helper("succ") if k == 1 else self.shift(min(k, MAX_OFFSET))
                bodies = [(head, [f"{step}(t, s)", a.atom("s")])]
                if weak:
                    bodies.append((head, [f"{self.past_end(min(k, MAX_OFFSET))}(t)", *self.ground(cols, scope)]))
                return self.relation(self.fresh("wnext" if weak else "next", pin), cols,
                                     _describe(f, name_of), bodies)
            case ir.Eventually(arg, w, event):
                if pin is not None and event == pin:
                    # The pinned event: its body at exactly frame p, if p is in the window from t.
                    a = sub(arg, None)
                    win = self.window(w)
                    return self.relation(self.fresh("event", pin), cols,
                                         f"event {event} pinned at frame p: {a.name} at p, p in window from t",
                                         [(head, [f"{win}(t, p)", a.atom(PIN)])])
                a = sub(arg)
                name = self.fresh("eventually", pin)
                if _capped(w) is None:
                    bodies = [(head, [a.atom()]),
                              (head, [f"{self.helper('succ')}(t, s)", _Rel(name, cols).atom("s")])]
                else:
                    bodies = [(head, [f"{self.window(w)}(t, s)", a.atom("s")])]
                return self.relation(name, cols, _describe(f, name_of), bodies)
            case ir.Always(arg, w):
                if _capped(w) is not None:
                    # min over a window = 1 - max of (1 - a) over it: exact under godel.
                    return sub(ir.Not(ir.Eventually(ir.Not(arg), w)))
                a = sub(arg)
                name = self.fresh("always", pin)
                bodies = [(head, [f"{self.helper('last')}(t)", a.atom()]),
                          (head, [a.atom(), f"{self.helper('succ')}(t, s)", _Rel(name, cols).atom("s")])]
                return self.relation(name, cols, _describe(f, name_of), bodies)
            case ir.Until(left, right, w):
                return self.until(f, left, right, _capped(w), pin, scope, cols, head, name_of)
            case ir.Exists(block, body_f):
                inner = {**scope, **{self.var(v): c for v, c in block}}
                body = self.emit(body_f, pin, inner)
                atoms = [body.atom()]
                bound = [self.var(v) for v, _ in block]
                for (v, cat), mv in zip(block, bound):
                    if cat is not None:
                        atoms.append(f"name({mv}, {self.lit(cat)})")
                    elif mv not in body.cols:
                        atoms.append(f"track({mv})")
                for i in range(len(bound)):
                    for j in range(i + 1, len(bound)):
                        atoms.append(f"{bound[i]} != {bound[j]}")
                return self.relation(self.fresh("exists", pin), cols, _describe(f, name_of), [(head, atoms)])
            case ir.Forall(block, body_f):
                # ∧ over assignments of (¬cats ∨ body) = ¬ ∨ over assignments of (cats ∧ ¬body).
                return sub(ir.Not(ir.Exists(block, ir.Not(body_f))))
            case _:
                assert_never(f)

    def until(self, f: ir.Until, left: ir.Formula, right: ir.Formula, w: ir.Window | None, pin: int | None,
              scope: "Scope", cols: tuple[str, ...], head: str, name_of) -> _Rel:
        a, b = self.emit(left, pin, scope), self.emit(right, pin, scope)
        name = self.fresh("until", pin)
        if w is None:
            bodies = [(head, [b.atom(), *self.ground((c for c in cols if c not in b.cols), scope)]),
                      (head, [a.atom(), f"{self.helper('succ')}(t, s)", _Rel(name, cols).atom("s")])]
            return self.relation(name, cols, _describe(f, name_of), bodies)
        if w.unit == "frames" and w.hi is None:
            # φ until[lo, ∞) ψ (t) = (∧ of φ over [t, t+lo)) ∧ (φ until ψ)(t + lo): O(T), no pair relation.
            pre = self.emit(ir.Always(left, ir.Window(0, int(w.lo) - 1)), pin, scope)
            unb = self.emit(ir.Until(left, right), pin, scope)
            shift = self.shift(int(w.lo))
            body = [pre.atom(), f"{shift}(t, s)", unb.atom("s")]
            return self.relation(name, cols, _describe(f, name_of) + f" = {pre.name} and {unb.name} {w.lo} later",
                                 [(head, body)])
        # q(t, s, Va) = ∧ of `left` over [t, s), for s up to the window's end: O(T·|W|) tuples.
        win = self.window(w)
        q = f"{name}_prefix"
        qhead = ", ".join(("t", "s", *a.cols))
        if w.unit == "frames":
            step = [f"t + {int(w.hi)} >= u"]  # type: ignore[arg-type]
        else:
            step = [f"{self.bounds(w)}(lo, hi)", "t + hi >= u"]
        self.declare(q, [("t", "i32"), ("s", "i32"), *((c, "i32") for c in a.cols)],
                     f"{a.name} holds at every frame of [t, s)",
                     [f"rel {q}({qhead}) = frame(t) and frame(s) and s == t"
                      + "".join(f" and {g}" for g in self.ground(a.cols, scope)),
                      f"rel {q}({', '.join(('t', 'u', *a.cols))}) = {q}({qhead}) and {a.atom('s')} "
                      f"and {self.helper('succ')}(s, u)" + "".join(f" and {c}" for c in step)])
        body = [f"{win}(t, s)", f"{q}({qhead})", b.atom("s"),
                *self.ground((c for c in cols if c not in a.cols and c not in b.cols), scope)]
        return self.relation(name, cols, _describe(f, name_of), [(head, body)])

    def past_end(self, k: int) -> str:
        """A helper ``E(t)``: ``t + k`` is past the last frame (``last`` for ``k = 1``)."""
        if k == 1:
            return self.helper("last")
        name = f"past{k}"
        if name not in self.helpers:
            self.helpers.add(name)
            self.blocks.insert(0, [f"// t + {k} is past the last frame", f"type {name}(t: i32)",
                                   f"rel {name}(t) = frame(t) and num_frames(n) and t + {k} >= n"])
        return name

    def shift(self, k: int) -> str:
        """A helper ``shiftK(t, s)``: ``s = t + k`` (both frames), built in O(T) from ``s``."""
        name = f"shift{k}"
        if name not in self.helpers:
            self.helpers.add(name)
            self.blocks.insert(0, [f"// s is {k} frames after t", f"type {name}(t: i32, s: i32)",
                                   f"rel {name}(s - {k}, s) = frame(s) and s >= {k}"])
        return name

    # -- helpers and program assembly

    def helper_lines(self) -> list[str]:
        defs = {
            "succ": ("succ(t: i32, s: i32)", "s is the frame after t",
                     "rel succ(s - 1, s) = frame(s) and s >= 1"),
            "last": ("last(t: i32)", "t is the last frame",
                     "rel last(t) = frame(t) and num_frames(n) and t + 1 == n"),
            "later": ("later(t: i32, s: i32)", "s is t or a later frame",
                      "rel later(t, s) = frame(t) and frame(s) and s >= t"),
        }
        out: list[str] = []
        for key in ("succ", "last", "later"):
            if key in self.helpers:
                decl, comment, rule = defs[key]
                out += [f"// {comment}", f"type {decl}", rule]
        return out


def check_frames(num_frames: int) -> None:
    """E602 unless a trace of ``num_frames`` frames fits Scallop's i32 frame arithmetic."""
    if num_frames >= MAX_FRAMES:
        raise unsupported("scallop", f"a trace of {num_frames} frames",
                          f"Scallop programs use i32 frame numbers: traces must have fewer than {MAX_FRAMES} frames")


def _facts_lines(trace: Any, literal, used: set[str]) -> list[str]:
    """The trace as Scallop facts, for the names in ``used`` only (encoded literals).

    Probability-0 facts are left out (a missing tuple is 0); ``candidate(n, c)``
    (untagged) lists the tracks whose category score is non-zero, the domain the
    quantified variables of category ``c`` range over.
    """
    import numpy as np

    check_frames(trace.num_frames)
    T, N = trace.num_frames, trace.num_tracks
    lines = [f"rel frame = {{{', '.join(f'({t},)' for t in range(T))}}}",
             f"rel num_frames = {{({T},)}}"]
    if N:
        lines.append(f"rel track = {{{', '.join(f'({n},)' for n in range(N))}}}")
    for n, tid in enumerate(trace.track_ids):
        lines.append(f"// track {n} = {nm.comment(repr(tid))}")

    def emit_set(rel: str, items: list[str]) -> None:
        if items:
            lines.append(f"rel {rel} = {{\n  " + ",\n  ".join(items) + "\n}")

    def keep(names: Sequence[str]) -> list[int]:
        return [i for i, x in enumerate(names) if nm.literal(x) in used]

    cats, preds, rels = keep(trace.categories), keep(trace.unary_preds), keep(trace.binary_preds)
    names, candidates = [], []
    sub = trace.names[:, cats]
    for n, j in zip(*np.nonzero(sub)):
        c = cats[j]
        names.append(f"{format_probability(trace.names[n, c])}::({n}, {literal(trace.categories[c])})")
        candidates.append(f"({n}, {literal(trace.categories[c])})")
    emit_set("candidate", candidates)
    emit_set("name", names)
    unary = []
    for t, n, j in zip(*np.nonzero(trace.unary[:, :, preds])):
        p = preds[j]
        unary.append(f"{format_probability(trace.unary[t, n, p])}::({literal(trace.unary_preds[p])}, {t}, {n})")
    emit_set("unary", unary)
    binary = []
    for t, n, m, j in zip(*np.nonzero(trace.binary[:, :, :, rels])):
        r = rels[j]
        binary.append(f"{format_probability(trace.binary[t, n, m, r])}::"
                      f"({literal(trace.binary_preds[r])}, {t}, {n}, {m})")
    emit_set("binary", binary)
    return lines


def _check_size(spec: ir.Spec, blocks: list[list[str]], path: str) -> None:
    """E601, at the spec's name, when ``spec``'s relations have more than :data:`MAX_SPEC_RULES` rules."""
    rules = sum(line.startswith("rel ") for block in blocks for line in block)
    if rules > MAX_SPEC_RULES:
        raise StlError([diagnostics.input_too_large(
            f"spec {spec.name!r} needs {rules:,} Scallop rules; the scallop target's limit is {MAX_SPEC_RULES:,} "
            f"per spec (Scallop's compiler slows down faster than the square of a program's size)",
            spec.span, path,
            hints=("nest less deeply or split the spec into several specs; the reference and torch backends "
                   "take it as it is",))])


def compile_program(program: ir.CoreProgram, *, trace: Any = None,
                    specs: Sequence[str] | None = None, witnesses: bool = False) -> ScallopProgram:
    """Compile ``program`` (all specs, or those named in ``specs``) to a :class:`ScallopProgram`.

    With a ``trace`` (a :class:`stlspec.trace.Trace`) its facts are embedded as
    probabilistic facts (only those of the names some spec reads) and the
    program runs standalone (``scli -p minmaxprob -q sat out.scl``); without one
    the input relations are only declared, to be filled from Python
    (:mod:`.runner`). ``witnesses=True`` adds a ``witness_*`` relation and query
    per event; they cost far more than ``sat`` under top-k provenances, so they
    are emitted only when asked for.
    """
    chosen = list(program.specs)
    if specs is not None:
        wanted = list(specs)
        known = {s.name for s in program.specs}
        missing = [s for s in wanted if s not in known]
        if missing:
            raise unsupported("scallop", f"selecting unknown spec(s) {', '.join(map(repr, missing))}",
                              f"the program's specs are: {', '.join(sorted(known))}")
        chosen = [s for s in program.specs if s.name in set(wanted)]

    em = _Emitter()
    outputs: dict[str, tuple[tuple[str, str], ...]] = {OUTPUT_SAT: (("spec", "String"),)}
    out_rules: list[str] = []
    sat_keys: dict[str, str] = {}
    witness_rels: dict[str, tuple[tuple[int, str], ...]] = {}
    for i, spec in enumerate(chosen):
        before = len(em.blocks)
        root = em.emit(spec.formula)
        key = em.lit(spec.name)
        sat_keys[spec.name] = key[1:-1]
        out_rules += [f"// spec {i}: {nm.comment(repr(spec.name))}"
                      + (f" -- {nm.comment(spec.caption)}" if spec.caption else ""),
                      f"rel sat({key}) = {root.name}(0)"]
        evs = []
        for ev in sorted(spec.events, key=lambda e: e.index) if witnesses else ():
            if not em.contains_event(spec.formula, ev.index):
                continue
            pinned = em.emit(spec.formula, ev.index)
            rel = f"witness_s{i}_e{ev.index}"
            outputs[rel] = (("t", "i32"),)
            out_rules += [f"// witness of event {ev.index} of spec {nm.comment(repr(spec.name))}"
                          + (f": {nm.comment(ev.label)}" if ev.label else "")
                          + " (unnormalised: tag = spec value with the event pinned at t)",
                          f"type {rel}(t: i32)",
                          f"rel {rel}(t) = {pinned.name}(0, t)"]
            evs.append((ev.index, rel))
        witness_rels[spec.name] = tuple(evs)
        _check_size(spec, em.blocks[before:], program.path)

    lines = ["// Generated by stlspec (target: scallop). Run with: scli -p minmaxprob -q sat FILE",
             "// Tags under minmaxprob equal stlspec's godel logic; a missing tuple means 0.", ""]
    lines += ["// ---- input relations (facts about absent tracks must be left out; candidate(n, c) without a",
              "// tag for every track n whose name score for c is non-zero: the domain of variables of category c)"]
    lines += [f"type {r}({', '.join(f'{f}: {ty}' for f, ty in fs)})" for r, fs in INPUT_RELATIONS.items()]
    fact_block = ""
    if trace is not None:
        lines += ["", "// ---- the trace, embedded as probabilistic facts"]
        used = set(em.literals)
        fact_block = "\n".join(_facts_lines(trace, em.lit, used)) + "\n"
        lines.append(fact_block[:-1])
    helpers = em.helper_lines()
    if helpers:
        lines += ["", "// ---- frame helpers", *helpers]
    lines += ["", "// ---- one relation per sub-formula: tag at (t, vars) = godel value at frame t"]
    for block in em.blocks:
        lines += block
    lines += ["", "// ---- outputs", "type sat(spec: String)", *out_rules, "", f"query {OUTPUT_SAT}"]
    lines += [f"query {rel}" for evs in witness_rels.values() for _, rel in evs]
    if em.literals:
        lines += ["", "// ---- string literals -> original names"]
        lines += [f"// {nm.comment(repr(body))} = {nm.comment(repr(orig))}"
                  for body, orig in sorted(em.literals.items())]
    text = "\n".join(lines) + "\n"
    return ScallopProgram(
        text=text, inputs=dict(INPUT_RELATIONS), outputs=outputs, specs=tuple(s.name for s in chosen),
        sat_keys=sat_keys, witnesses=witness_rels, literals=dict(em.literals), standalone=trace is not None,
        fact_block=fact_block,
    )
