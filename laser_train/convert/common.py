"""What every converter shares: the problem reporter, the streaming dataset writer, safe unpickling.

A converter reads one public dataset and hands the :class:`DatasetWriter` one
:class:`VideoOut` at a time (so at most one video's tracks, masks and facts are
in memory); the writer lays out the documented dataset format
(``laser_train/data/format.py``)::

    OUT/vocabulary.stl        categories and predicates seen (plus the dataset's class lists)
    OUT/manifest.jsonl        one record per video: spec_file "specs.stl", spec_name from the video id
    OUT/captions.jsonl        {"id", "caption"} per video: the input of `stlspec from-captions`
    OUT/videos/<id>/          links (or copies) to the video's frames, renumbered 000000, 000001, ...
    OUT/tracks/<id>.json      per-frame boxes, masks as COCO run-length encodings when the dataset has them
    OUT/scene_graphs/<id>.json  ground-truth relations, when the dataset has them (stlspec trace format)

Every record that cannot be converted raises :class:`Invalid` inside
``Reporter.record(file, record)``; the reporter prints it as ``FILE: record
'ID': FIELD: why`` and either stops the conversion (:class:`ConvertError`) or,
with ``--skip-invalid``, counts it as skipped and goes on.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from laser_train.data import files as _files
from laser_train.data import masks as _masks

__all__ = ["Invalid", "ConvertError", "Reporter", "TrackOut", "FactOut", "VideoOut", "DatasetWriter",
           "safe_load_pickle", "rle_encode", "rle_decode", "mask_box", "check_box", "list_frames",
           "template_caption", "read_json", "read_text", "split_from_name", "ANNOTATION_LIMIT", "PICKLE_LIMIT"]


class Invalid(Exception):
    """One record cannot be converted: ``field`` (a JSON-path-like location) and why."""

    def __init__(self, field: str, message: str, *, file: str | os.PathLike | None = None):
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.file = field, message, file


class ConvertError(Exception):
    """The conversion stopped: the message names the file, record and field."""


@dataclass
class Reporter:
    """Collects every problem; decides between stopping and skipping; counts what was converted."""

    skip_invalid: bool = False
    stream: Any = None  # where skipped records are reported (default: stderr)
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("videos", "tracks", "masks", "facts", "captions", "skipped"), 0))
    notes: dict[str, int] = field(default_factory=dict)  # counted oddities that are not errors

    @contextlib.contextmanager
    def record(self, file: str | os.PathLike, record: str) -> Iterator[None]:
        """Run one record's conversion; an :class:`Invalid` inside is reported (and stops unless skipping)."""
        try:
            yield
        except Invalid as exc:
            text = f"{exc.file or file}: record {record!r}: {exc.field}: {exc.message}"
            self.problems.append(text)
            if not self.skip_invalid:
                raise ConvertError(f"{text}\n(conversion stopped; pass --skip-invalid to report such records "
                                   f"and convert the rest)") from None
            self.counts["skipped"] += 1
            print(f"skipped: {text}", file=self.stream or sys.stderr)

    def fail(self, file: str | os.PathLike, message: str) -> ConvertError:
        """A problem with a whole input file (nothing can be converted): always stops."""
        return ConvertError(f"{file}: {message}")

    def note(self, what: str, n: int = 1) -> None:
        self.notes[what] = self.notes.get(what, 0) + n

    def summary(self) -> str:
        c = self.counts
        text = (f"converted {c['videos']} videos: {c['tracks']} tracks ({c['masks']} with masks), "
                f"{c['facts']} ground-truth facts, {c['captions']} captions; {c['skipped']} records skipped")
        for what, n in sorted(self.notes.items()):
            text += f"\n  note: {n} {what}"
        return text


# ---------------------------------------------------------------------------------------------- records


@dataclass
class TrackOut:
    """One object track: boxes ``[x0, y0, x1, y1]`` in pixels at the listed frames (of the converted video)."""

    id: str
    category: str | None
    frames: list[int]
    boxes: list[list[float]]
    masks: list[dict] | None = None  # COCO RLE per listed frame


@dataclass
class FactOut:
    """A ground-truth relation ``predicate(subject, object)`` at the listed frames."""

    predicate: str
    subject: str
    object: str
    frames: list[int]


