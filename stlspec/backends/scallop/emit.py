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
    next[k] a       r(t, V) = stepk(t, s) and a(s, V)         weak: + stepk_end(t) and G(V)
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
from typing import Any, Iterable, Sequence

from stlspec import ir
from stlspec.rounding import fraction_value
from stlspec.backends.core_text import window_text
from stlspec.backends import unsupported
from stlspec.backends.scallop import names as nm

__all__ = ["ScallopProgram", "compile_program", "INPUT_RELATIONS", "OUTPUT_SAT", "format_probability"]

#: The input relations every program declares, with field names and types.
INPUT_RELATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "frame": (("t", "i32"),),
    "num_frames": (("n", "i32"),),
    "track": (("n", "i32"),),
    "name": (("n", "i32"), ("c", "String")),
    "unary": (("p", "String"), ("t", "i32"), ("n", "i32")),
    "binary": (("r", "String"), ("t", "i32"), ("n", "i32"), ("m", "i32")),
}

OUTPUT_SAT = "sat"

#: Largest denominator of a fraction-window bound (keeps ``p * (n - 1)`` inside i32).
MAX_FRACTION_DENOMINATOR = 10_000

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
        case ir.Next(_, weak):
            return f"{'weak next' if weak else 'next'} {kids}"
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


def _contains_event(f: ir.Formula, event: int) -> bool:
    return any(isinstance(n, ir.Eventually) and n.event == event for n in ir.walk(f))


@dataclass(frozen=True)
class _Rel:
    """An emitted relation: name and its columns after ``t`` (sorted; ``p`` first if pinned)."""

    name: str
    cols: tuple[str, ...]

    def atom(self, time: str = "t", cols: Sequence[str] | None = None) -> str:
        return f"{self.name}({', '.join((time, *(self.cols if cols is None else cols)))})"


# ---------------------------------------------------------------------- emitter


