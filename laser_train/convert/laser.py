"""LASER's own data: preprocessed spec records (JSONL) + per-video mask pickles + frame folders.

The spec records (``caption`` = the video id, ``prog`` = the spec as a
constructor term; ``shared/reference/laser-format.md``) go through
:mod:`stlspec.laser_import` (the ``stlspec import-laser`` command) into
``specs.stl``, so the manifest points at ready specs and no ``from-captions``
step is needed. Each video's masks are a pickle ``{frame_id: {obj_id: bool
array [1, H, W]}}`` (``MASKS/<video_id>.pkl`` or ``MASKS/<video_id>_masks.pkl``),
loaded with the restricted unpickler (every file through :mod:`laser_train.data.files`: regular files
only, size caps, UTF-8 with the first bad byte's position; the records' JSON and ``prog`` with bounded nesting
and number sizes, as :mod:`stlspec.laser_import` parses them); tracks are the objects' masks (boxes are
their tight boxes, masks kept as COCO RLE). The pickles carry no categories, so
there is no ground-truth scene graph.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from laser_train.convert.common import (
    ConvertError, DatasetWriter, Invalid, Reporter, TrackOut, VideoOut, list_frames, mask_box, read_text,
    rle_encode, safe_load_pickle, split_from_name,
)

NAME = "laser"
SUMMARY = "LASER's preprocessed spec records (import-laser) + mask pickles {frame: {obj: bool[1,H,W]}}"
DESCRIPTION = """\
Convert LASER's preprocessed data: --specs, the JSONL spec records (`caption` = video id, `prog` = the spec;
converted exactly as `stlspec import-laser` does, Until-chains become `then` chains), --masks, a folder of
per-video mask pickles {frame_id: {object_id: bool array [1, H, W]}} named <video_id>.pkl or
<video_id>_masks.pkl, and --frames, the frame folders <video_id>/. Writes specs.stl directly (no from-captions
step); the vocabulary is the categories and predicates the records use. No ground-truth scene graphs (the
pickles have no categories)."""
EXAMPLE = """\
example:
  python -m laser_train convert laser --specs laser/openpvsg_specs.jsonl --masks laser/masks \\
      --frames laser/frames --out data/laser"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--specs", required=True, type=Path, nargs="+", metavar="RECORDS.jsonl",
                   help="LASER spec record file(s); the split comes from each file's name (train/val/test)")
    p.add_argument("--masks", required=True, type=Path, metavar="DIR", help="mask pickles <video_id>[_masks].pkl")
    p.add_argument("--frames", required=True, type=Path, metavar="DIR", help="frame folders DIR/<video_id>/")
    p.add_argument("--split", choices=("train", "val", "test"),
                   help="split of every video (default: from each spec file's name, else train)")


def _mask_file(masks: Path, vid: str) -> Path:
    for name in (f"{vid}.pkl", f"{vid}_masks.pkl", f"{vid}_mask.pkl"):
        if (masks / name).is_file():
            return masks / name
    raise Invalid("masks", f"no mask pickle for this video in {masks} (expected {vid}.pkl or {vid}_masks.pkl)")


