"""OpenPVSG (Yang et al., 2023, *Panoptic Video Scene Graph Generation*): ``pvsg.json`` + palette-PNG masks.

``pvsg.json`` holds ``objects`` (the class lists ``{"thing": [...], "stuff":
[...]}``), ``relations`` (the predicate list), ``split`` (``{source: {"train":
[ids], "val": [ids]}}``) and ``data``: per video ``video_id``, ``meta``
(``num_frames``, ``width``, ``height``), ``objects`` (``[{"object_id",
"category", "is_thing"}]``), ``relations`` (``[subject_id, object_id,
predicate, [[start, end], ...]]``, frame spans **inclusive** of both ends) and
``captions`` (``[{"span": [start, end], "description"}]``, plus a ``summary``).
Masks are one palette PNG per frame whose pixel value is the ``object_id`` (0:
background). Boxes are the masks' tight boxes; masks are kept (COCO RLE).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from laser_train.convert.common import (
    DatasetWriter, FactOut, Invalid, Reporter, TrackOut, VideoOut, list_frames, mask_box, read_json, rle_encode,
)

NAME = "openpvsg"
SUMMARY = "OpenPVSG: pvsg.json (objects, relations with frame spans, captions) + palette-PNG masks"
DESCRIPTION = """\
Convert OpenPVSG: pvsg.json (per video: objects with categories, relations [subject, object, predicate,
[[start, end], ...]] with inclusive frame spans, captions with time spans) and the per-frame palette-PNG
masks (pixel value = object id). Tracks are the objects' masks (boxes are the masks' tight boxes; the masks
are written as COCO RLE), the ground-truth scene graphs are the relations, and the caption is the video's
captions in time order (--caption summary uses the one-paragraph summary instead). The split comes from
pvsg.json's "split" lists (videos in none are `train`)."""
EXAMPLE = """\
example (OpenPVSG's data/ folder: pvsg.json, <source>/frames/<id>/, <source>/masks/<id>/):
  python -m laser_train convert openpvsg --pvsg data/pvsg.json --frames data --masks data --stride 5 \\
      --out data/pvsg-laser"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pvsg", required=True, type=Path, metavar="pvsg.json", help="the annotation file")
    p.add_argument("--frames", required=True, type=Path, metavar="DIR",
                   help="frame folders: DIR/<video_id>/ or DIR/<source>/frames/<video_id>/")
    p.add_argument("--masks", required=True, type=Path, metavar="DIR",
                   help="mask folders: DIR/<video_id>/ or DIR/<source>/masks/<video_id>/ (one PNG per frame)")
    p.add_argument("--stride", type=int, default=1, metavar="N", help="keep every N-th frame (default 1)")
    p.add_argument("--caption", choices=("events", "summary"), default="events",
                   help="events: the time-spanned captions in order (default); summary: the video summary")
    p.add_argument("--videos", nargs="*", metavar="ID", help="convert only these video ids")


def _folder(root: Path, kind: str, vid: str) -> Path:
    for cand in [root / vid, *sorted(root.glob(f"*/{kind}/{vid}"))]:
        if cand.is_dir():
            return cand
    raise Invalid(kind, f"no {kind} folder for this video: looked for {root / vid} and "
                        f"{root}/<source>/{kind}/{vid}")


def _read_mask(path: Path, W: int, H: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L", "I", "I;16"):
                raise Invalid("masks", f"{path.name}: expected a palette PNG (pixel value = object id), "
                                       f"got mode {im.mode}")
            arr = np.asarray(im)
    except OSError as exc:
        raise Invalid("masks", f"cannot read mask {path}: {exc}") from None
    if arr.shape != (H, W):
        raise Invalid("masks", f"{path.name} is {arr.shape[1]}x{arr.shape[0]} but meta says {W}x{H}")
    return arr


def _int(where: str, v: Any, low: int = 0) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise Invalid(where, f"expected an integer >= {low}, got {v!r}")
    return v


def convert_video(v: Any, i: int, args, split_of: dict[str, str], report: Reporter) -> VideoOut:
    if not isinstance(v, dict):
        raise Invalid(f"data[{i}]", f"expected an object, got {type(v).__name__}")
    vid = v.get("video_id")
    if not isinstance(vid, str) or not vid:
        raise Invalid(f"data[{i}].video_id", f"expected a string, got {vid!r}")
    meta = v.get("meta")
    if not isinstance(meta, dict):
        raise Invalid(f"data[{i}].meta", "missing (needs num_frames, width, height)")
    T = _int(f"data[{i}].meta.num_frames", meta.get("num_frames"), 1)
    W = _int(f"data[{i}].meta.width", meta.get("width"), 1)
    H = _int(f"data[{i}].meta.height", meta.get("height"), 1)
    category: dict[int, str] = {}
    for j, obj in enumerate(v.get("objects") or []):
        where = f"data[{i}].objects[{j}]"
        if not isinstance(obj, dict) or not isinstance(obj.get("category"), str):
            raise Invalid(where, f"expected {{object_id, category}}, got {obj!r}")
        oid = _int(f"{where}.object_id", obj.get("object_id"), 1)
        if oid in category:
            raise Invalid(f"{where}.object_id", f"duplicate object id {oid}")
        category[oid] = obj["category"]
    frames = list_frames(_folder(args.frames, "frames", vid))
    masks = list_frames(_folder(args.masks, "masks", vid))
    if len(frames) != T or len(masks) != T:
        raise Invalid(f"data[{i}].meta.num_frames", f"num_frames is {T} but the frame folder holds {len(frames)} "
                                                   f"images and the mask folder {len(masks)}")
    keep = list(range(0, T, args.stride))
    tracks: dict[int, TrackOut] = {}
    for new, t in enumerate(keep):
        arr = _read_mask(masks[t], W, H)
        ids = [int(x) for x in np.unique(arr) if x != 0]
        unknown = [x for x in ids if x not in category]
        if unknown:
            report.note("mask ids not listed in the video's objects (ignored)", len(unknown))
        for oid in ids:
            if oid not in category:
                continue
            m = arr == oid
            tr = tracks.setdefault(oid, TrackOut(str(oid), category[oid], [], [], []))
            tr.frames.append(new)
            tr.boxes.append(mask_box(m))
            tr.masks.append(rle_encode(m))
    new_index = {t: k for k, t in enumerate(keep)}
    facts = []
    for j, rel in enumerate(v.get("relations") or []):
        where = f"data[{i}].relations[{j}]"
        if not isinstance(rel, list) or len(rel) != 4 or not isinstance(rel[2], str) or not isinstance(rel[3], list):
            raise Invalid(where, f"expected [subject_id, object_id, predicate, [[start, end], ...]], got {rel!r}")
        s, o = _int(f"{where}[0]", rel[0], 1), _int(f"{where}[1]", rel[1], 1)
        for k, oid in ((0, s), (1, o)):
            if oid not in category:
                raise Invalid(f"{where}[{k}]", f"names object {oid}, which is not in the video's objects "
                                               f"({', '.join(map(str, sorted(category)))})")
        fr: list[int] = []
        for q, span in enumerate(rel[3]):
            if (not isinstance(span, list) or len(span) != 2 or not all(isinstance(x, int) for x in span)
                    or not 0 <= span[0] <= span[1] < T):
                raise Invalid(f"{where}[3][{q}]", f"expected [start, end] with 0 <= start <= end < {T} "
                                                  f"(inclusive), got {span!r}")
            fr += [new_index[t] for t in range(span[0], span[1] + 1) if t in new_index]
        if s in tracks and o in tracks:
            facts.append(FactOut(rel[2], str(s), str(o), sorted(set(fr))))
        elif fr:
            report.note("relations whose subject or object has no mask (not written)")
    if args.caption == "summary":
        caption = v.get("summary") if isinstance(v.get("summary"), str) else ""
    else:
        caps = v.get("captions") or []
        if not isinstance(caps, list) or not all(isinstance(c, dict) and isinstance(c.get("description"), str)
                                                 for c in caps):
            raise Invalid(f"data[{i}].captions", "expected [{span, description}, ...]")
        caps = sorted(caps, key=lambda c: (c.get("span") or [0])[0])
        caption = " ".join(c["description"].strip() for c in caps if c["description"].strip())
    return VideoOut(vid, [frames[t] for t in keep], len(keep), W, H, list(tracks.values()), facts, caption,
                    split_of.get(vid, "train"))


def run(args: argparse.Namespace, report: Reporter) -> DatasetWriter:
    if args.stride < 1:
        raise report.fail("--stride", "must be at least 1")
    data = read_json(args.pvsg, "pvsg.json")
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise report.fail(args.pvsg, "expected an object with a 'data' list of videos")
    split_of: dict[str, str] = {}
    for source, parts in (data.get("split") or {}).items():
        for name, ids in (parts or {}).items() if isinstance(parts, dict) else ():
            for vid in ids or ():
                split_of[str(vid)] = {"val": "val", "test": "test"}.get(name, "train")
    classes = data.get("objects") or {}
    categories = [c for part in ("thing", "stuff") for c in (classes.get(part) or [])] \
        if isinstance(classes, dict) else []
    predicates = [p for p in data.get("relations") or [] if isinstance(p, str)]
    writer = DatasetWriter(args.out, copy_frames=args.copy_frames, overwrite=args.overwrite,
                           categories=categories, predicates=predicates)
    wanted = set(args.videos or ())
    found = set()
    for i, v in enumerate(data["data"]):
        vid = v.get("video_id") if isinstance(v, dict) else None
        if wanted and vid not in wanted:
            continue
        found.add(vid)
        with report.record(args.pvsg, str(vid or f"data[{i}]")):
            writer.add(convert_video(v, i, args, split_of, report), report)
    missing = wanted - found
    if missing:
        raise report.fail(args.pvsg, f"no video with id {', '.join(sorted(missing))} (--videos)")
    return writer
