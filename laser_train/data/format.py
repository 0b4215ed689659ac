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
``fps``        optional frames per second of the source (``.npy`` and image directories have
                        none; for a video file it overrides the container's rate). Needed by
                        ``data.fps`` and ``data.clip_seconds``
============== ======== =================================================================

Tracks file::

    {"num_frames": T,            # optional: frames the annotation covers (<= the video's frames)
     "width": W, "height": H,    # the video's frame size in pixels
     "tracks": [{"id": "0",      # string or integer, unique in the file
                 "frames": [0, 1, ...],                # source frame indices, ascending not required
                 "boxes": [[x0, y0, x1, y1], ...],     # one per listed frame, pixels
                 "masks": [MASK, ...]}]}               # optional: one per listed frame

Boxes are in pixels (pixel ``(i, j)`` covers ``[i, i+1) × [j, j+1)``); a track is
absent at frames it does not list. Frames index the *source* video: sampling
(:mod:`laser_train.data.sampling`) picks the frames a sample uses and takes each
track's annotation from the nearest listed frame. ``num_frames`` (at most
:data:`MAX_FRAMES`) defaults to the video's frame count. Each ``MASK`` is one of
(:mod:`laser_train.data.masks`):

* ``{"size": [H, W], "counts": "<COCO compressed RLE>"}`` or ``{"size": [H, W], "counts": [n0, n1, ...]}``
  (COCO run lengths, column-major, starting with background);
* ``{"png": "masks/v1/000012.png", "value": 3}``: an indexed (palette) or greyscale PNG of object ids, the
  mask is where the pixel value (palette index) is 3; one PNG per frame serves every track;
* ``{"png": "masks/v1/t0/000012.png"}`` or the bare path string: a binary per-track PNG (non-zero = mask);
* ``null``: no mask at that frame.

Masks are used by ``data.crop=mask`` (pixels outside the mask are zeroed) and
``data.crop=mask_box`` (the crop is the mask's bounding box); a frame without a
mask (or with an empty one) falls back to its box.

Validation collects *every* problem as a :class:`Problem` naming the record
(id and manifest line), the field and, inside a tracks file, the file, track
and frame, e.g. ``manifest.jsonl:7 record 'v3': tracks: tracks/v3.json:
track 't1' frame 40: out of range [0, 32)``. Files are read through
:mod:`laser_train.data.files` (regular files only, size caps, UTF-8, bounded
JSON nesting). Spec texts are compiled once per distinct (text, vocabulary) and
cached (:func:`compile_specs_cached`); a spec file that ``include``s the
dataset's vocabulary (what ``stlspec from-captions --vocab`` writes) is
compiled on its own and its declarations checked against the dataset's. :func:`validate_dataset`
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
    "VIDEO_SUFFIXES", "IMAGE_SUFFIXES", "MANIFEST_FIELDS", "MAX_FRAMES", "SPLITS", "compile_specs_cached",
    "load_scene_graph",
]

from laser_train.data.files import (MANIFEST_LIMIT, SCENE_GRAPH_LIMIT, SPEC_LIMIT, TRACKS_LIMIT, FileProblem,
                                    loads_json, read_json, read_text)
from laser_train.data.masks import check_mask_entry
from laser_train.data.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, probe

MANIFEST_FIELDS = ("id", "video", "tracks", "caption", "spec", "spec_file", "spec_name", "hints",
                   "negatives", "split", "scene_graph", "fps")
SPLITS = ("train", "val", "test")
_SPLITS = SPLITS
MAX_FRAMES = 10_000_000  # frames per video (about 92 hours at 30 fps): larger counts are input errors
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
        if self.record == "-":  # about the dataset as a whole
            return f"{self.field}: {self.message}"
        where = f"manifest.jsonl:{self.line} " if self.line else ""
        return f"{where}record {self.record!r}: {self.field}: {self.message}"


