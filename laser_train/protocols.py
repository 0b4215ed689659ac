"""Scene-graph evaluation protocols from the literature, next to our own per-fact recall.

Selected with ``eval.protocol`` (a list; the default runs all of them) and
reported in the metrics JSON. Every protocol is *given ground-truth tracks*
(boxes and track identities come from the dataset), and reads the model's
ranked scores (:meth:`~laser_train.model.SceneGraphScores.log_scores`).
Notation: ``V`` videos, ``T`` frames, ``N`` tracks, ``C`` categories, ``P``
unary and ``R`` binary predicates; a *valid* pair at frame t is an ordered pair
of distinct tracks both present at t (absent tracks never count, neither as
ground truth nor as candidates).

``facts`` — :func:`laser_train.evaluate.scene_graph_metrics`: recall@k over every
ground-truth fact (keys ``names_r1``, ``unary_r5``, ``binary_macro_r1``, …).

``laser`` — LASER's per-object and per-pair recall (Huang et al., 2023, *LASER:
A Neuro-Symbolic Framework for Learning Spatial-Temporal Scene Graphs with
Weak Supervision*, their R@1/5/10 tables)::

    laser_obj_r{k}   = mean over tracks n with a true category of
                       |true categories of n ∩ top-k categories of n| / |true categories of n|
    laser_unary_r{k} = mean over (t, n) with a true unary predicate of the same ratio over P
    laser_pair_r{k}  = mean over valid (t, s, o) with a true binary predicate of
                       |true predicates of (s, o) at t ∩ top-k predicates of (s, o) at t| / |true predicates|

It differs from ``facts`` only in the averaging: each object / pair weighs the
same, however many facts it has.

``predcls`` — triplet Recall@K per frame, averaged over frames (the Action
Genome / STTran convention: Ji et al., 2020, *Action Genome*; Cong et al.,
2021, *Spatial-Temporal Transformer for Dynamic Scene Graph Generation*). With
tracks and their categories given, a frame's candidate triplets are
``(s, r, o)`` for every valid pair and predicate, scored by the predicate's
score (the category factors are 1)::

    predcls_nogc_r{K} = mean over frames f with ≥1 true triplet of |G_f ∩ top-K of all (s, r, o)| / |G_f|
    predcls_gc_r{K}   = the same, but each pair first keeps only its best predicate
                        (graph constraint: at most one predicate per pair), then the top K pairs
    predcls_*_mr{K}   = mean recall (Tang et al., 2019; Chen et al., 2019): for each predicate r,
                        the recall of the triplets with predicate r averaged over the frames that
                        have one; then the mean over the predicates that occur

``predcls_frames`` counts the frames with ground truth. Action Genome's
candidates are (person, object) pairs only; ours are all valid pairs, so our
numbers are a lower bound on a run restricted to person-subject pairs. AG's
"semi-constraint" variant is not computed.

Ties are broken at random *in expectation*, as in :mod:`laser_train.evaluate`:
an item beaten by ``g`` candidates and tied with ``e`` others is in the top K
with probability ``clip((K - g) / (e + 1), 0, 1)``; under the graph constraint
a predicate tied with ``m - 1`` others for its pair's best is kept with
probability ``1 / m``. So a constant model scores exactly chance, and no result
depends on the order of the columns.
"""

from __future__ import annotations

import math

import torch

from laser_train.config import EVAL_PROTOCOLS

__all__ = ["PROTOCOLS", "check_protocols", "laser_metrics", "predcls_metrics", "protocol_metrics",
           "topk_probability", "ProtocolAccumulator"]

#: The protocols ``eval.protocol`` may name, in reporting order.
PROTOCOLS = EVAL_PROTOCOLS


def check_protocols(names) -> tuple[str, ...]:
    """``names`` as a tuple, or a ConfigError naming the unknown one and the choices."""
    from laser_train.config import ConfigError

    names = tuple(names)
    for n in names:
        if n not in PROTOCOLS:
            raise ConfigError(f"unknown evaluation protocol {n!r} (eval.protocol takes a list of: "
                             f"{', '.join(PROTOCOLS)})")
    return names


