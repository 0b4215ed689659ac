"""Differential tests: emitted Scallop programs, run by a minmaxprob Datalog evaluator, equal ``godel``.

Scallop cannot run here, so ``tests/scallop_sim.py`` evaluates the emitted
text (after validating it against the subset grammar) with Scallop's
``minmaxprob`` rules -- min over a rule body, max over derivations, ``1 - p``
for ``not`` -- and these tests compare the ``sat`` tags and the normalised
``witness_*`` tags with the reference interpreter's ``godel`` values and
witness distributions:

* Hypothesis-generated specs (every core operator, windows of both units,
  event chains) on random fuzzy traces with presence masks;
* the same with hostile predicate, category, spec and variable names;
* every bundled example spec on its 0/1 traces and on fuzzy variants of them;
* fraction windows: the integer arithmetic of the ``num_frames`` helper
  relation against :meth:`stlspec.ir.Window.frames` for many lengths.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scallop_sim
import stlspec
from stlspec import ir
from stlspec.backends.reference import evaluate
from stlspec.backends.scallop import compile_program
from stlspec.backends.scallop.emit import _round_expr
from stlspec.trace import Trace, load_trace
from strategies import VOCAB, specs, traces

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"



def SETTINGS_N(n: int):
    # derandomize: the suite is a regression gate, not a fuzzing campaign (run one with
    # a larger max_examples by hand after changing the emitter).
    return settings(max_examples=n, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def simulate(program: ir.CoreProgram, trace: Trace) -> dict[str, tuple[float, tuple[tuple[float, ...], ...]]]:
    """Compile standalone, validate, evaluate: ``{spec: (value, witness distributions)}``."""
    return scallop_sim.run_program(compile_program(program, trace=trace, witnesses=True), trace.num_frames)


def assert_matches_reference(program: ir.CoreProgram, trace: Trace) -> None:
    got = simulate(program, trace)
    for spec in program.specs:
        ref = evaluate(spec, trace, "godel")
        value, dists = got[spec.name]
        assert value == pytest.approx(ref.value, abs=1e-9), spec.name
        # Witnesses are ratios of tiny numbers when the value is ~0; 1 - (1 - x) rounding
        # (forall/always are emitted through negation) makes them meaningless below 1e-6.
        if ref.value > 1e-6:
            assert len(dists) == len(ref.witnesses)
            for d, r in zip(dists, ref.witnesses):
                assert np.allclose(d, r, atol=1e-7), (d, r)


# ---------------------------------------------------------------------- random specs


@SETTINGS_N(120)
@given(specs(), traces())
def test_random_specs_match_godel(spec, trace):
    assert_matches_reference(ir.CoreProgram(VOCAB, (spec,)), trace)


@SETTINGS_N(50)
@given(specs(max_depth=2), traces(boolean=True))
def test_random_specs_on_boolean_traces(spec, trace):
    assert_matches_reference(ir.CoreProgram(VOCAB, (spec,)), trace)


# ---------------------------------------------------------------------- hostile names

HOSTILE_VOCAB = ir.Vocabulary(
    categories=("in", 'a"b\\', "then"),
    unary=(("x\ny", None), ("*/ //", None), ("~7e~", None)),
    binary=(("a < b, c > d", None, None), ("🙂\t", None, None)),
)
_RENAME = {"v0": "type", "v1": "_x", "v2": "in"}


def _rename(f: ir.Formula, m: dict[str, str]) -> ir.Formula:
    """Rename variables (IR names may be any string) to stress identifier mangling."""
    r = lambda v: m.get(v, v)  # noqa: E731
    match f:
        case ir.Const():
            return f
        case ir.Unary(p, v):
            return ir.Unary(p, r(v))
        case ir.Binary(p, a, b):
            return ir.Binary(p, r(a), r(b))
        case ir.Eq(a, b):
            return ir.Eq(r(a), r(b))
        case ir.Exists(vs, body) | ir.Forall(vs, body):
            return type(f)(tuple((r(v), c) for v, c in vs), _rename(body, m))
        case ir.Until(a, b, w):
            return ir.Until(_rename(a, m), _rename(b, m), w)
        case ir.And(args) | ir.Or(args):
            return type(f)(tuple(_rename(a, m) for a in args))
    return dataclasses.replace(f, arg=_rename(f.arg, m))


@SETTINGS_N(40)
@given(specs(HOSTILE_VOCAB), specs(HOSTILE_VOCAB), traces(HOSTILE_VOCAB),
       st.sampled_from(['sp"ec\n// x', "rel", "", "a b", "🙂"]))
def test_hostile_names(spec1, spec2, trace, spec_name):
    # Two specs in one program, one with hostile variable names: they share the input
    # relations and must still not interfere.
    s1 = dataclasses.replace(spec1, name=spec_name, formula=_rename(spec1.formula, _RENAME))
    s2 = dataclasses.replace(spec2, name="second")
    assert_matches_reference(ir.CoreProgram(HOSTILE_VOCAB, (s1, s2)), trace)


def test_hostile_names_never_reach_the_program_text():
    f = ir.Exists((("x", "in"),), ir.And((ir.Unary("x\ny", "x"), ir.Binary("a < b, c > d", "x", "x"))))
    text = compile_program(ir.CoreProgram(HOSTILE_VOCAB, (ir.Spec('s"\nquery x', f),))).text
    code = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
    assert "x\ny" not in text and "a < b" not in code and '"in"' in code
    assert all(not line.startswith("query x") for line in code.splitlines())


# ---------------------------------------------------------------------- examples


def _example_pairs():
    programs = {}
    for path in sorted((EXAMPLES / "specs").glob("*.stl")):
        program = stlspec.compile_file(str(path))
        for spec in program.specs:
            programs[spec.name] = program
    pairs = []
    for trace_path in sorted((EXAMPLES / "traces").glob("*.json")):
        name = trace_path.name.rsplit(".", 2)[0]
        if name in programs:
            pairs.append((programs[name], name, trace_path))
    return pairs


EXAMPLE_PAIRS = _example_pairs()


def _fuzz(trace: Trace, seed: int) -> Trace:
    """The same trace with every fact (and some zeros) replaced by random probabilities."""
    rng = np.random.default_rng(seed)

    def noisy(a):
        return np.where(a > 0, rng.uniform(0.3, 1.0, a.shape), rng.uniform(0, 1, a.shape) * (rng.random(a.shape) < 0.2))

    return Trace(names=noisy(trace.names), unary=noisy(trace.unary), binary=noisy(trace.binary),
                 present=trace.present, categories=trace.categories, unary_preds=trace.unary_preds,
                 binary_preds=trace.binary_preds, track_ids=trace.track_ids)


def test_examples_exist():
    assert len(EXAMPLE_PAIRS) >= 10


@pytest.mark.parametrize("program,name,trace_path", EXAMPLE_PAIRS,
                         ids=[p[2].name for p in EXAMPLE_PAIRS])
def test_example_spec_on_its_traces(program, name, trace_path):
    trace = load_trace(str(trace_path), program.vocabulary)
    single = ir.CoreProgram(program.vocabulary, (program.spec(name),))
    assert_matches_reference(single, trace)
    want = 1.0 if ".holds." in trace_path.name else 0.0
    assert simulate(single, trace)[name][0] == pytest.approx(want)
    assert_matches_reference(single, _fuzz(trace, seed=len(name)))


# ---------------------------------------------------------------------- fraction windows

FRACTIONS = sorted({0.0, 1.0, 0.1, 0.25, 0.3, 0.5, 0.3333, 0.7, 0.75, 0.9, 0.99, 0.001, 0.9999, 0.125})


def _eval_expr(expr: str, n: int) -> int:
    return eval(expr.replace(" / ", " // "), {"n": n})  # only digits, n, + - * // and parentheses


@pytest.mark.parametrize("x", FRACTIONS)
def test_fraction_bounds_match_window_frames(x):
    from stlspec.backends.scallop.emit import _fraction

    fr = _fraction(x)
    for T in list(range(1, 300)) + [1000, 4097, 100_000]:
        lo, _ = ir.Window(x, 1.0, "fraction").frames(T)
        _, hi = ir.Window(0.0, x, "fraction").frames(T)
        assert _eval_expr(_round_expr(fr, True), T) == lo, (x, T)
        assert _eval_expr(_round_expr(fr, False), T) == hi, (x, T)


@pytest.mark.parametrize("x", [0.123456789, 1 / 3])
def test_fraction_with_too_many_decimals_is_unsupported(x):
    spec = ir.Spec("s", ir.Eventually(ir.TRUE, ir.Window(x, 1.0, "fraction")))
    with pytest.raises(stlspec.StlError, match="E602"):
        compile_program(ir.CoreProgram(ir.Vocabulary(), (spec,)))


def test_fraction_window_through_the_program():
    # The helper relation itself, evaluated by the simulator, for several lengths.
    w = ir.Window(0.25, 0.75, "fraction")
    for T in (1, 2, 5, 9, 10, 13):
        trace = Trace.from_arrays(np.zeros((1, 1)), np.zeros((T, 1, 1)), np.zeros((T, 1, 1, 1)))
        spec = ir.Spec("s", ir.Eventually(ir.TRUE, w))
        out = compile_program(ir.CoreProgram(ir.Vocabulary(), (spec,)), trace=trace)
        rels = scallop_sim.run_text(out.text)
        (bounds,) = [r for r in rels if r.startswith("bounds")]
        assert set(rels[bounds]) == {w.frames(T)}


@pytest.mark.parametrize("w", [ir.Window(10**9, None), ir.Window(0, 10**12), ir.Window(2, 10**15),
                               ir.Window(10**15, 10**18), ir.Window(2, None), ir.Window(0.25, 1.0, "fraction")])
def test_huge_and_unbounded_windows_match_godel(w):
    rng = np.random.default_rng(7)
    trace = Trace.from_arrays(rng.uniform(size=(2, 3)), rng.uniform(size=(6, 2, 3)), rng.uniform(size=(6, 2, 2, 2)),
                              categories=VOCAB.categories, unary_preds=VOCAB.unary_names,
                              binary_preds=VOCAB.binary_names)
    a, b = ir.Unary("walking", "x"), ir.Unary("red", "x")
    specs_ = tuple(ir.Spec(f"s{i}", ir.Exists((("x", "person"),), f)) for i, f in
                   enumerate((ir.Eventually(a, w), ir.Always(a, w), ir.Until(a, b, w))))
    assert_matches_reference(ir.CoreProgram(VOCAB, specs_), trace)
