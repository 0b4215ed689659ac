"""Type-check a parsed program against its vocabulary.

:func:`check` builds the vocabulary (the file's declarations, its includes, and
an optional external vocabulary), then walks every spec and collects *all*
problems before raising one :class:`StlError`: unknown predicates and
categories (with "did you mean"), arity, argument categories, unbound /
duplicate / unused variables, duplicate names, bad windows and hints.

A program with no declarations at all, no includes and no external vocabulary
is checked in *open-vocabulary* mode: predicates are inferred from their uses
(one arity per name) and every category is accepted. That is the mode for
LLM output written before a vocabulary exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stlspec import ast
from stlspec.diagnostics import Diagnostic, StlError, did_you_mean
from stlspec.formatter import quote_name
from stlspec.ir import Vocabulary
from stlspec.span import NO_SPAN, Span

__all__ = ["check", "CheckedProgram", "top_level_positions"]


@dataclass(frozen=True, slots=True)
class CheckedProgram:
    """A program that passed the checker, with its vocabulary and any warnings."""

    program: ast.Program
    vocabulary: Vocabulary
    warnings: tuple[Diagnostic, ...] = ()
    open_vocabulary: bool = False
    sources: dict = field(default_factory=dict, compare=False)


def check(program: ast.Program, vocabulary: Vocabulary | None = None, *, includes=None) -> CheckedProgram:
    """Check ``program``; return a :class:`CheckedProgram` or raise :class:`StlError` with every problem."""
    from stlspec.loader import resolve_includes

    diags: list[Diagnostic] = []
    sources = {program.path: program.source}
    if includes is None and not any(isinstance(i, ast.Include) for i in program.items):
        includes = []
    if includes is None:
        includes, inc_diags, inc_sources = resolve_includes(program)
        diags.extend(inc_diags)
        sources.update(inc_sources)
    else:
        for inc in includes:
            sources[inc.path] = inc.source
    decl_programs = [*includes, program]
    has_decls = vocabulary is not None or any(
        isinstance(i, (ast.CategoryDecl, ast.PredicateDecl, ast.Include)) for p in decl_programs for i in p.items
    )
    c = _Checker(program.path, diags)
    if has_decls:
        c.collect_declarations(decl_programs, vocabulary)
    else:
        c.infer_vocabulary(program)
    c.check_specs(program)
    # Report in reading order per file (checks run by kind, not by position).
    order = {p: i for i, p in enumerate(dict.fromkeys(d.path for d in diags))}
    diags.sort(key=lambda d: (order[d.path], d.span.start))
    errors = [d for d in diags if d.is_error]
    if errors:
        raise StlError(diags, sources)
    return CheckedProgram(program, c.vocabulary(), tuple(diags), open_vocabulary=not has_decls, sources=sources)


def top_level_positions(formula: ast.Formula):
    """Yield the sub-formulas of ``formula`` at positive top-level positions.

    These are reached from the root through ``and``, ``or`` and quantifiers
    only; ``then`` chains and hinted ``eventually`` there become events with
    witnesses (see ``stlspec.ir``).
    """
    stack = [formula]
    while stack:
        f = stack.pop()
        yield f
        if isinstance(f, (ast.And, ast.Or)):
            stack.extend(f.args)
        elif isinstance(f, ast.Quantified):
            stack.append(f.body)
        elif isinstance(f, ast.Implies):  # `a implies b` lowers to `not a or b`: b is positive
            stack.append(f.right)


class _Checker:
    def __init__(self, path: str, diags: list[Diagnostic]):
        self.path = path
        self.diags = diags
        self.categories: dict[str, Span] = {}
        self.unary: dict[str, tuple[str | None]] = {}
        self.binary: dict[str, tuple[str | None, str | None]] = {}
        self.decl_spans: dict[str, tuple[str, Span]] = {}
        self.open = False
        self.inferred_arity: dict[str, tuple[int, Span]] = {}

    def err(self, code: str, message: str, span: Span = NO_SPAN, *hints: str, path: str | None = None) -> None:
        self.diags.append(Diagnostic(code, message, span, path or self.path, hints=tuple(h for h in hints if h)))

    # ------------------------------------------------------------ vocabulary
    def collect_declarations(self, programs: list[ast.Program], external: Vocabulary | None) -> None:
        if external is not None:
            for cat in external.categories:
                self.categories[cat] = NO_SPAN
            for name, c in external.unary:
                self.unary[name] = (c,)
            for name, a, b in external.binary:
                self.binary[name] = (a, b)
        pending: list[tuple[ast.PredicateDecl, str]] = []
        for prog in programs:
            for item in prog.items:
                if isinstance(item, ast.CategoryDecl):
                    for n in item.names:
                        self._declare_category(n, prog.path)
                elif isinstance(item, ast.PredicateDecl):
                    pending.append((item, prog.path))
        # Predicates after categories, so a predicate may mention a category declared later in the file.
        for decl, path in pending:
            self._declare_predicate(decl, path)

    def _declare_category(self, n: ast.Name, path: str) -> None:
        if n.text == ast.ANY:
            self.err("E203", "'any' is built in and cannot be declared as a category", n.span,
                     "remove it from the category list", path=path)
        elif n.text in self.categories:
            prev = self.categories[n.text]
            if prev.known:
                self.err("E203", f"category '{n.text}' is declared twice", n.span,
                         f"first declared at line {prev.line}", path=path)
        else:
            self.categories[n.text] = n.span

    def _declare_predicate(self, decl: ast.PredicateDecl, path: str) -> None:
        params = []
        for p in decl.params:
            if p.text == ast.ANY:
                params.append(None)
            elif p.text not in self.categories:
                self._unknown_category(p, path)
                params.append(None)
            else:
                params.append(p.text)
        name = decl.name.text
        table = self.unary if decl.kind == "unary" else self.binary
        other = self.binary if decl.kind == "unary" else self.unary
        if name not in self.decl_spans and table.get(name) == tuple(params):
            return  # the external vocabulary's own declaration, included again (as categories may be)
        if name in self.decl_spans or name in other or name in table:
            where = self.decl_spans.get(name)
            self.err("E203", f"predicate '{name}' is declared twice", decl.name.span,
                     f"first declared at {where[0]}:{where[1].line}" if where else "it is already in the vocabulary",
                     path=path)
            return
        table[name] = tuple(params)  # type: ignore[assignment]
        self.decl_spans[name] = (path, decl.name.span)

    def infer_vocabulary(self, program: ast.Program) -> None:
        self.open = True
        for spec in program.specs:
            for atom in _atoms(spec.formula):
                arity = len(atom.args)
                prev = self.inferred_arity.get(atom.pred.text)
                if prev is None:
                    self.inferred_arity[atom.pred.text] = (arity, atom.span)
                    if arity == 1:
                        self.unary[atom.pred.text] = (None,)
                    elif arity == 2:
                        self.binary[atom.pred.text] = (None, None)
                elif prev[0] != arity:
                    self.err("E303", f"predicate '{atom.pred.text}' is used with {arity} argument(s) here "
                             f"and with {prev[0]} at line {prev[1].line}", atom.span,
                             "use one arity per predicate name, or declare a vocabulary")
            for q in _quantifiers(spec.formula):
                for b in q.binders:
                    if b.category is not None and b.category.text != ast.ANY:
                        self.categories.setdefault(b.category.text, b.category.span)

    def vocabulary(self) -> Vocabulary:
        return Vocabulary(
            categories=tuple(self.categories),
            unary=tuple((n, c[0]) for n, c in self.unary.items()),
            binary=tuple((n, a, b) for n, (a, b) in self.binary.items()),
        )

    def _unknown_category(self, n: ast.Name, path: str | None = None) -> None:
        sugg = did_you_mean(n.text, self.categories)
        self.err("E202", f"unknown category '{n.text}'", n.span,
                 f"did you mean {_or_list(sugg)}?" if sugg else
                 "declare it with `category " + quote_name(n.text) + "` or use `any`", path=path)

    # ------------------------------------------------------------ specs
    def check_specs(self, program: ast.Program) -> None:
        seen: dict[str, Span] = {}
        for spec in program.specs:
            if spec.name in seen:
                self.err("E203", f"spec '{spec.name}' is defined twice", spec.name_span,
                         f"first defined at line {seen[spec.name].line}; rename one of them")
            else:
                seen[spec.name] = spec.name_span
            top = {id(f) for f in top_level_positions(spec.formula)}
            self._formula(spec.formula, {}, top)

    def _formula(self, f: ast.Formula, scope: dict[str, "_Var"], top: set[int]) -> None:
        match f:
            case ast.BoolLit():
                return
            case ast.Atom():
                self._atom(f, scope)
            case ast.VarEq():
                for v, span in ((f.left, f.span), (f.right, f.span)):
                    self._use(v, span, scope)
                if f.left == f.right:
                    pass  # `x == x` is trivially true; allowed
            case ast.Not(arg) | ast.Next(arg) | ast.Eventually(arg) | ast.Always(arg):
                if isinstance(f, ast.Next) and f.steps < 1:
                    self.err("E401", f"next[{f.steps}] must step at least one frame", f.span,
                             "write the formula without `next`, or use next[1]")
                window = getattr(f, "window", None)
                if window is not None:
                    self._window(window)
                self._formula(arg, scope, top)
            case ast.And(args) | ast.Or(args):
                for a in args:
                    self._formula(a, scope, top)
            case ast.Implies(left, right) | ast.Until(left, right) | ast.Release(left, right):
                if getattr(f, "window", None) is not None:
                    self._window(f.window)
                self._formula(left, scope, top)
                self._formula(right, scope, top)
            case ast.Quantified():
                self._quantified(f, scope, top)
            case ast.Sequence(events):
                for ev in events:
                    if ev.hint is not None:
                        self._hint(ev.hint)
                        if id(f) not in top:
                            self._hint_ignored(ev.hint)
                    self._formula(ev.formula, scope, top)
            case ast.Hinted(formula, hint):
                self._hint(hint)
                if not isinstance(formula, ast.Eventually):
                    self.err("E403", "a hint must follow a `then` event or an `eventually` formula", hint.span,
                             "write `eventually φ @hint`, or make φ one event of an `A then B` chain")
                elif id(f) not in top:
                    self._hint_ignored(hint)
                self._formula(formula, scope, top)
            case _:  # pragma: no cover
                raise AssertionError(f"unknown AST node {f!r}")

    def _hint_ignored(self, hint: ast.Hint) -> None:
        self.err("W102", "this hint is ignored: its event is nested under a temporal operator or `not`", hint.span,
                 "only events at the top level of a spec (under and/or/exists/forall) get witness frames")

    def _quantified(self, q: ast.Quantified, scope: dict, top: set[int]) -> None:
        inner = dict(scope)
        block: dict[str, _Var] = {}
        for b in q.binders:
            cat = None
            if b.category is not None and b.category.text != ast.ANY:
                if not self.open and b.category.text not in self.categories:
                    self._unknown_category(b.category)
                else:
                    cat = b.category.text
            if b.var in block:
                self.err("E205", f"variable '{b.var}' is bound twice in this quantifier", b.span,
                         "give each variable its own name")
                continue
            if b.var in scope:
                self.err("E205", f"variable '{b.var}' shadows a variable bound at line {scope[b.var].span.line}",
                         b.span, "rename the inner variable")
            var = _Var(b.var, cat, b.span)
            block[b.var] = var
            inner[b.var] = var
        self._formula(q.body, inner, top)
        for var in block.values():
            if not var.used:
                self.err("W101", f"variable '{var.name}' is never used", var.span,
                         f"remove it, or use it in the body (an unused variable still requires a distinct "
                         f"{var.category or 'track'} to exist)")

    def _use(self, name: str, span: Span, scope: dict) -> "_Var | None":
        var = scope.get(name)
        if var is None:
            sugg = did_you_mean(name, scope)
            self.err("E204", f"variable '{name}' is not bound", span,
                     f"did you mean {_or_list(sugg)}?" if sugg else
                     f"bind it with `exists {name}: <category>.` around the formula")
            return None
        var.used = True
        return var

    def _atom(self, atom: ast.Atom, scope: dict) -> None:
        spans = atom.arg_spans or tuple(atom.span for _ in atom.args)
        vars_ = [self._use(a, s, scope) for a, s in zip(atom.args, spans)]
        name = atom.pred.text
        arity = len(atom.args)
        if name in self.unary:
            params = self.unary[name]
        elif name in self.binary:
            params = self.binary[name]
        else:
            if not self.open:
                self._unknown_predicate(atom)
            return
        if len(params) != arity:
            if self.open:
                return  # already reported as E303 by infer_vocabulary
            kind = "unary" if len(params) == 1 else "binary"
            self.err("E301", f"'{name}' is a {kind} predicate: it takes {len(params)} argument(s), not {arity}",
                     atom.span, f"write `{quote_name(name)}({', '.join((list(atom.args) + ['y'])[:len(params)])})`")
            return
        def fits(vs, ps) -> list[bool]:
            return [v is None or p is None or v.category is None or v.category == p for v, p in zip(vs, ps)]

        ok = fits(vars_, params)
        if arity == 2 and not all(ok) and all(fits(vars_[::-1], params)):
            self.err("E302", f"the arguments of '{name}' look swapped: it takes ({', '.join(p or 'any' for p in params)})",
                     atom.span, f"write `{quote_name(name)}({atom.args[1]}, {atom.args[0]})`")
            return
        for i, (var, param, span) in enumerate(zip(vars_, params, spans)):
            if ok[i]:
                continue
            if var.category != param:
                self.err("E302", f"argument {i + 1} of '{name}' must be a {param}, but '{var.name}' is a "
                         f"{var.category}", span,
                         f"bind '{var.name}' as `{var.name}: {quote_name(param)}`, or declare '{name}' with parameter `any`")

    def _unknown_predicate(self, atom: ast.Atom) -> None:
        name = atom.pred.text
        arity = len(atom.args)
        same = self.unary if arity == 1 else self.binary
        sugg = did_you_mean(name, same) or did_you_mean(name, [*self.unary, *self.binary])
        kind = "unary" if arity == 1 else "binary" if arity == 2 else f"{arity}-ary"
        hint = (f"did you mean {_or_list(sugg)}?" if sugg else
                f"declare it with `{kind} {quote_name(name)}({', '.join(['any'] * arity)})`" if arity in (1, 2) else
                "predicates take one or two arguments")
        self.err("E201", f"unknown {kind} predicate '{name}'", atom.pred.span, hint)

    def _window(self, w: ast.Window) -> None:
        if w.unit == "fraction":
            if not (0.0 <= w.lo <= 1.0) or w.hi is None or not (0.0 <= w.hi <= 1.0):
                self.err("E401", f"fraction window [{w.lo}, {w.hi}] must lie inside [0.0, 1.0]", w.span,
                         "use integers for frame offsets, e.g. [2, 10]")
                return
        if w.hi is not None and w.hi < w.lo:
            self.err("E401", f"window [{w.lo}, {w.hi}] is inverted (its end is before its start)", w.span,
                     f"did you mean [{w.hi}, {w.lo}]?")

    def _hint(self, h: ast.Hint) -> None:
        if h.name is not None:
            if h.name not in ast.HINT_NAMES:
                sugg = did_you_mean(h.name, ast.HINT_NAMES)
                self.err("E404", f"unknown hint '@{h.name}'", h.span,
                         f"did you mean @{sugg[0]}?" if sugg else
                         "use @early, @middle, @late, @anytime or a fraction interval like @[0, 0.25]")
            return
        lo, hi = h.lo, h.hi
        if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):  # type: ignore[operator]
            self.err("E402", f"hint interval [{lo:g}, {hi:g}] is outside [0, 1]", h.span,
                     "hints are fractions of the video: 0 is the first frame, 1 the last")
        elif lo > hi:  # type: ignore[operator]
            self.err("E402", f"hint interval [{lo:g}, {hi:g}] is inverted", h.span, f"did you mean [{hi:g}, {lo:g}]?")


@dataclass(slots=True)
class _Var:
    name: str
    category: str | None
    span: Span
    used: bool = False


def _or_list(xs) -> str:
    xs = [f"'{x}'" for x in xs]
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " or " + xs[-1]


def _subformulas(f: ast.Formula):
    stack = [f]
    while stack:
        g = stack.pop()
        yield g
        match g:
            case ast.Not(a) | ast.Next(a) | ast.Eventually(a) | ast.Always(a) | ast.Hinted(a):
                stack.append(a)
            case ast.And(args) | ast.Or(args):
                stack.extend(args)
            case ast.Implies(a, b) | ast.Until(a, b) | ast.Release(a, b):
                stack.extend((a, b))
            case ast.Quantified():
                stack.append(g.body)
            case ast.Sequence(events):
                stack.extend(e.formula for e in events)


def _atoms(f: ast.Formula):
    return (g for g in _subformulas(f) if isinstance(g, ast.Atom))


def _quantifiers(f: ast.Formula):
    return (g for g in _subformulas(f) if isinstance(g, ast.Quantified))
