"""The caption's textual scene graph, read from its compiled spec (core IR).

The embedding baselines (S-ViLM, Finsta, HERO) do not evaluate logic; they
align *parts* of the caption with parts of the video. Their papers parse the
caption text (noun phrases, a textual scene graph). We have something better
than a parser: the caption's spec. :func:`caption_graph` walks the core IR
(:mod:`stlspec.ir`) and collects

* **entities**: every variable bound by ``exists`` with its category
  (``exists a: person`` → entity ``a`` of category ``person``). Variables
  without a category are kept (category ``None``): they still have predicates;
* **predicates**: every positive ``Unary``/``Binary`` atom with its argument
  entities, the event it belongs to (the innermost enclosing tagged
  ``Eventually``) and that event's "when" hint;
* **event order**: events are numbered in ``then`` order by the lowering, so
  ``Predicate.event`` is the caption's event order.

Atoms under an odd number of ``not`` are *negated* mentions ("the dog does not
move"); the textual scene graph of a caption has no negative edges, so they are
kept with ``negated=True`` and the baselines skip them (LASER's objective does
use them — that is the point of logic). ``forall`` variables are not entities of
the scene (a rule, not a thing in the video); atoms over them are skipped for
the same reason. ``Eq`` and constants carry no scene-graph content.

:func:`caption_batch` pads the graphs of a batch into index tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, assert_never

import torch

from stlspec import ir

__all__ = ["Entity", "Predicate", "CaptionGraph", "CaptionBatch", "caption_graph", "caption_batch"]


@dataclass(frozen=True, slots=True)
class Entity:
    var: str
    category: str | None


@dataclass(frozen=True, slots=True)
class Predicate:
    """One predicate mention: ``pred(args)``; ``args`` are indices into :attr:`CaptionGraph.entities`."""

    kind: str  # "unary" or "binary"
    pred: str
    args: tuple[int, ...]
    event: int | None  # the caption event it belongs to (then-order), None outside any event
    hint: tuple[float, float] | None  # that event's "when" hint (fractions of the video)
    negated: bool = False


@dataclass(frozen=True, slots=True)
class CaptionGraph:
    entities: tuple[Entity, ...]
    predicates: tuple[Predicate, ...]
    num_events: int

    def positive(self) -> tuple[Predicate, ...]:
        """The predicate mentions a textual scene graph has (not negated)."""
        return tuple(p for p in self.predicates if not p.negated)


def caption_graph(spec: ir.Spec) -> CaptionGraph:
    """The textual scene graph of one compiled caption spec (see the module docstring)."""
    entities: list[Entity] = []
    preds: list[Predicate] = []
    hints = {e.index: e.hint for e in spec.events}

    # An explicit stack, not recursion: a core-IR tree may be nested thousands of levels deep
    # (ir.MAX_IR_DEPTH). Children are pushed in reverse, so nodes are visited in pre-order, left to right.
    Item = tuple[ir.Formula, dict[str, int | None], int | None, bool]  # node, scope, event, negated
    stack: list[Item] = [(spec.formula, {}, None, False)]
    while stack:
        f, scope, event, negated = stack.pop()
        kids: list[Item] = []
        match f:
            case ir.Const() | ir.Eq():
                pass
            case ir.Unary(pred, var):
                arg = scope.get(var)
                if arg is not None:
                    preds.append(Predicate("unary", pred, (arg,), event, hints.get(event), negated))
            case ir.Binary(pred, left, right):
                a, b = scope.get(left), scope.get(right)
                if a is not None and b is not None:
                    preds.append(Predicate("binary", pred, (a, b), event, hints.get(event), negated))
            case ir.Not(arg):
                kids = [(arg, scope, event, not negated)]
            case ir.And(args) | ir.Or(args):
                kids = [(x, scope, event, negated) for x in args]
            case ir.Next(arg) | ir.Always(arg):
                kids = [(arg, scope, event, negated)]
            case ir.Eventually(arg, _, ev):
                kids = [(arg, scope, ev if ev is not None else event, negated)]
            case ir.Until(left, right):
                kids = [(left, scope, event, negated), (right, scope, event, negated)]
            case ir.Exists(vars_, body):
                inner = dict(scope)  # innermost binding wins: scopes are lexical
                for name, cat in vars_:
                    inner[name] = len(entities)
                    entities.append(Entity(name, cat))
                kids = [(body, inner, event, negated)]
            case ir.Forall(vars_, body):
                inner = dict(scope)
                for name, _ in vars_:
                    inner[name] = None  # a rule's variable, not a thing in the scene
                kids = [(body, inner, event, negated)]
            case _:
                assert_never(f)
        stack.extend(reversed(kids))
    return CaptionGraph(tuple(entities), tuple(preds), len(spec.events))


@dataclass
class CaptionBatch:
    """The textual scene graphs of a batch as padded index tensors (``B`` captions).

    ================= ============== ==================================================
    ``entity_cat``    ``[B, E]``     category index of each entity (0 where padded)
    ``entity_mask``   ``[B, E]``     real entity *with a category in the vocabulary*
    ``pred_kind``     ``[B, Q]``     0 unary, 1 binary
    ``pred_id``       ``[B, Q]``     predicate index within its arity's vocabulary
    ``pred_args``     ``[B, Q, 2]``  entity indices (second = first for unary)
    ``pred_mask``     ``[B, Q]``     real, non-negated mention
    ``pred_hint``     ``[B, Q, 2]``  event hint [lo, hi] (``[0, 1]`` without a hint)
    ``pred_event``    ``[B, Q]``     event index in then-order (-1: none)
    ================= ============== ==================================================
    """

    entity_cat: torch.Tensor
    entity_mask: torch.Tensor
    pred_kind: torch.Tensor
    pred_id: torch.Tensor
    pred_args: torch.Tensor
    pred_mask: torch.Tensor
    pred_hint: torch.Tensor
    pred_event: torch.Tensor

    def __len__(self) -> int:
        return self.entity_cat.shape[0]

    def index(self, rows: torch.Tensor | Sequence[int]) -> "CaptionBatch":
        rows = torch.as_tensor(rows, dtype=torch.long)
        return CaptionBatch(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))

    def to(self, device: Any) -> "CaptionBatch":
        return CaptionBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


def caption_batch(graphs: Sequence[CaptionGraph], vocabulary: Any) -> CaptionBatch:
    """Pad ``graphs`` into a :class:`CaptionBatch` with indices into ``vocabulary``.

    A category or predicate the vocabulary does not declare cannot come out of
    a checked spec; it is an error here rather than a silently dropped mention.
    """
    cats = {c: i for i, c in enumerate(vocabulary.categories)}
    unary = {n: i for i, (n, _) in enumerate(vocabulary.unary)}
    binary = {n: i for i, (n, _, _) in enumerate(vocabulary.binary)}
    B = len(graphs)
    E = max((len(g.entities) for g in graphs), default=0) or 1
    Q = max((len(g.predicates) for g in graphs), default=0) or 1
    out = CaptionBatch(
        entity_cat=torch.zeros(B, E, dtype=torch.long), entity_mask=torch.zeros(B, E, dtype=torch.bool),
        pred_kind=torch.zeros(B, Q, dtype=torch.long), pred_id=torch.zeros(B, Q, dtype=torch.long),
        pred_args=torch.zeros(B, Q, 2, dtype=torch.long), pred_mask=torch.zeros(B, Q, dtype=torch.bool),
        pred_hint=torch.tensor([0.0, 1.0]).repeat(B, Q, 1), pred_event=torch.full((B, Q), -1, dtype=torch.long))
    for b, g in enumerate(graphs):
        for e, ent in enumerate(g.entities):
            if ent.category is None:
                continue  # "exists x." without a category: no noun to align
            if ent.category not in cats:
                raise ValueError(f"caption {b}: category {ent.category!r} is not in the vocabulary")
            out.entity_cat[b, e] = cats[ent.category]
            out.entity_mask[b, e] = True
        for q, p in enumerate(g.predicates):
            table = unary if p.kind == "unary" else binary
            if p.pred not in table:
                raise ValueError(f"caption {b}: {p.kind} predicate {p.pred!r} is not in the vocabulary")
            out.pred_kind[b, q] = 0 if p.kind == "unary" else 1
            out.pred_id[b, q] = table[p.pred]
            out.pred_args[b, q, 0] = p.args[0]
            out.pred_args[b, q, 1] = p.args[-1]
            out.pred_mask[b, q] = not p.negated
            if p.hint is not None:
                out.pred_hint[b, q] = torch.tensor(p.hint)
            if p.event is not None:
                out.pred_event[b, q] = p.event
    return out
