"""The objective registry, the caption scene graph, and each baseline loss on hand-built tensors.

Properties checked for every loss: the positive pair's loss falls when its
similarity rises; invariance to the order of the videos in the batch;
finite gradients at extreme similarities (identical, opposite, huge and zero
embeddings); invariance to padding (extra masked tracks, frames, mentions).
"""

from __future__ import annotations

import math

import pytest
import torch

import stlspec
from laser_train.objectives import (ObjectiveContext, ObjectiveError, format_objective, objective_loss,
                                    parse_objective)
from laser_train.objectives.common import hint_frames, info_nce
from laser_train.objectives.configs import FinstaConfig, HEROConfig, SViLMConfig
from laser_train.objectives.finsta import finsta_loss, object_alignment, symmetric_masked_nce
from laser_train.objectives.hero import action_correspondence, action_split, hero_loss
from laser_train.objectives.inputs import EmbeddingBatch
from laser_train.objectives.structure import CaptionBatch, caption_batch, caption_graph
from laser_train.objectives.svilm import (global_contrastive, paste_plan, spatial_grounding, svilm_loss,
                                          temporal_grouping)

VOCAB = """
category person, dog, ball, box
unary still(any), open(box)
binary near(any, any), holding(person, any), left_of(any, any)
"""

SPECS = """
spec s0 "a person holds a ball early, then the ball is near the box" {
  exists p: person, b: ball, x: box. holding(p, b) @early then near(b, x) @late
}
spec s1 "a dog stays still" { exists d: dog. eventually still(d) }
spec s2 "a box is open and no person holds a ball" {
  exists x: box, p: person, b: ball. eventually (open(x) and not holding(p, b))
}
spec s3 "a person is left of a dog until the dog is near it" {
  exists p: person, d: dog. left_of(p, d) until near(d, p)
}
"""


@pytest.fixture(scope="module")
def program():
    return stlspec.compile_text(VOCAB + SPECS)


@pytest.fixture(scope="module")
def captions(program) -> CaptionBatch:
    return caption_batch([caption_graph(s) for s in program.specs], program.vocabulary)


def make_emb(seed=0, B=4, T=8, N=4, D=6, C=4, P=2, R=3, present_p=0.8) -> EmbeddingBatch:
    g = torch.Generator().manual_seed(seed)
    present = torch.rand(B, T, N, generator=g) < present_p
    present[:, 0] = True  # every track visible at least once
    return EmbeddingBatch(
        objects=torch.randn(B, N, D, generator=g), tracks=torch.randn(B, T, N, D, generator=g),
        pairs=torch.randn(B, T, N, N, D, generator=g), categories=torch.randn(C, D, generator=g),
        unary_words=torch.randn(P, D, generator=g), binary_words=torch.randn(R, D, generator=g),
        present=present, frame_mask=torch.ones(B, T, dtype=torch.bool), track_mask=torch.ones(B, N, dtype=torch.bool))


def pad_tracks(emb: EmbeddingBatch, extra: int = 2) -> EmbeddingBatch:
    """The same batch with ``extra`` padded (masked, never present) tracks holding garbage embeddings."""
    B, T, N = emb.present.shape
    D = emb.tracks.shape[-1]
    g = torch.Generator().manual_seed(99)
    M = N + extra
    pairs = torch.randn(B, T, M, M, D, generator=g) * 50
    pairs[:, :, :N, :N] = emb.pairs
    return EmbeddingBatch(
        objects=torch.cat([emb.objects, torch.randn(B, extra, D, generator=g) * 50], 1),
        tracks=torch.cat([emb.tracks, torch.randn(B, T, extra, D, generator=g) * 50], 2), pairs=pairs,
        categories=emb.categories, unary_words=emb.unary_words, binary_words=emb.binary_words,
        present=torch.cat([emb.present, torch.zeros(B, T, extra, dtype=torch.bool)], 2), frame_mask=emb.frame_mask,
        track_mask=torch.cat([emb.track_mask, torch.zeros(B, extra, dtype=torch.bool)], 1))


