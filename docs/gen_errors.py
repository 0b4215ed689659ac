"""Generate ``docs/errors.md`` from the diagnostic registry ``stlspec.diagnostics.CODES``.

    python docs/gen_errors.py           # rewrite docs/errors.md
    python docs/gen_errors.py --check   # exit 1 if the committed page is stale

The registry gives each code's severity, title and explanation; this script adds, per code, an example that
triggers it (``EXAMPLES``) and the diagnostic stlspec actually prints for that example, obtained by running
it. ``tests/test_docs.py`` fails when the committed page differs from what this script generates (refresh with
``STLSPEC_REFRESH=1 pytest tests/test_docs.py`` or by running this script), and it compiles every example
block of the page again, checking it fails with exactly its code.

Examples are ``.stl`` files (run through parse → check → lower), JSON traces (read with
``stlspec.trace.load_trace``) or short Python programs (executed); all run with the repository root as the
working directory.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "errors.md"

if str(REPO) not in sys.path:  # running as a script from a checkout
    sys.path.insert(0, str(REPO))

from stlspec.diagnostics import CODES, Diagnostic, StlError, render_all  # noqa: E402


@dataclass(frozen=True)
class Example:
    lang: str  # "stlspec" | "json" | "python"
    text: str
    note: str = ""  # a sentence after the example: why it fails, how to fix it


_V = """category person, cup, chair
unary walking(person)
binary holding(person, any), "sitting on"(person, chair)
"""

EXAMPLES: dict[str, Example] = {
    "E101": Example("stlspec", _V + """
spec missing_argument {
  exists a: person, c: cup. eventually holding(a, )
}
""", "The parser says which tokens it expected instead."),
    "E102": Example("stlspec", _V + """
spec semicolon {
  exists a: person. eventually walking(a);
}
""", "There are no statement separators in stlspec."),
    "E103": Example("stlspec", _V + """
