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
(argmax category, facts with probability >= a threshold: ``eval.threshold``, or with
``eval.calibrate`` the one :func:`calibrate_threshold` picks on the *training* videos) under the
boolean logic; the reported accuracy is balanced (mean of the positive and negative rates). The
same number on the ground-truth graphs is the ceiling, which is below 1 when a
negative happens to be true of a video.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["recall_at_k", "scene_graph_metrics", "chance_metrics", "predict", "binarize", "spec_accuracy",
           "truth_spec_accuracy", "evaluate_model", "calibrate_threshold", "CALIBRATION_GRID", "RecallAccumulator",
           "SpecAccuracy", "PriorModel", "rule_free_predicates", "per_predicate_recall"]


def _hits(scores: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor, k: int):
    """Expected hit@k of every column [M, K] (random tie-breaking) and the truth [M, K] at ``valid`` rows.

    Ranks by sorting each row (O(M·K log K) memory and time, not O(M·K²): binary rows are many).
    """
    s, y = scores[valid].double(), truth[valid] > 0.5
    K = s.shape[-1]
    ordered = s.sort(-1).values.contiguous()
    right = torch.searchsorted(ordered, s.contiguous(), right=True)
    left = torch.searchsorted(ordered, s.contiguous(), right=False)
    greater = K - right  # how many columns beat column j
    equal = right - left - 1  # how many others tie with it
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
    tracks = present.any(1)  # [B, N]: tracks seen at least once
    pairs = present[:, :, :, None] & present[:, :, None, :]
    eye = torch.eye(present.shape[-1], dtype=torch.bool)
    return tracks, present, pairs & ~eye


class RecallAccumulator:
    """Micro and macro recall@k (and the same over the rule-free predicates) summed over batches: the
    same numbers as over the whole split at once (each a sum of per-fact hits over a count of facts),
    without holding the split in memory.

    Keys: ``{kind}_r{k}`` (every true fact counts once), ``{kind}_macro_r{k}`` (the mean over predicates
    of each predicate's recall), and with ``rule_free`` (predicate columns per kind that no background
    rule mentions) ``{kind}_free_r{k}`` / ``{kind}_free_macro_r{k}`` over those predicates' facts (still
    ranked among all predicates; nan when a kind has none).
    """

    KINDS = ("names", "unary", "binary")

    def __init__(self, ks=(1, 5), rule_free: dict[str, list[int]] | None = None):
        self.ks = tuple(ks)
        self.rule_free = rule_free
        self.col_hits: dict[tuple[str, int], torch.Tensor] = {}
        self.col_facts: dict[str, torch.Tensor] = {}

    def add(self, pred, data) -> None:
        """Add one batch: ``pred`` the model's SceneGraphScores, ``data`` with attributes ``present``,
        ``gt_names``, ``gt_unary``, ``gt_binary`` (e.g. a collated batch as a namespace)."""
        tracks, present, pairs = _valid_masks(data)
        names, unary, binary = pred.log_scores()
        for kind, scores, truth, valid in (("names", names, data.gt_names, tracks),
                                           ("unary", unary, data.gt_unary, present),
                                           ("binary", binary, data.gt_binary, pairs)):
            scores, truth, valid = scores.detach().cpu(), truth.cpu(), valid.cpu()
            for k in self.ks:
                hit, y = _hits(scores, truth, valid, k)
                ch = (hit * y).sum(0)
                self.col_hits[(kind, k)] = self.col_hits.get((kind, k), torch.zeros_like(ch)) + ch
            cf = y.sum(0).double()
            self.col_facts[kind] = self.col_facts.get(kind, torch.zeros_like(cf)) + cf

    def merge(self, other: "RecallAccumulator") -> None:
        """Add ``other``'s sums (another share of the same split, e.g. another rank's)."""
        for mine, theirs in ((self.col_hits, other.col_hits), (self.col_facts, other.col_facts)):
            for key, v in theirs.items():
                mine[key] = mine[key] + v if key in mine else v.clone()

    def per_predicate(self, kind: str, k: int = 1) -> tuple[list[float], list[int]]:
        """Recall@k of every column of ``kind`` (nan where it has no true fact) and its number of facts."""
        cf, ch = self.col_facts.get(kind), self.col_hits.get((kind, k))
        if cf is None:
            return [], []
        return ([float(h / f) if f > 0 else float("nan") for h, f in zip(ch.tolist(), cf.tolist())],
                [int(f) for f in cf.tolist()])

    def _micro_macro(self, kind: str, k: int, cols: list[int] | None) -> tuple[float, float]:
        cf, ch = self.col_facts.get(kind), self.col_hits.get((kind, k))
        if cf is None:
            return float("nan"), float("nan")
        idx = list(range(len(cf))) if cols is None else list(cols)
        f, h = cf[idx], ch[idx]
        micro = float(h.sum() / f.sum()) if f.sum() > 0 else float("nan")
        per = (h[f > 0] / f[f > 0]).tolist()
        return micro, (sum(per) / len(per) if per else float("nan"))

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for kind in self.KINDS:
            free = (self.rule_free or {}).get(kind)
            for k in self.ks:
                out[f"{kind}_r{k}"], out[f"{kind}_macro_r{k}"] = self._micro_macro(kind, k, None)
                if free is not None:
                    out[f"{kind}_free_r{k}"], out[f"{kind}_free_macro_r{k}"] = self._micro_macro(kind, k, free)
            cf = self.col_facts.get(kind)
            out[f"{kind}_facts"] = int(cf.sum()) if cf is not None else 0
        return out


