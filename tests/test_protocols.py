"""Evaluation protocols against values computed by hand on toy scene graphs (see laser_train/protocols.py)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from laser_train.config import ConfigError, load_config
from laser_train.protocols import laser_metrics, predcls_metrics, protocol_metrics

LOW = -10.0


class FakePred:
    def __init__(self, names, unary, binary):
        self.scores = (names, unary, binary)

    def log_scores(self):
        return self.scores


def toy():
    """1 video, 2 frames, 3 tracks (+1 never present), 3 categories, 1 unary and 3 binary predicates.

    frame 0: tracks 0, 1, 2 present; truth (0 r0 1), (0 r1 1), (0 r2 2)
    frame 1: track 2 absent; truth (1 r2 0), and (0 r0 2) which names the absent track (must not count)
    """
    V, T, N, C, P, R = 1, 2, 4, 3, 1, 3
    present = torch.zeros(V, T, N, dtype=torch.bool)
    present[0, 0, :3] = True
    present[0, 1, :2] = True
    gt_names = torch.zeros(V, N, C)
    gt_names[0, 0, 0] = gt_names[0, 1, 2] = gt_names[0, 2, 1] = gt_names[0, 3, 0] = 1
    gt_unary = torch.zeros(V, T, N, P)
    gt_binary = torch.zeros(V, T, N, N, R)
    gt_binary[0, 0, 0, 1, 0] = gt_binary[0, 0, 0, 1, 1] = gt_binary[0, 0, 0, 2, 2] = 1
    gt_binary[0, 1, 1, 0, 2] = gt_binary[0, 1, 0, 2, 0] = 1
    data = SimpleNamespace(present=present, gt_names=gt_names, gt_unary=gt_unary, gt_binary=gt_binary)
    names = torch.tensor([[[.9, .1, 0.], [.5, .4, .1], [.1, .9, .0], [0., 0., 0.]]])
    binary = torch.full((V, T, N, N, R), LOW)
    binary[0, 0, 0, 1] = torch.tensor([.9, .1, .8])
    binary[0, 0, 0, 2] = torch.tensor([.7, .2, .6])
    binary[0, 1, 1, 0] = torch.tensor([LOW, LOW, .5])
    binary[0, 1, 0, 2] = 5.0  # the absent track's pair scores high: not a candidate
    return FakePred(names, torch.zeros(V, T, N, P), binary), data


def test_predcls_with_and_without_graph_constraint():
    pred, data = toy()
    m = predcls_metrics(pred, data, ks=(1, 4, 6))
    assert m["predcls_frames"] == 2
    # frame 0 ranks .9 (0r0 1, true) .8 .7 .6 (0r2 2, true) .2 .1 (0r1 1, true); frame 1's one truth is first
    assert m["predcls_nogc_r1"] == pytest.approx((1 / 3 + 1) / 2)
    assert m["predcls_nogc_r4"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["predcls_nogc_r6"] == pytest.approx(1.0)
    # with the constraint each pair keeps its best predicate: (0, 1) -> r0, (0, 2) -> r0 (not true)
    for k in (1, 4, 6):
        assert m[f"predcls_gc_r{k}"] == pytest.approx((1 / 3 + 1) / 2)


def test_predcls_mean_recall():
    pred, data = toy()
    m = predcls_metrics(pred, data, ks=(1, 4, 6))
    # per predicate, averaged over the frames that have it: r0 {1}, r1 {0}, r2 {frame 0, frame 1}
    assert m["predcls_nogc_mr1"] == pytest.approx((1 + 0 + (0 + 1) / 2) / 3)
    assert m["predcls_nogc_mr4"] == pytest.approx((1 + 0 + (1 + 1) / 2) / 3)
    assert m["predcls_nogc_mr6"] == pytest.approx(1.0)
    assert m["predcls_gc_mr6"] == pytest.approx((1 + 0 + (0 + 1) / 2) / 3)


def test_predcls_ties_count_as_chance():
    V, T, N, R = 1, 1, 2, 2
    present = torch.ones(V, T, N, dtype=torch.bool)
    gt = torch.zeros(V, T, N, N, R)
    gt[0, 0, 0, 1, 0] = 1
    data = SimpleNamespace(present=present, gt_binary=gt)
    pred = FakePred(None, None, torch.zeros(V, T, N, N, R))  # a constant model: everything ties
    m = predcls_metrics(pred, data, ks=(1, 2, 4))
    # no constraint: 4 tied candidates (2 pairs x 2 predicates)
    assert m["predcls_nogc_r1"] == pytest.approx(1 / 4)
    assert m["predcls_nogc_r2"] == pytest.approx(2 / 4)
    assert m["predcls_nogc_r4"] == pytest.approx(1.0)
    # constraint: r0 kept for its pair with probability 1/2, the pair in the top 1 of 2 with probability 1/2
    assert m["predcls_gc_r1"] == pytest.approx(1 / 4)
    assert m["predcls_gc_r2"] == pytest.approx(1 / 2)
    assert m["predcls_gc_r4"] == pytest.approx(1 / 2)


def test_predcls_without_ground_truth_frames_is_nan():
    data = SimpleNamespace(present=torch.ones(1, 1, 2, dtype=torch.bool), gt_binary=torch.zeros(1, 1, 2, 2, 1))
    m = predcls_metrics(FakePred(None, None, torch.zeros(1, 1, 2, 2, 1)), data, ks=(1,))
    assert m["predcls_frames"] == 0 and math.isnan(m["predcls_gc_r1"])


def test_laser_per_object_and_per_pair():
    pred, data = toy()
    m = laser_metrics(pred, data, ks=(1, 2, 3))
    # tracks 0, 1, 2 (track 3 is never present): hit@1 at 0 and 2; track 1's truth is third
    assert m["laser_obj_count"] == 3
    assert m["laser_obj_r1"] == pytest.approx(2 / 3)
    assert m["laser_obj_r2"] == pytest.approx(2 / 3)
    assert m["laser_obj_r3"] == pytest.approx(1.0)
    # pairs with truth: f0 (0,1) {r0, r1} scores [.9 .1 .8]; f0 (0,2) {r2} [.7 .2 .6]; f1 (1,0) {r2}
    assert m["laser_pair_count"] == 3
    assert m["laser_pair_r1"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert m["laser_pair_r2"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    assert math.isnan(m["laser_unary_r1"]) and m["laser_unary_count"] == 0


def test_laser_and_facts_differ_only_in_averaging():
    pred, data = toy()
    m = protocol_metrics(pred, data, ("facts", "laser"), ks=(2,))
    assert m["binary_r2"] == pytest.approx(3 / 4)  # per fact: 0r0 1 hit, 0r1 1 miss, 0r2 2 hit, 1r2 0 hit
    assert m["laser_pair_r2"] == pytest.approx(5 / 6)  # per pair
    assert not any(k.startswith("predcls") for k in m)


def test_protocol_names_are_checked_early():
    with pytest.raises(ConfigError, match="eval.protocol: unknown protocol 'predcl'"):
        load_config(None, ["--eval.protocol=facts,predcl"])
    with pytest.raises(ConfigError, match="unknown evaluation protocol"):
        protocol_metrics(*toy(), ("sgdet",))
