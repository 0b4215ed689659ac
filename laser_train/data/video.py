"""Frame sources: decode only the frames a sample needs.

A record's ``video`` is one of

* a ``.npy`` file holding uint8 ``[T, H, W, 3]`` — memory-mapped, so only the sampled frames are read;
* a directory of images (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``), one per frame in name order — only the
  sampled files are opened;
* a video file (``.mp4``, ``.avi``, ``.mkv``, ``.webm``, ``.mov``) — decoded with `decord
  <https://github.com/dmlc/decord>`_ (``pip install decord``, or the ``video`` extra), which seeks to
  the sampled frames (``VideoReader.get_batch``) instead of decoding the whole file.

:func:`probe` reads a source's frame count, size and frame rate (``None`` when the source has none:
``.npy`` and image directories; the manifest's ``fps`` field supplies it). :func:`read_frames` returns
the frames at given indices as uint8 ``[K, H, W, 3]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["VideoInfo", "probe", "read_frames", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "image_files"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov")


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    height: int
    width: int
    fps: float | None  # frames per second; None when the source does not say


def image_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _decord():
    try:
        import decord  # type: ignore[import-not-found]
    except ImportError:
        raise ValueError("video files need decord (pip install decord, or the 'video' extra); "
                         "or convert the video to .npy frames or an image directory") from None
    return decord


def _reader(path: Path):
    decord = _decord()
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as exc:  # decord raises its own DECORDError for unreadable files
        raise ValueError(f"decord cannot open the video: {str(exc).splitlines()[0][:200]}") from None


def probe(path: Path) -> VideoInfo:
    """Frame count, size and rate of a frames source without decoding its frames."""
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise ValueError("the frames directory holds no images")
        from PIL import Image

        try:
            with Image.open(files[0]) as im:
                return VideoInfo(len(files), im.height, im.width, None)
        except Exception as exc:  # PIL's many error types
            raise ValueError(f"cannot read image {files[0].name}: {exc}") from None
    if path.suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"not a readable .npy array: {exc}") from None
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"expected a uint8 array [T, H, W, 3], got {arr.dtype} {arr.shape}")
        return VideoInfo(int(arr.shape[0]), int(arr.shape[1]), int(arr.shape[2]), None)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        vr = _reader(path)
        n = len(vr)
        if n == 0:
            raise ValueError("the video has no frames")
        h, w = vr[0].shape[:2]
        fps = float(vr.get_avg_fps())
        return VideoInfo(n, int(h), int(w), fps if fps > 0 else None)
    raise ValueError(f"unsupported frames source {path.name!r} (use .npy, an image directory, or "
                     f"{'/'.join(VIDEO_SUFFIXES)})")


def read_frames(path: Path, indices: Sequence[int] | None = None) -> np.ndarray:
    """Frames ``indices`` (all when None) of a source as uint8 ``[K, H, W, 3]``; only those are decoded."""
    if path.is_dir():
        from PIL import Image

        files = image_files(path)
        pick = files if indices is None else [files[int(i)] for i in indices]
        out = []
        for f in pick:
            with Image.open(f) as im:
                out.append(np.asarray(im.convert("RGB")))
        return np.stack(out)
    if path.suffix == ".npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        return np.array(arr if indices is None else arr[np.asarray(indices, dtype=np.int64)])
    if path.suffix.lower() in VIDEO_SUFFIXES:
        vr = _reader(path)
        idx = list(range(len(vr))) if indices is None else [int(i) for i in indices]
        return vr.get_batch(idx).asnumpy()
    raise ValueError(f"unsupported frames source {path}")
