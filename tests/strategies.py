"""Hypothesis strategies for random core-IR specs and scene-graph traces.

Shared by the law tests of the reference interpreter and the differential tests
of the other backends (torch, scallop), so everything here is general: a small
fixed vocabulary, closed formulas over every core operator, specs with tagged
``then``-style event chains, and random traces (fuzzy or 0/1, with or without
presence masks).

Import it as ``from strategies import ...`` from a test module in ``tests/``
(pytest puts ``tests/`` on ``sys.path`` because the folder has no
``__init__.py``).

Public names::

    vocab()                                   -> ir.Vocabulary (fixed, small)
    windows()                                 -> st(ir.Window | None)
    formulas(vocab, max_depth, ...)           -> st(closed ir.Formula)
    open_formulas(vocab, bound, max_depth)    -> st(ir.Formula over `bound` vars)
    chains(vocab, ...)                        -> st((formula, events)) event chain
    specs(vocab, max_depth, events=True)      -> st(ir.Spec)
    traces(vocab, max_T, max_N, ...)          -> st(Trace)
    boolean_traces(vocab, max_T, max_N, ...)  -> st(Trace) with 0/1 facts only
    long_windows(max_T)                       -> st(ir.Window) spanning up to and beyond max_T frames
    windowed_specs(vocab, max_T, ...)         -> st(ir.Spec) built around windowed temporal operators

Sizes are kept small on purpose: the reference interpreter is a literal
transcription of the defining equations and costs ``O(T^depth · N^vars)``.
"""

from __future__ import annotations

from hypothesis import strategies as st

from stlspec import ir
from stlspec.trace import Trace

__all__ = [
    "vocab", "windows", "probabilities", "formulas", "open_formulas", "chains", "specs",
    "traces", "boolean_traces", "long_windows", "windowed_specs", "VOCAB",
]

#: The fixed test vocabulary. Argument categories are informative only: the
#: core IR is already type-checked, so random formulas ignore them.
VOCAB = ir.Vocabulary(
    categories=("person", "cup", "door"),
    unary=(("walking", "person"), ("open", "door"), ("red", None)),
    binary=(("holding", "person", None), ("near", None, None)),
)

# Fraction bounds chosen so that rounding in Window.frames is exercised
# (0.1 and 0.25 of T-1 are rarely integers) without float noise in the spec.
_FRACTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def vocab() -> ir.Vocabulary:
    """The fixed, small vocabulary every strategy here uses by default."""
    return VOCAB


@st.composite
def _frame_window(draw, max_lo: int = 3, max_len: int = 4) -> ir.Window:
    lo = draw(st.integers(0, max_lo))
    hi = draw(st.one_of(st.none(), st.integers(lo, lo + max_len)))
    return ir.Window(lo, hi, "frames")


@st.composite
def _fraction_window(draw) -> ir.Window:
    lo = draw(st.sampled_from(_FRACTIONS))
    hi = draw(st.sampled_from([f for f in _FRACTIONS if f >= lo]))
    return ir.Window(lo, hi, "fraction")


def windows(allow_none: bool = True) -> st.SearchStrategy:
    """``None`` (unbounded), a frame window ``[lo, hi|None]`` or a fraction window."""
    parts = [_frame_window(), _fraction_window()]
    if allow_none:
        parts.insert(0, st.none())
    return st.one_of(*parts)


def probabilities(boolean: bool = False) -> st.SearchStrategy:
    """Probabilities with exact 0 and 1 well represented (where logics differ least)."""
    if boolean:
        return st.sampled_from((0.0, 1.0))
    return st.one_of(
        st.sampled_from((0.0, 1.0)),
        st.sampled_from((0.1, 0.25, 0.5, 0.75, 0.9)),
        st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False),
    )


def _leaf(v: ir.Vocabulary, bound: tuple[str, ...]) -> st.SearchStrategy:
    consts = st.sampled_from((ir.TRUE, ir.FALSE))
    if not bound:
        return consts
    var = st.sampled_from(bound)
    parts = []
    if v.unary:
        parts.append(st.builds(ir.Unary, st.sampled_from(v.unary_names), var))
    if v.binary:
        parts.append(st.builds(ir.Binary, st.sampled_from(v.binary_names), var, var))
    parts.append(st.builds(ir.Eq, var, var))
    parts.append(consts)
    return st.one_of(*parts)


