"""Canonicalisation: each core-IR spec becomes a flat, post-ordered table of nodes.

This is the host-side, batch-independent half of the torch engine (the other half,
:mod:`stlspec.backends.torch.engine`, lays many specs' tables out over a batch and runs
them). A spec's :class:`SpecTable` lists every node of its formula *and* the extra
nodes that compute its events' witness scores (the ``Q`` form of ``stlspec/ir.py``),
children before parents, each with:

* an :class:`Op` (the kernel that computes it) and its children;
* ``vars``: the variables the node's value depends on (its free variables), by id in
  binding order. A node's value is laid out as one *row* per assignment of ``vars``
  (injective within each quantifier block), so an atom over ``a`` alone is evaluated
  over ``N`` rows even under a three-variable block: the rest is broadcast when it
  meets a node with more variables (exact work reduction);
* an :class:`Axis`: ``ONE`` (only ``t = 0`` is ever read: nodes no temporal operator
  encloses), ``TIME`` (a value per frame) or ``Q`` (a witness score per pinned frame
  ``q``, read at ``t = 0``);
* op parameters (atom kind, column and argument variables; window; ``next`` steps and
  strength; a quantifier's block and category columns; the event of a witness root).

The traversal is iterative (an explicit stack), so nesting depth is bounded by memory,
not by Python's recursion limit. The only per-spec state kept is this table; every
per-batch structure is built from it by the engine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import assert_never

from stlspec import ir
from stlspec.backends import unsupported

__all__ = ["Op", "Axis", "AtomKind", "Node", "SpecTable", "canonicalize"]


class Op(enum.IntEnum):
    """The kernel that computes a node (see :mod:`stlspec.backends.torch.engine`)."""

    ATOM = 0  #: a fact, ``==`` or constant, gathered per row
    NOT = 1
    AND = 2  #: n-ary ∧ of the children
    OR = 3
    NEXT = 4  #: ``steps`` frames ahead, strong or weak
    EVENTUALLY = 5  #: window fold (∨) at every frame
    ALWAYS = 6
    EVENTUALLY0 = 7  #: window fold (∨) at ``t = 0`` only: one reduction
    ALWAYS0 = 8
    UNTIL = 9
    EXISTS = 10  #: fold over a block's assignments (a segment reduction)
    FORALL = 11
    PIN = 12  #: witnesses: the child at ``q`` masked to ``q ∈ W(0)`` of a window, and ``q < T_b``
    PREFIX = 13  #: witnesses: ``Pre_{j+1}(q) = ∨_{s : q ∈ W(s+1)} x(s)`` (``x`` masked to real frames)


class Axis(enum.IntEnum):
    """What a node's last tensor dimension means."""

    ONE = 0  #: width 1: only ``t = 0`` is needed
    TIME = 1  #: width T: the value at every frame ``t``
    Q = 2  #: width T: a witness score per pinned frame ``q`` (at ``t = 0``)


class AtomKind(enum.IntEnum):
    UNARY = 0
    BINARY = 1
    EQ = 2
    CONST = 3


@dataclass(slots=True)
class Node:
    op: Op
    kids: tuple[int, ...]
    vars: tuple[int, ...]
    axis: Axis
    #: children are read as stored (witness-chain nodes whose ``TIME`` axis *is* ``q``)
    raw: bool = False
    # ATOM
    kind: AtomKind = AtomKind.CONST
    col: int = 0
    value: float = 0.0
    args: tuple[int, ...] = ()
    # NEXT
    steps: int = 1
    weak: bool = False
    # EVENTUALLY/ALWAYS/UNTIL/PIN/PREFIX
    window: ir.Window | None = None
    # EXISTS/FORALL: bound variable ids and their category columns (-1: none, -2: unknown category)
    block: tuple[int, ...] = ()
    cats: tuple[int, ...] = ()
    # EVENTUALLY: the event it is tagged with
    event: int | None = None
    events: frozenset = frozenset()
    #: height: 0 for atoms, 1 + max over children otherwise (the engine's level)
    level: int = 0


@dataclass(slots=True)
class SpecTable:
    """One spec, canonicalised: nodes (children first), its root and one witness root per event."""

    name: str
    nodes: list[Node]
    root: int
    num_vars: int
    var_block: tuple[int, ...]  #: block number of each variable
    witness_roots: dict[int, int] = field(default_factory=dict)  #: event -> node (axis Q, no variables)
    num_events: int = 0


_TEMPORAL = (ir.Next, ir.Eventually, ir.Always, ir.Until)