class DatasetError(ValueError):
    """Raised with every problem found in a dataset."""

    def __init__(self, problems: list[Problem], root: str = "", *, skippable: bool = True):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in dataset {root}".rstrip()
        lines = [head] + [f"  {p}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"  ... and {len(self.problems) - 50} more")
        if skippable and any(p.record != "-" for p in self.problems):
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
    num_frames: int = 0  # frames of the source video
    size: tuple[int, int] = (0, 0)  # (width, height)
    track_data: list[dict] = field(default_factory=list, repr=False)  # boxes only (masks stay on disk)
    spec_source: str = field(default="", repr=False)  # the stlspec text holding the spec (for negative generation)
    fps: float | None = None  # source frame rate (the manifest's, else the video file's)
    has_masks: bool = False  # some track of the tracks file has masks

    def read_tracks(self) -> list[dict]:
        """The validated tracks with their ``masks`` (None where a track has none), read from the tracks
        file now: masks are not kept in memory (they can be gigabytes for a large dataset)."""
        if not self.has_masks:
            return [dict(t, masks=None) for t in self.track_data]
        data = read_json(self.tracks, TRACKS_LIMIT, "tracks file")
        by_id = {str(t["id"]): t for t in data["tracks"]}
        return [dict(t, masks=by_id[t["id"]].get("masks")) for t in self.track_data]


@dataclass
class Dataset:
    root: Path
    vocabulary: Any  # stlspec.ir.Vocabulary
    records: list[Record]
    skipped: list[Problem] = field(default_factory=list)

    def split(self, name: str) -> list[Record]:
        """The records of split ``name``; an unknown name is an error (an empty known split is ``[]``)."""
        if name not in SPLITS:
            raise DatasetError([Problem("-", 0, "split", f"unknown split {name!r}; choose from "
                                        f"{', '.join(SPLITS)}")], str(self.root))
        return [r for r in self.records if r.split == name]

    def require_split(self, name: str) -> list[Record]:
        """Like :meth:`split`, but a split with no records is an error naming the splits that exist."""
        recs = self.split(name)
        if not recs:
            have = sorted({r.split for r in self.records}, key=SPLITS.index)
            raise DatasetError([Problem("-", 0, "split", f"the dataset has no {name!r} records (it has: "
                                        f"{', '.join(f'{s} ({len(self.split(s))})' for s in have)})")],
                               str(self.root))
        return recs


# ---------------------------------------------------------------------------------------------- specs

_SPEC_CACHE: dict[tuple[str, Any], Any] = {}
_SPEC_CACHE_LIMIT = 4096


def _declares(text: str, origin: str) -> bool:
    """Whether stlspec ``text`` has declarations or includes of its own (parsing only)."""
    import stlspec
    from stlspec import ast

    program = stlspec.parse(text, origin)
    return any(not isinstance(item, ast.Spec) for item in program.items)


def _vocabulary_mismatch(own: Any, dataset: Any) -> list[str]:
    """Declarations of ``own`` (a spec file's vocabulary) that the dataset vocabulary lacks or types differently."""
    out = []
    cats = set(dataset.categories)
    out += [f"category '{c}' is not in the dataset vocabulary" for c in own.categories if c not in cats]
    unary, binary = dict(dataset.unary), {n: (a, b) for n, a, b in dataset.binary}
    for n, c in own.unary:
        if n not in unary:
            out.append(f"unary predicate '{n}' is not in the dataset vocabulary")
        elif unary[n] != c:
            out.append(f"unary predicate '{n}' is declared ({c or 'any'}) here but "
                       f"({unary[n] or 'any'}) in the dataset vocabulary")
    for n, a, b in own.binary:
        if n not in binary:
            out.append(f"binary predicate '{n}' is not in the dataset vocabulary")
        elif binary[n] != (a, b):
            x, y = binary[n]
            out.append(f"binary predicate '{n}' is declared ({a or 'any'}, {b or 'any'}) here but "
                       f"({x or 'any'}, {y or 'any'}) in the dataset vocabulary")
    return out


def compile_specs_cached(text: str, vocabulary: Any, origin: str) -> tuple:
    """The compiled specs of stlspec ``text`` against the dataset ``vocabulary``, compiled once per
    distinct (text, vocabulary) in this process (a spec file shared by 10,000 records compiles once).

    A text with declarations or ``include``s of its own — e.g. ``include "vocabulary.stl"`` as written by
    ``stlspec from-captions --vocab`` — is compiled on its own (not on top of the dataset vocabulary,
    which would declare everything twice); every category and predicate it declares must then be in
    the dataset vocabulary with the same argument categories. Raises :class:`stlspec.StlError` or
    ``ValueError`` (vocabulary mismatch).
    """
    import stlspec

    key = (text, origin if "include" in text else "", vocabulary)  # includes resolve relative to origin
    hit = _SPEC_CACHE.get(key)
    if hit is not None:
        if isinstance(hit, Exception):
            raise hit
        return hit
    try:
        if _declares(text, origin):
            program = stlspec.compile_text(text, path=origin)
            problems = _vocabulary_mismatch(program.vocabulary, vocabulary)
            if problems:
                raise ValueError("its declarations disagree with the dataset's vocabulary.stl: "
                                 + "; ".join(problems[:5]) + (f"; ... {len(problems) - 5} more"
                                                              if len(problems) > 5 else ""))
        else:
            program = stlspec.compile_text(text, vocabulary=vocabulary, path=origin)
        result: Any = program.specs
    except (stlspec.StlError, ValueError) as exc:
        result = exc
    if len(_SPEC_CACHE) >= _SPEC_CACHE_LIMIT:
        _SPEC_CACHE.clear()
    _SPEC_CACHE[key] = result
    if isinstance(result, Exception):
        raise result
    return result


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
            self.err(fld, f"expected a relative path string, got {_short(value)}")
            return None
        if "\0" in value:
            self.err(fld, "a path cannot contain a NUL character")
            return None
        p = self.root / value
        try:
            exists, is_dir = p.exists(), p.is_dir()
        except OSError as exc:  # e.g. a name too long
            self.err(fld, f"cannot use path {value[:200]!r}: {exc.strerror or exc}")
            return None
        if not exists:
            self.err(fld, f"file not found: {value} (relative to {self.root})")
            return None
        if is_dir and not directory_ok:
            self.err(fld, f"expected a file, found a directory: {value}")
            return None
        return p

    def specs(self, fld: str, text: str, origin: str):
        import stlspec

        try:
            return compile_specs_cached(text, self.vocabulary, origin)
        except stlspec.StlError as exc:
            self.err(fld, "the spec does not check:\n      " + str(exc).replace("\n", "\n      "))
        except ValueError as exc:
            self.err(fld, f"the spec file {origin}: {exc}")
        return None


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (error messages never echo huge inputs)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _frames_info(path: Path) -> tuple[int, int, int, float | None]:
    """(T, H, W, fps) of a frames source without decoding it all."""
    info = probe(path)
    return info.num_frames, info.height, info.width, info.fps


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_tracks(c: _Checker, path: Path, num_frames: int | None, size: tuple[int, int]
                  ) -> tuple[list[dict], int, tuple[int, int], bool]:
    """Validate a tracks file; returns (tracks without masks, annotated frames, (W, H), has masks)."""
    try:
        rel = path.relative_to(c.root).as_posix()
    except ValueError:
        rel = path.name
    try:
        data = read_json(path, TRACKS_LIMIT, "tracks file")
    except FileProblem as exc:
        c.err("tracks", str(exc))
        return [], 0, (0, 0), False
    if not isinstance(data, dict) or not isinstance(data.get("tracks"), list):
        c.err("tracks", f"{rel}: expected an object with a 'tracks' list")
        return [], 0, (0, 0), False
    T = data.get("num_frames", num_frames)
    if T is None:
        return [], 0, (0, 0), False  # the video is unreadable (reported) and the file gives no count
    if not _is_int(T) or T < 1:
        c.err("tracks", f"{rel}: num_frames: must be a positive integer, got {_short(T)}")
        return [], 0, (0, 0), False
    if T > MAX_FRAMES:
        c.err("tracks", f"{rel}: num_frames: {_short(T, 40)} is over the limit of {MAX_FRAMES} frames")
        return [], 0, (0, 0), False
    if num_frames is not None and T > num_frames:
        c.err("tracks", f"{rel}: num_frames: the annotation covers {T} frames but the video has only "
                        f"{num_frames}")
    W, H = data.get("width"), data.get("height")
    if not (_is_int(W) and _is_int(H) and 0 < W <= 1 << 16 and 0 < H <= 1 << 16):
        c.err("tracks", f"{rel}: width, height: must be positive integers, got {_short(W)}, {_short(H)}")
        return [], T, (0, 0), False
    seen: set[str] = set()
    tracks = []
    any_masks = False
    for k, tr in enumerate(data["tracks"]):
        where = f"{rel}: tracks[{k}]"
        if not isinstance(tr, dict):
            c.err("tracks", f"{where}: expected an object")
            continue
        tid = tr.get("id")
        if not isinstance(tid, (str, int)) or isinstance(tid, bool):
            c.err("tracks", f"{where}: id: expected a string or integer id, got {_short(tid)}")
            continue
        tid = str(tid)
        if tid in seen:
            c.err("tracks", f"{where}: id: duplicate track id {tid!r}")
        seen.add(tid)
        unknown = sorted(set(tr) - {"id", "frames", "boxes", "masks", "category"})
        if unknown:
            c.err("tracks", f"{rel}: track {tid!r}: unknown field(s) {', '.join(map(str, unknown))} "
                            "(known: id, frames, boxes, masks, category)")
        frames, boxes = tr.get("frames"), tr.get("boxes")
        if not isinstance(frames, list) or not isinstance(boxes, list) or len(frames) != len(boxes):
            c.err("tracks", f"{rel}: track {tid!r}: frames, boxes: must be lists of equal length")
            continue
        ok = True
        for f, b in zip(frames, boxes):
            if not _is_int(f) or not 0 <= f < T:
                c.err("tracks", f"{rel}: track {tid!r} frame {_short(f, 40)}: out of range [0, {T})")
                ok = False
                break
            if (not isinstance(b, list) or len(b) != 4
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                               for x in b)):
                c.err("tracks", f"{rel}: track {tid!r} frame {f}: boxes: a box is [x0, y0, x1, y1] numbers, "
                                f"got {_short(b)}")
                ok = False
                break
            if b[2] <= b[0] or b[3] <= b[1]:
                c.err("tracks", f"{rel}: track {tid!r} frame {f}: boxes: empty box {b!r} (need x0 < x1 and y0 < y1)")
                ok = False
                break
        if ok and len(set(frames)) != len(frames):
            c.err("tracks", f"{rel}: track {tid!r}: frames: a frame is listed twice")
            ok = False
        masks = tr.get("masks")
        if masks is not None:
            if not isinstance(masks, list) or len(masks) != len(frames):
                c.err("tracks", f"{rel}: track {tid!r}: masks: must have one entry per listed frame "
                                f"({len(frames)})")
                ok = False
            else:
                for f, m in zip(frames, masks):
                    why = check_mask_entry(m)
                    if why is None and isinstance(m, dict) and "size" in m and list(m["size"]) != [H, W]:
                        why = f"mask size {m['size']} is not the video's [H, W] = [{H}, {W}]"
                    if why is None and (isinstance(m, str) or (isinstance(m, dict) and "png" in m)):
                        rp = m if isinstance(m, str) else m["png"]
                        if "\0" in rp or not (c.root / rp).is_file():
                            why = f"mask image not found: {rp[:200]} (relative to {c.root})"
                    if why is not None:
                        c.err("tracks", f"{rel}: track {tid!r} frame {_short(f, 40)}: masks: {why}")
                        ok = False
                        break
                any_masks = any_masks or any(m is not None for m in masks)
        if ok:
            tracks.append({"id": tid, "frames": frames, "boxes": boxes})
    if not data["tracks"]:
        c.err("tracks", f"{rel}: a video needs at least one track")
    return tracks, T, (W, H), any_masks


