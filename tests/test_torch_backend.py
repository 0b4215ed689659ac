"""The torch backend against the reference interpreter, plus its own batching and gradient properties.

Differential tests run in float64 on Hypothesis specs and traces from
``strategies.py``; the rest checks what only a batched, differentiable backend
can get wrong: padding, batch composition, grouping, gradients at 0/1, top-m.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from strategies import VOCAB, boolean_traces, specs, traces  # noqa: E402

import stlspec  # noqa: E402
from stlspec import ir  # noqa: E402
from stlspec.backends import reference  # noqa: E402
from stlspec.backends.torch import Columns, SceneGraphBatch, TorchEvaluator, compile_specs, evaluate  # noqa: E402
from stlspec.trace import Trace  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LOGICS = ("boolean", "godel", "product", "smooth")
TOL = 1e-5
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.data_too_large])


def _close(ref: reference.Result, value: float, wits, tol: float = TOL) -> None:
    assert value == pytest.approx(ref.value, abs=tol)
    if ref.witnesses:
        got = np.asarray(wits, dtype=float)[: len(ref.witnesses)]
        np.testing.assert_allclose(got, np.asarray(ref.witnesses, dtype=float), atol=tol)


# ---------------------------------------------------------------------- differential


@pytest.mark.parametrize("logic", LOGICS)
@FAST
@given(spec=specs(max_depth=3, max_events=3), trace=traces(max_T=5, max_N=3))
def test_matches_reference(logic, spec, trace):
    ref = reference.evaluate(spec, trace, logic, 0.1)
    value, wits = evaluate(spec, trace, logic, 0.1)
    _close(ref, value, wits)


@FAST
@given(spec=specs(max_depth=3), trace=traces(max_T=5, max_N=3), tau=st.sampled_from((0.02, 0.5)))
def test_smooth_temperatures(spec, trace, tau):
    ref = reference.evaluate(spec, trace, "smooth", tau)
    value, wits = evaluate(spec, trace, "smooth", tau)
    _close(ref, value, wits)


@pytest.mark.parametrize("logic", ("godel", "product", "smooth"))
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(pairs=st.lists(st.tuples(specs(max_depth=2, max_events=2), traces(max_T=5, max_N=3)), min_size=1, max_size=4))
def test_heterogeneous_padded_batch_matches_reference(logic, pairs):
    # Different specs on differently sized videos, one call: padding and grouping change nothing.
    spec_list = [ir.Spec(f"s{i}", s.formula, s.events) for i, (s, _) in enumerate(pairs)]
    ev = compile_specs(spec_list, vocabulary=VOCAB, logic=logic)
    batch = SceneGraphBatch.from_traces([t for _, t in pairs], ev.columns, dtype=torch.float64)
    out = ev(batch)
    for i, (spec, trace) in enumerate(pairs):
        ref = reference.evaluate(spec, trace, logic, 0.1)
        _close(ref, float(out.values[i]), out.witnesses[i, :, : trace.num_frames].tolist())


@pytest.mark.parametrize("logic", ("boolean", "godel", "product", "smooth"))
@FAST
@given(spec=specs(max_depth=2, max_events=3), trace=traces(max_T=6, max_N=3))
def test_chain_witnesses_match_reference(logic, spec, trace):
    # Later events of a chain: Pre_k ∧ Body_k in every logic, also where ∧ does not distribute over ∨.
    ref = reference.evaluate(spec, trace, logic)
    value, wits = evaluate(spec, trace, logic)
    _close(ref, value, wits)
    for w in wits:
        assert min(w) >= 0 and sum(w) == pytest.approx(1.0 if sum(w) else 0.0)


def test_chain_witness_worked_example():
    # One track, a = [.5, .5, 0], b = [0, .5, .5], product: Pre_1 = [0, .5, .75], Body_1 = b,
    # scores [0, .25, .375] -> witness [0, .4, .6] (reference and torch alike).
    spec = ir.Spec("s", ir.Exists((("x", None),), ir.Eventually(ir.And((ir.Unary("red", "x"), ir.Next(
        ir.Eventually(ir.Unary("walking", "x"), None, 1)))), None, 0)), (ir.EventInfo(0), ir.EventInfo(1)))
    v = VOCAB
    unary = np.zeros((3, 1, len(v.unary)))
    ir_, iw = v.unary_names.index("red"), v.unary_names.index("walking")
    unary[:, 0, ir_] = [0.5, 0.5, 0.0]
    unary[:, 0, iw] = [0.0, 0.5, 0.5]
    trace = Trace.from_arrays(np.ones((1, len(v.categories))), unary, np.zeros((3, 1, 1, len(v.binary))),
                              categories=v.categories, unary_preds=v.unary_names, binary_preds=v.binary_names)
    ref = reference.evaluate(spec, trace, "product")
    np.testing.assert_allclose(ref.witnesses[1], [0.0, 0.4, 0.6], atol=1e-12)
    _close(ref, *evaluate(spec, trace, "product"))


@pytest.mark.parametrize("logic", ("godel", "product", "smooth"))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=specs(max_depth=3), trace=boolean_traces(max_T=5, max_N=3))
def test_boolean_inputs_agree_with_boolean(logic, spec, trace):
    b = reference.evaluate(spec, trace, "boolean").value
    value, _ = evaluate(spec, trace, logic, 0.1, witnesses=False)
    if logic == "smooth":
        # Smooth only tends to boolean: each fold of n operands moves a value by at most τ·log n, so along
        # a path of d folds |smooth − boolean| <= d·τ·log(n_max). Here d <= 15 and n_max <= 24 (6 frames,
        # 4·3·2 assignments): with τ = 1e-7 that is < 5e-6, inside the 1e-5 of every comparison.
        assert evaluate(spec, trace, "smooth", 1e-7, witnesses=False)[0] == pytest.approx(b, abs=TOL)
    else:
        assert value == pytest.approx(b, abs=TOL)


def test_compiled_text_spec_matches_reference():
    program = stlspec.compile_text("""
        category person, cup, door
        unary walking(person), open(door)
        binary holding(person, any), near(any, any)
        spec pick "a man picks up a cup, then walks to the door" {
          exists a: person, b: cup, d: door.
            near(a, b) @early then holding(a, b) then walking(a) and near(a, d) @late
        }
        spec windows { exists a: person. eventually[0.0, 0.5] walking(a) and (walking(a) until[1, 3] not walking(a)) }
    """)
    rng = np.random.default_rng(1)
    v = program.vocabulary
    trace = Trace.from_arrays(rng.random((4, 3)), rng.random((6, 4, 2)), rng.random((6, 4, 4, 2)),
                              categories=v.categories, unary_preds=v.unary_names, binary_preds=v.binary_names)
    ev = stlspec.compile(program, target="torch", logic="product")
    assert isinstance(ev, TorchEvaluator)
    batch = SceneGraphBatch.from_traces([trace], ev.columns, dtype=torch.float64)
    out = ev(batch, spec_ids=["pick", "windows"], video_ids=[0, 0])
    for k, spec in enumerate(program.specs):
        _close(reference.evaluate(spec, trace, "product"), float(out.values[k]), out.witnesses[k].tolist())
    assert out.event_mask.tolist() == [[True, True, True], [False, False, False]]


# ---------------------------------------------------------------------- batching properties


def _laser_specs(n: int, seed: int = 0) -> list[ir.Spec]:
    """Random 3-event, 3-variable specs with 2 atoms per event (the benchmark's shape)."""
    rng = np.random.default_rng(seed)
    vs = ("a", "b", "c")
    out = []
    for i in range(n):
        def atom():
            if rng.random() < 0.5:
                return ir.Unary(VOCAB.unary_names[rng.integers(len(VOCAB.unary))], vs[rng.integers(3)])
            a, b = rng.choice(3, 2, replace=False)
            return ir.Binary(VOCAB.binary_names[rng.integers(len(VOCAB.binary))], vs[a], vs[b])
        elems = [ir.And((atom(), atom())) for _ in range(3)]
        f: ir.Formula = ir.Eventually(elems[2], event=2)
        for k in (1, 0):
            f = ir.Eventually(ir.And((elems[k], ir.Next(f))), event=k)
        cats = [VOCAB.categories[j] for j in rng.integers(len(VOCAB.categories), size=3)]
        out.append(ir.Spec(f"laser{i}", ir.Exists(tuple(zip(vs, cats)), f),
                           tuple(ir.EventInfo(k) for k in range(3))))
    return out


def _random_batch(B, T, N, *, seed=0, dtype=torch.float64, lengths=None, tracks=None):
    g = torch.Generator().manual_seed(seed)
    C, P, R = len(VOCAB.categories), len(VOCAB.unary), len(VOCAB.binary)
    fm = torch.ones(B, T, dtype=torch.bool)
    tm = torch.ones(B, N, dtype=torch.bool)
    if lengths is not None:
        fm = torch.arange(T)[None, :] < torch.as_tensor(lengths)[:, None]
    if tracks is not None:
        tm = torch.arange(N)[None, :] < torch.as_tensor(tracks)[:, None]
    return SceneGraphBatch(torch.rand(B, N, C, generator=g, dtype=dtype),
                           torch.rand(B, T, N, P, generator=g, dtype=dtype),
                           torch.rand(B, T, N, N, R, generator=g, dtype=dtype), fm, tm)


@pytest.mark.parametrize("fused", [None, False], ids=["fused", "generic"])
def test_padding_never_changes_results(fused):
    specs_ = _laser_specs(4) + [ir.Spec("w", ir.Forall((("x", "person"),), ir.Always(
        ir.Until(ir.Unary("red", "x"), ir.Unary("walking", "x"), ir.Window(0.25, 0.75, "fraction")),
        ir.Window(1, None))))]
    for logic in ("godel", "product", "smooth"):
        ev = compile_specs(specs_, vocabulary=VOCAB, logic=logic, fused=fused)
        small = _random_batch(1, 5, 3, seed=3)
        big = _random_batch(1, 9, 6, seed=4, lengths=[5], tracks=[3])  # padding filled with garbage
        big.names[:, :3] = small.names[0]
        big.unary[:, :5, :3] = small.unary[0]
        big.binary[:, :5, :3, :3] = small.binary[0]
        ids = list(range(len(specs_)))
        a = ev(small, ids, [0] * len(ids))
        b = ev(big, ids, [0] * len(ids))
        torch.testing.assert_close(a.values, b.values, atol=1e-10, rtol=0)
        torch.testing.assert_close(a.witnesses, b.witnesses[..., :5], atol=1e-10, rtol=0)
        assert float(b.witnesses[..., 5:].abs().sum()) == 0.0


@pytest.mark.parametrize("fused", [None, False], ids=["fused", "generic"])
def test_batch_composition_invariance(fused):
    specs_ = _laser_specs(8, seed=2)
    ev = compile_specs(specs_, vocabulary=VOCAB, logic="product", fused=fused)
    batch = _random_batch(8, 7, 4, seed=5, lengths=[7, 3, 5, 7, 1, 2, 6, 7], tracks=[4, 2, 3, 4, 4, 3, 2, 4])
    full = ev(batch)
    for b in (0, 4, 6):
        one = SceneGraphBatch(batch.names[b:b + 1], batch.unary[b:b + 1], batch.binary[b:b + 1],
                              batch.frame_mask[b:b + 1], batch.track_mask[b:b + 1])
        alone = ev(one, [b], [0])
        torch.testing.assert_close(alone.values[0], full.values[b], atol=1e-12, rtol=0)
        torch.testing.assert_close(alone.witnesses[0], full.witnesses[b], atol=1e-12, rtol=0)


@pytest.mark.parametrize("engine", ["v2", "v2-generic", "v1"])
def test_per_instance_witness_flags(engine):
    """One flag per instance: flagged instances get the witnesses of a witnesses=True call, the others
    zero rows; values and gradients are those of the two separate calls (also when chunked)."""
    specs_ = _laser_specs(6, seed=3) + _shape_mix(3)
    batch = _random_batch(9, 6, 4, seed=4, lengths=[6, 3, 6, 1, 5, 6, 2, 6, 4], tracks=[4, 2, 4, 4, 3, 1, 4, 2, 3])
    flags = [True, False, False, True, True, False, True, False, True]
    w = torch.linspace(0, 1, 6, dtype=torch.float64)
    fused = {"fused": False} if engine == "v2-generic" else {}
    engine = engine[:2]

    def run(witnesses, **options):
        ev = compile_specs(specs_, vocabulary=VOCAB, logic="product", engine=engine, **fused, **options)
        leaves = [x.double().clone().requires_grad_(True) for x in (batch.names, batch.unary, batch.binary)]
        out = ev(SceneGraphBatch(*leaves, batch.frame_mask, batch.track_mask), list(range(9)), list(range(9)),
                 witnesses=witnesses)
        loss = out.values.sum() + ((out.witnesses * w).sum() if out.witnesses is not None else 0)
        loss.backward()
        return out, [x.grad for x in leaves]

    full, _ = run(True)
    bare, _ = run(False)
    on = torch.tensor(flags)
    for options in ({}, {"max_chunk_elements": 1}) if engine == "v2" else ({},):
        mixed, grads = run(flags, **options)
        torch.testing.assert_close(mixed.values, full.values, atol=1e-12, rtol=0)
        E = mixed.witnesses.shape[1]
        torch.testing.assert_close(mixed.witnesses[on], full.witnesses[on][:, :E], atol=1e-12, rtol=0)
        assert (mixed.witnesses[~on] == 0).all()
        # the gradient is the values' (every instance) plus the flagged instances' witnesses'
        ev = compile_specs(specs_, vocabulary=VOCAB, logic="product", engine=engine, **fused)
        leaves = [x.double().clone().requires_grad_(True) for x in (batch.names, batch.unary, batch.binary)]
        sb = SceneGraphBatch(*leaves, batch.frame_mask, batch.track_mask)
        ids = [k for k in range(9) if flags[k]]
        (ev(sb, list(range(9)), list(range(9)), witnesses=False).values.sum()
         + (ev(sb, ids, ids).witnesses * w).sum()).backward()
        for a, b in zip(grads, leaves):
            torch.testing.assert_close(a, b.grad, atol=1e-12, rtol=0)
    assert bare.witnesses is None


def test_bad_witness_flags_are_our_errors():
    ev = compile_specs(_laser_specs(2), vocabulary=VOCAB, logic="product")
    batch = _random_batch(2, 4, 3)
    for flags, match in (([True], "2 bools"), ([1, 0], "dtype int"), ("yes", "2 bools")):
        with pytest.raises(stlspec.StlError, match=match) as err:
            ev(batch, [0, 1], [0, 1], witnesses=flags)
        assert err.value.diagnostics[0].code == "E604"


def test_chunks_and_gathers_keep_values_and_gradients_exact():
    """Chunked (checkpointed) evaluation equals one chunk, and the prepared gather backwards equal
    autograd's, in float64 (index_add_) and float32 (embedding_bag on CPU), with padding and absent
    tracks; the generic engine's chunks also equal the fused chain kernel's (the unchunked run)."""
    specs_ = _laser_specs(6, seed=4) + _shape_mix(6)
    batch = _random_batch(12, 6, 4, seed=8, lengths=[6, 3, 6, 1, 5, 6, 6, 2, 6, 4, 6, 6],
                          tracks=[4, 2, 4, 4, 3, 4, 1, 4, 4, 2, 4, 3])
    present = torch.rand(12, 6, 4, generator=torch.Generator().manual_seed(9)) > 0.2
    ids, vids = list(range(12)) + [0, 3], list(range(12)) + [5, 5]
    w = torch.linspace(0, 1, 6, dtype=torch.float64)

    def run(dtype, **options):
        ev = compile_specs(specs_, vocabulary=VOCAB, logic="product", **options)
        leaves = [x.to(dtype).clone().requires_grad_(True) for x in (batch.names, batch.unary, batch.binary)]
        out = ev(SceneGraphBatch(*leaves, batch.frame_mask, batch.track_mask, present), ids, vids)
        (out.values.sum() + (out.witnesses * w.to(dtype)).sum()).backward()
        return [out.values.detach(), out.witnesses.detach()] + [x.grad.double() for x in leaves]

    one = run(torch.float64)
    for got in (run(torch.float64, max_chunk_elements=1, fused=False),
                run(torch.float64, max_chunk_elements=1, checkpoint_above=0, fused=False),
                run(torch.float64, fused=False), run(torch.float32), run(torch.float32, fused=False)):
        tol = 1e-12 if got[0].dtype == torch.float64 else 1e-5
        for a, b in zip(one, got):
            torch.testing.assert_close(b.double(), a, atol=tol, rtol=0)


@pytest.mark.parametrize("vids", [[7, 2, 9, 0, 4, 11, 5], [3, 3, 8, 1, 1, 10, 6]], ids=["distinct", "shared"])
def test_chunks_cut_between_videos_read_their_slices_exactly(vids):
    """Chunks cut between videos (unsorted video ids, videos without instances, and videos with
    several instances) evaluate on their slices of the fact tensors: values, witnesses and every
    gradient equal one chunk's."""
    specs_ = _laser_specs(4, seed=6) + _shape_mix(3)
    batch = _random_batch(12, 6, 4, seed=11, lengths=[6, 3, 6, 1, 5, 6, 6, 2, 6, 4, 6, 6],
                          tracks=[4, 2, 4, 4, 3, 4, 1, 4, 4, 2, 4, 3])
    present = torch.rand(12, 6, 4, generator=torch.Generator().manual_seed(2)) > 0.2
    ids = list(range(7))
    w = torch.linspace(0, 1, 6, dtype=torch.float64)

    def run(**options):  # the generic engine's chunks (the fused kernel does not chunk)
        ev = compile_specs(specs_, vocabulary=VOCAB, logic="product", fused=False, **options)
        leaves = [x.double().clone().requires_grad_(True) for x in (batch.names, batch.unary, batch.binary)]
        out = ev(SceneGraphBatch(*leaves, batch.frame_mask, batch.track_mask, present), ids, vids)
        (out.values.sum() + (out.witnesses * w).sum()).backward()
        return [out.values.detach(), out.witnesses.detach()] + [x.grad for x in leaves]

    one = run()
    for limit in (1, 600):
        for above in (None, 0):  # chunks keeping their activations, and checkpointed chunks
            for a, b in zip(one, run(max_chunk_elements=limit, checkpoint_above=above)):
                torch.testing.assert_close(b, a, atol=1e-12, rtol=0)


def test_chunks_are_checkpointed_only_above_the_activation_budget(monkeypatch):
    """Chunks keep their activations while the call's estimate is under ``checkpoint_above`` (default
    2 GiB on CPU) and are recomputed in the backward pass above it."""
    import torch.utils.checkpoint as C

    calls = []
    real = C.checkpoint
    monkeypatch.setattr(C, "checkpoint", lambda fn, *a, **k: calls.append(fn) or real(fn, *a, **k))
    specs_ = _laser_specs(4, seed=6)
    batch = _random_batch(4, 6, 4, seed=3)

    def run(**options):
        calls.clear()
        ev = compile_specs(specs_, vocabulary=VOCAB, logic="product", max_chunk_elements=1, fused=False, **options)
        leaves = [x.double().clone().requires_grad_(True) for x in (batch.names, batch.unary, batch.binary)]
        ev(SceneGraphBatch(*leaves, batch.frame_mask, batch.track_mask)).values.sum().backward()
        with torch.no_grad():
            ev(SceneGraphBatch(*leaves, batch.frame_mask, batch.track_mask))
        return len(calls)

    assert run() == 0
    assert run(checkpoint_above=0) == 4  # one per chunk (one video each), and none without autograd
    assert run(checkpoint_above=1 << 40) == 0


def test_row_gather_backward_equals_autograd():
    from stlspec.backends.torch import ops

    g = torch.Generator().manual_seed(0)
    for rows, n in ((torch.randperm(7, generator=g), 7), (torch.tensor([3, 0, 3, 3, 5, 0]), 6),
                    (torch.tensor([], dtype=torch.long), 4)):
        for dtype in (torch.float32, torch.float64):
            x = torch.rand(n, 5, dtype=dtype, generator=g).requires_grad_(True)
            y = ops.gather_rows(x, ops.RowIndex(rows.numpy(), n, x.device))
            up = torch.rand(y.shape, dtype=dtype, generator=g)
            (gx,) = torch.autograd.grad(y, x, up)
            (ref,) = torch.autograd.grad(x.index_select(0, rows), x, up)
            torch.testing.assert_close(y, x.index_select(0, rows), atol=0, rtol=0)
            torch.testing.assert_close(gx, ref, atol=1e-6 if dtype == torch.float32 else 1e-15, rtol=0)


class _CountOps(torch.utils._python_dispatch.TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is not torch.ops.aten.lift_fresh.default:  # a marker for host data, not a kernel
            self.n += 1
        return func(*args, **(kwargs or {}))


def _shape_mix(n: int) -> list[ir.Spec]:
    """``n`` specs of many different shapes (chains of 1-3 events, windows, until, forall, negation)."""
    out = []
    laser = _laser_specs(n, seed=7)
    for i, s in enumerate(laser):
        f = s.formula
        match i % 6:
            case 1:  # a windowed always conjoined to the chain
                f = ir.Exists(f.vars, ir.And((f.body, ir.Always(ir.Unary("red", "a"), ir.Window(0.0, 0.5, "fraction")))))
            case 2:
                f = ir.Forall(f.vars, ir.Until(ir.Unary("red", "a"), ir.Not(ir.Binary("near", "a", "b")), ir.Window(1, 3)))
            case 3:
                f = ir.Exists(f.vars[:2], ir.Eventually(ir.And((ir.Unary("red", "a"), ir.Next(ir.Eventually(
                    ir.Binary("holding", "a", "b"), event=1)))), event=0))
            case 4:
                f = ir.Or((f, ir.Forall((("x", "cup"),), ir.Always(ir.Unary("open", "x")))))
        out.append(ir.Spec(f"mix{i}", f, s.events if i % 6 in (0, 1, 4) else
                           ((ir.EventInfo(0), ir.EventInfo(1)) if i % 6 == 3 else ())))
    return out


def test_kernel_launches_depend_on_neither_batch_size_nor_number_of_shapes():
    specs_ = _shape_mix(300)
    ev = compile_specs(specs_, vocabulary=VOCAB, logic="product")
    assert ev.num_groups == 1  # every call is one plan
    counts = []
    for B in (12, 48, 192):
        batch = _random_batch(B, 6, 4, dtype=torch.float32)
        ids = list(range(B))  # B = 12 holds each of the 6 families twice; 192 holds 192 distinct specs
        with _CountOps() as c:
            ev(batch, ids)
        counts.append(c.n)
    # Equal up to reads that happen to be the identity (skipped) and sources split over batches.
    assert max(counts) <= 1.1 * min(counts), counts
    # The per-shape engine (v1, kept for comparison) grows with the number of shapes in the call.
    v1 = compile_specs(specs_, vocabulary=VOCAB, logic="product", engine="v1")
    batch = _random_batch(48, 6, 4, dtype=torch.float32)
    with _CountOps() as c:
        v1(batch, list(range(48)))
    assert c.n > 2 * counts[1]


def test_several_specs_per_video_and_names():
    specs_ = _laser_specs(3)
    ev = compile_specs(specs_, vocabulary=VOCAB, logic="product")
    batch = _random_batch(2, 6, 3)
    out = ev(batch, spec_ids=["laser0", "laser1", "laser2", "laser0"], video_ids=[0, 0, 0, 1])
    assert out.values.shape == (4,) and out.witnesses.shape == (4, 3, 6)
    single = ev(batch, [0, 0], [0, 1])
    torch.testing.assert_close(out.values[[0, 3]], single.values)


# ---------------------------------------------------------------------- gradients


@pytest.mark.parametrize("logic", ["godel", "product", "smooth"])
def test_gradcheck(logic):
    specs_ = _laser_specs(2, seed=11) + [ir.Spec("u", ir.Exists((("x", "person"),), ir.Until(
        ir.Unary("red", "x"), ir.Unary("walking", "x"), ir.Window(1, 3))))]
    ev = compile_specs(specs_, vocabulary=VOCAB, logic=logic, temperature=0.3)
    base = _random_batch(1, 4, 3, seed=13)

    def f(names, unary, binary):
        out = ev(SceneGraphBatch(names, unary, binary), [0, 1, 2], [0, 0, 0])
        return out.values, out.witnesses

    inputs = tuple(x.clone().requires_grad_(True) for x in (base.names, base.unary, base.binary))
    assert torch.autograd.gradcheck(f, inputs, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("logic", LOGICS)
def test_no_nan_or_inf_at_exact_zero_and_one(logic):
    specs_ = _laser_specs(4, seed=3) + [ir.Spec("u", ir.Forall((("x", "person"),), ir.Until(
        ir.Unary("red", "x"), ir.Unary("walking", "x"))))]
    ev = compile_specs(specs_, vocabulary=VOCAB, logic=logic, temperature=0.05)
    for dtype in (torch.float32, torch.float64):
        b = _random_batch(4, 6, 3, seed=17, dtype=dtype, lengths=[6, 2, 6, 4])
        inputs = [x.round().requires_grad_(True) for x in (b.names, b.unary, b.binary)]
        out = ev(SceneGraphBatch(*inputs, b.frame_mask, b.track_mask), [0, 1, 2, 3, 4], [0, 1, 2, 3, 0])
        assert torch.isfinite(out.values).all() and torch.isfinite(out.witnesses).all()
        if logic == "boolean":  # thresholded atoms: values are constants of the inputs
            assert not out.values.requires_grad
            continue
        (out.values.sum() + (out.witnesses * torch.linspace(0, 1, 6, dtype=dtype)).sum()).backward()
        for x in inputs:
            assert torch.isfinite(x.grad).all()


# ---------------------------------------------------------------------- top-m, devices, API


@pytest.mark.parametrize("logic", ("godel", "product"))
def test_top_m_equals_exact_evaluation_with_other_tracks_uncategorised(logic):
    # top-m keeps each categorised variable's m best tracks. Documented meaning: the same as the exact
    # evaluation in which the other tracks have category score 0 (exact when m >= N).
    specs_ = _laser_specs(6, seed=21)
    batch = _random_batch(6, 5, 6, seed=22)
    m = 3
    approx = compile_specs(specs_, vocabulary=VOCAB, logic=logic, top_m=m)(batch)
    exact = compile_specs(specs_, vocabulary=VOCAB, logic=logic)
    names = batch.names.clone()
    top = names.topk(m, dim=1).indices
    keep = torch.zeros_like(names, dtype=torch.bool).scatter_(1, top, True)
    masked = SceneGraphBatch(torch.where(keep, names, 0.0), batch.unary, batch.binary)
    torch.testing.assert_close(approx.values, exact(masked).values, atol=1e-10, rtol=0)
    full = compile_specs(specs_, vocabulary=VOCAB, logic=logic, top_m=6)(batch)
    torch.testing.assert_close(full.values, exact(batch).values, atol=1e-10, rtol=0)


def test_dtype_device_and_no_grad():
    ev = compile_specs(_laser_specs(2), vocabulary=VOCAB, logic="smooth")
    batch = _random_batch(2, 5, 3, dtype=torch.float32)
    with torch.no_grad():
        out = ev(batch)
    assert out.values.dtype == torch.float32 and out.values.device == batch.unary.device
    assert not out.values.requires_grad


def test_import_stlspec_stays_free_of_torch():
    code = "import sys, stlspec, stlspec.backends; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_exact_logic_is_rejected():
    with pytest.raises(stlspec.StlError, match="E602"):
        compile_specs(_laser_specs(1), vocabulary=VOCAB, logic="exact")


def test_columns_follow_names_not_positions():
    spec = _laser_specs(1)[0]
    rng = np.random.default_rng(5)
    trace = Trace.from_arrays(rng.random((3, 3)), rng.random((4, 3, 3)), rng.random((4, 3, 3, 2)),
                              categories=VOCAB.categories, unary_preds=VOCAB.unary_names,
                              binary_preds=VOCAB.binary_names)
    shuffled = Columns(VOCAB.categories[::-1], VOCAB.unary_names[::-1], VOCAB.binary_names[::-1])
    ev = compile_specs([spec], shuffled, logic="product")
    out = ev(SceneGraphBatch.from_traces([trace], shuffled, dtype=torch.float64))
    assert float(out.values[0]) == pytest.approx(reference.evaluate(spec, trace, "product").value, abs=1e-12)


def test_benchmark_quick_prints_json_lines():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "eval_throughput.py"), "--quick",
                           "--workloads", "laser,mixed"], check=True, capture_output=True, text=True, timeout=300)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    # exact workload selection, each workload by the three engines side by side
    assert [(r["workload"], r["engine"]) for r in rows] == [(w, e) for w in ("laser", "mixed")
                                                           for e in ("v2", "v2-generic", "v1")]
    keys = {"videos_per_s_fwd", "videos_per_s_fwdbwd", "videos_per_s_fwdbwd_cpu", "videos_per_s_fwd_cpu",
            "rss_peak_mb", "alloc_peak_mb", "ratio_vs_v1_fwdbwd_cpu", "ratio_vs_v2_generic_fwdbwd_cpu", "load_avg"}
    for row in rows:
        assert keys <= row.keys()
        assert row["alloc_peak_mb"] > 0
    assert rows[0]["reference_videos_per_s"] > 0 and "ratio_vs_reference" in rows[0]
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "eval_throughput.py"), "--workloads", "lazer"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown workload(s) lazer" in bad.stderr


