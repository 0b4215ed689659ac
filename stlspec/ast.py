"""The surface AST: one immutable tree for everything the parser reads.

Nodes are frozen, slotted dataclasses with tuple children. Every node carries a
``span`` (where it came from in the source) that is excluded from equality and
``repr`` so that ``parse(fmt(ast)) == ast`` compares structure only. The checker
reads this tree; :mod:`stlspec.lowering` turns it into the core IR
(:mod:`stlspec.ir`) that every backend consumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, TypeVar, Union, assert_never

from stlspec.span import Span, NO_SPAN
from stlspec.traverse import MAX_DEPTH, depth as _depth, first_beyond as _first_beyond, structural, traverse, walk as _walk

__all__ = [
    "Program", "Include", "CategoryDecl", "PredicateDecl", "Spec",
    "Binder", "Name", "Window", "Hint",
    "BoolLit", "Atom", "VarEq", "Not", "And", "Or", "Implies",
    "Next", "Eventually", "Always", "Until", "Release",
    "Quantified", "Sequence", "Event", "Hinted",
    "Formula", "Item", "HINT_NAMES", "ANY", "MAX_DEPTH",
    "children", "with_children", "fold", "map_formula", "walk", "depth", "too_deep",
]

R = TypeVar("R")

#: The category name that matches every category ("no category constraint").
ANY = "any"

#: Named "when" hints and the fraction-of-video interval each stands for.
HINT_NAMES: dict[str, tuple[float, float]] = {
    "early": (0.0, 1.0 / 3.0),
    "middle": (1.0 / 3.0, 2.0 / 3.0),
    "mid": (1.0 / 3.0, 2.0 / 3.0),
    "late": (2.0 / 3.0, 1.0),
    "anytime": (0.0, 1.0),
}


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Name:
    """A predicate or category name. ``text`` is the name itself (quotes removed)."""

    text: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Window:
    """``[lo, hi]`` on a temporal operator.

    ``unit`` is ``"frames"`` (integer offsets; ``hi is None`` means unbounded,
    written ``inf``) or ``"fraction"`` (fractions of the video length, written
    with a decimal point: ``[0.0, 0.5]``).
    """

    lo: int | float
    hi: int | float | None
    unit: str = "frames"
    span: Span = _span()

    def __post_init__(self) -> None:
        if self.unit not in ("frames", "fraction"):
            raise ValueError(f"window unit must be 'frames' or 'fraction', not {self.unit!r}")


@dataclass(frozen=True, slots=True)
class Hint:
    """A "when" hint: ``@early`` (``name`` set) or ``@[0.25, 0.5]`` (``lo``/``hi`` set)."""

    name: str | None = None
    lo: float | None = None
    hi: float | None = None
    span: Span = _span()

    def __post_init__(self) -> None:
        if (self.name is None) == (self.lo is None or self.hi is None):
            raise ValueError("a hint is either named or an interval")

    def interval(self) -> tuple[float, float] | None:
        """The fraction interval, or ``None`` for an unknown hint name."""
        if self.name is not None:
            return HINT_NAMES.get(self.name)
        return (float(self.lo), float(self.hi))  # type: ignore[arg-type]


# ---------------------------------------------------------------- formulas


@dataclass(frozen=True, slots=True)
class BoolLit:
    value: bool
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Atom:
    """``pred(x)`` or ``pred(x, y)``; the checker decides unary vs binary."""

    pred: Name
    args: tuple[str, ...]
    span: Span = _span()
    arg_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VarEq:
    """``x == y`` (``equal=True``) or ``x != y``."""

    left: str
    right: str
    equal: bool = True
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Not:
    arg: "Formula"
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class And:
    args: tuple["Formula", ...]
    span: Span = _span()

    def __post_init__(self) -> None:
        if len(self.args) < 2:
            raise ValueError("And needs at least two operands")


@dataclass(frozen=True, slots=True)
class Or:
    args: tuple["Formula", ...]
    span: Span = _span()

    def __post_init__(self) -> None:
        if len(self.args) < 2:
            raise ValueError("Or needs at least two operands")


@dataclass(frozen=True, slots=True)
class Implies:
    left: "Formula"
    right: "Formula"
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Next:
    """``next φ`` / ``weak next φ``; ``steps`` is ``k`` in ``next[k] φ``."""

    arg: "Formula"
    weak: bool = False
    steps: int = 1
    span: Span = _span()
    steps_given: bool = field(default=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Eventually:
    arg: "Formula"
    window: Window | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Always:
    arg: "Formula"
    window: Window | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Until:
    left: "Formula"
    right: "Formula"
    window: Window | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Release:
    left: "Formula"
    right: "Formula"
    window: Window | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Binder:
    """``x: category`` in a quantifier; ``category`` is ``None`` when omitted (= ``any``)."""

    var: str
    category: Name | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Quantified:
    """``exists``/``forall`` over one block of binders (pairwise distinct tracks)."""

    kind: str  # "exists" | "forall"
    binders: tuple[Binder, ...]
    body: "Formula"
    span: Span = _span()

    def __post_init__(self) -> None:
        if self.kind not in ("exists", "forall"):
            raise ValueError(f"quantifier kind must be exists/forall, not {self.kind!r}")
        if not self.binders:
            raise ValueError("a quantifier binds at least one variable")


@dataclass(frozen=True, slots=True)
class Event:
    """One element of a ``then`` chain, with its optional "when" hint."""

    formula: "Formula"
    hint: Hint | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Sequence:
    """``A then B then C``: A at some t1, B at some t2 > t1, C at some t3 > t2."""

    events: tuple[Event, ...]
    span: Span = _span()

    def __post_init__(self) -> None:
        if len(self.events) < 2:
            raise ValueError("a sequence has at least two events")


@dataclass(frozen=True, slots=True)
class Hinted:
    """``φ @hint`` outside a ``then`` chain; the checker requires φ to be ``eventually``."""

    formula: "Formula"
    hint: Hint
    span: Span = _span()


Formula = Union[
    BoolLit, Atom, VarEq, Not, And, Or, Implies, Next, Eventually, Always,
    Until, Release, Quantified, Sequence, Hinted,
]


# ---------------------------------------------------------------- top level


@dataclass(frozen=True, slots=True)
class Include:
    """``include "vocab.stl"``: read declarations from another file."""

    path: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class CategoryDecl:
    """``category person, cup, "dining table"``."""

    names: tuple[Name, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class PredicateDecl:
    """``unary walking(person)`` or ``binary holding(person, any)``."""

    kind: str  # "unary" | "binary"
    name: Name
    params: tuple[Name, ...]
    span: Span = _span()

    def __post_init__(self) -> None:
        expected = {"unary": 1, "binary": 2}.get(self.kind)
        if expected is None:
            raise ValueError(f"predicate kind must be unary/binary, not {self.kind!r}")
        if len(self.params) != expected:
            raise ValueError(f"a {self.kind} predicate has {expected} parameter(s)")


@dataclass(frozen=True, slots=True)
class Spec:
    """``spec name "caption" { formula }``."""

    name: str
    formula: Formula
    caption: str | None = None
    span: Span = _span()
    name_span: Span = field(default=NO_SPAN, compare=False, repr=False)


Item = Union[Include, CategoryDecl, PredicateDecl, Spec]


@dataclass(frozen=True, slots=True)
class Program:
    """A whole ``.stl`` file: declarations and specs in source order."""

    items: tuple[Item, ...]
    path: str = field(default="<string>", compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)
    #: ``(offset, text)`` of each comment, kept so that ``fmt`` does not lose them.
    comments: tuple[tuple[int, str], ...] = field(default=(), compare=False, repr=False)

    @property
    def specs(self) -> tuple[Spec, ...]:
        return tuple(i for i in self.items if isinstance(i, Spec))


# ---------------------------------------------------------------- traversal
#
# The one traversal of formula trees (:mod:`stlspec.traverse` does the walking,
# without recursion); every stage that walks formulas uses these. Adding a
# formula class means adding it to ``children`` and ``with_children`` below,
# and the type checker (``assert_never``) points at every other ``match``.


def children(f: Formula) -> tuple[Formula, ...]:
    """The direct sub-formulas of ``f`` (a ``then`` chain's are its events' formulas)."""
    match f:
        case BoolLit() | Atom() | VarEq():
            return ()
        case Not(arg) | Next(arg) | Eventually(arg) | Always(arg):
            return (arg,)
        case And(args) | Or(args):
            return args
        case Implies(left, right) | Until(left, right) | Release(left, right):
            return (left, right)
        case Quantified():
            return (f.body,)
        case Sequence(events):
            return tuple(e.formula for e in events)
        case Hinted(formula):
            return (formula,)
        case _:
            assert_never(f)


def with_children(f: Formula, new: tuple[Formula, ...]) -> Formula:
    """``f`` with its direct sub-formulas replaced by ``new`` (``f`` itself when nothing changed)."""
    if all(a is b for a, b in zip(new, children(f))):
        return f
    match f:
        case BoolLit() | Atom() | VarEq():
            return f
        case Not() | Next() | Eventually() | Always():
            return replace(f, arg=new[0])
        case And() | Or():
            return replace(f, args=new)
        case Implies() | Until() | Release():
            return replace(f, left=new[0], right=new[1])
        case Quantified():
            return replace(f, body=new[0])
        case Sequence(events):
            return replace(f, events=tuple(e if g is e.formula else replace(e, formula=g) for e, g in zip(events, new)))
        case Hinted():
            return replace(f, formula=new[0])
        case _:
            assert_never(f)


def fold(f: Formula, leave: Callable[[Formula, Any, tuple], R],
         enter: Callable[[Formula, Any], tuple | None] | None = None, ctx: Any = None) -> R:
    """Post-order fold of ``f`` (see :func:`stlspec.traverse.traverse`; never recurses)."""
    return traverse(f, children, leave, enter, ctx)


def map_formula(f: Formula, fn: Callable[[Formula], Formula]) -> Formula:
    """Rebuild ``f`` bottom-up, applying ``fn`` to every node after its children.

    Nodes whose children did not change are reused, not copied.
    """
    return fold(f, lambda node, _ctx, kids: fn(with_children(node, kids)))


def walk(f: Formula) -> Iterator[Formula]:
    """Pre-order iteration over ``f`` and all its sub-formulas."""
    return _walk(f, children)


def _weight(f: Formula) -> int:
    match f:
        case BoolLit() | Atom() | VarEq() | Hinted():
            return 0
        case Sequence(events):
            return len(events) - 1
        case Not() | Next() | Eventually() | Always() | And() | Or() | Implies() | Until() | Release() | Quantified():
            return 1
        case _:
            assert_never(f)


def depth(f: Formula) -> int:
    """Nesting depth as :data:`stlspec.traverse.MAX_DEPTH` counts it: operators on the longest path."""
    return _depth(f, children, _weight)


def too_deep(f: Formula, limit: int = MAX_DEPTH) -> Formula | None:
    """The first node (pre-order) at which ``f`` nests deeper than ``limit``, or ``None``."""
    return _first_beyond(f, children, _weight, limit)


# Equality, hashing and repr that do not recurse (dataclasses' generated ones do).
structural(Name, Window, Hint, BoolLit, Atom, VarEq, Not, And, Or, Implies, Next, Eventually, Always, Until,
           Release, Binder, Quantified, Event, Sequence, Hinted, Include, CategoryDecl, PredicateDecl, Spec, Program)
