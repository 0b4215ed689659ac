"""Object masks: COCO-style run-length encoding, PNG masks, and validation of a tracks file's mask entries.

A track's ``masks`` list holds one entry per listed frame (see :mod:`laser_train.data.format`):

* ``{"size": [H, W], "counts": "..."}`` — COCO RLE, *compressed* string form (as written by
  ``pycocotools.mask.encode``), or ``{"size": [H, W], "counts": [n0, n1, ...]}`` — the uncompressed
  list form. Runs alternate background/object starting with background, in column-major order
  (down the first column, then the second, ...), as in COCO.
* ``{"png": "masks/v1/000012.png", "value": 3}`` — an indexed (palette) or greyscale PNG whose pixels
  hold object ids: the mask is where the pixel value (the palette *index*, not its colour) equals
  ``value``. One PNG per frame serves every track of the video.
* ``{"png": "masks/v1/t0/000012.png"}`` or just the string ``"masks/v1/t0/000012.png"`` — a binary
  per-track PNG: the mask is where the pixel is non-zero.
* ``null`` — no mask at that frame (the box is used).

PNG paths are relative to the dataset directory. A mask must have the video's size ``H × W``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["rle_decode", "rle_encode", "rle_counts_from_string", "rle_counts_to_string", "check_mask_entry",
           "decode_mask", "MaskError", "mask_bbox"]


class MaskError(ValueError):
    """A mask entry that cannot be decoded (the message names the problem, not the location)."""


def rle_counts_from_string(s: str) -> list[int]:
    """Decode COCO's compressed RLE string (6-bit chunks offset by 48, deltas from the run two back)."""
    counts: list[int] = []
    p, n = 0, len(s)
    while p < n:
        x = k = 0
        more = True
        while more:
            if p >= n:
                raise MaskError("compressed RLE string ends in the middle of a number")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise MaskError(f"compressed RLE string has an invalid character at position {p}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
            if k > 13:
                raise MaskError("compressed RLE string holds a number that is too large")
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_counts_to_string(counts: list[int]) -> str:
    """The inverse of :func:`rle_counts_from_string` (COCO's ``rleToString``)."""
    out = []
    for i, c in enumerate(counts):
        x = int(c) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def rle_encode(mask: np.ndarray, compressed: bool = True) -> dict:
    """COCO RLE of a 2-D boolean mask ``[H, W]``."""
    m = np.asarray(mask, bool)
    flat = m.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    return {"size": [int(m.shape[0]), int(m.shape[1])],
            "counts": rle_counts_to_string(runs) if compressed else [int(r) for r in runs]}


def rle_decode(rle: dict) -> np.ndarray:
    """The boolean mask ``[H, W]`` of a COCO RLE dict (compressed string or list ``counts``)."""
    size, counts = rle.get("size"), rle.get("counts")
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1 << 16 for v in size)):
        raise MaskError(f"'size' must be [H, W] with positive integers, got {size!r}")
    H, W = size
    if isinstance(counts, str):
        runs = rle_counts_from_string(counts)
    elif isinstance(counts, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
            raise MaskError("'counts' must be a string or a list of integers")
        runs = counts
    else:
        raise MaskError(f"'counts' must be a string or a list of integers, got {type(counts).__name__}")
    if any(r < 0 for r in runs):
        raise MaskError("'counts' holds a negative run length")
    total = sum(runs)
    if total != H * W:
        raise MaskError(f"the runs cover {total} pixels but size {H}x{W} has {H * W}")
    values = np.zeros(len(runs), bool)
    values[1::2] = True
    flat = np.repeat(values, runs)
    return flat.reshape((W, H)).T


def _png_mask(path: Path, value: int | None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("P", "L", "1", "I", "I;16"):
            arr = np.asarray(im)  # palette images: the index, not the colour
        else:
            arr = np.asarray(im.convert("L"))
    if arr.ndim != 2:
        raise MaskError(f"{path.name}: expected a single-channel mask image")
    return arr != 0 if value is None else arr == value


def check_mask_entry(entry: Any) -> str | None:
    """Why a mask entry is malformed (shape of the JSON only), or None. Does not read files."""
    if entry is None or isinstance(entry, str):
        return None if entry is None or entry else "an empty PNG path"
    if not isinstance(entry, dict):
        return f"a mask is an RLE object, a PNG object or path, or null, got {type(entry).__name__}"
    if "png" in entry:
        extra = sorted(set(entry) - {"png", "value"})
        if extra:
            return f"unknown key(s) {', '.join(extra)} in a PNG mask (png, value)"
        if not isinstance(entry["png"], str) or not entry["png"]:
            return "'png' must be a relative path"
        v = entry.get("value")
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 16):
            return f"'value' must be an integer pixel value, got {v!r}"
        return None
    if "counts" in entry or "size" in entry:
        extra = sorted(set(entry) - {"size", "counts"})
        if extra:
            return f"unknown key(s) {', '.join(extra)} in an RLE mask (size, counts)"
        try:
            rle_decode(entry)
        except MaskError as exc:
            return str(exc)
        return None
    return "a mask object needs 'counts' and 'size' (RLE) or 'png'"


def decode_mask(entry: Any, root: Path, size: tuple[int, int]) -> np.ndarray | None:
    """The boolean mask ``[H, W]`` of one entry (None for ``null``); ``size`` is the frame's (W, H)."""
    if entry is None:
        return None
    if isinstance(entry, str):
        entry = {"png": entry}
    if "png" in entry:
        path = root / entry["png"]
        if not path.is_file():
            raise MaskError(f"mask image not found: {entry['png']}")
        try:
            m = _png_mask(path, entry.get("value"))
        except MaskError:
            raise
        except Exception as exc:  # PIL raises many types for unreadable images
            raise MaskError(f"cannot read mask image {entry['png']}: {exc}") from None
    else:
        m = rle_decode(entry)
    W, H = size
    if m.shape != (H, W):
        raise MaskError(f"mask is {m.shape[1]}x{m.shape[0]} but the video is {W}x{H}")
    return m


def mask_bbox(mask: np.ndarray) -> list[float] | None:
    """The tight box ``[x0, y0, x1, y1]`` in pixels (pixel (i, j) covers [i, i+1) x [j, j+1); x1, y1
    exclusive) of a boolean mask, or None if it is empty."""
    ys = np.flatnonzero(mask.any(1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(0))
    return [float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)]
