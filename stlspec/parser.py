"""Parse ``.stl`` text into the surface AST (:mod:`stlspec.ast`).

The grammar lives in ``grammar/stl.lark`` (LALR, basic lexer). Lark's
exceptions never escape: every syntax problem becomes a named diagnostic
(E101–E106) saying what was found, what was expected and where. After a syntax
error the parser re-parses each top-level item on its own, so one run reports
the errors of every broken item, not only the first.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import replace
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, v_args
from lark.visitors import Transformer_NonRecursive
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from stlspec import ast, diagnostics
from stlspec.diagnostics import Diagnostic, StlError
from stlspec.lexicon import KEYWORDS, unquote
from stlspec.span import Span

__all__ = ["parse", "grammar_text", "lark_parse"]


# Words from other temporal-logic notations that LLMs and humans reach for, and what we spell them as.
FOREIGN_KEYWORDS = {
    "finally": "eventually", "globally": "always", "F": "eventually", "G": "always", "X": "next",
    "U": "until", "R": "release", "sometime": "eventually", "henceforth": "always", "exist": "exists",
    "forAll": "forall", "for_all": "forall", "AND": "and", "OR": "or", "NOT": "not", "&&": "and",
    "||": "or", "!": "not", "->": "implies", "=>": "implies", "&": "and", "|": "or", "~": "not",
    "after": "then", "before": "then (with the events swapped)", "wnext": "weak next",
}

_TOKEN_NAMES = {
    "IDENT": "a name", "STRING": 'a quoted name like "sitting on"', "INT": "an integer",
    "DECIMAL": "a decimal number", "LPAR": "'('", "RPAR": "')'", "LBRACE": "'{'", "RBRACE": "'}'",
    "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "COLON": "':'", "DOT": "'.'", "AT": "'@'",
    "EQ": "'=='", "NEQ": "'!='", "TRUE": "'true'", "FALSE": "'false'", "INF": "'inf'", "$END": "end of input",
}

_TOP_LEVEL = re.compile(r"^[ \t]*(?=(?:spec|category|unary|binary|include)\b)", re.MULTILINE)


def grammar_text() -> str:
    """The grammar file shipped with the package (the language reference)."""
    return resources.files("stlspec.grammar").joinpath("stl.lark").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(grammar_text(), parser="lalr", lexer="basic", propagate_positions=False, maybe_placeholders=True)


_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|(//[^\n]*|#[^\n]*|/\*(?:.|\n)*?\*/)')


def _comments(text: str) -> tuple[tuple[int, str], ...]:
    """(offset, text) of every comment, skipping comment-like text inside quoted names."""
    return tuple((m.start(1), m.group(1)) for m in _COMMENT.finditer(text) if m.group(1))


def parse(text: str, path: str = "<string>") -> ast.Program:
    """Parse ``text``; raise :class:`StlError` with every syntax diagnostic found.

    The hand-written fast parser (:mod:`stlspec.fastparse`) handles valid text
    of ordinary depth; anything it does not accept goes through Lark, which
    names the problem (or parses text nested deeper than the fast parser goes).
    Formulas nested deeper than :data:`stlspec.traverse.MAX_DEPTH` are E107.
    """
    from stlspec.fastparse import Fallback, fast_parse

    try:
        items, comments = fast_parse(text)
    except Fallback:
        try:
            items = _parse_items(text, path)
        except _SyntaxProblem:
            raise StlError(_collect_errors(text, path), {path: text}) from None
        comments = _comments(text)
    too_deep = [d for item in items if isinstance(item, ast.Spec) for d in depth_diagnostics(item, path)]
    if too_deep:
        raise StlError(too_deep, {path: text})
    return ast.Program(items=tuple(items), path=path, source=text, comments=comments)


def depth_diagnostics(spec: ast.Spec, path: str) -> list[Diagnostic]:
    """E107 when ``spec``'s formula nests deeper than :data:`MAX_DEPTH` (at the first node beyond it)."""
    node = ast.too_deep(spec.formula)
    if node is None:
        return []
    span = node.span if node.span.known else spec.name_span
    return [diagnostics.nested_too_deeply(span, path, ast.depth(spec.formula))]


