"""A hand-written recursive-descent parser for the happy path.

Why a second parser: LLM pipelines parse and check specs by the hundred
thousand, and Lark's LALR parser plus tree transformation costs about 0.7 ms
for a typical spec; this parser builds the same AST (same nodes, same spans)
in a fraction of that. It follows ``grammar/stl.lark`` rule by rule and stays
the *fast path* only: on any input it does not accept, :func:`stlspec.parse`
re-parses with Lark, which produces the named, positioned diagnostics. A
differential test (``tests/test_fastparse.py``) checks that both parsers give
equal ASTs and spans on generated programs and that they accept the same texts.
"""

from __future__ import annotations

import re

from stlspec import ast
from stlspec.lexicon import BLOCK_COMMENT, IDENT, KEYWORDS, LINE_COMMENT, STRING, WHITESPACE, unquote
from stlspec.span import Span

__all__ = ["fast_parse", "Fallback"]

_TOKEN = re.compile("|".join([
    f"(?P<ws>{WHITESPACE}|{LINE_COMMENT}|{BLOCK_COMMENT})",
    f"(?P<STRING>{STRING})",
    r"(?P<DECIMAL>[0-9]+\.[0-9]+)",
    r"(?P<INT>[0-9]+)",
    f"(?P<IDENT>{IDENT})",
    r"(?P<OP>==|!=|[(){}\[\],:.@])",
]))

#: Nesting (parentheses, prefix operators, right-nested binary operators) this recursive-descent parser
#: takes on; deeper text goes to the Lark parser, which does not recurse.
FAST_NESTING = 60


class Fallback(Exception):
    """The fast parser does not accept this text; Lark will produce the diagnostics."""


def _tokens(text: str, comments: list):
    """Tokens as ``(kind, value, start, end, line, column)``; line/column tracked incrementally.

    Comments are appended to ``comments`` as ``(offset, text)`` (the formatter keeps them).
    """
    out = []
    pos = 0
    line, line_start = 1, 0
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            raise Fallback  # a character that starts no token
        kind = m.lastgroup
        pos = m.end()
        if kind == "ws":
            if m.group()[0] in "/#":
                comments.append((m.start(), m.group()))
            nl = m.group().count("\n")
            if nl:
                line += nl
                line_start = text.rfind("\n", 0, pos) + 1
            continue
        value = m.group()
        if kind == "IDENT" and value in KEYWORDS:
            kind = value
        elif kind == "OP":
            kind = value
        out.append((kind, value, m.start(), pos, line, m.start() - line_start + 1))
    if pos != len(text):
        raise Fallback
    col = len(text) - line_start + 1
    out.append(("$END", "", len(text), len(text), line, col))
    return out


