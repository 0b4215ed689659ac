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

import re
from decimal import Decimal

from stlspec import ast

__all__ = ["format_program", "format_formula", "quote_name"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDENT = "  "
MAX_WIDTH = 100

# Binding strength of each construct: a child printed where a stronger one is required gets parentheses.
QUANT, SEQ, IMPLIES, OR, AND, TEMPORAL, PREFIX, ATOM = range(8)


def quote_name(name: str) -> str:
    """``name`` as written in source: bare when it is an identifier and not a keyword, else quoted."""
    from stlspec.fastparse import KEYWORDS

    if _IDENT.fullmatch(name) and name not in KEYWORDS:
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
    return ATOM


def format_formula(f: ast.Formula, indent: int = 0, inline: bool = False) -> str:
    """``f`` in canonical layout; continuation lines are indented by ``indent`` levels."""
    return _fmt(f, indent, QUANT, inline)


def _fmt(f: ast.Formula, indent: int, need: int, inline: bool) -> str:
    if _level(f) < need:
        # Inside parentheses everything stays on one line: the layout only breaks lines at the top.
        return "(" + _fmt(f, indent, QUANT, True) + ")"
    here = "\n" + _INDENT * indent

    def sub(g: ast.Formula, level: int, deeper: int = 0) -> str:
        return _fmt(g, indent + deeper, level, inline)

    match f:
        case ast.BoolLit(value):
            return "true" if value else "false"
        case ast.Atom(pred, args):
            return f"{quote_name(pred.text)}({', '.join(args)})"
        case ast.VarEq(left, right, equal):
            return f"{left} {'==' if equal else '!='} {right}"
        case ast.Not(arg):
            return "not " + sub(arg, PREFIX)
        case ast.Next(arg, weak, steps):
            head = ("weak next" if weak else "next") + (f"[{steps}]" if steps != 1 or f.steps_given else "")
            return f"{head} " + sub(arg, PREFIX)
        case ast.Eventually(arg, window):
            return f"eventually{_window(window)} " + sub(arg, PREFIX)
        case ast.Always(arg, window):
            return f"always{_window(window)} " + sub(arg, PREFIX)
        case ast.Until(left, right, window):
            return f"{sub(left, PREFIX)} until{_window(window)} {sub(right, TEMPORAL)}"
        case ast.Release(left, right, window):
            return f"{sub(left, PREFIX)} release{_window(window)} {sub(right, TEMPORAL)}"
        case ast.And(args) | ast.Or(args):
            op = " and " if isinstance(f, ast.And) else " or "
            parts = [sub(a, (AND if isinstance(f, ast.And) else OR) + 1) for a in args]
            flat = op.join(parts)
            if inline or len(flat) + 2 * indent <= MAX_WIDTH or any("\n" in p for p in parts):
                return flat
            # Too long for one line: one operand per line, the operator leading.
            return (here + _INDENT + op.lstrip()).join(parts)
        case ast.Implies(left, right):
            return f"{sub(left, OR)} implies {sub(right, IMPLIES)}"
        case ast.Hinted(formula, hint):
            return sub(formula, IMPLIES) + _hint(hint)
        case ast.Sequence(events):
            parts = [sub(e.formula, IMPLIES) + _hint(e.hint) for e in events]
            return (" then " if inline else here + "then ").join(parts)
        case ast.Quantified(kind, binders, body):
            head = kind + " " + ", ".join(
                b.var + (f": {quote_name(b.category.text)}" if b.category is not None else "") for b in binders)
            return f"{head}." + (" " if inline else here + _INDENT) + sub(body, QUANT, 1)
    raise AssertionError(f"unknown AST node {f!r}")  # pragma: no cover


def _item(item: ast.Item) -> str:
    match item:
        case ast.Include(path):
            return f"include {quote_name_always(path)}"
        case ast.CategoryDecl(names):
            return "category " + ", ".join(quote_name(n.text) for n in names)
        case ast.PredicateDecl(kind, name, params):
            return f"{kind} {quote_name(name.text)}({', '.join(quote_name(p.text) for p in params)})"
        case ast.Spec(name, formula, caption):
            head = f"spec {name}" + (f" {quote_name_always(caption)}" if caption is not None else "")
            return f"{head} {{\n{_INDENT}{_fmt(formula, 1, QUANT, False)}\n}}"
    raise AssertionError(f"unknown item {item!r}")  # pragma: no cover


def quote_name_always(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
