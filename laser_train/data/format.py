"""The on-disk dataset format for laser_train, and its validation.

A dataset is a directory::

    vocabulary.stl          categories and predicates (stlspec declarations)
    manifest.jsonl          one JSON object per video (fields below)
    videos/...              frames: ``.npy`` [T, H, W, 3] uint8, a directory of images, or a video file
    tracks/<id>.json        object tracks: per-frame boxes (optionally masks), with track ids
    scene_graphs/<id>.json  optional hidden ground truth, in the stlspec trace format (``docs/traces.md``)

Manifest record fields (paths are relative to the dataset directory):

============== ======== =================================================================
``id``         required unique video id
``video``      required frames file or directory
``tracks``     required tracks file
``caption``    required the caption text
``spec``       one of   stlspec text holding the caption's spec (one ``spec`` block)
``spec_file``  one of   a ``.stl`` file holding it (``spec_name`` picks one of several)
``spec_name``  optional which spec of the text/file (default: the only one)
``hints``      optional per-event "when" hints overriding the spec's: ``"early"`` or ``[a, b]``
``negatives``  optional stlspec text with negative specs (every spec block in it; ``""``: none)
``split``      optional ``train`` (default), ``val`` or ``test``
``scene_graph`` optional ground-truth trace (evaluation and the supervised baseline only)
============== ======== =================================================================

Tracks file: ``{"num_frames": T, "width": W, "height": H, "tracks": [{"id": "0",
"frames": [0, 1, ...], "boxes": [[x0, y0, x1, y1], ...], "masks": [...]?}]}`` with
boxes in pixels (pixel ``(i, j)`` covers ``[i, i+1) × [j, j+1)``); a track is
absent at frames it does not list. Masks, if given, hold one entry per listed
frame (the small model ignores them; they are validated and carried).

Validation collects *every* problem as a :class:`Problem` naming the record
(id and manifest line) and the field, e.g. ``manifest.jsonl:7 record 'v3':
tracks: track 't1' frame 40 out of range [0, 32)``. :func:`validate_dataset`
raises one :class:`DatasetError` holding them all unless ``skip_invalid`` is
set, in which case the bad records are reported and left out.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Problem", "DatasetError", "Record", "Dataset", "validate_dataset", "write_record_files",
    "VIDEO_SUFFIXES", "IMAGE_SUFFIXES", "MANIFEST_FIELDS",
]

MANIFEST_FIELDS = ("id", "video", "tracks", "caption", "spec", "spec_file", "spec_name", "hints",
                   "negatives", "split", "scene_graph")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov")
_SPLITS = ("train", "val", "test")
_HINT_NAMES = {"early": (0.0, 1 / 3), "middle": (1 / 3, 2 / 3), "mid": (1 / 3, 2 / 3), "late": (2 / 3, 1.0),
               "anytime": (0.0, 1.0)}


@dataclass(frozen=True)
class Problem:
    """One validation problem: where (record, field) and what."""

    record: str  # record id, or "line N" when the id itself is unreadable
    line: int  # 1-based manifest line (0 = not tied to a line)
    field: str
    message: str

    def __str__(self) -> str:
        where = f"manifest.jsonl:{self.line} " if self.line else ""
        return f"{where}record {self.record!r}: {self.field}: {self.message}"


class DatasetError(ValueError):
    """Raised with every problem found in a dataset."""

    def __init__(self, problems: list[Problem], root: str = ""):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in dataset {root}".rstrip()
        lines = [head] + [f"  {p}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"  ... and {len(self.problems) - 50} more")
        lines.append("  (pass --data.skip_invalid=true to report and skip the bad records)")
        super().__init__("\n".join(lines))


@dataclass
class Record:
    """A validated manifest record, with its compiled specs."""

    id: str
    line: int
    video: Path
    tracks: Path
    caption: str
    spec: Any  # stlspec.ir.Spec (hints already overridden from the manifest)
    negatives: tuple | None = None  # stlspec.ir.Spec from the manifest; None: the field is absent
    split: str = "train"
    scene_graph: Path | None = None
    num_frames: int = 0
    size: tuple[int, int] = (0, 0)  # (width, height)
    track_data: list[dict] = field(default_factory=list, repr=False)
    spec_source: str = field(default="", repr=False)  # the stlspec text holding the spec (for negative generation)


@dataclass
class Dataset:
    root: Path
    vocabulary: Any  # stlspec.ir.Vocabulary
    records: list[Record]
    skipped: list[Problem] = field(default_factory=list)

    def split(self, name: str) -> list[Record]:
        return [r for r in self.records if r.split == name]


# ---------------------------------------------------------------------------------------------- reading


class _Checker:
    def __init__(self, root: Path, vocabulary):
        self.root = root
        self.vocabulary = vocabulary
        self.problems: list[Problem] = []
        self.rid = ""
        self.line = 0

    def err(self, fld: str, msg: str) -> None:
        self.problems.append(Problem(self.rid, self.line, fld, msg))

    def path(self, fld: str, value: Any, *, directory_ok: bool = False) -> Path | None:
        if not isinstance(value, str) or not value:
            self.err(fld, f"expected a relative path string, got {value!r}")
            return None
        p = self.root / value
        if not p.exists():
            self.err(fld, f"file not found: {value} (relative to {self.root})")
            return None
        if p.is_dir() and not directory_ok:
            self.err(fld, f"expected a file, found a directory: {value}")
            return None
        return p

    def specs(self, fld: str, text: str, origin: str):
        import stlspec

        try:
            program = stlspec.compile_text(text, vocabulary=self.vocabulary, path=origin)
        except stlspec.StlError as exc:
            self.err(fld, "the spec does not check:\n      " + str(exc).replace("\n", "\n      "))
            return None
        return program.specs


def _frames_info(path: Path) -> tuple[int, int, int]:
    """(T, H, W) of a frames source without decoding it all."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError("the frames directory holds no images")
        from PIL import Image

        with Image.open(files[0]) as im:
            return len(files), im.height, im.width
    if path.suffix == ".npy":
        arr = np.load(path, mmap_mode="r")
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"expected a uint8 array [T, H, W, 3], got {arr.dtype} {arr.shape}")
        return int(arr.shape[0]), int(arr.shape[1]), int(arr.shape[2])
    if path.suffix.lower() in VIDEO_SUFFIXES:
        try:
            import decord  # type: ignore[import-not-found]
        except ImportError:
            raise ValueError("video files need decord (pip install decord); or convert to .npy frames") from None
        vr = decord.VideoReader(str(path))
        h, w = vr[0].shape[:2]
        return len(vr), int(h), int(w)
    raise ValueError(f"unsupported frames source {path.name!r} (use .npy, an image directory, or "
                     f"{'/'.join(VIDEO_SUFFIXES)})")


