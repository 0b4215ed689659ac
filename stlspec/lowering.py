"""Lowering: checked surface AST → core IR, by pure passes.

The passes in :data:`PASSES` each rewrite one piece of sugar on the AST and are
pure functions ``Formula -> Formula`` (fixtures for each live in
``tests/test_lower.py``). :func:`to_core` then maps what is left one-to-one
onto :mod:`stlspec.ir`, turning ``then`` chains and hinted ``eventually`` at
top-level positions into tagged events.

=========================  ===================================================
pass                       rewrite
=========================  ===================================================
``expand_implies``         ``a implies b``  →  ``not a or b``
``expand_release``         ``a release[w] b``  →  ``not (not a until[w] not b)``
``expand_next_steps``      ``next[k] a``  →  ``next next … a`` (k times)
``expand_neq``             ``x != y``  →  ``not (x == y)``
``to_core`` (final)        ``A then B``  →  ``eventually_e(A and next eventually_e' B)``;
                           ``eventually φ @h`` → tagged ``Eventually``; rest 1:1
=========================  ===================================================
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from stlspec import ast, ir
from stlspec.checker import CheckedProgram, top_level_positions

__all__ = ["lower", "lower_spec", "PASSES", "expand_implies", "expand_release", "expand_next_steps",
           "expand_neq", "to_core", "map_formula"]

Pass = Callable[[ast.Formula], ast.Formula]


def map_formula(f: ast.Formula, fn: Pass) -> ast.Formula:
    """Rebuild ``f`` bottom-up, applying ``fn`` to every node after its children.

    Nodes whose children did not change are reused, not copied (``replace`` is
    the expensive part of lowering).
    """
    match f:
        case ast.BoolLit() | ast.Atom() | ast.VarEq():
            g = f
        case ast.Not(arg) | ast.Next(arg) | ast.Eventually(arg) | ast.Always(arg):
            new = map_formula(arg, fn)
            g = f if new is arg else replace(f, arg=new)
        case ast.And(args) | ast.Or(args):
            new_args = tuple(map_formula(a, fn) for a in args)
            g = f if all(x is y for x, y in zip(new_args, args)) else replace(f, args=new_args)
        case ast.Implies(left, right) | ast.Until(left, right) | ast.Release(left, right):
            nl, nr = map_formula(left, fn), map_formula(right, fn)
            g = f if (nl is left and nr is right) else replace(f, left=nl, right=nr)
        case ast.Quantified():
            body = map_formula(f.body, fn)
            g = f if body is f.body else replace(f, body=body)
        case ast.Sequence(events):
            new_f = tuple(map_formula(e.formula, fn) for e in events)
            g = f if all(x is e.formula for x, e in zip(new_f, events)) else replace(
                f, events=tuple(e if x is e.formula else replace(e, formula=x) for x, e in zip(new_f, events)))
        case ast.Hinted(formula):
            new = map_formula(formula, fn)
            g = f if new is formula else replace(f, formula=new)
        case _:  # pragma: no cover
            raise AssertionError(f"unknown AST node {f!r}")
    return fn(g)


def _pass(rule: Callable[[ast.Formula], ast.Formula | None]) -> Pass:
    def run(f: ast.Formula) -> ast.Formula:
        return map_formula(f, lambda g: rule(g) or g)

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
def expand_next_steps(f):
    """``next[k] a`` → k nested one-step ``next`` (strong or weak alike)."""
    if isinstance(f, ast.Next) and f.steps != 1:
        g = f.arg
        for _ in range(f.steps):
            g = ast.Next(g, f.weak, 1, f.span)
        return g
    return None


@_pass
def expand_neq(f):
    """``x != y`` → ``not (x == y)``."""
    if isinstance(f, ast.VarEq) and not f.equal:
        return ast.Not(ast.VarEq(f.left, f.right, True, f.span), f.span)
    return None


#: The sugar-removing passes, in order. Each is a pure AST → AST function.
PASSES: tuple[Pass, ...] = (expand_implies, expand_release, expand_next_steps, expand_neq)


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
    return ir.Spec(spec.name, core, tuple(events), spec.caption)


def to_core(f: ast.Formula, events: list[ir.EventInfo] | None = None, source: str = "") -> ir.Formula:
    """Map a desugared AST formula onto the core IR, numbering top-level events into ``events``."""
    events = [] if events is None else events
    top = {id(g) for g in top_level_positions(f)}

    def label(node) -> str:
        sp = node.span
        return source[sp.start:sp.end] if source and sp.known else ""

    def go(g: ast.Formula) -> ir.Formula:
        match g:
            case ast.BoolLit(value):
                return ir.Const(value)
            case ast.Atom(pred, args):
                return ir.Unary(pred.text, args[0]) if len(args) == 1 else ir.Binary(pred.text, args[0], args[1])
            case ast.VarEq(left, right, True):
                return ir.Eq(left, right)
            case ast.Not(arg):
                return ir.Not(go(arg))
            case ast.And(args):
                return ir.And(tuple(go(a) for a in args))
            case ast.Or(args):
                return ir.Or(tuple(go(a) for a in args))
            case ast.Next(arg, weak, 1):
                return ir.Next(go(arg), weak)
            case ast.Eventually(arg, window):
                return ir.Eventually(go(arg), _window(window))
            case ast.Always(arg, window):
                return ir.Always(go(arg), _window(window))
            case ast.Until(left, right, window):
                return ir.Until(go(left), go(right), _window(window))
            case ast.Quantified(kind, binders, body):
                vars_ = tuple((b.var, _category(b)) for b in binders)
                return (ir.Exists if kind == "exists" else ir.Forall)(vars_, go(body))
            case ast.Sequence(evs):
                tagged = id(g) in top
                ids = []
                for ev in evs:
                    if tagged:
                        ids.append(len(events))
                        events.append(ir.EventInfo(len(events), ev.hint.interval() if ev.hint else None,
                                                   label(ev.formula)))
                    else:
                        ids.append(None)
                bodies = [go(ev.formula) for ev in evs]
                # Build from the last event backwards: e_k = eventually(A_k and next e_{k+1}).
                chain: ir.Formula = ir.Eventually(bodies[-1], None, ids[-1])
                for body, idx in zip(reversed(bodies[:-1]), reversed(ids[:-1])):
                    chain = ir.Eventually(ir.And((body, ir.Next(chain, False))), None, idx)
                return chain
            case ast.Hinted(formula, hint):
                assert isinstance(formula, ast.Eventually), "the checker rejects other hinted formulas"
                idx = None
                if id(g) in top:
                    idx = len(events)
                    events.append(ir.EventInfo(idx, hint.interval(), label(formula)))
                return ir.Eventually(go(formula.arg), _window(formula.window), idx)
        raise AssertionError(f"not desugared before to_core: {g!r}")  # pragma: no cover

    return go(f)


def _window(w: ast.Window | None) -> ir.Window | None:
    if w is None:
        return None
    return ir.Window(w.lo, w.hi, w.unit)


def _category(b: ast.Binder) -> str | None:
    if b.category is None or b.category.text == ast.ANY:
        return None
    return b.category.text
