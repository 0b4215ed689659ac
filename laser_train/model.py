"""Perception models: from frames and object tracks to a probabilistic scene graph.

The interface every model implements (:class:`PerceptionModel`) takes a batch
dict from :func:`laser_train.data.dataset.collate`

=============== ========================== ==========================================
``crops``       ``[B, T, N, 3, S, S]``     track crops, float in [-0.5, 0.5]
``boxes``       ``[B, T, N, 4]``           boxes as fractions of the frame
``present``     ``[B, T, N]`` bool          track visible at frame
``frame_mask``  ``[B, T]`` bool             real frames
``track_mask``  ``[B, N]`` bool             real tracks
=============== ========================== ==========================================

and returns :class:`SceneGraphScores`: *logits* for names ``[B, N, C]`` (a
softmax over categories: a track is one thing), unary ``[B, T, N, P]`` and
binary ``[B, T, N, N, R]`` (independent sigmoids: several predicates may hold
at once), plus *type gates*: the probability that a track's category fits each
predicate's declared argument category (``open(box)`` holds only of boxes).
A predicate's probability is ``sigmoid(logit) · gate``. The gates come from
the vocabulary, not from training: nothing in a weakly supervised run would
otherwise tell the model that ``open(dog)`` is false, because no spec can even
say it (the checker rejects it). Evaluation ranks :meth:`SceneGraphScores.log_scores`
(log-probabilities: same order as the probabilities, fewer ties when they saturate).

Scores are similarities of embeddings
-------------------------------------
Every model scores the vocabulary by **similarity between track embeddings and
word embeddings**, and returns both in ``SceneGraphScores.embeddings``
(:class:`Embeddings`), so that other objectives (``laser_train.objectives``:
S-ViLM, Finsta, HERO) can train on the same embeddings that LASER's spec losses
train through the scores:

================= ====================== ===============================================
``objects``       ``[B, N, D]``           a track over its visible frames (names are scored from it)
``tracks``        ``[B, T, N, D]``        a track at a frame (unary predicates)
``pairs``         ``[B, T, N, N, D]``     ordered pair ``(n, m)`` at a frame (binary predicates)
``categories``    ``[C, D]``              one per category, vocabulary order
``unary``         ``[P, D]``              one per unary predicate
``binary``        ``[R, D]``              one per binary predicate
================= ====================== ===============================================

with, exactly, ``names = sim(objects, categories) + bias_names`` and likewise
``unary = sim(tracks, unary) + bias_unary`` and ``binary = sim(pairs, binary) +
bias_binary``, where ``sim`` is :meth:`Embeddings.similarity` (a dot product for
``small``; ``scale · cosine`` for ``clip``) and the biases are
``Embeddings.bias_*`` (per word for ``small``, one learned scalar per kind for
``clip``, so that a new word needs no new parameter there). Embeddings of absent
tracks / frames are zero-filled garbage: mask them with ``present`` /
``track_mask``. The type gates are applied on top of the scores as above.

Models (:func:`build_model`, ``model.name``):

* :class:`SmallPerception` (``small``, the CPU default): a three-layer CNN over
  each crop, box geometry and motion features (centre, size, velocity from the
  neighbouring frames), three MLPs mapping them into a ``model.hidden_dim``
  space, and learned word embeddings (the text tower of a closed vocabulary:
  the rows of each MLP's last layer, scored by a dot product plus a bias).
* :class:`laser_train.clip_model.ClipPerception` (``clip``): CLIP image
  embeddings of the crops (and of pair crops) scored against CLIP text
  embeddings of prompted vocabulary words: an open vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SceneGraphScores", "Embeddings", "PerceptionModel", "SmallPerception", "build_model",
           "geometry_features", "pair_geometry", "type_masks", "TypeGates", "vocabulary_words", "prior_logit"]


@dataclass
class Embeddings:
    """The embeddings behind a :class:`SceneGraphScores` (shapes and the exact relation: module docstring)."""

    objects: torch.Tensor  # [B, N, D]
    tracks: torch.Tensor  # [B, T, N, D]
    pairs: torch.Tensor  # [B, T, N, N, D]
    categories: torch.Tensor  # [C, D]
    unary: torch.Tensor  # [P, D]
    binary: torch.Tensor  # [R, D]
    bias_names: torch.Tensor  # [C] or a scalar
    bias_unary: torch.Tensor  # [P] or a scalar
    bias_binary: torch.Tensor  # [R] or a scalar
    scale: torch.Tensor | None = None  # None: dot product; else scale · cosine similarity
    #: The model's own words for the columns: category names, unary and binary predicate names.
    words: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())

    def similarity(self, x: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """``[..., D] × [K, D] → [..., K]``: the similarity the model scores with (bias not included)."""
        if self.scale is None:
            return x @ words.T
        return self.scale * (F.normalize(x, dim=-1) @ F.normalize(words, dim=-1).T)

    def scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """names ``[B, N, C]``, unary ``[B, T, N, P]``, binary ``[B, T, N, N, R]`` logits (before type gates)."""
        return (self.similarity(self.objects, self.categories) + self.bias_names,
                self.similarity(self.tracks, self.unary) + self.bias_unary,
                self.similarity(self.pairs, self.binary) + self.bias_binary)


@dataclass
class SceneGraphScores:
    names: torch.Tensor  # [B, N, C] logits (softmax over C)
    unary: torch.Tensor  # [B, T, N, P] logits (sigmoid)
    binary: torch.Tensor  # [B, T, N, N, R] logits (sigmoid)
    unary_gate: torch.Tensor  # [B, N, P] P(track's category fits the predicate's argument)
    binary_gate: torch.Tensor  # [B, N, N, R] the same for both arguments
    embeddings: Embeddings | None = None  # what the logits were computed from (not concatenated by predict)

    #: The per-video tensors (concatenated over batches by evaluation).
    FIELDS = ("names", "unary", "binary", "unary_gate", "binary_gate")

    @classmethod
    def from_embeddings(cls, emb: Embeddings, gates: "TypeGates") -> "SceneGraphScores":
        """Scores from ``emb`` (computed in float32 even under autocast: logits feed softmax and logs)."""
        names, unary, binary = (x.float() for x in emb.scores())
        return cls(names, unary, binary, *gates(names), embeddings=emb)

    def probs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Probabilities: names ``[B, N, C]``, unary ``[B, T, N, P]``, binary ``[B, T, N, N, R]``."""
        return (self.names.softmax(-1), torch.sigmoid(self.unary) * self.unary_gate[:, None],
                torch.sigmoid(self.binary) * self.binary_gate[:, None])

    def log_scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probabilities of the same, computed stably (for ranking and for the supervised loss)."""
        tiny = 1e-12
        return (self.names.log_softmax(-1),
                F.logsigmoid(self.unary) + self.unary_gate.clamp_min(tiny).log()[:, None],
                F.logsigmoid(self.binary) + self.binary_gate.clamp_min(tiny).log()[:, None])


def type_masks(vocabulary) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """0/1 ``[C, P]``, ``[C, R]``, ``[C, R]``: category c may fill the (first, second) argument of a predicate."""
    cats = list(vocabulary.categories)

    def fits(cat):
        return [1.0 if cat in (None, "any") or c == cat else 0.0 for c in cats]

    unary = torch.tensor([fits(a) for _, a in vocabulary.unary]).reshape(len(vocabulary.unary), len(cats)).T
    left = torch.tensor([fits(a) for _, a, _ in vocabulary.binary]).reshape(len(vocabulary.binary), len(cats)).T
    right = torch.tensor([fits(b) for _, _, b in vocabulary.binary]).reshape(len(vocabulary.binary), len(cats)).T
    return unary.contiguous(), left.contiguous(), right.contiguous()


def vocabulary_words(vocabulary) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Category, unary and binary predicate names in column order."""
    return (tuple(vocabulary.categories), tuple(p[0] for p in vocabulary.unary),
            tuple(p[0] for p in vocabulary.binary))