def canonicalize(spec: ir.Spec, columns, *, witnesses: bool = True) -> SpecTable:
    """The node table of ``spec`` (columns from ``columns``; missing predicates read 0)."""
    ucol = {p: i for i, p in enumerate(columns.unary)}
    bcol = {p: i for i, p in enumerate(columns.binary)}
    ccol = {c: i for i, c in enumerate(columns.categories)}
    nodes: list[Node] = []
    var_block: list[int] = []
    n_blocks = 0

    def add(node: Node) -> int:
        node.level = 1 + max((nodes[k].level for k in node.kids), default=-1)
        nodes.append(node)
        return len(nodes) - 1

    # Iterative post-order: (formula, scope, temporal-above, phase, child results).
    # scope maps variable names to ids; phase 0 = expand, 1 = build.
    stack: list = [(spec.formula, {}, False, 0, None)]
    results: list[int] = []
    while stack:
        f, scope, temporal, phase, extra = stack.pop()
        axis = Axis.TIME if temporal else Axis.ONE
        if phase == 0:
            match f:
                case ir.Const() | ir.Unary() | ir.Binary() | ir.Eq():
                    results.append(add(_atom(f, scope, axis, ucol, bcol)))
                case ir.Not(arg) | ir.Next(arg):
                    inner = temporal or isinstance(f, ir.Next)
                    stack.append((f, scope, temporal, 1, None))
                    stack.append((arg, scope, inner, 0, None))
                case ir.Eventually(arg) | ir.Always(arg):
                    stack.append((f, scope, temporal, 1, None))
                    stack.append((arg, scope, True, 0, None))
                case ir.And(args) | ir.Or(args):
                    stack.append((f, scope, temporal, 1, None))
                    for a in reversed(args):
                        stack.append((a, scope, temporal, 0, None))
                case ir.Until(left, right):
                    stack.append((f, scope, temporal, 1, None))
                    stack.append((right, scope, True, 0, None))
                    stack.append((left, scope, True, 0, None))
                case ir.Exists(block, body) | ir.Forall(block, body):
                    inner = dict(scope)
                    ids = []
                    for v, _ in block:
                        inner[v] = len(var_block)
                        ids.append(len(var_block))
                        var_block.append(n_blocks)
                    n_blocks += 1
                    stack.append((f, scope, temporal, 1, tuple(ids)))
                    stack.append((body, inner, temporal, 0, None))
                case _:
                    assert_never(f)
            continue
        match f:
            case ir.Not():
                c = results.pop()
                results.append(add(Node(Op.NOT, (c,), nodes[c].vars, axis, events=nodes[c].events)))
            case ir.Next(_, weak):
                c = results.pop()
                steps = int(getattr(f, "steps", 1))
                results.append(add(Node(Op.NEXT, (c,), nodes[c].vars, Axis.TIME, steps=steps, weak=weak,
                                        events=nodes[c].events)))
            case ir.Eventually(_, window, event):
                c = results.pop()
                op = Op.EVENTUALLY if temporal else Op.EVENTUALLY0
                ev = nodes[c].events | ({event} if event is not None else frozenset())
                results.append(add(Node(op, (c,), nodes[c].vars, axis, window=window, event=event,
                                        events=frozenset(ev))))
            case ir.Always(_, window):
                c = results.pop()
                op = Op.ALWAYS if temporal else Op.ALWAYS0
                results.append(add(Node(op, (c,), nodes[c].vars, axis, window=window, events=nodes[c].events)))
            case ir.And(args) | ir.Or(args):
                kids = tuple(results[len(results) - len(args):])
                del results[len(results) - len(args):]
                op = Op.AND if isinstance(f, ir.And) else Op.OR
                results.append(add(Node(op, kids, _union(nodes, kids), axis,
                                        events=frozenset().union(*(nodes[k].events for k in kids)))))
            case ir.Until(_, _, window):
                r = results.pop()
                lft = results.pop()
                results.append(add(Node(Op.UNTIL, (lft, r), _union(nodes, (lft, r)), Axis.TIME, window=window,
                                        events=nodes[lft].events | nodes[r].events)))
            case ir.Exists(block, _) | ir.Forall(block, _):
                c = results.pop()
                ids = extra
                cats = tuple(-1 if cat is None else ccol.get(cat, -2) for _, cat in block)
                op = Op.EXISTS if isinstance(f, ir.Exists) else Op.FORALL
                free = tuple(v for v in nodes[c].vars if v not in ids)
                results.append(add(Node(op, (c,), free, axis, block=ids, cats=cats, events=nodes[c].events)))
            case _:
                raise AssertionError(f"unexpected node in the build phase: {type(f).__name__}")
    (root,) = results
    table = SpecTable(spec.name, nodes, root, len(var_block), tuple(var_block),
                      num_events=max((e.index for e in spec.events), default=-1) + 1)
    if witnesses:
        _Witnesses(table).build()
    return table


def _union(nodes: list[Node], kids: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(set().union(*(nodes[k].vars for k in kids))))


