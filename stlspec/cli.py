"""The ``stlspec`` command line: subcommands mirror the compiler stages.

    stlspec check FILE...                 parse + type-check; exit 1 on errors
    stlspec fmt [--check] FILE...         canonical layout, in place
    stlspec eval FILE --trace TRACE.json  satisfaction of each spec (+ witness frames)
    stlspec compile --target T FILE       core IR text, Scallop program, ...
    stlspec from-captions / import-laser  captions → specs (see ``stlspec.cli_llm``)

Every command prints diagnostics like a compiler. Exit codes, the same for
every subcommand (``docs/cli.md``): 0 success; 1 problems found in the input
(diagnostics, a file ``fmt --check`` would change, a file that cannot be read
or written); 2 usage errors (bad options, reported by argparse, or a request
the command cannot serve); 130 interrupted. Output piped into a command that
stops reading early (``| head``) ends quietly.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from stlspec.diagnostics import StlError, render_all, to_json

#: Subcommands that never touch the LLM package (``stlspec check`` must not import it).
CORE_COMMANDS = ("check", "fmt", "eval", "compile")
TARGETS = ("core", "scallop")  # backends whose artefact is text (the others are Python objects)

__all__ = ["main", "build_parser"]

LOGICS = ("boolean", "godel", "product", "smooth", "exact")

EPILOG = """\
examples: (from a checkout's root; tests/test_readme.py runs each of them)
  stlspec check examples/specs/*.stl
  stlspec check --format json examples/specs/pick_up.stl     machine-readable diagnostics
  stlspec fmt --check examples/specs/*.stl                   exit 1 if any file is not formatted
  stlspec eval examples/specs/pick_up.stl --trace examples/traces/picking_something_up.holds.json
  stlspec compile --target core examples/specs/pick_up.stl   show the lowered core IR
  stlspec compile --target scallop examples/specs/pick_up.stl --trace examples/traces/picking_something_up.holds.json -o out.scl
"""


def build_parser(llm: bool = True) -> argparse.ArgumentParser:
    """The argument parser; ``llm=False`` leaves out the caption subcommands (and their imports)."""
    p = argparse.ArgumentParser(
        prog="stlspec",
        description="Check, format, evaluate and compile spatio-temporal logic specs (.stl files).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"stlspec {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check", help="parse and type-check .stl files; exit 1 on errors",
                       description="Parse and type-check files. All problems of all files are reported.")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--vocab", metavar="V.stl", help="check against the vocabulary declared in this file")
    c.add_argument("--format", choices=("text", "json"), default="text", help="diagnostics as text or JSON")
    c.add_argument("--quiet", "-q", action="store_true", help="print nothing when there are no problems")
    c.set_defaults(func=cmd_check)

    f = sub.add_parser("fmt", help="rewrite .stl files in canonical layout",
                       description="Rewrite files in canonical layout (idempotent; comments are kept).")
    f.add_argument("files", nargs="+", metavar="FILE")
    f.add_argument("--check", action="store_true", help="do not write; exit 1 if a file would change")
    f.add_argument("--stdout", action="store_true", help="print the formatted text instead of writing")
    f.set_defaults(func=cmd_fmt)

    e = sub.add_parser("eval", help="evaluate specs on a scene-graph trace (reference interpreter)",
                       description="Evaluate each spec of FILE on a trace with the reference interpreter. "
                                   "Prints the satisfaction value and, per event, the most likely witness frame.")
    e.add_argument("file", metavar="FILE")
    e.add_argument("--trace", required=True, metavar="TRACE.json", help="scene-graph trace (see docs/traces.md)")
    e.add_argument("--logic", choices=LOGICS, default="godel", help="how and/or/not combine values (default godel)")
    e.add_argument("--temperature", type=float, default=0.1, help="temperature of the smooth logic")
    e.add_argument("--spec", action="append", metavar="NAME", help="only these specs (repeatable)")
    e.add_argument("--vocab", metavar="V.stl", help="vocabulary file (default: the one FILE declares)")
    e.add_argument("--format", choices=("text", "json"), default="text")
    e.set_defaults(func=cmd_eval)

    k = sub.add_parser("compile", help="compile specs for a backend (core, scallop)",
                       description="Compile FILE's specs. `core` prints the lowered core IR; `scallop` prints a "
                                   "Scallop program (with --trace: a standalone program with the trace as facts).")
    k.add_argument("file", metavar="FILE")
    k.add_argument("--target", default="core", choices=TARGETS,
                   help="core | scallop (default core); the reference and torch targets build Python objects: "
                        "use stlspec.compile(program, target=...)")
    k.add_argument("--trace", metavar="TRACE.json", help="embed this trace (scallop standalone mode)")
    k.add_argument("--spec", action="append", metavar="NAME", help="only these specs (repeatable)")
    k.add_argument("--vocab", metavar="V.stl")
    k.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    k.set_defaults(func=cmd_compile)

    if llm:
        from stlspec import cli_llm

        cli_llm.register(sub)
    return p


def _version() -> str:
    from stlspec import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    words = [a for a in argv if not a.startswith("-")]
    parser = build_parser(llm=not (words and words[0] in CORE_COMMANDS))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except StlError as err:
        _print_diagnostics(err, getattr(args, "format", "text"))
        return 1
    except BrokenPipeError:
        # The reader went away (`stlspec compile ... | head`): stop quietly, and keep Python's
        # final flush of stdout from raising again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _print_diagnostics(err: StlError, fmt: str = "text", out=None) -> None:
    out = out or sys.stderr
    if fmt == "json":
        print(to_json(err.diagnostics), file=sys.stdout)
    else:
        print(err.render(), file=out)


def _read(path: str) -> str:
    from stlspec.pipeline import read_source

    return read_source(path)


def _vocab(path: str | None):
    if path is None:
        return None
    from stlspec.pipeline import load_vocabulary

    return load_vocabulary(path)


def _compile(path: str, vocab_path: str | None):
    from stlspec.pipeline import compile_source

    text = _read(path)
    return compile_source(text, path=path, vocabulary=_vocab(vocab_path)), text


def _write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` or raise E804 (a directory, a missing directory, no permission)."""
    from stlspec.files import write_text

    write_text(path, text)


def cmd_check(args) -> int:
    from stlspec.parser import parse
    from stlspec.pipeline import check

    diagnostics, sources, failed, open_vocab = [], {}, 0, []
    try:
        vocab = _vocab(args.vocab)
    except StlError as err:  # a broken --vocab file: report it like the files themselves
        vocab, failed = None, 1
        diagnostics.extend(err.diagnostics)
        sources.update(err.sources)
        args.files = []
    for path in args.files:
        try:
            text = _read(path)
            sources[path] = text
            checked = check(parse(text, path), vocab)
            diagnostics.extend(checked.warnings)
            sources.update(checked.sources)
            if checked.open_vocabulary:
                open_vocab.append(path)
        except StlError as err:
            failed += 1
            diagnostics.extend(err.diagnostics)
            sources.update(err.sources)
    if args.format == "json":
        print(to_json(diagnostics))
    elif diagnostics:
        print(render_all(diagnostics, sources), file=sys.stderr)
    if args.format != "json" and not args.quiet:
        for path in open_vocab:
            print(f"note: {path} declares no vocabulary (no categories, predicates or includes): checked in "
                  f"open-vocabulary mode, where every predicate and category is accepted; "
                  f"pass --vocab V.stl to check names", file=sys.stderr)
        if not failed:
            n = len(args.files)
            print(f"ok: {n} file{'s' if n != 1 else ''} checked" + ("" if diagnostics else ", no problems"))
    return 1 if failed else 0


def cmd_fmt(args) -> int:
    from stlspec.formatter import format_program
    from stlspec.parser import parse

    changed, failed = [], []
    for path in args.files:
        try:
            text = _read(path)
            new = format_program(parse(text, path))
        except StlError as err:
            _print_diagnostics(err)
            failed.append(path)
            continue
        if args.stdout:
            sys.stdout.write(new)
        elif new != text:
            changed.append(path)
            if not args.check:
                _write(path, new)
    unchanged = len(args.files) - len(changed) - len(failed)
    failures = f", {len(failed)} could not be formatted" if failed else ""
    if args.check:
        for path in changed:
            print(f"would reformat {path}", file=sys.stderr)
        if not changed and not failed:
            print(f"ok: {len(args.files)} file(s) already formatted")
        elif failed:
            print(f"{len(changed)} file(s) would be reformatted, {unchanged} already formatted{failures}",
                  file=sys.stderr)
        return 1 if changed or failed else 0
    if not args.stdout:
        print(f"{len(changed)} file(s) reformatted, {unchanged} unchanged{failures}",
              file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def _select(program, names):
    if not names:
        return program
    from dataclasses import replace

    from stlspec import diagnostics

    known = {s.name for s in program.specs}
    missing = [n for n in names if n not in known]
    if missing:
        raise StlError([diagnostics.unknown_spec(m, program.path, known) for m in missing])
    return replace(program, specs=tuple(s for s in program.specs if s.name in names))


def cmd_eval(args) -> int:
    from stlspec.backends.reference import evaluate_program
    from stlspec.trace import load_trace

    program = _select(_compile(args.file, args.vocab)[0], args.spec)
    trace = load_trace(args.trace, program.vocabulary)
    results = evaluate_program(program, trace, logic=args.logic, temperature=args.temperature)
    if args.format == "json":
        print(json.dumps({name: {"value": r.value, "witnesses": [list(w) for w in r.witnesses]}
                          for name, r in results.items()}, indent=2))
        return 0
    width = max((len(n) for n in results), default=4)
    print(f"{'spec':<{width}}  {args.logic:>8}")
    for spec in program.specs:
        r = results[spec.name]
        print(f"{spec.name:<{width}}  {r.value:8.4f}")
        for ev, dist in zip(spec.events, r.witnesses):
            if sum(dist) > 0:
                best = max(range(len(dist)), key=dist.__getitem__)
                where = f"frame {best} (p={dist[best]:.2f})"
            else:
                where = "no witness"
            hint = "" if ev.hint is None else f"   hint [{ev.hint[0]:.2f}, {ev.hint[1]:.2f}]"
            print(f"{'':<{width}}    event {ev.index} {ev.label!r}: {where}{hint}")
    return 0


def cmd_compile(args) -> int:
    from stlspec.backends import get_backend

    program, source = _compile(args.file, args.vocab)
    program = _select(program, args.spec)
    options = {}
    if args.trace:
        from stlspec.trace import load_trace

        options["trace"] = load_trace(args.trace, program.vocabulary)
    try:
        artefact = get_backend(args.target).compile(program, **options)
    except StlError as err:  # a backend's diagnostic about a spec (E601, E602): show the spec's line
        err.sources.setdefault(args.file, source)
        raise
    text = artefact.text
    if args.output:
        _write(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
