"""Diagnostics as data: stable codes, one named constructor per error, compiler-style rendering.

Every problem stlspec reports is a :class:`Diagnostic` (code, severity, message,
span, hints). Stages collect all of them and raise one :class:`StlError`
holding the list. The registry :data:`CODES` is the single source of truth for
codes; ``docs/errors.md`` is generated from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol

from stlspec.span import NO_SPAN, Span

__all__ = ["Diagnostic", "StlError", "CODES", "ErrorCode", "CONSTRUCTORS", "MessageConstructor", "render",
           "render_all", "to_json", "did_you_mean"]


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    severity: str  # "error" | "warning"
    title: str
    explanation: str


def _codes(*entries: ErrorCode) -> dict[str, ErrorCode]:
    return {e.code: e for e in entries}


#: Every diagnostic code stlspec can emit. Never reuse or renumber a code.
CODES: dict[str, ErrorCode] = _codes(
    # E1xx: syntax
    ErrorCode("E101", "error", "unexpected token", "The parser found a token that cannot appear here."),
    ErrorCode("E102", "error", "unexpected character", "The text contains a character that starts no token."),
    ErrorCode("E103", "error", "unexpected end of input", "The text ends in the middle of a declaration or formula."),
    ErrorCode("E104", "error", "unterminated string", "A quoted name is missing its closing quote."),
    ErrorCode("E106", "error", "misplaced keyword", "A word from another temporal-logic notation was used instead of stlspec's keyword."),
    ErrorCode("E107", "error", "nested too deeply", "A formula nests more operators than the documented limit (stlspec.traverse.MAX_DEPTH = 1000)."),
    # E2xx: names and vocabulary
    ErrorCode("E201", "error", "unknown predicate", "The predicate is not declared in the vocabulary."),
    ErrorCode("E202", "error", "unknown category", "The category is not declared in the vocabulary."),
    ErrorCode("E203", "error", "duplicate declaration", "A category, predicate or spec name is declared twice."),
    ErrorCode("E204", "error", "unbound variable", "A variable is used without being bound by `exists` or `forall`."),
    ErrorCode("E205", "error", "duplicate variable", "A quantifier binds the same variable twice, or shadows an enclosing one."),
    ErrorCode("E206", "error", "include failed", "An included file was read but is not valid stlspec text (the diagnostic does not quote it; files that cannot be read are E801)."),
    ErrorCode("E207", "error", "specs in included file", "Included files may hold declarations only."),
    ErrorCode("E208", "error", "unknown spec", "A spec named on the command line (`--spec`) is not in the file."),
    # E3xx: arity and categories
    ErrorCode("E301", "error", "wrong arity", "The predicate is applied to the wrong number of arguments."),
    ErrorCode("E302", "error", "category mismatch", "A variable's category does not match the predicate's parameter category."),
    ErrorCode("E303", "error", "inconsistent arity", "Without a vocabulary, one predicate name is used with different arities."),
    # E4xx: windows and hints
    ErrorCode("E401", "error", "invalid window", "A window is empty, inverted, or has a negative bound."),
    ErrorCode("E402", "error", "hint out of range", "A hint interval must satisfy 0 <= a <= b <= 1."),
    ErrorCode("E403", "error", "misplaced hint", "Hints may follow a `then` event or an `eventually` formula only."),
    ErrorCode("E404", "error", "unknown hint", "The named hint is not one of early, middle, mid, late, anytime."),
    # E5xx: traces
    ErrorCode("E501", "error", "malformed trace", "The trace JSON does not have the documented shape."),
    ErrorCode("E502", "error", "unknown name in trace", "The trace mentions a predicate, category or track that is not declared."),
    ErrorCode("E503", "error", "frame out of range", "A trace fact refers to a frame outside [0, num_frames)."),
    ErrorCode("E504", "error", "probability out of range", "A probability is not a number in [0, 1]."),
    ErrorCode("E505", "error", "duplicate trace fact", "The same fact is given twice in a trace."),
    # E6xx: evaluation and backends
    ErrorCode("E601", "error", "input too large", "An input beyond a documented size: the exact logic's uncertain facts (it enumerates worlds), a spec needing more relations than the scallop target's limit."),
    ErrorCode("E602", "error", "unsupported by backend", "The chosen backend cannot express this construct or option."),
    ErrorCode("E603", "error", "unknown logic", "The logic name is not one of boolean, godel, product, smooth, exact."),
    ErrorCode("E604", "error", "invalid evaluator input", "A batch, spec id or video id passed to a compiled evaluator does not fit it (shapes, columns, ranges)."),
    # E7xx / W7xx: the caption → spec pipeline (stlspec.llm); reported in records, not raised
    ErrorCode("E701", "error", "no spec found in the answer", "The model's answer contains no `spec` block."),
    ErrorCode("E702", "error", "more than one spec in the answer", "The model's answer holds several specs; one was asked for."),
    ErrorCode("E703", "error", "the model refused", "The model refused to write a spec for this caption (not repaired)."),
    ErrorCode("E704", "error", "API request failed", "The request failed after the SDK's retries (transient: retried on the next run, never cached)."),
    ErrorCode("E705", "error", "batch entry failed", "A Message Batches entry errored, was canceled or expired (transient)."),
    ErrorCode("E706", "error", "unreadable pipeline input", "A captions or synonyms file cannot be read (missing, a directory or device, over its size limit, not UTF-8) or is malformed, or the `--cache` path cannot hold an SQLite cache."),
    ErrorCode("W701", "warning", "answer cut off", "The answer stopped at max_tokens; it was used only if it still checks."),
    ErrorCode("W702", "warning", "declarations ignored", "Declarations in the answer were dropped: the vocabulary is yours, not the model's."),
    # E8xx: reading and writing files
    ErrorCode("E801", "error", "cannot read file", "The file is missing, unreadable, a directory, a special file (a device, FIFO or socket), larger than its size limit (16 MiB for .stl files, 512 MiB for LASER records), or not UTF-8 (the message gives the line and column of the first bad byte)."),
    ErrorCode("E804", "error", "cannot write file", "The output path is a directory, or its directory is missing or not writable."),
    # W: warnings
    ErrorCode("W101", "warning", "unused variable", "A bound variable is never used in the quantifier's body."),
    ErrorCode("W102", "warning", "hint ignored", "The hinted event is nested under a temporal operator; its hint cannot be used for witnesses."),
)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem. ``path`` is the file (or ``<string>``) it is about; ``None`` for problems that are
    about no file (the caption pipeline's E7xx: an answer, a request), rendered without a location."""

    code: str
    message: str
    span: Span = NO_SPAN
    path: str | None = "<string>"
    hints: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unregistered diagnostic code {self.code!r}")

    @property
    def severity(self) -> str:
        return CODES[self.code].severity

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hints": list(self.hints),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Diagnostic":
        """The inverse of :meth:`to_dict` (character offsets, which it does not store, become 0)."""
        span = Span(0, 0, int(d.get("line") or 0), int(d.get("column") or 0), int(d.get("end_line") or 0),
                    int(d.get("end_column") or 0))
        return cls(str(d["code"]), str(d.get("message", "")), span, d.get("path"),
                   hints=tuple(str(h) for h in d.get("hints") or ()))

    def render(self, source: str | None = None) -> str:
        return render(self, source)