class PerceptionModel(Protocol):
    num_categories: int
    num_unary: int
    num_binary: int

    def __call__(self, batch: dict[str, torch.Tensor]) -> SceneGraphScores: ...


def geometry_features(boxes: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Per track and frame: centre, size, velocity to the next and from the previous frame, speed.

    ``boxes`` [B, T, N, 4], ``present`` [B, T, N] → [B, T, N, 10]. Velocity uses
    the next frame where there is one (else the previous one), matching how
    motion is defined: what the object does between this frame and the next.
    Velocities are scaled by 10 so that typical values are O(1).
    """
    c = (boxes[..., :2] + boxes[..., 2:]) / 2
    size = boxes[..., 2:] - boxes[..., :2]
    pres = present.float()[..., None]
    fwd = torch.zeros_like(c)
    bwd = torch.zeros_like(c)
    both_f = pres[:, 1:] * pres[:, :-1]
    fwd[:, :-1] = (c[:, 1:] - c[:, :-1]) * both_f
    bwd[:, 1:] = (c[:, 1:] - c[:, :-1]) * both_f
    has_f = torch.zeros_like(pres)
    has_f[:, :-1] = both_f
    vel = has_f * fwd + (1 - has_f) * bwd
    vel, bwd = vel * 10, bwd * 10
    speed = vel.norm(dim=-1, keepdim=True)
    return torch.cat([c, size, vel, bwd, speed, has_f], dim=-1) * pres


def prior_logit(p: float) -> float:
    """The log-odds of ``p`` (0 < p < 1): a score head's initial bias for facts of probability ``p``."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"model.fact_prior must lie strictly between 0 and 1, not {p}")
    return math.log(p / (1 - p))


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, o))


