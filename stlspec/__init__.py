"""stlspec: a spatio-temporal logic specification language and compiler.

Stages (each a public function)::

    program = stlspec.parse(text, path="spec.stl")     # surface AST
    checked = stlspec.check(program)                   # includes resolved, + vocabulary, diagnostics
    core    = stlspec.lower(checked)                   # core IR (stlspec.ir)
    result  = stlspec.compile(core, target="torch")    # a backend artefact

``stlspec.compile_text(text)`` runs parse → check → lower in one call. Every
stage raises :class:`StlError` holding all the diagnostics it found.
Importing this package needs only ``lark``; traces and the reference
interpreter use ``numpy`` (a core dependency, so a plain install runs
``stlspec eval``); backends import their heavy dependencies when used.
"""

from __future__ import annotations

from typing import Any

from stlspec.diagnostics import Diagnostic, StlError
from stlspec.ir import CoreProgram, Vocabulary

__all__ = [
    "parse", "check", "lower", "compile", "compile_text", "compile_file", "format",
    "load", "load_vocabulary", "CheckedProgram", "Vocabulary", "CoreProgram", "Diagnostic", "StlError",
    "__version__",
]

__version__ = "0.1.0"


def parse(text: str, path: str = "<string>"):
    """Parse ``.stl`` text into a :class:`stlspec.ast.Program` (raises :class:`StlError`)."""
    from stlspec.parser import parse as _parse

    return _parse(text, path)


def load(path: str):
    """Read and parse a ``.stl`` file and, recursively, the files it includes."""
    from stlspec.pipeline import load as _load

    return _load(path)


def load_vocabulary(path: str) -> Vocabulary:
    """The vocabulary declared by a ``.stl`` file and the files it includes."""
    from stlspec.pipeline import load_vocabulary as _load_vocabulary

    return _load_vocabulary(path)


def check(program, vocabulary=None):
    """Resolve a parsed program's includes, then type-check it against its declarations plus ``vocabulary``."""
    from stlspec.pipeline import check as _check

    return _check(program, vocabulary)


def lower(checked) -> CoreProgram:
    """Lower a checked program to the core IR by the passes in :mod:`stlspec.lowering`."""
    from stlspec.lowering import lower as _lower

    return _lower(checked)


def compile_text(text: str, vocabulary=None, path: str = "<string>") -> CoreProgram:
    """parse → check → lower. Includes are resolved relative to ``path``."""
    from stlspec.pipeline import compile_source

    return compile_source(text, path=path, vocabulary=vocabulary)


def compile_file(path: str, vocabulary=None) -> CoreProgram:
    """Like :func:`compile_text` for a file on disk (read with the checks of :mod:`stlspec.files`)."""
    from stlspec.pipeline import compile_file as _compile_file

    return _compile_file(path, vocabulary)


def compile(program: CoreProgram, target: str = "core", **options: Any) -> Any:
    """Compile a core program with a registered backend (``core``, ``reference``, ``torch``, ``scallop``)."""
    from stlspec.backends import get_backend

    return get_backend(target).compile(program, **options)


def format(program) -> str:  # noqa: A001 - mirrors the CLI verb
    """Canonical text of a parsed program (``stlspec fmt``)."""
    from stlspec.formatter import format_program

    return format_program(program)


def __getattr__(name: str):
    if name == "CheckedProgram":
        from stlspec.checker import CheckedProgram

        return CheckedProgram
    raise AttributeError(f"module 'stlspec' has no attribute {name!r}")
