"""Reading dataset files defensively: regular files only, capped sizes, UTF-8, bounded JSON nesting.

Every reader of :mod:`laser_train.data` goes through :func:`read_text` / :func:`read_json`, so a
manifest that points at ``/dev/zero``, a directory, a FIFO, a 10 GB file, Latin-1 text or a JSON
document nested 100,000 levels deep gives a :class:`FileProblem` naming the file and what is wrong
(never a hang, a ``MemoryError`` or a ``RecursionError``). Messages never quote the file's content,
so a path pointing at a file that is not part of the dataset cannot leak it into logs.

Limits (bytes): manifests :data:`MANIFEST_LIMIT`, tracks files :data:`TRACKS_LIMIT`, scene graphs
:data:`SCENE_GRAPH_LIMIT`, spec and vocabulary files :data:`SPEC_LIMIT`. JSON nesting is limited to
:data:`MAX_JSON_DEPTH` levels (a tracks file needs 5).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from stlspec.files import first_too_deep

__all__ = ["DataError", "FileProblem", "read_bytes", "read_text", "read_json", "loads_json", "MANIFEST_LIMIT",
           "TRACKS_LIMIT", "SCENE_GRAPH_LIMIT", "SPEC_LIMIT", "MAX_JSON_DEPTH", "safe_name"]

MANIFEST_LIMIT = 1 << 30  # 1 GiB
TRACKS_LIMIT = 256 << 20  # 256 MiB (RLE masks of long videos are large)
SCENE_GRAPH_LIMIT = 256 << 20
SPEC_LIMIT = 64 << 20
MAX_JSON_DEPTH = 64


class DataError(ValueError):
    """Base of the data pipeline's input errors (the CLI prints them without a traceback)."""


class FileProblem(DataError):
    """A file that cannot be used; the message says which and why, without quoting its content."""


def _size(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{n} bytes"


def read_bytes(path: str | os.PathLike, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``), or :class:`FileProblem`."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise FileProblem(f"{what} not found: {p}") from None
    except OSError as exc:
        raise FileProblem(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise FileProblem(f"{what} {p} is a directory, expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise FileProblem(f"{what} {p} is not a regular file (a device, FIFO or socket)")
    if st.st_size > limit:
        raise FileProblem(f"{what} {p} is {_size(st.st_size)}, over the limit of {_size(limit)}")
    try:
        with open(p, "rb") as fh:
            data = fh.read(limit + 1)  # the file may grow between stat and read
    except OSError as exc:
        raise FileProblem(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise FileProblem(f"{what} {p} is over the limit of {_size(limit)}")
    return data


def read_text(path: str | os.PathLike, limit: int, what: str = "file") -> str:
    """The UTF-8 text of the regular file ``path`` (at most ``limit`` bytes), or :class:`FileProblem`."""
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FileProblem(f"{what} {Path(path)}:{line}:{col}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                          "save it as UTF-8") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (use a number or null)")


def loads_json(text: str, where: str) -> Any:
    """``json.loads`` with a depth limit, no NaN/Infinity, and errors as :class:`FileProblem` at ``where``."""
    if ("[" in text or "{" in text) and first_too_deep(text, MAX_JSON_DEPTH) is not None:
        raise FileProblem(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise FileProblem(f"{where}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    except ValueError as exc:  # parse_constant, or a huge integer literal (Python's digit limit)
        raise FileProblem(f"{where}: invalid JSON: {exc}") from None
    except RecursionError:  # pragma: no cover - the depth scan rejects these first
        raise FileProblem(f"{where}: JSON nested too deeply") from None


def read_json(path: str | os.PathLike, limit: int, what: str = "file") -> Any:
    """The parsed JSON document of ``path`` (see :func:`read_text` and :func:`loads_json`)."""
    return loads_json(read_text(path, limit, what), f"{what} {path}")


_UNSAFE = set('/\\:*?"<>|\0')


def safe_name(text: str, limit: int = 120) -> str:
    """``text`` as one file-name component: path separators and other unsafe characters become ``_``,
    a leading dot is escaped, long names are truncated and given a short hash so that distinct ids
    stay distinct (``a/b`` and ``a_b`` both map to names that differ)."""
    import hashlib

    out = "".join("_" if (c in _UNSAFE or ord(c) < 32) else c for c in text)
    if out.startswith("."):
        out = "_" + out
    if out != text or len(out) > limit or not out:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        out = f"{out[:limit]}-{digest}"
    return out