class _SyntaxProblem(Exception):
    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic


def lark_parse(text: str, path: str = "<string>") -> ast.Program:
    """Parse with the Lark reference parser only (used by the differential tests)."""
    try:
        items = _parse_items(text, path)
    except _SyntaxProblem as exc:
        raise StlError([exc.diagnostic], {path: text}) from None
    return ast.Program(items=tuple(items), path=path, source=text, comments=_comments(text))


def _parse_items(text: str, path: str) -> list[ast.Item]:
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _SyntaxProblem(_diagnose(exc, text, path)) from None
    try:
        return _Builder(text, path).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, _SyntaxProblem):
            raise exc.orig_exc from None
        raise


def _collect_errors(text: str, path: str) -> list[Diagnostic]:
    """Every broken top-level item's diagnostic, in time linear in the file.

    Each item (from one line starting with ``spec``/``category``/... to the
    next) is parsed on its own: by the fast parser first (most items are fine),
    by Lark when that declines, and a diagnostic found in an item's slice is
    moved back to its place in the whole file. When the split hides the
    problem (e.g. an unterminated block comment), the whole-file error stands.
    """
    from stlspec.fastparse import Fallback, fast_parse

    comments = [(o, o + len(c)) for o, c in _comments(text)]
    comment_starts = [o for o, _ in comments]

    def in_comment(offset: int) -> bool:  # a line starting with `spec` inside /* ... */ starts no item
        i = bisect.bisect_right(comment_starts, offset) - 1
        return i >= 0 and offset < comments[i][1]

    starts = [m.start() for m in _TOP_LEVEL.finditer(text) if not in_comment(m.start())]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    out: list[Diagnostic] = []
    line = 1
    prev = 0
    for lo, hi in zip(starts, starts[1:] + [len(text)]):
        line += text.count("\n", prev, lo)  # every item starts at the beginning of a line
        prev = lo
        chunk = text[lo:hi]
        try:
            fast_parse(chunk)
            continue
        except Fallback:
            pass
        try:
            _parse_items(chunk, path)
        except _SyntaxProblem as exc:
            d = exc.diagnostic
            out.append(replace(d, span=d.span.shifted(lo, line - 1)) if d.span.known else d)
    if not out:
        try:
            _parse_items(text, path)
        except _SyntaxProblem as exc:
            out.append(exc.diagnostic)
    return out


def _describe_expected(expected: set[str]) -> str:
    names = sorted({_TOKEN_NAMES.get(e, _keyword_name(e)) for e in expected})
    if len(names) > 8:
        names = names[:8] + ["…"]
    return ", ".join(names)


def _keyword_name(terminal: str) -> str:
    # Anonymous keyword terminals are named after the keyword in upper case (e.g. THEN).
    low = terminal.lower()
    return f"'{low}'" if low in KEYWORDS else terminal


