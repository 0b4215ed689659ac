"""Scene-graph traces: the JSON file format and the in-memory numpy form.

A trace is one video's scene graph over ``T`` frames and ``N`` object tracks,
as probabilities in [0, 1] (see ``docs/traces.md`` for the JSON format)::

    names   [N, C]     track n is an entity of category c (constant over time)
    unary   [T, N, P]  unary predicate p holds of track n at frame t
    binary  [T, N, N, R]  binary predicate r holds of (n, m) at frame t
    present [T, N]     bool: track n is visible at frame t

``categories``, ``unary_preds``, ``binary_preds`` and ``track_ids`` name the
columns. **Presence is applied when the arrays are built**: a :class:`Trace`
always has ``unary[t, n] == 0`` where ``present[t, n]`` is false and
``binary[t, n, m] == 0`` where either track is absent, so evaluators may read
the fact arrays directly (the reference interpreter checks presence again
anyway, which is harmless).

Every problem in a trace is reported, all at once, as an
:class:`~stlspec.diagnostics.StlError` with codes E501-E505 and a JSON-path-like
location at the start of each message (``unary[3].frame: frame 40 is out of
range [0, 32)``); bad input never surfaces as a raw ``KeyError``/``TypeError``.
numpy is imported here (not by ``import stlspec``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from stlspec import ir
from stlspec.diagnostics import (
    Diagnostic, MessageConstructor, StlError, did_you_mean, duplicate_trace_fact, frame_out_of_range,
    malformed_trace, probability_out_of_range, unknown_trace_name,
)

__all__ = ["Trace", "load_trace", "TRACE_VERSION"]

TRACE_VERSION = 1

_TOP_KEYS = ("version", "num_frames", "categories", "unary_preds", "binary_preds", "tracks", "unary", "binary")
_TRACK_KEYS = ("id", "names", "present")
_UNARY_KEYS = ("pred", "track", "frame", "frames", "p")
_BINARY_KEYS = ("pred", "subject", "object", "frame", "frames", "p")


#: Largest trace file read (bytes).
MAX_TRACE_BYTES = 512 * 2**20
#: Most frames a trace may have.
MAX_TRACE_FRAMES = 1_000_000
#: Most scores (``T·N·N·R + T·N·P``) a trace may hold: 400 MB as float64.
MAX_TRACE_CELLS = 50_000_000


def _magnitude(n: int) -> str:
    """``n`` for messages: huge integers (10^400) as their digit count, never thousands of digits."""
    digits = len(str(n)) if n < 10**4300 else 4301
    return f"{n:,}" if digits <= 15 else f"a {digits}-digit number of"


def _short_json(x: Any) -> str:
    """At most ~40 characters of ``x`` as JSON, for messages (never thousands of digits)."""
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 10**15:
        return f"a {len(str(abs(x)))}-digit integer" if abs(x) < 10**4300 else "an integer of > 4300 digits"
    try:
        return json.dumps(x)[:40]
    except (ValueError, TypeError, RecursionError):  # pragma: no cover - JSON values always dump
        return type(x).__name__


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Trace:
    """One video's scene graph as numpy arrays (see the module docstring for shapes).

    Arrays are float64 (``present`` is bool), copied and made read-only, and the
    fact arrays are zeroed wherever a track is absent. Equality is structural
    (:meth:`equals`); ``==`` is identity because arrays have no single truth value.
    """

    names: np.ndarray
    unary: np.ndarray
    binary: np.ndarray
    present: np.ndarray
    categories: tuple[str, ...]
    unary_preds: tuple[str, ...]
    binary_preds: tuple[str, ...]
    track_ids: tuple[str, ...]
    # Column lookups, derived once.
    category_index: Mapping[str, int] = field(init=False, repr=False)
    unary_index: Mapping[str, int] = field(init=False, repr=False)
    binary_index: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = np.asarray(self.names, dtype=np.float64)
        unary = np.asarray(self.unary, dtype=np.float64)
        binary = np.asarray(self.binary, dtype=np.float64)
        present = np.asarray(self.present, dtype=bool)
        problems = _shape_problems(names, unary, binary, present, self.categories, self.unary_preds,
                                   self.binary_preds, self.track_ids)
        if problems:
            raise StlError([malformed_trace(m) for m in problems])
        value_problems = []
        for label, a in (("names", names), ("unary", unary), ("binary", binary)):
            bad = np.argwhere(~((a >= 0) & (a <= 1)))  # also catches NaN
            for idx in bad[:10]:
                value_problems.append(f"{label}{list(map(int, idx))}: probability {float(a[tuple(idx)])!r} is not in [0, 1]")
            if len(bad) > 10:
                value_problems.append(f"{label}: {len(bad) - 10} more probabilities outside [0, 1]")
        dup = [f"{kind}: column {n!r} is named twice" for kind, cols in (
            ("categories", self.categories), ("unary_preds", self.unary_preds),
            ("binary_preds", self.binary_preds), ("track_ids", self.track_ids))
            for n in _duplicates(cols)]
        if value_problems or dup:
            raise StlError([probability_out_of_range(m) for m in value_problems]
                           + [duplicate_trace_fact(m) for m in dup])
        # Presence is part of the data: facts about absent tracks are 0.
        unary = unary * present[:, :, None]
        binary = binary * (present[:, :, None] & present[:, None, :])[..., None]
        set_ = object.__setattr__
        set_(self, "names", _readonly(names))
        set_(self, "unary", _readonly(unary))
        set_(self, "binary", _readonly(binary))
        set_(self, "present", _readonly(present))
        for attr in ("categories", "unary_preds", "binary_preds", "track_ids"):
            set_(self, attr, tuple(str(x) for x in getattr(self, attr)))
        set_(self, "category_index", {c: i for i, c in enumerate(self.categories)})
        set_(self, "unary_index", {c: i for i, c in enumerate(self.unary_preds)})
        set_(self, "binary_index", {c: i for i, c in enumerate(self.binary_preds)})

    # ---------------------------------------------------------------- shape

    @property
    def num_frames(self) -> int:
        return int(self.unary.shape[0])

    @property
    def num_tracks(self) -> int:
        return int(self.names.shape[0])

    def equals(self, other: object) -> bool:
        """Same columns (in order) and the same arrays."""
        return (isinstance(other, Trace)
                and (self.categories, self.unary_preds, self.binary_preds, self.track_ids)
                == (other.categories, other.unary_preds, other.binary_preds, other.track_ids)
                and all(np.array_equal(getattr(self, a), getattr(other, a))
                        for a in ("names", "unary", "binary", "present")))

    def is_boolean(self) -> bool:
        """True when every fact is exactly 0 or 1."""
        return all(bool(np.all((a == 0) | (a == 1))) for a in (self.names, self.unary, self.binary))

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_arrays(cls, names: Any, unary: Any, binary: Any, present: Any = None, *,
                    categories: Sequence[str] | None = None, unary_preds: Sequence[str] | None = None,
                    binary_preds: Sequence[str] | None = None,
                    track_ids: Sequence[str] | None = None) -> "Trace":
        """Build a trace from array-likes; omitted column names default to ``c0``, ``u0``, ``b0``, ``t0``...

        ``present=None`` means every track is present at every frame.
        """
        names, unary, binary = (np.asarray(a, dtype=np.float64) for a in (names, unary, binary))
        if unary.ndim != 3 or names.ndim != 2:
            raise StlError([malformed_trace(f"expected names [N, C] and unary [T, N, P], got shapes "
                                                        f"{names.shape} and {unary.shape}")])
        T, N = unary.shape[0], names.shape[0]
        if present is None:
            present = np.ones((T, N), dtype=bool)
        default = lambda prefix, k: tuple(f"{prefix}{i}" for i in range(k))  # noqa: E731
        return cls(
            names=names, unary=unary, binary=binary, present=np.asarray(present, dtype=bool),
            categories=tuple(categories) if categories is not None else default("c", names.shape[1]),
            unary_preds=tuple(unary_preds) if unary_preds is not None else default("u", unary.shape[2]),
            binary_preds=(tuple(binary_preds) if binary_preds is not None
                          else default("b", binary.shape[-1] if binary.ndim == 4 else 0)),
            track_ids=tuple(track_ids) if track_ids is not None else default("t", N),
        )

    @classmethod
    def from_dict(cls, data: Any, vocabulary: ir.Vocabulary | None = None, path: str = "<trace>") -> "Trace":
        """Validate the JSON form (see ``docs/traces.md``) and build the arrays.

        With a ``vocabulary`` the columns are the vocabulary's categories and
        predicates and any other name is an error (E502); without one they are
        the trace's declared ``categories``/``unary_preds``/``binary_preds`` (if
        given) followed by every other name it mentions, in order of appearance.
        Raises one :class:`StlError` holding every problem found.
        """
        return _Reader(path, vocabulary).read(data)

    def to_dict(self) -> dict:
        """The JSON form: columns declared up front, one entry per predicate and tracks that hold at some
        frame, listing those frames (one ``p``, or one per frame where they differ)."""
        T = self.num_frames
        tracks = []
        for n, tid in enumerate(self.track_ids):
            entry: dict[str, Any] = {"id": tid, "names": {
                c: float(self.names[n, i]) for i, c in enumerate(self.categories) if self.names[n, i] != 0}}
            if not self.present[:, n].all():
                entry["present"] = [int(t) for t in np.flatnonzero(self.present[:, n])]
            tracks.append(entry)
        ids = self.track_ids
        unary = [{"pred": self.unary_preds[i], "track": ids[n], **_when(frames, ps)}
                 for (i, n), frames, ps in _runs(self.unary.transpose(2, 1, 0))]
        binary = [{"pred": self.binary_preds[i], "subject": ids[n], "object": ids[m], **_when(frames, ps)}
                  for (i, n, m), frames, ps in _runs(self.binary.transpose(3, 1, 2, 0))]
        return {"version": TRACE_VERSION, "num_frames": T, "categories": list(self.categories),
                "unary_preds": list(self.unary_preds), "binary_preds": list(self.binary_preds),
                "tracks": tracks, "unary": unary, "binary": binary}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _runs(values: np.ndarray):
    """``values[..., T]``: for every leading index with a non-zero frame, in order, the index, its
    non-zero frames and their values."""
    where = np.nonzero(values)
    if not len(where[0]):
        return
    lead = np.stack(where[:-1], 1)
    cuts = [0, *(np.flatnonzero((lead[1:] != lead[:-1]).any(1)) + 1).tolist(), len(lead)]
    frames, vals = where[-1].tolist(), values[where].tolist()
    for a, b in zip(cuts, cuts[1:]):
        yield tuple(lead[a].tolist()), frames[a:b], vals[a:b]


def _when(frames: list[int], ps: list[float]) -> dict[str, Any]:
    """A fact's frames and probabilities in JSON: ``frame`` for one, one ``p`` when all are equal."""
    p: Any = ps[0] if all(x == ps[0] for x in ps) else ps
    return {"frame": frames[0], "p": p} if len(frames) == 1 else {"frames": frames, "p": p}