class TypeGates(nn.Module):
    """Turns name probabilities into the type gates of :class:`SceneGraphScores` (no parameters)."""

    def __init__(self, vocabulary):
        super().__init__()
        u, left, right = type_masks(vocabulary)
        self.register_buffer("unary_types", u, persistent=False)
        self.register_buffer("left_types", left, persistent=False)
        self.register_buffer("right_types", right, persistent=False)

    def forward(self, name_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Probabilities in float32 even inside an autocast region: the gates multiply the predicates'.
        with torch.autocast(device_type=name_logits.device.type, enabled=False):
            p = name_logits.float().softmax(-1)  # [B, N, C]
            unary = p @ self.unary_types  # [B, N, P]
            left, right = p @ self.left_types, p @ self.right_types  # [B, N, R]
        return unary.clamp(0, 1), (left[:, :, None] * right[:, None, :]).clamp(0, 1)


def pair_geometry(geo: torch.Tensor) -> torch.Tensor:
    """``[B, T, N, N, 7]`` relative geometry of ordered pairs from :func:`geometry_features` ``[B, T, N, 10]``.

    Offset between the centres (``centre_m - centre_n``), its length and absolute value (scaled by 4 to
    O(1)), and the relative velocity.
    """
    c = geo[..., :2]
    d = c[:, :, None, :, :] - c[:, :, :, None, :]  # [B, T, n, m, 2] = centre_m - centre_n
    dv = geo[:, :, None, :, 4:6] - geo[:, :, :, None, 4:6]
    dist = d.norm(dim=-1, keepdim=True)
    return torch.cat([d * 4, dist * 4, d.abs() * 4, dv], dim=-1)


class SmallPerception(nn.Module):
    """Crop CNN + geometry/motion features, MLPs into a word space, learned word embeddings (≈100k parameters)."""

    def __init__(self, vocabulary, *, crop_size: int = 16, embed_dim: int = 48, hidden_dim: int = 96,
                 fact_prior: float = 0.1):
        super().__init__()
        num_categories, num_unary, num_binary = (len(vocabulary.categories), len(vocabulary.unary),
                                                 len(vocabulary.binary))
        self.num_categories, self.num_unary, self.num_binary = num_categories, num_unary, num_binary
        self.words = vocabulary_words(vocabulary)
        self.gates = TypeGates(vocabulary)
        # SiLU and a final LayerNorm instead of ReLUs: early in weak training the losses push every
        # fact the same way, and a ReLU encoder could die into a constant embedding it never left.
        # Strided convolutions instead of convolution + max-pool (an all-convolutional net): a 3×3 kernel at
        # stride 2 still sees every pixel, and the two full-resolution layers it replaces were 80 % of a
        # training step on the CPU (bench/train_step.py). Channels-last is mkldnn's fast layout (1.2×).
        self.cnn = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, stride=2), nn.SiLU(),
            nn.Conv2d(16, 32, 3, padding=1, stride=2), nn.SiLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.SiLU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(32 * 4, embed_dim), nn.LayerNorm(embed_dim),
        ).to(memory_format=torch.channels_last)
        g = 10  # geometry_features width
        # Each head is an MLP whose last layer holds the word embeddings: its input (the last hidden
        # layer, width hidden_dim) is the track / pair embedding, its weight rows the words' embeddings
        # and its bias the words' biases — a closed vocabulary's text tower, scored by a dot product.
        self.name_head = _mlp(embed_dim, hidden_dim, num_categories)
        self.unary_head = _mlp(embed_dim + g, hidden_dim, num_unary)
        self.pair_app = nn.Linear(embed_dim, 24)
        pair_in = 2 * 24 + 2 * g + 7
        self.binary_head = _mlp(pair_in, hidden_dim, num_binary)
        with torch.no_grad():  # facts start at probability fact_prior (ModelConfig.fact_prior)
            self.unary_head[-1].bias.fill_(prior_logit(fact_prior))
            self.binary_head[-1].bias.fill_(prior_logit(fact_prior))

    def forward(self, batch: dict[str, torch.Tensor]) -> SceneGraphScores:
        crops, boxes, present = batch["crops"], batch["boxes"], batch["present"]
        B, T, N = present.shape
        # Only visible crops go through the CNN (about 70 % of the slots in the playroom world); the
        # others get a zero appearance, exactly what multiplying by the presence mask gave before.
        app = _where(lambda x: self.cnn(x.contiguous(memory_format=torch.channels_last)), crops, present)
        pres = present.to(app.dtype)[..., None]
        # Names are constant over time: pool the appearance over the frames where the track is visible.
        pooled = app.sum(1) / pres.sum(1).clamp_min(1.0)
        geo = geometry_features(boxes, present).to(app.dtype)
        a = self.pair_app(app)
        pair = torch.cat([
            a[:, :, :, None].expand(B, T, N, N, -1), a[:, :, None].expand(B, T, N, N, -1),
            geo[:, :, :, None].expand(B, T, N, N, -1), geo[:, :, None].expand(B, T, N, N, -1),
            pair_geometry(geo),
        ], dim=-1)
        names, unary, binary = self.name_head, self.unary_head, self.binary_head
        both = present[:, :, :, None] & present[:, :, None, :]  # pairs visible together (about half of them)
        emb = Embeddings(objects=names[:-1](pooled), tracks=unary[:-1](torch.cat([app, geo], dim=-1)),
                         pairs=_where(binary[:-1], pair, both), categories=names[-1].weight,
                         unary=unary[-1].weight, binary=binary[-1].weight, bias_names=names[-1].bias,
                         bias_unary=unary[-1].bias, bias_binary=binary[-1].bias, words=self.words)
        return SceneGraphScores.from_embeddings(emb, self.gates)


def _where(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``f(x)`` at the entries where ``mask`` holds, zeros elsewhere (``f`` runs on those entries only)."""
    y = f(x[mask])
    return y.new_zeros(*mask.shape, y.shape[-1]).index_put((*mask.nonzero(as_tuple=True),), y)


def build_model(cfg, vocabulary, crop_size: int) -> nn.Module:
    """The model named by ``cfg.name`` (a :class:`laser_train.config.ModelConfig`) for ``vocabulary``."""
    from laser_train.config import MODEL_NAMES

    if cfg.name == "small":
        return SmallPerception(vocabulary, crop_size=crop_size, embed_dim=cfg.embed_dim,
                               hidden_dim=cfg.hidden_dim, fact_prior=cfg.fact_prior)
    if cfg.name == "clip":
        from laser_train.clip_model import ClipPerception

        return ClipPerception.from_config(cfg, vocabulary)
    raise ValueError(f"unknown model {cfg.name!r} (available: {', '.join(MODEL_NAMES)})")
