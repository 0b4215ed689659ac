"""The core IR: the one small language every backend consumes.

:func:`stlspec.lower` produces it from a checked program. All sugar is gone:
``implies``, ``release``, ``then`` chains, hints and ``!=`` have
been rewritten into the constructors below (see ``docs/dev/architecture.md``).

Formulas
--------
``Const``      true / false
``Unary``      ``pred(var)``                   -- value ``unary[t, n_var, pred]``
``Binary``     ``pred(left, right)``           -- value ``binary[t, n_left, n_right, pred]``
``Eq``         ``left == right`` (same track)  -- 1 or 0
``Not``        ``1 - x`` in every logic
``And``/``Or`` n-ary (>= 2 operands), folded with the logic's ∧ / ∨
``Next``       φ at ``t + steps`` (``next[k]`` is one node with ``steps=k``, never k nodes);
               past the end 0 (strong, ``weak=False``) or 1 (weak)
``Eventually`` ``φ(t) ∨ next eventually φ(t)`` restricted to ``window``
``Always``     ``φ(t) ∧ weak-next always φ(t)`` restricted to ``window``
``Until``      ``ψ(t) ∨ (φ(t) ∧ next (φ until ψ)(t))`` restricted to ``window``
``Exists``     ∨ over injective assignments of the block's variables to tracks of
               (category conjuncts ∧ body)
``Forall``     ∧ over injective assignments of (¬ category conjuncts ∨ body)

Windows are offsets relative to the current position ``t``; see
:meth:`Window.frames` for how fraction windows become frame windows for a trace
of length ``T``.

Events
------
An ``Eventually`` with ``event`` set is an *event* of the spec (from a ``then``
chain or a hinted ``eventually``); ``Spec.events[event]`` describes it.
Tagged events only occur where a witness frame is well defined: either at a
*positive top-level position* (reached from the spec root only through ``And``,
``Or``, ``Exists``, ``Forall``), or as the chain continuation
``Eventually_k(And((A_k, Next(Eventually_{k+1}(...)))))`` of a ``then`` chain
(the ``And`` has exactly two operands, the second a strong one-step ``Next``).

The witness distribution of event ``k`` of a chain ``A_0 then … then A_{K−1}`` is
defined on the chain's *head* node: let ``Body_k`` be the body of event ``k``'s node
(``A_k ∧ next eventually_{k+1}(…)``, or ``A_{K−1}`` for the last event) and

    c_k(q)       = Pre_k(q) ∧ Body_k(q)
    Pre_0(q)     = [q lies in the head's window]          (an indicator, not a conjunct)
    Pre_{j+1}(q) = ∨_{s : q ∈ W_{j+1}(s+1)} (Pre_j(s) ∧ A_j(s))    (s < q without a window)

Let ``φ[k ↦ q]`` be the spec formula with the chain's head replaced by
``c_k(q)``; then ``s_k(q) = φ[k ↦ q](0)`` and
``witness_k(q) = max(s_k(q), 0) / Σ_q' max(s_k(q'), 0)`` (all zeros when the sum is 0).
For event 0 (and a hinted single ``eventually``) this is *pinning*: the event's
node replaced by its body at exactly ``q``. For later events it equals pinning
under boolean and godel; under product and smooth the factored ``Pre_k`` is the
definition (``O(T)``; literal pinning would be ``O(T²)``), see ``docs/semantics.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar, Union, assert_never

from stlspec.traverse import MAX_DEPTH, depth as _depth, structural, traverse, walk as _walk

from stlspec.rounding import fraction_frames
from stlspec.span import NO_SPAN, Span

__all__ = [
    "Window", "Const", "Unary", "Binary", "Eq", "Not", "And", "Or", "Next",
    "Eventually", "Always", "Until", "Exists", "Forall", "Formula",
    "EventInfo", "Spec", "Vocabulary", "CoreProgram", "TRUE", "FALSE",
    "children", "free_vars", "walk", "fold", "depth", "MAX_IR_DEPTH",
]

R = TypeVar("R")

#: The deepest core formula lowering produces from a checked program
#: (:data:`stlspec.traverse.MAX_DEPTH` operators in the surface language); every
#: backend must handle it, except that the scallop target refuses a spec of more
#: than ``MAX_SPEC_RULES`` rules (E601). tests/test_fuzz_frontend.py checks that
#: lowering stays within it (``test_every_stage_takes_the_deepest_allowed_formula``)
#: and that the reference and torch backends agree at exactly this depth
#: (``test_reference_and_torch_take_core_ir_of_the_maximal_depth``).
MAX_IR_DEPTH = 5 * MAX_DEPTH + 2


@dataclass(frozen=True, slots=True)
class Window:
    """Offsets ``[lo, hi]`` (inclusive) relative to the current position.

    ``unit="frames"``: integer offsets, ``hi=None`` for unbounded.
    ``unit="fraction"``: fractions of the video, ``0 <= lo <= hi <= 1``.
    """

    lo: int | float
    hi: int | float | None
    unit: str = "frames"

    def __post_init__(self) -> None:
        if self.unit not in ("frames", "fraction"):
            raise ValueError(f"bad window unit {self.unit!r}")
        if self.lo < 0 or (self.hi is not None and self.hi < self.lo):
            raise ValueError(f"bad window [{self.lo}, {self.hi}]")
        if self.unit == "fraction" and (self.hi is None or self.hi > 1):
            raise ValueError("fraction windows lie inside [0, 1]")

    def frames(self, length: int) -> tuple[int, int]:
        """Frame offsets ``(lo, hi)`` for a trace of ``length`` frames.

        Fractions map to ``[ceil(lo·(T−1)), floor(hi·(T−1))]``, so ``[0.0, 1.0]``
        covers the whole video. The result may be empty (``lo > hi``): then
        ``eventually`` is false, ``always`` true and ``until`` false. ``hi`` is
        capped at ``T − 1`` (an unbounded window).
        """
        if self.unit == "frames":
            hi = length - 1 if self.hi is None else min(int(self.hi), length - 1)
            return int(self.lo), hi
        # Exact rational rounding of the decimal bounds (stlspec/rounding.py): 0.3 * 10 is exactly 3.
        return fraction_frames(self.lo, self.hi, length)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Const:
    value: bool


@dataclass(frozen=True, slots=True)
class Unary:
    pred: str
    var: str


@dataclass(frozen=True, slots=True)
class Binary:
    pred: str
    left: str
    right: str


@dataclass(frozen=True, slots=True)
class Eq:
    left: str
    right: str


@dataclass(frozen=True, slots=True)
class Not:
    arg: "Formula"


@dataclass(frozen=True, slots=True)
class And:
    args: tuple["Formula", ...]

    def __post_init__(self) -> None:
        if len(self.args) < 2:
            raise ValueError("And needs at least two operands")


@dataclass(frozen=True, slots=True)
class Or:
    args: tuple["Formula", ...]

    def __post_init__(self) -> None:
        if len(self.args) < 2:
            raise ValueError("Or needs at least two operands")


@dataclass(frozen=True, slots=True)
class Next:
    """φ at ``t + steps``; past the end of the trace 0 (strong) or 1 (``weak``)."""

    arg: "Formula"
    weak: bool = False
    steps: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"next steps at least one frame, not {self.steps}")


@dataclass(frozen=True, slots=True)
class Eventually:
    arg: "Formula"
    window: Window | None = None
    event: int | None = None


@dataclass(frozen=True, slots=True)
class Always:
    arg: "Formula"
    window: Window | None = None


@dataclass(frozen=True, slots=True)
class Until:
    left: "Formula"
    right: "Formula"
    window: Window | None = None


@dataclass(frozen=True, slots=True)
class Exists:
    """∨ over injective assignments of ``vars`` (name, category or None)."""

    vars: tuple[tuple[str, str | None], ...]
    body: "Formula"


@dataclass(frozen=True, slots=True)
class Forall:
    """∧ over injective assignments of ``vars`` (name, category or None)."""

    vars: tuple[tuple[str, str | None], ...]
    body: "Formula"


Formula = Union[Const, Unary, Binary, Eq, Not, And, Or, Next, Eventually, Always, Until, Exists, Forall]

TRUE = Const(True)
FALSE = Const(False)


@dataclass(frozen=True, slots=True)
class EventInfo:
    """One event of a spec: its position in the spec and its optional "when" hint."""

    index: int
    hint: tuple[float, float] | None = None
    label: str = ""  # the event's source text, for reports


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    formula: Formula
    events: tuple[EventInfo, ...] = ()
    caption: str | None = None
    #: Where the spec's name is written (for backends' diagnostics about a whole spec); not compared.
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Categories and predicates with their argument categories (``None`` = any)."""

    categories: tuple[str, ...] = ()
    unary: tuple[tuple[str, str | None], ...] = ()
    binary: tuple[tuple[str, str | None, str | None], ...] = ()

    @property
    def unary_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.unary)

    @property
    def binary_names(self) -> tuple[str, ...]:
        return tuple(n for n, _, _ in self.binary)


