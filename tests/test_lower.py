"""Lowering: one fixture table per pass, then the final AST → core IR mapping and event tagging."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

import stlspec
from stlspec import ast, ir
from stlspec.formatter import format_formula
from stlspec.lowering import PASSES, expand_implies, expand_neq, expand_release, to_core

from ast_strategies import formulas


def f(text: str) -> ast.Formula:
    return stlspec.parse(f"spec s {{ {text} }}").specs[0].formula


PASS_FIXTURES = {
    expand_implies: [
        ("a(x) implies b(x)", "not a(x) or b(x)"),
        ("a(x) implies b(x) implies c(x)", "not a(x) or (not b(x) or c(x))"),
        ("always (a(x) implies next b(x))", "always (not a(x) or next b(x))"),
    ],
    expand_release: [
        ("a(x) release b(x)", "not (not a(x) until not b(x))"),
        ("a(x) release[1, 3] b(x)", "not (not a(x) until[1, 3] not b(x))"),
    ],
    expand_neq: [
        ("x != y", "not x == y"),
        ("x == y", "x == y"),
    ],
}


@pytest.mark.parametrize("rule, src, expected",
                         [(r, s, e) for r, cases in PASS_FIXTURES.items() for s, e in cases],
                         ids=lambda v: getattr(v, "__name__", None))
def test_pass_fixture(rule, src, expected):
    assert format_formula(rule(f(src)), inline=True) == expected


def test_every_pass_has_fixtures():
    assert set(PASSES) == set(PASS_FIXTURES)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formulas((("x", None), ("y", None)), 3))
def test_passes_remove_their_sugar_and_to_core_accepts_the_rest(formula):
    g = formula
    for p in PASSES:
        g = p(g)
    for sub in ast.walk(g):
        assert not isinstance(sub, (ast.Implies, ast.Release))
        assert not (isinstance(sub, ast.VarEq) and not sub.equal)
    if all(not isinstance(s, ast.Hinted) or isinstance(s.formula, ast.Eventually) for s in ast.walk(g)):
        to_core(g)


@pytest.mark.parametrize("src, expected", [
    ("next[3] a(x)", ir.Next(ir.Unary("a", "x"), False, 3)),
    ("weak next[100000000] a(x)", ir.Next(ir.Unary("a", "x"), True, 100_000_000)),
    ("next next a(x)", ir.Next(ir.Next(ir.Unary("a", "x")))),
])
def test_next_steps_is_one_node(src, expected):
    """``next[k]`` is never expanded into k nodes (k = 10^8 lowers instantly)."""
    core = stlspec.compile_text(f"unary a(any)\nspec s {{ exists x. {src} }}")
    assert core.specs[0].formula.body == expected


def test_then_chain_becomes_tagged_eventually_chain():
    core = stlspec.compile_text(
        "category p\nunary a(p), b(p), c(p)\n"
        "spec s { exists x: p. a(x) @early then b(x) then c(x) @[0.5, 1] }")
    spec = core.specs[0]
    A, B, C = (ir.Unary(n, "x") for n in "abc")
    expected = ir.Exists((("x", "p"),), ir.Eventually(
        ir.And((A, ir.Next(ir.Eventually(ir.And((B, ir.Next(ir.Eventually(C, None, 2)))), None, 1)))), None, 0))
    assert spec.formula == expected
    assert [e.hint for e in spec.events] == [(0.0, 1 / 3), None, (0.5, 1.0)]
    assert [e.label for e in spec.events] == ["a(x)", "b(x)", "c(x)"]


def test_only_top_level_events_are_tagged():
    core = stlspec.compile_text(
        "unary a(any), b(any)\n"
        "spec s { exists x. (a(x) then b(x)) and always (a(x) then b(x)) and (eventually a(x) @late) }")
    tagged = [n.event for n in ir.walk(core.specs[0].formula) if isinstance(n, ir.Eventually)]
    assert sorted(e for e in tagged if e is not None) == [0, 1, 2]
    assert len(core.specs[0].events) == 3


def test_implies_right_side_is_top_level():
    core = stlspec.compile_text("unary a(any), b(any)\nspec s { exists x. a(x) implies (a(x) then b(x)) }")
    assert len(core.specs[0].events) == 2


def test_windows_and_categories_are_carried():
    core = stlspec.compile_text("category p\nunary a(p)\nspec s { exists x: p, y: any, z. "
                                "eventually[0.25, 0.5] a(x) and always[1, inf] a(x) and a(x) until[0, 3] a(x) }")
    spec = core.specs[0]
    assert spec.formula.vars == (("x", "p"), ("y", None), ("z", None))
    ev, al, un = spec.formula.body.args
    assert ev.window == ir.Window(0.25, 0.5, "fraction")
    assert al.window == ir.Window(1, None, "frames")
    assert un.window == ir.Window(0, 3, "frames")


@pytest.mark.parametrize("window, T, frames", [
    (ir.Window(0.0, 1.0, "fraction"), 32, (0, 31)),
    (ir.Window(0.25, 0.5, "fraction"), 9, (2, 4)),
    (ir.Window(0.3, 0.3, "fraction"), 11, (3, 3)),
    (ir.Window(0.5, 0.5, "fraction"), 2, (1, 0)),
    (ir.Window(2, None, "frames"), 5, (2, 4)),
    (ir.Window(1, 10, "frames"), 4, (1, 3)),
])
def test_window_frames(window, T, frames):
    assert window.frames(T) == frames


def test_core_text_target():
    core = stlspec.compile_text("unary a(any)\nspec s \"cap\" { exists x. a(x) @early then a(x) }")
    text = stlspec.compile(core, target="core").text
    assert "(eventually #event0" in text and "event 0: a(x) hint=[0, 0.333]" in text