def _check_tracks(c: _Checker, path: Path, num_frames: int | None) -> tuple[list[dict], int, tuple[int, int]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        c.err("tracks", f"cannot read {path.name}: {exc}")
        return [], 0, (0, 0)
    if not isinstance(data, dict) or not isinstance(data.get("tracks"), list):
        c.err("tracks", f"{path.name}: expected an object with a 'tracks' list")
        return [], 0, (0, 0)
    T = data.get("num_frames", num_frames)
    if not isinstance(T, int) or T < 1:
        c.err("tracks", f"{path.name}: num_frames must be a positive integer, got {T!r}")
        return [], 0, (0, 0)
    if num_frames is not None and T != num_frames:
        c.err("tracks", f"{path.name}: num_frames is {T} but the video has {num_frames} frames")
    W, H = data.get("width"), data.get("height")
    if not (isinstance(W, int) and isinstance(H, int) and W > 0 and H > 0):
        c.err("tracks", f"{path.name}: width and height must be positive integers, got {W!r}, {H!r}")
        return [], T, (0, 0)
    seen: set[str] = set()
    tracks = []
    for k, tr in enumerate(data["tracks"]):
        where = f"{path.name}: tracks[{k}]"
        if not isinstance(tr, dict):
            c.err("tracks", f"{where}: expected an object")
            continue
        tid = tr.get("id")
        if not isinstance(tid, (str, int)) or isinstance(tid, bool):
            c.err("tracks", f"{where}.id: expected a string or integer id, got {tid!r}")
            continue
        tid = str(tid)
        if tid in seen:
            c.err("tracks", f"{where}.id: duplicate track id {tid!r}")
        seen.add(tid)
        frames, boxes = tr.get("frames"), tr.get("boxes")
        if not isinstance(frames, list) or not isinstance(boxes, list) or len(frames) != len(boxes):
            c.err("tracks", f"track {tid!r}: 'frames' and 'boxes' must be lists of equal length")
            continue
        ok = True
        for f, b in zip(frames, boxes):
            if not isinstance(f, int) or isinstance(f, bool) or not 0 <= f < T:
                c.err("tracks", f"track {tid!r} frame {f!r} out of range [0, {T})")
                ok = False
                break
            if (not isinstance(b, list) or len(b) != 4
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                               for x in b)):
                c.err("tracks", f"track {tid!r} frame {f}: a box is [x0, y0, x1, y1] numbers, got {b!r}")
                ok = False
                break
            if b[2] <= b[0] or b[3] <= b[1]:
                c.err("tracks", f"track {tid!r} frame {f}: empty box {b!r} (need x0 < x1 and y0 < y1)")
                ok = False
                break
        if ok and len(set(frames)) != len(frames):
            c.err("tracks", f"track {tid!r}: a frame is listed twice")
            ok = False
        masks = tr.get("masks")
        if masks is not None and (not isinstance(masks, list) or len(masks) != len(frames)):
            c.err("tracks", f"track {tid!r}: 'masks' must have one entry per listed frame")
            ok = False
        if ok:
            tracks.append({"id": tid, "frames": frames, "boxes": boxes, "masks": masks})
    if not data["tracks"]:
        c.err("tracks", f"{path.name}: a video needs at least one track")
    return tracks, T, (W, H)


