"""Backend registry: every compilation target, looked up by name.

A backend is any object with a ``name`` and a ``compile(program, **options)``
method taking a :class:`stlspec.ir.CoreProgram`. Backends are registered here
by module path and imported only when used, so ``import stlspec`` stays light
(torch and scallopy are never imported by the core).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from stlspec import diagnostics
from stlspec.diagnostics import StlError
from stlspec.ir import CoreProgram

__all__ = ["Backend", "BACKENDS", "get_backend", "unsupported"]


class Backend(Protocol):
    name: str

    def compile(self, program: CoreProgram, **options: Any) -> Any: ...


#: target name -> "module:attribute" of the backend object.
BACKENDS: dict[str, str] = {
    "core": "stlspec.backends.core_text:BACKEND",
    "reference": "stlspec.backends.reference:BACKEND",
    "torch": "stlspec.backends.torch:BACKEND",
    "scallop": "stlspec.backends.scallop:BACKEND",
}


def get_backend(target: str) -> Backend:
    try:
        module_name, attr = BACKENDS[target].split(":")
    except KeyError:
        raise StlError([diagnostics.unsupported_by_backend(f"unknown compilation target {target!r}",
                                   hints=(f"choose one of: {', '.join(BACKENDS)}",))]) from None
    return getattr(importlib.import_module(module_name), attr)


def unsupported(backend: str, what: str, hint: str = "") -> StlError:
    """The one channel for "this backend cannot express that"."""
    return StlError([diagnostics.unsupported_by_backend(f"the {backend} backend does not support {what}",
                                hints=(hint,) if hint else ())])