def load_scene_graph(path: Path, vocabulary: Any):
    """Read a ground-truth trace file defensively (size cap, UTF-8, nesting, frame count limit)."""
    from stlspec.trace import Trace

    data = read_json(path, SCENE_GRAPH_LIMIT, "scene graph")
    if isinstance(data, dict):
        T = data.get("num_frames")
        if T is not None and (not _is_int(T) or not 0 < T <= MAX_FRAMES):
            raise FileProblem(f"scene graph {path}: num_frames: must be an integer in [1, {MAX_FRAMES}], "
                              f"got {_short(T, 40)}")
    return Trace.from_dict(data, vocabulary, path=str(path))


def _hint(value: Any) -> tuple[float, float] | None:
    if isinstance(value, str):
        return _HINT_NAMES.get(value)
    if (isinstance(value, list) and len(value) == 2 and all(isinstance(x, (int, float)) for x in value)
            and 0 <= value[0] <= value[1] <= 1):
        return (float(value[0]), float(value[1]))
    return None


def _check_record(c: _Checker, obj: Any) -> Record | None:
    import dataclasses

    import stlspec

    if not isinstance(obj, dict):
        c.err("record", f"expected a JSON object, got {type(obj).__name__}")
        return None
    rid = obj.get("id")
    if not isinstance(rid, str) or not rid:
        c.err("id", f"expected a non-empty string, got {_short(rid)}")
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
        c.err("caption", f"expected a string, got {_short(caption)}")
    fps = obj.get("fps")
    if fps is not None and (not isinstance(fps, (int, float)) or isinstance(fps, bool) or not math.isfinite(fps)
                            or not 0 < fps <= 10_000):
        c.err("fps", f"expected frames per second in (0, 10000], got {_short(fps)}")
        fps = None
    video = c.path("video", obj["video"], directory_ok=True) if "video" in obj else None
    T = None
    size = (0, 0)
    if video is not None:
        try:
            T, h, w, video_fps = _frames_info(video)
            size = (w, h)
            if fps is None:
                fps = video_fps
        except (ValueError, OSError) as exc:
            c.err("video", f"{obj['video']}: {exc}")
    tracks_path = c.path("tracks", obj["tracks"]) if "tracks" in obj else None
    tracks: list[dict] = []
    has_masks = False
    if tracks_path is not None:
        tracks, T2, size2, has_masks = _check_tracks(c, tracks_path, T, size)
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
                c.err("spec", f"expected stlspec text, got {_short(obj['spec'])}")
        else:
            p = c.path("spec_file", obj["spec_file"])
            if p is not None:
                try:
                    text, origin = read_text(p, SPEC_LIMIT, "spec file"), str(p)
                except FileProblem as exc:
                    c.err("spec_file", str(exc))
        try:
            specs = c.specs("spec_file" if has_file else "spec", text, origin) if text is not None else None
        except RecursionError:  # pragma: no cover - stlspec bounds nesting itself
            c.err("spec", "the spec is nested too deeply")
            specs = None
        if specs is not None:
            name = obj.get("spec_name")
            if name is not None:
                spec = next((s for s in specs if s.name == name), None)
                if spec is None:
                    shown = ", ".join(s.name for s in specs[:20]) + (", ..." if len(specs) > 20 else "")
                    c.err("spec_name", f"no spec named {_short(name)} (found: {shown})")
            elif len(specs) != 1:
                c.err("spec", f"expected one spec, found {len(specs)}; name one with 'spec_name'")
            else:
                spec = specs[0]
    hints = obj.get("hints")
    if spec is not None and hints is not None:
        if not isinstance(hints, list) or len(hints) != len(spec.events):
            c.err("hints", f"expected a list with one hint per event ({len(spec.events)}), got {_short(hints)}")
        else:
            parsed = [_hint(h) if h is not None else None for h in hints]
            bad = [h for h, p in zip(hints, parsed) if h is not None and p is None]
            if bad:
                c.err("hints", f"a hint is a name ({', '.join(_HINT_NAMES)}) or [a, b] with "
                               f"0 <= a <= b <= 1, got {_short(bad[0])}")
            else:
                events = tuple(dataclasses.replace(e, hint=p if p is not None else e.hint)
                               for e, p in zip(spec.events, parsed))
                spec = dataclasses.replace(spec, events=events)
    negatives: tuple | None = None
    if "negatives" in obj:
        if not isinstance(obj["negatives"], str):
            c.err("negatives", f"expected stlspec text with spec blocks, got {_short(obj['negatives'])}")
        else:
            negs = c.specs("negatives", obj["negatives"], f"<{rid}.negatives>")
            negatives = tuple(negs or ())
    split = obj.get("split", "train")
    if split not in SPLITS:
        c.err("split", f"expected one of {', '.join(SPLITS)}, got {_short(split)}")
    scene_graph = None
    if obj.get("scene_graph") is not None:
        scene_graph = c.path("scene_graph", obj["scene_graph"])
        if scene_graph is not None:
            try:
                trace = load_scene_graph(scene_graph, c.vocabulary)
            except (FileProblem, stlspec.StlError) as exc:
                c.err("scene_graph", str(exc).splitlines()[0][:300])
            else:
                ids = set(trace.track_ids)
                missing = [t["id"] for t in tracks if t["id"] not in ids]
                if missing:
                    c.err("scene_graph", f"{obj['scene_graph']}: no track(s) {', '.join(missing[:5])} of the "
                                         "tracks file")
                if T and trace.num_frames < T:
                    c.err("scene_graph", f"{obj['scene_graph']}: {trace.num_frames} frames but the annotation "
                                         f"covers {T}")
    if len(c.problems) > before:
        return None
    return Record(rid, c.line, video, tracks_path, caption, spec, negatives, split, scene_graph,
                  int(T or 0), size, tracks, text or "", fps, has_masks)


