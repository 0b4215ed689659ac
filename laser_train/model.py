"""Perception models: from frames and object tracks to a probabilistic scene graph.

The interface every model implements (:class:`PerceptionModel`) takes a batch
dict from :meth:`laser_train.data.loader.VideoTensors.batch`

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

:class:`SmallPerception` is the from-scratch CPU model: a three-layer CNN over
each crop, box geometry and motion features (centre, size, velocity from the
neighbouring frames), and three MLP heads. A real-video backbone (CLIP crops)
only has to produce the same outputs from the same batch dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SceneGraphScores", "PerceptionModel", "SmallPerception", "build_model", "geometry_features",
           "type_masks", "TypeGates"]


@dataclass
class SceneGraphScores:
    names: torch.Tensor  # [B, N, C] logits (softmax over C)
    unary: torch.Tensor  # [B, T, N, P] logits (sigmoid)
    binary: torch.Tensor  # [B, T, N, N, R] logits (sigmoid)
    unary_gate: torch.Tensor  # [B, N, P] P(track's category fits the predicate's argument)
    binary_gate: torch.Tensor  # [B, N, N, R] the same for both arguments

    FIELDS = ("names", "unary", "binary", "unary_gate", "binary_gate")

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
        p = name_logits.softmax(-1)  # [B, N, C]
        unary = p @ self.unary_types  # [B, N, P]
        left, right = p @ self.left_types, p @ self.right_types  # [B, N, R]
        return unary.clamp(0, 1), (left[:, :, None] * right[:, None, :]).clamp(0, 1)


class SmallPerception(nn.Module):
    """Crop CNN + geometry/motion features + name, unary and binary heads (≈100k parameters)."""

    def __init__(self, vocabulary, *, crop_size: int = 16, embed_dim: int = 48, hidden_dim: int = 96):
        super().__init__()
        num_categories, num_unary, num_binary = (len(vocabulary.categories), len(vocabulary.unary),
                                                 len(vocabulary.binary))
        self.num_categories, self.num_unary, self.num_binary = num_categories, num_unary, num_binary
        self.gates = TypeGates(vocabulary)
        # SiLU and a final LayerNorm instead of ReLUs: early in weak training the losses push every
        # fact the same way, and a ReLU encoder could die into a constant embedding it never left.
        self.cnn = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.SiLU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(32 * 4, embed_dim), nn.LayerNorm(embed_dim),
        )
        g = 10  # geometry_features width
        self.name_head = _mlp(embed_dim, hidden_dim, num_categories)
        self.unary_head = _mlp(embed_dim + g, hidden_dim, num_unary)
        self.pair_app = nn.Linear(embed_dim, 24)
        pair_in = 2 * 24 + 2 * g + 7
        self.binary_head = _mlp(pair_in, hidden_dim, num_binary)

    def forward(self, batch: dict[str, torch.Tensor]) -> SceneGraphScores:
        crops, boxes, present = batch["crops"], batch["boxes"], batch["present"]
        B, T, N = present.shape
        app = self.cnn(crops.reshape(B * T * N, *crops.shape[3:])).reshape(B, T, N, -1)
        pres = present.float()[..., None]
        app = app * pres
        # Names are constant over time: pool the appearance over the frames where the track is visible.
        pooled = app.sum(1) / pres.sum(1).clamp_min(1.0)
        names = self.name_head(pooled)
        geo = geometry_features(boxes, present)
        unary = self.unary_head(torch.cat([app, geo], dim=-1))
        a = self.pair_app(app)
        c = geo[..., :2]
        d = c[:, :, None, :, :] - c[:, :, :, None, :]  # [B, T, n, m, 2] = centre_m - centre_n
        dv = geo[:, :, None, :, 4:6] - geo[:, :, :, None, 4:6]
        dist = d.norm(dim=-1, keepdim=True)
        pair = torch.cat([
            a[:, :, :, None].expand(B, T, N, N, -1), a[:, :, None].expand(B, T, N, N, -1),
            geo[:, :, :, None].expand(B, T, N, N, -1), geo[:, :, None].expand(B, T, N, N, -1),
            d * 4, dist * 4, d.abs() * 4, dv,
        ], dim=-1)
        binary = self.binary_head(pair)
        return SceneGraphScores(names, unary, binary, *self.gates(names))


def build_model(cfg, vocabulary, crop_size: int) -> nn.Module:
    """The model named by ``cfg.name`` (a :class:`laser_train.config.ModelConfig`) for ``vocabulary``."""
    if cfg.name == "small":
        return SmallPerception(vocabulary, crop_size=crop_size, embed_dim=cfg.embed_dim,
                               hidden_dim=cfg.hidden_dim)
    raise ValueError(f"unknown model {cfg.name!r} (available: small)")
