"""The fused kernel (stlspec.backends.torch.chain) against the generic engine and the reference.

The kernel evaluates LASER's spec shapes (one ∃/∀ block over a ``then`` chain, or an ``always``, of
propositional bodies) under the product logic; everything else stays with the generic engine, which is
tested against the reference interpreter in test_torch_backend.py. Here: which specs the kernel takes,
values, witnesses and every gradient equal to the generic engine's in float64 on random specs and
padded batches (absent tracks, presence masks, zero category weights, exact 0/1 facts that make fold
factors 0), the reference on traces, gradcheck, calls mixing both paths, and the ``fused`` option.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("numba")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hyp import examples  # noqa: E402
from strategies import VOCAB, probabilities, traces  # noqa: E402

import stlspec  # noqa: E402
from stlspec import ir  # noqa: E402
from stlspec.backends import reference  # noqa: E402
from stlspec.backends.torch import Columns, SceneGraphBatch, chain, compile_specs  # noqa: E402

SETTINGS = settings(max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck))
COLUMNS = Columns.from_vocabulary(VOCAB)


# ---------------------------------------------------------------------- chain specs


@st.composite
def literals(draw, bound: tuple[str, ...]) -> ir.Formula:
    var = st.sampled_from(bound) if bound else None
    kinds = ["const"] + (["unary", "binary", "eq", "missing"] if bound else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "const":
        f: ir.Formula = draw(st.sampled_from((ir.TRUE, ir.FALSE)))
    elif kind == "unary":
        f = ir.Unary(draw(st.sampled_from(VOCAB.unary_names)), draw(var))
    elif kind == "binary":
        f = ir.Binary(draw(st.sampled_from(VOCAB.binary_names)), draw(var), draw(var))
    elif kind == "eq":
        f = ir.Eq(draw(var), draw(var))
    else:  # a predicate the tensors do not have: false
        f = ir.Unary("flying", draw(var))
    return ir.Not(f) if draw(st.integers(0, 3)) == 0 else f


@st.composite
def bodies(draw, bound: tuple[str, ...], depth: int = 2) -> ir.Formula:
    """A propositional formula of literals: mostly conjunctions (LASER's events), sometimes deeper."""
    if depth == 0 or draw(st.integers(0, 2)) > 0:
        lits = draw(st.lists(literals(bound), min_size=1, max_size=3))
        return lits[0] if len(lits) == 1 else ir.And(tuple(lits))
    op = draw(st.sampled_from(("and", "or", "not")))
    if op == "not":
        return ir.Not(draw(bodies(bound, depth - 1)))
    args = tuple(draw(st.lists(bodies(bound, depth - 1), min_size=2, max_size=3)))
    return ir.And(args) if op == "and" else ir.Or(args)


@st.composite
def chain_specs(draw, name: str = "s") -> ir.Spec:
    """``Q block. A_0 then … then A_{E−1}`` (Q: ∃ or none) or ``Q block. always A_0`` (Q: ∃, ∀ or none)."""
    always = draw(st.integers(0, 3)) == 0
    quant = draw(st.sampled_from((ir.Exists, ir.Exists, ir.Exists, ir.Forall, None) if always else
                                 (ir.Exists, ir.Exists, ir.Exists, None)))
    k = draw(st.integers(1, 3)) if quant else 0
    cats = st.one_of(st.none(), st.sampled_from(VOCAB.categories + ("unicorn",)))  # unicorn: unknown
    block = tuple((f"v{i}", draw(cats)) for i in range(k))
    bound = tuple(n for n, _ in block)
    if always:
        f: ir.Formula = ir.Always(draw(bodies(bound)))
        E = 0
    else:
        E = draw(st.integers(1, 3))
        events = [draw(bodies(bound)) for _ in range(E)]
        f = ir.Eventually(events[-1], event=E - 1)
        for e in range(E - 2, -1, -1):
            f = ir.Eventually(ir.And((events[e], ir.Next(f))), event=e)
    if quant:
        f = quant(block, f)
    return ir.Spec(name, f, tuple(ir.EventInfo(e) for e in range(E)))


def _evaluate(specs_, batch, ids, vids, flags, fused, dtype=torch.float64, **options):
    """Values, witnesses and the gradients of a fixed loss of both, for one engine choice."""
    ev = compile_specs(specs_, COLUMNS, logic="product", fused=fused, **options)
    leaves = [x.to(dtype).clone().requires_grad_(True) for x in (batch.names, batch.unary, batch.binary)]
    out = ev(SceneGraphBatch(*leaves, batch.frame_mask, batch.track_mask, batch.present), ids, vids,
             witnesses=flags)
    g = torch.Generator().manual_seed(0)
    weights = lambda x: torch.rand(x.shape, generator=g, dtype=torch.float64).to(dtype)  # noqa: E731 (any dtype)
    loss = (out.values * weights(out.values)).sum()
    if out.witnesses is not None:
        loss = loss + (out.witnesses * weights(out.witnesses)).sum()
    loss.backward()
    return [out.values.detach(), None if out.witnesses is None else out.witnesses.detach()] + [x.grad for x in leaves]


def _assert_same(a, b, tol):
    """Equal outputs and gradients (a gradient of None, an input the call did not read, counts as 0)."""
    assert (a[1] is None) == (b[1] is None)
    for x, y in zip(a, b):
        if x is None or y is None:
            x, y = (torch.zeros_like(y), y) if x is None and y is not None else (x, torch.zeros_like(x)) \
                if y is None and x is not None else (None, None)
            if x is None:
                continue
        torch.testing.assert_close(x, y, atol=tol, rtol=0)


# ---------------------------------------------------------------------- recognition


def _spec(formula, events=3):
    return ir.Spec("s", formula, tuple(ir.EventInfo(e) for e in range(events)))


def _laser(**change):
    a = ir.And((ir.Binary("holding", "a", "b"), ir.Not(ir.Unary("red", "b"))))
    b = ir.Unary("walking", "a")
    c = ir.And((ir.Binary("near", "b", "a"), ir.Eq("a", "b"), ir.TRUE))
    last = ir.Eventually(c, change.get("window"), 2)
    mid = ir.Eventually(ir.And((b, ir.Next(last, weak=change.get("weak", False)))), None, 1)
    first = ir.Eventually(ir.And((a, ir.Next(mid))), None, 0)
    return ir.Exists((("a", "person"), ("b", None)), first)


def test_recognises_laser_chains():
    t = chain.chain_table(_spec(_laser()), COLUMNS)
    assert t is not None and t.quant == chain.EXISTS and t.mode == chain.CHAIN
    assert t.cats == (VOCAB.categories.index("person"), -1)
    # events: a conjunction of 2 literals, one literal, a conjunction of 3
    assert [[n[0] for n in body] for body in t.bodies] == [[chain.LIT, chain.LIT, chain.AND], [chain.LIT],
                                                          [chain.LIT, chain.LIT, chain.LIT, chain.AND]]
    kinds = [lit[0] for lit in t.literals]
    assert kinds == [chain.BINARY, chain.UNARY, chain.UNARY, chain.BINARY, chain.EQ, chain.CONST]
    assert t.literals[1][4] is True  # not red(b): a negated literal
    # a single hinted eventually, and a chain without a quantifier
    assert chain.chain_table(_spec(ir.Exists((("x", "cup"),), ir.Eventually(ir.Unary("red", "x"), None, 0)), 1),
                             COLUMNS) is not None
    plain = chain.chain_table(_spec(ir.Eventually(ir.TRUE, None, 0), 1), COLUMNS)
    assert plain is not None and plain.quant == chain.NONE


def test_recognises_always_and_propositional_bodies():
    """LASER's negatives (∃ … always not(…)), events with negated conjunctions, and background rules
    (∀ x, y. always (¬a ∨ b))."""
    neg = ir.Exists((("a", "person"), ("b", None)), ir.Always(ir.Not(ir.And((
        ir.Unary("walking", "a"), ir.Binary("near", "a", "b"))))))
    t = chain.chain_table(_spec(neg, 0), COLUMNS)
    assert t is not None and t.mode == chain.ALWAYS and [n[0] for n in t.bodies[0]] == [chain.LIT, chain.LIT,
                                                                                         chain.AND, chain.NOT]
    rule = ir.Forall((("x", None), ("y", None)), ir.Always(ir.Or((
        ir.Not(ir.Binary("near", "x", "y")), ir.Binary("near", "y", "x")))))
    t = chain.chain_table(_spec(rule, 0), COLUMNS)
    assert t is not None and t.quant == chain.FORALL and [n[0] for n in t.bodies[0]] == [chain.LIT, chain.LIT,
                                                                                          chain.OR]
    event = ir.Exists((("a", None),), ir.Eventually(ir.Not(ir.And((ir.Unary("red", "a"), ir.TRUE))), None, 0))
    assert chain.chain_table(_spec(event, 1), COLUMNS) is not None


@pytest.mark.parametrize("formula,events", [
    (_laser(window=ir.Window(0, 2)), 3),  # a window
    (_laser(weak=True), 3),  # a weak next
    (ir.Forall((("a", None),), ir.Eventually(ir.Unary("red", "a"), None, 0)), 1),  # a chain under forall
    (ir.Exists((("a", None),), ir.Exists((("b", None),), ir.Eventually(ir.Binary("near", "a", "b"), None, 0))), 1),
    (ir.Exists((("a", None),), ir.Eventually(ir.Or((ir.Unary("red", "a"), ir.Eventually(ir.TRUE))), None, 0)), 1),
    (ir.Exists((("a", None),), ir.Eventually(ir.Unary("red", "a"), None, 1)), 2),  # events out of order
    (ir.Exists((("a", None),), ir.Eventually(ir.Unary("red", "a"))), 0),  # no event tag
    (ir.Exists((("a", None),), ir.Always(ir.Unary("red", "a"), ir.Window(0, 2))), 0),  # a window
    (ir.Exists((("a", None),), ir.Always(ir.Next(ir.Unary("red", "a")))), 0),  # temporal inside
])
def test_other_shapes_stay_with_the_generic_engine(formula, events):
    assert chain.chain_table(_spec(formula, events), COLUMNS) is None


# ---------------------------------------------------------------------- differential


@st.composite
def calls(draw):
    specs_ = [draw(chain_specs(f"s{i}")) for i in range(draw(st.integers(1, 3)))]
    trs = draw(st.lists(traces(max_T=5, max_N=4), min_size=1, max_size=3))
    K = draw(st.integers(1, 5))
    ids = [draw(st.integers(0, len(specs_) - 1)) for _ in range(K)]
    vids = [draw(st.integers(0, len(trs) - 1)) for _ in range(K)]
    flags = draw(st.one_of(st.booleans(), st.lists(st.booleans(), min_size=K, max_size=K)))
    return specs_, trs, ids, vids, flags


@SETTINGS
@given(call=calls(), zero_names=st.booleans(), prune_zero=st.booleans())
def test_fused_equals_generic(call, zero_names, prune_zero):
    """Values, witnesses and all three gradients, float64, on padded batches with presence masks and
    exact 0/1 facts (fold factors of exactly 0 take the kernel's counting path), with and without
    dropping the candidates of category weight 0."""
    specs_, trs, ids, vids, flags = call
    batch = SceneGraphBatch.from_traces(trs, COLUMNS, dtype=torch.float64)
    if zero_names:  # category weights of exactly 0: the candidates both engines drop (with prune_zero)
        batch.names[..., 0] = 0.0
    fused = _evaluate(specs_, batch, ids, vids, flags, True, prune_zero=prune_zero)
    generic = _evaluate(specs_, batch, ids, vids, flags, False, prune_zero=prune_zero)
    _assert_same(fused, generic, 1e-10)


@SETTINGS
@given(call=calls())
def test_float32_kernel_is_float64_rounded(call):
    """On float32 facts (its per-row scans in float32, its folds in float64) the kernel's values,
    witnesses and gradients are the float64 ones up to float32 rounding, on the same (float32) inputs."""
    specs_, trs, ids, vids, flags = call
    batch = SceneGraphBatch.from_traces(trs, COLUMNS, dtype=torch.float32)
    got = _evaluate(specs_, batch, ids, vids, flags, True, torch.float32)
    exact = _evaluate(specs_, batch, ids, vids, flags, False, torch.float64)
    for x, y in zip(got, exact):
        if x is not None and y is not None:
            scale = float(y.abs().max()) if y.numel() else 0.0
            torch.testing.assert_close(x.double(), y, atol=1e-5 * max(1.0, scale), rtol=0)


@SETTINGS
@given(spec=chain_specs(), trace=traces(max_T=6, max_N=4))
def test_fused_matches_reference(spec, trace):
    ref = reference.evaluate(spec, trace, "product")
    ev = compile_specs([spec], COLUMNS, logic="product", fused=True)
    out = ev(SceneGraphBatch.from_traces([trace], COLUMNS, dtype=torch.float64), [0], [0])
    assert float(out.values[0]) == pytest.approx(ref.value, abs=1e-10)
    if ref.witnesses:
        np.testing.assert_allclose(out.witnesses[0, :, :trace.num_frames].numpy(), np.asarray(ref.witnesses),
                                   atol=1e-10)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=chain_specs(), trace=traces(max_T=4, max_N=3, presence=True),
       p=st.lists(probabilities(), min_size=1, max_size=1))