class _Emitter:
    def __init__(self) -> None:
        self.blocks: list[list[str]] = []  # one block of lines per relation, in dependency order
        self.memo: dict[tuple[ir.Formula, int | None], _Rel] = {}
        self.windows: dict[tuple, str] = {}
        self.helpers: set[str] = set()
        self.literals: dict[str, str] = {}
        self.counter = 0

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

    def ground(self, cols: Iterable[str]) -> list[str]:
        return [f"frame({c})" if c == PIN else f"track({c})" for c in cols]

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

    # -- next[k]

    def steps(self, k: int, weak: bool) -> tuple[str, str | None]:
        """Helper relations ``S(t, s)`` (``s = t + k`` is a frame) and, for weak next, ``E(t)`` (``t + k``
        is past the last frame)."""
        if k == 1:
            return self.helper("succ"), (self.helper("last") if weak else None)
        k = min(k, 999_999_999)  # Scallop integers are i32; no trace is that long, so the value is the same
        name = f"step{k}"
        if ("steps", k) not in self.windows:
            self.windows[("steps", k)] = name
            self.declare(name, [("t", "i32"), ("s", "i32")], f"s is the frame {k} after t",
                         [f"rel {name}(t, s) = frame(t) and frame(s) and s == t + {k}"])
        if not weak:
            return name, None
        if ("steps_end", k) not in self.windows:
            self.windows[("steps_end", k)] = f"{name}_end"
            self.declare(f"{name}_end", [("t", "i32")], f"t + {k} is past the last frame",
                         [f"rel {name}_end(t) = frame(t) and num_frames(n) and t + {k} >= n"])
        return name, f"{name}_end"

    # -- windows

    def window(self, w: ir.Window | None) -> str:
        """A helper relation ``W(t, s)``: ``s`` lies in the window from ``t`` (and in the trace)."""
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
            lo, hi = _fraction(float(w.lo)), _fraction(float(w.hi))  # type: ignore[arg-type]
            bounds = f"{name}_bounds"
            self.declare(bounds, [("lo", "i32"), ("hi", "i32")],
                         f"window {window_text(w)} in frames: [ceil({lo} (T - 1)), floor({hi} (T - 1))]",
                         [f"rel {bounds}({_round_expr(lo, True)}, {_round_expr(hi, False)}) = num_frames(n)"])
            self.declare(name, [("t", "i32"), ("s", "i32")], f"window {window_text(w)}: frame s is in it from t",
                         [f"rel {name}(t, s) = {bounds}(lo, hi) and frame(t) and frame(s) "
                          f"and s >= t + lo and t + hi >= s"])
        return name

    # -- formulas

    def emit(self, f: ir.Formula, pin: int | None = None) -> _Rel:
        if pin is not None and not _contains_event(f, pin):
            pin = None
        key = (f, pin)
        if key not in self.memo:
            self.memo[key] = self._emit(f, pin)
        return self.memo[key]

    def cols_of(self, f: ir.Formula, pin: int | None) -> tuple[str, ...]:
        cols = {self.var(v) for v in ir.free_vars(f)}
        if pin is not None and _contains_event(f, pin):
            cols.add(PIN)
        return tuple(sorted(cols))  # "p" sorts before every "v_…"

    def _emit(self, f: ir.Formula, pin: int | None) -> _Rel:
        cols = self.cols_of(f, pin)
        name_of = lambda k: self.emit(k, pin).name  # noqa: E731
        head = ", ".join(("t", *cols))
        match f:
            case ir.Const(True):
                return self.relation(self.fresh("true", pin), cols, "true", [(head, ["frame(t)"])])
            case ir.Const(False):
                return self.relation(self.fresh("false", pin), cols, "false (no rule: always empty)", [])
            case ir.Unary(p, v):
                return self.relation(self.fresh("unary", pin), cols, _describe(f, name_of),
                                     [(head, [f"unary({self.lit(p)}, t, {self.var(v)})"])])
            case ir.Binary(p, a, b):
                return self.relation(self.fresh("binary", pin), cols, _describe(f, name_of),
                                     [(head, [f"binary({self.lit(p)}, t, {self.var(a)}, {self.var(b)})"])])
            case ir.Eq(a, b):
                body = ["frame(t)", *self.ground(cols)]
                if a != b:
                    body.append(f"{self.var(a)} == {self.var(b)}")
                return self.relation(self.fresh("eq", pin), cols, _describe(f, name_of), [(head, body)])
            case ir.Not(arg):
                a = self.emit(arg, pin)
                return self.relation(self.fresh("not", pin), cols, _describe(f, name_of),
                                     [(head, ["frame(t)", *self.ground(cols), f"not {a.atom()}"])])
            case ir.And(args):
                rels = [self.emit(x, pin) for x in args]
                return self.relation(self.fresh("and", pin), cols, _describe(f, name_of),
                                     [(head, [r.atom() for r in rels])])
            case ir.Or(args):
                rels = [self.emit(x, pin) for x in args]
                bodies = [(head, [r.atom(), *self.ground(c for c in cols if c not in r.cols)]) for r in rels]
                return self.relation(self.fresh("or", pin), cols, _describe(f, name_of), bodies)
            case ir.Next(arg, weak, steps):
                a = self.emit(arg, pin)
                step, past_end = self.steps(steps, weak)
                bodies = [(head, [f"{step}(t, s)", a.atom("s")])]
                if past_end is not None:
                    bodies.append((head, [f"{past_end}(t)", *self.ground(cols)]))
                return self.relation(self.fresh("wnext" if weak else "next", pin), cols,
                                     _describe(f, name_of), bodies)
            case ir.Eventually(arg, w, event):
                if pin is not None and event == pin:
                    # The pinned event: its body at exactly frame p, if p is in the window from t.
                    a = self.emit(arg, None)
                    win = self.window(w)
                    return self.relation(self.fresh("event", pin), cols,
                                         f"event {event} pinned at frame p: {a.name} at p, p in window from t",
                                         [(head, [f"{win}(t, p)", a.atom(PIN)])])
                a = self.emit(arg, pin)
                name = self.fresh("eventually", pin)
                if w is None:
                    bodies = [(head, [a.atom()]),
                              (head, [f"{self.helper('succ')}(t, s)", _Rel(name, cols).atom("s")])]
                else:
                    bodies = [(head, [f"{self.window(w)}(t, s)", a.atom("s")])]
                return self.relation(name, cols, _describe(f, name_of), bodies)
            case ir.Always(arg, w):
                if w is not None:
                    # min over a window = 1 - max of (1 - a) over it: exact under godel.
                    rel = self.emit(ir.Not(ir.Eventually(ir.Not(arg), w)), pin)
                    return rel
                a = self.emit(arg, pin)
                name = self.fresh("always", pin)
                bodies = [(head, [f"{self.helper('last')}(t)", a.atom()]),
                          (head, [a.atom(), f"{self.helper('succ')}(t, s)", _Rel(name, cols).atom("s")])]
                return self.relation(name, cols, _describe(f, name_of), bodies)
            case ir.Until(left, right, w):
                a, b = self.emit(left, pin), self.emit(right, pin)
                name = self.fresh("until", pin)
                if w is None:
                    bodies = [(head, [b.atom(), *self.ground(c for c in cols if c not in b.cols)]),
                              (head, [a.atom(), f"{self.helper('succ')}(t, s)", _Rel(name, cols).atom("s")])]
                    return self.relation(name, cols, _describe(f, name_of), bodies)
                # q(t, s, Va) = min of `left` over [t, s): the prefix that must hold before `right` at s.
                win = self.window(w)
                q = f"{name}_prefix"
                qhead = ", ".join(("t", "s", *a.cols))
                step_bound = []
                lo_hi = (w.lo, w.hi) if w.unit == "frames" else None
                if lo_hi is not None and lo_hi[1] is not None:
                    step_bound = [f"t + {int(lo_hi[1])} >= u"]
                self.declare(q, [("t", "i32"), ("s", "i32"), *((c, "i32") for c in a.cols)],
                             f"{a.name} holds at every frame of [t, s)",
                             [f"rel {q}({qhead}) = frame(t) and frame(s) and s == t"
                              + "".join(f" and {g}" for g in self.ground(a.cols)),
                              f"rel {q}({', '.join(('t', 'u', *a.cols))}) = {q}({qhead}) and {a.atom('s')} "
                              f"and {self.helper('succ')}(s, u)" + "".join(f" and {c}" for c in step_bound)])
                body = [f"{win}(t, s)", f"{q}({qhead})", b.atom("s"),
                        *self.ground(c for c in cols if c not in a.cols and c not in b.cols)]
                return self.relation(name, cols, _describe(f, name_of), [(head, body)])
            case ir.Exists(block, body_f):
                body = self.emit(body_f, pin)
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
                return self.emit(ir.Not(ir.Exists(block, ir.Not(body_f))), pin)
        raise TypeError(f"not a core formula: {f!r}")  # pragma: no cover

    # -- helpers and program assembly

    def helper_lines(self) -> list[str]:
        defs = {
            "succ": ("succ(t: i32, s: i32)", "s is the frame after t",
                     "rel succ(t, s) = frame(t) and frame(s) and s == t + 1"),
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


def _facts_lines(trace: Any, literal) -> list[str]:
    """The trace as Scallop facts (probability-0 facts are left out: a missing tuple is 0)."""
    import numpy as np

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

    names = []
    for n, c in zip(*np.nonzero(trace.names)):
        names.append(f"{format_probability(trace.names[n, c])}::({n}, {literal(trace.categories[c])})")
    emit_set("name", names)
    unary = []
    for t, n, p in zip(*np.nonzero(trace.unary)):
        unary.append(f"{format_probability(trace.unary[t, n, p])}::({literal(trace.unary_preds[p])}, {t}, {n})")
    emit_set("unary", unary)
    binary = []
    for t, n, m, r in zip(*np.nonzero(trace.binary)):
        binary.append(f"{format_probability(trace.binary[t, n, m, r])}::"
                      f"({literal(trace.binary_preds[r])}, {t}, {n}, {m})")
    emit_set("binary", binary)
    return lines


def compile_program(program: ir.CoreProgram, *, trace: Any = None,
                    specs: Sequence[str] | None = None) -> ScallopProgram:
    """Compile ``program`` (all specs, or those named in ``specs``) to a :class:`ScallopProgram`.

    With a ``trace`` (a :class:`stlspec.trace.Trace`) its facts are embedded as
    probabilistic facts and the program runs standalone
    (``scli -p minmaxprob -q sat out.scl``); without one the input relations
    are only declared, to be filled from Python (:mod:`.runner`).
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
    witnesses: dict[str, tuple[tuple[int, str], ...]] = {}
    for i, spec in enumerate(chosen):
        root = em.emit(spec.formula)
        key = em.lit(spec.name)
        sat_keys[spec.name] = key[1:-1]
        out_rules += [f"// spec {i}: {nm.comment(repr(spec.name))}"
                      + (f" -- {nm.comment(spec.caption)}" if spec.caption else ""),
                      f"rel sat({key}) = {root.name}(0)"]
        evs = []
        for ev in sorted(spec.events, key=lambda e: e.index):
            if not _contains_event(spec.formula, ev.index):
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
        witnesses[spec.name] = tuple(evs)

    lines = ["// Generated by stlspec (target: scallop). Run with: scli -p minmaxprob -q sat FILE",
             "// Tags under minmaxprob equal stlspec's godel logic; a missing tuple means 0.", ""]
    lines += ["// ---- input relations (facts about absent tracks must be left out)"]
    lines += [f"type {r}({', '.join(f'{f}: {ty}' for f, ty in fs)})" for r, fs in INPUT_RELATIONS.items()]
    fact_block = ""
    if trace is not None:
        lines += ["", "// ---- the trace, embedded as probabilistic facts"]
        fact_block = "\n".join(_facts_lines(trace, em.lit)) + "\n"
        lines.append(fact_block[:-1])
    helpers = em.helper_lines()
    if helpers:
        lines += ["", "// ---- frame helpers", *helpers]
    lines += ["", "// ---- one relation per sub-formula: tag at (t, vars) = godel value at frame t"]
    for block in em.blocks:
        lines += block
    lines += ["", "// ---- outputs", "type sat(spec: String)", *out_rules, "", f"query {OUTPUT_SAT}"]
    lines += [f"query {rel}" for evs in witnesses.values() for _, rel in evs]
    if em.literals:
        lines += ["", "// ---- string literals -> original names"]
        lines += [f"// {nm.comment(repr(body))} = {nm.comment(repr(orig))}"
                  for body, orig in sorted(em.literals.items())]
    text = "\n".join(lines) + "\n"
    return ScallopProgram(
        text=text, inputs=dict(INPUT_RELATIONS), outputs=outputs, specs=tuple(s.name for s in chosen),
        sat_keys=sat_keys, witnesses=witnesses, literals=dict(em.literals), standalone=trace is not None,
        fact_block=fact_block,
    )
