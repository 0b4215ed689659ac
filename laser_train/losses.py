"""Losses: weak supervision from specs (the LASER method) and the fully supervised baseline.

Weak supervision evaluates compiled specs on the model's probabilistic scene
graph with the stlspec torch backend (:class:`SpecSupervision`) and combines
five terms, each weighted in :class:`laser_train.config.LossWeights`:

* **alignment**   ``-log v(caption spec)``: the caption's spec should hold;
* **contrastive** its negatives should not (negatives from :mod:`stlspec.negatives` when
  available, else other videos' specs), in one of two forms (``loss.contrastive``):
  ``ratio`` (default) ``-log v(pos) / (v(pos) + Σ_j v(neg_j))`` over the video's own negatives —
  scale-free, so it discriminates even while every value is small (early in training, when the
  names are still uniform, ``v ≈ 1e-3`` for the caption and its category-swapped negatives alike);
  ``absolute`` ``mean_j -log (1 - v(neg_j))``, whose gradient vanishes with ``v(neg)``;
* **temporal**    ``-log Σ_{t in hint} witness_e(t)``: each hinted event's witness
  distribution should put its mass inside the hinted part of the video;
* **sparsity**    ``mean -log (1 - p)`` over every visible fact: the closed-world prior that most
  facts are false. Specs are monotone in the facts they mention positively (``exists``,
  ``eventually``), so without it raising a predicate everywhere satisfies every caption that
  mentions it, and only the negatives push back; measured on the playroom world, ``behind`` then
  tops every pair's ranking;
* **semantic**    ``-log v(background spec)`` for every background-knowledge spec
  (``configs/background.stl``, e.g. ``left_of`` is asymmetric) on every video
  (per frame for ``forall ... always φ`` rules: see :func:`semantic_loss`).

Specs are evaluated in float64 and values are clamped to ``[eps, 1 - eps]``
(``eps = 1e-30``) before the logarithm. Both matter: a clamped value has no
gradient, and in float32 a negative the model firmly believes (``v = 1 - 1e-9``)
or a background rule it firmly violates (a product of hundreds of small factors)
rounds to exactly 1 or 0 — precisely the cases whose gradient we need most.
Under the product logic ``-log`` of a conjunction is the sum of the conjuncts'
``-log`` — a well-scaled loss even for ``forall``/``always`` over many facts.

The fully supervised baseline (:func:`supervised_loss`) reads the hidden scene
graphs: cross-entropy on names, binary cross-entropy on facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

__all__ = ["SpecSupervision", "WeakBatch", "weak_loss", "supervised_loss", "hint_mask", "semantic_loss", "EPS",
           "ratio_contrastive", "semantic_frame_mask", "sparsity_loss"]

EPS = 1e-30


class SpecSupervision:
    """Every spec a run evaluates, compiled once for the stlspec torch backend.

    Spec ids are positions in :attr:`specs`. A split registers its caption
    specs with :meth:`register` (``data.spec_ids[v]`` is then video v's caption
    spec id); background specs are registered with :meth:`add_many`.
    """

    def __init__(self, vocabulary: Any, logic: str = "product", temperature: float = 0.1,
                 prune_below: float = 0.0):
        self.vocabulary = vocabulary
        self.logic = logic
        self.temperature = temperature
        self.prune_below = prune_below  # certified pruning of the training logic's evaluator (0: exact)
        self.specs: list[Any] = []
        self._index: dict[int, int] = {}  # id(spec object) -> spec id, so shared specs compile once
        self._compiled: dict[str, tuple[int, Any]] = {}  # logic -> (number of specs compiled, evaluator)

    def add(self, spec: Any) -> int:
        key = id(spec)
        if key not in self._index:
            self._index[key] = len(self.specs)
            self.specs.append(spec)
        return self._index[key]

    def add_many(self, specs: Sequence[Any]) -> list[int]:
        return [self.add(s) for s in specs]

    def register(self, data: Any) -> None:
        data.spec_ids = self.add_many(data.specs)

    @staticmethod
    def positive_id(data: Any, v: int) -> int:
        return data.spec_ids[v]

    def evaluator(self, logic: str | None = None):
        """The torch evaluator for all registered specs (recompiled only when specs were added)."""
        from stlspec.backends.torch import Columns, compile_specs

        logic = logic or self.logic
        n, ev = self._compiled.get(logic, (0, None))
        if ev is None or n != len(self.specs):
            opts = {"temperature": self.temperature} if logic == "smooth" else {}
            if self.prune_below and logic == self.logic:
                opts["prune_below"] = self.prune_below
            ev = compile_specs(tuple(self.specs), Columns.from_vocabulary(self.vocabulary), logic=logic, **opts)
            self._compiled[logic] = (len(self.specs), ev)
        return ev

    def evaluate(self, names, unary, binary, frame_mask, track_mask, present, spec_ids, video_ids,
                 logic: str | None = None, witnesses: bool = True):
        """Evaluate ``spec_ids[k]`` on video ``video_ids[k]`` of the batch; returns the backend's EvalOutput."""
        from stlspec.backends.torch import SceneGraphBatch

        batch = SceneGraphBatch(names=names, unary=unary, binary=binary, frame_mask=frame_mask,
                                track_mask=track_mask, present=present)
        return self.evaluator(logic)(batch, spec_ids=list(spec_ids), video_ids=list(video_ids),
                                     witnesses=witnesses)


