"""The canonical layout of ``.stl`` text (``stlspec fmt``).

``format_program`` is idempotent and ``parse(format_program(p)) == p`` for every
program ``p`` (checked by Hypothesis in ``tests/test_formatter.py``). It prints
the fewest parentheses that keep the tree the same, one declaration per line
(categories on one line), a quantifier header on its own line with its body
indented, and each event of a ``then`` chain on its own line.

Comments: comments between top-level items stay where they are; comments written
inside a spec's body are moved to just above the spec (the formula is re-laid
out, so there is no faithful place for them inside).
"""

from __future__ import annotations

from decimal import Decimal
from typing import assert_never

from stlspec import ast
from stlspec.lexicon import is_bare_name, quote

__all__ = ["format_program", "format_formula", "quote_name"]

_INDENT = "  "
MAX_WIDTH = 100

# Binding strength of each construct: a child printed where a stronger one is required gets parentheses.
QUANT, SEQ, IMPLIES, OR, AND, TEMPORAL, PREFIX, ATOM = range(8)


def quote_name(name: str) -> str:
    """``name`` as written in source: bare when it is an identifier and not a keyword, else quoted."""
    return name if is_bare_name(name) else quote(name)


def _num(x: int | float) -> str:
    if isinstance(x, int):
        return str(x)
    text = format(Decimal(repr(float(x))), "f")  # positional notation: the grammar has no exponents
    return text if "." in text else text + ".0"


def _window(w: ast.Window | None) -> str:
    if w is None:
        return ""
    if w.unit == "fraction":
        return f"[{_num(float(w.lo))}, {_num(float(w.hi))}]"  # type: ignore[arg-type]
    return f"[{w.lo}, {'inf' if w.hi is None else w.hi}]"


def _hint(h: ast.Hint | None) -> str:
    if h is None:
        return ""
    if h.name is not None:
        return f" @{h.name}"
    return f" @[{_num(float(h.lo))}, {_num(float(h.hi))}]"  # type: ignore[arg-type]


def _level(f: ast.Formula) -> int:
    match f:
        case ast.Quantified():
            return QUANT
        case ast.Sequence() | ast.Hinted():
            return SEQ
        case ast.Implies():
            return IMPLIES
        case ast.Or():
            return OR
        case ast.And():
            return AND
        case ast.Until() | ast.Release():
            return TEMPORAL
        case ast.Not() | ast.Next() | ast.Eventually() | ast.Always():
            return PREFIX
        case ast.BoolLit() | ast.Atom() | ast.VarEq():
            return ATOM
        case _:
            assert_never(f)


def format_formula(f: ast.Formula, indent: int = 0, inline: bool = False) -> str:
    """``f`` in canonical layout; continuation lines are indented by ``indent`` levels.

    One fold over the tree (no recursion): each node's context is ``(indent,
    need, inline)``, where ``need`` is the binding strength its position
    requires; a weaker node is printed in parentheses, all on one line.
    """
    return ast.fold(f, _leave, _enter, (indent, QUANT, inline))


def _effective(f: ast.Formula, ctx: tuple[int, int, bool]) -> tuple[int, bool, bool]:
    """``(indent, inline, parenthesized)`` for printing ``f`` at a position needing ``ctx``."""
    indent, need, inline = ctx
    if _level(f) < need:
        return indent, True, True  # inside parentheses everything stays on one line
    return indent, inline, False


def _enter(f: ast.Formula, ctx: tuple[int, int, bool]) -> tuple:
    indent, inline, _ = _effective(f, ctx)

    def at(level: int, deeper: int = 0) -> tuple[int, int, bool]:
        return (indent + deeper, level, inline)

    match f:
        case ast.BoolLit() | ast.Atom() | ast.VarEq():
            return ()
        case ast.Not() | ast.Next() | ast.Eventually() | ast.Always():
            return (at(PREFIX),)
        case ast.Until() | ast.Release():
            return (at(PREFIX), at(TEMPORAL))
        case ast.And(args):
            return (at(AND + 1),) * len(args)
        case ast.Or(args):
            return (at(OR + 1),) * len(args)
        case ast.Implies():
            return (at(OR), at(IMPLIES))
        case ast.Hinted():
            return (at(IMPLIES),)
        case ast.Sequence(events):
            return (at(IMPLIES),) * len(events)
        case ast.Quantified():
            return (at(QUANT, 1),)
        case _:
            assert_never(f)


