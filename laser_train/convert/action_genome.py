"""Action Genome (Ji et al., 2020): per-frame person boxes and object boxes with relationships, as pickles.

``person_bbox.pkl``: ``{"<video>.mp4/<frame>.png": {"bbox": float array [k, 4]
(x1, y1, x2, y2; k = 0 when no person), "bbox_size": (W, H), ...}}``.
``object_bbox_and_relationship.pkl``: ``{same key: [{"class", "bbox": (x, y,
w, h) or None, "visible", "attention_relationship", "spatial_relationship",
"contacting_relationship", "metadata": {"tag", "set": "train"|"test"}}]}``.
``object_classes.txt`` / ``relationship_classes.txt`` list the classes (the
files spell some names without separators, ``lookingat``, while the pickles say
``looking_at``; names are matched ignoring separators and the pickles' spelling
is kept). Only the annotated frames are converted (Action Genome's frame
dumps hold exactly those); every relationship has the person as subject.
The pickles are read whole (pickle cannot be streamed) with a restricted
unpickler; videos are then converted one at a time.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np

from laser_train.convert.common import (
    DatasetWriter, FactOut, Invalid, Reporter, TrackOut, VideoOut, check_box, read_text, safe_load_pickle,
    template_caption,
)

NAME = "action-genome"
SUMMARY = "Action Genome: person_bbox.pkl + object_bbox_and_relationship.pkl + class lists + frame dumps"
DESCRIPTION = """\
Convert Action Genome: annotations/person_bbox.pkl, annotations/object_bbox_and_relationship.pkl,
annotations/object_classes.txt and annotations/relationship_classes.txt, with the annotated frames dumped by
Action Genome's tools (frames/<video>.mp4/<frame>.png). One track for the person and one per object class
of the video; the attention, spatial and contacting relationships (subject: the person) are the ground-truth
scene graphs; template captions are made from them (--no-template-captions to skip). The split is the
annotation's metadata "set" (train/test). Pickles are loaded with a restricted unpickler (plain containers
and numpy arrays only)."""
EXAMPLE = """\
example:
  python -m laser_train convert action-genome --annotations ActionGenome/annotations \\
      --frames ActionGenome/frames --out data/ag"""

RELATION_KINDS = ("attention_relationship", "spatial_relationship", "contacting_relationship")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--annotations", required=True, type=Path, metavar="DIR",
                   help="folder with person_bbox.pkl, object_bbox_and_relationship.pkl and the class lists")
    p.add_argument("--frames", required=True, type=Path, metavar="DIR",
                   help="frame dumps: DIR/<video>.mp4/<frame>.png")
    p.add_argument("--videos", nargs="*", metavar="ID", help="convert only these videos (e.g. 001YG.mp4)")
    p.add_argument("--no-template-captions", action="store_true",
                   help="do not generate captions from the relationships")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _class_list(path: Path, report: Reporter) -> dict[str, str]:
    lines = read_text(path, "class list").split("\n")
    return {_norm(x.strip()): x.strip() for x in lines if x.strip()}


def _frame_no(key: str) -> tuple:
    return tuple(int(x) if x.isdigit() else x for x in re.split(r"(\d+)", key))


class _Names:
    """Maps the pickles' class names onto the class lists (ignoring separators); remembers their spelling."""

    def __init__(self, declared: dict[str, str], kind: str):
        self.declared, self.kind, self.seen = declared, kind, {}

    def __call__(self, where: str, name: Any) -> str:
        if not isinstance(name, str) or not name:
            raise Invalid(where, f"expected a {self.kind} name, got {name!r}")
        n = _norm(name)
        if n not in self.declared:
            raise Invalid(where, f"unknown {self.kind} {name!r} (not in the class list)")
        return self.seen.setdefault(n, name)

    def vocabulary(self) -> list[str]:
        return [self.seen.get(n, d) for n, d in self.declared.items()]


