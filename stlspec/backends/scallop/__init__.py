"""The Scallop backend: core IR → Scallop (Datalog) program text, run via scallopy when installed.

::

    prog = stlspec.compile(core_program, target="scallop")             # a ScallopProgram
    prog.text                                                           # the .scl program
    prog = stlspec.compile(core_program, target="scallop", trace=tr)   # standalone: facts embedded

Compilation needs nothing beyond the core library; :mod:`.runner` imports
``scallopy`` (and torch) lazily, only when a program is run. Every emitted
program is checked against the subset grammar and semantic rules of
:mod:`.validate` before it is returned. See ``docs/scallop.md``.
"""

from __future__ import annotations

from typing import Any

from stlspec.backends.scallop.emit import INPUT_RELATIONS, ScallopProgram, compile_program
from stlspec.backends.scallop.validate import ScallopSubsetError, validate, validate_program

__all__ = ["BACKEND", "ScallopBackend", "ScallopProgram", "compile_program", "INPUT_RELATIONS",
           "ScallopSubsetError", "validate", "validate_program", "run", "ScallopModule", "RunResult"]


class ScallopBackend:
    """Registry entry ``"scallop"``: ``compile`` returns a :class:`ScallopProgram`."""

    name = "scallop"

    def compile(self, program: Any, *, trace: Any = None, specs: Any = None, witnesses: bool = False,
                validate_output: bool = True) -> ScallopProgram:
        """Compile ``program`` (a :class:`stlspec.ir.CoreProgram`).

        ``trace``: a :class:`stlspec.trace.Trace` (or a path to a JSON trace)
        to embed as probabilistic facts (standalone mode); ``specs``: names of
        the specs to include (default all); ``witnesses=True`` adds the
        ``witness_*`` relations and queries. ``validate_output=False`` skips the
        self-check of the emitted text (grammar + semantic rules; embedded
        facts beyond 200 kB are checked line by line instead of parsed).
        """
        if isinstance(trace, (str, bytes)) or hasattr(trace, "__fspath__"):
            from stlspec.trace import load_trace

            trace = load_trace(str(trace), program.vocabulary)
        result = compile_program(program, trace=trace, specs=specs, witnesses=witnesses)
        if validate_output:
            try:
                validate_program(result.text, result.fact_block)
            except ScallopSubsetError as exc:  # pragma: no cover - an emitter bug
                raise AssertionError(f"internal error: the emitted Scallop program failed its self-check:\n{exc}")
        return result


BACKEND = ScallopBackend()


def __getattr__(name: str) -> Any:
    # The runner imports scallopy/torch lazily; expose it without importing it eagerly.
    if name in ("run", "ScallopModule", "RunResult", "require_scallopy"):
        from stlspec.backends.scallop import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