@st.composite
def _block(draw, v: ir.Vocabulary, bound: tuple[str, ...], max_vars: int):
    """A quantifier block's binders: fresh names (no shadowing), optional categories."""
    k = draw(st.integers(1, max(1, min(3, max_vars - len(bound)))))
    cats = st.one_of(st.none(), st.sampled_from(v.categories)) if v.categories else st.none()
    return tuple((f"v{len(bound) + i}", draw(cats)) for i in range(k))


# Operator choices, leaves first so that Hypothesis shrinks toward small formulas.
_OPS = ("leaf", "not", "and", "or", "next", "eventually", "always", "until", "exists", "forall")


@st.composite
def open_formulas(draw, vocab: ir.Vocabulary | None = None, bound: tuple[str, ...] = (),
                  max_depth: int = 3, max_vars: int = 3, temporal: bool = True,
                  quantifiers: bool = True) -> ir.Formula:
    """A formula whose free variables are among ``bound``.

    ``temporal=False`` leaves out Next/Eventually/Always/Until;
    ``quantifiers=False`` leaves out nested Exists/Forall blocks.
    """
    v = vocab or VOCAB
    if max_depth <= 0:
        return draw(_leaf(v, bound))
    ops = ["leaf", "not", "and", "or"]
    if temporal:
        ops += ["next", "eventually", "always", "until"]
    if quantifiers and len(bound) < max_vars:
        ops += ["exists", "forall"]
    op = draw(st.sampled_from(ops))
    sub = lambda b=bound: open_formulas(v, b, max_depth - 1, max_vars, temporal, quantifiers)  # noqa: E731
    match op:
        case "leaf":
            return draw(_leaf(v, bound))
        case "not":
            return ir.Not(draw(sub()))
        case "and" | "or":
            args = tuple(draw(st.lists(sub(), min_size=2, max_size=3)))
            return ir.And(args) if op == "and" else ir.Or(args)
        case "next":
            # Mostly one step; sometimes next[k], including k beyond any trace drawn here.
            steps = draw(st.sampled_from((1, 1, 1, 2, 3, 40)))
            return ir.Next(draw(sub()), weak=draw(st.booleans()), steps=steps)
        case "eventually":
            return ir.Eventually(draw(sub()), draw(windows()))
        case "always":
            return ir.Always(draw(sub()), draw(windows()))
        case "until":
            return ir.Until(draw(sub()), draw(sub()), draw(windows()))
        case "exists" | "forall":
            block = draw(_block(v, bound, max_vars))
            body = draw(sub(bound + tuple(n for n, _ in block)))
            return ir.Exists(block, body) if op == "exists" else ir.Forall(block, body)
    raise AssertionError(op)


@st.composite
def formulas(draw, vocab: ir.Vocabulary | None = None, max_depth: int = 3, max_vars: int = 3,
             temporal: bool = True) -> ir.Formula:
    """A closed formula; most are a quantifier block around a random body."""
    v = vocab or VOCAB
    if draw(st.integers(0, 4)) == 0:
        # Sometimes let the recursion decide (constants, connectives of blocks, ...).
        return draw(open_formulas(v, (), max_depth, max_vars, temporal))
    block = draw(_block(v, (), max_vars))
    body = draw(open_formulas(v, tuple(n for n, _ in block), max_depth - 1, max_vars, temporal))
    return ir.Exists(block, body) if draw(st.booleans()) else ir.Forall(block, body)


