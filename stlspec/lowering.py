"""Lowering: checked surface AST → core IR, by pure passes.

The passes in :data:`PASSES` each rewrite one piece of sugar on the AST and are
pure functions ``Formula -> Formula`` built on the one AST traversal
(:func:`stlspec.ast.map_formula`; fixtures for each live in
``tests/test_lower.py``). :func:`to_core` then maps what is left one-to-one
onto :mod:`stlspec.ir`, turning ``then`` chains and hinted ``eventually`` at
top-level positions into tagged events. Nothing here recurses, so formulas of
any depth lower (the parser and checker bound the depth, see
``stlspec.traverse.MAX_DEPTH``).

=========================  ===================================================
pass                       rewrite
=========================  ===================================================
``expand_implies``         ``a implies b``  →  ``not a or b``
``expand_release``         ``a release[w] b``  →  ``not (not a until[w] not b)``
``expand_neq``             ``x != y``  →  ``not (x == y)``
``to_core`` (final)        ``A then B``  →  ``eventually_e(A and next eventually_e' B)``;
                           ``eventually φ @h`` → tagged ``Eventually``;
                           ``next[k] φ`` → one ``ir.Next(φ, steps=k)``; rest 1:1
=========================  ===================================================
"""

from __future__ import annotations

from typing import Callable, assert_never

from stlspec import ast, ir
from stlspec.checker import CheckedProgram, top_level_positions

__all__ = ["lower", "lower_spec", "PASSES", "expand_implies", "expand_release", "expand_neq", "to_core"]

Pass = Callable[[ast.Formula], ast.Formula]


def _pass(rule: Callable[[ast.Formula], ast.Formula | None]) -> Pass:
    def run(f: ast.Formula) -> ast.Formula:
        return ast.map_formula(f, lambda g: rule(g) or g)

    run.__name__ = rule.__name__
    run.__doc__ = rule.__doc__
    return run


@_pass
def expand_implies(f):
    """``a implies b`` → ``not a or b``."""
    if isinstance(f, ast.Implies):
        return ast.Or((ast.Not(f.left, f.left.span), f.right), f.span)
    return None


@_pass
def expand_release(f):
    """``a release[w] b`` → ``not (not a until[w] not b)``."""
    if isinstance(f, ast.Release):
        inner = ast.Until(ast.Not(f.left, f.left.span), ast.Not(f.right, f.right.span), f.window, f.span)
        return ast.Not(inner, f.span)
    return None


@_pass
def expand_neq(f):
    """``x != y`` → ``not (x == y)``."""
    if isinstance(f, ast.VarEq) and not f.equal:
        return ast.Not(ast.VarEq(f.left, f.right, True, f.span), f.span)
    return None


#: The sugar-removing passes, in order. Each is a pure AST → AST function.
PASSES: tuple[Pass, ...] = (expand_implies, expand_release, expand_neq)


def lower(checked: CheckedProgram) -> ir.CoreProgram:
    """Lower every spec of a checked program to the core IR."""
    specs = tuple(lower_spec(s, checked.program.source) for s in checked.program.specs)
    return ir.CoreProgram(checked.vocabulary, specs, checked.program.path)


def lower_spec(spec: ast.Spec, source: str = "") -> ir.Spec:
    formula = spec.formula
    for p in PASSES:
        formula = p(formula)
    events: list[ir.EventInfo] = []
    core = to_core(formula, events, source)
    return ir.Spec(spec.name, core, tuple(events), spec.caption,
                   spec.name_span if spec.name_span.known else spec.span)


def to_core(f: ast.Formula, events: list[ir.EventInfo] | None = None, source: str = "") -> ir.Formula:
    """Map a desugared AST formula onto the core IR, numbering top-level events into ``events``.

    Events are numbered in source order: a chain's events when the chain is
    entered (pre-order), before anything nested inside them.
    """
    events = [] if events is None else events
    top = {id(g) for g in top_level_positions(f)}
    ids: dict[int, list[int | None]] = {}  # id(Sequence | Hinted) -> event index of each element

    def label(node) -> str:
        sp = node.span
        return source[sp.start:sp.end] if source and sp.known else ""

    def enter(g: ast.Formula, _ctx) -> None:
        match g:
            case ast.Sequence(evs):
                tagged = id(g) in top
                ids[id(g)] = [len(events) + i if tagged else None for i in range(len(evs))]
                if tagged:
                    events.extend(ir.EventInfo(len(events), ev.hint.interval() if ev.hint else None,
                                               label(ev.formula)) for ev in evs)
            case ast.Hinted(formula, hint):
                if id(g) in top:
                    ids[id(g)] = [len(events)]
                    events.append(ir.EventInfo(len(events), hint.interval(), label(formula)))
                else:
                    ids[id(g)] = [None]
            case _:
                pass
        return None

    def leave(g: ast.Formula, _ctx, kids: tuple[ir.Formula, ...]) -> ir.Formula:
        match g:
            case ast.BoolLit(value):
                return ir.Const(value)
            case ast.Atom(pred, args):
                return ir.Unary(pred.text, args[0]) if len(args) == 1 else ir.Binary(pred.text, args[0], args[1])
            case ast.VarEq(left, right, equal):
                assert equal, "expand_neq runs before to_core"
                return ir.Eq(left, right)
            case ast.Not():
                return ir.Not(kids[0])
            case ast.And():
                return ir.And(kids)
            case ast.Or():
                return ir.Or(kids)
            case ast.Next(_, weak, steps):
                return ir.Next(kids[0], weak, steps)
            case ast.Eventually(_, window):
                return ir.Eventually(kids[0], _window(window))
            case ast.Always(_, window):
                return ir.Always(kids[0], _window(window))
            case ast.Until(_, _, window):
                return ir.Until(kids[0], kids[1], _window(window))
            case ast.Quantified(kind, binders):
                vars_ = tuple((b.var, _category(b)) for b in binders)
                return (ir.Exists if kind == "exists" else ir.Forall)(vars_, kids[0])
            case ast.Sequence():
                idx = ids.pop(id(g))
                # Build from the last event backwards: e_k = eventually(A_k and next e_{k+1}).
                chain: ir.Formula = ir.Eventually(kids[-1], None, idx[-1])
                for body, i in zip(reversed(kids[:-1]), reversed(idx[:-1])):
                    chain = ir.Eventually(ir.And((body, ir.Next(chain, False))), None, i)
                return chain
            case ast.Hinted(formula):
                # The checker rejects hints on anything but `eventually`; kids[0] is its lowering.
                assert isinstance(formula, ast.Eventually) and isinstance(kids[0], ir.Eventually), \
                    "the checker rejects other hinted formulas"
                return ir.Eventually(kids[0].arg, kids[0].window, ids.pop(id(g))[0])
            case ast.Implies() | ast.Release():
                raise AssertionError(f"not desugared before to_core: {g!r}")
            case _:
                assert_never(g)

    return ast.fold(f, leave, enter)


def _window(w: ast.Window | None) -> ir.Window | None:
    if w is None:
        return None
    return ir.Window(w.lo, w.hi, w.unit)


def _category(b: ast.Binder) -> str | None:
    if b.category is None or b.category.text == ast.ANY:
        return None
    return b.category.text