def _hint(value: Any) -> tuple[float, float] | None:
    if isinstance(value, str):
        return _HINT_NAMES.get(value)
    if (isinstance(value, list) and len(value) == 2 and all(isinstance(x, (int, float)) for x in value)
            and 0 <= value[0] <= value[1] <= 1):
        return (float(value[0]), float(value[1]))
    return None


def _check_record(c: _Checker, obj: Any) -> Record | None:
    import dataclasses

    if not isinstance(obj, dict):
        c.err("record", f"expected a JSON object, got {type(obj).__name__}")
        return None
    rid = obj.get("id")
    if not isinstance(rid, str) or not rid:
        c.err("id", f"expected a non-empty string, got {rid!r}")
        return None
    c.rid = rid
    before = len(c.problems)
    unknown = sorted(set(obj) - set(MANIFEST_FIELDS))
    if unknown:
        c.err(unknown[0], f"unknown field(s) {', '.join(unknown)} (known: {', '.join(MANIFEST_FIELDS)})")
    for fld in ("video", "tracks", "caption"):
        if fld not in obj:
            c.err(fld, "missing required field")
    caption = obj.get("caption", "")
    if not isinstance(caption, str):
        c.err("caption", f"expected a string, got {caption!r}")
    video = c.path("video", obj["video"], directory_ok=True) if "video" in obj else None
    T = None
    size = (0, 0)
    if video is not None:
        try:
            T, h, w = _frames_info(video)
            size = (w, h)
        except (ValueError, OSError) as exc:
            c.err("video", f"{obj['video']}: {exc}")
    tracks_path = c.path("tracks", obj["tracks"]) if "tracks" in obj else None
    tracks: list[dict] = []
    if tracks_path is not None:
        tracks, T2, size2 = _check_tracks(c, tracks_path, T)
        T = T or T2
        if video is not None and size != (0, 0) and size2 != (0, 0) and size2 != size:
            c.err("tracks", f"tracks say {size2[0]}x{size2[1]} but the frames are {size[0]}x{size[1]}")
    has_spec, has_file = "spec" in obj, "spec_file" in obj
    spec, text = None, None
    if has_spec == has_file:
        c.err("spec", "give exactly one of 'spec' (text) and 'spec_file' (path)")
    else:
        text, origin = None, f"<{rid}.spec>"
        if has_spec:
            text = obj["spec"] if isinstance(obj["spec"], str) else None
            if text is None:
                c.err("spec", f"expected stlspec text, got {obj['spec']!r}")
        else:
            p = c.path("spec_file", obj["spec_file"])
            if p is not None:
                text, origin = p.read_text(encoding="utf-8"), str(p)
        specs = c.specs("spec_file" if has_file else "spec", text, origin) if text is not None else None
        if specs is not None:
            name = obj.get("spec_name")
            if name is not None:
                spec = next((s for s in specs if s.name == name), None)
                if spec is None:
                    c.err("spec_name", f"no spec named {name!r} (found: {', '.join(s.name for s in specs)})")
            elif len(specs) != 1:
                c.err("spec", f"expected one spec, found {len(specs)}; name one with 'spec_name'")
            else:
                spec = specs[0]
    hints = obj.get("hints")
    if spec is not None and hints is not None:
        if not isinstance(hints, list) or len(hints) != len(spec.events):
            c.err("hints", f"expected a list with one hint per event ({len(spec.events)}), got {hints!r}")
        else:
            parsed = [_hint(h) if h is not None else None for h in hints]
            bad = [h for h, p in zip(hints, parsed) if h is not None and p is None]
            if bad:
                c.err("hints", f"a hint is a name ({', '.join(_HINT_NAMES)}) or [a, b] with "
                               f"0 <= a <= b <= 1, got {bad[0]!r}")
            else:
                events = tuple(dataclasses.replace(e, hint=p if p is not None else e.hint)
                               for e, p in zip(spec.events, parsed))
                spec = dataclasses.replace(spec, events=events)
    negatives: tuple | None = None
    if "negatives" in obj:
        if not isinstance(obj["negatives"], str):
            c.err("negatives", f"expected stlspec text with spec blocks, got {obj['negatives']!r}")
        else:
            negs = c.specs("negatives", obj["negatives"], f"<{rid}.negatives>")
            negatives = tuple(negs or ())
    split = obj.get("split", "train")
    if split not in _SPLITS:
        c.err("split", f"expected one of {', '.join(_SPLITS)}, got {split!r}")
    scene_graph = None
    if obj.get("scene_graph") is not None:
        scene_graph = c.path("scene_graph", obj["scene_graph"])
    if len(c.problems) > before:
        return None
    return Record(rid, c.line, video, tracks_path, caption, spec, negatives, split, scene_graph,
                  int(T or 0), size, tracks, text or "")