def topk_probability(greater: torch.Tensor, equal: torch.Tensor, k: int) -> torch.Tensor:
    """P(an item is in the top k) when ``greater`` items beat it and ``equal`` others tie with it."""
    return ((k - greater).double() / (equal + 1).double()).clamp(0, 1)


def _row_hits(scores: torch.Tensor, k: int) -> torch.Tensor:
    """[M, K] scores → [M, K] probability that each column is among its row's top k."""
    s = scores.double()
    greater = (s[:, None, :] > s[:, :, None]).sum(-1)
    equal = (s[:, None, :] == s[:, :, None]).sum(-1) - 1
    return topk_probability(greater, equal, k)


def _row_recall_sum(scores: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor, k: int) -> tuple[float, int]:
    """Sum and count over valid rows with ≥1 true column of (expected true columns in the top k) / (true columns)."""
    s, y = scores[valid], truth[valid] > 0.5
    keep = y.any(-1)
    s, y = s[keep], y[keep]
    if not len(y):
        return 0.0, 0
    hit = _row_hits(s, k)
    per_row = (hit * y).sum(-1) / y.sum(-1)
    return float(per_row.sum()), int(len(y))


# A protocol's partial result over part of the data: key -> (sum, count), each a float or a tensor of
# per-predicate sums and counts (mean recall). Partials of disjoint batches add up; :func:`_finish`
# turns the total into the metric (sum / count; per-predicate means averaged over the predicates seen).
Partial = dict


def _laser_partial(pred, data, ks) -> Partial:
    from laser_train.evaluate import _valid_masks

    truths = (data.gt_names, data.gt_unary, data.gt_binary)
    rows = zip(("obj", "unary", "pair"), pred.log_scores(), truths, _valid_masks(data))  # tracks, (t, n), pairs
    out: Partial = {}
    for kind, scores, truth, valid in rows:
        n = 0
        for k in ks:
            total, n = _row_recall_sum(scores.detach().cpu(), truth.cpu(), valid.cpu(), k)
            out[f"laser_{kind}_r{k}"] = (total, n)
        out[f"laser_{kind}_count"] = (n, None)
    return out


def _add(total: Partial, part: Partial) -> Partial:
    for key, (a, n) in part.items():
        if key not in total:
            total[key] = (a, n)
        else:
            b, m = total[key]
            total[key] = (a + b, None if n is None else n + m)
    return total


def _finish(total: Partial) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, (a, n) in total.items():
        if n is None:  # a plain count
            out[key] = int(a)
        elif isinstance(n, torch.Tensor):  # mean recall: per-predicate means, averaged over the predicates seen
            seen = n > 0
            out[key] = float((a[seen] / n[seen]).mean()) if seen.any() else float("nan")
        else:
            out[key] = a / n if n else float("nan")
    return out


def laser_metrics(pred, data, ks=(1, 5)) -> dict[str, float]:
    """The ``laser`` protocol (module docstring) of ``pred`` against ``data``'s ground truth."""
    return _finish(_laser_partial(pred, data, ks))


def _rank(values: torch.Tensor, candidates: torch.Tensor):
    """For each row of ``values`` [F, G]: how many of the row's ``candidates`` [F, M] beat it, and tie it
    (less itself). Invalid candidates are -inf, so they never beat or tie a finite (true) value.
    """
    asc = candidates.sort(-1).values
    n_le = torch.searchsorted(asc, values, right=True)
    n_lt = torch.searchsorted(asc, values, right=False)
    M = candidates.shape[-1]
    return M - n_le, n_le - n_lt - 1


def predcls_metrics(pred, data, ks=(10, 20, 50)) -> dict[str, float]:
    """The ``predcls`` protocol (module docstring): R@K and mR@K with and without the graph constraint."""
    return _finish(_predcls_partial(pred, data, ks))


