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
accuracy is the fraction of (video, spec) pairs decided correctly. The same
number on the ground-truth graphs (``spec_accuracy_truth``) is the ceiling,
which is below 1 when a negative happens to be true of a video.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["recall_at_k", "scene_graph_metrics", "chance_metrics", "predict", "spec_accuracy"]


def recall_at_k(scores: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor, k: int) -> tuple[float, int]:
    """Expected recall@k over the true facts of ``truth`` [..., K] at positions where ``valid`` [...].

    Returns (recall, number of facts).
    """
    s, y = scores[valid].double(), truth[valid] > 0.5
    if y.sum() == 0:
        return float("nan"), 0
    greater = (s[:, None, :] > s[:, :, None]).sum(-1)  # [M, K]: how many columns beat column j
    equal = (s[:, None, :] == s[:, :, None]).sum(-1) - 1
    hit = ((k - greater).double() / (equal + 1).double()).clamp(0, 1)
    return float(hit[y].mean()), int(y.sum())


def _macro(scores: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor) -> float:
    s, y = scores[valid].double(), truth[valid] > 0.5
    greater = (s[:, None, :] > s[:, :, None]).sum(-1)
    equal = (s[:, None, :] == s[:, :, None]).sum(-1) - 1
    hit = ((1 - greater).double() / (equal + 1).double()).clamp(0, 1)
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
    out: dict[str, float] = {}
    for kind, scores, truth, valid in (("names", pred.names, data.gt_names, tracks),
                                       ("unary", pred.unary, data.gt_unary, present),
                                       ("binary", pred.binary, data.gt_binary, pairs)):
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
    return SceneGraphScores(*(torch.cat([getattr(p, f) for p in parts]) for f in ("names", "unary", "binary")))


def binarize(pred) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The predicted scene graph as 0/1 facts: the best category per track, facts with probability >= 0.5."""
    names = torch.nn.functional.one_hot(pred.names.argmax(-1), pred.names.shape[-1]).float()
    return names, (pred.unary >= 0).float(), (pred.binary >= 0).float()


def spec_accuracy(supervision: Any, graph: tuple[torch.Tensor, ...], data, negatives: list[list[int]]) -> float:
    """Accuracy of deciding each video's caption spec (true) and its negatives (false) on ``graph``.

    ``supervision`` is a :class:`laser_train.losses.SpecSupervision` holding every spec;
    ``negatives[v]`` lists spec ids used as negatives for video v.
    """
    names, unary, binary = graph
    correct = total = 0
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
        pred = values >= 0.5
        correct += int((pred == torch.tensor(labels).bool()).sum())
        total += len(labels)
    return correct / max(total, 1)