@dataclass
class VideoOut:
    id: str
    frames: list[Path] | Path  # image files in order, or one video file
    num_frames: int
    width: int
    height: int
    tracks: list[TrackOut]
    facts: list[FactOut] | None = None  # None: the dataset has no ground truth for this video
    caption: str = ""
    split: str = "train"


def _safe_name(vid: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", vid).strip("._") or "video"


class DatasetWriter:
    """Writes the dataset format one video at a time (see the module docstring).

    ``categories`` / ``predicates`` declare class lists up front (so that the
    vocabulary is the dataset's even when a sample does not use every class);
    names seen in the videos are added in order of first appearance.
    """

    def __init__(self, out: str | os.PathLike, *, copy_frames: bool = False, overwrite: bool = False,
                 categories: list[str] = (), predicates: list[str] = (), unary: list[str] = (),
                 with_captions: bool = True):
        from stlspec.llm.records import spec_name_for

        self.out = Path(out)
        if self.out.exists() and any(self.out.iterdir()) and not overwrite:
            raise ConvertError(f"{self.out}: the output directory is not empty (pass --overwrite to replace "
                               f"a dataset written there before)")
        for sub in ("videos", "tracks", "scene_graphs"):
            if overwrite and (self.out / sub).exists():
                shutil.rmtree(self.out / sub)
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        self.copy_frames = copy_frames
        self.categories: dict[str, None] = dict.fromkeys(categories)
        self.predicates: dict[str, None] = dict.fromkeys(predicates)
        self.unary: dict[str, None] = dict.fromkeys(unary)
        self.with_captions = with_captions
        self.vocabulary_override: str | None = None  # vocabulary.stl text given by the converter (laser)
        self._spec_name_for = spec_name_for
        self._used_names: set[str] = set()
        self._files: set[str] = set()
        self._ids: set[str] = set()
        self.manifest = open(self.out / "manifest.jsonl", "w", encoding="utf-8")
        self.captions = open(self.out / "captions.jsonl", "w", encoding="utf-8")

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, video: VideoOut, report: Reporter, *, spec_name: str | None = None,
            spec_file: str = "specs.stl") -> None:
        """Write one video (its frames, tracks, ground truth, caption and manifest record)."""
        if video.id in self._ids:
            raise Invalid("id", f"duplicate video id {video.id!r}")
        name = _safe_name(video.id)
        base, k = name, 2
        while name in self._files:
            name, k = f"{base}_{k}", k + 1
        self._ids.add(video.id)
        self._files.add(name)
        video_path = self._link_frames(name, video.frames)
        tracks = [{"id": t.id, "frames": t.frames, "boxes": [[round(float(x), 2) for x in b] for b in t.boxes],
                   **({"masks": t.masks} if t.masks is not None else {})} for t in video.tracks]
        (self.out / "tracks" / f"{name}.json").write_text(json.dumps(
            {"num_frames": video.num_frames, "width": video.width, "height": video.height, "tracks": tracks}),
            encoding="utf-8")
        for t in video.tracks:
            if t.category is not None:
                self.categories.setdefault(t.category)
        record: dict[str, Any] = {"id": video.id, "video": video_path, "tracks": f"tracks/{name}.json",
                                  "caption": video.caption}
        if spec_name is None:
            spec_name = self._spec_name_for(video.id, self._used_names)
        record.update({"spec_file": spec_file, "spec_name": spec_name, "split": video.split})
        if video.facts is not None:
            record["scene_graph"] = f"scene_graphs/{name}.json"
            self._write_scene_graph(name, video, report)
        self.manifest.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.with_captions and video.caption:
            self.captions.write(json.dumps({"id": video.id, "caption": video.caption}, ensure_ascii=False) + "\n")
            report.counts["captions"] += 1
        report.counts["videos"] += 1
        report.counts["tracks"] += len(video.tracks)
        report.counts["masks"] += sum(t.masks is not None for t in video.tracks)

    def _link_frames(self, name: str, frames: list[Path] | Path) -> str:
        place = shutil.copyfile if self.copy_frames else (lambda src, dst: os.symlink(os.path.abspath(src), dst))
        if isinstance(frames, Path):  # one video file
            rel = f"videos/{name}{frames.suffix.lower()}"
            place(frames, self.out / rel)
            return rel
        folder = self.out / "videos" / name
        folder.mkdir()
        for i, f in enumerate(frames):
            place(f, folder / f"{i:06d}{f.suffix.lower()}")
        return f"videos/{name}"

    def _write_scene_graph(self, name: str, video: VideoOut, report: Reporter) -> None:
        present = {t.id: set(t.frames) for t in video.tracks}
        binary = []
        for f in video.facts or ():
            self.predicates.setdefault(f.predicate)
            both = present[f.subject] & present[f.object]
            frames = sorted(t for t in set(f.frames) if t in both)
            if len(frames) < len(set(f.frames)):
                report.note("relation frames where the subject or object has no box (not written)",
                            len(set(f.frames)) - len(frames))
            if frames:
                binary.append({"pred": f.predicate, "subject": f.subject, "object": f.object, "frames": frames})
                report.counts["facts"] += len(frames)
        # one entry per (pred, subject, object): a relation annotated twice is merged, not duplicated
        merged: dict[tuple, set] = {}
        for b in binary:
            merged.setdefault((b["pred"], b["subject"], b["object"]), set()).update(b["frames"])
        trace = {"version": 1, "num_frames": video.num_frames,
                 "tracks": [{"id": t.id, "names": {t.category: 1.0} if t.category is not None else {},
                             "present": sorted(t.frames)} for t in video.tracks],
                 "binary": [{"pred": p, "subject": s, "object": o, "frames": sorted(fr)}
                            for (p, s, o), fr in merged.items()]}
        (self.out / "scene_graphs" / f"{name}.json").write_text(json.dumps(trace), encoding="utf-8")

    def vocabulary_text(self, header: str = "") -> str:
        from stlspec.formatter import quote_name

        lines = [f"// {line}" for line in header.splitlines()]
        if self.categories:
            lines.append("category " + ", ".join(quote_name(c) for c in self.categories))
        lines += [f"unary {quote_name(p)}(any)" for p in self.unary]
        lines += [f"binary {quote_name(p)}(any, any)" for p in self.predicates]
        return "\n".join(lines) + "\n"

    def close(self, header: str = "") -> None:
        if self.manifest.closed:
            return
        self.manifest.close()
        self.captions.close()
        text = self.vocabulary_override if self.vocabulary_override is not None else self.vocabulary_text(header)
        (self.out / "vocabulary.stl").write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------- helpers