def hint_mask(hints: torch.Tensor, lengths: torch.Tensor, T: int) -> torch.Tensor:
    """``[K, E, T]`` bool: frame t lies inside event e's hint ``[lo, hi]`` (fractions of the video).

    The fraction window maps to frames ``[ceil(lo·(L−1)), floor(hi·(L−1))]`` as
    :meth:`stlspec.ir.Window.frames` does, for each video's own length L.
    """
    span = (lengths - 1).clamp_min(0).double()[:, None, None]  # [K, 1, 1]
    t = torch.arange(T, dtype=torch.float64, device=lengths.device)[None, None, :]
    lo = torch.ceil(hints[..., 0:1].double() * span - 1e-9)
    hi = torch.floor(hints[..., 1:2].double() * span + 1e-9)
    return (t >= lo) & (t <= hi) & (t < lengths[:, None, None])


@dataclass
class WeakBatch:
    """The spec work for one training batch, prepared by the trainer (no tensors from the model)."""

    spec_ids: list[int]  # positives, then negatives
    video_ids: list[int]
    kinds: torch.Tensor  # [K] 0 = positive, 1 = negative
    background: list[int]  # background-knowledge spec ids, applied to every video
    hints: torch.Tensor  # [K, E, 2] hint intervals (positives; zeros elsewhere)
    has_hint: torch.Tensor  # [K, E] bool
    # Frame-local background rules are evaluated on at most this many frames per video (0: all), drawn
    # uniformly per (step seed, dataset index of the video): an unbiased estimate of the per-frame mean
    # that does not depend on how the batch is split across processes.
    semantic_frames: int = 0
    semantic_seed: int = 0
    videos: tuple[int, ...] = ()  # dataset index of each batch video (rows of the model's batch)


def semantic_frame_mask(frame_mask: torch.Tensor, work: WeakBatch) -> torch.Tensor:
    """``[B, T]`` bool: the frames the frame-local rules are evaluated on this step (see :class:`WeakBatch`)."""
    k = work.semantic_frames
    B, T = frame_mask.shape
    if not k or k >= T or len(work.videos) != B:
        return frame_mask
    keys = torch.stack([torch.rand(T, generator=torch.Generator().manual_seed(work.semantic_seed * 1_000_003 + v))
                        for v in work.videos]).to(frame_mask.device)
    keys = keys.masked_fill(~frame_mask, 2.0)  # padded frames last, never chosen
    chosen = torch.zeros_like(frame_mask)
    chosen.scatter_(1, keys.argsort(1)[:, :k], True)
    return chosen & frame_mask


def _nll(v: torch.Tensor) -> torch.Tensor:
    return -torch.log(v.clamp(EPS, 1 - EPS))


def _is_frame_local(spec: Any) -> bool:
    """``forall ... . always φ`` with φ free of temporal operators: a conjunction of per-frame rules."""
    from stlspec import ir

    f = spec.formula
    while isinstance(f, ir.Forall):
        f = f.body
    if not isinstance(f, ir.Always) or f.window is not None:
        return False
    temporal = (ir.Next, ir.Eventually, ir.Always, ir.Until)
    return not any(isinstance(n, temporal) for n in ir.walk(f.arg))