def test_example_specs_and_traces_match_reference():
    from stlspec.trace import load_trace

    for stl in sorted((ROOT / "examples" / "specs").glob("*.stl")):
        program = stlspec.compile_file(str(stl))
        for spec in program.specs:
            for path in sorted((ROOT / "examples" / "traces").glob(f"{spec.name}.*.json")):
                trace = load_trace(str(path), program.vocabulary)
                for logic in ("godel", "product"):
                    ref = reference.evaluate(spec, trace, logic, witnesses=False)
                    value, _ = evaluate(spec, trace, logic, witnesses=False)
                    assert value == pytest.approx(ref.value, abs=TOL), (path.name, logic)


# ---------------------------------------------------------------------- fast paths (performance work)


def test_suffix_product_backward_is_exact_with_and_without_zeros():
    from stlspec.backends.torch import ops

    g = torch.Generator().manual_seed(31)
    for zeros in (False, True):
        z = torch.rand(3, 2, 7, generator=g, dtype=torch.float64) + 0.05
        if zeros:
            z[0, 1, 3] = 0.0
            z[2, 0, 6] = 0.0
        a = z.clone().requires_grad_(True)
        b = z.clone().requires_grad_(True)
        w = torch.rand(3, 2, 7, generator=g, dtype=torch.float64)
        (ops.suffix_prod(a) * w).sum().backward()
        (b.flip(-1).cumprod(-1).flip(-1) * w).sum().backward()
        torch.testing.assert_close(a.grad, b.grad, atol=1e-12, rtol=1e-10)
    assert torch.autograd.gradcheck(ops.suffix_prod, (torch.rand(2, 5, dtype=torch.float64).requires_grad_(True),))