class _Parser:
    def __init__(self, text: str):
        self.comments: list[tuple[int, str]] = []
        self.toks = _tokens(text, self.comments)
        self.i = 0
        self.nesting = 0

    def nested(self, parse):
        """``parse()`` one level deeper; deeper than :data:`FAST_NESTING` is Lark's job."""
        self.nesting += 1
        if self.nesting > FAST_NESTING:
            raise Fallback
        out = parse()
        self.nesting -= 1
        return out

    # ------------------------------------------------------------ helpers
    def peek(self, k: int = 0) -> str:
        return self.toks[self.i + k][0]

    def take(self, kind: str):
        tok = self.toks[self.i]
        if tok[0] != kind:
            raise Fallback
        self.i += 1
        return tok

    def accept(self, kind: str):
        if self.toks[self.i][0] == kind:
            tok = self.toks[self.i]
            self.i += 1
            return tok
        return None

    @staticmethod
    def span(tok) -> Span:
        # Tokens never contain a newline, so a token's span ends on its own line.
        return Span(tok[2], tok[3], tok[4], tok[5], tok[4], tok[5] + tok[3] - tok[2])

    @staticmethod
    def cover(first: Span | None, last: Span | None) -> Span:
        if first is None:
            return last  # type: ignore[return-value]
        if last is None:
            return first
        return Span(first.start, last.end, first.line, first.column, last.end_line, last.end_column)

    # ------------------------------------------------------------ items
    def program(self) -> list[ast.Item]:
        items: list[ast.Item] = []
        while True:
            kind = self.peek()
            if kind == "$END":
                return items
            if kind == "include":
                self.i += 1
                tok = self.take("STRING")
                items.append(ast.Include(unquote(tok[1]), self.span(tok)))
            elif kind == "category":
                self.i += 1
                names = [self.name()]
                while self.accept(","):
                    names.append(self.name())
                items.append(ast.CategoryDecl(tuple(names), self.cover(names[0].span, names[-1].span)))
            elif kind in ("unary", "binary"):
                self.i += 1
                items.append(self.signature(kind))
                while self.accept(","):
                    items.append(self.signature(kind))
            elif kind == "spec":
                self.i += 1
                items.append(self.spec())
            else:
                raise Fallback

    def name(self) -> ast.Name:
        tok = self.toks[self.i]
        if tok[0] == "IDENT":
            self.i += 1
            return ast.Name(tok[1], self.span(tok))
        if tok[0] == "STRING":
            self.i += 1
            return ast.Name(unquote(tok[1]), self.span(tok))
        raise Fallback

    def signature(self, kind: str) -> ast.PredicateDecl:
        name = self.name()
        self.take("(")
        params = [self.name()]
        while self.accept(","):
            params.append(self.name())
        self.take(")")
        if len(params) != (1 if kind == "unary" else 2):
            raise Fallback  # Lark's builder reports the arity mistake
        return ast.PredicateDecl(kind, name, tuple(params), self.cover(name.span, params[-1].span))

    def spec(self) -> ast.Spec:
        name_tok = self.take("IDENT")
        cap = self.accept("STRING")
        self.take("{")
        body = self.formula()
        self.take("}")
        name_span = self.span(name_tok)
        return ast.Spec(name_tok[1], body, unquote(cap[1]) if cap else None, name_span.cover(body.span), name_span)

    # ------------------------------------------------------------ formulas
    def formula(self) -> ast.Formula:
        kind = self.peek()
        if kind in ("exists", "forall"):
            kw = self.toks[self.i]
            self.i += 1
            binders = [self.binder()]
            while self.accept(","):
                binders.append(self.binder())
            self.take(".")
            body = self.nested(self.formula)
            return ast.Quantified(kind, tuple(binders), body, self.span(kw).cover(body.span))
        events = [self.event()]
        while self.accept("then"):
            events.append(self.event())
        if len(events) == 1:
            ev = events[0]
            return ev.formula if ev.hint is None else ast.Hinted(ev.formula, ev.hint, ev.span)
        return ast.Sequence(tuple(events), self.cover(events[0].span, events[-1].span))

    def binder(self) -> ast.Binder:
        var = self.take("IDENT")
        cat = self.name() if self.accept(":") else None
        return ast.Binder(var[1], cat, self.cover(self.span(var), cat.span if cat else None))

    def event(self) -> ast.Event:
        f = self.implication()
        hint = None
        if self.accept("@"):
            if self.peek() == "IDENT":
                tok = self.take("IDENT")
                hint = ast.Hint(name=tok[1], span=self.span(tok))
            else:
                self.take("[")
                lo = self.number()
                self.take(",")
                hi = self.number()
                self.take("]")
                hint = ast.Hint(lo=float(lo[1]), hi=float(hi[1]), span=self.cover(self.span(lo), self.span(hi)))
        return ast.Event(f, hint, self.cover(f.span, hint.span if hint else None))

    def number(self):
        tok = self.toks[self.i]
        if tok[0] not in ("INT", "DECIMAL"):
            raise Fallback
        self.i += 1
        return tok

    def implication(self) -> ast.Formula:
        left = self.disjunction()
        if self.accept("implies"):
            right = self.nested(self.implication)
            return ast.Implies(left, right, self.cover(left.span, right.span))
        return left

    def disjunction(self) -> ast.Formula:
        args = [self.conjunction()]
        while self.accept("or"):
            args.append(self.conjunction())
        return args[0] if len(args) == 1 else ast.Or(tuple(args), self.cover(args[0].span, args[-1].span))

    def conjunction(self) -> ast.Formula:
        args = [self.binary_temporal()]
        while self.accept("and"):
            args.append(self.binary_temporal())
        return args[0] if len(args) == 1 else ast.And(tuple(args), self.cover(args[0].span, args[-1].span))

    def binary_temporal(self) -> ast.Formula:
        left = self.prefix()
        kind = self.peek()
        if kind in ("until", "release"):
            self.i += 1
            window = self.window() if self.peek() == "[" else None
            right = self.nested(self.binary_temporal)
            cls = ast.Until if kind == "until" else ast.Release
            return cls(left, right, window, self.cover(left.span, right.span))
        return left

    def window(self) -> ast.Window:
        self.take("[")
        lo = self.number()
        self.take(",")
        if self.peek() == "inf":
            hi = self.take("inf")
            hi_num = None
        else:
            hi = hi_num = self.number()
        self.take("]")
        span = self.cover(self.span(lo), self.span(hi))
        if lo[0] == "DECIMAL" or (hi_num is not None and hi_num[0] == "DECIMAL"):
            if hi_num is None:
                raise Fallback  # Lark's builder reports the fraction-window mistake
            return ast.Window(float(lo[1]), float(hi_num[1]), "fraction", span)
        return ast.Window(int(lo[1]), None if hi_num is None else int(hi_num[1]), "frames", span)

    def prefix(self) -> ast.Formula:
        tok = self.toks[self.i]
        kind = tok[0]
        if kind == "not":
            self.i += 1
            arg = self.nested(self.prefix)
            return ast.Not(arg, self.span(tok).cover(arg.span))
        if kind == "next" or (kind == "weak" and self.peek(1) == "next"):
            weak = kind == "weak"
            self.i += 2 if weak else 1
            steps = None
            if self.accept("["):
                steps = self.take("INT")
                self.take("]")
            arg = self.nested(self.prefix)
            return ast.Next(arg, weak, 1 if steps is None else int(steps[1]), self.span(tok).cover(arg.span),
                            steps is not None)
        if kind in ("always", "eventually"):
            self.i += 1
            window = self.window() if self.peek() == "[" else None
            arg = self.nested(self.prefix)
            cls = ast.Always if kind == "always" else ast.Eventually
            return cls(arg, window, self.span(tok).cover(arg.span))
        return self.atom()

    def atom(self) -> ast.Formula:
        tok = self.toks[self.i]
        kind = tok[0]
        if kind in ("true", "false"):
            self.i += 1
            return ast.BoolLit(kind == "true", self.span(tok))
        if kind == "(":
            self.i += 1
            f = self.nested(self.formula)
            self.take(")")
            return f
        if kind == "IDENT" and self.peek(1) in ("==", "!="):
            self.i += 1
            op = self.toks[self.i][0]
            self.i += 1
            right = self.take("IDENT")
            return ast.VarEq(tok[1], right[1], op == "==", self.cover(self.span(tok), self.span(right)))
        name = self.name()
        self.take("(")
        args = [self.take("IDENT")]
        while self.accept(","):
            args.append(self.take("IDENT"))
        close = self.take(")")
        spans = tuple(self.span(a) for a in args)
        return ast.Atom(name, tuple(a[1] for a in args), name.span.cover(self.span(close)), spans)


def fast_parse(text: str) -> tuple[list[ast.Item], tuple[tuple[int, str], ...]]:
    """The items and comments of ``text``; raises :class:`Fallback` on anything it does not accept."""
    try:
        p = _Parser(text)
        return p.program(), tuple(p.comments)
    except (IndexError, ValueError):
        raise Fallback from None