def test_gradcheck(spec, trace, p):
    ev = compile_specs([spec], COLUMNS, logic="product", fused=True)
    batch = SceneGraphBatch.from_traces([trace], COLUMNS, dtype=torch.float64)
    # Interior points (finite differences need room on both sides; the folds are smooth there).
    inputs = [(x * 0.8 + 0.1).clone().requires_grad_(True) for x in (batch.names, batch.unary, batch.binary)]
    weights = torch.rand(1, ev.num_events, batch.unary.shape[1], dtype=torch.float64)

    def f(names, unary, binary):
        out = ev(SceneGraphBatch(names, unary, binary, batch.frame_mask, batch.track_mask, batch.present))
        return out.values.sum() + (out.witnesses * weights).sum()

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def test_float32_is_closer_to_float64_than_the_generic_engine():
    """On float32 facts the kernel's per-assignment scans run in float32 but its folds over assignments in
    float64: its results stay within float32 rounding of float64 ones (the generic engine's float32 witness
    folds lose digits to cancellation in 1 − ∏(1 − x))."""
    specs_ = [ir.Spec("c", _laser(), tuple(ir.EventInfo(e) for e in range(3)))]
    g = torch.Generator().manual_seed(1)
    B, T, N = 4, 12, 5
    batch = SceneGraphBatch(torch.rand(B, N, 3, generator=g, dtype=torch.float64) ** 4,
                            torch.rand(B, T, N, 3, generator=g, dtype=torch.float64) ** 4,
                            torch.rand(B, T, N, N, 2, generator=g, dtype=torch.float64) ** 4)
    ids, vids = [0] * B, list(range(B))
    exact = _evaluate(specs_, batch, ids, vids, True, False)
    fused = _evaluate(specs_, batch, ids, vids, True, True, torch.float32)
    generic = _evaluate(specs_, batch, ids, vids, True, False, torch.float32)
    for e, f, gen in zip(exact, fused, generic):
        assert (f.double() - e).abs().max() <= (gen.double() - e).abs().max() + 1e-7
        assert (f.double() - e).abs().max() <= 1e-5 * e.abs().max()


