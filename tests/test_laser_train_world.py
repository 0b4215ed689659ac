"""laser_train playroom world: size of the vocabulary, tracks, presence, determinism; captions and
background rules hold on the hidden ground truth; the results table's columns and ratios."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import stlspec  # noqa: E402
from laser_train.data import playroom  # noqa: E402
from laser_train.data.worlds import background_path, get_world, world_settings  # noqa: E402


@pytest.fixture(scope="module")
def videos():
    return [playroom.generate_video(0, i) for i in range(24)]


def test_vocabulary_is_as_large_as_promised():
    voc = stlspec.compile_text(playroom.VOCABULARY_STL).vocabulary
    assert len(voc.categories) >= 20 and len(voc.unary) >= 15 and len(voc.binary) >= 20
    for r in ("holding", "pushing", "touching", "inside", "on", "throwing"):
        assert r in voc.binary_names
    assert set(playroom.INTERACTIONS) <= set(voc.binary_names)


def test_deterministic_and_independent_of_count():
    a, b = playroom.generate_video(5, 3), playroom.generate_video(5, 3)
    assert np.array_equal(a.frames, b.frames) and a.spec == b.spec and np.array_equal(a.binary, b.binary)
    assert playroom.generate_video(6, 3).spec != a.spec


def test_tracks_frames_presence_and_distractors(videos):
    counts = [len(v.categories) for v in videos]
    assert min(counts) >= 2 and max(counts) <= 10 and np.mean(counts) >= 5
    assert all(v.frames.shape[0] == 24 for v in videos)
    # tracks leave, enter or are hidden at some frames in some videos; every track is seen at least once
    assert any((~v.present).any() for v in videos)
    assert all(v.present.any(0).all() for v in videos)
    # facts hold only where tracks are present
    for v in videos:
        assert not v.unary[~v.present].any()
    # captions mention at most three tracks: the rest are distractors
    assert all(len(v.spec.split(".")[0].split(",")) <= 3 for v in videos)
    assert sum(len(v.categories) > 3 for v in videos) > len(videos) // 2


def test_predicate_frequencies_are_long_tailed_not_dominated(videos):
    for arr in (sum(v.unary.sum((0, 1)) for v in videos), sum(v.binary.sum((0, 1, 2)) for v in videos)):
        share = arr / arr.sum()
        assert share.max() < 0.6  # no single predicate is most of the facts
        assert (share > 0).sum() >= 0.7 * len(share)  # most predicates occur in just 24 videos


def _batch(v, voc):
    from stlspec.backends.torch import SceneGraphBatch

    n = len(v.categories)
    names = np.zeros((1, n, len(voc.categories)), np.float32)
    for k, c in enumerate(v.categories):
        names[0, k, voc.categories.index(c)] = 1
    return SceneGraphBatch(names=torch.tensor(names), unary=torch.tensor(v.unary[None]).float(),
                           binary=torch.tensor(v.binary[None]).float(),
                           frame_mask=torch.ones(1, v.unary.shape[0], dtype=torch.bool),
                           track_mask=torch.ones(1, n, dtype=torch.bool), present=torch.tensor(v.present[None]))


def test_captions_and_background_rules_hold_on_the_ground_truth(videos):
    from stlspec.backends.torch import Columns, compile_specs

    voc = stlspec.compile_text(playroom.VOCABULARY_STL).vocabulary
    rules = list(stlspec.compile_text(background_path("playroom").read_text(), vocabulary=voc).specs)
    captions = [stlspec.compile_text(v.spec, vocabulary=voc).specs[0] for v in videos]  # they check
    ev = compile_specs(tuple(rules + captions), Columns.from_vocabulary(voc), logic="boolean")
    for i, v in enumerate(videos):
        ids = list(range(len(rules))) + [len(rules) + i]
        values = ev(_batch(v, voc), spec_ids=ids, video_ids=[0] * len(ids), witnesses=False).values.tolist()
        failed = [s.name for s, x in zip(rules + [captions[i]], values) if x < 1]
        assert not failed, f"{v.video_id}: {failed}"


def test_world_registry_and_settings():
    assert get_world("toy").DEFAULTS["num_frames"] == 12
    assert world_settings("playroom", num_frames=0, image_size=32)["image_size"] == 32
    assert world_settings("playroom")["num_frames"] == 24
    from laser_train.config import ConfigError

    with pytest.raises(ConfigError, match="unknown synthetic world 'moon'.*toy"):
        get_world("moon")


def test_rule_free_predicates_are_those_no_rule_mentions():
    from laser_train.evaluate import rule_free_predicates

    voc = stlspec.compile_text(playroom.VOCABULARY_STL).vocabulary
    rules = stlspec.compile_text(background_path("playroom").read_text(), vocabulary=voc).specs
    free = rule_free_predicates(rules, voc)
    fb = {voc.binary_names[i] for i in free["binary"]}
    assert "left_of" not in fb and "holding" not in fb and {"inside", "throwing", "looking_at"} <= fb
    assert "still" not in {voc.unary_names[i] for i in free["unary"]}


# ---------------------------------------------------------------------------------------------- table


def test_ratios_are_against_prior_and_targets_use_macro_recall():
    from laser_train.experiment import RATIO_KEYS, format_table, ratios_vs, summarize, targets

    results = {"chance": {k: 0.1 for k in RATIO_KEYS}, "prior": {k: 0.2 for k in RATIO_KEYS},
               "weak": {k: 0.5 for k in RATIO_KEYS}, "full": {k: 0.6 for k in RATIO_KEYS}}
    results["weak"]["spec_pos_acc"] = 0.85
    r = ratios_vs(results)
    assert r["weak"]["unary_macro_r1"] == pytest.approx(2.5) and r["prior"]["binary_r1"] == pytest.approx(1.0)
    assert r["chance"]["names_r1"] == pytest.approx(0.5)
    goal = targets(results)
    assert goal["unary_weak_over_prior"] == pytest.approx(2.5) and goal["unary_weak_over_prior_met"]
    assert goal["binary_weak_over_full"] == pytest.approx(5 / 6) and goal["binary_weak_over_full_met"]
    assert goal["weak_spec_pos_acc_met"]
    mean, sd = summarize([{"a": 0.1}, {"a": 0.3}, {"a": 0.2}])
    assert mean["a"] == pytest.approx(0.2) and sd["a"] == pytest.approx(0.1)
    assert math.isnan(summarize([{"a": 0.1}])[1]["a"])
    text = format_table(results, {"weak": 3.0}, {"weak": {"unary_r1": 0.01}})
    assert "50.0±1.0" in text and "binary free mR@1" in text and "spec neg acc" in text


def test_prior_predictor_ranks_by_category_frequency():
    from types import SimpleNamespace

    from laser_train.evaluate import PriorModel, scene_graph_metrics

    V, T, N, C, P, R = 4, 3, 2, 2, 3, 2
    names = torch.zeros(V, N, C)
    names[:, 0, 0] = names[:, 1, 1] = 1  # track 0 is category 0, track 1 category 1
    unary = torch.zeros(V, T, N, P)
    unary[:, :, 0, 2] = 1  # category 0: predicate 2; category 1: predicate 0
    unary[:, :, 1, 0] = 1
    binary = torch.zeros(V, T, N, N, R)
    binary[:, :, 0, 1, 1] = 1
    binary[:, :, 1, 0, 0] = 1
    batch = {"gt_names": names, "gt_unary": unary, "gt_binary": binary,
             "present": torch.ones(V, T, N, dtype=torch.bool)}
    voc = SimpleNamespace(categories=("a", "b"), unary=((0,),) * P, binary=((0,),) * R)
    pred = PriorModel(voc).fit([batch])(batch)
    data = SimpleNamespace(**batch)
    m = scene_graph_metrics(pred, data, ks=(1,))
    assert m["unary_r1"] == 1.0 and m["binary_r1"] == 1.0 and m["unary_macro_r1"] == 1.0
    assert m["names_r1"] == pytest.approx(0.5)  # names: the frequencies, equal here -> a tie