def validate_dataset(root: str | Path, *, skip_invalid: bool = False, vocabulary=None) -> Dataset:
    """Read and check ``root``; every problem is collected (see the module docstring)."""
    import stlspec

    root = Path(root)
    problems: list[Problem] = []
    if not root.is_dir():
        raise DatasetError([Problem("-", 0, "data.path", f"not a dataset directory: {root}")], str(root))
    if vocabulary is None:
        vpath = root / "vocabulary.stl"
        try:
            vocabulary = stlspec.compile_text(read_text(vpath, SPEC_LIMIT, "vocabulary"),
                                              path=str(vpath)).vocabulary
        except FileProblem as exc:
            raise DatasetError([Problem("-", 0, "vocabulary", str(exc))], str(root)) from None
        except stlspec.StlError as exc:
            raise DatasetError([Problem("-", 0, "vocabulary", str(exc))], str(root)) from None
    mpath = root / "manifest.jsonl"
    try:
        lines = read_text(mpath, MANIFEST_LIMIT, "manifest").splitlines()
    except FileProblem as exc:
        raise DatasetError([Problem("-", 0, "manifest", str(exc))], str(root)) from None
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
            obj = loads_json(raw, f"line {i}")
        except FileProblem as exc:
            c.err("record", str(exc).split(": ", 1)[-1])
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


def write_record_files(root: Path, video, split: str, world=None) -> dict:
    """Write one synthetic video's frames, tracks and ground truth; return its manifest record.

    ``world`` is the world module the video comes from (its column orders; default: the toy world).
    """
    from stlspec.trace import Trace

    if world is None:
        from laser_train.data import synthetic as world
    CATEGORIES, UNARY, BINARY = world.CATEGORIES, world.UNARY, world.BINARY

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