class StlError(Exception):
    """Raised by every stage with *all* diagnostics it collected (errors and warnings)."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        self.sources = dict(sources or {})
        super().__init__(self.render())

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    def render(self) -> str:
        return render_all(self.diagnostics, self.sources)

    def __str__(self) -> str:  # keep the message current if sources were added later
        return self.render()


def render(d: Diagnostic, source: str | None = None) -> str:
    """``path:line:col: error[E201]: message`` + source line + underline + ``help:`` lines.

    A diagnostic without a path (``path=None``) starts at ``error[E701]: …``.
    """
    loc = d.path
    if d.span.known and d.path is not None:
        loc = f"{d.path}:{d.span.line}:{d.span.column}"
    lines = [f"{loc + ': ' if loc is not None else ''}{d.severity}[{d.code}]: {d.message}"]
    if source is not None and d.span.known:
        excerpt = _excerpt(source, d.span)
        if excerpt is not None:
            text, column, width = excerpt
            gutter = str(d.span.line)
            pad = " " * len(gutter)
            lines.append(f"{pad} |")
            lines.append(f"{gutter} | {text}")
            lines.append(f"{pad} | {' ' * (column - 1)}{'^' * width}")
    for note in d.notes:
        lines.append(f"  = note: {note}")
    for hint in d.hints:
        lines.append(f"  help: {hint}")
    return "\n".join(lines)


#: The most characters of a source line a diagnostic echoes (long lines are cut around the span).
MAX_ECHO = 120


def _excerpt(source: str, span: Span) -> tuple[str, int, int] | None:
    """``(line text, caret column, caret width)`` for ``span``, cut to :data:`MAX_ECHO` characters.

    Lines are split at ``\n`` only, as spans count them (``str.splitlines``
    would also split at U+2028 and friends and show the wrong line).
    """
    start = 0
    for _ in range(span.line - 1):
        start = source.find("\n", start) + 1
        if start == 0:
            return None
    end = source.find("\n", start)
    text = source[start:] if end < 0 else source[start:end]
    text = text.rstrip("\r")
    col = span.column
    width = (span.end_column - span.column) if span.end_line == span.line else len(text) - col + 1
    width = max(1, width)
    if len(text) > MAX_ECHO:
        lo = max(0, min(col - 1 - MAX_ECHO // 3, len(text) - MAX_ECHO))
        cut = text[lo:lo + MAX_ECHO]
        prefix = "…" if lo > 0 else ""
        suffix = "…" if lo + MAX_ECHO < len(text) else ""
        col = col - lo + len(prefix)
        width = max(1, min(width, MAX_ECHO - (col - 1 - len(prefix))))
        text = prefix + cut + suffix
    text = "".join(c if c.isprintable() or c == "\t" else "\ufffd" for c in text)
    return text, col, width


def render_all(diagnostics: Iterable[Diagnostic], sources: dict[str, str] | None = None) -> str:
    diagnostics = tuple(diagnostics)
    sources = sources or {}
    body = "\n\n".join(render(d, sources.get(d.path)) for d in diagnostics)
    n_err = sum(d.is_error for d in diagnostics)
    n_warn = len(diagnostics) - n_err
    if not diagnostics:
        return "no diagnostics"
    summary = f"{n_err} error{'s' if n_err != 1 else ''}"
    if n_warn:
        summary += f", {n_warn} warning{'s' if n_warn != 1 else ''}"
    return f"{body}\n\n{summary}"


def to_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_dict() for d in diagnostics], indent=2)


def did_you_mean(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Close matches of ``name`` among ``candidates`` (case- and space-insensitive first)."""
    import difflib

    cands = list(dict.fromkeys(candidates))
    norm = {c.lower().replace("_", " ").strip(): c for c in cands}
    key = name.lower().replace("_", " ").strip()
    if key in norm and norm[key] != name:
        return [norm[key]]
    return difflib.get_close_matches(name, cands, n=limit, cutoff=0.6)