def load_trace(path: str, vocabulary: ir.Vocabulary | None = None) -> Trace:
    """Read a JSON trace file (see :meth:`Trace.from_dict`); all problems raise one :class:`StlError`.

    Unreadable paths (missing, directories, devices, non-UTF-8, over
    :data:`MAX_TRACE_BYTES`), invalid or too deeply nested JSON and traces over
    the size limits (:data:`MAX_TRACE_FRAMES`, :data:`MAX_TRACE_CELLS`) are
    E501 with the position or JSON path of the problem.
    """
    from stlspec.files import parse_json, read_text

    text = read_text(path, error=malformed_trace, what="trace file", max_bytes=MAX_TRACE_BYTES)
    dup_keys: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict:
        # json.loads would keep the last of two equal keys silently; we report it.
        seen: dict[str, Any] = {}
        for k, val in items:
            if k in seen:
                dup_keys.append(k)
            seen[k] = val
        return seen

    data = parse_json(text, error=malformed_trace, path=str(path), what="JSON", object_pairs_hook=pairs)
    diags = [duplicate_trace_fact(f"key {k[:80]!r} appears twice in one JSON object", path=str(path))
             for k in dup_keys]
    try:
        trace = Trace.from_dict(data, vocabulary, path=str(path))
    except StlError as e:
        raise StlError(diags + list(e.diagnostics)) from None
    if diags:
        raise StlError(diags)
    return trace