def convert_video(vid: str, keys: list[str], persons: dict, objects: dict, frames_dir: Path,
                  cats: _Names, rels: _Names, template: bool) -> VideoOut:
    folder = frames_dir / vid
    if not folder.is_dir():
        raise Invalid("frames", f"missing frame folder {folder}")
    images, size = [], None
    tracks: dict[str, TrackOut] = {}
    facts: dict[tuple[str, str], FactOut] = {}
    split = None
    for t, key in enumerate(keys):
        image = frames_dir / key
        if not image.is_file():
            raise Invalid("frames", f"missing frame {image} (annotated as {key!r})")
        images.append(image)
        pw = f"person_bbox.pkl[{key!r}]"
        p = persons.get(key)
        if not isinstance(p, dict):
            raise Invalid(pw, "missing: every annotated frame needs a person entry")
        bs = p.get("bbox_size")
        if (not isinstance(bs, (tuple, list)) or len(bs) != 2
                or not all(isinstance(x, (int, np.integer)) and x > 0 for x in bs)):
            raise Invalid(f"{pw}.bbox_size", f"expected (width, height), got {bs!r}")
        bs = (int(bs[0]), int(bs[1]))
        if size is not None and bs != size:
            raise Invalid(f"{pw}.bbox_size", f"{bs} differs from the video's earlier frames {size}")
        size = bs
        W, H = size
        box = p.get("bbox")
        arr = np.asarray(box, dtype=float) if isinstance(box, (np.ndarray, list, tuple)) else None
        if arr is None or arr.ndim != 2 or arr.shape[1] != 4:
            raise Invalid(f"{pw}.bbox", f"expected an array [k, 4] of x1 y1 x2 y2, got {box!r}")
        if len(arr):
            tr = tracks.setdefault("person", TrackOut("person", cats("person", "person"), [], []))
            tr.frames.append(t)
            tr.boxes.append(check_box(f"{pw}.bbox", arr[0].tolist(), W, H))
        ow = f"object_bbox_and_relationship.pkl[{key!r}]"
        entries = objects.get(key)
        if not isinstance(entries, list):
            raise Invalid(ow, f"expected a list of objects, got {type(entries).__name__}")
        for j, o in enumerate(entries):
            where = f"{ow}[{j}]"
            if not isinstance(o, dict):
                raise Invalid(where, f"expected an object, got {o!r}")
            cls = cats(f"{where}.class", o.get("class"))
            meta = o.get("metadata") or {}
            if split is None and isinstance(meta, dict) and meta.get("set") in ("train", "test"):
                split = meta["set"]
            if not o.get("visible", True) or o.get("bbox") is None:
                continue
            b = o["bbox"]
            if not isinstance(b, (tuple, list, np.ndarray)) or len(b) != 4:
                raise Invalid(f"{where}.bbox", f"expected (x, y, w, h), got {b!r}")
            x, y, w, h = (float(v) for v in b)
            box = check_box(f"{where}.bbox", [x, y, x + w, y + h], W, H)
            tr = tracks.setdefault(cls, TrackOut(cls, cls, [], []))
            if tr.frames and tr.frames[-1] == t:
                raise Invalid(f"{where}.class", f"two {cls!r} objects in one frame (Action Genome has one per class)")
            tr.frames.append(t)
            tr.boxes.append(box)
            for kind in RELATION_KINDS:
                names = o.get(kind) or []
                if not isinstance(names, (list, tuple)):
                    raise Invalid(f"{where}.{kind}", f"expected a list of names, got {names!r}")
                for q, r in enumerate(names):
                    pred = rels(f"{where}.{kind}[{q}]", r)
                    facts.setdefault((pred, cls), FactOut(pred, "person", cls, [])).frames.append(t)
    if "person" not in tracks:
        raise Invalid("person_bbox.pkl", "no frame of this video has a person box")
    W, H = size
    out = [f for f in facts.values()]
    category = {tid: tr.category for tid, tr in tracks.items()}
    caption = template_caption(out, category, copula="is") if template else ""
    return VideoOut(vid.removesuffix(".mp4"), images, len(images), W, H, list(tracks.values()), out, caption,
                    split or "train")


def run(args: argparse.Namespace, report: Reporter) -> DatasetWriter:
    ann = args.annotations
    if not ann.is_dir():
        raise report.fail(ann, "annotation folder not found (--annotations)")
    if not args.frames.is_dir():
        raise report.fail(args.frames, "frames folder not found (--frames)")
    cats = _Names(_class_list(ann / "object_classes.txt", report), "object class")
    rels = _Names(_class_list(ann / "relationship_classes.txt", report), "relationship")
    if "person" not in cats.declared:
        raise report.fail(ann / "object_classes.txt", "the class list has no 'person'")
    persons = safe_load_pickle(ann / "person_bbox.pkl", "person_bbox.pkl")
    objects = safe_load_pickle(ann / "object_bbox_and_relationship.pkl", "object_bbox_and_relationship.pkl")
    for name, d in (("person_bbox.pkl", persons), ("object_bbox_and_relationship.pkl", objects)):
        if not isinstance(d, dict):
            raise report.fail(ann / name, f"expected a dict keyed by '<video>.mp4/<frame>.png', "
                                          f"got {type(d).__name__}")
    by_video: dict[str, list[str]] = {}
    for key in objects:
        if not isinstance(key, str) or "/" not in key:
            raise report.fail(ann / "object_bbox_and_relationship.pkl",
                              f"key {key!r} is not '<video>.mp4/<frame>.png'")
        by_video.setdefault(key.split("/", 1)[0], []).append(key)
    wanted = set(args.videos or ())
    missing = wanted - set(by_video)
    if missing:
        raise report.fail(ann / "object_bbox_and_relationship.pkl", f"no video {', '.join(sorted(missing))}")
    writer = DatasetWriter(args.out, copy_frames=args.copy_frames, overwrite=args.overwrite)
    for vid in sorted(by_video):
        if wanted and vid not in wanted:
            continue
        with report.record(ann / "object_bbox_and_relationship.pkl", vid):
            keys = sorted(by_video[vid], key=_frame_no)
            writer.add(convert_video(vid, keys, persons, objects, args.frames, cats, rels,
                                     not args.no_template_captions), report)
    writer.categories = dict.fromkeys(cats.vocabulary())
    writer.predicates = dict.fromkeys(rels.vocabulary())
    return writer