#: Largest annotation file a converter reads (pvsg.json, VidVRD/VidOR and Something-Else annotations, class
#: lists, LASER spec records) and largest data pickle (Action Genome's, LASER's masks), in bytes.
ANNOTATION_LIMIT = 1 << 30
PICKLE_LIMIT = 2 << 30


def read_text(path: Path, what: str, limit: int | None = None) -> str:
    """A UTF-8 file through :mod:`laser_train.data.files` (regular files only, size cap, the first bad byte's
    line and column), or a ConvertError ``"PATH: why"``; the message never quotes the file."""
    try:
        return _files.read_text(path, ANNOTATION_LIMIT if limit is None else limit, what)
    except _files.FileProblem as exc:
        raise ConvertError(f"{path}: {exc}") from None


def read_json(path: Path, what: str, limit: int | None = None) -> Any:
    """A JSON file as :func:`read_text` reads it, parsed with bounded nesting, no NaN/Infinity and no integers
    of thousands of digits (:func:`laser_train.data.files.loads_json`: errors at line and column), or a
    ConvertError naming it."""
    text = read_text(path, what, limit)
    try:
        return _files.loads_json(text, f"{what} {path}")
    except _files.FileProblem as exc:
        raise ConvertError(f"{path}: {exc}") from None


def split_from_name(text: str, default: str = "train") -> str:
    """``train`` / ``val`` / ``test`` from a path or split name (``validation`` → ``val``)."""
    low = text.lower()
    for key, split in (("train", "train"), ("val", "val"), ("test", "test")):
        if key in low:
            return split
    return default


def list_frames(folder: Path) -> list[Path]:
    """The image files of a frame folder in name order (natural order for numbered names)."""
    from laser_train.data.format import IMAGE_SUFFIXES

    def key(p: Path):
        return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", p.name)]

    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=key)


