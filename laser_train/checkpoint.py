"""Atomic, exactly resumable checkpoints.

A checkpoint holds everything needed to continue a run bit for bit: model,
optimizer and LR-scheduler state, the number of finished epochs, the training
history so far, torch's RNG state and the resolved configuration. It is
written to a temporary file in the same directory, flushed to disk and moved
into place with :func:`os.replace`, so a run killed at any moment leaves either
the previous checkpoint or the new one — never a torn file. In a torchrun job
only rank 0 writes, and every rank waits at a barrier until the file is in
place (:mod:`laser_train.train`). Checkpoints load with ``weights_only=True``
and onto the CPU; a run resumes on any device and any number of processes.

Resuming is exact because nothing else carries state between epochs: the
shuffling order and negative sampling of epoch ``e`` are drawn from generators
seeded with ``(seed, e)`` (see :mod:`laser_train.train`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_VERSION", "CheckpointError"]

CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable laser_train checkpoint."""


def save_checkpoint(path: str | Path, *, model: torch.nn.Module, optimizer: Any = None, scheduler: Any = None,
                    epoch: int = 0, config: dict | None = None, history: list | None = None,
                    extra: dict | None = None) -> Path:
    """Write the checkpoint atomically; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "version": CHECKPOINT_VERSION,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "config": config or {},
        "history": history or [],
        "torch_rng": torch.get_rng_state(),
        "extra": extra or {},
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (on the CPU).

    Loaded with ``weights_only=True``: tensors and plain Python values only, so a checkpoint from
    elsewhere cannot run code when it is opened.
    """
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except Exception as exc:  # torch raises UnpicklingError (or RuntimeError for a torn/foreign file)
        raise CheckpointError(f"{path}: not a laser_train checkpoint, or one holding more than tensors and plain "
                         f"values ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: not a laser_train checkpoint (version {CHECKPOINT_VERSION})")
    return state
