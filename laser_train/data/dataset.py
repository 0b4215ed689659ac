"""The streaming data pipeline: a :class:`torch.utils.data.Dataset` over the on-disk format and its loader.

:class:`VideoDataset` holds only the validated records (paths, boxes, compiled specs) — never frames —
so memory stays bounded whatever the dataset size. Indexing it decodes *only the sampled frames* of one
video (:mod:`.video`, :mod:`.sampling`), cuts one crop per (frame, track) from boxes or masks
(:func:`extract_crops`, ``data.crop``), and reads the ground-truth scene graph when the record has one.
:func:`collate` pads a list of samples into the batch dict every model and loss consumes:

==================== ========================= ===========================================
``crops``            ``[B, T, N, 3, S, S]``     track crops, float in [-0.5, 0.5] (zeros where absent)
``boxes``            ``[B, T, N, 4]`` float     boxes as fractions of the frame (x0, y0, x1, y1)
``present``          ``[B, T, N]`` bool         the track has a box at that frame
``frame_mask``       ``[B, T]`` bool            real frames (a prefix)
``track_mask``       ``[B, N]`` bool            real tracks
``index``            ``[B]`` int64              position of each video in its split
``frames``           ``[B, T]`` int64           the source frame index of each sampled frame (-1: padding)
``gt_names`` etc.    as the model's outputs     hidden ground truth (``[B, N, C]``, ``[B, T, N, P]``,
                                                ``[B, T, N, N, R]``), when every record of the split has it
==================== ========================= ===========================================

Determinism: a sample depends only on ``(seed, epoch, index)`` (the random choices of frame sampling
use ``numpy.random.default_rng([seed, epoch, index])``), and :class:`EpochSampler` orders an epoch with
a generator seeded by ``(seed, epoch)``; so the batches are the same whatever ``num_workers`` is.
:func:`make_loader` builds the :class:`~torch.utils.data.DataLoader` (workers, pinned memory,
prefetching) and accepts any sampler with ``set_epoch`` (e.g. ``DistributedSampler``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from laser_train.data.files import DataError
from laser_train.data.format import Dataset, DatasetError, Problem, Record, load_scene_graph
from laser_train.data.masks import decode_mask, mask_bbox
from laser_train.data.sampling import Sampling, resample_track, sample_frames, tolerance
from laser_train.data.video import read_frames

__all__ = ["CROP_MODES", "VideoDataset", "collate", "EpochSampler", "make_loader", "set_epoch", "extract_crops",
           "build_dataset", "sampling_of", "SampleError"]

CROP_MODES = ("box", "mask", "mask_box")


class SampleError(DataError):
    """A record that validated but cannot be read now (e.g. the file changed); names the record."""


def extract_crops(frames: np.ndarray, boxes: np.ndarray, present: np.ndarray, size: int,
                  context: float = 0.15, masks: dict[tuple[int, int], np.ndarray] | None = None) -> np.ndarray:
    """Resample each present box (enlarged by ``context`` on every side) to ``size``×``size`` pixels.

    ``frames`` [T, H, W, 3] uint8, ``boxes`` [T, N, 4] pixels; returns [T, N, 3, size, size] uint8.
    One batched ``grid_sample`` per video. ``masks[(t, n)]`` (bool [H, W]) zeroes the crop's pixels
    whose centre falls outside the mask (nearest-neighbour lookup at the same sample points).
    """
    T, H, W, _ = frames.shape
    N = boxes.shape[1]
    img = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # [T, 3, H, W]
    b = torch.from_numpy(np.ascontiguousarray(boxes)).float()
    w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    x0, x1 = b[..., 0] - context * w, b[..., 2] + context * w
    y0, y1 = b[..., 1] - context * h, b[..., 3] + context * h
    steps = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # sample at output pixel centres
    xs = x0[..., None] + (x1 - x0)[..., None] * steps  # [T, N, S] in pixel units
    ys = y0[..., None] + (y1 - y0)[..., None] * steps
    gx = (2 * xs / W - 1)[..., None, :].expand(T, N, size, size)  # align_corners=False convention
    gy = (2 * ys / H - 1)[..., :, None].expand(T, N, size, size)
    grid = torch.stack([gx, gy], dim=-1).reshape(T, N * size, size, 2)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out.reshape(T, 3, N, size, size).permute(0, 2, 1, 3, 4)
    out = out * torch.from_numpy(np.ascontiguousarray(present))[..., None, None, None]
    if masks:
        keep = torch.ones(T, N, 1, size, size)
        xi, yi = xs.floor().long().numpy(), ys.floor().long().numpy()
        for (t, n), m in masks.items():
            cx, cy = xi[t, n], yi[t, n]
            inside = ((cy >= 0) & (cy < H))[:, None] & ((cx >= 0) & (cx < W))[None, :]
            sel = m[np.clip(cy, 0, H - 1)[:, None], np.clip(cx, 0, W - 1)[None, :]] & inside
            keep[t, n, 0] = torch.from_numpy(sel.astype(np.float32))
        out = out * keep
    return out.round().clamp_(0, 255).to(torch.uint8).numpy()


def _sorted_track(tr: dict) -> tuple[np.ndarray, np.ndarray, list[Any] | None]:
    frames = np.asarray(tr["frames"], np.int64)
    order = np.argsort(frames, kind="stable")
    boxes = np.asarray(tr["boxes"], np.float32).reshape(-1, 4)[order]
    masks = tr.get("masks")
    return frames[order], boxes, ([masks[int(i)] for i in order] if masks is not None else None)


class VideoDataset(torch.utils.data.Dataset):
    """One split of a validated dataset, decoded lazily per video (see the module docstring).

    The attributes ``ids``, ``captions``, ``specs``, ``negatives``, ``records`` are per video;
    :class:`laser_train.losses.SpecSupervision` sets ``spec_ids``.
    """

    def __init__(self, dataset: Dataset, records: Sequence[Record], *, crop_size: int, crop: str = "box",
                 sampling: Sampling = Sampling(), train: bool = False, seed: int = 0, context: float = 0.15,
                 cache_bytes: int = 0):
        if crop not in CROP_MODES:
            raise ValueError(f"unknown data.crop {crop!r}; choose from {', '.join(CROP_MODES)}")
        self.root = Path(dataset.root)
        self.vocabulary = dataset.vocabulary
        self.records = list(records)
        self.crop_size, self.crop, self.sampling = crop_size, crop, sampling
        self.train, self.seed, self.context = train, seed, context
        self.epoch = 0
        self.ids = [r.id for r in self.records]
        self.captions = [r.caption for r in self.records]
        self.specs = [r.spec for r in self.records]
        self.negatives = [r.negatives for r in self.records]
        self.spec_ids: list[int] = []
        self.has_ground_truth = bool(self.records) and all(r.scene_graph is not None for r in self.records)
        self.load_ground_truth = self.has_ground_truth  # samples carry gt_* (off: skip reading scene graphs)
        # Samples that are the same every epoch are kept, up to cache_bytes (then no more are added):
        # a small dataset is decoded once per process instead of once per epoch.
        self.cache_bytes = int(cache_bytes)
        self._cache: dict[tuple[int, bool], dict[str, Any]] = {}  # shared by without_ground_truth views
        self._cache_used = [0]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def max_tracks(self) -> int:
        return max((len(r.track_data) for r in self.records), default=0)

    def set_epoch(self, epoch: int) -> None:
        """Training samples of epoch ``epoch`` (random frame choices depend on it)."""
        self.epoch = int(epoch)

    @property
    def deterministic(self) -> bool:
        """Whether every epoch samples the same frames (then samples can be cached)."""
        return not (self.train and (self.sampling.mode == "segment" or self.sampling.clip_seconds))

    def frame_indices(self, i: int) -> np.ndarray:
        """The source frames sample ``i`` uses in the current epoch."""
        rec = self.records[i]
        rng = None if self.deterministic else np.random.default_rng([self.seed, self.epoch, i])
        try:
            return sample_frames(rec.num_frames, rec.fps, self.sampling, train=self.train, rng=rng)
        except ValueError as exc:
            raise SampleError(f"record {rec.id!r}: {exc}") from None

    def _tracks(self, rec: Record) -> list[dict]:
        if self.crop != "box" and rec.has_masks:  # masks are not kept in memory: read them now
            return rec.read_tracks()
        return rec.track_data

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not self.cache_bytes or not self.deterministic:
            return self._sample(i)
        key = (i, self.has_ground_truth and self.load_ground_truth)
        item = self._cache.get(key)
        if item is None:
            item = self._sample(i)
            size = sum(v.nbytes for v in item.values() if isinstance(v, torch.Tensor))
            if self._cache_used[0] + size <= self.cache_bytes:
                self._cache[key] = item
                self._cache_used[0] += size
        return dict(item)  # (collate copies the tensors into the batch: the cached ones are never changed)

    def _sample(self, i: int) -> dict[str, Any]:
        rec = self.records[i]
        sampled = self.frame_indices(i)
        tol = tolerance(sampled)
        tracks = self._tracks(rec)
        Ts, N = len(sampled), len(tracks)
        boxes = np.zeros((Ts, N, 4), np.float32)
        present = np.zeros((Ts, N), bool)
        mask_entries: dict[tuple[int, int], Any] = {}
        for n, tr in enumerate(tracks):
            frames, bx, masks = _sorted_track(tr)
            pos = resample_track(frames, sampled, tol)
            hit = pos >= 0
            boxes[hit, n] = bx[pos[hit]]
            present[hit, n] = True
            if masks is not None:
                for t in np.flatnonzero(hit):
                    if masks[int(pos[t])] is not None:
                        mask_entries[(int(t), n)] = masks[int(pos[t])]
        try:
            frames_px = read_frames(rec.video, sampled)
        except Exception as exc:  # the video changed or broke after validation
            raise SampleError(f"record {rec.id!r}: video {rec.video}: {exc}") from None
        decoded: dict[tuple[int, int], np.ndarray] = {}
        for key, entry in mask_entries.items():
            try:
                m = decode_mask(entry, self.root, rec.size)
            except ValueError as exc:
                raise SampleError(f"record {rec.id!r}: {rec.tracks.name}: track {tracks[key[1]]['id']!r} frame "
                                  f"{int(sampled[key[0]])}: masks: {exc}") from None
            if m is None or not m.any():
                continue  # an empty mask: keep the box crop
            if self.crop == "mask_box":
                boxes[key] = mask_bbox(m)
            else:
                decoded[key] = m
        crops = extract_crops(frames_px, boxes, present, self.crop_size, self.context, decoded or None)
        W, H = rec.size
        item: dict[str, Any] = {
            "index": i, "frames": torch.from_numpy(sampled.astype(np.int64)),
            "crops": torch.from_numpy(crops),
            "boxes": torch.from_numpy(boxes / np.array([W, H, W, H], np.float32)),
            "present": torch.from_numpy(present),
        }
        if self.has_ground_truth and self.load_ground_truth:
            item.update(self._ground_truth(rec, sampled, tol, [t["id"] for t in tracks]))
        return item

    def _ground_truth(self, rec: Record, sampled: np.ndarray, tol: int, ids: list[str]) -> dict[str, torch.Tensor]:
        trace = load_scene_graph(rec.scene_graph, self.vocabulary)
        order = [trace.track_ids.index(i) for i in ids]
        rows = resample_track(np.arange(trace.num_frames), sampled, tol)
        if (rows < 0).any():
            raise SampleError(f"record {rec.id!r}: scene_graph has {trace.num_frames} frames; sampled frame "
                              f"{int(sampled[rows < 0][0])} is beyond it")
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
        return {"gt_names": t(trace.names[order]), "gt_unary": t(trace.unary[rows][:, order]),
                "gt_binary": t(trace.binary[rows][:, order][:, :, order])}

    def without_ground_truth(self) -> "VideoDataset":
        """A view of this dataset whose samples skip the scene graphs (weak training never reads them)."""
        view = copy.copy(self)
        view.load_ground_truth = False
        return view

    def batch(self, index: Sequence[int] | torch.Tensor) -> dict[str, torch.Tensor]:
        """The collated batch of videos ``index`` (decoded now; a convenience for plots and benchmarks)."""
        idx = index.tolist() if isinstance(index, torch.Tensor) else list(index)
        return collate([self[int(i)] for i in idx])


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad samples to the batch's longest video and largest track count (see the module docstring)."""
    B = len(items)
    T = max(int(it["present"].shape[0]) for it in items)
    N = max(int(it["present"].shape[1]) for it in items)
    S = int(items[0]["crops"].shape[-1])
    crops = torch.zeros(B, T, N, 3, S, S, dtype=torch.uint8)
    boxes = torch.zeros(B, T, N, 4)
    present = torch.zeros(B, T, N, dtype=torch.bool)
    frame_mask = torch.zeros(B, T, dtype=torch.bool)
    track_mask = torch.zeros(B, N, dtype=torch.bool)
    frames = torch.full((B, T), -1, dtype=torch.int64)
    with_gt = all("gt_names" in it for it in items)
    if with_gt:
        C, P, R = (items[0][k].shape[-1] for k in ("gt_names", "gt_unary", "gt_binary"))
        gt_names, gt_unary = torch.zeros(B, N, C), torch.zeros(B, T, N, P)
        gt_binary = torch.zeros(B, T, N, N, R)
    for b, it in enumerate(items):
        t, n = it["present"].shape
        crops[b, :t, :n] = it["crops"]
        boxes[b, :t, :n] = it["boxes"]
        present[b, :t, :n] = it["present"]
        frame_mask[b, :t] = True
        track_mask[b, :n] = True
        frames[b, :t] = it["frames"]
        if with_gt:
            gt_names[b, :n] = it["gt_names"]
            gt_unary[b, :t, :n] = it["gt_unary"]
            gt_binary[b, :t, :n, :n] = it["gt_binary"]
    out = {"crops": crops.float().div_(255.0).sub_(0.5), "boxes": boxes, "present": present,
           "frame_mask": frame_mask, "track_mask": track_mask,
           "index": torch.tensor([int(it["index"]) for it in items], dtype=torch.int64), "frames": frames}
    if with_gt:
        out.update(gt_names=gt_names, gt_unary=gt_unary, gt_binary=gt_binary)
    return out