# ---------------------------------------------------------------------- validation


def _duplicates(items: Iterable[str]) -> list[str]:
    seen, out = set(), []
    for x in items:
        if x in seen and x not in out:
            out.append(x)
        seen.add(x)
    return out


def _shape_problems(names, unary, binary, present, cats, ups, bps, tids) -> list[str]:
    if unary.ndim != 3 or names.ndim != 2 or binary.ndim != 4 or present.ndim != 2:
        return [f"expected names [N, C], unary [T, N, P], binary [T, N, N, R], present [T, N]; got shapes "
                f"{names.shape}, {unary.shape}, {binary.shape}, {present.shape}"]
    T, N = unary.shape[:2]
    out = []
    if T < 1:
        out.append("a trace has at least one frame")
    want = {"names": (N, len(cats)), "unary": (T, N, len(ups)), "binary": (T, N, N, len(bps)),
            "present": (T, N)}
    got = {"names": names.shape, "unary": unary.shape, "binary": binary.shape, "present": present.shape}
    for k, shape in want.items():
        if tuple(got[k]) != shape:
            out.append(f"{k}: shape {tuple(got[k])} does not match the expected {shape} "
                       f"(T={T}, N={N} and the column names)")
    if len(tids) != N:
        out.append(f"track_ids: {len(tids)} names for {N} tracks")
    return out