# ---------------------------------------------------------------- named constructors
#
# Every diagnostic is built by the one constructor of its code (below), never
# by ``Diagnostic("E…", …)`` elsewhere (tests/test_diagnostic_codes.py checks both).
# Codes whose messages vary with the construct take the message; the others
# build it from their arguments.

#: code -> its constructor (filled by ``_constructor`` and ``_register``).
CONSTRUCTORS: dict[str, object] = {}


class MessageConstructor(Protocol):
    """The signature of the constructors that take their message (those made by ``_constructor``).

    Shared readers (:mod:`stlspec.files`) take one of these, so that each caller
    reports unreadable input under its own code (E501 traces, E706 captions, E801
    sources, …).
    """

    def __call__(self, message: str, span: Span = NO_SPAN, path: str = "<string>", hints: Iterable[str] = (),
                 notes: Iterable[str] = ()) -> Diagnostic: ...


def _register(code: str):
    def wrap(fn):
        assert code in CODES and code not in CONSTRUCTORS, code
        CONSTRUCTORS[code] = fn
        return fn
    return wrap


def _constructor(code: str, name: str):
    def make(message: str, span: Span = NO_SPAN, path: str = "<string>", hints: Iterable[str] = (),
             notes: Iterable[str] = ()) -> Diagnostic:
        return Diagnostic(code, message, span, path, hints=tuple(h for h in hints if h), notes=tuple(notes))

    make.__name__ = make.__qualname__ = name
    make.__doc__ = f"{code}: {CODES[code].title}."
    return _register(code)(make)


# E1xx syntax
unexpected_token = _constructor("E101", "unexpected_token")
unexpected_character = _constructor("E102", "unexpected_character")
unexpected_end = _constructor("E103", "unexpected_end")
unterminated_string = _constructor("E104", "unterminated_string")
foreign_keyword = _constructor("E106", "foreign_keyword")


