"""The ``core`` target: the core IR as readable text (``stlspec compile --target core``).

One S-expression per spec, with events listed after it. Meant for people and
golden tests, not for parsing back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from stlspec import ir

__all__ = ["BACKEND", "format_core", "format_spec", "window_text"]


def window_text(w: ir.Window | None) -> str:
    """``[lo, hi]`` in frames, ``[lo, hi of T]`` for fractions of the video, ``""`` for no window."""
    if w is None:
        return ""
    hi = "inf" if w.hi is None else w.hi
    return f"[{w.lo}, {hi}{' of T' if w.unit == 'fraction' else ''}]"


def _head(f: ir.Formula) -> str:
    match f:
        case ir.Const(v):
            return "true" if v else "false"
        case ir.Unary(p, v):
            return f"(unary {p!r} {v})"
        case ir.Binary(p, a, b):
            return f"(binary {p!r} {a} {b})"
        case ir.Eq(a, b):
            return f"(eq {a} {b})"
        case ir.Not():
            return "(not"
        case ir.And():
            return "(and"
        case ir.Or():
            return "(or"
        case ir.Next(_, weak, steps):
            return f"({'weak-next' if weak else 'next'}{'' if steps == 1 else f'[{steps}]'}"
        case ir.Eventually(_, w, event):
            return f"(eventually{window_text(w)}" + ("" if event is None else f" #event{event}")
        case ir.Always(_, w):
            return f"(always{window_text(w)}"
        case ir.Until(_, _, w):
            return f"(until{window_text(w)}"
        case ir.Exists(vs, _) | ir.Forall(vs, _):
            q = "exists" if isinstance(f, ir.Exists) else "forall"
            return f"({q} (" + " ".join(f"{v}:{c or 'any'}" for v, c in vs) + ")"
        case _:
            assert_never(f)


def _sexpr(f: ir.Formula, depth: int) -> str:
    """``f`` as an indented S-expression, one node per line.

    One fold, no recursion (the IR may be thousands deep): a node's line is
    written when it is entered, its closing parenthesis when it is left.
    """
    lines: list[str] = []

    def enter(g: ir.Formula, d: int) -> tuple[int, ...]:
        lines.append("  " * d + _head(g))
        return (d + 1,) * len(ir.children(g))

    def leave(g: ir.Formula, _d: int, kids: tuple) -> None:
        if kids:
            lines[-1] += ")"

    ir.fold(f, leave, enter, depth)
    return "\n".join(lines)


def format_spec(spec: ir.Spec) -> str:
    lines = [f"spec {spec.name}" + (f"  // {spec.caption}" if spec.caption else ""), _sexpr(spec.formula, 1)]
    for ev in spec.events:
        hint = "" if ev.hint is None else f" hint=[{ev.hint[0]:.3g}, {ev.hint[1]:.3g}]"
        lines.append(f"  event {ev.index}: {ev.label}{hint}")
    return "\n".join(lines)


def format_core(program: ir.CoreProgram) -> str:
    return "\n\n".join(format_spec(s) for s in program.specs) + "\n"


@dataclass(frozen=True)
class CoreText:
    text: str


class _CoreBackend:
    name = "core"

    def compile(self, program: ir.CoreProgram, **options) -> CoreText:
        return CoreText(format_core(program))


BACKEND = _CoreBackend()