def scene_graph_metrics(pred, data, ks=(1, 5), rule_free: dict[str, list[int]] | None = None) -> dict[str, float]:
    """Recall@k of ``pred`` (a :class:`~laser_train.model.SceneGraphScores`) against ``data`` (see
    :meth:`RecallAccumulator.add`)."""
    acc = RecallAccumulator(ks, rule_free)
    acc.add(pred, data)
    return acc.result()


def chance_metrics(data, ks=(1, 5), rule_free: dict[str, list[int]] | None = None) -> dict[str, float]:
    """Expected recall of a uniformly random ranking (the same for micro, macro and every subset;
    ``data``: anything with a ``vocabulary``)."""
    voc = data.vocabulary
    out: dict[str, float] = {}
    for kind, K in (("names", len(voc.categories)), ("unary", len(voc.unary)), ("binary", len(voc.binary))):
        for k in ks:
            out[f"{kind}_r{k}"] = out[f"{kind}_macro_r{k}"] = min(k, K) / K
            if (rule_free or {}).get(kind) is not None:
                out[f"{kind}_free_r{k}"] = out[f"{kind}_free_macro_r{k}"] = (
                    min(k, K) / K if rule_free[kind] else float("nan"))
    return out


class PriorModel(torch.nn.Module):
    """The **prior** predictor: training-set frequencies, no pixels, no time.

    * names: every track gets the categories' frequencies among the training tracks;
    * unary ``p`` of a track of category ``c``: the fraction of training (frame, track of category
      ``c``) where ``p`` holds; binary ``r`` of a pair of categories ``(c, d)`` likewise over pairs.
      Each is shrunk towards the predicate's overall frequency with ``smoothing`` pseudo-observations.

    It reads the *true* categories of the tracks it scores (``gt_names`` of the batch: an oracle on
    names): what knowing what each object is and how often each predicate holds for such objects
    gives, constant over time. It subsumes the vocabulary's type gates. :meth:`fit` on a loader of
    training batches with ground truth, then use it like a model.
    """

    reads_ground_truth = True  # its batches must carry gt_names (laser_train.train.spec_threshold)

    def __init__(self, vocabulary, smoothing: float = 5.0):
        super().__init__()
        C, P, R = len(vocabulary.categories), len(vocabulary.unary), len(vocabulary.binary)
        self.smoothing = smoothing
        self.register_buffer("name_count", torch.ones(C, dtype=torch.float64))
        self.register_buffer("u_count", torch.zeros(C, P, dtype=torch.float64))
        self.register_buffer("u_total", torch.zeros(C, dtype=torch.float64))
        self.register_buffer("b_count", torch.zeros(C * C, R, dtype=torch.float64))
        self.register_buffer("b_total", torch.zeros(C * C, dtype=torch.float64))

    def fit(self, loader) -> "PriorModel":
        from types import SimpleNamespace

        C = self.u_count.shape[0]
        for batch in loader:
            d = SimpleNamespace(**batch)
            tracks, present, pairs = _valid_masks(d)
            cat = d.gt_names.argmax(-1)
            self.name_count += torch.bincount(cat[tracks], minlength=C).double()
            cu = cat[:, None].expand_as(present)[present]
            self.u_count.index_add_(0, cu, d.gt_unary[present].double())
            self.u_total += torch.bincount(cu, minlength=C).double()
            T, N = present.shape[1], present.shape[2]
            key = (cat[:, None, :, None].expand(-1, T, N, N)[pairs] * C
                   + cat[:, None, None, :].expand(-1, T, N, N)[pairs])
            self.b_count.index_add_(0, key, d.gt_binary[pairs].double())
            self.b_total += torch.bincount(key, minlength=C * C).double()
        return self

    def forward(self, batch):
        from laser_train.model import SceneGraphScores

        C = self.u_count.shape[0]
        m = self.smoothing
        base_u = self.u_count.sum(0) / self.u_total.sum().clamp_min(1)
        p_u = (self.u_count + m * base_u) / (self.u_total[:, None] + m)
        base_b = self.b_count.sum(0) / self.b_total.sum().clamp_min(1)
        p_b = ((self.b_count + m * base_b) / (self.b_total[:, None] + m)).reshape(C, C, -1)
        cat = batch["gt_names"].argmax(-1)  # [B, N] the oracle categories
        B, T, N = batch["present"].shape
        logit = lambda p: torch.logit(p.clamp(1e-9, 1 - 1e-9)).float()  # noqa: E731
        names = self.name_count.log().float().expand(B, N, C).clone()
        unary = logit(p_u[cat])[:, None].expand(B, T, N, p_u.shape[-1]).clone()
        binary = logit(p_b[cat[:, :, None], cat[:, None, :]])[:, None].expand(B, T, N, N, p_b.shape[-1]).clone()
        return SceneGraphScores(names, unary, binary, torch.ones(B, N, p_u.shape[-1]),
                                torch.ones(B, N, N, p_b.shape[-1]))