@dataclass(frozen=True, slots=True)
class CoreProgram:
    vocabulary: Vocabulary
    specs: tuple[Spec, ...]
    path: str = field(default="<string>", compare=False)

    def spec(self, name: str) -> Spec:
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(f"no spec named {name!r}; specs: {', '.join(s.name for s in self.specs)}")


# ---------------------------------------------------------------- traversal
#
# The one traversal of core formulas (:mod:`stlspec.traverse` does the walking,
# without recursion). Backends build on ``fold``/``walk``/``children``; a new
# core class goes into ``children`` and ``_weight`` here, and the type checker
# (``assert_never``) points at every backend's ``match``.


def children(f: Formula) -> tuple[Formula, ...]:
    """The direct sub-formulas of ``f``."""
    match f:
        case Const() | Unary() | Binary() | Eq():
            return ()
        case Not(arg) | Next(arg) | Eventually(arg) | Always(arg):
            return (arg,)
        case And(args) | Or(args):
            return args
        case Until(left, right):
            return (left, right)
        case Exists(_, body) | Forall(_, body):
            return (body,)
        case _:
            assert_never(f)


def fold(f: Formula, leave: Callable[[Formula, Any, tuple], R],
         enter: Callable[[Formula, Any], tuple | None] | None = None, ctx: Any = None) -> R:
    """Post-order fold of ``f`` (see :func:`stlspec.traverse.traverse`; never recurses)."""
    return traverse(f, children, leave, enter, ctx)