def pad_frames(emb: EmbeddingBatch, extra: int = 3) -> EmbeddingBatch:
    B, T, N = emb.present.shape
    D = emb.tracks.shape[-1]
    g = torch.Generator().manual_seed(98)

    def cat(x, shape):
        return torch.cat([x, torch.randn(*shape, generator=g) * 50], 1)

    return EmbeddingBatch(
        objects=emb.objects, tracks=cat(emb.tracks, (B, extra, N, D)),
        pairs=cat(emb.pairs, (B, extra, N, N, D)), categories=emb.categories, unary_words=emb.unary_words,
        binary_words=emb.binary_words, present=torch.cat([emb.present, torch.ones(B, extra, N, dtype=torch.bool)], 1),
        frame_mask=torch.cat([emb.frame_mask, torch.zeros(B, extra, dtype=torch.bool)], 1), track_mask=emb.track_mask)


def pad_captions(cap: CaptionBatch, extra: int = 2) -> CaptionBatch:
    B = len(cap)

    def cat(x, fill, dtype=None):
        pad = torch.full((B, extra, *x.shape[2:]), fill, dtype=dtype or x.dtype)
        return torch.cat([x, pad], 1)

    return CaptionBatch(cat(cap.entity_cat, 1), cat(cap.entity_mask, False), cat(cap.pred_kind, 1),
                        cat(cap.pred_id, 2), cat(cap.pred_args, 0), cat(cap.pred_mask, False),
                        cat(cap.pred_hint, 0.5), cat(cap.pred_event, -1))


PLAN = (torch.tensor([1, 2, 3, 0]), torch.tensor([2, 3, 1, 4]), torch.tensor([5, 5, 4, 7]))


def all_losses(emb, cap, plan=PLAN):
    return {
        "svilm": svilm_loss(emb, cap, SViLMConfig(), plan)[0],
        "finsta": finsta_loss(emb, cap, FinstaConfig())[0],
        "hero": hero_loss(emb, cap, HEROConfig())[0],
    }


# ---------------------------------------------------------------------------------------------- structure


def test_caption_graph_reads_entities_predicates_events(program):
    g = caption_graph(program.spec("s0"))
    assert [(e.var, e.category) for e in g.entities] == [("p", "person"), ("b", "ball"), ("x", "box")]
    assert [(p.kind, p.pred, p.args, p.event) for p in g.predicates] == [
        ("binary", "holding", (0, 1), 0), ("binary", "near", (1, 2), 1)]
    assert g.num_events == 2
    assert g.predicates[0].hint is not None and g.predicates[0].hint[0] == 0.0


def test_caption_graph_marks_negated_mentions(program):
    g = caption_graph(program.spec("s2"))
    assert [(p.pred, p.negated) for p in g.predicates] == [("open", False), ("holding", True)]
    assert [p.pred for p in g.positive()] == ["open"]


def test_caption_graph_until_and_forall(program):
    g = caption_graph(program.spec("s3"))
    assert {p.pred for p in g.predicates} == {"left_of", "near"}
    rule = stlspec.compile_text(VOCAB + 'spec r "" { forall x: dog. always still(x) }').specs[0]
    assert caption_graph(rule).predicates == ()  # a rule's variables are not things in the scene


def test_caption_graph_walks_deep_trees_without_recursion():
    from stlspec import ir

    f: ir.Formula = ir.Unary("still", "d")
    for _ in range(5001):  # odd: negated
        f = ir.Not(f)
    g = caption_graph(ir.Spec("deep", ir.Exists((("d", "dog"),), ir.Always(ir.Next(f, steps=3)))))
    assert [(p.pred, p.negated) for p in g.predicates] == [("still", True)]


def test_caption_batch_shapes_and_masks(captions):
    assert captions.entity_cat.shape == (4, 3) and captions.pred_id.shape == (4, 2)
    assert captions.entity_mask.tolist()[1] == [True, False, False]
    assert captions.pred_mask.tolist()[2] == [True, False]  # the negated holding does not count
    assert captions.pred_kind.tolist()[1][0] == 0


