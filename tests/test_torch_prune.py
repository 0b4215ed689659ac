"""Certified pruning (``prune_below``): the returned values differ from the exact ones by at most the
returned ``error_bound``, on every logic that supports it; specs whose quantifiers are not a prefix are
evaluated exactly."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from strategies import VOCAB, specs  # noqa: E402

import stlspec  # noqa: E402
from stlspec import ir  # noqa: E402
from stlspec.backends.torch import SceneGraphBatch, compile_specs  # noqa: E402
from stlspec.backends.torch.canon import canonicalize  # noqa: E402
from stlspec.backends.torch.prune import prefix_blocks  # noqa: E402

LOGICS = ("product", "godel", "boolean")


def _peaked_batch(B, T, N, seed):
    """Random facts; category scores peaked as a classifier's are (one likely category per track, the
    others small), some exactly 0, and some tracks padding."""
    g = torch.Generator().manual_seed(seed)
    C, P, R = len(VOCAB.categories), len(VOCAB.unary), len(VOCAB.binary)
    names = torch.rand(B, N, C, generator=g, dtype=torch.float64) * 0.1
    names[torch.rand(B, N, C, generator=g) < 0.2] = 0.0
    top = torch.randint(0, C, (B, N), generator=g)
    names.scatter_(2, top[..., None], 0.5 + 0.5 * torch.rand(B, N, 1, generator=g, dtype=torch.float64))
    tm = torch.arange(N)[None, :] < torch.randint(1, N + 1, (B, 1), generator=g)
    return SceneGraphBatch(names, torch.rand(B, T, N, P, generator=g, dtype=torch.float64),
                           torch.rand(B, T, N, N, R, generator=g, dtype=torch.float64),
                           torch.ones(B, T, dtype=torch.bool), tm)


def _categorised(spec: ir.Spec, seed: int) -> ir.Spec:
    """The spec with categories on its quantified variables (random specs have none)."""
    rng = np.random.default_rng(seed)

    def go(f):
        match f:
            case ir.Exists(block, body) | ir.Forall(block, body):
                block = tuple((v, VOCAB.categories[rng.integers(3)] if rng.random() < 0.8 else None) for v, _ in block)
                return type(f)(block, go(body))
            case ir.Not(a):
                return ir.Not(go(a))
            case ir.And(args) | ir.Or(args):
                return type(f)(tuple(go(a) for a in args))
            case _:
                return f
    return ir.Spec(spec.name, go(spec.formula), spec.events)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(VOCAB, max_depth=3), seed=st.integers(0, 1000), logic=st.sampled_from(LOGICS),
       eps=st.sampled_from([0.01, 0.05, 0.2, 0.7]))
def test_pruned_values_are_within_the_bound(spec, seed, logic, eps):
    spec = _categorised(spec, seed)
    batch = _peaked_batch(3, 4, 4, seed)
    exact = compile_specs([spec], vocabulary=VOCAB, logic=logic)(batch, witnesses=False)
    out = compile_specs([spec], vocabulary=VOCAB, logic=logic, prune_below=eps)(batch, witnesses=False)
    err = (out.values - exact.values).abs()
    assert (err <= out.error_bound + 1e-9).all(), (err, out.error_bound)
    assert ((out.error_bound >= 0) & (out.error_bound <= 1)).all()
    if prefix_blocks(canonicalize(spec, compile_specs([spec], vocabulary=VOCAB).columns)) is None:
        assert (out.error_bound == 0).all() and (err <= 1e-12).all()  # not pruned: exact


@pytest.mark.parametrize("logic", LOGICS)
def test_nested_prefix_blocks_and_negation(logic):
    """∃a. ¬∀b. φ and ∀a. ∃b, c. φ: blocks under negation and nested blocks add their bounds."""
    f1 = ir.Exists((("a", "person"),), ir.Not(ir.Forall((("b", "cup"),), ir.Eventually(ir.Binary("near", "a", "b")))))
    f2 = ir.Forall((("a", "person"),), ir.Exists((("b", "cup"), ("c", None)), ir.Always(
        ir.Or((ir.Binary("holding", "a", "b"), ir.Unary("red", "c"))))))
    sp = [ir.Spec("one", f1), ir.Spec("two", f2)]
    for seed in range(8):
        batch = _peaked_batch(4, 5, 5, seed)
        exact = compile_specs(sp, vocabulary=VOCAB, logic=logic)(batch, [0, 1] * 4, [0, 0, 1, 1, 2, 2, 3, 3])
        out = compile_specs(sp, vocabulary=VOCAB, logic=logic, prune_below=0.3)(batch, [0, 1] * 4,
                                                                                 [0, 0, 1, 1, 2, 2, 3, 3])
        assert ((out.values - exact.values).abs() <= out.error_bound + 1e-9).all()


def test_the_bound_of_one_dropped_witness_is_tight():
    """∃x: cup. red(x) with one real cup candidate of weight 0.04 (dropped at ε = 0.05) that is red:
    the exact value is 0.04 (product), the pruned one 0, the bound 0.04."""
    names = torch.zeros(1, 2, 3, dtype=torch.float64)
    names[0, 0, 1] = 0.04  # track 0: a cup, barely
    names[0, 1, 0] = 0.9  # track 1: a person
    unary = torch.zeros(1, 1, 2, 3, dtype=torch.float64)
    unary[0, 0, 0, 2] = 1.0  # track 0 is red
    batch = SceneGraphBatch(names, unary, torch.zeros(1, 1, 2, 2, 2, dtype=torch.float64))
    spec = ir.Spec("s", ir.Exists((("x", "cup"),), ir.Unary("red", "x")))
    exact = compile_specs([spec], vocabulary=VOCAB)(batch)
    out = compile_specs([spec], vocabulary=VOCAB, prune_below=0.05)(batch)
    assert float(exact.values[0]) == pytest.approx(0.04)
    assert float(out.values[0]) == 0.0
    assert float(out.error_bound[0]) == pytest.approx(0.04)


def test_pruning_drops_tracks_and_is_off_by_default():
    batch = _peaked_batch(2, 3, 6, 0)
    spec = ir.Spec("s", ir.Exists((("a", "person"), ("b", "cup")), ir.Eventually(ir.Binary("near", "a", "b"))))
    assert compile_specs([spec], vocabulary=VOCAB)(batch).error_bound is None
    ev = compile_specs([spec], vocabulary=VOCAB, prune_below=0.2)
    ev(batch)
    exact = compile_specs([spec], vocabulary=VOCAB)
    exact(batch)
    rows = lambda e: sum(b.rows for b in next(iter(e._plans.data.values())).batches)  # noqa: E731
    assert rows(ev) < rows(exact)


@pytest.mark.parametrize("options, match", [
    ({"logic": "smooth", "prune_below": 0.1}, "certified pruning"),
    ({"prune_below": 0.1, "top_m": 2}, "two pruning modes"),
    ({"prune_below": 0.0}, "in \\(0, 1\\]"), ({"prune_below": True}, "in \\(0, 1\\]"),
])
def test_bad_pruning_options_are_our_errors(options, match):
    with pytest.raises(stlspec.StlError, match=match):
        compile_specs([ir.Spec("s", ir.Const(True))], vocabulary=VOCAB, **options)


def test_outputs_stay_differentiable_when_every_assignment_is_pruned():
    """No candidate tracks at all (every category weight exactly 0, or below prune_below): the values are
    constants, yet connected to the inputs, so a loss on them backpropagates (zero gradients)."""
    batch = _peaked_batch(2, 3, 3, 1)
    spec = ir.Spec("s", ir.Exists((("a", "person"),), ir.Eventually(ir.Unary("walking", "a"))))
    for names, options in ((torch.zeros_like(batch.names), {}), (batch.names * 1e-3, {"prune_below": 0.5})):
        leaves = [x.clone().requires_grad_(True) for x in (names, batch.unary, batch.binary)]
        out = compile_specs([spec], vocabulary=VOCAB, **options)(SceneGraphBatch(*leaves, batch.frame_mask,
                                                                                   batch.track_mask))
        assert (out.values == 0).all() and out.values.requires_grad
        (out.values.sum() + out.witnesses.sum()).backward()
        assert all(x.grad is not None and (x.grad == 0).all() for x in leaves)