def walk(f: Formula) -> Iterator[Formula]:
    """Pre-order iteration over ``f`` and all its sub-formulas."""
    return _walk(f, children)


def depth(f: Formula) -> int:
    """Nodes on the longest root-to-leaf path of ``f`` (at most :data:`MAX_IR_DEPTH` after lowering)."""
    return _depth(f, children, lambda _: 1)


def free_vars(f: Formula) -> frozenset[str]:
    """Variables used in ``f`` and not bound inside it."""
    def leave(g: Formula, _ctx, kids: tuple[frozenset[str], ...]) -> frozenset[str]:
        match g:
            case Const():
                return frozenset()
            case Unary(_, v):
                return frozenset((v,))
            case Binary(_, a, b) | Eq(a, b):
                return frozenset((a, b))
            case Exists(vs, _) | Forall(vs, _):
                return kids[0] - {v for v, _ in vs}
            case Not() | And() | Or() | Next() | Eventually() | Always() | Until():
                return frozenset().union(*kids)
            case _:
                assert_never(g)

    return fold(f, leave)


# Equality, hashing and repr that do not recurse (dataclasses' generated ones do).
structural(Window, Const, Unary, Binary, Eq, Not, And, Or, Next, Eventually, Always, Until, Exists, Forall,
           EventInfo, Spec, Vocabulary, CoreProgram)