def test_mixed_calls_keep_the_callers_order():
    """Chain and non-chain instances in one call: each equals its own single-instance call."""
    other = ir.Spec("u", ir.Forall((("x", "person"),), ir.Always(ir.Unary("walking", "x"), ir.Window(1, 3))))
    specs_ = [ir.Spec("c", _laser(), tuple(ir.EventInfo(e) for e in range(3))), other]
    g = torch.Generator().manual_seed(2)
    B, T, N = 3, 6, 3
    batch = SceneGraphBatch(torch.rand(B, N, 3, generator=g, dtype=torch.float64),
                            torch.rand(B, T, N, 3, generator=g, dtype=torch.float64),
                            torch.rand(B, T, N, N, 2, generator=g, dtype=torch.float64))
    ev = compile_specs(specs_, COLUMNS, logic="product")
    ids, vids = [1, 0, 1, 0, 0], [0, 2, 1, 1, 0]
    out = ev(batch, ids, vids)
    for k, (s, b) in enumerate(zip(ids, vids)):
        one = ev(batch, [s], [b])
        torch.testing.assert_close(out.values[k], one.values[0], atol=1e-12, rtol=0)
        torch.testing.assert_close(out.witnesses[k], one.witnesses[0], atol=1e-12, rtol=0)


def test_videos_without_frames():
    spec = ir.Spec("c", _laser(), tuple(ir.EventInfo(e) for e in range(3)))
    g = torch.Generator().manual_seed(3)
    for T, lengths in ((0, [0, 0]), (4, [0, 4])):
        batch = SceneGraphBatch(torch.rand(2, 3, 3, generator=g, dtype=torch.float64),
                                torch.rand(2, T, 3, 3, generator=g, dtype=torch.float64),
                                torch.rand(2, T, 3, 3, 2, generator=g, dtype=torch.float64),
                                torch.arange(T)[None, :] < torch.tensor(lengths)[:, None])
        a = _evaluate([spec], batch, [0, 0], [0, 1], True, True)
        b = _evaluate([spec], batch, [0, 0], [0, 1], True, False)
        _assert_same(a, b, 1e-12)
        assert float(a[0][0]) == 0.0 and float(a[1][0].abs().sum()) == 0.0