class EpochSampler(torch.utils.data.Sampler):
    """All indices once per epoch: shuffled by a generator seeded with ``(seed, epoch)``, or in order."""

    def __init__(self, n: int, *, shuffle: bool, seed: int = 0):
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=gen).tolist())


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)  # workers decode and crop; they must not compete with the trainer's threads


def make_loader(dataset: VideoDataset, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                num_workers: int = 0, sampler: Any = None, pin_memory: bool | None = None,
                prefetch_factor: int = 2, batch_sampler: Any = None) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` yielding :func:`collate` batches.

    ``sampler`` (e.g. a ``DistributedSampler``) replaces the default :class:`EpochSampler`; call
    :func:`set_epoch` before each epoch. ``pin_memory`` defaults to "CUDA is available".
    """
    if sampler is None:
        sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    kw: dict[str, Any] = {}
    if num_workers > 0:
        kw.update(prefetch_factor=prefetch_factor, worker_init_fn=_worker_init, persistent_workers=False)
    if batch_sampler is not None:  # whole batches chosen elsewhere (torchrun: laser_train.distributed)
        return torch.utils.data.DataLoader(dataset, batch_sampler=batch_sampler, num_workers=num_workers,
                                           collate_fn=collate, pin_memory=pin_memory, **kw)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                                       collate_fn=collate, pin_memory=pin_memory, drop_last=False, **kw)


def set_epoch(loader: torch.utils.data.DataLoader, epoch: int) -> None:
    """Set the epoch of the loader's dataset (frame sampling) and sampler (order) before iterating it."""
    loader.dataset.set_epoch(epoch)
    for sampler in (loader.sampler, loader.batch_sampler):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)


def sampling_of(data_cfg: Any) -> Sampling:
    """The :class:`Sampling` of a :class:`laser_train.config.DataConfig` (raises on bad settings)."""
    return Sampling(num_frames=data_cfg.num_frames, fps=data_cfg.fps, mode=data_cfg.sampling,
                    clip_seconds=data_cfg.clip_seconds)


def build_dataset(ds: Dataset, split: str, data_cfg: Any, *, train: bool, seed: int = 0) -> VideoDataset:
    """The :class:`VideoDataset` of ``split`` with the settings of a :class:`laser_train.config.DataConfig`;
    ``seed`` (the run's ``train.seed``) drives the random frame choices of training samples."""
    records = ds.require_split(split)
    sampling = sampling_of(data_cfg)
    if sampling.fps or sampling.clip_seconds:  # they need each video's frame rate: say so before training
        missing = [Problem(r.id, r.line, "fps", "data.fps / data.clip_seconds need the video's frame rate: add "
                           "an 'fps' field (.npy files and image directories carry none)")
                   for r in records if not r.fps]
        if missing:
            raise DatasetError(missing, str(ds.root), skippable=False)
    return VideoDataset(ds, records, crop_size=data_cfg.crop_size, crop=data_cfg.crop, sampling=sampling,
                        train=train, seed=seed, cache_bytes=int(getattr(data_cfg, "cache_mb", 0) * 2**20))
