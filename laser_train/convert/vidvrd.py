"""ImageNet-VidVRD (Shang et al., 2017): one JSON file per video.

Schema (per file): ``video_id``, ``frame_count``, ``fps``, ``width``, ``height``,
``subject/objects`` (``[{"tid", "category"}]``), ``trajectories`` (one list per
frame of ``{"tid", "bbox": {"xmin", "ymin", "xmax", "ymax"}, ...}``) and
``relation_instances`` (``{"subject_tid", "object_tid", "predicate",
"begin_fid", "end_fid"}``, ``end_fid`` exclusive). VidOR (:mod:`.vidor`) uses the
same schema; this module holds the shared conversion.

Frames: ``--frames DIR`` holds, per video, a folder of extracted frames
(``DIR/<video_id>/``, one image per annotated frame) or the video file
(``DIR/<video_id>.mp4``; VidOR: ``DIR/<video_path>``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from laser_train.data.format import VIDEO_SUFFIXES
from laser_train.convert.common import (
    DatasetWriter, FactOut, Invalid, Reporter, TrackOut, VideoOut, check_box, list_frames, read_json,
    split_from_name, template_caption,
)

NAME = "vidvrd"
SUMMARY = "ImageNet-VidVRD: one JSON per video (trajectories, relation_instances) + videos or frame folders"
DESCRIPTION = """\
Convert ImageNet-VidVRD annotations (one JSON file per video: `subject/objects`, per-frame `trajectories`
with `tid` and `bbox`, `relation_instances` with `begin_fid`/`end_fid`, end exclusive).

Tracks are the trajectories (one per tid), the ground-truth scene graphs are the relation instances, and
each video gets a template caption made from its first relations (e.g. "A dog chase a frisbee, then ...";
--no-template-captions leaves captions.jsonl for you to write). The split comes from the annotation folder
(train/, test/) unless --split is given."""
EXAMPLE = """\
example:
  python -m laser_train convert vidvrd --annotations vidvrd-dataset/train --frames vidvrd-dataset/frames \\
      --out data/vidvrd --stride 10
  stlspec from-captions data/vidvrd/captions.jsonl -o data/vidvrd/specs.stl --vocab data/vidvrd/vocabulary.stl"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--annotations", required=True, type=Path, metavar="PATH",
                   help="a folder searched recursively for the per-video .json files, or one such file")
    p.add_argument("--frames", required=True, type=Path, metavar="DIR",
                   help="per video: a folder of frames DIR/<video_id>/ or a video file DIR/<video_id>.mp4")
    p.add_argument("--stride", type=int, default=1, metavar="N",
                   help="keep every N-th frame (frame folders only; default 1 = all)")
    p.add_argument("--split", choices=("train", "val", "test"),
                   help="split of every video (default: from the annotation folder name)")
    p.add_argument("--no-template-captions", action="store_true",
                   help="do not generate captions from the relation instances")


def annotation_files(path: Path, report: Reporter) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise report.fail(path, "annotation folder not found (--annotations)")
    files = sorted(path.rglob("*.json"))
    if not files:
        raise report.fail(path, "no .json annotation files in this folder")
    return files