def test_caption_batch_rejects_unknown_words(program):
    other = stlspec.compile_text("category cat\nunary sleeps(any)\n" + 'spec z "" { exists c: cat. eventually sleeps(c) }')
    with pytest.raises(ValueError, match="not in the vocabulary"):
        caption_batch([caption_graph(other.specs[0])], program.vocabulary)


# ---------------------------------------------------------------------------------------------- registry


@pytest.mark.parametrize("text, want", [
    ("laser", {"laser": 1.0}), ("laser+svilm", {"laser": 1.0, "svilm": 1.0}),
    (" 0.5*finsta + hero ", {"finsta": 0.5, "hero": 1.0}), ("laser+1e-1*hero", {"laser": 1.0, "hero": 0.1}),
])
def test_parse_objective(text, want):
    assert parse_objective(text) == want
    assert parse_objective(format_objective(want)) == want
    assert parse_objective(dict(want)) == want


@pytest.mark.parametrize("text, msg", [
    ("clip", "unknown objective 'clip'"), ("laser+laser", "appears twice"), ("laser*2", "cannot read"),
    ("0*laser", "at least one"), ("", "cannot read"),
])
def test_parse_objective_errors(text, msg):
    with pytest.raises(ObjectiveError, match=msg):
        parse_objective(text)


def test_objective_loss_laser_alone_is_lasers_value_and_sums_weighted(captions):
    emb = make_emb()
    laser_value = torch.tensor(1.234567, dtype=torch.float32)
    ctx = ObjectiveContext(laser=lambda: (laser_value, {"alignment": laser_value}), embeddings=emb,
                           captions=captions, generator=torch.Generator().manual_seed(0))

    class Cfg:
        svilm, finsta, hero = SViLMConfig(), FinstaConfig(), HEROConfig()

    total, terms = objective_loss({"laser": 1.0}, ctx, Cfg)
    assert total is laser_value and set(terms) == {"alignment"}
    total, terms = objective_loss({"laser": 1.0, "finsta": 0.5}, ctx, Cfg)
    assert torch.allclose(total, laser_value + 0.5 * finsta_loss(emb, captions, FinstaConfig())[0])
    assert {"alignment", "finsta.spatial", "finsta.temporal"} <= set(terms)


# ---------------------------------------------------------------------------------------------- properties


def test_info_nce_no_valid_row_is_zero_with_gradient():
    logits = torch.zeros(3, 3, requires_grad=True)
    out = info_nce(logits, torch.zeros(3, 3, dtype=torch.bool), torch.ones(3, 3, dtype=torch.bool))
    out.backward()
    assert float(out.detach()) == 0.0 and torch.isfinite(logits.grad).all()


def test_global_contrastive_falls_as_positive_similarity_rises():
    # Captions are orthonormal; video 0 turns from a direction orthogonal to every caption towards its own,
    # so only the positive similarity changes.
    text = torch.eye(5, 8)
    g = torch.Generator().manual_seed(1)
    video = torch.randn(5, 8, generator=g)
    losses = []
    for a in (0.0, 0.3, 0.6, 0.9, 1.0):
        v = video.clone()
        v[0] = math.cos(a * math.pi / 2) * torch.eye(8)[7] + math.sin(a * math.pi / 2) * text[0]
        losses.append(float(global_contrastive(v, text, 0.1)))
    assert all(x > y for x, y in zip(losses, losses[1:])), losses


def test_spatial_grounding_falls_as_own_track_matches_the_noun():
    g = torch.Generator().manual_seed(2)
    B, N, D = 4, 3, 6
    tracks, nouns = torch.randn(B, N, D, generator=g), torch.randn(B, 1, D, generator=g)
    mask = torch.ones(B, N, dtype=torch.bool)
    losses = []
    for a in (0.0, 0.5, 0.9, 1.0):
        t = tracks.clone()
        t[0, 1] = (1 - a) * tracks[0, 1] + a * nouns[0, 0]
        losses.append(float(spatial_grounding(nouns, torch.ones(B, 1, dtype=torch.bool), t, mask, 0.1, 0.1)))
    assert all(x > y for x, y in zip(losses, losses[1:])), losses