@st.composite
def chains(draw, vocab: ir.Vocabulary | None = None, bound: tuple[str, ...] = ("v0",),
           max_events: int = 3, first_event: int = 0, element_depth: int = 1
           ) -> tuple[ir.Formula, tuple[ir.EventInfo, ...]]:
    """A tagged ``then`` chain over the ``bound`` variables, built like the lowering does.

    ``A0 then A1 then A2`` becomes
    ``Eventually_0(And((A0, Next(Eventually_1(And((A1, Next(Eventually_2(A2)))))))))``
    with event numbers starting at ``first_event``. Returns the formula and its
    :class:`ir.EventInfo` list. Chain elements are quantifier-free.
    """
    v = vocab or VOCAB
    n = draw(st.integers(1, max_events))
    elems = [draw(open_formulas(v, bound, element_depth, quantifiers=False)) for _ in range(n)]
    hint = st.one_of(st.none(), st.sampled_from(((0.0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1.0), (0.0, 1.0))))
    infos = tuple(ir.EventInfo(first_event + k, draw(hint), f"e{first_event + k}") for k in range(n))
    f: ir.Formula = ir.Eventually(elems[-1], event=first_event + n - 1)
    for k in range(n - 2, -1, -1):
        f = ir.Eventually(ir.And((elems[k], ir.Next(f))), event=first_event + k)
    if draw(st.booleans()):
        # The first event may carry a window (``eventually[w] A @h`` then ...).
        f = ir.Eventually(f.arg, draw(windows(allow_none=False)), f.event)
    return f, infos


@st.composite
def _event_spec(draw, v: ir.Vocabulary, max_depth: int, max_events: int) -> ir.Spec:
    block = draw(_block(v, (), 2))
    bound = tuple(n for n, _ in block)
    chain, infos = draw(chains(v, bound, max_events))
    body: ir.Formula = chain
    shape = draw(st.sampled_from(("chain", "and", "or", "two")))
    if shape in ("and", "or"):
        # Events stay at positive top-level positions: only And/Or above them.
        other = draw(open_formulas(v, bound, max(0, max_depth - 2)))
        body = ir.And((chain, other)) if shape == "and" else ir.Or((other, chain))
    elif shape == "two":
        # Two independent chains under one block: events numbered consecutively.
        chain2, infos2 = draw(chains(v, bound, 2, first_event=len(infos)))
        body, infos = ir.And((chain, chain2)), infos + infos2
    quant = ir.Exists if draw(st.integers(0, 3)) else ir.Forall
    return ir.Spec("s", quant(block, body), infos)


def specs(vocab: ir.Vocabulary | None = None, max_depth: int = 3, events: bool = True,
          max_events: int = 3) -> st.SearchStrategy:
    """Specs named ``"s"``: random closed formulas, and (``events=True``) event chains."""
    v = vocab or VOCAB
    plain = formulas(v, max_depth).map(lambda f: ir.Spec("s", f))
    if not events:
        return plain
    return st.one_of(plain, _event_spec(v, max_depth, max_events))


@st.composite
def traces(draw, vocab: ir.Vocabulary | None = None, max_T: int = 6, max_N: int = 4,
           boolean: bool = False, presence: bool | None = None, min_T: int = 1,
           min_N: int = 1) -> Trace:
    """Random traces over the vocabulary's columns.

    ``presence=None`` draws whether the trace has a presence mask; ``True``
    always adds one, ``False`` never does. Facts at absent frames are zeroed by
    :class:`Trace` itself.
    """
    import numpy as np

    v = vocab or VOCAB
    T = draw(st.integers(min_T, max_T))
    N = draw(st.integers(min_N, max_N))
    C, P, R = len(v.categories), len(v.unary), len(v.binary)
    p = probabilities(boolean)

    def arr(*shape: int) -> np.ndarray:
        size = int(np.prod(shape)) if shape else 1
        return np.array(draw(st.lists(p, min_size=size, max_size=size)), dtype=np.float64).reshape(shape)

    names, unary, binary = arr(N, C), arr(T, N, P), arr(T, N, N, R)
    with_presence = draw(st.booleans()) if presence is None else presence
    present = None
    if with_presence:
        flags = draw(st.lists(st.integers(0, 3).map(bool), min_size=T * N, max_size=T * N))
        present = np.array(flags, dtype=bool).reshape(T, N)
    return Trace.from_arrays(
        names=names, unary=unary, binary=binary, present=present,
        categories=v.categories, unary_preds=v.unary_names, binary_preds=v.binary_names,
        track_ids=tuple(f"t{i}" for i in range(N)),
    )