def _predcls_partial(pred, data, ks) -> Partial:
    from laser_train.evaluate import _valid_masks

    _, _, pairs = _valid_masks(data)  # [V, T, N, N]
    scores = pred.log_scores()[2].detach().cpu().double()  # [V, T, N, N, R]
    pairs = pairs.cpu()
    truth = (data.gt_binary.cpu() > 0.5) & pairs[..., None]
    V, T, N, _, R = scores.shape
    F_ = V * T
    scores, truth, pairs = scores.reshape(F_, N * N, R), truth.reshape(F_, N * N, R), pairs.reshape(F_, N * N)
    has = truth.flatten(1).any(-1)
    scores, truth, pairs = scores[has], truth[has], pairs[has]
    out: Partial = {"predcls_frames": (int(has.sum()), None)}
    if not len(scores):
        for mode in ("gc", "nogc"):
            for k in ks:
                out[f"predcls_{mode}_r{k}"] = (0.0, 0)
                out[f"predcls_{mode}_mr{k}"] = (torch.zeros(R, dtype=torch.float64), torch.zeros(R, dtype=torch.float64))
        return out
    neg_inf = torch.tensor(-math.inf, dtype=torch.float64)
    # no constraint: every (pair, predicate) of a valid pair is a candidate
    flat = torch.where(pairs[..., None], scores, neg_inf).flatten(1)  # [F, N*N*R]
    g_all, e_all = _rank(flat, flat)
    # graph constraint: each pair's best predicate, kept with probability 1/m under an m-way tie
    best = torch.where(pairs, scores.max(-1).values, neg_inf)  # [F, N*N]
    at_best = scores == scores.max(-1, keepdim=True).values
    chosen = at_best.double() / at_best.sum(-1, keepdim=True).double()  # [F, N*N, R]
    g_pair, e_pair = _rank(best, best)
    y = truth.flatten(1).double()  # [F, N*N*R]
    n_true = y.sum(-1)
    pred_of = torch.arange(R).repeat(N * N)  # predicate of each flattened column
    for k in ks:
        hit_nogc = topk_probability(g_all, e_all, k) * y
        hit_gc = (chosen * topk_probability(g_pair, e_pair, k)[..., None]).flatten(1) * y
        for mode, hit in (("nogc", hit_nogc), ("gc", hit_gc)):
            out[f"predcls_{mode}_r{k}"] = (float((hit.sum(-1) / n_true).sum()), int(len(n_true)))
            sums = torch.zeros(R, dtype=torch.float64)
            counts = torch.zeros(R, dtype=torch.float64)
            for r in range(R):
                col = pred_of == r
                n_r = y[:, col].sum(-1)
                frames = n_r > 0
                if frames.any():
                    sums[r] = (hit[:, col].sum(-1)[frames] / n_r[frames]).sum()
                    counts[r] = int(frames.sum())
            out[f"predcls_{mode}_mr{k}"] = (sums, counts)
    return out


def protocol_metrics(pred, data, protocols=PROTOCOLS, ks=(1, 5)) -> dict[str, float]:
    """Every protocol named in ``protocols`` on ``pred`` vs ``data``'s ground truth (which it must have)."""
    acc = ProtocolAccumulator(protocols, ks)
    acc.add(pred, data)
    return acc.result()


class ProtocolAccumulator:
    """The protocols' metrics summed over batches (streamed evaluation): adding the batches of a split one
    by one gives the numbers of the whole split at once (up to float rounding)."""

    def __init__(self, protocols=PROTOCOLS, ks=(1, 5), rule_free=None):
        from laser_train.evaluate import RecallAccumulator

        self.protocols, self.ks = check_protocols(protocols), tuple(ks)
        self.facts = RecallAccumulator(self.ks, rule_free) if "facts" in self.protocols else None
        self.total: Partial = {}

    def add(self, pred, data) -> None:
        """Add one batch (``data``: attributes ``present``, ``gt_names``, ``gt_unary``, ``gt_binary``)."""
        for name in self.protocols:
            if name == "facts":
                self.facts.add(pred, data)
            elif name == "laser":
                _add(self.total, _laser_partial(pred, data, self.ks))
            elif name == "predcls":
                _add(self.total, _predcls_partial(pred, data, self.ks))

    def merge(self, other: "ProtocolAccumulator") -> None:
        """Add ``other``'s sums (another share of the same split, e.g. another rank's under torchrun)."""
        if self.facts is not None:
            self.facts.merge(other.facts)
        _add(self.total, other.total)

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {}
        finished = _finish(self.total)
        for name in self.protocols:
            if name == "facts":
                out.update(self.facts.result())
            else:
                out.update({k: v for k, v in finished.items() if k.startswith(name + "_")})
        return out