def validate_dataset(root: str | Path, *, skip_invalid: bool = False, vocabulary=None) -> Dataset:
    """Read and check ``root``; every problem is collected (see the module docstring)."""
    import stlspec

    root = Path(root)
    problems: list[Problem] = []
    if vocabulary is None:
        vpath = root / "vocabulary.stl"
        try:
            vocabulary = stlspec.compile_file(str(vpath)).vocabulary
        except FileNotFoundError:
            raise DatasetError([Problem("-", 0, "vocabulary", f"missing {vpath}")], str(root)) from None
        except stlspec.StlError as exc:
            raise DatasetError([Problem("-", 0, "vocabulary", str(exc))], str(root)) from None
    mpath = root / "manifest.jsonl"
    try:
        lines = mpath.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError([Problem("-", 0, "manifest", f"cannot read {mpath}: {exc}")], str(root)) from None
    c = _Checker(root, vocabulary)
    records: list[Record] = []
    skipped: list[Problem] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        c.rid, c.line = f"line {i}", i
        start = len(c.problems)
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            c.err("record", f"invalid JSON: {exc.msg} at column {exc.colno}")
            rec = None
        else:
            rec = _check_record(c, obj)
        if rec is not None and rec.id in seen:
            c.err("id", f"duplicate id (first on line {seen[rec.id]})")
            rec = None
        if rec is not None:
            seen[rec.id] = i
            records.append(rec)
        new = c.problems[start:]
        (skipped if skip_invalid else problems).extend(new)
    if not records and not problems:
        problems.append(Problem("-", 0, "manifest", "no records"))
    if problems:
        raise DatasetError(problems, str(root))
    return Dataset(root, vocabulary, records, skipped)


# ---------------------------------------------------------------------------------------------- writing


def write_record_files(root: Path, video, split: str) -> dict:
    """Write one synthetic video's frames, tracks and ground truth; return its manifest record."""
    from stlspec.trace import Trace

    from laser_train.data.synthetic import BINARY, CATEGORIES, UNARY

    vid = video.video_id
    np.save(root / "videos" / f"{vid}.npy", video.frames)
    T, N = video.present.shape
    H, W = video.frames.shape[1:3]
    tracks = []
    for n in range(N):
        frames = [int(t) for t in np.flatnonzero(video.present[:, n])]
        tracks.append({"id": f"t{n}", "frames": frames,
                       "boxes": [[round(float(x), 2) for x in video.boxes[t, n]] for t in frames]})
    (root / "tracks" / f"{vid}.json").write_text(
        json.dumps({"num_frames": T, "width": W, "height": H, "tracks": tracks}), encoding="utf-8")
    names = np.zeros((N, len(CATEGORIES)))
    for n, c in enumerate(video.categories):
        names[n, CATEGORIES.index(c)] = 1.0
    trace = Trace.from_arrays(names, video.unary, video.binary, video.present, categories=CATEGORIES,
                              unary_preds=UNARY, binary_preds=BINARY, track_ids=[t["id"] for t in tracks])
    (root / "scene_graphs" / f"{vid}.json").write_text(trace.to_json(indent=None), encoding="utf-8")
    return {"id": vid, "video": f"videos/{vid}.npy", "tracks": f"tracks/{vid}.json", "caption": video.caption,
            "spec": video.spec, "split": split, "scene_graph": f"scene_graphs/{vid}.json"}