def convert_video(vid: str, masks_dir: Path, frames_dir: Path, split: str) -> VideoOut:
    folder = frames_dir / vid
    if not folder.is_dir():
        raise Invalid("frames", f"missing frame folder {folder}")
    images = list_frames(folder)
    if not images:
        raise Invalid("frames", f"the frame folder {folder} holds no images")
    from PIL import Image

    with Image.open(images[0]) as im:
        W, H = im.width, im.height
    path = _mask_file(masks_dir, vid)
    try:
        data = safe_load_pickle(path, "mask pickle")
    except ConvertError as exc:
        raise Invalid("masks", str(exc).split(": ", 1)[-1], file=path) from None
    if not isinstance(data, dict):
        raise Invalid("masks", f"expected {{frame_id: {{object_id: mask}}}}, got {type(data).__name__}", file=path)
    T = len(images)
    tracks: dict[str, TrackOut] = {}
    for fid in sorted(data, key=lambda x: (str(type(x)), x)):
        if not isinstance(fid, (int, np.integer)) or isinstance(fid, bool) or not 0 <= int(fid) < T:
            raise Invalid(f"[{fid!r}]", f"frame id must be an integer in [0, {T}) (the frame folder holds {T} "
                                        f"images)", file=path)
        objs = data[fid]
        if not isinstance(objs, dict):
            raise Invalid(f"[{fid}]", f"expected {{object_id: mask}}, got {type(objs).__name__}", file=path)
        for oid, m in objs.items():
            where = f"[{fid}][{oid!r}]"
            if not isinstance(m, np.ndarray) or m.dtype != bool or m.shape != (1, H, W):
                shape = getattr(m, "shape", None)
                raise Invalid(where, f"expected a bool array [1, {H}, {W}], got {type(m).__name__} "
                                     f"{getattr(m, 'dtype', '')} {shape}", file=path)
            box = mask_box(m[0])
            if box is None:
                continue
            tr = tracks.setdefault(str(oid), TrackOut(str(oid), None, [], [], []))
            tr.frames.append(int(fid))
            tr.boxes.append(box)
            tr.masks.append(rle_encode(m[0]))
    if not tracks:
        raise Invalid("masks", "no object has a non-empty mask", file=path)
    return VideoOut(vid, images, T, W, H, list(tracks.values()), None, "", split)


def _split_declarations(text: str) -> tuple[str, str]:
    """import-laser's output → (declarations, the rest with an include of vocabulary.stl instead)."""
    decl = re.compile(r"^(category|unary|binary)\s")
    lines = text.splitlines()
    decls = [ln for ln in lines if decl.match(ln)]
    rest, placed = [], False
    for ln in lines:
        if decl.match(ln):
            if not placed:
                rest.append('include "vocabulary.stl"')
                placed = True
            continue
        rest.append(ln)
    return "\n".join(decls) + "\n", "\n".join(rest) + "\n"


def run(args: argparse.Namespace, report: Reporter) -> DatasetWriter:
    from stlspec.laser_import import MAX_RECORDS_BYTES, import_laser_lines

    lines: list[str] = []
    origin: list[tuple[Path, int]] = []  # per concatenated line: (file, line number in it)
    for sf in args.specs:
        # As `stlspec import-laser` reads them: a regular UTF-8 file of at most MAX_RECORDS_BYTES, split at
        # "\n" only (str.splitlines would also split at U+2028 inside a JSON string).
        text = read_text(sf, "LASER spec records file", MAX_RECORDS_BYTES).split("\n")
        if text and not text[-1]:
            text.pop()
        lines += text
        origin += [(sf, n) for n in range(1, len(text) + 1)]
    for d, opt in ((args.masks, "--masks"), (args.frames, "--frames")):
        if not d.is_dir():
            raise report.fail(d, f"folder not found ({opt})")
    result = import_laser_lines(lines, source=str(args.specs[0]))

    def where(line: int) -> str:
        f, n = origin[line - 1]
        return f"{f}:{n}"

    for fail in result.failures:
        with report.record(where(fail.line), fail.record_id):
            raise Invalid("prog", fail.reason)
    writer = DatasetWriter(args.out, copy_frames=args.copy_frames, overwrite=args.overwrite, with_captions=False)
    converted = set()
    for line, rid, name in result.converted:
        with report.record(where(line), rid):
            split = args.split or split_from_name(origin[line - 1][0].name)
            writer.add(convert_video(rid, args.masks, args.frames, split), report, spec_name=name)
            converted.add(name)
    # keep only the specs of videos that were converted, so specs.stl and the manifest agree
    kept = [r for r in result.converted if r[2] in converted]
    if kept != result.converted:
        keep = {ln for ln, _, _ in kept}
        result = import_laser_lines([ln_ if i in keep else "" for i, ln_ in enumerate(lines, 1)],
                                    source=str(args.specs[0]))
    decls, specs = _split_declarations(result.text)
    writer.vocabulary_override = decls
    (Path(args.out) / "specs.stl").write_text(specs, encoding="utf-8")
    return writer