def _diagnose(exc: UnexpectedInput, text: str, path: str) -> Diagnostic:
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        span = Span.at(text, exc.pos_in_stream, exc.pos_in_stream + 1)
        if ch == '"':
            return diagnostics.unterminated_string("unterminated quoted name", span, path,
                              hints=("close the name with '\"' on the same line",))
        two = text[exc.pos_in_stream:exc.pos_in_stream + 2]
        for sym in (two, ch):
            if sym in FOREIGN_KEYWORDS:
                return diagnostics.foreign_keyword(f"'{sym}' is not an stlspec operator", span, path,
                                  hints=(f"write `{FOREIGN_KEYWORDS[sym]}`",))
        if ch == "=":
            return diagnostics.unexpected_character("unexpected character '='", span, path,
                              hints=("compare variables with `==` or `!=`",))
        if ch == "\t":
            ch = "\\t"
        return diagnostics.unexpected_character(f"unexpected character {ch!r}", span, path,
                          hints=(f"expected {_describe_expected(set(exc.allowed or ()))}",) if exc.allowed else ())
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        end = len(text.rstrip())
        span = Span.at(text, end, end)
        expected = set(getattr(exc, "expected", ()) or ())
        hint = f"expected {_describe_expected(expected)}" if expected else "the file ends too early"
        hints = (hint,)
        if "RBRACE" in expected:
            hints = (hint, "a spec's formula ends with '}'")
        return diagnostics.unexpected_end("unexpected end of input", span, path, hints=hints)
    assert isinstance(exc, UnexpectedToken)
    tok: Token = exc.token
    span = _tok_span(text, tok)
    expected = _accepted(exc)
    hints: list[str] = []
    value = str(tok)
    prev = re.search(r"([A-Za-z_]+)\s*$", text[: tok.start_pos or 0])
    for word, at in ((value, span), (prev.group(1) if prev else "", Span.at(text, prev.start(1), prev.end(1)) if prev else span)):
        if word in FOREIGN_KEYWORDS and word not in KEYWORDS:
            return diagnostics.foreign_keyword(f"'{word}' is not an stlspec keyword", at, path,
                              hints=(f"write `{FOREIGN_KEYWORDS[word]}`",))
    call = re.search(r"\b([A-Za-z_]+)\s*\([\w\s,]*$", text[: tok.start_pos or 0])
    if call and call.group(1) in KEYWORDS and _quoting_helps(text, call.start(1), call.end(1)):
        hints.append(f"'{call.group(1)}' is a keyword; a predicate with that name must be quoted: "
                     f"\"{call.group(1)}\"(...)")
    if value in KEYWORDS and "IDENT" in expected:
        start = tok.start_pos or 0
        if _quoting_helps(text, start, start + len(value)):
            hints.append(f"'{value}' is a keyword; quote it to use it as a name: \"{value}\"")
        else:
            hints.append(f"'{value}' is a keyword and cannot be a variable or spec name; choose another name")
    if tok.type == "COLON" and "DOT" in expected:
        hints.append("a quantifier's variables end with '.', e.g. `exists a: person. walking(a)`")
    if tok.type == "IDENT" and expected & {"AND", "OR", "THEN", "RBRACE", "IMPLIES", "UNTIL"}:
        hints.append("join formulas with `and`, `or`, `then`, `implies` or `until`")
    hints.append(f"expected {_describe_expected(expected)}")
    shown = value if tok.type != "$END" else "end of input"
    return diagnostics.unexpected_token(f"unexpected {_token_kind(tok)} '{shown}'", span, path, hints=tuple(hints))


def _quoting_helps(text: str, start: int, end: int) -> bool:
    """Whether quoting the keyword at ``text[start:end]`` gets the parser past it (so the hint is true)."""
    quoted = text[:start] + '"' + text[start:end] + '"' + text[end:]
    try:
        _parser().parse(quoted)
    except UnexpectedInput as exc:
        return (exc.pos_in_stream or 0) > end + 2
    return True


def _accepted(exc: UnexpectedToken) -> set[str]:
    """Terminals the parser really accepts here (LALR lookahead sets over-approximate)."""
    try:
        return set(exc.interactive_parser.accepts()) - {"$END"} or set(exc.expected or ())
    except Exception:  # noqa: BLE001 - fall back to Lark's own (coarser) set
        return set(exc.expected or ())


def _token_kind(tok: Token) -> str:
    if tok.type == "IDENT":
        return "name"
    if tok.type in ("INT", "DECIMAL"):
        return "number"
    if tok.type == "STRING":
        return "quoted name"
    if str(tok) in KEYWORDS:
        return "keyword"
    return "token"


def _tok_span(text: str, tok: Token) -> Span:
    start = tok.start_pos or 0
    end = tok.end_pos if tok.end_pos is not None else start + len(str(tok))
    return Span.at(text, start, end)


