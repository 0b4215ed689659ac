"""Hostile inputs for the front end: deep nesting, huge ``next[k]``, strategy coverage.

The only acceptable outcomes are a result or our positioned error (never a
traceback, never a hang). Every stage of the front end is iterative; the
language's nesting limit (:data:`stlspec.traverse.MAX_DEPTH`) is enforced by
both parsers and the checker with E107, so text at the limit goes through every
stage and text beyond it fails the same way in every stage.
"""

from __future__ import annotations

import typing

import pytest
from hypothesis import HealthCheck, find, settings

import stlspec
from stlspec import ast, ir
from stlspec.backends.core_text import format_core
from stlspec.cli import main
from stlspec.diagnostics import StlError
from stlspec.fastparse import Fallback, fast_parse
from stlspec.parser import lark_parse
from stlspec.traverse import MAX_DEPTH

import ast_strategies
import strategies

VOCAB = "unary a(any)\n"

# Each family builds a spec body with exactly `n` nested operators under the spec's `exists x.`.
FAMILIES = {
    "not": lambda n: "not " * n + "a(x)",
    "eventually": lambda n: "eventually[0, 2] " * n + "a(x)",
    "next": lambda n: "weak next[3] " * n + "a(x)",
    "until": lambda n: "a(x) until " * n + "a(x)",
    "release": lambda n: "a(x) release[1, 2] " * n + "a(x)",
    "implies": lambda n: "a(x) implies " * n + "a(x)",
    "exists": lambda n: "".join(f"exists y{i}. " for i in range(n)) + "a(x)",
    "then": lambda n: " then ".join(["a(x)"] * (n + 1)),
    "mixed": lambda n: "".join(("(not ", "(always ", "(a(x) and ")[i % 3] for i in range(n))
    + "a(x)" + ")" * n,
}


def spec(body: str) -> str:
    return VOCAB + "spec s {\n  exists x. " + body + "\n}\n"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_stage_takes_the_deepest_allowed_formula(family, tmp_path):
    text = spec(FAMILIES[family](MAX_DEPTH - 1))  # + the `exists x.` = MAX_DEPTH
    program = stlspec.parse(text)
    assert ast.depth(program.specs[0].formula) == MAX_DEPTH
    assert lark_parse(text).items == program.items
    core = stlspec.lower(stlspec.check(program))
    assert ir.depth(core.specs[0].formula) <= ir.MAX_IR_DEPTH
    assert stlspec.parse(stlspec.format(program)) == program
    format_core(core)
    path = tmp_path / "deep.stl"
    path.write_text(text)
    assert main(["check", "-q", str(path)]) == 0
    assert main(["compile", "--target", "core", "-o", str(tmp_path / "out.txt"), str(path)]) == 0
    assert main(["fmt", "--check", str(path)]) in (0, 1)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_one_level_deeper_is_a_positioned_error_in_every_stage(family, tmp_path, capsys):
    text = spec(FAMILIES[family](MAX_DEPTH))
    with pytest.raises(StlError) as err:
        stlspec.parse(text)
    (d,) = err.value.diagnostics
    assert d.code == "E107" and d.span.known and d.span.line == 3
    assert f"limit is {MAX_DEPTH}" in d.message
    path = tmp_path / "deep.stl"
    path.write_text(text)
    for argv in (["check"], ["fmt"], ["compile", "--target", "core"]):
        assert main([*argv, str(path)]) == 1
        assert "E107" in capsys.readouterr().err


def test_checker_bounds_trees_built_in_code():
    f: ast.Formula = ast.Atom(ast.Name("a"), ("x",))
    for _ in range(MAX_DEPTH + 5):
        f = ast.Not(f)
    program = ast.Program((ast.PredicateDecl("unary", ast.Name("a"), (ast.Name("any"),)),
                           ast.Spec("s", ast.Quantified("exists", (ast.Binder("x"),), f))))
    with pytest.raises(StlError) as err:
        stlspec.check(program)
    assert [d.code for d in err.value.diagnostics] == ["E107"]


def test_parentheses_alone_do_not_count():
    text = spec("(" * 5000 + "a(x)" + ")" * 5000)
    assert stlspec.parse(text).specs[0].formula == stlspec.parse(spec("a(x)")).specs[0].formula


def test_fast_parser_hands_deep_text_to_lark():
    text = spec(FAMILIES["not"](200))
    with pytest.raises(Fallback):
        fast_parse(text)
    assert stlspec.parse(text) == lark_parse(text)


@pytest.mark.parametrize("k", [1, 400, 10**8, 10**30])
def test_next_k_is_never_expanded(k):
    core = stlspec.compile_text(spec(f"next[{k}] a(x) and weak next[{k}] a(x)"))
    nexts = [n for n in ir.walk(core.specs[0].formula) if isinstance(n, ir.Next)]
    assert [n.steps for n in nexts] == [k, k]


# ---------------------------------------------------------------- the strategies cover every class


def _classes(union) -> list[type]:
    return list(typing.get_args(union))


@pytest.mark.parametrize("cls", _classes(ast.Formula) + _classes(ast.Item), ids=lambda c: c.__name__)
def test_ast_strategies_produce_every_class(cls):
    def has(program: ast.Program) -> bool:
        return any(isinstance(i, cls) for i in program.items) or any(
            isinstance(n, cls) for s in program.specs for n in ast.walk(s.formula))

    find(ast_strategies.programs(), has, settings=settings(max_examples=2000, database=None,
                                                            suppress_health_check=list(HealthCheck)))


@pytest.mark.parametrize("cls", _classes(ir.Formula), ids=lambda c: c.__name__)
def test_ir_strategies_produce_every_class(cls):
    find(strategies.specs(), lambda s: any(isinstance(n, cls) for n in ir.walk(s.formula)),
         settings=settings(max_examples=2000, database=None, suppress_health_check=list(HealthCheck)))
