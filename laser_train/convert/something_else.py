"""Something-Something v2 labels + Something-Else boxes (Materzynska et al., 2020).

Labels (``something-something-v2-train.json`` / ``-validation.json``): a list of
``{"id", "label", "template", "placeholders"}``; ``label`` is the caption
("Holding potato next to vicks vaporub bottle"). Boxes (Something-Else's
``bounding_box_smthsmth_part*.json``): ``{video_id: [frame, ...]}`` with frame
``{"name": "<video_id>/<frame>.jpg", "labels": [{"box2d": {"x1", "y1", "x2",
"y2"}, "category": "potato", "standard_category": "0000" | "0001" | "hand",
"gt_annotation": "object 0000" | "hand 0000"}]}``, on frames extracted at 12 fps.
One track per ``gt_annotation`` (else ``standard_category``); its category is
``hand`` for hands and the box's ``category`` noun otherwise (lower-cased, a
leading article dropped). The dataset has no
relations: there is no ground-truth scene graph, and the predicates of the
vocabulary are a fixed default set (``--predicates FILE.stl`` replaces them).
The JSON files are parsed whole (JSON cannot be streamed without a third-party
parser); the output is written one video at a time.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from laser_train.convert.common import (
    ConvertError, DatasetWriter, Invalid, Reporter, TrackOut, VideoOut, check_box, list_frames, read_json,
    split_from_name,
)

NAME = "something-else"
SUMMARY = "Something-Something v2 labels + Something-Else box annotations + frame folders"
DESCRIPTION = """\
Convert Something-Something v2 videos with Something-Else boxes: --labels (the SSv2 label file, a list of
{id, label, template, placeholders}; the label is the caption), --annotations (Something-Else box files,
{video_id: [{name: "<id>/<frame>.jpg", labels: [{box2d: {x1, y1, x2, y2}, category, standard_category,
gt_annotation}]}]}; give several) and --frames (frame folders DIR/<id>/0001.jpg ... extracted at 12 fps, as
the boxes were annotated; or DIR/<id>.webm with decord installed). Videos in the label file without boxes are
reported. There is no ground-truth scene graph; the vocabulary's predicates are a default set for
hand-object manipulation (--predicates FILE.stl gives your own)."""
EXAMPLE = """\
example:
  python -m laser_train convert something-else --labels labels/something-something-v2-validation.json \\
      --annotations bounding_box_smthsmth_part1.json --frames 20bn-frames --out data/sth-else
  stlspec from-captions data/sth-else/captions.jsonl -o data/sth-else/specs.stl \\
      --vocab data/sth-else/vocabulary.stl"""

#: Default predicates (hand-object manipulation); replace with --predicates FILE.stl.
DEFAULT_UNARY = ("moving", "falling", "open", "closed")
DEFAULT_BINARY = ("holding", "touching", "in", "on", "above", "below", "next to", "behind", "in front of",
                  "covering")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", required=True, type=Path, nargs="+", metavar="L.json",
                   help="SSv2 label file(s) (lists of videos); the split comes from each file's name")
    p.add_argument("--annotations", required=True, type=Path, nargs="+", metavar="A.json",
                   help="Something-Else box annotation file(s)")
    p.add_argument("--frames", required=True, type=Path, metavar="DIR",
                   help="frame folders DIR/<id>/ (12 fps), or videos DIR/<id>.webm (needs decord)")
    p.add_argument("--split", choices=("train", "val", "test"),
                   help="split of every video (default: from each label file's name, else train)")
    p.add_argument("--predicates", type=Path, metavar="FILE.stl",
                   help="unary/binary declarations to use instead of the default predicates")
    p.add_argument("--limit", type=int, metavar="N", help="convert only the first N videos of the label file")


def _size_of(frames: list[Path]) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(frames[0]) as im:
            return im.width, im.height
    except OSError as exc:
        raise Invalid("frames", f"cannot read {frames[0]}: {exc}") from None


def _video_file(path: Path) -> tuple[int, int, int]:
    try:
        import decord  # type: ignore[import-not-found]
    except ImportError:
        raise Invalid("frames", f"{path} is a video file: extract frames to {path.with_suffix('')}/ "
                                f"or install decord") from None
    vr = decord.VideoReader(str(path))
    h, w = vr[0].shape[:2]
    return len(vr), int(w), int(h)


def convert_video(entry: dict, i: int, boxes: Any, frames_dir: Path, split: str) -> VideoOut:
    vid = str(entry["id"])
    label = entry.get("label")
    if not isinstance(label, str) or not label.strip():
        raise Invalid(f"[{i}].label", f"expected the caption text, got {label!r}")
    if not isinstance(boxes, list) or not boxes:
        raise Invalid("annotations", f"expected a non-empty list of frames for video {vid}, got {boxes!r}")
    folder = frames_dir / vid
    video_file = next((frames_dir / (vid + s) for s in (".webm", ".mp4") if (frames_dir / (vid + s)).is_file()),
                      None)
    if folder.is_dir():
        images = list_frames(folder)
        if not images:
            raise Invalid("frames", f"the frame folder {folder} holds no images")
        index = {p.name: k for k, p in enumerate(images)}
        T, (W, H) = len(images), _size_of(images)
        source: Path | list[Path] = images
    elif video_file is not None:
        T, W, H = _video_file(video_file)
        index = None
        source = video_file
    else:
        raise Invalid("frames", f"missing frame folder {folder} (or video {vid}.webm)")
    tracks: dict[str, TrackOut] = {}
    for j, fr in enumerate(boxes):
        where = f"annotations[{vid!r}][{j}]"
        if not isinstance(fr, dict) or not isinstance(fr.get("name"), str) or not isinstance(fr.get("labels"), list):
            raise Invalid(where, f"expected {{name, labels}}, got {fr!r}")
        name = fr["name"].rsplit("/", 1)[-1]
        if index is not None:
            if name not in index:
                raise Invalid(f"{where}.name", f"frame {fr['name']!r} is not in the frame folder {folder}")
            t = index[name]
        else:
            stem = name.rsplit(".", 1)[0]
            if not stem.isdigit() or not 1 <= int(stem) <= T:
                raise Invalid(f"{where}.name", f"frame {fr['name']!r}: expected a number 1..{T}")
            t = int(stem) - 1
        for q, lab in enumerate(fr["labels"]):
            lw = f"{where}.labels[{q}]"
            if not isinstance(lab, dict):
                raise Invalid(lw, f"expected an object, got {lab!r}")
            b = lab.get("box2d")
            if not isinstance(b, dict) or not all(k in b for k in ("x1", "y1", "x2", "y2")):
                raise Invalid(f"{lw}.box2d", f"expected {{x1, y1, x2, y2}}, got {b!r}")
            box = check_box(f"{lw}.box2d", [b["x1"], b["y1"], b["x2"], b["y2"]], W, H)
            std = lab.get("standard_category")
            tid = lab.get("gt_annotation") or std
            if not isinstance(tid, str) or not tid:
                raise Invalid(f"{lw}.standard_category", f"expected '0000', '0001', ... or 'hand', got {std!r}")
            if std == "hand" or tid.startswith("hand"):
                category = "hand"
            else:
                category = lab.get("category")
                if not isinstance(category, str) or not category.strip():
                    raise Invalid(f"{lw}.category", f"expected the object's name, got {category!r}")
                category = re.sub(r"^(a|an|the|some)\s+", "", " ".join(category.lower().split())) or category
            tr = tracks.setdefault(tid, TrackOut(tid, category, [], []))
            if tr.category != category:
                raise Invalid(f"{lw}.category", f"track {tid!r} is {tr.category!r} in earlier frames, "
                                                f"{category!r} here")
            if t in tr.frames:
                raise Invalid(f"{lw}.gt_annotation", f"track {tid!r} has two boxes in frame {name}")
            tr.frames.append(t)
            tr.boxes.append(box)
    for tr in tracks.values():
        order = sorted(range(len(tr.frames)), key=tr.frames.__getitem__)
        tr.frames, tr.boxes = [tr.frames[k] for k in order], [tr.boxes[k] for k in order]
    if not tracks:
        raise Invalid("annotations", f"video {vid} has no boxes")
    return VideoOut(vid, source, T, W, H, list(tracks.values()), None, label.strip(), split)


def _predicates(path: Path | None) -> tuple[list[str], list[str]]:
    if path is None:
        return list(DEFAULT_UNARY), list(DEFAULT_BINARY)
    import stlspec

    try:
        voc = stlspec.compile_file(str(path)).vocabulary
    except (OSError, stlspec.StlError) as exc:
        raise ConvertError(f"{path}: cannot read the predicates (--predicates): {exc}") from None
    return [u[0] for u in voc.unary], [b[0] for b in voc.binary]


def run(args: argparse.Namespace, report: Reporter) -> DatasetWriter:
    label_files = []
    for lf in args.labels:
        labels = read_json(lf, "label file")
        if not isinstance(labels, list):
            raise report.fail(lf, "expected a list of {id, label, template, placeholders}")
        label_files.append((lf, labels))
    if not args.frames.is_dir():
        raise report.fail(args.frames, "frames folder not found (--frames)")
    boxes: dict[str, Any] = {}
    for a in args.annotations:
        data = read_json(a, "box annotation file")
        if not isinstance(data, dict):
            raise report.fail(a, "expected {video_id: [frames]}")
        boxes.update(data)
    unary, binary = _predicates(args.predicates)
    writer = DatasetWriter(args.out, copy_frames=args.copy_frames, overwrite=args.overwrite,
                           categories=["hand"], predicates=binary, unary=unary)
    for lf, labels in label_files:
        split = args.split or split_from_name(lf.name)
        for i, entry in enumerate(labels[: args.limit] if args.limit else labels):
            vid = entry.get("id") if isinstance(entry, dict) else None
            with report.record(lf, str(vid if vid is not None else f"[{i}]")):
                if not isinstance(entry, dict) or not isinstance(vid, (str, int)) or isinstance(vid, bool):
                    raise Invalid(f"[{i}].id", f"expected an entry with an id, got {entry!r}")
                if str(vid) not in boxes:
                    raise Invalid("annotations", f"no boxes for video {vid} in "
                                                 f"{', '.join(a.name for a in args.annotations)}")
                writer.add(convert_video(entry, i, boxes[str(vid)], args.frames, split), report)
    return writer