@_register("E107")
def nested_too_deeply(span: Span, path: str, depth: int) -> Diagnostic:
    from stlspec.traverse import MAX_DEPTH

    return Diagnostic("E107", f"formula nested too deeply ({depth} levels; the limit is {MAX_DEPTH})", span, path,
                      hints=("split the formula into several specs, or flatten chains of `and`/`or`",))


# E2xx names and vocabulary
unknown_predicate = _constructor("E201", "unknown_predicate")
unknown_category = _constructor("E202", "unknown_category")
duplicate_declaration = _constructor("E203", "duplicate_declaration")
unbound_variable = _constructor("E204", "unbound_variable")
duplicate_variable = _constructor("E205", "duplicate_variable")
include_failed = _constructor("E206", "include_failed")
spec_in_include = _constructor("E207", "spec_in_include")


@_register("E208")
def unknown_spec(name: str, path: str, known: Iterable[str]) -> Diagnostic:
    known = sorted(known)
    sugg = did_you_mean(name, known)
    hint = f"did you mean {', '.join(repr(s) for s in sugg)}?" if sugg else f"specs: {', '.join(known) or '(none)'}"
    return Diagnostic("E208", f"no spec named {name!r} in {path}", NO_SPAN, path, hints=(hint,))


# E3xx arity and categories
wrong_arity = _constructor("E301", "wrong_arity")
category_mismatch = _constructor("E302", "category_mismatch")
inconsistent_arity = _constructor("E303", "inconsistent_arity")

# E4xx windows and hints
invalid_window = _constructor("E401", "invalid_window")
hint_out_of_range = _constructor("E402", "hint_out_of_range")
misplaced_hint = _constructor("E403", "misplaced_hint")
unknown_hint = _constructor("E404", "unknown_hint")

# E5xx traces
malformed_trace = _constructor("E501", "malformed_trace")
unknown_trace_name = _constructor("E502", "unknown_trace_name")
frame_out_of_range = _constructor("E503", "frame_out_of_range")
probability_out_of_range = _constructor("E504", "probability_out_of_range")
duplicate_trace_fact = _constructor("E505", "duplicate_trace_fact")

# E6xx evaluation and backends
input_too_large = _constructor("E601", "input_too_large")
unsupported_by_backend = _constructor("E602", "unsupported_by_backend")
unknown_logic = _constructor("E603", "unknown_logic")
invalid_evaluator_input = _constructor("E604", "invalid_evaluator_input")

# E7xx / W7xx the caption pipeline: about an answer or a request, not a file (path None)
@_register("E701")
def llm_no_spec(message: str = "no spec found in the answer") -> Diagnostic:
    return Diagnostic("E701", message, NO_SPAN, None, hints=("answer with one ```stl code block holding one spec",))


@_register("E702")
def llm_several_specs(count: int) -> Diagnostic:
    return Diagnostic("E702", f"the answer holds {count} specs; expected exactly one", NO_SPAN, None)


@_register("E703")
def llm_refused(why: str) -> Diagnostic:
    return Diagnostic("E703", f"the model refused to answer ({why})", NO_SPAN, None)


@_register("E704")
def llm_request_failed(message: str) -> Diagnostic:
    return Diagnostic("E704", message, NO_SPAN, None)


@_register("E705")
def llm_batch_entry_failed(message: str) -> Diagnostic:
    return Diagnostic("E705", message, NO_SPAN, None)


@_register("W701")
def llm_answer_cut_off() -> Diagnostic:
    return Diagnostic("W701", "the answer was cut off at max_tokens", NO_SPAN, None)


@_register("W702")
def llm_declarations_ignored(count: int) -> Diagnostic:
    return Diagnostic("W702", f"{count} declaration(s) in the answer were ignored", NO_SPAN, None)


#: E706 is about an input file (captions, ``--synonyms``): it takes a message, span and path.
llm_unreadable_input = _constructor("E706", "llm_unreadable_input")


# E8xx files (built by stlspec.files and the CLI; never quote the file's contents)
cannot_read = _constructor("E801", "cannot_read")


@_register("E804")
def cannot_write(name: str, reason: str) -> Diagnostic:
    return Diagnostic("E804", f"cannot write {name}: {reason}", NO_SPAN, name,
                      hints=("give -o a file path in an existing, writable directory",))


# W1xx warnings
unused_variable = _constructor("W101", "unused_variable")
hint_ignored = _constructor("W102", "hint_ignored")
