"""Evaluation against ground-truth scene graphs, and spec satisfaction on held-out captions.

Recall@k (the LASER protocol, computed over **every** ground-truth fact):

* names: for each track and each true category, is it among the k best-scored categories of that track;
* unary: for each frame, track and true unary predicate, is it among the k best predicates of that (frame, track);
* binary: for each frame, ordered pair of distinct tracks and true binary predicate, is it among the k best
  predicates of that (frame, pair).

Ties are broken at random *in expectation*: a fact whose score ties with ``e``
others and is beaten by ``g`` counts ``clip((k - g) / (e + 1), 0, 1)``, so a
constant model scores exactly chance. Chance is ``min(k, K) / K`` for ``K``
columns. ``*_macro_r1`` is recall@1 averaged over predicates (each predicate
weighted equally), which exposes a model that only learned the frequent ones.

Spec satisfaction accuracy: every held-out video's caption spec (label 1) and
its negatives (label 0) are evaluated on the model's *binarized* scene graph
(argmax category, facts with probability >= 0.5) under the boolean logic; the
reported accuracy is balanced (mean of the positive and negative rates). The
same number on the ground-truth graphs is the ceiling, which is below 1 when a
negative happens to be true of a video.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["recall_at_k", "scene_graph_metrics", "chance_metrics", "predict", "binarize", "spec_accuracy",
           "evaluate_model"]


def _hits(scores: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor, k: int):
    """Expected hit@k of every column [M, K] (random tie-breaking) and the truth [M, K] at ``valid`` rows."""
    s, y = scores[valid].double(), truth[valid] > 0.5
    greater = (s[:, None, :] > s[:, :, None]).sum(-1)  # [M, K]: how many columns beat column j
    equal = (s[:, None, :] == s[:, :, None]).sum(-1) - 1
    return ((k - greater).double() / (equal + 1).double()).clamp(0, 1), y


def recall_at_k(scores: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor, k: int) -> tuple[float, int]:
    """Expected recall@k over the true facts of ``truth`` [..., K] at positions where ``valid`` [...].

    Returns (recall, number of facts).
    """
    hit, y = _hits(scores, truth, valid, k)
    if y.sum() == 0:
        return float("nan"), 0
    return float(hit[y].mean()), int(y.sum())


def _macro(scores: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor) -> float:
    """Recall@1 per column (predicate), averaged over the columns that have true facts."""
    hit, y = _hits(scores, truth, valid, 1)
    per = [float(hit[:, j][y[:, j]].mean()) for j in range(y.shape[1]) if y[:, j].any()]
    return sum(per) / len(per) if per else float("nan")


def _valid_masks(data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    present = data.present
    tracks = present.any(1)  # [V, N]: tracks seen at least once
    pairs = present[:, :, :, None] & present[:, :, None, :]
    eye = torch.eye(present.shape[-1], dtype=torch.bool)
    return tracks, present, pairs & ~eye


def scene_graph_metrics(pred, data, ks=(1, 5)) -> dict[str, float]:
    """Recall@k of ``pred`` (a :class:`~laser_train.model.SceneGraphScores` over all of ``data``)."""
    tracks, present, pairs = _valid_masks(data)
    names, unary, binary = pred.log_scores()
    out: dict[str, float] = {}
    for kind, scores, truth, valid in (("names", names, data.gt_names, tracks),
                                       ("unary", unary, data.gt_unary, present),
                                       ("binary", binary, data.gt_binary, pairs)):
        for k in ks:
            out[f"{kind}_r{k}"], n = recall_at_k(scores, truth, valid, k)
        out[f"{kind}_macro_r1"] = _macro(scores, truth, valid)
        out[f"{kind}_facts"] = n
    return out


def chance_metrics(data, ks=(1, 5)) -> dict[str, float]:
    """Expected recall of a uniformly random ranking."""
    out: dict[str, float] = {}
    for kind, truth in (("names", data.gt_names), ("unary", data.gt_unary), ("binary", data.gt_binary)):
        K = truth.shape[-1]
        for k in ks:
            out[f"{kind}_r{k}"] = min(k, K) / K
        out[f"{kind}_macro_r1"] = 1 / K
    return out


@torch.no_grad()
def predict(model, data, batch_size: int = 64):
    """Run ``model`` over all videos of ``data``; returns one concatenated SceneGraphScores."""
    from laser_train.model import SceneGraphScores

    model.eval()
    parts = []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        parts.append(model(data.batch(idx)))
    model.train()
    return SceneGraphScores(*(torch.cat([getattr(p, f) for p in parts]) for f in SceneGraphScores.FIELDS))


def binarize(pred, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The predicted scene graph as 0/1 facts: the best category per track, facts with probability >= threshold."""
    names = torch.nn.functional.one_hot(pred.names.argmax(-1), pred.names.shape[-1]).float()
    _, unary, binary = pred.probs()
    return names, (unary >= threshold).float(), (binary >= threshold).float()


def spec_accuracy(supervision: Any, graph: tuple[torch.Tensor, ...], data, negatives: list[list[int]]
                  ) -> dict[str, float]:
    """How well ``graph`` decides each video's caption spec (true) and its negatives (false).

    Returns ``spec_accuracy`` — the *balanced* accuracy, the mean of the rate of positives found
    true (``spec_pos_acc``) and of negatives found false (``spec_neg_acc``), so that with many
    negatives per caption an "everything is false" graph scores 50%, not 89% — and both rates.
    ``supervision`` is a :class:`laser_train.losses.SpecSupervision` holding every spec;
    ``negatives[v]`` lists the spec ids used as negatives for video v.
    """
    names, unary, binary = graph
    hits = {1.0: [0, 0], 0.0: [0, 0]}  # label -> [correct, total]
    for start in range(0, len(data), 64):
        idx = list(range(start, min(start + 64, len(data))))
        spec_ids, video_ids, labels = [], [], []
        for j, v in enumerate(idx):
            spec_ids.append(supervision.positive_id(data, v))
            video_ids.append(j)
            labels.append(1.0)
            for s in negatives[v]:
                spec_ids.append(s)
                video_ids.append(j)
                labels.append(0.0)
        t = torch.tensor(idx)
        values = supervision.evaluate(names[t], unary[t], binary[t], data.frame_mask[t], data.track_mask[t],
                                      data.present[t], spec_ids, video_ids, logic="boolean",
                                      witnesses=False).values
        for value, label in zip(values.tolist(), labels):
            hits[label][0] += int((value >= 0.5) == (label == 1.0))
            hits[label][1] += 1
    pos = hits[1.0][0] / max(hits[1.0][1], 1)
    neg = hits[0.0][0] / max(hits[0.0][1], 1) if hits[0.0][1] else float("nan")
    return {"spec_accuracy": (pos + neg) / 2 if hits[0.0][1] else pos, "spec_pos_acc": pos, "spec_neg_acc": neg}


def evaluate_model(model, data, supervision: Any, negatives: list[list[int]], ks=(1, 5),
                   threshold: float = 0.5, protocols=("facts",)) -> dict[str, float]:
    """Recall against ``data``'s hidden scene graphs (when it has them) under each of ``protocols``
    (:mod:`laser_train.protocols`; ``facts`` is :func:`scene_graph_metrics`) and the spec accuracy."""
    from laser_train.protocols import protocol_metrics

    pred = predict(model, data)
    metrics: dict[str, float] = {}
    if data.has_ground_truth:
        metrics.update(protocol_metrics(pred, data, protocols, ks))
    metrics.update(spec_accuracy(supervision, binarize(pred, threshold), data, negatives))
    return metrics
