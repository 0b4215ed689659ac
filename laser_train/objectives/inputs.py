"""What the embedding objectives read from the perception model: :class:`EmbeddingBatch`.

================== ======================== ================================================
``objects``        ``[B, N, D]``            a track over its visible frames (scored against category words)
``tracks``         ``[B, T, N, D]``         a track at a frame (scored against unary predicate words)
``pairs``          ``[B, T, N, N, D]``      an ordered pair of tracks at a frame (binary predicate words)
``frame``          ``[B, T, D]`` or None    frame embeddings; None: the mean of the visible tracks
``categories``     ``[C, D]``               text-tower embeddings of the vocabulary's categories
``unary_words``    ``[P, D]``               ... of its unary predicates
``binary_words``   ``[R, D]``               ... of its binary predicates
``present``        ``[B, T, N]`` bool       track visible at frame
``frame_mask``     ``[B, T]`` bool          real frames
``track_mask``     ``[B, N]`` bool          real tracks
================== ======================== ================================================

These are the perception model's :class:`laser_train.model.Embeddings`
(:meth:`EmbeddingBatch.from_model` adds the batch's masks). The model scores
the scene graph by the similarity of these embeddings with the word
embeddings, so what the objectives teach the embeddings is what evaluation
measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from laser_train.objectives.common import frame_features

__all__ = ["EmbeddingBatch"]


@dataclass
class EmbeddingBatch:
    objects: torch.Tensor
    tracks: torch.Tensor
    pairs: torch.Tensor
    categories: torch.Tensor
    unary_words: torch.Tensor
    binary_words: torch.Tensor
    present: torch.Tensor
    frame_mask: torch.Tensor
    track_mask: torch.Tensor
    frame: torch.Tensor | None = None

    def __post_init__(self) -> None:
        B, T, N = self.present.shape
        D = self.tracks.shape[-1]
        want = {"objects": (B, N, D), "tracks": (B, T, N, D), "pairs": (B, T, N, N, D),
                "frame_mask": (B, T), "track_mask": (B, N)}
        for name, shape in want.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"EmbeddingBatch.{name} has shape {got}, expected {shape} "
                                 f"(B, T, N, D = {B}, {T}, {N}, {D} from present and tracks)")
        for name in ("categories", "unary_words", "binary_words"):
            w = getattr(self, name)
            if w.dim() != 2 or w.shape[1] != D:
                raise ValueError(f"EmbeddingBatch.{name} has shape {tuple(w.shape)}, expected [*, {D}]")
        # A track counts as visible only on real frames and if it is a real track: padding never leaks in.
        self.present = self.present & self.frame_mask[:, :, None] & self.track_mask[:, None, :]

    def frames(self) -> torch.Tensor:
        """``[B, T, D]`` frame features: the model's, else the mean of the visible tracks' embeddings."""
        if self.frame is not None:
            return self.frame
        return frame_features(self.tracks, self.present)

    @property
    def visible(self) -> torch.Tensor:
        """``[B, N]``: real tracks visible at least once (the ones an object embedding means something for)."""
        return self.track_mask & self.present.any(1)

    @classmethod
    def from_model(cls, emb: Any, batch: dict[str, torch.Tensor]) -> "EmbeddingBatch":
        """From a model's :class:`laser_train.model.Embeddings` and the batch dict it was computed on.

        Embeddings are cast to float32: the objectives' softmaxes and logs want it under autocast too.
        """
        return cls(objects=emb.objects.float(), tracks=emb.tracks.float(), pairs=emb.pairs.float(),
                   categories=emb.categories.float(), unary_words=emb.unary.float(),
                   binary_words=emb.binary.float(), present=batch["present"], frame_mask=batch["frame_mask"],
                   track_mask=batch["track_mask"])

    def permute(self, order: torch.Tensor) -> "EmbeddingBatch":
        """The same batch with its videos in ``order`` (tests: permutation invariance)."""
        per_video = ("objects", "tracks", "pairs", "present", "frame_mask", "track_mask")
        kw = {f: getattr(self, f)[order] if f in per_video else getattr(self, f) for f in self.__dataclass_fields__}
        if self.frame is not None:
            kw["frame"] = self.frame[order]
        return EmbeddingBatch(**kw)