@pytest.mark.parametrize("logic", LOGICS)
def test_window_fold_at_first_frame_equals_full_fold(logic):
    from stlspec.backends.torch import ops

    L = ops.TorchLogic(logic, 0.2)
    g = torch.Generator().manual_seed(32)
    K, T = 6, 9
    x = torch.rand(K, 1, 4, T, generator=g, dtype=torch.float64)
    T_b = torch.tensor([9, 5, 1, 9, 3, 7])
    lo = torch.tensor([0, 2, 0, 3, 4, 1])
    hi = torch.tensor([8, 3, 0, 1, 6, 30])
    for disj in (True, False):
        for lo_, hi_ in ((None, None), (lo, None), (None, hi), (lo, hi)):
            full = ops.window_fold(x, L, disj, lo_, hi_, T_b)[..., :1]
            first = ops.window_fold_t0(x, L, disj, lo_, hi_, T_b)
            if lo_ is None and hi_ is None:  # W(0) is never empty there
                assert (T_b >= 1).all()
            torch.testing.assert_close(first, full, atol=1e-12, rtol=0)


@pytest.mark.parametrize("logic", ("godel", "product", "smooth"))
def test_more_variables_than_tracks_and_exact_injective_enumeration(logic):
    # Exact evaluation enumerates only injective assignments; a block with more variables than
    # tracks has none (and falls back to the masked product, never a 0-size dimension).
    specs_ = _laser_specs(3, seed=41)
    ev = compile_specs(specs_, vocabulary=VOCAB, logic=logic)
    v = VOCAB
    for N in (2, 3, 4):
        batch = _random_batch(3, 5, N, seed=42 + N)
        out = ev(batch)
        for b in range(3):
            trace = Trace.from_arrays(batch.names[b].numpy(), batch.unary[b].numpy(), batch.binary[b].numpy(),
                                      categories=v.categories, unary_preds=v.unary_names,
                                      binary_preds=v.binary_names)
            ref = reference.evaluate(specs_[b], trace, logic)
            _close(ref, float(out.values[b]), out.witnesses[b].tolist())


