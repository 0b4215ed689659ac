"""Import LASER's preprocessed spec records (``prog`` constructor strings) as ``.stl`` specs.

LASER writes one JSON object per video; its ``prog`` field is the spec as a
constructor term (format: ``shared/reference/laser-format.md``, summarized in
``docs/laser-import.md``)::

    Until(Finally(Logic(Unary("holding", Const(-3)))),
          Finally(Logic(Binary("sitting on", Const(-2), Const(-1)))))

Translation:

* A chain of ``Until`` s is a *sequence of events* and becomes a ``then``
  chain, in order. LASER's Datalog rules let ``Until(a, b)`` hold through ``b``
  alone, so LASER never enforced the order; the preprocessing meant "a, then
  b", and that is what we write (and what our semantics enforces).
* ``Finally(φ)`` as a chain element is the element itself (``then`` already
  means "at some later frame"); elsewhere it is ``eventually``. ``Global`` is
  ``always``, ``Next`` is ``next``, ``Logic`` is transparent; ``And``,
  ``Unary``, ``Binary``, ``NegUnary``, ``NegBinary``, ``Neq`` map to
  ``and``, atoms, ``not``, ``!=``.
* ``Const(-k-1)`` denotes "some entity named ``consts[k]``": an existentially
  bound variable of category ``consts[k]`` (one per constant, named after it).
  ``Var(i)`` (the i-th letter of ``args``) is bound without a category in a
  *nested* ``exists`` block, because LASER allows a ``Var`` and a ``Const`` to
  denote the same entity, and variables of one block are pairwise distinct.
* "When" hints come from ``video location precise`` (``"[0, 1/4]"`` →
  ``@[0.0, 0.25]``), else ``video location`` (``early``/``mid``/``late``), when
  there is one entry per event.

Every record that cannot be converted is reported with its line and the
reason (bad JSON, a ``prog`` that does not parse, an unknown constructor, a
constant index out of range, a predicate used with two arities, a spec that
does not check, …); nothing is dropped silently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from stlspec import ast, ir

__all__ = ["LaserTerm", "parse_prog", "convert_record", "import_laser_file", "ImportResult", "Failure",
           "ConversionError"]


class ConversionError(ValueError):
    """A record that cannot be converted; the message says why."""


# --------------------------------------------------------------------- the constructor language


@dataclass(frozen=True, slots=True)
class LaserTerm:
    """``head(args…)``; an argument is a term, a string or an int."""

    head: str
    args: tuple[Any, ...]


_TOKEN = re.compile(r'\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<int>-?\d+)|(?P<str>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')'
                    r'|(?P<punct>[(),]))')


#: Deepest constructor nesting of a ``prog`` (LASER writes chains of a few events: depth ~10) and longest
#: integer literal; beyond them a record fails with a positioned reason instead of recursing or overflowing.
MAX_PROG_DEPTH = 200
MAX_INT_DIGITS = 18


def parse_prog(text: str) -> LaserTerm:
    """Parse a ``prog`` string; :class:`ConversionError` says where it goes wrong."""
    from stlspec.files import first_too_deep

    pos = 0

    def fail(msg: str) -> ConversionError:
        return ConversionError(f"prog does not parse at character {pos}: {msg} (near {text[pos:pos + 25]!r})")

    # Parentheses outside strings, like brackets in JSON: checked before the recursive descent below.
    brackets = text.translate(str.maketrans({"[": " ", "]": " ", "{": " ", "}": " ", "(": "[", ")": "]"}))
    deep = first_too_deep(brackets, MAX_PROG_DEPTH)
    if deep is not None:
        pos = deep
        raise fail(f"constructors nested more than {MAX_PROG_DEPTH} deep")

    def next_token():
        nonlocal pos
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                return None, None
            raise fail("unexpected character")
        pos = m.end()
        kind = m.lastgroup
        return kind, m.group(kind)

    def peek():
        nonlocal pos
        save = pos
        tok = next_token()
        pos = save
        return tok

    def term():
        kind, value = next_token()
        if kind == "int":
            if len(value.lstrip("-")) > MAX_INT_DIGITS:
                raise fail(f"integer of {len(value.lstrip('-')):,} digits (at most {MAX_INT_DIGITS})")
            return int(value)
        if kind == "str":
            if value.startswith('"'):
                return json.loads(value)
            return value[1:-1].replace("\\'", "'")
        if kind != "name":
            raise fail(f"expected a constructor, found {value!r}")
        kind2, value2 = next_token()
        if value2 != "(":
            raise fail(f"expected '(' after {value}")
        args = []
        if peek()[1] == ")":
            next_token()
            return LaserTerm(value, ())
        while True:
            args.append(term())
            kind3, value3 = next_token()
            if value3 == ")":
                return LaserTerm(value, tuple(args))
            if value3 != ",":
                raise fail("expected ',' or ')'")

    if not text or not text.strip():
        raise ConversionError("empty prog")
    result = term()
    if next_token()[0] is not None:
        raise fail("text after the end of the term")
    if not isinstance(result, LaserTerm):
        raise ConversionError("prog is not a constructor term")
    return result


# --------------------------------------------------------------------- translation


def _hint_from_precise(text: str) -> ast.Hint | None:
    m = re.fullmatch(r"\s*\[\s*([0-9./\s]+)\s*,\s*([0-9./\s]+)\s*\]\s*", str(text))
    if not m:
        return None
    try:
        lo, hi = (float(Fraction(x.replace(" ", ""))) for x in m.groups())
    except (ValueError, ZeroDivisionError):
        return None
    if not 0 <= lo <= hi <= 1:
        return None
    return ast.Hint(lo=round(lo, 4), hi=round(hi, 4))


_COARSE = {"early": "early", "beginning": "early", "start": "early", "mid": "middle", "middle": "middle",
           "late": "late", "end": "late", "anytime": "anytime"}


def _hints(record: dict, n_events: int) -> list[ast.Hint | None]:
    precise = record.get("video location precise")
    if isinstance(precise, list) and len(precise) == n_events:
        hints = [_hint_from_precise(x) for x in precise]
        if all(h is not None for h in hints):
            return hints
    coarse = record.get("video location")
    if isinstance(coarse, list) and len(coarse) == n_events:
        names = [_COARSE.get(str(x).strip().lower()) for x in coarse]
        if all(names):
            return [ast.Hint(name=n) for n in names]
    return [None] * n_events


def _var_name(base: str, used: set[str]) -> str:
    from stlspec.lexicon import KEYWORDS

    stem = re.sub(r"[^a-z0-9_]", "", re.sub(r"\s+", "_", base.lower())) or "x"
    if not re.match(r"[a-z_]", stem):
        stem = "x" + stem
    stem = stem[:12]
    name, k = stem, 2
    while name in used or name in KEYWORDS:
        name, k = f"{stem}{k}", k + 1
    used.add(name)
    return name


class _Translator:
    def __init__(self, record: dict):
        self.consts = record.get("consts") or []
        self.args = record.get("args") or []
        if not isinstance(self.consts, list) or not isinstance(self.args, list):
            raise ConversionError("`consts` and `args` must be lists")
        self.used: set[str] = set()
        self.const_vars: dict[int, str] = {}   # k -> variable
        self.free_vars: dict[int, str] = {}    # i -> variable
        self.arity: dict[str, int] = {}

    def var(self, t: Any) -> str:
        if not isinstance(t, LaserTerm) or t.head not in ("Const", "Var") or len(t.args) != 1 \
                or not isinstance(t.args[0], int):
            raise ConversionError(f"expected Const(int) or Var(int), found {_show(t)}")
        n = t.args[0]
        if t.head == "Const":
            if n >= 0:
                raise ConversionError(f"Const({n}): constants are negative (Const(-k-1) names consts[k])")
            k = -n - 1
            if k >= len(self.consts):
                raise ConversionError(f"Const({n}) refers to consts[{k}], but consts has {len(self.consts)} entries")
            if k not in self.const_vars:
                self.const_vars[k] = _var_name(str(self.consts[k]), self.used)
            return self.const_vars[k]
        if n < 1:
            raise ConversionError(f"Var({n}): variables count from 1")
        if n not in self.free_vars:
            letter = str(self.args[n - 1]) if n - 1 < len(self.args) else f"v{n}"
            self.free_vars[n] = _var_name(letter, self.used)
        return self.free_vars[n]

    def pred(self, t: LaserTerm, arity: int) -> ast.Name:
        name = t.args[0] if t.args else None
        if not isinstance(name, str) or not name.strip():
            raise ConversionError(f"{t.head} needs a predicate name string, found {_show(t)}")
        if len(t.args) != 1 + arity:
            raise ConversionError(f"{t.head}({name!r}, ...) takes {arity} argument(s), found {len(t.args) - 1}")
        name = " ".join(name.split())
        if self.arity.setdefault(name, arity) != arity:
            raise ConversionError(f"predicate {name!r} is used with {self.arity[name]} and {arity} arguments")
        return ast.Name(name)

    def logic(self, t: Any) -> ast.Formula:
        if not isinstance(t, LaserTerm):
            raise ConversionError(f"expected a logic formula, found {_show(t)}")
        match t.head:
            case "And" | "Or":
                if len(t.args) < 2:
                    raise ConversionError(f"{t.head} needs two operands")
                parts: list[ast.Formula] = []
                for a in t.args:
                    f = self.logic(a)
                    # flatten nested binary And/Or into one n-ary node, as the formatter prints it
                    parts.extend(f.args if type(f).__name__ == t.head else (f,))
                return ast.And(tuple(parts)) if t.head == "And" else ast.Or(tuple(parts))
            case "Not":
                return ast.Not(self.logic(_one(t)))
            case "Unary" | "NegUnary":
                atom = ast.Atom(self.pred(t, 1), (self.var(t.args[1]),))
                return ast.Not(atom) if t.head == "NegUnary" else atom
            case "Binary" | "NegBinary":
                atom = ast.Atom(self.pred(t, 2), (self.var(t.args[1]), self.var(t.args[2])))
                return ast.Not(atom) if t.head == "NegBinary" else atom
            case "Neq" | "Eq":
                if len(t.args) != 2:
                    raise ConversionError(f"{t.head} takes two terms")
                return ast.VarEq(self.var(t.args[0]), self.var(t.args[1]), equal=t.head == "Eq")
            case "Logic":
                return self.logic(_one(t))
        raise ConversionError(f"unknown constructor {t.head!r} in a logic formula")

    def temporal(self, t: Any, as_event: bool = False) -> ast.Formula:
        if not isinstance(t, LaserTerm):
            raise ConversionError(f"expected a temporal formula, found {_show(t)}")
        match t.head:
            case "Logic":
                return self.logic(_one(t))
            case "Finally":
                inner = self.temporal(_one(t))
                return inner if as_event else ast.Eventually(inner)
            case "Global":
                return ast.Always(self.temporal(_one(t)))
            case "Next":
                return ast.Next(self.temporal(_one(t)))
            case "Until":
                raise ConversionError("Until nested inside another operator is not a sequence of events")
            case "And" | "Or" | "Not" | "Unary" | "Binary" | "NegUnary" | "NegBinary" | "Neq" | "Eq":
                return self.logic(t)
        raise ConversionError(f"unknown constructor {t.head!r}")

    def events(self, t: LaserTerm) -> list[ast.Formula]:
        """Flatten an Until chain (nested either way) into its events, in order."""
        if isinstance(t, LaserTerm) and t.head == "Until":
            if len(t.args) != 2:
                raise ConversionError("Until takes two operands")
            return self.events(t.args[0]) + self.events(t.args[1])
        return [self.temporal(t, as_event=True)]


def _one(t: LaserTerm) -> Any:
    if len(t.args) != 1:
        raise ConversionError(f"{t.head} takes one operand, found {len(t.args)}")
    return t.args[0]


def _show(x: Any) -> str:
    if isinstance(x, LaserTerm):
        return f"{x.head}(...)"
    return repr(x)


def convert_record(record: dict, spec_name: str) -> tuple[ast.Spec, dict[str, int], list[str]]:
    """One record → (spec, predicate arities, categories). Raises :class:`ConversionError`."""
    if not isinstance(record, dict):
        raise ConversionError("a record must be a JSON object")
    prog = record.get("prog")
    if not isinstance(prog, str):
        raise ConversionError("no `prog` string in the record")
    term = parse_prog(prog)
    tr = _Translator(record)
    events = tr.events(term)
    hints = _hints(record, len(events))
    if len(events) == 1:
        body = events[0]
        if term.head == "Finally" or (term.head == "Until"):
            body = ast.Eventually(body)
            if hints[0] is not None:
                body = ast.Hinted(body, hints[0])
        elif hints[0] is not None and isinstance(body, ast.Eventually):
            body = ast.Hinted(body, hints[0])
    else:
        body = ast.Sequence(tuple(ast.Event(f, h) for f, h in zip(events, hints)))
    if tr.free_vars:
        body = ast.Quantified("exists", tuple(ast.Binder(v) for _, v in sorted(tr.free_vars.items())), body)
    if tr.const_vars:
        binders = tuple(ast.Binder(v, ast.Name(" ".join(str(tr.consts[k]).split())))
                        for k, v in sorted(tr.const_vars.items()))
        body = ast.Quantified("exists", binders, body)
    categories = [" ".join(str(tr.consts[k]).split()) for k in sorted(tr.const_vars)]
    return ast.Spec(spec_name, body), tr.arity, categories


# --------------------------------------------------------------------- files


@dataclass(frozen=True, slots=True)
class Failure:
    line: int
    record_id: str
    reason: str


#: Largest LASER records file read (bytes).
MAX_RECORDS_BYTES = 512 * 2**20


@dataclass
class ImportResult:
    text: str                                   # the .stl file
    converted: list[tuple[int, str, str]] = field(default_factory=list)   # (line, record id, spec name)
    failures: list[Failure] = field(default_factory=list)
    total: int = 0

    def report_rows(self) -> list[dict]:
        rows = [{"line": ln, "id": rid, "status": "ok", "spec": name} for ln, rid, name in self.converted]
        rows += [{"line": f.line, "id": f.record_id, "status": "failed", "reason": f.reason} for f in self.failures]
        return sorted(rows, key=lambda r: r["line"])


def import_laser_file(path: str | Path, vocabulary: str | ir.Vocabulary | None = None) -> ImportResult:
    """Convert every record of a LASER JSONL file; see :class:`ImportResult`.

    The file is read by :func:`stlspec.files.read_text`: a missing file, a
    directory, a device, a file over :data:`MAX_RECORDS_BYTES` or bytes that are
    not UTF-8 raise :class:`~stlspec.diagnostics.StlError` E801 (with the line and
    column of the first bad byte), before anything is converted.
    """
    from stlspec.diagnostics import cannot_read
    from stlspec.files import read_text

    text = read_text(path, error=cannot_read, what="LASER records file", max_bytes=MAX_RECORDS_BYTES)
    # Lines end at "\n" only (str.splitlines would also split at U+2028 inside a JSON string).
    lines = text.split("\n")
    return import_laser_lines(lines, source=str(path), vocabulary=vocabulary)


def import_laser_lines(lines: list[str], source: str = "<laser>",
                       vocabulary: str | ir.Vocabulary | None = None) -> ImportResult:
    import stlspec
    from stlspec.diagnostics import StlError, cannot_read
    from stlspec.files import parse_json
    from stlspec.naming import spec_name_for

    if isinstance(vocabulary, str):
        from stlspec.pipeline import load_vocabulary

        vocab_path, vocabulary = vocabulary, load_vocabulary(vocabulary)
    else:
        vocab_path = None
    result = ImportResult(text="")
    used: set[str] = set()
    arities: dict[str, int] = {}
    categories: dict[str, None] = {}
    specs: list[tuple[str, ast.Spec]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        result.total += 1
        rid = f"line {n}"
        try:
            try:  # nesting checked before parsing; integers of thousands of digits refused
                record = parse_json(line, error=cannot_read, path=source, what="JSON", line=n)
            except StlError as err:
                d = err.diagnostics[0]
                where = f" at column {d.span.column}" if d.span.known else ""
                raise ConversionError(f"not valid JSON{where}: {d.message.removeprefix('invalid JSON: ')}") from None
            if isinstance(record, dict) and record.get("caption") is not None:
                rid = str(record["caption"])
            name = spec_name_for(rid if rid != f"line {n}" else f"laser_{n}", set(used))
            spec, ar, cats = convert_record(record, name)
            clash = [p for p, a in ar.items() if arities.get(p, a) != a]
            if clash:
                raise ConversionError(f"predicate {clash[0]!r} has {ar[clash[0]]} argument(s) here but "
                                      f"{arities[clash[0]]} in earlier records")
            # Check each spec on its own, so that one bad record cannot spoil the file.
            single = ast.Program((spec,))
            try:
                if vocabulary is not None:
                    stlspec.compile_text(stlspec.format(single), vocabulary=vocabulary, path=f"{source}:{n}")
                else:
                    stlspec.compile_text(stlspec.format(single), path=f"{source}:{n}")
            except StlError as err:
                first = err.errors[0] if err.errors else err.diagnostics[0]
                raise ConversionError(f"the converted spec does not check: {first.code} {first.message}") from None
        except ConversionError as exc:
            result.failures.append(Failure(n, rid, str(exc)))
            continue
        used.add(name)
        arities.update(ar)
        categories.update(dict.fromkeys(cats))
        specs.append((rid, spec))
        result.converted.append((n, rid, name))
    result.text = _render(specs, arities, categories, source, result, vocab_path)
    return result


def _render(specs, arities, categories, source, result, vocab_path) -> str:
    import stlspec
    from stlspec.formatter import quote_name

    from stlspec.naming import comment_line

    out = [f"// Imported from LASER spec records: {comment_line(Path(source).name)}",
           f"// {len(result.converted)} of {result.total} records converted; Until-chains are written as `then`",
           "// chains (the intended event order, which LASER's own rules did not enforce)."]
    if vocab_path:
        out += ["", f'include "{vocab_path}"']
    else:
        decls = []
        if categories:
            decls.append("category " + ", ".join(quote_name(c) for c in categories))
        decls += [f"unary {quote_name(p)}(any)" for p, a in arities.items() if a == 1]
        decls += [f"binary {quote_name(p)}(any, any)" for p, a in arities.items() if a == 2]
        if decls:
            out += ["", *decls]
    for rid, spec in specs:
        out += ["", f"// video {comment_line(rid)}", stlspec.format(ast.Program((spec,))).rstrip()]
    return "\n".join(out) + "\n"