# ---------------------------------------------------------------------- the option


def test_fused_option():
    spec = ir.Spec("c", _laser(), tuple(ir.EventInfo(e) for e in range(3)))
    assert compile_specs([spec], COLUMNS).fused
    assert not compile_specs([spec], COLUMNS, fused=False).fused
    assert not compile_specs([spec], COLUMNS, logic="godel").fused  # None: only where it can
    for options, why in (({"logic": "godel"}, "product logic"), ({"top_m": 2}, "top_m"),
                         ({"prune_below": 0.1}, "prune_below")):
        with pytest.raises(stlspec.StlError, match="fused") as err:
            compile_specs([spec], COLUMNS, fused=True, **options)
        assert why in str(err.value)
    with pytest.raises(stlspec.StlError, match="True, False or None"):
        compile_specs([spec], COLUMNS, fused="yes")


def test_without_numba_the_generic_engine_runs(monkeypatch):
    monkeypatch.setattr(chain, "available", lambda: False)
    spec = ir.Spec("c", _laser(), tuple(ir.EventInfo(e) for e in range(3)))
    assert not compile_specs([spec], COLUMNS).fused
    with pytest.raises(stlspec.StlError, match=r"stlspec\[fast\]"):
        compile_specs([spec], COLUMNS, fused=True)