def check_box(where: str, box: Any, width: int, height: int, tolerance: float = 1.0) -> list[float]:
    """``box`` as [x0, y0, x1, y1] floats inside the frame (within ``tolerance`` pixels, then clipped)."""
    if (not isinstance(box, (list, tuple)) or len(box) != 4
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in box)):
        raise Invalid(where, f"a box is four finite numbers, got {box!r}")
    x0, y0, x1, y1 = (float(x) for x in box)
    if x0 < -tolerance or y0 < -tolerance or x1 > width + tolerance or y1 > height + tolerance:
        raise Invalid(where, f"box {list(box)} is outside the {width}x{height} frame")
    x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
    if x1 <= x0 or y1 <= y0:
        raise Invalid(where, f"empty box {list(box)} (need x0 < x1 and y0 < y1)")
    return [x0, y0, x1, y1]


def rle_encode(mask: np.ndarray) -> dict:
    """A boolean [H, W] mask as uncompressed COCO RLE (:func:`laser_train.data.masks.rle_encode`, list form)."""
    return _masks.rle_encode(mask, compressed=False)


rle_decode = _masks.rle_decode
mask_box = _masks.mask_bbox


def template_caption(facts: list[FactOut], category: dict[str, str | None], max_events: int = 3,
                     copula: str = "") -> str:
    """A mechanical caption from relation instances: the first ``max_events`` distinct
    (subject category, predicate, object category) in order of their first frame, joined by "then",
    each as "a SUBJECT [copula ]PREDICATE a OBJECT" with underscores and slashes read as spaces
    (VidVRD: "A dog chase a frisbee"; Action Genome, copula "is": "A person is looking at a cup")."""
    events: list[tuple[str, str, str]] = []
    for f in sorted(facts, key=lambda f: (min(f.frames) if f.frames else 0, f.subject, f.object)):
        if not f.frames:
            continue
        key = (category.get(f.subject) or "thing", f.predicate, category.get(f.object) or "thing")
        if key not in events:
            events.append(key)
        if len(events) == max_events:
            break

    def words(s: str) -> str:
        return re.sub(r"[_/]+", " ", s).strip()

    parts = [f"a {words(s)} {copula + ' ' if copula else ''}{words(p)} a {words(o)}" for s, p, o in events]
    if not parts:
        return ""
    text = ", then ".join(parts)
    return text[0].upper() + text[1:] + "."


# ---------------------------------------------------------------------------------------------- pickles

#: Globals a data pickle of Action Genome / LASER may reference: numpy arrays, dtypes, scalars and plain
#: containers. Anything else (a function, os.system, a class with a custom __reduce__) is refused.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"), ("collections", "defaultdict"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"), ("builtins", "complex"),
    ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"), ("builtins", "bytearray"),
    ("_codecs", "encode"),  # how Python 2 pickles of numpy arrays store their bytes
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a dataset pickle holds only "
                                         f"numbers, strings, lists, dicts and numpy arrays")
        return super().find_class(module, name)


def safe_load_pickle(path: Path, what: str, limit: int | None = None) -> Any:
    """Unpickle a data file allowing only plain containers and numpy arrays; errors name the file.

    The file is read by :func:`laser_train.data.files.read_bytes` (regular files only, at most ``limit`` bytes).
    """
    try:
        data = _files.read_bytes(path, PICKLE_LIMIT if limit is None else limit, what)
    except _files.FileProblem as exc:
        raise ConvertError(f"{path}: {exc}") from None
    try:
        return _SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except EOFError:
        raise ConvertError(f"{path}: {what} is truncated (the pickle ends early); download it again") from None
    except pickle.UnpicklingError as exc:
        if "truncated" in str(exc) or "ran out of input" in str(exc).lower():
            raise ConvertError(f"{path}: {what} is truncated (the pickle ends early); download it again") from None
        raise ConvertError(f"{path}: {what} is not a readable data pickle: {exc}") from None
    except (ValueError, TypeError, AttributeError, IndexError, KeyError,
            ImportError) as exc:
        raise ConvertError(f"{path}: {what} is not a readable data pickle: {exc}") from None
