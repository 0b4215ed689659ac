"""Captions in, records out: the data of a caption → spec run and its files.

* :class:`Caption` — one input line (``{"id": …, "caption": …}``).
* :class:`SpecRecord` — one result, whatever happened: the spec text, a status
  (``ok`` / ``repaired`` / ``failed``), the diagnostics, the model, the
  number of rounds, token usage and whether it came from the cache. A caption
  is never silently dropped: a failure is a record too.
* :data:`LLM_CODES` — the codes of problems that are not compiler diagnostics
  (no spec in the answer, a refusal, an API error, …). They are
  :class:`~stlspec.diagnostics.Diagnostic` objects like the compiler's (which keep
  their own codes, ``E201`` …), built by the ``llm_*`` constructors of
  :mod:`stlspec.diagnostics`; a record holds both kinds in one list and writes
  them to the JSONL report with ``Diagnostic.to_dict()``.
* Readers and writers for the caption JSONL, the output ``.stl`` and the JSONL
  report.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

from stlspec.diagnostics import CODES, Diagnostic, StlError, llm_unreadable_input
from stlspec.span import Span

__all__ = [
    "Caption", "SpecRecord", "LLM_CODES", "load_captions", "spec_name_for", "write_report", "write_stl",
    "CaptionFileError",
]

STATUSES = ("ok", "repaired", "failed")

#: Problems found by the caption pipeline itself (not by the compiler): E7xx/W7xx in the one registry.
LLM_CODES: dict[str, str] = {c: e.title for c, e in CODES.items() if c[1] == "7"}


class CaptionFileError(StlError, ValueError):
    """A captions file that cannot be read or is malformed: E706 diagnostics naming the file, line and column."""


@dataclass(frozen=True, slots=True)
class Caption:
    id: str
    text: str


@dataclass
class SpecRecord:
    caption_id: str
    caption: str
    spec_name: str
    status: str                      # "ok" | "repaired" | "failed"
    spec: str | None = None          # the valid spec text; for failures, the last attempt (if any)
    diagnostics: list[Diagnostic] = field(default_factory=list)  # errors of the last attempt, or warnings
    rendered: str = ""               # the diagnostics as the compiler prints them, for review
    model: str = ""
    rounds: int = 0                  # API requests made for this caption (1 = no repair)
    usage: dict = field(default_factory=dict)
    cache_hit: bool = False          # every answer came from the cache (nothing paid in this run)
    renamed: dict = field(default_factory=dict)  # vocabulary normalization: model's name → vocabulary name
    prompt_version: str = ""
    error: str | None = None         # refusal / API error message
    transient: bool = False          # failed for a reason worth retrying (not cached)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict:
        """The JSON form (one line of the report; also what the cache stores)."""
        out = asdict(replace(self, diagnostics=[]))
        out["diagnostics"] = [d.to_dict() for d in self.diagnostics]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "SpecRecord":
        names = {f for f in cls.__dataclass_fields__}
        fields = {k: v for k, v in d.items() if k in names}
        fields["diagnostics"] = [Diagnostic.from_dict(x) for x in fields.get("diagnostics") or ()]
        return cls(**fields)

    def headline(self) -> str:
        """One line saying why a record failed (for summaries)."""
        if self.error:
            return self.error
        errs = [d for d in self.diagnostics if d.is_error]
        if not errs:
            return self.status
        first = errs[0]
        more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
        return f"{first.code} {first.message}{more}"


from stlspec.naming import comment_block as _comment, spec_name_for  # noqa: E402,F401 - re-exported


#: Largest captions file read (bytes), and longest caption.
MAX_CAPTIONS_BYTES = 512 * 2**20
MAX_CAPTION_CHARS = 20_000

_ID_KEYS = ("id", "caption_id", "video_id", "key", "name")
_TEXT_KEYS = ("caption", "text", "description")


def load_captions(path: str | os.PathLike) -> list[Caption]:
    """Read captions from JSONL (``{"id": …, "caption": …}`` per line) or plain text (one per line).

    JSONL lines may name the id ``id``/``caption_id``/``video_id`` and the text
    ``caption``/``text``; a line without an id gets ``line<N>``. Blank lines are
    skipped. An unreadable file or a malformed line raises :class:`CaptionFileError`
    (E706) naming the file, the line and, where known, the column.
    """
    from stlspec.files import MAX_JSON_DEPTH, first_too_deep, read_text

    path = Path(path)
    try:
        # Lines end at "\n" only (str.splitlines would also split at U+2028 inside a JSON string).
        lines = read_text(path, error=llm_unreadable_input, what="captions file",
                          max_bytes=MAX_CAPTIONS_BYTES).split("\n")
    except StlError as err:
        raise CaptionFileError(err.diagnostics) from None

    def bad(n: int, message: str, column: int = 0) -> CaptionFileError:
        span = Span(0, 0, n, column, n, column + 1) if column else Span(0, 0, n, 1, n, len(lines[n - 1]) + 1)
        return CaptionFileError([llm_unreadable_input(message, span, str(path))])

    out: list[Caption] = []
    jsonl = path.suffix.lower() in (".jsonl", ".json", ".ndjson") or any(
        ln.lstrip().startswith("{") for ln in lines[:5])
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not jsonl:
            out.append(Caption(f"line{n}", line.strip()))
            continue
        deep = first_too_deep(line, MAX_JSON_DEPTH)
        if deep is not None:
            raise bad(n, f"JSON nested more than {MAX_JSON_DEPTH} deep", deep + 1)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise bad(n, f"not valid JSON: {exc.msg}", exc.colno) from None
        except (ValueError, RecursionError) as exc:  # e.g. an integer of thousands of digits
            raise bad(n, f"not valid JSON: {str(exc).split(';')[0][:100]}") from None
        if isinstance(obj, str):
            out.append(Caption(f"line{n}", obj))
            continue
        if not isinstance(obj, dict):
            raise bad(n, "expected a JSON object with a caption")
        text = next((obj[k] for k in _TEXT_KEYS if isinstance(obj.get(k), str)), None)
        if text is None or not text.strip():
            raise bad(n, f"no caption text (expected one of the keys {', '.join(_TEXT_KEYS)})")
        cid = next((obj[k] for k in _ID_KEYS if obj.get(k) not in (None, "")), f"line{n}")
        if not isinstance(cid, (str, int)) or isinstance(cid, bool):
            raise bad(n, "the caption id must be a string or an integer")
        if len(str(cid)) > 1000 or len(text) > MAX_CAPTION_CHARS:
            raise bad(n, f"caption or id too long (at most {MAX_CAPTION_CHARS} characters)")
        out.append(Caption(str(cid), text.strip()))
    return out


def _atomic_write(path: Path, text: str) -> None:
    """Write through a temporary file (creating missing folders); E804 if that is impossible."""
    from stlspec.diagnostics import cannot_write

    tmp = path.with_name(path.name + ".tmp")
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "it is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise StlError([cannot_write(str(path), exc.strerror or str(exc))]) from None


def write_report(records: Iterable[SpecRecord], path: str | os.PathLike) -> None:
    """One JSON object per record, in input order."""
    _atomic_write(Path(path), "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records))


def write_stl(records: Sequence[SpecRecord], path: str | os.PathLike, *, header: str = "",
              include: str | None = None, declarations: str = "") -> None:
    """The output ``.stl``: valid specs as specs, failures as comments (the file always compiles).

    ``include`` is the vocabulary file (written relative to the output's
    folder); ``declarations`` are written instead for open-vocabulary runs.
    """
    path = Path(path)
    parts: list[str] = []
    if header:
        parts.append(_comment(header))
    if include:
        target, here = Path(include).resolve(), path.resolve().parent
        # relative when the two share a folder below the root, so the pair can be moved together
        shared = os.path.commonpath([target, here]) != os.path.abspath(os.sep)
        ref = Path(os.path.relpath(target, here)).as_posix() if shared else target.as_posix()
        parts.append(f'include "{ref}"')
    if declarations.strip():
        parts.append(declarations.strip())
    for r in records:
        if r.ok and r.spec:
            parts.append(r.spec.strip())
        else:
            note = f"FAILED {r.caption_id}: {r.caption}\nreason: {r.headline()}\n(see the JSONL report for all diagnostics)"
            if r.spec:
                note += "\nlast attempt:\n" + "\n".join("  " + ln for ln in r.spec.strip().splitlines())
            parts.append(_comment(note))
    _atomic_write(path, "\n\n".join(parts) + "\n")