def test_literal_buffers_read_again_when_not_kept(monkeypatch):
    """Past the keep budget the backward pass reads the literals from the fact tensors again: same result."""
    spec = ir.Spec("c", _laser(), tuple(ir.EventInfo(e) for e in range(3)))
    g = torch.Generator().manual_seed(4)
    B, T, N = 3, 5, 4
    batch = SceneGraphBatch(torch.rand(B, N, 3, generator=g, dtype=torch.float64),
                            torch.rand(B, T, N, 3, generator=g, dtype=torch.float64),
                            torch.rand(B, T, N, N, 2, generator=g, dtype=torch.float64),
                            present=torch.rand(B, T, N, generator=g) > 0.2)
    kept = _evaluate([spec], batch, [0] * B, list(range(B)), True, True)
    monkeypatch.setattr(chain, "_KEEP_BYTES", 0)
    _assert_same(_evaluate([spec], batch, [0] * B, list(range(B)), True, True), kept, 1e-12)


def test_second_derivatives_are_refused_clearly():
    spec = ir.Spec("c", _laser(), tuple(ir.EventInfo(e) for e in range(3)))
    g = torch.Generator().manual_seed(5)
    names = torch.rand(1, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    batch = SceneGraphBatch(names, torch.rand(1, 4, 3, 3, generator=g, dtype=torch.float64),
                            torch.rand(1, 4, 3, 3, 2, generator=g, dtype=torch.float64))
    out = compile_specs([spec], COLUMNS, fused=True)(batch)
    # A gradient that itself depends on a differentiable quantity (e.g. a gradient penalty's weights) is not
    # silently treated as a constant: differentiating it again raises.
    w = torch.ones(1, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(out.values, names, grad_outputs=w, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        grad.sum().backward()
