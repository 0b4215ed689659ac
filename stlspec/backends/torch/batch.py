"""Inputs and outputs of the torch evaluator: tensor columns, padded scene-graph batches, results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from stlspec import ir

__all__ = ["Columns", "SceneGraphBatch", "EvalOutput"]



@dataclass(frozen=True)
class Columns:
    """Names of the tensor columns: ``names[..., c]``, ``unary[..., p]``, ``binary[..., r]``."""

    categories: tuple[str, ...] = ()
    unary: tuple[str, ...] = ()
    binary: tuple[str, ...] = ()

    @classmethod
    def from_vocabulary(cls, vocabulary: ir.Vocabulary) -> "Columns":
        return cls(tuple(vocabulary.categories), tuple(vocabulary.unary_names), tuple(vocabulary.binary_names))

    @classmethod
    def from_trace(cls, trace: Any) -> "Columns":
        """Columns of a :class:`stlspec.trace.Trace` (or anything with the same three attributes)."""
        return cls(tuple(trace.categories), tuple(trace.unary_preds), tuple(trace.binary_preds))

    @classmethod
    def coerce(cls, obj: Any) -> "Columns":
        if isinstance(obj, Columns):
            return obj
        if isinstance(obj, ir.Vocabulary):
            return cls.from_vocabulary(obj)
        if hasattr(obj, "unary_preds"):
            return cls.from_trace(obj)
        if hasattr(obj, "unary_names"):
            return cls(tuple(obj.categories), tuple(obj.unary_names), tuple(obj.binary_names))
        raise TypeError(f"cannot read tensor columns from {type(obj).__name__}")


@dataclass
class SceneGraphBatch:
    """A padded batch of scene graphs (shapes in :mod:`stlspec.backends.torch`).

    ``frame_mask``/``track_mask`` default to all-true. A video's real frames must
    be a prefix ``[0, T_b)`` of the time axis.
    """

    names: torch.Tensor
    unary: torch.Tensor
    binary: torch.Tensor
    frame_mask: torch.Tensor | None = None
    track_mask: torch.Tensor | None = None
    present: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(B, T, N)``."""
        B, T, N, _ = self.unary.shape
        return B, T, N

    @classmethod
    def from_traces(cls, traces: Sequence[Any], columns: Columns | None = None, *,
                    dtype: torch.dtype = torch.float32, device: Any = None) -> "SceneGraphBatch":
        """Pad :class:`stlspec.trace.Trace` objects into one batch, columns ordered by ``columns``."""
        columns = Columns.from_trace(traces[0]) if columns is None else Columns.coerce(columns)
        B = len(traces)
        T = max(tr.num_frames for tr in traces)
        N = max(tr.num_tracks for tr in traces)
        C, P, R = len(columns.categories), len(columns.unary), len(columns.binary)
        names = np.zeros((B, N, C))
        unary = np.zeros((B, T, N, P))
        binary = np.zeros((B, T, N, N, R))
        fm = np.zeros((B, T), dtype=bool)
        tm = np.zeros((B, N), dtype=bool)
        pr = np.zeros((B, T, N), dtype=bool)
        for b, tr in enumerate(traces):
            t, n = tr.num_frames, tr.num_tracks
            fm[b, :t] = True
            tm[b, :n] = True
            pr[b, :t, :n] = tr.present
            for j, c in enumerate(columns.categories):
                if c in tr.category_index:
                    names[b, :n, j] = tr.names[:, tr.category_index[c]]
            for j, p in enumerate(columns.unary):
                if p in tr.unary_index:
                    unary[b, :t, :n, j] = tr.unary[:, :, tr.unary_index[p]]
            for j, r in enumerate(columns.binary):
                if r in tr.binary_index:
                    binary[b, :t, :n, :n, j] = tr.binary[:, :, :, tr.binary_index[r]]
        as_t = lambda a, dt=dtype: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
        return cls(as_t(names), as_t(unary), as_t(binary), as_t(fm, torch.bool), as_t(tm, torch.bool),
                   as_t(pr, torch.bool))


@dataclass
class EvalOutput:
    """``values [K]``, ``witnesses [K, E, T]`` (or ``None``), ``event_mask [K, E]`` and, with certified
    pruning (``prune_below``), ``error_bound [K]``: ``|exact value − values[k]| ≤ error_bound[k]``."""

    values: torch.Tensor
    witnesses: torch.Tensor | None
    event_mask: torch.Tensor
    error_bound: torch.Tensor | None = None