def semantic_loss(supervision: "SpecSupervision", probs: tuple[torch.Tensor, ...], batch: dict[str, torch.Tensor],
                  spec_ids: Sequence[int], counts: dict[str, int] | None = None,
                  frames: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ``-log v`` of the background specs, per frame where the spec allows it.

    A rule ``forall x, y. always φ`` over a whole video multiplies ``T·N²`` facts:
    its value underflows to 0 long before the model is any good, and the
    clamped log then has no gradient at all. Such a rule is a conjunction over
    frames, so we evaluate it on every frame as a one-frame video instead (in
    float64) and average ``-log v`` over frames — under the product logic
    exactly the whole-video ``-log v`` divided by the number of frames. Rules with
    temporal operators inside are evaluated on whole videos. ``frames`` ([B, T] bool,
    default every real frame) restricts the per-frame rules to a sample of frames
    (``loss.semantic_frames``).
    """
    names, unary, binary = probs
    fm, tm, present = batch["frame_mask"], batch["track_mask"], batch["present"]
    B, T, N = present.shape
    local = [s for s in spec_ids if _is_frame_local(supervision.specs[s])]
    whole = [s for s in spec_ids if s not in local]
    parts = []
    if local:
        # One pseudo-video per frame -- views of the fact tensors, not copies -- evaluated where the frame is
        # real (and sampled).
        real = (fm if frames is None else frames & fm).reshape(-1).nonzero().flatten().tolist()
        n_ = names[:, None].expand(B, T, *names.shape[1:]).reshape(B * T, *names.shape[1:])
        u_ = unary.reshape(B * T, 1, *unary.shape[2:])
        b_ = binary.reshape(B * T, 1, *binary.shape[2:])
        tm_ = tm[:, None].expand(B, T, N).reshape(B * T, N)
        pr_ = present.reshape(B * T, 1, N)
        sid = [s for _ in real for s in local]
        vid = [m for m in real for _ in local]
        v = supervision.evaluate(n_, u_, b_, torch.ones(B * T, 1, dtype=torch.bool, device=fm.device), tm_, pr_,
                                 sid, vid, witnesses=False).values
        parts.append(_nll(v))
    if whole:
        sid = [s for _ in range(B) for s in whole]
        vid = [b for b in range(B) for _ in whole]
        v = supervision.evaluate(names, unary, binary, fm, tm, present, sid, vid, witnesses=False).values
        parts.append(_nll(v.to(names.dtype)))
    if not parts:
        return names.sum() * 0
    nll = torch.cat(parts)
    if counts is not None:
        counts["semantic"] = nll.numel()
    return nll.mean().to(names.dtype)


def weak_loss(supervision: SpecSupervision, probs: tuple[torch.Tensor, ...], batch: dict[str, torch.Tensor],
              work: WeakBatch, weights: Any, *, dtype: torch.dtype = torch.float64,
              counts: dict[str, int] | None = None, contrastive: str = "ratio") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted sum of the five weak-supervision terms, and each (unweighted) term.

    Positives and negatives are evaluated in one call, the positives with witnesses (for the
    temporal term), the negatives without (which skips the backend's pinned evaluations);
    background specs in a call of their own (frame-local rules run on one-frame pseudo-videos). Specs are
    evaluated in ``dtype`` (``train.spec_dtype``). ``counts``, when given, receives how many
    items each term averages (data-parallel training turns the per-rank means into the
    global mean with them: :mod:`laser_train.distributed`).
    """
    counts = {} if counts is None else counts
    probs = tuple(p.to(dtype) for p in probs)
    names, unary, binary = probs
    fm, tm, present = batch["frame_mask"], batch["track_mask"], batch["present"]
    pos = (work.kinds == 0).nonzero().flatten()
    rest = (work.kinds != 0).nonzero().flatten()
    vid = torch.tensor(work.video_ids)
    want_w = bool(weights.temporal) and bool(work.has_hint.any())
    # Positives and negatives in one call (one plan, one kernel per node batch): witnesses for the
    # positives only.
    both = supervision.evaluate(names, unary, binary, fm, tm, present, work.spec_ids, work.video_ids,
                                witnesses=(work.kinds == 0).numpy() if want_w else False)
    out_values = both.values[pos]
    zero = names.sum() * 0
    terms: dict[str, torch.Tensor] = {"alignment": _nll(out_values).mean() if len(pos) else zero}
    counts.update(alignment=len(pos), temporal=0, contrastive=0, semantic=0, sparsity=0)
    terms["temporal"] = zero
    if want_w:
        # Only events that have a witness distribution at all: when the spec is (numerically) false on
        # the video every pinned value is 0, there is nothing to place in time, and the alignment term
        # is the one that has to act.
        E = both.event_mask.shape[1]  # the widest spec of this call, at most the widest of the run
        witnesses = both.witnesses[pos]
        use = work.has_hint[pos][:, :E] & both.event_mask[pos] & (witnesses.sum(-1) > 0)
        if use.any():
            lengths = fm.sum(1)[vid[pos]]
            inside = hint_mask(work.hints[pos][:, :E], lengths, witnesses.shape[-1])
            mass = (witnesses * inside).sum(-1)  # [K, E]: witness probability inside the hint
            terms["temporal"] = _nll(mass[use]).mean()
            counts["temporal"] = int(use.sum())
    terms["contrastive"] = zero
    terms["sparsity"] = zero
    if getattr(weights, "sparsity", 0.0):
        terms["sparsity"], counts["sparsity"] = sparsity_loss(unary, binary, present)
    if work.background:
        terms["semantic"] = semantic_loss(supervision, probs, batch, work.background, counts,
                                          frames=semantic_frame_mask(fm, work))
    else:
        terms["semantic"] = zero
    if len(rest):
        other = both.values[rest]
        if contrastive == "absolute":
            terms["contrastive"] = _nll(1 - other).mean()
            counts["contrastive"] = len(rest)
        else:
            terms["contrastive"] = ratio_contrastive(out_values, vid[pos], other, vid[rest])
            counts["contrastive"] = len(pos)
    total = sum(getattr(weights, k) * t for k, t in terms.items())
    return total.float(), terms


def sparsity_loss(unary: torch.Tensor, binary: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Mean ``-log(1 - p)`` over visible unary facts ``[B, T, N, P]`` and binary facts of pairs visible together
    ``[B, T, N, N, R]`` (distinct tracks), and how many facts that averages."""
    pairs = present[:, :, :, None] & present[:, :, None, :] & ~torch.eye(present.shape[-1], dtype=torch.bool,
                                                                         device=present.device)
    u, b = unary[present], binary[pairs]
    n = u.numel() + b.numel()
    if not n:
        return unary.sum() * 0, 0
    total = -torch.log1p(-u.clamp(max=1 - 1e-12)).sum() - torch.log1p(-b.clamp(max=1 - 1e-12)).sum()
    return total / n, n


def ratio_contrastive(pos: torch.Tensor, pos_video: torch.Tensor, neg: torch.Tensor,
                      neg_video: torch.Tensor) -> torch.Tensor:
    """Mean over positives of ``-log v(pos) / (v(pos) + Σ v(neg))``, each against the negatives of its video.

    ``pos`` [P] values with videos ``pos_video`` [P]; ``neg`` [M] with ``neg_video`` [M]. Values are clamped
    to ``[EPS, 1]`` (the spec values are float64), so it stays finite and informative when every value is
    tiny. A positive without negatives contributes 0.
    """
    pos, neg = pos.clamp(EPS, 1), neg.clamp(EPS, 1)
    row = {int(v): i for i, v in enumerate(pos_video.tolist())}
    which = torch.tensor([row.get(int(v), -1) for v in neg_video.tolist()], dtype=torch.long)
    keep = which >= 0
    total = pos.index_add(0, which[keep].to(pos.device), neg[keep.to(neg.device)])  # v(pos) + Σ v(neg), per video
    return (total.log() - pos.log()).mean()


def supervised_loss(scores: Any, batch: dict[str, torch.Tensor], gt: tuple[torch.Tensor, ...],
                    counts: dict[str, int] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy on names and binary cross-entropy on unary/binary facts of the hidden scene graph.

    ``counts`` (optional) receives how many items each term averages (see :func:`weak_loss`).
    """
    gt_names, gt_unary, gt_binary = gt
    present = batch["present"]
    tracks = present.any(1)
    pairs = present[:, :, :, None] & present[:, :, None, :] & ~torch.eye(present.shape[-1], dtype=torch.bool,
                                                                                device=present.device)
    log_names, log_unary, log_binary = scores.log_scores()  # the same (type-gated) probabilities as weak runs

    def bce(log_p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        log_not = torch.log1p(-log_p.exp().clamp(max=1 - 1e-6))
        return -(y * log_p + (1 - y) * log_not).mean()

    terms = {
        "names": F.nll_loss(log_names[tracks], gt_names[tracks].argmax(-1)),
        "unary": bce(log_unary[present], gt_unary[present]),
        "binary": bce(log_binary[pairs], gt_binary[pairs]),
    }
    if counts is not None:
        counts.update(names=int(tracks.sum()), unary=int(present.sum()), binary=int(pairs.sum()))
    return sum(terms.values()), terms