def _leave(f: ast.Formula, ctx: tuple[int, int, bool], kids: tuple[str, ...]) -> str:
    indent, inline, paren = _effective(f, ctx)
    here = "\n" + _INDENT * indent
    match f:
        case ast.BoolLit(value):
            text = "true" if value else "false"
        case ast.Atom(pred, args):
            text = f"{quote_name(pred.text)}({', '.join(args)})"
        case ast.VarEq(left, right, equal):
            text = f"{left} {'==' if equal else '!='} {right}"
        case ast.Not():
            text = "not " + kids[0]
        case ast.Next(_, weak, steps):
            head = ("weak next" if weak else "next") + (f"[{steps}]" if steps != 1 or f.steps_given else "")
            text = f"{head} {kids[0]}"
        case ast.Eventually(_, window):
            text = f"eventually{_window(window)} {kids[0]}"
        case ast.Always(_, window):
            text = f"always{_window(window)} {kids[0]}"
        case ast.Until(_, _, window):
            text = f"{kids[0]} until{_window(window)} {kids[1]}"
        case ast.Release(_, _, window):
            text = f"{kids[0]} release{_window(window)} {kids[1]}"
        case ast.And() | ast.Or():
            op = " and " if isinstance(f, ast.And) else " or "
            flat = op.join(kids)
            if inline or len(flat) + 2 * indent <= MAX_WIDTH or any("\n" in p for p in kids):
                text = flat
            else:  # too long for one line: one operand per line, the operator leading
                text = (here + _INDENT + op.lstrip()).join(kids)
        case ast.Implies():
            text = f"{kids[0]} implies {kids[1]}"
        case ast.Hinted(_, hint):
            text = kids[0] + _hint(hint)
        case ast.Sequence(events):
            parts = [k + _hint(e.hint) for k, e in zip(kids, events)]
            text = (" then " if inline else here + "then ").join(parts)
        case ast.Quantified(kind, binders):
            head = kind + " " + ", ".join(
                b.var + (f": {quote_name(b.category.text)}" if b.category is not None else "") for b in binders)
            text = f"{head}." + (" " if inline else here + _INDENT) + kids[0]
        case _:
            assert_never(f)
    return f"({text})" if paren else text


def _item(item: ast.Item) -> str:
    match item:
        case ast.Include(path):
            return f"include {quote(path)}"
        case ast.CategoryDecl(names):
            return "category " + ", ".join(quote_name(n.text) for n in names)
        case ast.PredicateDecl(kind, name, params):
            return f"{kind} {quote_name(name.text)}({', '.join(quote_name(p.text) for p in params)})"
        case ast.Spec(name, formula, caption):
            head = f"spec {name}" + (f" {quote(caption)}" if caption is not None else "")
            return f"{head} {{\n{_INDENT}{format_formula(formula, 1)}\n}}"
        case _:
            assert_never(item)


def format_program(program: ast.Program) -> str:
    """The whole file in canonical layout (ends with one newline)."""
    comments = list(program.comments)
    src = program.source
    out: list[str] = []
    prev_kind = None
    packable = False
    for item in program.items:
        start, end = _item_start(item), _item_end(item, src)
        if start < 0:  # a synthesized item (no source): nothing to attach
            mine, comments = [], comments
        else:
            eol = src.find("\n", end)
            eol = len(src) if eol < 0 else eol
            mine = [(o, c) for o, c in comments if o < eol]
            comments = [(o, c) for o, c in comments if o >= eol]
        leading = [c for o, c in mine if o < start]
        inner = [c for o, c in mine if start <= o < end]
        trailing = [c for o, c in mine if o >= end]
        kind = item.kind if isinstance(item, ast.PredicateDecl) else type(item).__name__
        text = _item(item)
        if (isinstance(item, ast.PredicateDecl) and kind == prev_kind and not (leading or inner or trailing)
                and packable and len(out[-1]) + 2 + len(text) - len(kind) - 1 <= MAX_WIDTH):
            # Consecutive declarations of one kind share a line, like `category a, b, c`.
            out[-1] += ", " + text[len(kind) + 1:]
            continue
        if out and (kind != prev_kind or kind == "Spec" or leading):
            out.append("")
        out.extend(leading)
        out.extend(inner)
        out.append(text + "".join("  " + c for c in trailing))
        packable = not trailing
        prev_kind = kind
    if comments:
        if out:
            out.append("")
        out.extend(c for _, c in comments)
    return "\n".join(out) + "\n" if out else ""


def _item_start(item: ast.Item) -> int:
    span = item.name_span if isinstance(item, ast.Spec) else item.span
    if not span.known:
        return -1
    return span.start


def _item_end(item: ast.Item, source: str = "") -> int:
    if not item.span.known:
        return -1
    if isinstance(item, ast.Spec) and source:
        close = source.find("}", item.span.end)  # comments before a spec's '}' belong inside it
        return close + 1 if close >= 0 else item.span.end
    return item.span.end
