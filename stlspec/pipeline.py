"""The front-end pipeline: read → parse → resolve includes → check → lower.

This module is the one driver of the stages; each stage is a module that
knows nothing of the ones after it (:mod:`stlspec.parser`,
:mod:`stlspec.checker`, :mod:`stlspec.lowering`), and only this module reads
files (through :func:`stlspec.files.read_text`). Includes are resolved here,
before checking, relative to the including file, recursively, each file once
(cycles end because a file already loaded is skipped). Included files may
only declare vocabulary (categories and predicates).

Diagnostics about an include never quote the included file's text when that
file is not a valid ``.stl`` file (``include "/etc/passwd"`` says that it
does not parse, not what its first line is).
"""

from __future__ import annotations

import os
from dataclasses import replace

from stlspec import ast, diagnostics
from stlspec.checker import CheckedProgram, check as _check
from stlspec.diagnostics import Diagnostic, StlError, cannot_read
from stlspec.files import read_text

#: The largest .stl file (spec file, include, --vocab) stlspec reads.
MAX_SOURCE_BYTES = 16 * 2**20
from stlspec.ir import CoreProgram, Vocabulary
from stlspec.lowering import lower
from stlspec.parser import parse

__all__ = ["load", "resolve_includes", "check", "load_vocabulary", "compile_source", "compile_file"]


def load(path: str) -> ast.Program:
    """Read and parse the ``.stl`` file at ``path`` (its includes are resolved by :func:`check`)."""
    return parse(read_source(path), path)


def read_source(path: str) -> str:
    """The text of a .stl file (E801 for anything unreadable: see :func:`stlspec.files.read_text`)."""
    return read_text(path, error=cannot_read, what=".stl file", max_bytes=MAX_SOURCE_BYTES)


def resolve_includes(program: ast.Program) -> tuple[list[ast.Program], list[Diagnostic], dict[str, str]]:
    """All programs included (transitively) by ``program``, the problems found, and their sources."""
    seen = {os.path.abspath(program.path)}
    out: list[ast.Program] = []
    diags: list[Diagnostic] = []
    sources: dict[str, str] = {}
    queue = [program]
    while queue:
        prog = queue.pop(0)
        base = os.path.dirname(prog.path) if prog.path and not prog.path.startswith("<") else os.getcwd()
        for item in prog.items:
            if not isinstance(item, ast.Include):
                continue
            target = os.path.normpath(os.path.join(base, item.path))
            key = os.path.abspath(target)
            if key in seen:
                continue
            seen.add(key)
            hint = f"the path is resolved relative to {base or '.'}"
            try:
                text = read_text(target, error=cannot_read, what=f"included file {item.path!r}",
                                 max_bytes=MAX_SOURCE_BYTES)
            except StlError as err:  # reported at the include line of the including file
                diags.extend(replace(d, span=item.span, path=prog.path, hints=(*d.hints, hint))
                             for d in err.diagnostics)
                continue
            try:
                sub = parse(text, target)
            except StlError as err:
                # Name the problems, but do not quote the file: it may not be an .stl file at all.
                first = err.diagnostics[0]
                where = f"line {first.span.line}, column {first.span.column}" if first.span.known else "its start"
                diags.append(diagnostics.include_failed(
                    f"included file {item.path!r} is not a valid .stl file ({len(err.diagnostics)} syntax "
                    f"error(s), the first at {where}: {first.code} {diagnostics.CODES[first.code].title})", item.span,
                    prog.path, hints=(f"run `stlspec check {target}` to see them",)))
                continue
            sources[target] = text
            for sub_item in sub.items:
                if isinstance(sub_item, ast.Spec):
                    diags.append(diagnostics.spec_in_include(
                        f"included file {item.path!r} defines spec '{sub_item.name}'", sub_item.name_span, target,
                        hints=("move specs into the including file; keep vocabularies separate",)))
            out.append(sub)
            queue.append(sub)
    return out, diags, sources


def check(program: ast.Program, vocabulary: Vocabulary | None = None) -> CheckedProgram:
    """Resolve ``program``'s includes, then type-check it (raises :class:`StlError` with every problem)."""
    if not any(isinstance(i, ast.Include) for i in program.items):
        return _check(program, vocabulary, includes=[])
    includes, diags, sources = resolve_includes(program)
    return _check(program, vocabulary, includes=includes, include_diagnostics=diags, include_sources=sources)


def load_vocabulary(path: str) -> Vocabulary:
    """The vocabulary declared by a ``.stl`` file (and what it includes)."""
    return check(load(path)).vocabulary


def compile_source(text: str, path: str = "<string>", vocabulary: Vocabulary | str | None = None) -> CoreProgram:
    """parse → resolve includes → check → lower, with every diagnostic reported together."""
    if isinstance(vocabulary, str):
        vocabulary = load_vocabulary(vocabulary)
    return lower(check(parse(text, path), vocabulary))


def compile_file(path: str, vocabulary: Vocabulary | str | None = None) -> CoreProgram:
    """Like :func:`compile_source` for a file on disk."""
    return compile_source(read_source(path), path, vocabulary)
