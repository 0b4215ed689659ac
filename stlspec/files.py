"""Reading untrusted input files: one place that refuses what cannot be read safely.

Every reader of a user-supplied file (traces, captions JSONL, ``--synonyms``, …)
goes through :func:`read_text`, which turns each way a path can be unusable
into one positioned :class:`~stlspec.diagnostics.StlError` instead of a
traceback or a hang:

* a missing file, a directory, a permission problem (``OSError``);
* a special file -- a device such as ``/dev/zero``, a FIFO, a socket -- which
  could be read forever: only regular files are read;
* a file larger than the caller's limit (checked on ``stat`` and again while
  reading, in case it grows);
* bytes that are not UTF-8: the error names the line and column of the first
  bad byte (and never echoes the file's contents).

:func:`parse_json` adds JSON's own failure modes: syntax errors at their
position, nesting deeper than :data:`MAX_JSON_DEPTH` (checked before parsing,
so the parser never recurses that deep), integers with thousands of digits.

:func:`write_text` is the writing side: an output path that is a directory, in
a missing directory or not writable is E804 (:func:`check_writable` says so
before a long run starts), never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import stat
from typing import Any, Callable

from stlspec.diagnostics import MessageConstructor, StlError, cannot_write
from stlspec.span import Span

__all__ = ["read_text", "parse_json", "first_too_deep", "write_text", "check_writable", "MAX_JSON_DEPTH",
           "DEFAULT_MAX_BYTES"]

#: Default size limit of an input file (bytes).
DEFAULT_MAX_BYTES = 256 * 2**20
#: Deepest JSON nesting (arrays and objects) any input format needs is ~6; far more is refused.
MAX_JSON_DEPTH = 200


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n} bytes"


def read_text(path: str | os.PathLike, *, error: MessageConstructor, what: str,
              max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The UTF-8 text of the regular file ``path``, or :class:`StlError` saying what is wrong.

    ``error`` is the constructor (from :mod:`stlspec.diagnostics`) of the caller's
    code, e.g. ``diagnostics.cannot_read`` (E801) or ``diagnostics.malformed_trace``
    (E501); ``what`` names the file's role in messages ("trace file", "captions
    file", …). A UTF-8 byte-order mark is dropped.
    """
    p = os.fspath(path)

    def fail(message: str, span: Span | None = None, hints: tuple[str, ...] = ()) -> StlError:
        return StlError([error(message, span or Span(), p, hints)])

    try:
        st = os.stat(p)
    except OSError as e:
        raise fail(f"cannot read {what}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise fail(f"cannot read {what}: it is a directory", hints=("pass a file inside it",))
    if not stat.S_ISREG(st.st_mode):
        raise fail(f"cannot read {what}: not a regular file (a device, FIFO or socket could be read forever)",
                   hints=("copy the data into a regular file first",))
    if st.st_size > max_bytes:
        raise fail(f"{what} is {_mib(st.st_size)}, more than the limit of {_mib(max_bytes)}")
    try:
        with open(p, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as e:
        raise fail(f"cannot read {what}: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise fail(f"{what} grew past the limit of {_mib(max_bytes)} while being read")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise fail(f"{what} is not valid UTF-8: byte 0x{data[e.start]:02x} at line {line}, column {col} "
                   f"(byte offset {e.start})", Span(e.start, e.start + 1, line, col, line, col + 1),
                   ("save the file as UTF-8",)) from None
    return text[1:] if text.startswith("\ufeff") else text


#: A JSON string (an unterminated one runs to the end, a trailing backslash included).
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def first_too_deep(text: str, limit: int) -> int | None:
    """Offset of the first bracket nested deeper than ``limit`` (outside strings), else ``None``."""
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0  # the fast check: the brackets outside strings, in C; the offset only when one is too deep
    for ch in _BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if ch in "[{" else -1
        if depth > limit:
            return _first_too_deep_at(text, limit)
    return None


def _first_too_deep_at(text: str, limit: int) -> int | None:
    depth, in_str, esc = 0, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return i
        elif ch in "]}":
            depth -= 1
    return None


def _span_at(text: str, pos: int, line: int | None) -> Span:
    if line is not None:  # one line of a JSONL file
        return Span(0, 0, line, pos + 1, line, pos + 2)
    ln = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return Span(pos, pos + 1, ln, col, ln, col + 1)


def parse_json(text: str, *, error: MessageConstructor, path: str, what: str = "JSON",
               object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
               line: int | None = None) -> Any:
    """``json.loads(text)`` with every failure as a positioned :class:`StlError` built by ``error``.

    ``line``: ``text`` is that line of a JSONL file (positions become columns of it).
    """
    deep = first_too_deep(text, MAX_JSON_DEPTH) if text.count("[") + text.count("{") > MAX_JSON_DEPTH else None
    if deep is not None:
        raise StlError([error(f"{what} nests arrays/objects more than {MAX_JSON_DEPTH} deep",
                              _span_at(text, deep, line), path)])
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except json.JSONDecodeError as e:
        raise StlError([error(f"invalid {what}: {e.msg}", _span_at(text, e.pos, line), path)]) from None
    except (ValueError, RecursionError) as e:  # e.g. an integer of more than 4300 digits
        raise StlError([error(f"invalid {what}: {str(e).split(';')[0][:120]}", Span(), path)]) from None


def check_writable(path: str | os.PathLike) -> None:
    """Raise E804 now if ``path`` cannot be an output file: it is a directory, or its directory is missing."""
    p = os.fspath(path)
    if os.path.isdir(p):
        raise StlError([cannot_write(p, "it is a directory")])
    parent = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(parent):
        raise StlError([cannot_write(p, f"the directory {os.path.dirname(p) or '.'} does not exist")])


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, or raise E804 (a directory, a missing directory, no permission)."""
    check_writable(path)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise StlError([cannot_write(os.fspath(path), exc.strerror or str(exc))]) from None
