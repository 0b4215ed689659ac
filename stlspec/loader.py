"""Files and includes: read ``.stl`` files and resolve ``include "other.stl"``.

Includes are resolved relative to the including file, recursively, each file
once; cycles are allowed to terminate (a file already being loaded is skipped).
Included files may only declare vocabulary (categories and predicates).
"""

from __future__ import annotations

import os

from stlspec import ast
from stlspec.diagnostics import Diagnostic, StlError
from stlspec.ir import CoreProgram, Vocabulary

__all__ = ["load", "resolve_includes", "compile_source", "load_vocabulary"]


def load(path: str) -> ast.Program:
    """Parse the file at ``path`` (includes are resolved later, by :func:`resolve_includes`)."""
    from stlspec.parser import parse

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise StlError([Diagnostic("E206", f"cannot read {path}: {exc.strerror or exc}", path=path)]) from None
    return parse(text, path)


def resolve_includes(program: ast.Program) -> tuple[list[ast.Program], list[Diagnostic], dict[str, str]]:
    """All programs included (transitively) by ``program``, the problems found, and their sources."""
    from stlspec.parser import parse

    seen = {os.path.abspath(program.path)}
    out: list[ast.Program] = []
    diags: list[Diagnostic] = []
    sources: dict[str, str] = {}

    def visit(prog: ast.Program) -> None:
        base = os.path.dirname(prog.path) if prog.path and not prog.path.startswith("<") else os.getcwd()
        for item in prog.items:
            if not isinstance(item, ast.Include):
                continue
            target = os.path.normpath(os.path.join(base, item.path))
            key = os.path.abspath(target)
            if key in seen:
                continue
            seen.add(key)
            try:
                with open(target, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as exc:
                diags.append(Diagnostic("E206", f"cannot include {item.path!r}: {exc.strerror or exc}",
                                        item.span, prog.path,
                                        hints=(f"the path is resolved relative to {base or '.'}",)))
                continue
            sources[target] = text
            try:
                sub = parse(text, target)
            except StlError as err:
                diags.append(Diagnostic("E206", f"included file {item.path!r} has syntax errors", item.span,
                                        prog.path, notes=tuple(d.render(text) for d in err.diagnostics)))
                continue
            for sub_item in sub.items:
                if isinstance(sub_item, ast.Spec):
                    diags.append(Diagnostic("E207", f"included file {item.path!r} defines spec '{sub_item.name}'",
                                            sub_item.name_span, target,
                                            hints=("move specs into the including file; keep vocabularies separate",)))
            out.append(sub)
            visit(sub)

    visit(program)
    return out, diags, sources


def load_vocabulary(path: str) -> Vocabulary:
    """The vocabulary declared by a ``.stl`` file (and what it includes)."""
    from stlspec.checker import check

    return check(load(path)).vocabulary


def compile_source(text: str, path: str = "<string>", vocabulary: Vocabulary | str | None = None) -> CoreProgram:
    """parse → check → lower, with every diagnostic reported together."""
    from stlspec.checker import check
    from stlspec.lowering import lower
    from stlspec.parser import parse

    if isinstance(vocabulary, str):
        vocabulary = load_vocabulary(vocabulary)
    return lower(check(parse(text, path), vocabulary))
