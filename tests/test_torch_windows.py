"""Windowed operators on longer traces: the torch backend against the reference interpreter, T up to 16.

``tests/test_torch_backend.py`` compares the backends on traces of at most 6
frames, where a window of a few frames already covers most of the video. Here
specs are built around windowed ``eventually``/``always``/``until``/``release``
and ``next[k]`` (:func:`strategies.windowed_specs`) with bounds up to and beyond
the trace length, fraction windows whose rounding matters, nested windows and
``then`` chains with a windowed head, on traces of 1 to 16 frames (with and
without presence masks, fuzzy and 0/1). Values and witnesses must agree to 1e-9
in float64 in every logic torch supports.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hyp import examples  # noqa: E402
from stlspec import ir  # noqa: E402
from stlspec.backends import reference  # noqa: E402
from stlspec.backends.torch import SceneGraphBatch, compile_specs, evaluate  # noqa: E402
from strategies import VOCAB, long_windows, traces, windowed_specs  # noqa: E402

# float64 on both sides: the backends differ only by rounding (products, log-sum-exp in another order).
TOL = 1e-9
SETTINGS = settings(max_examples=examples(25), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _close(ref: reference.Result, value: float, wits) -> None:
    assert value == pytest.approx(ref.value, abs=TOL)
    if ref.witnesses:
        got = np.asarray(wits, dtype=float)[: len(ref.witnesses)]
        np.testing.assert_allclose(got, np.asarray(ref.witnesses, dtype=float), atol=TOL, rtol=0)


@pytest.mark.parametrize("logic", ("boolean", "godel", "product", "smooth"))
@SETTINGS
@given(spec=windowed_specs(max_T=16), trace=traces(max_T=16, max_N=3))
def test_windowed_specs_match_reference_up_to_T16(logic, spec, trace):
    ref = reference.evaluate(spec, trace, logic, 0.1)
    _close(ref, *evaluate(spec, trace, logic, 0.1))


@pytest.mark.parametrize("logic", ("godel", "product", "smooth"))
@settings(max_examples=examples(10), deadline=None, suppress_health_check=list(HealthCheck))
@given(pairs=st.lists(st.tuples(windowed_specs(max_T=16), traces(max_T=16, max_N=3)), min_size=2, max_size=4))
def test_windowed_specs_in_one_padded_batch(logic, pairs):
    # Videos of different lengths in one call: a window is resolved against each video's own T.
    specs_ = [ir.Spec(f"s{i}", s.formula, s.events) for i, (s, _) in enumerate(pairs)]
    ev = compile_specs(specs_, vocabulary=VOCAB, logic=logic)
    out = ev(SceneGraphBatch.from_traces([t for _, t in pairs], ev.columns, dtype=torch.float64))
    for i, (spec, trace) in enumerate(pairs):
        _close(reference.evaluate(spec, trace, logic, 0.1), float(out.values[i]),
               out.witnesses[i, :, : trace.num_frames].tolist())


@pytest.mark.parametrize("T", [1, 2, 7, 11, 16])
@pytest.mark.parametrize("logic", ("godel", "product"))
@settings(max_examples=examples(8), deadline=None, suppress_health_check=list(HealthCheck))
@given(w=long_windows(16), data=st.data())
def test_each_window_at_each_length(T, logic, w, data):
    # Every windowed operator alone, at fixed lengths (T = 1 and T = 16 included every run).
    trace = data.draw(traces(min_T=T, max_T=T, max_N=2))
    a, b = ir.Unary("walking", "x"), ir.Unary("red", "x")
    for f in (ir.Eventually(a, w), ir.Always(a, w), ir.Until(a, b, w),
              ir.Not(ir.Until(ir.Not(a), ir.Not(b), w))):
        spec = ir.Spec("s", ir.Exists((("x", None),), f))
        _close(reference.evaluate(spec, trace, logic, witnesses=False), evaluate(spec, trace, logic)[0], [])
