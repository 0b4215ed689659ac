"""What the embedding objectives read from the perception model: :class:`EmbeddingBatch`.

================== ======================== ================================================
``track``          ``[B, T, N, D]``         per-frame object embeddings (scored against category words)
``unary``          ``[B, T, N, D]``         per-frame embeddings scored against unary predicate words
``pair``           ``[B, T, N, N, D]``      per-frame pair-track embeddings (binary predicate words)
``frame``          ``[B, T, D]`` or None    frame embeddings; None: the mean of the visible tracks
``category_words`` ``[C, D]``               text-tower embeddings of the vocabulary's categories
``unary_words``    ``[P, D]``               ... of its unary predicates
``binary_words``   ``[R, D]``               ... of its binary predicates
``present``        ``[B, T, N]`` bool       track visible at frame
``frame_mask``     ``[B, T]`` bool          real frames
``track_mask``     ``[B, N]`` bool          real tracks
================== ======================== ================================================

A model whose unary head reads the same embedding as its name head passes the
same tensor as ``track`` and ``unary``. The perception model scores the scene
graph by the similarity of these embeddings with the word embeddings, so what
the objectives teach the embeddings is what evaluation measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from laser_train.objectives.common import frame_features

__all__ = ["EmbeddingBatch"]


@dataclass
class EmbeddingBatch:
    track: torch.Tensor
    unary: torch.Tensor
    pair: torch.Tensor
    category_words: torch.Tensor
    unary_words: torch.Tensor
    binary_words: torch.Tensor
    present: torch.Tensor
    frame_mask: torch.Tensor
    track_mask: torch.Tensor
    frame: torch.Tensor | None = None

    def __post_init__(self) -> None:
        B, T, N = self.present.shape
        D = self.track.shape[-1]
        want = {"track": (B, T, N, D), "unary": (B, T, N, D), "pair": (B, T, N, N, D),
                "frame_mask": (B, T), "track_mask": (B, N)}
        for name, shape in want.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"EmbeddingBatch.{name} has shape {got}, expected {shape} "
                                 f"(B, T, N, D = {B}, {T}, {N}, {D} from present and track)")
        for name in ("category_words", "unary_words", "binary_words"):
            w = getattr(self, name)
            if w.dim() != 2 or w.shape[1] != D:
                raise ValueError(f"EmbeddingBatch.{name} has shape {tuple(w.shape)}, expected [*, {D}]")
        # A track counts as visible only on real frames and if it is a real track: padding never leaks in.
        self.present = self.present & self.frame_mask[:, :, None] & self.track_mask[:, None, :]

    def frames(self) -> torch.Tensor:
        """``[B, T, D]`` frame features: the model's, else the mean of the visible tracks' embeddings."""
        if self.frame is not None:
            return self.frame
        return frame_features(self.track, self.present)

    def permute(self, order: torch.Tensor) -> "EmbeddingBatch":
        """The same batch with its videos in ``order`` (tests: permutation invariance)."""
        per_video = ("track", "unary", "pair", "present", "frame_mask", "track_mask")
        kw = {f: getattr(self, f)[order] if f in per_video else getattr(self, f) for f in self.__dataclass_fields__}
        if self.frame is not None:
            kw["frame"] = self.frame[order]
        return EmbeddingBatch(**kw)
