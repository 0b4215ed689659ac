"""Hostile inputs for the front end: deep nesting, huge ``next[k]``, strategy coverage.

The only acceptable outcomes are a result or our positioned error (never a
traceback, never a hang). Every stage of the front end is iterative; the
language's nesting limit (:data:`stlspec.traverse.MAX_DEPTH`) is enforced by
both parsers and the checker with E107, so text at the limit goes through every
stage and text beyond it fails the same way in every stage. The evaluating
backends take what the front end lets through: the reference interpreter and the
torch backend give equal values (and witnesses) on the deepest formula of every
family and on core IR of depth :data:`stlspec.ir.MAX_IR_DEPTH` built in code.
"""

from __future__ import annotations

import typing

import pytest
import numpy as np
from hypothesis import HealthCheck, find, settings

import stlspec
from stlspec import ast, ir
from stlspec.backends.core_text import format_core
from stlspec.cli import main
from stlspec.diagnostics import StlError
from stlspec.fastparse import Fallback, fast_parse
from stlspec.parser import lark_parse
from stlspec.trace import Trace
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


# ---------------------------------------------------------------- the backends at the deepest IR

# Seconds each on the loaded 2-core machine (lowering makes release and then 3 core nodes per operator).
_DEEP_IR_FAMILIES = ("release", "then", "until")


def _random_trace(vocab: ir.Vocabulary, N: int, T: int = 4, seed: int = 0) -> Trace:
    rng = np.random.default_rng(seed)
    return Trace.from_arrays(rng.random((N, len(vocab.categories))), rng.random((T, N, len(vocab.unary))),
                             rng.random((T, N, N, len(vocab.binary))), categories=vocab.categories,
                             unary_preds=vocab.unary_names, binary_preds=vocab.binary_names)


def _reference_and_torch_agree(spec: ir.Spec, trace: Trace, logic: str) -> None:
    from stlspec.backends import reference
    from stlspec.backends.torch import evaluate

    want = reference.evaluate(spec, trace, logic)
    value, witnesses = evaluate(spec, trace, logic)
    assert value == pytest.approx(want.value, abs=1e-9)
    assert len(witnesses) == len(want.witnesses) == len(spec.events)
    if spec.events:
        np.testing.assert_allclose(np.asarray(witnesses, dtype=float), np.asarray(want.witnesses, dtype=float),
                                   atol=1e-9, rtol=0)


@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.slow) if f in _DEEP_IR_FAMILIES else f
                                    for f in sorted(FAMILIES)])
def test_backends_agree_on_the_deepest_allowed_formula(family):
    pytest.importorskip("torch")
    core = stlspec.compile_text(spec(FAMILIES[family](MAX_DEPTH - 1)))
    (s,) = core.specs
    # One track for the 1,000 nested blocks of `exists` (separate blocks may reuse it: 1 assignment).
    trace = _random_trace(core.vocabulary, N=1 if family == "exists" else 2)
    _reference_and_torch_agree(s, trace, "godel")


def _deepest_core_formula() -> ir.Formula:
    """Core IR exactly :data:`ir.MAX_IR_DEPTH` nodes deep, cycling through every operator kind."""
    x, y = "x", "y"
    f: ir.Formula = ir.Unary("walking", x)
    for i in range(ir.MAX_IR_DEPTH - 3):
        match i % 9:
            case 0 | 7:
                f = ir.Not(f)
            case 1:
                f = ir.Eventually(f, ir.Window(0, 2))
            case 2:
                f = ir.And((f, ir.Unary("red", x)))
            case 3:
                f = ir.Next(f, weak=True, steps=2)
            case 4:
                f = ir.Until(ir.Unary("walking", y), f, ir.Window(1, 3))
            case 5:
                f = ir.Or((ir.Binary("near", x, y), f))
            case 6:
                f = ir.Always(f, ir.Window(0.0, 0.5, "fraction"))
            case 8:
                f = ir.Or((f, ir.Eq(x, y)))
    return ir.Exists((("x", "person"),), ir.Forall((("y", None),), f))


@pytest.mark.slow  # about 10 s of torch planning at depth 5,002 on the loaded 2-core machine; CI runs it
@pytest.mark.parametrize("logic", ["godel", "smooth"])
def test_reference_and_torch_take_core_ir_of_the_maximal_depth(logic):
    pytest.importorskip("torch")
    f = _deepest_core_formula()
    assert ir.depth(f) == ir.MAX_IR_DEPTH
    _reference_and_torch_agree(ir.Spec("s", f), _random_trace(strategies.VOCAB, N=2, T=6), logic)


def test_reference_witnesses_of_long_chains_cost_linear_time(monkeypatch):
    # Every event's witness pass re-reads the rest of its chain: memoised, a K-event chain costs O(K)
    # node evaluations (it was O(K²): 1,000 events took minutes).
    from stlspec.backends import reference

    calls = 0
    combine = reference._Interpreter.combine

    def counting(self, *args):
        nonlocal calls
        calls += 1
        return combine(self, *args)

    monkeypatch.setattr(reference._Interpreter, "combine", counting)
    counts = []
    for k in (100, 400):
        core = stlspec.compile_text(spec(FAMILIES["then"](k - 1)))
        calls = 0
        result = reference.evaluate(core.specs[0], _random_trace(core.vocabulary, N=2), "product")
        assert len(result.witnesses) == k
        counts.append(calls)
    assert counts[1] < 5 * counts[0], counts  # 4x the events: 16x if quadratic


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