def _unquote(tok: Token) -> str:
    return unquote(str(tok)) if tok.type == "STRING" else str(tok)


def _meta_span(text: str, children: list) -> Span:
    span = Span()
    for c in children:
        if isinstance(c, Token):
            span = span.cover(_tok_span(text, c))
        elif c is not None and hasattr(c, "span"):
            span = span.cover(c.span)
        elif isinstance(c, tuple):
            for x in c:
                if hasattr(x, "span"):
                    span = span.cover(x.span)
    return span


@v_args(inline=True)
class _Builder(Transformer_NonRecursive):
    """Tree → AST. Spans come from tokens and child nodes, so no Lark meta is needed.

    Non-recursive: the LALR parser builds trees of any depth without recursion,
    and so does this transformer (deeply nested text gets E107 afterwards).
    """

    def __init__(self, text: str, path: str):
        super().__init__(visit_tokens=False)
        self.text = text
        self.path = path

    def _s(self, *children) -> Span:
        return _meta_span(self.text, list(children))

    def _fail(self, make, message: str, span: Span, *hints: str):
        raise _SyntaxProblem(make(message, span, self.path, hints))

    # ------------------------------------------------------------ top level
    def start(self, *items):
        return _flatten(list(items))

    def name(self, tok: Token) -> ast.Name:
        return ast.Name(_unquote(tok), _tok_span(self.text, tok))

    def include(self, tok: Token) -> ast.Include:
        return ast.Include(_unquote(tok), _tok_span(self.text, tok))

    def category_decl(self, *names: ast.Name) -> ast.CategoryDecl:
        return ast.CategoryDecl(tuple(names), self._s(*names))

    def signature(self, name: ast.Name, *params: ast.Name):
        return (name, params)

    def _predicates(self, kind: str, sigs) -> list[ast.PredicateDecl]:
        arity = 1 if kind == "unary" else 2
        out = []
        for name, params in sigs:
            span = self._s(name, params)
            if len(params) != arity:
                self._fail(diagnostics.wrong_arity, f"{kind} predicate '{name.text}' declares {len(params)} parameter(s); "
                           f"a {kind} predicate has {arity}", span,
                           f"write `{'binary' if kind == 'unary' else 'unary'} {name.text}(...)`"
                           if len(params) in (1, 2) else f"give exactly {arity} parameter categor{'y' if arity == 1 else 'ies'}")
            out.append(ast.PredicateDecl(kind, name, tuple(params), span))
        return out

    def unary_decl(self, *sigs):
        return _Many(self._predicates("unary", sigs))

    def binary_decl(self, *sigs):
        return _Many(self._predicates("binary", sigs))

    def spec(self, name: Token, caption: Token | None, formula) -> ast.Spec:
        name_span = _tok_span(self.text, name)
        return ast.Spec(str(name), formula, _unquote(caption) if caption is not None else None,
                        name_span.cover(formula.span), name_span)

    # ------------------------------------------------------------ quantifiers and sequences
    def binder(self, var: Token, category: ast.Name | None) -> ast.Binder:
        return ast.Binder(str(var), category, self._s(var, category))

    def _quant(self, kw: Token, children) -> ast.Quantified:
        *binders, body = children
        return ast.Quantified(str(kw), tuple(binders), body, self._s(kw, body))

    def exists(self, kw, *children):
        return self._quant(kw, children)

    def forall(self, kw, *children):
        return self._quant(kw, children)

    def named_hint(self, tok: Token) -> ast.Hint:
        return ast.Hint(name=str(tok), span=_tok_span(self.text, tok))

    def interval_hint(self, lo: Token, hi: Token) -> ast.Hint:
        return ast.Hint(lo=float(lo), hi=float(hi), span=self._s(lo, hi))

    def event(self, formula, hint):
        return ast.Event(formula, hint, self._s(formula, hint))

    def sequence(self, *events: ast.Event):
        if len(events) == 1:
            (ev,) = events
            if ev.hint is None:
                return ev.formula
            return ast.Hinted(ev.formula, ev.hint, ev.span)
        return ast.Sequence(tuple(events), self._s(events[0], events[-1]))

    # ------------------------------------------------------------ boolean
    def implies(self, left, right):
        return ast.Implies(left, right, self._s(left, right))

    def or_(self, *args):
        return args[0] if len(args) == 1 else ast.Or(tuple(args), self._s(args[0], args[-1]))

    def and_(self, *args):
        return args[0] if len(args) == 1 else ast.And(tuple(args), self._s(args[0], args[-1]))

    def not_(self, kw, arg):
        return ast.Not(arg, self._s(kw, arg))

    # ------------------------------------------------------------ temporal
    def steps(self, tok: Token) -> tuple[int, Span]:
        return (int(tok), _tok_span(self.text, tok))

    def window(self, lo: Token, hi) -> ast.Window:
        hi_tok = None if isinstance(hi, _Inf) else hi
        span = self._s(lo, hi_tok if hi_tok is not None else hi.tok)
        fraction = lo.type == "DECIMAL" or (hi_tok is not None and hi_tok.type == "DECIMAL")
        if fraction:
            if hi_tok is None:
                self._fail(diagnostics.invalid_window, "a fraction window cannot end at 'inf'", span,
                           "fraction windows lie inside [0.0, 1.0]; use [a, inf] with integer frame offsets")
            return ast.Window(float(lo), float(hi_tok), "fraction", span)
        return ast.Window(int(lo), None if hi_tok is None else int(hi_tok), "frames", span)

    def inf(self, tok: Token):
        return _Inf(tok)

    def _next(self, kw: Token, weak: bool, steps, arg):
        k, given = (1, False) if steps is None else (steps[0], True)
        return ast.Next(arg, weak, k, self._s(kw, arg), given)

    def next(self, kw, steps, arg):
        return self._next(kw, False, steps, arg)

    def weak_next(self, kw, _next, steps, arg):
        return self._next(kw, True, steps, arg)

    def always(self, kw, window, arg):
        return ast.Always(arg, window, self._s(kw, arg))

    def eventually(self, kw, window, arg):
        return ast.Eventually(arg, window, self._s(kw, arg))

    def until(self, left, window, right):
        return ast.Until(left, right, window, self._s(left, right))

    def release(self, left, window, right):
        return ast.Release(left, right, window, self._s(left, right))

    # ------------------------------------------------------------ atoms
    def predicate_atom(self, name: ast.Name, *args: Token):
        spans = tuple(_tok_span(self.text, a) for a in args)
        close = self.text.find(")", args[-1].end_pos)  # the span ends at ')', which Lark filters out
        span = name.span.cover(Span.at(self.text, close, close + 1) if close >= 0 else spans[-1])
        return ast.Atom(name, tuple(str(a) for a in args), span, spans)

    def var_eq(self, a: Token, _op: Token, b: Token):
        return ast.VarEq(str(a), str(b), True, self._s(a, b))

    def var_neq(self, a: Token, _op: Token, b: Token):
        return ast.VarEq(str(a), str(b), False, self._s(a, b))

    def true(self, tok: Token):
        return ast.BoolLit(True, _tok_span(self.text, tok))

    def false(self, tok: Token):
        return ast.BoolLit(False, _tok_span(self.text, tok))

    def __default__(self, data, children, meta):  # pragma: no cover - grammar and builder must agree
        raise AssertionError(f"no builder for grammar rule {data!r}")


class _Inf:
    __slots__ = ("tok",)

    def __init__(self, tok):
        self.tok = tok


class _Many(list):
    """Several items from one declaration line (``unary a(x), b(y)``)."""


def _flatten(items: list) -> list:
    out = []
    for it in items:
        if isinstance(it, _Many):
            out.extend(it)
        else:
            out.append(it)
    return out