spec unfinished {
  exists a: person, c: cup.
    holding(a, c) then
"""),
    "E104": Example("stlspec", """category person
unary "standing up(person)
""", "Quoted names end at the end of the line at the latest."),
    "E106": Example("stlspec", _V + """
spec arrow {
  exists a: person, c: cup. always (holding(a, c) -> walking(a))
}
""", "stlspec spells its operators as words: `implies`, `and`, `or`, `not`, `always`, `eventually`, `next`, "
     "`until`."),
    "E107": Example("python", """import stlspec

# 1001 nested `not`s: one more than the language's nesting limit (stlspec.traverse.MAX_DEPTH = 1000).
stlspec.parse("spec deep { " + "not " * 1001 + "true }")
""", "Every stage (parse, check, fmt, compile) accepts formulas nested up to 1000 operators deep and reports "
     "this error beyond; parentheses alone do not count. Split such a formula into several specs."),
    "E201": Example("stlspec", _V + """
spec typo {
  exists a: person, c: cup. eventually holdng(a, c)
}
"""),
    "E202": Example("stlspec", _V + """
spec typo {
  exists a: persn, c: cup. eventually holding(a, c)
}
"""),
    "E203": Example("stlspec", _V + """
spec walks { exists a: person. eventually walking(a) }
spec walks { exists a: person. always walking(a) }
"""),
    "E204": Example("stlspec", _V + """
spec unbound {
  exists a: person. eventually holding(a, c)
}
""", "Bind every variable, here with `exists a: person, c: cup.`."),
    "E205": Example("stlspec", _V + """
spec twice {
  exists a: person, a: cup. eventually holding(a, a)
}
"""),
    "E206": Example("stlspec", """include "README.md"

spec s { true }
""", "The included file is read but is not stlspec text. The diagnostic never quotes it (it may be any file); "
     "run `stlspec check` on the included file itself to see its errors."),
    "E801": Example("stlspec", """include "no/such/vocab.stl"

spec s { true }
""", "Include paths are relative to the including file. The same error is reported for a directory or a special "
     "file such as `/dev/zero` (never read)."),
    "E207": Example("stlspec", """include "examples/specs/pick_up.stl"

spec s { true }
""", "Keep vocabularies in files of their own (like `examples/vocab.stl`) and include those."),
    "E301": Example("stlspec", _V + """
spec one_argument {
  exists a: person. eventually holding(a)
}
"""),
    "E302": Example("stlspec", _V + """
spec sits_on_a_cup {
  exists a: person, c: cup. eventually "sitting on"(a, c)
}
""", "`\"sitting on\"` is declared as `\"sitting on\"(person, chair)`; bind `c: chair`, or declare the "
     "parameter as `any`."),
    "E303": Example("stlspec", """// no declarations: the vocabulary is inferred from the uses
spec s {
  exists x, y. eventually near(x, y) and eventually near(x)
}
"""),
    "E401": Example("stlspec", _V + """
spec inverted {
  exists a: person. eventually[5, 2] walking(a)
}
"""),
    "E402": Example("stlspec", _V + """
spec late {
  exists a: person. eventually walking(a) @[0.5, 1.5]
}
"""),
    "E403": Example("stlspec", _V + """
spec hinted_atom {
  exists a: person. walking(a) @late
}
""", "Write `eventually walking(a) @late`, or make the formula an element of a `then` chain."),
    "E404": Example("stlspec", _V + """
spec unknown_hint {
  exists a: person. eventually walking(a) @beginning
}
"""),
    "E501": Example("json", """{
  "version": 1,
  "tracks": [{"id": "man", "names": {"person": 1}}],
  "unary": [{"pred": "walking", "track": "man", "frames": [0, 1]}]
}
""", "Every trace states its length in `num_frames`."),
    "E502": Example("json", """{
  "num_frames": 4,
  "tracks": [{"id": "man", "names": {"person": 1}}],
  "unary": [{"pred": "walking", "track": "woman", "frames": [0, 1]}]
}
"""),
    "E503": Example("json", """{
  "num_frames": 4,
  "tracks": [{"id": "man", "names": {"person": 1}}],
  "unary": [{"pred": "walking", "track": "man", "frames": [2, 3, 4]}]
}
""", "Frames are numbered from 0."),
    "E504": Example("json", """{
  "num_frames": 4,
  "tracks": [{"id": "man", "names": {"person": 1}}],
  "unary": [{"pred": "walking", "track": "man", "frame": 2, "p": 1.5}]
}
"""),
    "E505": Example("json", """{
  "num_frames": 4,
  "tracks": [{"id": "man", "names": {"person": 1}}],
  "unary": [
    {"pred": "walking", "track": "man", "frames": [0, 1, 2]},
    {"pred": "walking", "track": "man", "frame": 2, "p": 0.5}
  ]
}
"""),
    "E601": Example("python", """import stlspec
from stlspec.backends.reference import evaluate
from stlspec.trace import Trace

program = stlspec.compile_text('''
category thing
unary moving(any)
spec moves { exists x: thing. eventually moving(x) }
''')
# 20 uncertain facts: exact enumeration would visit 2**20 worlds
trace = Trace.from_dict({"num_frames": 20, "tracks": [{"id": "a", "names": {"thing": 1}}],
                         "unary": [{"pred": "moving", "track": "a", "frames": list(range(20)), "p": 0.5}]})
evaluate(program.spec("moves"), trace, logic="exact")
""", "Use `product` (exact for many specs, and differentiable), or evaluate smaller pieces."),
    "E602": Example("python", """import stlspec

program = stlspec.compile_text("spec trivially { true }")
stlspec.compile(program, target="onnx")
"""),
    "E603": Example("python", """import stlspec
from stlspec.backends.reference import evaluate
from stlspec.trace import Trace

program = stlspec.compile_text("spec trivially { true }")
trace = Trace.from_dict({"num_frames": 1, "tracks": []})
evaluate(program.spec("trivially"), trace, logic="fuzzy")
"""),
    "E604": Example("python", """import torch
import stlspec
from stlspec.backends.torch import SceneGraphBatch

program = stlspec.compile_text("category person\\nunary walking(person)\\n"
                               "spec moves { exists a: person. eventually walking(a) }")
ev = stlspec.compile(program, target="torch")
batch = SceneGraphBatch(torch.rand(1, 2, 1), torch.rand(1, 4, 2, 1), torch.rand(1, 4, 2, 2, 0))
ev(batch, spec_ids=["move"], video_ids=[0])
""", "Spec ids are names (or indices) of the compiled specs; video ids index the batch."),
    "W101": Example("stlspec", _V + """
spec unused {
  exists a: person, c: cup. eventually walking(a)
}
""", "The warning is worth reading: `c` still requires a cup to exist, which may or may not be intended."),
    "W102": Example("stlspec", _V + """
spec nested_hint {
  exists a: person. always (eventually walking(a) @late)
}
"""),
}

#: Codes without an example, and why.
NO_EXAMPLE: dict[str, str] = {
    "E208": "Reported by `stlspec eval` and `stlspec compile` for a `--spec NAME` that the file does not define; "
            "the hint lists the specs it does define.",
    "E804": "Reported by `stlspec compile -o OUT` and `stlspec fmt` when `OUT` is a directory, its directory does "
            "not exist, or it is not writable.",
    **{code: "Reported in the records of `stlspec from-captions` (the model's answer, not your file); "
          "see [Captions to specs](llm.md)."
       for code in ("E701", "E702", "E703", "E704", "E705", "W701", "W702")},
}
NO_EXAMPLE["E706"] = ("Reported by `stlspec from-captions` for its captions file, `--synonyms` file or `--cache` path, "
                      "naming the file and, where there is one, the line and column; the run stops before any request "
                      "is made.")

SECTIONS = (
    ("E1", "Syntax (E1xx)", "The parser stops at nothing: after a syntax error it resynchronizes at the next "
                            "declaration or spec and keeps reporting."),
    ("E2", "Names and vocabulary (E2xx)", ""),
    ("E3", "Arity and categories (E3xx)", ""),
    ("E4", "Windows and hints (E4xx)", ""),
    ("E5", "Traces (E5xx)", "Reported when a scene-graph trace is read (see [Traces](traces.md)); the location "
                            "at the start of the message is a path into the JSON document."),
    ("E6", "Evaluation and backends (E6xx)", ""),
    ("E7", "Captions to specs (E7xx)", "Problems with a model's answer, recorded per caption by "
                                       "`stlspec from-captions` (see [Captions to specs](llm.md))."),
    ("E8", "Files (E8xx)", "Reported when a `.stl` file, an include or a `--vocab` file cannot be read, or an "
                           "output cannot be written. The messages name the file and the problem, never its "
                           "contents."),
    ("W", "Warnings", "Warnings never make a command fail; `stlspec check` prints them with the errors."),
)

HEADER = """# Errors

<!-- Generated by docs/gen_errors.py from stlspec.diagnostics.CODES; do not edit by hand. -->

Every problem stlspec reports has a stable code. Diagnostics print like a compiler's —
`file:line:col: severity[CODE]: message`, the source line, an underline, and `help:` lines with a suggestion —
and all problems of a file are reported together. `stlspec check --format json` gives the same data as JSON
(see [CLI](cli.md#check)); from Python, `stlspec.StlError.diagnostics` holds them as
`stlspec.Diagnostic` objects.

Codes are never reused or renumbered. Each entry below shows an example that triggers the code and what
stlspec prints for it; the examples are run by the test suite, so the output is current.
"""


def diagnostics_of(ex: Example) -> tuple[list[Diagnostic], dict[str, str]]:
    """Run an example from the repository root; return every diagnostic it produced and the sources.

    ``.stl`` examples are compiled as the file ``example.stl`` in the repository root (so
    ``include "examples/vocab.stl"`` works); their warnings count as diagnostics too.
    """
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        if ex.lang == "stlspec":
            return _run_stl(ex)
        if ex.lang == "json":
            return _run_json(ex)
        if ex.lang == "python":
            return _run_python(ex)
        raise ValueError(f"cannot run a {ex.lang!r} example")
    finally:
        os.chdir(cwd)


def _run_stl(ex: Example) -> tuple[list[Diagnostic], dict[str, str]]:
    import stlspec

    path = "example.stl"
    try:
        checked = stlspec.check(stlspec.parse(ex.text, path=path))
        stlspec.lower(checked)
    except StlError as err:
        return list(err.diagnostics), {**err.sources, path: ex.text}
    return list(checked.warnings), {path: ex.text}


def _run_json(ex: Example) -> tuple[list[Diagnostic], dict[str, str]]:
    from stlspec.trace import load_trace

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        Path("trace.json").write_text(ex.text, encoding="utf-8")
        try:
            load_trace("trace.json")
        except StlError as err:
            return list(err.diagnostics), {"trace.json": ex.text}
    return [], {}


def _run_python(ex: Example) -> tuple[list[Diagnostic], dict[str, str]]:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(ex.text, "example.py", "exec"), {"__name__": "__example__"})
    except StlError as err:
        return list(err.diagnostics), dict(err.sources)
    return [], {}


def _entry(code: str) -> str:
    info = CODES[code]
    out = [f"### {code}: {info.title} {{ #{code.lower()} }}", "", f"*{info.severity}* — {info.explanation}", ""]
    ex = EXAMPLES.get(code)
    if ex is None:
        out += [NO_EXAMPLE[code], ""]
        return "\n".join(out)
    title = f'{info.severity} {code}'
    out += [f'```{ex.lang} title="{title}"', ex.text.rstrip("\n"), "```", ""]
    diags, sources = diagnostics_of(ex)
    assert code in {d.code for d in diags}, f"the example for {code} does not produce it: {diags}"
    out += ["```text", render_all(diags, sources).rstrip("\n"), "```", ""]
    if ex.note:
        out += [ex.note, ""]
    return "\n".join(out)


def generate() -> str:
    parts = [HEADER]
    rows = ["| code | severity | title |", "| --- | --- | --- |"]
    rows += [f"| [{c}](#{c.lower()}) | {CODES[c].severity} | {CODES[c].title} |" for c in CODES]
    parts.append("\n".join(rows) + "\n")
    seen: set[str] = set()
    for prefix, heading, intro in SECTIONS:
        codes = [c for c in CODES if c.startswith(prefix) and c not in seen]
        if not codes:
            continue
        seen.update(codes)
        parts.append(f"## {heading}\n" + (f"\n{intro}\n" if intro else ""))
        parts.extend(_entry(c) for c in codes)
    missing = [c for c in CODES if c not in seen]
    assert not missing, f"codes without a section: {missing}"
    undocumented = [c for c in CODES if c not in EXAMPLES and c not in NO_EXAMPLE]
    assert not undocumented, f"codes with neither an example nor a reason in NO_EXAMPLE: {undocumented}"
    unknown = sorted(set(EXAMPLES) - set(CODES))
    assert not unknown, f"examples for unregistered codes: {unknown}"
    return "\n".join(parts).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = generate()
    if "--check" in argv:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE.relative_to(REPO)} is stale; run: python docs/gen_errors.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(REPO)} ({len(CODES)} codes, {len(EXAMPLES)} examples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