class _Reader:
    """Collects every problem of one JSON trace; builds the arrays if there are none."""

    def __init__(self, path: str, vocabulary: ir.Vocabulary | None):
        self.path = path
        self.vocab = vocabulary
        self.diags: list[Diagnostic] = []
        self.closed: set[str] = set()  # column kinds that accept no new names

    def err(self, make: MessageConstructor, where: str, msg: str, hints: Sequence[str] = ()) -> None:
        """Report ``msg`` at JSON path ``where`` with ``make``, the constructor of its code."""
        self.diags.append(make(f"{where}: {msg}" if where else msg, path=self.path, hints=hints))

    # -- small typed getters: each reports and returns None on a bad value

    def _int(self, where: str, x: Any) -> int | None:
        if isinstance(x, bool) or not isinstance(x, int):
            if isinstance(x, float) and x.is_integer():
                return int(x)
            self.err(malformed_trace, where, f"expected an integer frame, got {_short_json(x)}")
            return None
        return x

    def _frame(self, where: str, x: Any, T: int | None) -> int | None:
        t = self._int(where, x)
        if t is not None and T is not None and not 0 <= t < T:
            self.err(frame_out_of_range, where, f"frame {_short_json(t)} is out of range [0, {T})")
            return None
        return t

    def _prob(self, where: str, x: Any) -> float | None:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            self.err(probability_out_of_range, where, f"probability must be a number in [0, 1], got {_short_json(x)}")
            return None
        if math.isnan(x) or not 0 <= x <= 1:
            self.err(probability_out_of_range, where, f"probability {x} is not in [0, 1]")
            return None
        return float(x)

    def _name(self, where: str, x: Any) -> str | None:
        if not isinstance(x, str) or not x:
            self.err(malformed_trace, where, f"expected a non-empty string, got {_short_json(x)}")
            return None
        return x

    def _track_ref(self, where: str, x: Any) -> str | None:
        # Trackers often number tracks: integer ids are accepted and read as strings.
        if isinstance(x, int) and not isinstance(x, bool):
            return str(x)
        return self._name(where, x)

    def _keys(self, where: str, obj: dict, allowed: Sequence[str], required: Sequence[str]) -> None:
        for k in obj:
            if k not in allowed:
                self.err(malformed_trace, f"{where}.{k}" if where else k, f"unknown key {k!r}",
                         [f"did you mean {m!r}?" for m in did_you_mean(str(k), allowed)[:1]]
                         or [f"expected keys: {', '.join(allowed)}"])
        for k in required:
            if k not in obj:
                self.err(malformed_trace, where or "trace", f"missing required key {k!r}")

    def _list(self, where: str, x: Any) -> list:
        if not isinstance(x, list):
            self.err(malformed_trace, where, f"expected a list, got {type(x).__name__}")
            return []
        return x

    # -- columns

    def _columns(self, data: dict) -> dict[str, list[str]]:
        """Column names per kind: the vocabulary's, or the trace's declared ones."""
        cols: dict[str, list[str]] = {"categories": [], "unary_preds": [], "binary_preds": []}
        if self.vocab is not None:
            cols = {"categories": list(self.vocab.categories), "unary_preds": list(self.vocab.unary_names),
                    "binary_preds": list(self.vocab.binary_names)}
        for kind in cols:
            if kind not in data:
                continue
            declared = self._list(kind, data[kind])
            for i, name in enumerate(declared):
                name = self._name(f"{kind}[{i}]", name)
                if name is None:
                    continue
                if self.vocab is not None:
                    self._check_known(f"{kind}[{i}]", kind, name, cols[kind])
                elif name in cols[kind]:
                    self.err(duplicate_trace_fact, f"{kind}[{i}]", f"{name!r} is declared twice")
                else:
                    cols[kind].append(name)
        return cols

    _KIND_WORD = {"categories": "category", "unary_preds": "unary predicate", "binary_preds": "binary predicate"}

    def _check_known(self, where: str, kind: str, name: str, known: list[str]) -> bool:
        if name in known:
            return True
        hint = [f"did you mean {m!r}?" for m in did_you_mean(name, known)[:1]]
        self.err(unknown_trace_name, where, f"unknown {self._KIND_WORD[kind]} {name!r}", hint)
        return False

    def _column(self, where: str, kind: str, name: str, cols: dict[str, list[str]]) -> int | None:
        """Index of ``name``; without a vocabulary new names become new columns."""
        if self.vocab is None and kind not in self.closed and name not in cols[kind]:
            cols[kind].append(name)
        if not self._check_known(where, kind, name, cols[kind]):
            return None
        return cols[kind].index(name)

    # -- the document

    def read(self, data: Any) -> Trace:
        if not isinstance(data, dict):
            self.err(malformed_trace, "", f"a trace is a JSON object, got {type(data).__name__}")
            raise StlError(self.diags)
        self._keys("", data, _TOP_KEYS, ("num_frames", "tracks"))
        if "version" in data and data["version"] != TRACE_VERSION:
            self.err(malformed_trace, "version", f"unsupported trace version {_short_json(data['version'])}; "
                                        f"this is version {TRACE_VERSION}")
        T = None
        if "num_frames" in data:
            T = self._int("num_frames", data["num_frames"])
            if T is not None and T < 1:
                self.err(malformed_trace, "num_frames", f"a trace has at least one frame, got {T}")
                T = None
            elif T is not None and T > MAX_TRACE_FRAMES:
                self.err(malformed_trace, "num_frames", f"{_magnitude(T)} frames is more than the limit of "
                                               f"{MAX_TRACE_FRAMES:,} frames per trace",
                         ("sample the video's frames more sparsely",))
                T = None
        cols = self._columns(data)
        # Declared columns (when given without a vocabulary) are closed: a fact
        # with another name is then a typo, not a new column.
        self.closed = {kind for kind in cols if kind in data}

        track_ids: list[str] = []
        names_facts: list[tuple[int, int, float]] = []
        presence: dict[int, list[int]] = {}
        for i, tr in enumerate(self._list("tracks", data.get("tracks", []))):
            where = f"tracks[{i}]"
            if not isinstance(tr, dict):
                self.err(malformed_trace, where, f"a track is a JSON object, got {type(tr).__name__}")
                continue
            self._keys(where, tr, _TRACK_KEYS, ("id",))
            tid = self._track_ref(f"{where}.id", tr.get("id")) if "id" in tr else None
            if tid is not None and tid in track_ids:
                self.err(duplicate_trace_fact, f"{where}.id", f"track {tid!r} is defined twice")
                tid = None
            n = len(track_ids)
            track_ids.append(tid if tid is not None else f"<invalid track {i}>")
            tnames = tr.get("names", {})
            if not isinstance(tnames, dict):
                self.err(malformed_trace, f"{where}.names", f"expected an object {{category: probability}}, "
                                                  f"got {type(tnames).__name__}")
                tnames = {}
            for c, p in tnames.items():
                w = f"{where}.names.{c}"
                ci = self._column(w, "categories", c, cols)
                pv = self._prob(w, p)
                if ci is not None and pv is not None:
                    names_facts.append((n, ci, pv))
            if "present" in tr:
                frames = []
                for j, t in enumerate(self._list(f"{where}.present", tr["present"])):
                    tv = self._frame(f"{where}.present[{j}]", t, T)
                    if tv is not None and tv in frames:
                        self.err(duplicate_trace_fact, f"{where}.present[{j}]", f"frame {tv} is listed twice")
                    elif tv is not None:
                        frames.append(tv)
                presence[n] = frames
        track_of = {tid: n for n, tid in enumerate(track_ids)}

        def track(where: str, x: Any) -> int | None:
            tid = self._track_ref(where, x)
            if tid is None:
                return None
            if tid not in track_of:
                hint = [f"did you mean {m!r}?" for m in did_you_mean(tid, track_ids)[:1]]
                self.err(unknown_trace_name, where, f"unknown track {tid!r}", hint)
                return None
            return track_of[tid]

        unary_facts = self._facts(data, "unary", ("track",), track, track_of, cols, T)
        binary_facts = self._facts(data, "binary", ("subject", "object"), track, track_of, cols, T)
        if self.diags:
            raise StlError(self.diags)

        assert T is not None
        N = len(track_ids)
        cells = T * N * N * max(len(cols["binary_preds"]), 1) + T * N * max(len(cols["unary_preds"]), 1)
        if cells > MAX_TRACE_CELLS:
            self.err(malformed_trace, "", f"the trace would hold {cells:,} scores (T={T}, N={N}, "
                                 f"{len(cols['unary_preds'])} unary and {len(cols['binary_preds'])} binary "
                                 f"predicates), more than the limit of {MAX_TRACE_CELLS:,}",
                     ("split the video, or keep fewer tracks or frames",))
            raise StlError(self.diags)
        names = np.zeros((N, len(cols["categories"])))
        unary = np.zeros((T, N, len(cols["unary_preds"])))
        binary = np.zeros((T, N, N, len(cols["binary_preds"])))
        present = np.ones((T, N), dtype=bool)
        for n, c, p in names_facts:
            names[n, c] = p
        for (c, t, n), p in unary_facts.items():
            unary[t, n, c] = p
        for (c, t, n, m), p in binary_facts.items():
            binary[t, n, m, c] = p
        for n, frames in presence.items():
            present[:, n] = False
            present[frames, n] = True
        return Trace(names, unary, binary, present, tuple(cols["categories"]), tuple(cols["unary_preds"]),
                     tuple(cols["binary_preds"]), tuple(track_ids))

    def _facts(self, data: dict, kind: str, roles: tuple[str, ...], track, track_of: dict[str, int], cols,
               T) -> dict[tuple, float]:
        """Read ``unary`` or ``binary`` facts into ``{(column, frame, *tracks): p}`` (``track``: reads and
        checks one track reference; ``track_of``: the track ids' rows, for the fast path)."""
        allowed = _UNARY_KEYS if kind == "unary" else _BINARY_KEYS
        col_kind = "unary_preds" if kind == "unary" else "binary_preds"
        out: dict[tuple, float] = {}
        first_seen: dict[tuple, str | int] = {}  # where each fact was given (an int i: the fast path's fact i)
        fast = _FastFacts(frozenset(allowed), roles, cols[col_kind], track_of, T)
        for i, fact in enumerate(self._list(kind, data.get(kind, []))):
            cells = fast.keys(fact)
            if cells is not None and not any(k in out for k, _ in cells):
                for key, p in cells:
                    out[key] = p
                    first_seen[key] = i
                continue
            where = f"{kind}[{i}]"
            if not isinstance(fact, dict):
                self.err(malformed_trace, where, f"a fact is a JSON object, got {type(fact).__name__}")
                continue
            self._keys(where, fact, allowed, ("pred",) + roles)
            pred = self._name(f"{where}.pred", fact["pred"]) if "pred" in fact else None
            col = self._column(f"{where}.pred", col_kind, pred, cols) if pred is not None else None
            tracks = [track(f"{where}.{r}", fact[r]) if r in fact else None for r in roles]
            if "frame" in fact and "frames" in fact:
                self.err(malformed_trace, where, "give either 'frame' or 'frames', not both")
                continue
            if "frame" in fact:
                frame_list = [(f"{where}.frame", fact["frame"])]
            elif "frames" in fact:
                frame_list = [(f"{where}.frames[{j}]", t) for j, t in enumerate(self._list(f"{where}.frames", fact["frames"]))]
            else:
                self.err(malformed_trace, where, "missing 'frame' (one frame) or 'frames' (a list of frames)")
                continue
            p = fact.get("p", 1.0)
            if isinstance(p, list):
                # One probability per listed frame.
                if len(p) != len(frame_list):
                    self.err(malformed_trace, f"{where}.p", f"{len(p)} probabilities for {len(frame_list)} frames")
                    continue
                probs = [self._prob(f"{where}.p[{j}]", x) for j, x in enumerate(p)]
            else:
                probs = [self._prob(f"{where}.p", p)] * len(frame_list)
            for (fw, t), pv in zip(frame_list, probs):
                tv = self._frame(fw, t, T)
                if tv is None or pv is None or col is None or any(n is None for n in tracks):
                    continue
                key = (col, tv, *tracks)
                if key in out:
                    args = ", ".join(str(fact[r]) for r in roles)
                    seen = first_seen[key]
                    seen = seen if isinstance(seen, str) else _fast_where(kind, seen, data[kind][seen], tv)
                    self.err(duplicate_trace_fact, fw,
                             f"duplicate fact {pred}({args}) at frame {tv}; first given at {seen}")
                    continue
                out[key] = pv
                first_seen[key] = fw
        return out


