"""The ``core`` target: the core IR as readable text (``stlspec compile --target core``).

One S-expression per spec, with events listed after it. Meant for people and
golden tests, not for parsing back.
"""

from __future__ import annotations

from dataclasses import dataclass

from stlspec import ir

__all__ = ["BACKEND", "format_core", "format_spec", "window_text"]


def window_text(w: ir.Window | None) -> str:
    """``[lo, hi]`` in frames, ``[lo, hi of T]`` for fractions of the video, ``""`` for no window."""
    if w is None:
        return ""
    hi = "inf" if w.hi is None else w.hi
    return f"[{w.lo}, {hi}{' of T' if w.unit == 'fraction' else ''}]"


def _sexpr(f: ir.Formula, depth: int) -> str:
    pad = "  " * depth
    match f:
        case ir.Const(v):
            return pad + ("true" if v else "false")
        case ir.Unary(p, v):
            return pad + f"(unary {p!r} {v})"
        case ir.Binary(p, a, b):
            return pad + f"(binary {p!r} {a} {b})"
        case ir.Eq(a, b):
            return pad + f"(eq {a} {b})"
    head = {
        ir.Not: "not", ir.And: "and", ir.Or: "or", ir.Next: "next", ir.Eventually: "eventually",
        ir.Always: "always", ir.Until: "until", ir.Exists: "exists", ir.Forall: "forall",
    }[type(f)]
    if isinstance(f, ir.Next) and f.weak:
        head = "weak-next"
    if isinstance(f, (ir.Eventually, ir.Always, ir.Until)):
        head += window_text(f.window)
    if isinstance(f, ir.Eventually) and f.event is not None:
        head += f" #event{f.event}"
    if isinstance(f, (ir.Exists, ir.Forall)):
        head += " (" + " ".join(f"{v}:{c or 'any'}" for v, c in f.vars) + ")"
    kids = "\n".join(_sexpr(c, depth + 1) for c in ir.children(f))
    return f"{pad}({head}\n{kids})"


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
