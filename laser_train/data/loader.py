"""Turn a validated dataset into padded tensors the model and the losses consume.

Frames are decoded once, every track box is resampled to a small crop
(``crop_size`` pixels square, bilinear, via ``grid_sample``) and the whole split
is kept in memory as padded tensors, so that a training step is pure tensor
indexing. Shapes (``V`` videos, ``T`` frames, ``N`` tracks, padded to the split's
maximum):

==================== ========================= ===========================================
``crops``            ``[V, T, N, 3, S, S]`` u8  track crops (zeros where absent)
``boxes``            ``[V, T, N, 4]`` float     boxes as fractions of the frame (x0, y0, x1, y1)
``present``          ``[V, T, N]`` bool         the track has a box at that frame
``frame_mask``       ``[V, T]`` bool            real frames (a prefix)
``track_mask``       ``[V, N]`` bool            real tracks
``gt_names`` etc.    as the model's outputs     hidden ground truth, when the dataset has it
==================== ========================= ===========================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from laser_train.data.format import IMAGE_SUFFIXES, VIDEO_SUFFIXES, Dataset, Record

__all__ = ["VideoTensors", "read_frames", "extract_crops", "load_split"]


@dataclass
class VideoTensors:
    """One split of a dataset as padded tensors (see the module docstring)."""

    ids: list[str]
    crops: torch.Tensor
    boxes: torch.Tensor
    present: torch.Tensor
    frame_mask: torch.Tensor
    track_mask: torch.Tensor
    specs: list[Any]  # stlspec.ir.Spec per video: the caption's spec
    negatives: list[tuple | None]  # per video: negative specs from the manifest (None: not given)
    captions: list[str]
    track_ids: list[list[str]]
    gt_names: torch.Tensor | None = None  # [V, N, C]
    gt_unary: torch.Tensor | None = None  # [V, T, N, P]
    gt_binary: torch.Tensor | None = None  # [V, T, N, N, R]
    records: list[Record] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_ground_truth(self) -> bool:
        return self.gt_unary is not None

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model inputs for videos ``index`` (crops become float in [-0.5, 0.5])."""
        return {
            "crops": self.crops[index].float().div_(255.0).sub_(0.5),
            "boxes": self.boxes[index],
            "present": self.present[index],
            "frame_mask": self.frame_mask[index],
            "track_mask": self.track_mask[index],
        }


def read_frames(path: Path) -> np.ndarray:
    """All frames of a video as uint8 ``[T, H, W, 3]`` (.npy, an image directory, or decord for video files)."""
    if path.is_dir():
        from PIL import Image

        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        import decord  # type: ignore[import-not-found]

        vr = decord.VideoReader(str(path))
        return vr.get_batch(list(range(len(vr)))).asnumpy()
    raise ValueError(f"unsupported frames source {path}")


def extract_crops(frames: np.ndarray, boxes: np.ndarray, present: np.ndarray, size: int,
                  context: float = 0.15) -> np.ndarray:
    """Resample each present box (enlarged by ``context`` on every side) to ``size``×``size`` pixels.

    ``frames`` [T, H, W, 3] uint8, ``boxes`` [T, N, 4] pixels; returns [T, N, 3, size, size] uint8.
    One batched ``grid_sample`` per video instead of a Python loop over boxes.
    """
    T, H, W, _ = frames.shape
    N = boxes.shape[1]
    img = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # [T, 3, H, W]
    b = torch.from_numpy(boxes).float()
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
    out = out * torch.from_numpy(present)[..., None, None, None]
    return out.round().clamp_(0, 255).to(torch.uint8).numpy()


def load_split(ds: Dataset, split: str | None, crop_size: int, progress: bool = False) -> VideoTensors:
    """Load the records of ``split`` (``None``: all) into padded tensors, with ground truth if every record has it."""
    from stlspec.trace import load_trace

    recs = [r for r in ds.records if split is None or r.split == split]
    if not recs:
        raise ValueError(f"dataset {ds.root} has no records in split {split!r}")
    V = len(recs)
    T = max(r.num_frames for r in recs)
    N = max(len(r.track_data) for r in recs)
    voc = ds.vocabulary
    C, P, R = len(voc.categories), len(voc.unary), len(voc.binary)
    crops = np.zeros((V, T, N, 3, crop_size, crop_size), np.uint8)
    boxes = np.zeros((V, T, N, 4), np.float32)
    present = np.zeros((V, T, N), bool)
    frame_mask = np.zeros((V, T), bool)
    track_mask = np.zeros((V, N), bool)
    with_gt = all(r.scene_graph is not None for r in recs)
    gt_names = np.zeros((V, N, C), np.float32) if with_gt else None
    gt_unary = np.zeros((V, T, N, P), np.float32) if with_gt else None
    gt_binary = np.zeros((V, T, N, N, R), np.float32) if with_gt else None
    it = enumerate(recs)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=V, desc=f"load {split or 'all'}", unit="video", leave=False)
    for v, r in it:
        frames = read_frames(r.video)
        t_v, n_v = r.num_frames, len(r.track_data)
        bx = np.zeros((t_v, n_v, 4), np.float32)
        pr = np.zeros((t_v, n_v), bool)
        for n, tr in enumerate(r.track_data):
            bx[tr["frames"], n] = np.asarray(tr["boxes"], np.float32)
            pr[tr["frames"], n] = True
        crops[v, :t_v, :n_v] = extract_crops(frames[:t_v], bx, pr, crop_size)
        W, H = r.size
        boxes[v, :t_v, :n_v] = bx / np.array([W, H, W, H], np.float32)
        present[v, :t_v, :n_v] = pr
        frame_mask[v, :t_v] = True
        track_mask[v, :n_v] = True
        if with_gt:
            tr_ = load_trace(str(r.scene_graph), voc)
            ids = [t["id"] for t in r.track_data]
            order = [tr_.track_ids.index(i) if i in tr_.track_ids else -1 for i in ids]
            if -1 in order or tr_.num_frames != t_v:
                raise ValueError(f"record {r.id!r}: scene_graph tracks/frames do not match the tracks file")
            gt_names[v, :n_v] = tr_.names[order]
            gt_unary[v, :t_v, :n_v] = tr_.unary[:, order]
            gt_binary[v, :t_v, :n_v, :n_v] = tr_.binary[:, order][:, :, order]
    t = torch.from_numpy
    return VideoTensors(
        ids=[r.id for r in recs], crops=t(crops), boxes=t(boxes), present=t(present),
        frame_mask=t(frame_mask), track_mask=t(track_mask), specs=[r.spec for r in recs],
        negatives=[r.negatives for r in recs], captions=[r.caption for r in recs],
        track_ids=[[tr["id"] for tr in r.track_data] for r in recs],
        gt_names=t(gt_names) if with_gt else None, gt_unary=t(gt_unary) if with_gt else None,
        gt_binary=t(gt_binary) if with_gt else None, records=recs)
