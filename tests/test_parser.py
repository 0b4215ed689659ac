"""Parser: every construct, spans, named syntax errors, and fuzzing (only an AST or StlError may come out)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stlspec
from stlspec import ast
from stlspec.diagnostics import StlError

from ast_strategies import VOCAB_TEXT, programs


def formula(text: str) -> ast.Formula:
    return stlspec.parse(f"spec s {{ {text} }}").specs[0].formula


def codes(text: str) -> list[str]:
    with pytest.raises(StlError) as info:
        stlspec.parse(text, "t.stl")
    return [d.code for d in info.value.diagnostics]


A, B, C = (ast.Atom(ast.Name(n), ("x",)) for n in "abc")


def test_declarations_and_quoted_names():
    prog = stlspec.parse('include "v.stl"\ncategory person, "dining table"\n'
                         'unary walking(person), "standing up"(any)\nbinary "sitting on"(person, "dining table")\n')
    inc, cats, u1, u2, b1 = prog.items
    assert inc == ast.Include("v.stl")
    assert [n.text for n in cats.names] == ["person", "dining table"]
    assert (u1.name.text, u2.name.text, b1.name.text) == ("walking", "standing up", "sitting on")
    assert [p.text for p in b1.params] == ["person", "dining table"]


@pytest.mark.parametrize("text, expected", [
    ("a(x) and b(x) or c(x)", ast.Or((ast.And((A, B)), C))),
    ("a(x) or b(x) and c(x)", ast.Or((A, ast.And((B, C))))),
    ("a(x) implies b(x) implies c(x)", ast.Implies(A, ast.Implies(B, C))),
    ("not a(x) until b(x)", ast.Until(ast.Not(A), B)),
    ("a(x) until b(x) until c(x)", ast.Until(A, ast.Until(B, C))),
    ("a(x) and b(x) until c(x)", ast.And((A, ast.Until(B, C)))),
    ("eventually always a(x)", ast.Eventually(ast.Always(A))),
    ("next[3] a(x)", ast.Next(A, False, 3)),
    ("weak next a(x)", ast.Next(A, True, 1)),
    ("eventually[2, inf] a(x)", ast.Eventually(A, ast.Window(2, None, "frames"))),
    ("always[0.0, 0.5] a(x)", ast.Always(A, ast.Window(0.0, 0.5, "fraction"))),
    ("a(x) release[1, 4] b(x)", ast.Release(A, B, ast.Window(1, 4, "frames"))),
    ("a(x) @early then b(x) then c(x) @[0.5, 1]",
     ast.Sequence((ast.Event(A, ast.Hint("early")), ast.Event(B), ast.Event(C, ast.Hint(lo=0.5, hi=1.0))))),
    ("a(x) and b(x) then c(x)", ast.Sequence((ast.Event(ast.And((A, B))), ast.Event(C)))),
    ("eventually a(x) @late", ast.Hinted(ast.Eventually(A), ast.Hint("late"))),
    ("x == y or x != y", ast.Or((ast.VarEq("x", "y", True), ast.VarEq("x", "y", False)))),
    ("true and (false)", ast.And((ast.BoolLit(True), ast.BoolLit(False)))),
    ('"sitting on"(x, y)', ast.Atom(ast.Name("sitting on"), ("x", "y"))),
])
def test_precedence_and_constructs(text, expected):
    assert formula(text) == expected


def test_quantifier_body_extends_to_the_end():
    f = formula("exists x: person, y. a(x) then b(x)")
    assert isinstance(f, ast.Quantified) and f.kind == "exists"
    assert [(b.var, b.category and b.category.text) for b in f.binders] == [("x", "person"), ("y", None)]
    assert isinstance(f.body, ast.Sequence)


def test_spans_point_at_source():
    text = "spec s {\n  exists x: person.\n    walking(x) and holding(x, x)\n}"
    spec = stlspec.parse(text).specs[0]
    atom = spec.formula.body.args[1]
    assert (atom.span.line, atom.span.column) == (3, 20)
    assert text[atom.span.start:atom.span.end] == "holding(x, x)"
    assert spec.name_span.line == 1 and spec.name_span.column == 6


def test_comments_are_ignored_and_kept_for_the_formatter():
    prog = stlspec.parse("// top\ncategory a # tail\n/* block\n comment */ spec s { true }")
    assert [c for _, c in prog.comments] == ["// top", "# tail", "/* block\n comment */"]
    assert len(prog.items) == 2


@pytest.mark.parametrize("text, code, needle", [
    ("spec s { exists x: person: walking(x) }", "E101", "end with '.'"),
    ("spec s { walking(x) holding(x, y) }", "E101", "join formulas"),
    ('spec s { "sitting on(x, y) }', "E104", "close the name"),
    ("spec s { x = y }", "E102", "==` or `!="),
    ("spec s { finally walking(x) }", "E106", "eventually"),
    ("spec s { G walking(x) }", "E106", "always"),
    ("spec s { walking(x) && open(x) }", "E106", "and"),
    ("spec s { walking(x)", "E103", "'}'"),
    ("spec s { then(x) }", "E101", 'quote it'),
    ("spec s {\twalking(x) \x01 }", "E102", ""),
])
def test_syntax_errors_are_named_and_helpful(text, code, needle):
    with pytest.raises(StlError) as info:
        stlspec.parse(text, "t.stl")
    (d,) = info.value.diagnostics
    assert d.code == code
    rendered = info.value.render()
    assert rendered.startswith("t.stl:1:")
    assert needle in rendered
    assert "^" in rendered


def test_every_broken_item_is_reported():
    text = "spec a { walking(x) and }\nspec b { ok(x) }\nspec c { finally x(y) }\ncategory d e\n"
    assert codes(text) == ["E101", "E106", "E101"]


def test_grammar_file_is_packaged():
    from stlspec.parser import grammar_text

    assert "sequence: event" in grammar_text()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_random_text_gives_ast_or_our_error(text):
    try:
        stlspec.parse(text)
    except StlError as err:
        assert err.diagnostics and all(d.code.startswith("E1") for d in err.diagnostics)


TOKENS = ["spec", "s", "{", "}", "exists", "forall", "x", ":", "person", ".", ",", "(", ")", "then", "and", "or",
          "not", "implies", "until", "release", "next", "weak", "always", "eventually", "[", "]", "0", "0.5",
          "inf", "@", "early", "==", "!=", '"a b"', "true", "category", "unary", "binary", "include", "walking"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=30))
def test_random_token_soup_gives_ast_or_our_error(tokens):
    try:
        stlspec.parse(" ".join(tokens))
    except StlError as err:
        assert err.diagnostics


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.data())
def test_mutated_valid_programs_give_ast_or_our_error(program, data):
    text = stlspec.format(program)
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, min(len(text), i + 5)))
    mutated = text[:i] + data.draw(st.sampled_from(["", " ", "(", ")", "then", "@", "[", ".", '"'])) + text[j:]
    try:
        stlspec.parse(mutated)
    except StlError as err:
        assert err.diagnostics


def test_vocab_text_parses():
    assert len(stlspec.parse(VOCAB_TEXT).items) == 7


def test_keyword_used_as_predicate_suggests_quoting():
    with pytest.raises(StlError) as info:
        stlspec.parse("spec s { exists x. next(x) }")
    assert '"next"(...)' in info.value.render()
