"""The Scallop emitter's structure and options (the semantics are in test_scallop_semantics.py).

* every program emitted for Hypothesis-generated specs (and hostile names)
  passes the subset grammar and the semantic self-check;
* structure: one relation per distinct sub-formula, negation only of a lower
  stratum, ``sat`` keyed by spec name, one witness relation per event;
* the backend through the registry: ``stlspec.compile(..., target="scallop",
  trace=..., specs=...)``, E602 for what Scallop cannot express;
* standalone facts: probability literals, probability-0 facts left out.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import stlspec
from stlspec import ir
from stlspec.diagnostics import StlError
from stlspec.backends.scallop import compile_program, validate
from stlspec.backends.scallop.emit import INPUT_RELATIONS, MAX_SPEC_RULES, format_probability
from stlspec.backends.scallop.validate import strata
from stlspec.trace import Trace
from strategies import VOCAB, specs, traces

FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PICK = ir.Spec(
    "pick",
    ir.Exists((("a", "person"), ("b", "cup")),
              ir.Eventually(ir.And((ir.Binary("holding", "a", "b"),
                                    ir.Next(ir.Eventually(ir.Unary("walking", "a"), event=1)))), event=0)),
    (ir.EventInfo(0, (0.0, 0.3), "holding"), ir.EventInfo(1, None, "walking")),
)
ASYM = ir.Spec("asym", ir.Forall((("x", None), ("y", None)),
                                 ir.Always(ir.Not(ir.And((ir.Binary("near", "x", "y"), ir.Binary("near", "y", "x")))))))
PROGRAM = ir.CoreProgram(VOCAB, (PICK, ASYM))


@FAST
@given(specs())
def test_every_emitted_program_is_in_the_subset(spec):
    validate(compile_program(ir.CoreProgram(VOCAB, (spec,))).text)


@FAST
@given(specs(max_depth=2), traces())
def test_every_standalone_program_is_in_the_subset(spec, trace):
    validate(compile_program(ir.CoreProgram(VOCAB, (spec,)), trace=trace).text)


def _relations(text: str) -> list[str]:
    return re.findall(r"^type (r\d+_\w+)\(", text, flags=re.M)


def test_one_relation_per_distinct_subformula():
    shared = ir.Unary("walking", "x")
    f = ir.Exists((("x", None),), ir.And((ir.Eventually(shared), ir.Always(shared), ir.Next(shared))))
    text = compile_program(ir.CoreProgram(VOCAB, (ir.Spec("s", f), ir.Spec("t", f)))).text
    rels = _relations(text)
    assert len([r for r in rels if r.endswith("_unary")]) == 1, "shared sub-formulas are emitted once"
    assert len([r for r in rels if r.endswith("_exists")]) == 1, "identical specs share relations"
    assert text.count('rel sat("s")') == 1 and text.count('rel sat("t")') == 1


def test_negation_is_stratified_and_never_recursive():
    module = validate(compile_program(PROGRAM).text)
    level = {rel: i for i, comp in enumerate(strata(module)) for rel in comp}
    for rule in module.rules:
        for lit in rule.body:
            if getattr(lit, "negated", False):
                assert level[lit.rel] < level[rule.head.rel]
    recursive = {r.head.rel for r in module.rules if any(getattr(x, "rel", None) == r.head.rel for x in r.body)}
    assert recursive, "temporal operators recurse over frames"
    assert all(re.search(r"_(eventually|always|until|prefix)", r) for r in recursive), recursive


def test_witness_queries_only_when_asked():
    # Under top-k provenances Scallop computes every queried relation: 129.5 s with the witness
    # queries against 3.5 s without (3 events, T = 32, N = 8), so they are opt-in.
    plain = compile_program(PROGRAM)
    assert plain.witnesses == {"pick": (), "asym": ()}
    assert "witness" not in plain.text and "_pin" not in plain.text


def test_outputs_and_schema():
    prog = compile_program(PROGRAM, witnesses=True)
    assert prog.specs == ("pick", "asym")
    assert prog.sat_keys == {"pick": "pick", "asym": "asym"}
    assert prog.witnesses == {"pick": ((0, "witness_s0_e0"), (1, "witness_s0_e1")), "asym": ()}
    assert prog.outputs["sat"] == (("spec", "String"),)
    assert prog.inputs == INPUT_RELATIONS
    for rel, fields in INPUT_RELATIONS.items():
        assert f"type {rel}({', '.join(f'{f}: {t}' for f, t in fields)})" in prog.text
    assert "query sat" in prog.text and "query witness_s0_e1" in prog.text
    assert not prog.standalone and "rel unary = {" not in prog.text


def test_registry_compile_with_cli_options():
    trace = Trace.from_arrays(np.ones((2, 3)), np.full((3, 2, 3), 0.5), np.zeros((3, 2, 2, 2)),
                              categories=VOCAB.categories, unary_preds=VOCAB.unary_names,
                              binary_preds=VOCAB.binary_names)
    out = stlspec.compile(PROGRAM, target="scallop", trace=None, specs=None)
    assert out.specs == ("pick", "asym")
    only = stlspec.compile(PROGRAM, target="scallop", trace=trace, specs=["asym"])
    assert only.specs == ("asym",) and only.standalone
    assert '"pick"' not in only.text and "rel num_frames = {(3,)}" in only.text
    assert str(only) == only.text


def test_unknown_spec_and_option_are_errors():
    with pytest.raises(stlspec.StlError, match="E602"):
        stlspec.compile(PROGRAM, target="scallop", specs=["nope"])
    with pytest.raises(TypeError):
        stlspec.compile(PROGRAM, target="scallop", logic="product")


def test_probability_literals():
    for x, text in [(0.9, "0.9"), (1.0, "1.0"), (1e-05, "0.00001"), (0.5, "0.5"), (1, "1.0"),
                    (2.5e-10, "0.00000000025")]:
        assert format_probability(x) == text
    for x in np.random.default_rng(0).uniform(0, 1, 200):
        lit = format_probability(x)
        assert re.fullmatch(r"0\.[0-9]+|1\.0", lit) and float(lit) == x


def test_zero_facts_are_left_out_and_presence_applies():
    unary = np.zeros((2, 2, 3))
    unary[0, 0, 0] = 0.25
    unary[1, 1, 0] = 0.75
    present = np.array([[True, True], [True, False]])
    trace = Trace.from_arrays(np.eye(2, 3), unary, np.zeros((2, 2, 2, 2)), present,
                              categories=VOCAB.categories, unary_preds=VOCAB.unary_names,
                              binary_preds=VOCAB.binary_names)
    text = compile_program(PROGRAM, trace=trace).text
    assert '0.25::("walking", 0, 0)' in text
    assert "0.75" not in text, "facts of absent tracks are 0 and left out"
    assert "rel binary" not in text
    assert "1.0::(0, \"person\")" in text and "1.0::(1, \"cup\")" in text


def test_weak_next_and_false_and_true():
    f = ir.Or((ir.Next(ir.FALSE, weak=True), ir.Not(ir.TRUE)))
    text = compile_program(ir.CoreProgram(VOCAB, (ir.Spec("s", f),))).text
    assert "rel last(t) = frame(t) and num_frames(n) and t + 1 == n" in text
    assert re.search(r"type r\d+_false\(t: i32\)\n(?!rel r\d+_false)", text), "false has no rule"


def test_quantified_variables_range_over_candidates_early():
    # exists x: person. not walking(x): without early restriction the `not` relation holds a row per
    # track; with it, only for tracks that may be persons (candidate facts: name score > 0).
    f = ir.Exists((("x", "person"),), ir.Not(ir.Unary("walking", "x")))
    text = compile_program(ir.CoreProgram(VOCAB, (ir.Spec("s", f),))).text
    assert re.search(r'rel r\d+_unary\(t, v_x\) = unary\("walking", t, v_x\) and candidate\(v_x, "person"\)', text)
    assert re.search(r'rel r\d+_not\(t, v_x\) = frame\(t\) and candidate\(v_x, "person"\) and not ', text)
    # The same sub-formula under a variable of another category is another relation.
    g = ir.And((f, ir.Exists((("x", "cup"),), ir.Not(ir.Unary("walking", "x")))))
    text = compile_program(ir.CoreProgram(VOCAB, (ir.Spec("s", g),))).text
    assert 'candidate(v_x, "cup")' in text and 'candidate(v_x, "person")' in text


def test_standalone_programs_embed_only_facts_some_spec_reads():
    trace = Trace.from_arrays(np.ones((2, 3)), np.full((3, 2, 3), 0.5), np.full((3, 2, 2, 2), 0.5),
                              categories=VOCAB.categories, unary_preds=VOCAB.unary_names,
                              binary_preds=VOCAB.binary_names)
    f = ir.Exists((("x", "person"),), ir.Eventually(ir.Unary("walking", "x")))
    text = compile_program(ir.CoreProgram(VOCAB, (ir.Spec("s", f),)), trace=trace).text
    assert '("walking", 0, 0)' in text
    assert '"open"' not in text and '"red"' not in text and "rel binary" not in text
    assert '"cup"' not in text and '(0, "person")' in text


@pytest.mark.parametrize("w", [ir.Window(10**9, None), ir.Window(0, 10**12), ir.Window(10**15, 10**18),
                               ir.Window(3, 10**9)])
def test_huge_window_bounds(w):
    a = ir.Unary("walking", "x")
    for f in (ir.Eventually(a, w), ir.Always(a, w), ir.Until(a, ir.Unary("red", "x"), w)):
        spec = ir.Spec("s", ir.Exists((("x", None),), f))
        out = stlspec.compile(ir.CoreProgram(VOCAB, (spec,)), target="scallop")  # self-checked
        code = "\n".join(line for line in out.text.splitlines() if not line.startswith("//"))
        assert all(len(n) <= 9 for n in re.findall(r"\d+", code)), "integer literals stay inside i32"


def _chain(n: int) -> ir.Spec:
    """``n`` alternating next/not over an atom, under ``exists``: ``n + 2`` relations of one rule each."""
    f: ir.Formula = ir.Unary("walking", "x")
    for i in range(n):
        f = ir.Not(f) if i % 2 else ir.Next(f)
    return ir.Spec("s", ir.Exists((("x", None),), f))


def test_size_limit_per_spec():
    # Scallop's compiler slows down faster than the square of a program's size (tests/test_scallop_real.py
    # runs a spec at the limit): one rule more than MAX_SPEC_RULES is E601, at the spec.
    out = compile_program(ir.CoreProgram(VOCAB, (_chain(MAX_SPEC_RULES - 2),)))
    assert sum(line.startswith("rel r") for line in out.text.splitlines()) == MAX_SPEC_RULES
    for spec in (_chain(MAX_SPEC_RULES - 1), _chain(ir.MAX_IR_DEPTH)):
        with pytest.raises(StlError) as err:
            compile_program(ir.CoreProgram(VOCAB, (PICK, spec)))
        (d,) = err.value.diagnostics
        assert d.code == "E601" and "spec 's' needs" in d.message and f"limit is {MAX_SPEC_RULES:,}" in d.message
    # Hash-consed relations shared with an earlier spec count once, for the spec that first needs them.
    compile_program(ir.CoreProgram(VOCAB, (_chain(MAX_SPEC_RULES - 2), replace(_chain(MAX_SPEC_RULES - 2),
                                                                               name="t"))))


def test_the_deepest_text_is_refused_at_its_spec_name(tmp_path, capsys):
    from stlspec.cli import main
    from stlspec.traverse import MAX_DEPTH

    path = tmp_path / "deep.stl"
    path.write_text("unary a(any)\nspec deep {\n  exists x. " + "a(x) release[1, 2] " * (MAX_DEPTH - 1)
                    + "a(x)\n}\n")
    assert main(["compile", "--target", "core", "-o", str(tmp_path / "core.txt"), str(path)]) == 0
    capsys.readouterr()
    assert main(["compile", "--target", "scallop", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2:6: error[E601]: spec 'deep' needs" in err
    assert "2 | spec deep {" in err and "  |      ^^^^" in err