def _atom(f, scope: dict, axis: Axis, ucol: dict, bcol: dict) -> Node:
    match f:
        case ir.Const(v):
            return Node(Op.ATOM, (), (), axis, kind=AtomKind.CONST, value=1.0 if v else 0.0)
        case ir.Unary(p, v):
            if p not in ucol:  # a predicate the tensors do not have is false, as in the reference
                return Node(Op.ATOM, (), (), axis, kind=AtomKind.CONST, value=0.0)
            return Node(Op.ATOM, (), (scope[v],), axis, kind=AtomKind.UNARY, col=ucol[p], args=(scope[v],))
        case ir.Binary(p, a, b):
            if p not in bcol:
                return Node(Op.ATOM, (), (), axis, kind=AtomKind.CONST, value=0.0)
            args = (scope[a], scope[b])
            return Node(Op.ATOM, (), tuple(sorted(set(args))), axis, kind=AtomKind.BINARY, col=bcol[p], args=args)
        case ir.Eq(a, b):
            if a == b:
                return Node(Op.ATOM, (), (), axis, kind=AtomKind.CONST, value=1.0)
            args = (scope[a], scope[b])
            return Node(Op.ATOM, (), tuple(sorted(args)), axis, kind=AtomKind.EQ, args=args)
    raise AssertionError(type(f).__name__)


class _Witnesses:
    """Adds, for each event, the nodes of its witness score ``s_e(q)`` (``stlspec/ir.py``).

    The event is pinned on the ``Q`` axis and propagated through the positive skeleton
    above it (``and``/``or``/quantifiers, read at ``t = 0``); siblings without the event
    are read at ``t = 0`` and broadcast over ``q``. Later events of a ``then`` chain use
    the factored form ``Pre_k(q) ∧ Body_k(q)`` with ``Pre`` a forward prefix fold; the
    ``Pre_j`` nodes of a chain are shared by the witnesses of all its later events.
    """

    def __init__(self, table: SpecTable):
        self.t = table
        self.nodes = table.nodes
        self.pre: dict = {}

    def add(self, node: Node) -> int:
        node.level = 1 + max((self.nodes[k].level for k in node.kids), default=-1)
        self.nodes.append(node)
        return len(self.nodes) - 1

    def build(self) -> None:
        for e in sorted(self.nodes[self.t.root].events):
            self.t.witness_roots[e] = self.pinned(self.t.root, e)

    def pinned(self, start: int, event: int) -> int:
        # Iterative over the positive skeleton (only and/or/quantifiers lie above an event).
        path = [start]
        while True:
            n = self.nodes[path[-1]]
            if n.op == Op.EVENTUALLY0:
                break
            if n.op not in (Op.AND, Op.OR, Op.EXISTS, Op.FORALL):
                raise unsupported("torch", f"an event below a {n.op.name.lower()} node (events must sit at "
                                           "positive top-level positions or continue a then chain)")
            (nxt,) = [k for k in n.kids if event in self.nodes[k].events][:1] or (None,)
            if nxt is None:
                raise AssertionError("event not found below the node")
            path.append(nxt)
        head = path[-1]
        out = self.head(head, event)
        for idx in reversed(path[:-1]):
            n = self.nodes[idx]
            kids = tuple(out if k == path[path.index(idx) + 1] else k for k in n.kids)
            vars_ = n.vars if n.op in (Op.EXISTS, Op.FORALL) else _union(self.nodes, kids)
            out = self.add(Node(n.op, kids, vars_, Axis.Q, block=n.block, cats=n.cats))
        return out

    def head(self, head: int, event: int) -> int:
        h = self.nodes[head]
        if h.event == event:
            c = h.kids[0]
            return self.add(Node(Op.PIN, (c,), self.nodes[c].vars, Axis.Q, raw=True, window=h.window))
        chain = self.chain(head, event)
        pre = None
        for j, idx in enumerate(chain[:-1]):
            key = (head, chain[j + 1])
            if key in self.pre:
                pre = self.pre[key]
                continue
            a = self.nodes[self.nodes[idx].kids[0]].kids[0]  # A_j
            if pre is None:
                x = self.add(Node(Op.PIN, (a,), self.nodes[a].vars, Axis.Q, raw=True, window=h.window))
            else:
                kids = (pre, a)
                x = self.add(Node(Op.AND, kids, _union(self.nodes, kids), Axis.Q, raw=True))
            nxt = self.nodes[chain[j + 1]]
            pre = self.add(Node(Op.PREFIX, (x,), self.nodes[x].vars, Axis.Q, raw=True, window=nxt.window))
            self.pre[key] = pre
        body = self.nodes[chain[-1]].kids[0]
        kids = (pre, body)
        return self.add(Node(Op.AND, kids, _union(self.nodes, kids), Axis.Q, raw=True))

    def chain(self, head: int, event: int) -> list[int]:
        out, cur = [head], head
        while self.nodes[cur].event != event:
            body = self.nodes[self.nodes[cur].kids[0]]
            ok = (body.op == Op.AND and len(body.kids) == 2 and self.nodes[body.kids[1]].op == Op.NEXT
                  and not self.nodes[body.kids[1]].weak and self.nodes[body.kids[1]].steps == 1
                  and self.nodes[self.nodes[body.kids[1]].kids[0]].op == Op.EVENTUALLY
                  and event not in self.nodes[body.kids[0]].events)
            if not ok:
                raise unsupported("torch", "an event that is neither at a top-level position nor the "
                                           "continuation of a then chain")
            cur = self.nodes[body.kids[1]].kids[0]
            out.append(cur)
        return out
