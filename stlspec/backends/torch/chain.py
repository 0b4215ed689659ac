"""The fused path: LASER-shaped specs evaluated by one compiled kernel per call.

Specs with at most one quantifier block (``∃`` or ``∀``) over either a ``then`` chain of tagged events
``A_0 then … then A_{E−1}`` (no windows; ``∃`` or no quantifier) or an ``always A_0`` (no window, no
events), whose bodies are propositional -- literals (unary, binary, equality or constant atoms, possibly
negated) under ``and``, ``or``, ``not`` -- are evaluated under the product logic on the CPU by
:mod:`stlspec.backends.torch.chain_kernels` (numba): assignments are processed in chunks of lanes, each
scan step one loop over a chunk's rows in cache, with no tensor per node and no host-side plan, and the
backward pass is hand-derived. :func:`chain_table` recognises the shape; :class:`ChainTables` holds the
evaluator's kernel-shaped specs as flat arrays; :func:`evaluate` runs a call's kernel instances (an
autograd function). The generic engine evaluates everything else, and everything on other devices and
under other logics; both give the same values up to rounding (tested against each other and the
reference interpreter).

numba is optional (the ``fast`` extra): :func:`available` says whether it imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence, assert_never

import numpy as np
import torch

from stlspec import ir

__all__ = ["available", "chain_table", "ChainTables", "Chain", "evaluate"]

#: The largest per-instance literal buffer the kernel allocates (twice, in the backward pass).
_BUFFER_BYTES = 64 << 20
#: The literal buffers of a call are kept from the forward to the backward pass (not read again from the
#: fact tensors) while they take at most this many bytes.
_KEEP_BYTES = 256 << 20

#: Literal kinds (the kernels' ``a_kind``).
UNARY, BINARY, EQ, CONST = 0, 1, 2, 3
#: Body node operations.
LIT, NOT, AND, OR = 0, 1, 2, 3
#: Quantifier of a spec, and its mode.
NONE, EXISTS, FORALL = 0, 1, 2
CHAIN, ALWAYS = 0, 1


@lru_cache(maxsize=1)
def _kernels():
    try:
        from stlspec.backends.torch import chain_kernels
    except ImportError:  # numba is not installed (the ``fast`` extra)
        return None
    return chain_kernels


def available() -> bool:
    """Whether the fused kernels can run (numba imports)."""
    return _kernels() is not None


@dataclass(frozen=True)
class Chain:
    """One spec of the kernel's shape.

    ``cats``: category column per variable (-1 none, -2 unknown); ``quant``: :data:`NONE`,
    :data:`EXISTS` or :data:`FORALL`; ``mode``: :data:`CHAIN` (``bodies`` are the events, in order) or
    :data:`ALWAYS` (one body, no events); ``literals``: ``(kind, column, var, var, negated, value)``,
    each once; ``bodies``: per body its nodes in post-order ``(op, literal or 0, children)``, children
    as indices into the same body's nodes, the root last.
    """

    cats: tuple[int, ...]
    quant: int
    mode: int
    literals: tuple[tuple[int, int, int, int, bool, float], ...]
    bodies: tuple[tuple[tuple[int, int, tuple[int, ...]], ...], ...]


def chain_table(spec: ir.Spec, columns) -> Chain | None:
    """The spec as a :class:`Chain`, or None when it is not of the kernel's shape: an optional ∃ or ∀
    block (one) over either a ``then`` chain of tagged events without windows (∃ or no quantifier) or an
    ``always`` without a window and without events, whose bodies are propositional (literals under
    ``and``, ``or``, ``not``)."""
    f = spec.formula
    cats: tuple[int, ...] = ()
    scope: dict[str, int] = {}
    quant = NONE
    if isinstance(f, (ir.Exists, ir.Forall)):
        ccol = {c: i for i, c in enumerate(columns.categories)}
        names = [v for v, _ in f.vars]
        if not names or len(set(names)) != len(names):
            return None
        scope = {v: i for i, v in enumerate(names)}
        cats = tuple(-1 if c is None else ccol.get(c, -2) for _, c in f.vars)
        quant = EXISTS if isinstance(f, ir.Exists) else FORALL
        f = f.body
    cols = ({p: i for i, p in enumerate(columns.unary)}, {p: i for i, p in enumerate(columns.binary)})
    lits: dict = {}
    bodies = []
    if isinstance(f, ir.Always):
        if f.window is not None or spec.events:
            return None
        body = _program(f.arg, scope, cols, lits)
        if body is None:
            return None
        return Chain(cats, quant, ALWAYS, tuple(lits), (body,))
    if quant == FORALL:  # witnesses of events under ∀ are not the kernel's
        return None
    while True:
        if not (isinstance(f, ir.Eventually) and f.window is None and f.event == len(bodies)):
            return None
        body, nxt = f.arg, None
        if (isinstance(body, ir.And) and len(body.args) == 2 and isinstance(body.args[1], ir.Next)
                and not body.args[1].weak and body.args[1].steps == 1 and isinstance(body.args[1].arg, ir.Eventually)
                and body.args[1].arg.event is not None):
            body, nxt = (body.args[0], body.args[1].arg)
        prog = _program(body, scope, cols, lits)
        if prog is None:
            return None
        bodies.append(prog)
        if nxt is None:
            break
        f = nxt
    if len(bodies) != len(spec.events):
        return None
    return Chain(cats, quant, CHAIN, tuple(lits), tuple(bodies))


def _program(f: ir.Formula, scope: dict, cols: tuple, lits: dict) -> tuple | None:
    """A propositional formula's nodes in post-order (see :class:`Chain`), or None when it is not one.
    Literals get indices in ``lits`` (shared by the spec's bodies)."""
    nodes: list = []
    stack: list = [(f, False)]
    done: list = []  # node index of each finished subtree, in post-order
    while stack:
        g, expanded = stack.pop()
        match g:
            case ir.And(args) | ir.Or(args):
                if not expanded:
                    stack.append((g, True))
                    stack.extend((a, False) for a in reversed(args))
                    continue
                kids = tuple(done[-len(args):])
                del done[-len(args):]
                nodes.append((AND if isinstance(g, ir.And) else OR, 0, kids))
            case ir.Not(arg) if not _is_atom(arg):
                if not expanded:
                    stack.append((g, True))
                    stack.append((arg, False))
                    continue
                nodes.append((NOT, 0, (done.pop(),)))
            case ir.Not() | ir.Const() | ir.Unary() | ir.Binary() | ir.Eq():
                neg = isinstance(g, ir.Not)  # a negated atom is one literal
                lit = _literal(g.arg if neg else g, neg, scope, cols)
                if lit is None:
                    return None
                nodes.append((LIT, lits.setdefault(lit, len(lits)), ()))
            case ir.Next() | ir.Eventually() | ir.Always() | ir.Until() | ir.Exists() | ir.Forall():
                return None  # not propositional: the generic engine's
            case _:
                assert_never(g)
        done.append(len(nodes) - 1)
    return tuple(nodes)


def _is_atom(f: ir.Formula) -> bool:
    return isinstance(f, (ir.Const, ir.Unary, ir.Binary, ir.Eq))


def _literal(g: ir.Formula, neg: bool, scope: dict, cols: tuple) -> tuple | None:
    ucol, bcol = cols
    match g:
        case ir.Const(v):
            return (CONST, 0, 0, 0, neg, 1.0 if v else 0.0)
        case ir.Unary(p, v) if v in scope:
            return (UNARY, ucol[p], scope[v], 0, neg, 0.0) if p in ucol else (CONST, 0, 0, 0, neg, 0.0)
        case ir.Binary(p, a, b) if a in scope and b in scope:
            return (BINARY, bcol[p], scope[a], scope[b], neg, 0.0) if p in bcol else (CONST, 0, 0, 0, neg, 0.0)
        case ir.Eq(a, b) if a in scope and b in scope:
            return (CONST, 0, 0, 0, neg, 1.0) if a == b else (EQ, 0, scope[a], scope[b], neg, 0.0)
    return None


class ChainTables:
    """An evaluator's kernel-shaped specs as the kernels' flat arrays (row ``s`` for spec ``s``; unused
    rows for the other specs)."""

    def __init__(self, chains: Sequence[Chain | None]):
        S = len(chains)
        ok = [c for c in chains if c is not None]
        V = max((len(c.cats) for c in ok), default=0)
        nb = max((len(c.bodies) for c in ok), default=0)
        self.is_chain = np.asarray([c is not None for c in chains], dtype=bool)
        self.nv = np.zeros(S, np.int64)
        self.ne = np.zeros(S, np.int64)  # events (witness rows): the bodies of a chain, none for always
        self.nb = np.zeros(S, np.int64)  # bodies
        self.quant = np.zeros(S, np.int64)
        self.mode = np.zeros(S, np.int64)
        self.cat = np.full((S, max(V, 1)), -1, np.int64)
        self.lit = np.zeros((S, 2), np.int64)  # literal range
        self.body = np.zeros((S, nb + 1), np.int64)  # node ranges of the bodies
        lits: list = []
        nodes: list = []
        kids: list = []
        for s, c in enumerate(chains):
            if c is None:
                continue
            self.nv[s], self.nb[s], self.quant[s], self.mode[s] = len(c.cats), len(c.bodies), c.quant, c.mode
            self.ne[s] = len(c.bodies) if c.mode == CHAIN else 0
            self.cat[s, :len(c.cats)] = c.cats
            self.lit[s] = len(lits), len(lits) + len(c.literals)
            lits.extend(c.literals)
            for k, body in enumerate(c.bodies):
                self.body[s, k] = base = len(nodes)
                for op, arg, ch in body:
                    nodes.append((op, arg, len(kids), len(kids) + len(ch)))
                    kids.extend(base + x for x in ch)
            self.body[s, len(c.bodies):] = len(nodes)
        self.J = max((len(c.literals) for c in ok), default=1)
        a = np.asarray(lits, dtype=np.float64).reshape(-1, 6)
        self.kind, self.col, self.v1, self.v2 = (np.ascontiguousarray(a[:, k], dtype=np.int64) for k in range(4))
        self.neg = np.ascontiguousarray(a[:, 4] != 0)
        self.val = np.ascontiguousarray(a[:, 5])
        n = np.asarray(nodes, dtype=np.int64).reshape(-1, 4)
        self.op, self.arg, self.k0, self.k1 = (np.ascontiguousarray(n[:, k]) for k in range(4))
        self.kids = np.asarray(kids, dtype=np.int64)

    def fits(self, N: int, T: int) -> bool:
        """Whether the kernel's per-instance buffers (literals × frames × track pairs, the gradients' in
        float64) stay small (64 MB); beyond that the generic engine, which chunks its work, takes the call."""
        return self.J * (T + 1) * N * N * 8 <= _BUFFER_BYTES

    def spec_args(self) -> tuple:
        return (self.nv, self.ne, self.nb, self.quant, self.mode, self.cat, self.lit, self.body, self.kind,
                self.col, self.v1, self.v2, self.neg, self.val, self.op, self.arg, self.k0, self.k1, self.kids)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().numpy()


class _ChainFn(torch.autograd.Function):
    """``(values [K], witness scores [K, E, T])`` of kernel instances; the backward pass is the kernel's.

    Every buffer is a torch tensor handed to the kernels as a numpy view, so the allocator (and the
    profiler's memory accounting) sees them: the folds, the literal buffers (kept from the forward pass
    for the backward one, one per instance, while they take at most :data:`_KEEP_BYTES`), and the
    gradients.
    """

    @staticmethod
    def forward(ctx, names, unary, binary, call):
        tables, inst, T_b, tm, present, prune_zero, E = call
        K, T, N = len(inst[0]), unary.shape[1], unary.shape[2]
        f64 = {"dtype": torch.float64}
        value, score = torch.zeros(K, **f64), torch.zeros(K, E, T, **f64)
        folds = (torch.ones(K, **f64), torch.zeros(K, dtype=torch.int64), torch.ones(K, max(E, 1), T, **f64),
                 torch.zeros(K, max(E, 1), T, dtype=torch.int64))
        # The literal buffers hold fact values (or 1 − fact) in the facts' dtype, exactly.
        per = tables.J * (T + 1) * N * N * unary.element_size()
        lb = torch.empty(K if K * per <= _KEEP_BYTES else 1, tables.J * N * N, T + 1, dtype=unary.dtype)
        video = _video(T_b, tm, present, names, unary, binary, prune_zero)
        _kernels().chain_forward(inst, video, tables.spec_args(), value.numpy(), score.numpy(),
                                 *(x.numpy() for x in folds), lb.numpy())
        ctx.call, ctx.folds, ctx.lb = call, folds, lb
        ctx.save_for_backward(names, unary, binary)
        dt = unary.dtype
        return value.to(dt), score.to(dt)

    @staticmethod
    @torch.autograd.function.once_differentiable  # the kernel's backward is not itself differentiable
    def backward(ctx, g_value, g_score):
        names, unary, binary = ctx.saved_tensors
        tables, inst, T_b, tm, present, prune_zero, E = ctx.call
        K, T, N = len(inst[0]), unary.shape[1], unary.shape[2]
        gv = np.zeros(K) if g_value is None else _np(g_value).astype(np.float64)
        gs = np.zeros((K, max(E, 1), T)) if g_score is None else _np(g_score).astype(np.float64)
        want_names, want_facts = ctx.needs_input_grad[0], ctx.needs_input_grad[1] or ctx.needs_input_grad[2]

        def grad(x: torch.Tensor, want: bool) -> torch.Tensor:
            return torch.zeros(x.shape if want else (1,) * x.dim(), dtype=x.dtype)

        g_names, g_unary, g_binary = grad(names, want_names), grad(unary, want_facts), grad(binary, want_facts)
        gL = torch.zeros(tables.J * N * N if want_facts else 1, T + 1, dtype=torch.float64)
        video = _video(T_b, tm, present, names, unary, binary, prune_zero)
        _kernels().chain_backward(inst, video, tables.spec_args(), tuple(x.numpy() for x in ctx.folds), gv, gs,
                                  want_names, want_facts, g_names.numpy(), g_unary.numpy(), g_binary.numpy(),
                                  ctx.lb.numpy(), gL.numpy())
        return (g_names if want_names else None, g_unary if ctx.needs_input_grad[1] else None,
                g_binary if ctx.needs_input_grad[2] else None, None)


def _video(T_b, tm, present, names, unary, binary, prune_zero) -> tuple:
    has_present = present is not None
    pres = present if has_present else np.zeros((1, 1, 1), np.bool_)
    return (T_b, tm, pres, has_present, _np(names), _np(unary), _np(binary), prune_zero)


def evaluate(tables: ChainTables, sid: np.ndarray, vid: np.ndarray, wit: np.ndarray, names: torch.Tensor,
             unary: torch.Tensor, binary: torch.Tensor, T_b: np.ndarray, tm: np.ndarray,
             present: torch.Tensor | None, prune_zero: bool, E: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Values ``[K]`` and witness scores ``[K, E, T]`` (0 for instances not flagged in ``wit``) of the chain
    instances ``(sid[k], vid[k])`` (CPU tensors, contiguous)."""
    B, T, N = unary.shape[:3]
    pres = None if present is None else present.reshape(B, T, N).numpy()
    inst = (np.ascontiguousarray(sid, np.int64), np.ascontiguousarray(vid, np.int64),
            np.ascontiguousarray(wit, np.bool_))
    call = (tables, inst, np.ascontiguousarray(T_b, np.int64), np.ascontiguousarray(tm, np.bool_), pres,
            bool(prune_zero), int(E))
    return _ChainFn.apply(names, unary, binary, call)