def _int(where: str, value: Any, low: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise Invalid(where, f"expected an integer >= {low}, got {value!r}")
    return value


def convert_video(data: Any, frames_source: Path | list[Path], stride: int, split: str,
                  template: bool) -> VideoOut:
    """One VidVRD/VidOR annotation (already parsed) as a :class:`VideoOut`."""
    if not isinstance(data, dict):
        raise Invalid("(top level)", f"expected a JSON object, got {type(data).__name__}")
    for key in ("video_id", "frame_count", "width", "height", "subject/objects", "trajectories",
                "relation_instances"):
        if key not in data:
            raise Invalid(key, "missing required field")
    T = _int("frame_count", data["frame_count"], 1)
    W, H = _int("width", data["width"], 1), _int("height", data["height"], 1)
    keep = list(range(0, T, stride))
    new_index = {t: i for i, t in enumerate(keep)}
    if isinstance(frames_source, list):
        if len(frames_source) < T:
            raise Invalid("frame_count", f"the video has {T} frames but its frame folder "
                                         f"{frames_source[0].parent if frames_source else ''} holds "
                                         f"{len(frames_source)} images")
        frames_source = [frames_source[t] for t in keep]
    category: dict[str, str] = {}
    objects = data["subject/objects"]
    if not isinstance(objects, list):
        raise Invalid("subject/objects", "expected a list of {tid, category}")
    for i, obj in enumerate(objects):
        where = f"subject/objects[{i}]"
        if not isinstance(obj, dict) or not isinstance(obj.get("category"), str) or not obj["category"]:
            raise Invalid(where, f"expected {{tid, category}} with a category name, got {obj!r}")
        tid = str(_int(f"{where}.tid", obj.get("tid")))
        if tid in category:
            raise Invalid(f"{where}.tid", f"duplicate tid {tid}")
        category[tid] = obj["category"]
    traj = data["trajectories"]
    if not isinstance(traj, list):
        raise Invalid("trajectories", "expected one list of boxes per frame")
    if len(traj) > T:
        raise Invalid("trajectories", f"{len(traj)} frames of boxes but frame_count is {T}")
    boxes: dict[str, tuple[list[int], list[list[float]]]] = {tid: ([], []) for tid in category}
    for t, entries in enumerate(traj):
        if not isinstance(entries, list):
            raise Invalid(f"trajectories[{t}]", "expected a list of {tid, bbox}")
        for j, e in enumerate(entries):
            where = f"trajectories[{t}][{j}]"
            if not isinstance(e, dict):
                raise Invalid(where, f"expected {{tid, bbox}}, got {e!r}")
            tid = str(_int(f"{where}.tid", e.get("tid")))
            if tid not in category:
                raise Invalid(f"{where}.tid", f"tid {tid} is not listed in subject/objects")
            b = e.get("bbox")
            if not isinstance(b, dict) or not all(k in b for k in ("xmin", "ymin", "xmax", "ymax")):
                raise Invalid(f"{where}.bbox", f"expected {{xmin, ymin, xmax, ymax}}, got {b!r}")
            box = check_box(f"{where}.bbox", [b["xmin"], b["ymin"], b["xmax"], b["ymax"]], W, H)
            if t in new_index:
                fr, bx = boxes[tid]
                if fr and fr[-1] == new_index[t]:
                    raise Invalid(f"{where}.tid", f"tid {tid} has two boxes at frame {t}")
                fr.append(new_index[t])
                bx.append(box)
    tracks = [TrackOut(tid, category[tid], fr, bx) for tid, (fr, bx) in boxes.items() if fr]
    facts = []
    rels = data["relation_instances"]
    if not isinstance(rels, list):
        raise Invalid("relation_instances", "expected a list")
    for i, r in enumerate(rels):
        where = f"relation_instances[{i}]"
        if not isinstance(r, dict):
            raise Invalid(where, f"expected an object, got {r!r}")
        pred = r.get("predicate")
        if not isinstance(pred, str) or not pred:
            raise Invalid(f"{where}.predicate", f"expected a predicate name, got {pred!r}")
        s, o = (str(_int(f"{where}.{k}", r.get(k))) for k in ("subject_tid", "object_tid"))
        for k, tid in (("subject_tid", s), ("object_tid", o)):
            if tid not in category:
                raise Invalid(f"{where}.{k}", f"names object {tid}, which is not in subject/objects")
        b, e = _int(f"{where}.begin_fid", r.get("begin_fid")), _int(f"{where}.end_fid", r.get("end_fid"))
        if not b < e <= T:
            raise Invalid(where, f"frames [{b}, {e}) are empty or beyond frame_count {T} (end_fid is exclusive)")
        frames = [new_index[t] for t in range(b, e) if t in new_index]
        if s in boxes and o in boxes and boxes[s][0] and boxes[o][0]:
            facts.append(FactOut(pred, s, o, frames))
    caption = template_caption(facts, category) if template else ""
    return VideoOut(str(data["video_id"]), frames_source, len(keep), W, H, tracks, facts, caption, split)


def find_frames(frames_dir: Path, candidates: list[str], stride: int) -> Path | list[Path]:
    """The frame folder or video file of a video (first of ``candidates`` relative names that exists)."""
    for rel in candidates:
        folder = frames_dir / rel
        if folder.is_dir():
            images = list_frames(folder)
            if not images:
                raise Invalid("frames", f"the frame folder {folder} holds no images")
            return images
        for suffix in ("",) + VIDEO_SUFFIXES:
            f = frames_dir / (rel + suffix)
            if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES:
                if stride != 1:
                    raise Invalid("frames", f"--stride needs frame folders, found the video file {f}")
                return f
    raise Invalid("frames", f"no frame folder or video for this video in {frames_dir} "
                            f"(looked for {', '.join(candidates)} as a folder or video file)")


def run(args: argparse.Namespace, report: Reporter) -> DatasetWriter:
    return run_vrd(args, report, lambda data, path: [str(data.get("video_id", path.stem))])


def run_vrd(args, report: Reporter, frame_names) -> DatasetWriter:
    if args.stride < 1:
        raise report.fail("--stride", "must be at least 1")
    if not args.frames.is_dir():
        raise report.fail(args.frames, "frames folder not found (--frames)")
    files = annotation_files(args.annotations, report)
    writer = DatasetWriter(args.out, copy_frames=args.copy_frames, overwrite=args.overwrite)
    root = args.annotations if args.annotations.is_dir() else args.annotations.parent
    for path in files:
        rid = path.stem
        with report.record(path, rid):
            data = read_json_record(path)
            if isinstance(data, dict) and data.get("video_id") is not None:
                rid = str(data["video_id"])
            split = args.split or split_from_name(str(path.relative_to(root).parent) or root.name,
                                                  split_from_name(root.name))
            source = find_frames(args.frames, frame_names(data, path), args.stride)
            video = convert_video(data, source, args.stride, split, not args.no_template_captions)
            writer.add(video, report)
    return writer


def read_json_record(path: Path) -> Any:
    """Like :func:`read_json`, but a bad file is one bad record (skippable), not a stop."""
    from laser_train.convert.common import ConvertError

    try:
        return read_json(path, "annotation")
    except ConvertError as exc:
        raise Invalid("(file)", str(exc).split(": ", 1)[-1], file=path) from None