def test_temporal_grouping_falls_as_segments_separate():
    g = torch.Generator().manual_seed(3)
    B, T, D = 2, 8, 6
    base = torch.randn(B, 1, D, generator=g)
    noise = torch.randn(B, T, D, generator=g)
    plan = (torch.tensor([1, 0]), torch.tensor([2, 3]), torch.tensor([5, 6]))
    fm = torch.ones(B, T, dtype=torch.bool)
    losses = [float(temporal_grouping(base + s * noise, fm, *plan, 0.1)) for s in (3.0, 1.0, 0.3, 0.05)]
    assert all(x > y for x, y in zip(losses, losses[1:])), losses


def rotate(start: torch.Tensor, target: torch.Tensor, a: float) -> torch.Tensor:
    """A unit vector turned from ``start`` (orthogonal to ``target``) towards ``target`` by ``a`` of 90°."""
    return math.cos(a * math.pi / 2) * start + math.sin(a * math.pi / 2) * target


def test_object_alignment_falls_as_matched_track_approaches_its_word():
    # Words are basis vectors e0..e5, tracks live in the spare dimensions 8..15; one track turns towards
    # its entity's word, so only that entity's positive similarity changes.
    B, E, N, D = 3, 2, 3, 16
    nouns = torch.eye(B * E, D).reshape(B, E, D)
    g = torch.Generator().manual_seed(4)
    tracks = torch.cat([torch.zeros(B, N, 8), torch.randn(B, N, 8, generator=g)], -1)
    cats = torch.arange(B * E).reshape(B, E)
    mask = torch.ones(B, E, dtype=torch.bool)
    mask[0, 1] = False  # else its uniform match over video 0's tracks would pick up the turning track too
    losses = []
    for a in (0.0, 0.3, 0.6, 0.9, 1.0):
        t = tracks.clone()
        t[0, 2] = rotate(torch.eye(D)[15], nouns[0, 0], a)
        losses.append(float(object_alignment(nouns, cats, mask, t, torch.ones(B, N, dtype=torch.bool),
                                             FinstaConfig())[0]))
    assert all(x > y for x, y in zip(losses, losses[1:])), losses


def test_same_label_mentions_are_not_negatives():
    text = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # two mentions of the same word
    visual = torch.tensor([[[1.0, 0.0], [0.9, 0.1]]])
    same = symmetric_masked_nce(text, visual, torch.tensor([[5, 5]]), torch.ones(1, 2, dtype=torch.bool), 0.1)
    assert float(same) == pytest.approx(0.0, abs=1e-6)  # each competes only with itself


def test_action_correspondence_falls_as_consistent_frames_match_the_action():
    T, D = 8, 16
    word = torch.eye(D)[:1]
    g = torch.Generator().manual_seed(5)
    feats = torch.cat([torch.zeros(1, T, 8), torch.randn(1, T, 8, generator=g)], -1)  # orthogonal to the word
    frames = torch.ones(1, T, dtype=torch.bool)
    cand = torch.zeros(1, T, dtype=torch.bool)
    cand[0, :4] = True  # rho = 0.5: the two most similar candidates are the consistent frames
    losses = []
    for a in (0.05, 0.3, 0.6, 0.9, 1.0):
        f = feats.clone()
        f[0, 1] = rotate(torch.eye(D)[15], word[0], a)
        f[0, 2] = rotate(torch.eye(D)[14], word[0], a)
        losses.append(float(action_correspondence(word, f, frames, cand, torch.ones(1, dtype=torch.bool), 0.1, 0.5)))
    assert all(x > y for x, y in zip(losses, losses[1:])), losses


