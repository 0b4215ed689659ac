"""The weak-supervision loss terms on hand-built values (laser_train.losses)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from laser_train.losses import ratio_contrastive  # noqa: E402


def _by_hand(pos, negs):
    return -math.log(pos / (pos + sum(negs)))


def test_ratio_contrastive_equals_its_formula_per_video():
    pos = torch.tensor([0.5, 1e-3], dtype=torch.float64)
    neg = torch.tensor([0.2, 1e-3, 0.1, 4e-3], dtype=torch.float64)
    neg_video = torch.tensor([0, 1, 0, 1])
    got = ratio_contrastive(pos, torch.tensor([0, 1]), neg, neg_video)
    want = (_by_hand(0.5, [0.2, 0.1]) + _by_hand(1e-3, [1e-3, 4e-3])) / 2
    assert float(got) == pytest.approx(want, rel=1e-12)


def test_ratio_contrastive_is_scale_free_unlike_the_absolute_form():
    # Early in training every value is tiny; the ratio still sees that the negative is as likely.
    for scale in (1.0, 1e-3, 1e-9):
        got = ratio_contrastive(torch.tensor([0.4 * scale]), torch.tensor([0]), torch.tensor([0.4 * scale]),
                                torch.tensor([0]))
        assert float(got) == pytest.approx(math.log(2), rel=1e-6)


def test_ratio_contrastive_gradient_raises_positive_and_lowers_negatives():
    pos = torch.tensor([0.3, 0.2], dtype=torch.float64, requires_grad=True)
    neg = torch.tensor([0.3, 0.1, 0.5], dtype=torch.float64, requires_grad=True)
    ratio_contrastive(pos, torch.tensor([3, 7]), neg, torch.tensor([7, 3, 3])).backward()
    assert (pos.grad < 0).all() and (neg.grad > 0).all()  # descent raises pos, lowers negatives


def test_ratio_contrastive_is_invariant_to_the_order_of_rows():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.rand(5, generator=g, dtype=torch.float64), torch.rand(12, generator=g, dtype=torch.float64)
    pv, nv = torch.arange(5), torch.randint(0, 5, (12,), generator=g)
    a = ratio_contrastive(pos, pv, neg, nv)
    p1, p2 = torch.randperm(5, generator=g), torch.randperm(12, generator=g)
    b = ratio_contrastive(pos[p1], pv[p1], neg[p2], nv[p2])
    assert float(a) == pytest.approx(float(b), rel=1e-12)


def test_ratio_contrastive_finite_at_zero_and_one_and_without_negatives():
    pos = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64, requires_grad=True)
    neg = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    loss = ratio_contrastive(pos, torch.tensor([0, 1, 2]), neg, torch.tensor([0, 1]))  # video 2: no negatives
    loss.backward()
    assert math.isfinite(float(loss.detach()))
    assert torch.isfinite(pos.grad).all() and torch.isfinite(neg.grad).all()
    empty = ratio_contrastive(pos[2:], torch.tensor([2]), neg[:0], torch.tensor([], dtype=torch.long))
    assert float(empty.detach()) == 0.0


def _work(videos, k, seed=3):
    from laser_train.losses import WeakBatch

    return WeakBatch([], [], torch.zeros(0), [], torch.zeros(0, 1, 2), torch.zeros(0, 1, dtype=torch.bool),
                     semantic_frames=k, semantic_seed=seed, videos=tuple(videos))


def test_semantic_frames_are_a_sample_of_real_frames_fixed_per_video():
    from laser_train.losses import semantic_frame_mask

    fm = torch.arange(10)[None, :] < torch.tensor([10, 4, 7])[:, None]
    got = semantic_frame_mask(fm, _work([5, 9, 2], k=6))
    assert got.sum(1).tolist() == [6, 4, 6]  # at most k, never a padded frame
    assert not (got & ~fm).any()
    # The same video draws the same frames whatever else is in the batch (data-parallel slicing).
    alone = semantic_frame_mask(fm[2:], _work([2], k=6))
    assert torch.equal(alone[0], got[2])
    assert torch.equal(semantic_frame_mask(fm, _work([5, 9, 2], k=0)), fm)  # 0: every frame
    assert not torch.equal(semantic_frame_mask(fm, _work([5, 9, 2], k=6, seed=4)), got)  # a new step, new frames


def test_semantic_frame_sample_is_uniform():
    from laser_train.losses import semantic_frame_mask

    fm = torch.ones(1, 8, dtype=torch.bool)
    hits = sum(semantic_frame_mask(fm, _work([0], k=2, seed=s)).double() for s in range(4000))
    freq = hits[0] / 4000
    assert torch.allclose(freq, torch.full_like(freq, 0.25), atol=0.03)  # each frame with probability k/T


def test_sparsity_is_the_mean_nll_of_visible_facts_being_false():
    from laser_train.losses import sparsity_loss

    present = torch.tensor([[[True, True, False]]])  # one video, one frame, track 2 absent
    unary = torch.full((1, 1, 3, 2), 0.5, dtype=torch.float64)
    unary[0, 0, 2] = 0.999  # an absent track's facts do not count
    binary = torch.full((1, 1, 3, 3, 1), 0.25, dtype=torch.float64, requires_grad=True)
    loss, n = sparsity_loss(unary, binary, present)
    assert n == 2 * 2 + 2  # two visible tracks x 2 predicates, the ordered pairs (0, 1) and (1, 0)
    assert float(loss.detach()) == pytest.approx((4 * -math.log(0.5) + 2 * -math.log(0.75)) / 6)
    loss.backward()
    assert binary.grad[0, 0, 0, 1, 0] > 0 and binary.grad[0, 0, 0, 0, 0] == 0  # self-pairs and absent: no push