@torch.no_grad()
def predict(model, batch):
    """Run ``model`` on one collated batch in eval mode; returns its SceneGraphScores on the CPU.

    The batch goes to the model's device (a DDP wrapper is looked through); the per-video score
    tensors come back as float32 CPU tensors (embeddings are not kept).
    """
    from laser_train.device import to_device
    from laser_train.distributed import unwrap
    from laser_train.model import SceneGraphScores

    model = unwrap(model)
    import itertools

    # a model without parameters (the prior) has its buffers on its device
    device = next(itertools.chain(model.parameters(), model.buffers()), torch.empty(0)).device
    was_training = model.training
    model.eval()
    try:
        out = model(to_device(batch, device))
    finally:
        model.train(was_training)
    return SceneGraphScores(*(getattr(out, f).float().cpu() for f in SceneGraphScores.FIELDS))


def binarize(pred, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The predicted scene graph as 0/1 facts: the best category per track, facts with probability >= threshold."""
    names = torch.nn.functional.one_hot(pred.names.argmax(-1), pred.names.shape[-1]).float()
    _, unary, binary = pred.probs()
    return names, (unary >= threshold).float(), (binary >= threshold).float()


class SpecAccuracy:
    """Balanced spec-satisfaction accuracy accumulated over batches (see :func:`spec_accuracy`)."""

    def __init__(self, supervision: Any, data, negatives: list[list[int]]):
        self.supervision, self.data, self.negatives = supervision, data, negatives
        self.hits = {1.0: [0, 0], 0.0: [0, 0]}  # label -> [correct, total]

    def queries(self, batch) -> tuple[list[int], list[int], list[float]]:
        """Spec ids, batch rows and labels (1 caption, 0 negative) of ``batch``'s videos."""
        spec_ids, video_ids, labels = [], [], []
        for j, v in enumerate(batch["index"].tolist()):
            spec_ids.append(self.supervision.positive_id(self.data, v))
            video_ids.append(j)
            labels.append(1.0)
            for s in self.negatives[v]:
                spec_ids.append(s)
                video_ids.append(j)
                labels.append(0.0)
        return spec_ids, video_ids, labels

    def add(self, graph: tuple[torch.Tensor, ...], batch) -> None:
        names, unary, binary = graph
        spec_ids, video_ids, labels = self.queries(batch)
        values = self.supervision.evaluate(names, unary, binary, batch["frame_mask"], batch["track_mask"],
                                           batch["present"], spec_ids, video_ids, logic="boolean",
                                           witnesses=False).values
        self.record(values.tolist(), labels)

    def record(self, values: list[float], labels: list[float]) -> None:
        """Count boolean spec values (>= 0.5: satisfied) against their labels."""
        for value, label in zip(values, labels):
            self.hits[label][0] += int((value >= 0.5) == (label == 1.0))
            self.hits[label][1] += 1

    def result(self) -> dict[str, float]:
        hits = self.hits
        pos = hits[1.0][0] / max(hits[1.0][1], 1)
        neg = hits[0.0][0] / max(hits[0.0][1], 1) if hits[0.0][1] else float("nan")
        return {"spec_accuracy": (pos + neg) / 2 if hits[0.0][1] else pos, "spec_pos_acc": pos,
                "spec_neg_acc": neg}


#: The fact thresholds :func:`calibrate_threshold` chooses from (``eval.calibrate``): roughly log-spaced
#: below 0.5, where models put rare facts (measured on the playroom world: the weakly supervised model
#: picks 0.02, the fully supervised one 0.01, whose rare predicates never reach 0.5).
CALIBRATION_GRID = (0.001, 0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
_CALIBRATION_VIDEOS = 256  # videos per evaluation call: a batch's scene graphs at several thresholds


def calibrate_threshold(model, loader, supervision: Any, negatives: list[list[int]],
                        grid: tuple[float, ...] = CALIBRATION_GRID) -> tuple[float, dict[float, float]]:
    """The fact threshold of ``grid`` whose binarised scene graphs decide ``loader``'s captions (true) and
    their ``negatives`` (false) best, by balanced spec accuracy; ties go to the threshold nearest 0.5.

    Called on the *training* videos, so the held-out spec accuracy stays honest. A model trained by
    specs alone (or by an embedding objective) ranks facts well but at another scale, and even the
    supervised model keeps rare predicates below 0.5; a fixed 0.5 would measure that scale rather than
    what the model knows. Every row, the prior included, gets its own threshold by this one rule.
    Returns the threshold and every grid point's training accuracy."""
    accs = {t: SpecAccuracy(supervision, loader.dataset, negatives) for t in grid}
    for batch in loader:
        pred = predict(model, batch)
        spec_ids, video_ids, labels = accs[grid[0]].queries(batch)
        B = len(batch["index"])
        # Several thresholds' scene graphs stacked as one batch of videos: one evaluation call for them.
        step = max(1, _CALIBRATION_VIDEOS // max(B, 1))
        for lo in range(0, len(grid), step):
            ts = grid[lo:lo + step]
            graphs = [binarize(pred, t) for t in ts]
            names, unary, binary = (torch.cat(parts) for parts in zip(*graphs))
            rep = lambda x: x.repeat(len(ts), *([1] * (x.dim() - 1)))  # noqa: E731
            values = supervision.evaluate(names, unary, binary, rep(batch["frame_mask"]), rep(batch["track_mask"]),
                                          rep(batch["present"]), spec_ids * len(ts),
                                          [v + g * B for g in range(len(ts)) for v in video_ids],
                                          logic="boolean", witnesses=False).values.view(len(ts), -1)
            for t, row in zip(ts, values.tolist()):
                accs[t].record(row, labels)
    scores = {t: acc.result()["spec_accuracy"] for t, acc in accs.items()}
    best = max(grid, key=lambda t: (round(scores[t], 9), -abs(math.log(t / 0.5))))
    return best, scores


def spec_accuracy(supervision: Any, graphs, loader, negatives: list[list[int]]) -> dict[str, float]:
    """How well the scene graphs decide each video's caption spec (true) and its negatives (false).

    Returns ``spec_accuracy`` — the *balanced* accuracy, the mean of the rate of positives found
    true (``spec_pos_acc``) and of negatives found false (``spec_neg_acc``), so that with many
    negatives per caption an "everything is false" graph scores 50%, not 89% — and both rates.
    ``supervision`` is a :class:`laser_train.losses.SpecSupervision` holding every spec;
    ``negatives[v]`` lists the spec ids used as negatives for video v; ``graphs(batch)`` gives the
    0/1 scene graph ``(names, unary, binary)`` of a batch of ``loader``.
    """
    acc = SpecAccuracy(supervision, loader.dataset, negatives)
    for batch in loader:
        acc.add(graphs(batch), batch)
    return acc.result()


def truth_spec_accuracy(supervision: Any, loader, negatives: list[list[int]]) -> float:
    """Spec accuracy of the ground-truth scene graphs themselves: the ceiling of the metric."""
    graphs = lambda b: (b["gt_names"], b["gt_unary"], b["gt_binary"])  # noqa: E731
    return spec_accuracy(supervision, graphs, loader, negatives)["spec_accuracy"]


def evaluate_model(model, loader, supervision: Any, negatives: list[list[int]], ks=(1, 5),
                   threshold: float = 0.5, protocols=("facts",), dist=None,
                   rule_free: dict[str, list[int]] | None = None) -> dict[str, float]:
    """Recall against the hidden scene graphs (when the data has them) under each of ``protocols``
    (:mod:`laser_train.protocols`; ``facts`` is :func:`scene_graph_metrics`) and the spec accuracy,
    streamed over ``loader`` (a DataLoader of :func:`laser_train.data.dataset.collate` batches, any order).

    ``dist`` (a :class:`laser_train.distributed.Dist` of several processes): ``loader`` holds this
    rank's share of the videos (each video in exactly one rank's share); the sums of every rank are
    gathered and added, so every rank returns the metrics of the whole split."""
    from types import SimpleNamespace

    from laser_train.protocols import ProtocolAccumulator

    data = loader.dataset
    recall = ProtocolAccumulator(protocols, ks, rule_free) if data.has_ground_truth else None
    specs = SpecAccuracy(supervision, data, negatives)
    for batch in loader:
        pred = predict(model, batch)
        if recall is not None:
            recall.add(pred, SimpleNamespace(**batch))
        specs.add(binarize(pred, threshold), batch)
    if dist is not None and dist.enabled:
        gathered = dist.all_gather((recall, specs.hits))
        recall, specs.hits = gathered[0][0], {1.0: [0, 0], 0.0: [0, 0]}
        for other, hits in gathered:
            if recall is not None and other is not gathered[0][0]:
                recall.merge(other)
            for label, (correct, total) in hits.items():
                specs.hits[label][0] += correct
                specs.hits[label][1] += total
    metrics: dict[str, float] = recall.result() if recall is not None else {}
    metrics.update(specs.result())
    return metrics


def rule_free_predicates(background: list[Any], vocabulary: Any) -> dict[str, list[int]]:
    """Column indices of the unary and binary predicates that no background spec mentions."""
    from stlspec import ir

    used = {node.pred for spec in background for node in ir.walk(spec.formula)
            if isinstance(node, (ir.Unary, ir.Binary))}
    return {"unary": [i for i, p in enumerate(vocabulary.unary_names) if p not in used],
            "binary": [i for i, p in enumerate(vocabulary.binary_names) if p not in used]}


def per_predicate_recall(model, loader, k: int = 1) -> dict[str, dict[str, float]]:
    """Recall@k of every unary and binary predicate (``{kind: {name: recall}}``, nan where no fact) and
    each predicate's share of the true facts of its kind (``{kind}_share``)."""
    from types import SimpleNamespace

    acc = RecallAccumulator((k,))
    for batch in loader:
        acc.add(predict(model, batch), SimpleNamespace(**batch))
    voc = loader.dataset.vocabulary
    out: dict[str, dict[str, float]] = {}
    for kind, names in (("unary", voc.unary_names), ("binary", voc.binary_names)):
        rec, facts = acc.per_predicate(kind, k)
        total = sum(facts) or 1
        out[kind] = dict(zip(names, rec))
        out[f"{kind}_share"] = {n: f / total for n, f in zip(names, facts)}
    return out