def _is_int(x: Any) -> bool:
    return type(x) is int  # not bool; floats like 3.0 take the slow path, which accepts them


def _fast_where(kind: str, i: int, fact: dict, frame: int) -> str:
    """The JSON path of frame ``frame`` of fact ``i`` (which the fast path read), for a later error."""
    if "frame" in fact:
        return f"{kind}[{i}].frame"
    return f"{kind}[{i}].frames[{fact['frames'].index(frame)}]"


class _FastFacts:
    """The fact reader's fast path: the cells and probabilities of one well-formed fact (known predicate
    and tracks, frames in range, probabilities in [0, 1]), or None, and the careful path then reads it and
    reports what is wrong. It accepts only what the careful path accepts without a message, so both give
    the same trace."""

    def __init__(self, allowed: frozenset[str], roles: tuple[str, ...], columns: list[str],
                 track_of: dict[str, int], T: int | None):
        self.allowed, self.roles, self.columns, self.track_of, self.T = allowed, roles, columns, track_of, T
        self.index: dict[str, int] = {}

    def _column(self, pred: Any) -> int | None:
        if len(self.index) != len(self.columns):  # the careful path added a column (no vocabulary)
            self.index = {name: c for c, name in enumerate(self.columns)}
        return self.index.get(pred) if type(pred) is str else None

    def keys(self, fact: Any) -> list[tuple[tuple, float]] | None:
        T = self.T
        if type(fact) is not dict or T is None or not self.allowed.issuperset(fact) or "pred" not in fact:
            return None
        col = self._column(fact["pred"])
        if col is None:
            return None
        tracks = []
        for r in self.roles:
            x = fact.get(r)
            n = self.track_of.get(x if type(x) is str else str(x) if _is_int(x) else None)
            if n is None:
                return None
            tracks.append(n)
        if "frame" in fact:
            frames = None if "frames" in fact else [fact["frame"]]
        else:
            frames = fact.get("frames")
        if type(frames) is not list or not all(_is_int(t) and 0 <= t < T for t in frames):
            return None
        p = fact.get("p", 1.0)
        ps = p if type(p) is list else [p]  # one per frame, or one for all of them
        if len(ps) != (len(frames) if type(p) is list else 1) or not all(
                type(x) in (float, int) and 0 <= x <= 1 for x in ps):  # NaN fails the comparison
            return None
        ps = ps if type(p) is list else ps * len(frames)
        keys = [(col, t, *tracks) for t in frames]
        return list(zip(keys, map(float, ps))) if len(set(keys)) == len(keys) else None