def test_action_split_takes_the_top_candidates():
    sim = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.95]])
    cand = torch.tensor([[True, True, True, True, False]])
    assert action_split(sim, cand, 0.5).tolist() == [[False, True, False, True, False]]


@pytest.mark.parametrize("name", ["svilm", "finsta", "hero"])
def test_permutation_invariance(name, captions):
    emb = make_emb(6)
    order = torch.tensor([2, 0, 3, 1])
    inverse = torch.argsort(order)
    # the cut-and-paste plan moves with the videos: new video i is old order[i], its partner old partner[order[i]]
    partner, start, end = PLAN
    plan = (inverse[partner[order]], start[order], end[order])
    a = all_losses(emb, captions)[name]
    b = all_losses(emb.permute(order), captions.index(order), plan)[name]
    assert torch.allclose(a, b, atol=1e-5), (float(a), float(b))


@pytest.mark.parametrize("name", ["svilm", "finsta", "hero"])
def test_padding_invariance(name, captions):
    emb = make_emb(7)
    base = all_losses(emb, captions)[name]
    for padded_emb, padded_cap in ((pad_tracks(emb), captions), (pad_frames(emb), captions),
                                   (emb, pad_captions(captions))):
        other = all_losses(padded_emb, padded_cap)[name]
        assert torch.allclose(base, other, atol=1e-5), (float(base), float(other))


@pytest.mark.parametrize("name", ["svilm", "finsta", "hero"])
@pytest.mark.parametrize("kind", ["identical", "opposite", "huge", "zero"])
def test_gradients_finite_at_extreme_similarities(name, kind, captions):
    emb = make_emb(8)
    w = emb.categories
    match kind:
        case "identical":  # every embedding equals a word: cosines of exactly 1
            fill = lambda x: w[0].expand_as(x).clone()  # noqa: E731
        case "opposite":
            fill = lambda x: (-w[0]).expand_as(x).clone()  # noqa: E731
        case "huge":
            fill = lambda x: x * 1e8  # noqa: E731
        case "zero":
            fill = lambda x: x * 0  # noqa: E731
    leaves = {f: fill(getattr(emb, f)).requires_grad_() for f in ("objects", "tracks", "pairs")}
    words = {f: getattr(emb, f).clone().requires_grad_() for f in ("categories", "unary_words", "binary_words")}
    e = EmbeddingBatch(**leaves, **words, present=emb.present, frame_mask=emb.frame_mask, track_mask=emb.track_mask)
    loss = all_losses(e, captions)[name]
    loss.backward()
    assert math.isfinite(float(loss.detach()))
    for t in (*leaves.values(), *words.values()):
        assert t.grad is not None and torch.isfinite(t.grad).all()


def test_paste_plan_stays_inside_both_clips():
    fm = torch.zeros(5, 10, dtype=torch.bool)
    for b, n in enumerate((10, 4, 7, 2, 9)):
        fm[b, :n] = True
    partner, start, end = paste_plan(fm, SViLMConfig(), torch.Generator().manual_seed(0))
    assert (partner != torch.arange(5)).all()
    length = torch.minimum(fm.sum(1), fm[partner].sum(1))
    assert (start >= 0).all() and (end <= length).all() and (end > start).all() and (end - start < length).all()


def test_hint_frames_follow_window_convention():
    fm = torch.ones(1, 10, dtype=torch.bool)
    inside = hint_frames(torch.tensor([[[0.0, 1 / 3], [1 / 3, 2 / 3]]]), fm)
    assert inside[0, 0].nonzero().flatten().tolist() == [0, 1, 2, 3]  # floor(9/3) = 3
    assert inside[0, 1].nonzero().flatten().tolist() == [3, 4, 5, 6]


def test_embedding_batch_checks_shapes():
    emb = make_emb()
    with pytest.raises(ValueError, match="EmbeddingBatch.pairs has shape"):
        EmbeddingBatch(emb.objects, emb.tracks, emb.pairs[:, :, :2], emb.categories, emb.unary_words,
                       emb.binary_words, emb.present, emb.frame_mask, emb.track_mask)