# ---------------------------------------------------------------------- hostile inputs (issue 13, item 7)


def _padded_pair(fill: float):
    """The same 3 videos with clean padding and with padding full of ``fill`` (NaN or inf)."""
    clean = _random_batch(3, 7, 4, seed=51, lengths=[7, 3, 5], tracks=[4, 2, 3])
    dirty = SceneGraphBatch(clean.names.clone(), clean.unary.clone(), clean.binary.clone(),
                            clean.frame_mask, clean.track_mask)
    fm, tm = clean.frame_mask, clean.track_mask
    dirty.unary[~fm] = fill
    dirty.binary[~fm] = fill
    for b in range(3):
        dirty.names[b, ~tm[b]] = fill
        dirty.unary[b][:, ~tm[b]] = fill
        dirty.binary[b][:, ~tm[b]] = fill
        dirty.binary[b][:, :, ~tm[b]] = fill
    return clean, dirty


@pytest.mark.parametrize("fill", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("logic", ("godel", "product", "smooth"))
def test_nan_and_inf_in_padding_change_neither_values_nor_gradients(fill, logic):
    specs_ = _shape_mix(6)
    ev = compile_specs(specs_, vocabulary=VOCAB, logic=logic)
    ids, vids = list(range(6)), [0, 1, 2, 0, 1, 2]
    grads = []
    outs = []
    for batch in _padded_pair(fill):
        leaves = [x.clone().requires_grad_(True) for x in (batch.names, batch.unary, batch.binary)]
        out = ev(SceneGraphBatch(*leaves, batch.frame_mask, batch.track_mask), ids, vids)
        (out.values.sum() + (out.witnesses * torch.linspace(0, 1, 7, dtype=torch.float64)).sum()).backward()
        outs.append(out)
        grads.append([x.grad for x in leaves])
    torch.testing.assert_close(outs[0].values, outs[1].values, atol=1e-12, rtol=0)
    torch.testing.assert_close(outs[0].witnesses, outs[1].witnesses, atol=1e-12, rtol=0)
    for a, b in zip(*grads):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_zero_tracks_and_zero_frames():
    specs_ = [ir.Spec("ex", ir.Exists((("x", None),), ir.Eventually(ir.Unary("red", "x")))),
              ir.Spec("fa", ir.Forall((("x", None),), ir.Unary("red", "x"))),
              ir.Spec("al", ir.Always(ir.Const(False))),
              ir.Spec("ev", ir.Eventually(ir.Const(True)))] + _laser_specs(1)
    for logic in LOGICS:
        ev = compile_specs(specs_, vocabulary=VOCAB, logic=logic)
        ids = list(range(len(specs_)))
        no_tracks = _random_batch(1, 5, 0)
        out = ev(no_tracks, ids, [0] * len(ids))
        # ∃ over no tracks is false, ∀ true; formulas without variables do not care.
        got = out.values.tolist()
        if logic == "smooth":  # constant folds over 5 frames are ∓τ·log 5 off in smooth
            got = [got[0], got[1], 0.0, 1.0, got[4]]
        assert got == [0.0, 1.0, 0.0, 1.0, 0.0]
        assert out.witnesses.shape == (len(ids), 3, 5) and float(out.witnesses.abs().sum()) == 0.0
        no_frames = _random_batch(2, 0, 3)
        out = ev(no_frames, ids, [0, 1, 0, 1, 0])
        # No frame at all: eventually is false and always true (empty windows), atoms read 0.
        got = out.values.tolist()
        if logic == "smooth":  # ∃/∀ fold several assignments: τ·log n away from 0/1
            assert np.isfinite(got).all()
            got = [0.0, 0.0, got[2], got[3], 0.0]
        assert got == [0.0, 0.0, 1.0, 0.0, 0.0]
        assert out.witnesses.shape == (len(ids), 3, 0)
    # A padded batch in which one video has no frames agrees with that convention.
    ev = compile_specs(specs_, vocabulary=VOCAB, logic="product")
    b = _random_batch(2, 4, 3, lengths=[4, 0])
    assert ev(b, [2, 3], [1, 1]).values.tolist() == [1.0, 0.0]


def test_smooth_in_float16_matches_float32():
    specs_ = _shape_mix(6)
    ev = compile_specs(specs_, vocabulary=VOCAB, logic="smooth", temperature=0.1)
    b32 = _random_batch(6, 6, 3, seed=61, dtype=torch.float32, lengths=[6, 4, 6, 2, 6, 5])
    leaves = [x.half().requires_grad_(True) for x in (b32.names, b32.unary, b32.binary)]
    out16 = ev(SceneGraphBatch(*leaves, b32.frame_mask, b32.track_mask))
    assert out16.values.dtype == torch.float16
    b32h = SceneGraphBatch(*(x.half().float() for x in (b32.names, b32.unary, b32.binary)), b32.frame_mask,
                           b32.track_mask)
    out32 = ev(b32h)
    assert torch.isfinite(out16.values).all() and torch.isfinite(out16.witnesses).all()
    torch.testing.assert_close(out16.values.float(), out32.values, atol=2e-3, rtol=0)
    (out16.values.float().sum() + out16.witnesses.float().sum()).backward()
    for x in leaves:
        assert x.grad.dtype == torch.float16 and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("logic", ("godel", "product", "smooth"))
def test_window_bounds_beyond_int64(logic):
    huge = 10 ** 30
    x = ir.Unary("red", "x")
    forms = [ir.Eventually(x, ir.Window(0, huge)), ir.Eventually(x, ir.Window(huge, None)),
             ir.Always(x, ir.Window(2, huge)), ir.Until(x, ir.Unary("walking", "x"), ir.Window(huge, huge + 5)),
             ir.Next(ir.Eventually(x, ir.Window(1, 2 ** 70)))]
    specs_ = [ir.Spec(f"w{i}", ir.Exists((("x", None),), f)) for i, f in enumerate(forms)]
    ev = compile_specs(specs_, vocabulary=VOCAB, logic=logic)
    batch = _random_batch(2, 6, 2, seed=71, lengths=[6, 4])
    out = ev(batch, list(range(5)) * 2, [0] * 5 + [1] * 5)
    for k in range(10):
        b = k // 5
        n = int(batch.frame_mask[b].sum())
        trace = Trace.from_arrays(batch.names[b].numpy(), batch.unary[b, :n].numpy(), batch.binary[b, :n].numpy(),
                                  categories=VOCAB.categories, unary_preds=VOCAB.unary_names,
                                  binary_preds=VOCAB.binary_names)
        ref = reference.evaluate(specs_[k % 5], trace, logic, witnesses=False)
        assert float(out.values[k]) == pytest.approx(ref.value, abs=TOL)


def test_bad_ids_and_shapes_are_our_errors():
    ev = compile_specs(_laser_specs(2), vocabulary=VOCAB, logic="product")
    batch = _random_batch(2, 4, 3)
    for spec_ids, video_ids, match in ((["laser9"], [0], "no spec named 'laser9'"), ([5], [0], "out of range"),
                                       ([-1], [0], "out of range"), ([0], [2], "video_ids\\[0\\] = 2"),
                                       ([0, 1], [0], "2 spec_ids but 1 video_ids"), ([1.5], [0], "float")):
        with pytest.raises(stlspec.StlError, match=match) as err:
            ev(batch, spec_ids, video_ids)
        assert err.value.diagnostics[0].code == "E604"
    with pytest.raises(stlspec.StlError, match="unary has 2 columns"):
        ev(SceneGraphBatch(batch.names, batch.unary[..., :2], batch.binary), [0], [0])
    with pytest.raises(stlspec.StlError, match="frame_mask has shape"):
        ev(SceneGraphBatch(batch.names, batch.unary, batch.binary, torch.ones(2, 3, dtype=torch.bool)), [0], [0])


@pytest.mark.parametrize("ones", [False, True], ids=["interior", "with-ones"])
def test_fused_product_nodes_match_their_compositions(ones):
    """The fused autograd nodes (quantifier fold, suffix and prefix ∨) equal the unfused compositions
    bitwise in value and to rounding in gradient, pass gradcheck, and take the exact fallback where a
    factor is exactly 0 (an input of exactly 1)."""
    from stlspec.backends.torch import ops

    g = torch.Generator().manual_seed(3)
    A, R, W = 4, 3, 5
    x = torch.rand(R * A, W, dtype=torch.float64, generator=g)
    c = torch.rand(R * A, 1, dtype=torch.float64, generator=g)
    if ones:
        x[2, 1] = x[5, 0] = x[7, 4] = 1.0
        c[2, 0] = c[5, 0] = 1.0
    cases = [
        (lambda c_, x_: ops.product_fold(c_, x_, A, True), lambda c_, x_: ops._product_fold_reference(c_, x_, A, True)),
        (lambda c_, x_: ops.product_fold(c_, x_, A, False), lambda c_, x_: ops._product_fold_reference(c_, x_, A, False)),
        (lambda c_, x_: ops.product_fold(None, x_, A, True), lambda c_, x_: ops._product_fold_reference(None, x_, A, True)),
        (lambda c_, x_: ops.suffix_or(x_), lambda c_, x_: ops._suffix_or_reference(x_)),
        (lambda c_, x_: ops.prefix_or1(x_), lambda c_, x_: ops._prefix_or1_reference(x_)),
    ]
    for fused, reference in cases:
        cc, xx = c.clone().requires_grad_(True), x.clone().requires_grad_(True)
        y = fused(cc, xx)
        y_ref = reference(c, x)
        assert torch.equal(y.detach(), y_ref)
        up = torch.rand(y.shape, dtype=y.dtype, generator=g)
        grads = torch.autograd.grad(y, (cc, xx), up, allow_unused=True)
        c2, x2 = c.clone().requires_grad_(True), x.clone().requires_grad_(True)
        refs = torch.autograd.grad(reference(c2, x2), (c2, x2), up, allow_unused=True)
        for got, ref in zip(grads, refs):
            assert (got is None) == (ref is None)
            if got is not None:
                torch.testing.assert_close(got, ref, atol=1e-12, rtol=1e-10)
        if not ones:  # gradcheck's finite differences step past 1 where an input is exactly 1
            assert torch.autograd.gradcheck(fused, (c.clone().requires_grad_(True), x.clone().requires_grad_(True)))
    with torch.no_grad():  # without gradients the unfused composition runs: same values
        assert torch.equal(ops.product_fold(c, x, A, True), ops._product_fold_reference(c, x, A, True))


def test_fused_product_fold_underflow_takes_the_exact_path():
    """A segment whose product underflows to 0 (no factor 0) has the composition's gradient, not a 0/0."""
    from stlspec.backends.torch import ops

    A = 400
    x = torch.full((A, 2), 0.9, dtype=torch.float32, requires_grad=True)  # 0.1^400 underflows
    c = torch.ones(A, 1, dtype=torch.float32)
    (got,) = torch.autograd.grad(ops.product_fold(c, x, A, True).sum(), x)
    x2 = x.detach().clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(ops._product_fold_reference(c, x2, A, True).sum(), x2)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, atol=0, rtol=0)


@given(st.lists(st.integers(0, 5000), max_size=300), st.integers(0, 1 << 45))
@settings(max_examples=60, deadline=None)
def test_atom_dedupe_equals_np_unique(xs, shift):
    """The atom tables' dedupe (a bitmap over small ranges, np.unique over large ones) is np.unique."""
    from stlspec.backends.torch.engine import _dedupe

    for x in (np.asarray(xs, dtype=np.int64), np.asarray(xs, dtype=np.int64) + shift):
        base, inv = _dedupe(x)
        want, want_inv = np.unique(x, return_inverse=True)
        assert np.array_equal(base, want) and np.array_equal(inv, want_inv.reshape(-1))


@given(st.lists(st.integers(0, 6), max_size=20))
def test_ragged_expansion(counts):
    from stlspec.backends.torch.plan import _expand

    owner, pos = _expand(np.asarray(counts, dtype=np.int64))
    want = [(i, j) for i, c in enumerate(counts) for j in range(c)]
    assert list(zip(owner.tolist(), pos.tolist())) == want