def boolean_traces(vocab: ir.Vocabulary | None = None, max_T: int = 6, max_N: int = 4,
                   presence: bool | None = None) -> st.SearchStrategy:
    """Traces whose facts are all exactly 0 or 1 (every logic must agree with boolean)."""
    return traces(vocab, max_T, max_N, boolean=True, presence=presence)


# ---------------------------------------------------------------------- long windows (traces up to T = 16)

# Fraction bounds whose products with T - 1 (T <= 16) hit integers, halves and neither.
_LONG_FRACTIONS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0)


@st.composite
def long_windows(draw, max_T: int = 16) -> ir.Window:
    """Frame windows ``[lo, hi]`` with ``lo, hi - lo`` up to ``max_T`` (so also empty and clipped ones),
    unbounded ``[lo, inf]``, and fraction windows."""
    kind = draw(st.sampled_from(("frames", "unbounded", "fraction")))
    if kind == "fraction":
        lo = draw(st.sampled_from(_LONG_FRACTIONS))
        return ir.Window(lo, draw(st.sampled_from([f for f in _LONG_FRACTIONS if f >= lo])), "fraction")
    lo = draw(st.integers(0, max_T))
    if kind == "unbounded":
        return ir.Window(lo, None)
    return ir.Window(lo, lo + draw(st.integers(0, max_T)))


@st.composite
def _windowed(draw, v: ir.Vocabulary, bound: tuple[str, ...], depth: int, max_T: int) -> ir.Formula:
    """A windowed temporal operator (or ``next[k]``, k up to ``max_T + 2``) over smaller formulas,
    whose operands are again windowed (while ``depth`` lasts) or random quantifier-free formulas."""
    def operand():
        if depth > 1 and draw(st.booleans()):
            return draw(_windowed(v, bound, depth - 1, max_T))
        return draw(open_formulas(v, bound, 1, quantifiers=False))

    op = draw(st.sampled_from(("eventually", "always", "until", "release", "next")))
    match op:
        case "eventually":
            return ir.Eventually(operand(), draw(long_windows(max_T)))
        case "always":
            return ir.Always(operand(), draw(long_windows(max_T)))
        case "until":
            return ir.Until(operand(), operand(), draw(long_windows(max_T)))
        case "release":  # as lowering writes it: not (not a until[w] not b)
            return ir.Not(ir.Until(ir.Not(operand()), ir.Not(operand()), draw(long_windows(max_T))))
        case "next":
            return ir.Next(operand(), weak=draw(st.booleans()), steps=draw(st.integers(1, max_T + 2)))
    raise AssertionError(op)


@st.composite
def windowed_specs(draw, vocab: ir.Vocabulary | None = None, max_T: int = 16, depth: int = 2) -> ir.Spec:
    """Specs ``"s"`` whose body is built around windowed operators sized for traces of up to ``max_T``
    frames: one or two windowed formulas under ``and``/``or``, or a ``then`` chain whose head carries a long
    window and whose elements are windowed formulas (events tagged as lowering tags them)."""
    v = vocab or VOCAB
    block = draw(_block(v, (), 2))
    bound = tuple(n for n, _ in block)
    quant = ir.Exists if draw(st.integers(0, 3)) else ir.Forall
    shape = draw(st.sampled_from(("one", "and", "or", "chain")))
    if shape == "chain":
        n = draw(st.integers(1, 3))
        elems = [draw(_windowed(v, bound, depth, max_T)) for _ in range(n)]
        f: ir.Formula = ir.Eventually(elems[-1], event=n - 1)
        for k in range(n - 2, -1, -1):
            f = ir.Eventually(ir.And((elems[k], ir.Next(f))), event=k)
        f = ir.Eventually(f.arg, draw(st.one_of(st.none(), long_windows(max_T))), 0)
        return ir.Spec("s", quant(block, f), tuple(ir.EventInfo(k) for k in range(n)))
    body = draw(_windowed(v, bound, depth, max_T))
    if shape != "one":
        other = draw(_windowed(v, bound, depth, max_T))
        body = ir.And((body, other)) if shape == "and" else ir.Or((body, other))
    return ir.Spec("s", quant(block, body))
