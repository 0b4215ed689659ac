"""Which source frames a training or evaluation sample uses, and how annotations follow them.

:func:`sample_frames` picks source frame indices in three steps (settings in ``data.*``):

1. **Clip window** (``clip_seconds > 0``): a video longer than ``clip_seconds`` is cut to a window of
   ``round(clip_seconds · source fps)`` frames — at a random start in training (seeded), centred in
   evaluation. ``0``: the whole video.
2. **Frame rate** (``fps > 0``): the window is subsampled to ``fps`` frames per second: source frames
   ``floor(k · source_fps / fps)`` for ``k = 0, 1, ...``. Never upsampled: an ``fps`` at or above the
   source's keeps every frame. ``0``: every frame.
3. **Frame count** (``num_frames > 0``): the remaining ``M`` candidates are split into ``num_frames``
   equal segments ``[floor(k·M/n), floor((k+1)·M/n))``; ``uniform`` takes each segment's centre
   ``floor((k + 1/2)·M/n)``, ``segment`` takes a random frame of each segment in training (seeded, the
   TSN scheme) and the centre in evaluation. A video with ``M <= num_frames`` candidates keeps all of
   them (it is not padded by repeating frames; shorter videos are masked in the batch). ``0``: all.

With the defaults of a dataset whose videos have exactly ``num_frames`` frames every frame is kept,
in order.

**Annotations follow the sampled frames** (:func:`resample_track`): tracks list *source* frame
indices. A sampled frame ``s`` takes a track's box (and mask) from the track's listed frame nearest to
``s`` (the earlier one on a tie) if it is at most ``tolerance`` frames away, where ``tolerance`` is half
the mean spacing of the sampled frames, rounded down (0 when every frame is sampled); otherwise the
track is absent at ``s``. Ground-truth scene graphs (one frame per source frame) are resampled the
same way: frame ``s`` of the trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from laser_train.data.files import DataError

__all__ = ["Sampling", "SamplingError", "sample_frames", "tolerance", "resample_track", "SAMPLING_MODES"]

SAMPLING_MODES = ("uniform", "segment")


class SamplingError(DataError):
    """The sampling settings cannot be applied to a video (e.g. ``fps`` for a source without a rate)."""


@dataclass(frozen=True)
class Sampling:
    num_frames: int = 0  # frames per sample; 0 = every candidate frame
    fps: float = 0.0  # target rate; 0 = the source rate
    mode: str = "uniform"  # "uniform" or "segment"
    clip_seconds: float = 0.0  # window length for long videos; 0 = the whole video

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise SamplingError(f"unknown sampling {self.mode!r}; choose from {', '.join(SAMPLING_MODES)}")
        if self.num_frames < 0 or self.fps < 0 or self.clip_seconds < 0:
            raise SamplingError("num_frames, fps and clip_seconds must be >= 0")


def sample_frames(total: int, source_fps: float | None, s: Sampling, *, train: bool,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """Sorted source frame indices (int64) of one sample of a ``total``-frame video (see the module doc)."""
    if total < 1:
        raise SamplingError("the video has no frames")
    if (s.fps or s.clip_seconds) and not source_fps:
        raise SamplingError("data.fps / data.clip_seconds need the video's frame rate: give the record an "
                            "'fps' field (.npy and image directories do not carry one)")
    if train and rng is None and (s.clip_seconds or s.mode == "segment"):
        raise SamplingError("training samples with random choices need an rng")
    start, length = 0, total
    if s.clip_seconds:
        window = max(1, int(round(s.clip_seconds * source_fps)))
        if window < total:
            start = int(rng.integers(0, total - window + 1)) if train else (total - window) // 2
            length = window
    if s.fps and s.fps < source_fps:
        step = source_fps / s.fps
        cand = np.floor(np.arange(0, length / step) * step).astype(np.int64)
        cand = cand[cand < length]
    else:
        cand = np.arange(length, dtype=np.int64)
    n, M = s.num_frames, len(cand)
    if n and M > n:
        k = np.arange(n)
        if train and s.mode == "segment":
            lo, hi = (k * M) // n, ((k + 1) * M) // n
            pick = lo + np.floor(rng.random(n) * (hi - lo)).astype(np.int64)
        else:
            pick = ((2 * k + 1) * M) // (2 * n)
        cand = cand[pick]
    return cand + start


def tolerance(frames: np.ndarray) -> int:
    """Half the mean spacing of sorted sampled frames, rounded down (0 for one frame or consecutive frames)."""
    if len(frames) < 2:
        return 0
    return int((frames[-1] - frames[0]) / (len(frames) - 1) / 2)


def resample_track(listed: np.ndarray, sampled: np.ndarray, tol: int) -> np.ndarray:
    """For each sampled frame, the position in ``listed`` (sorted source frames) of the annotation it
    uses, or -1 (absent): the nearest listed frame within ``tol`` (the earlier on a tie)."""
    if len(listed) == 0:
        return np.full(len(sampled), -1, np.int64)
    pos = np.searchsorted(listed, sampled)  # listed[pos-1] < s <= listed[pos]
    right = np.clip(pos, 0, len(listed) - 1)
    left = np.clip(pos - 1, 0, len(listed) - 1)
    dl = np.abs(sampled - listed[left])
    dr = np.abs(listed[right] - sampled)
    best = np.where(dl <= dr, left, right)
    dist = np.minimum(dl, dr)
    return np.where(dist <= tol, best, -1)
