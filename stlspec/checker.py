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
from typing import assert_never

from stlspec import ast
from stlspec import diagnostics
from stlspec.diagnostics import Diagnostic, StlError, did_you_mean
from stlspec.formatter import quote_name
from stlspec.ir import Vocabulary
from stlspec.parser import depth_diagnostics
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


def check(program: ast.Program, vocabulary: Vocabulary | None = None, *, includes=None,
          include_diagnostics=(), include_sources=None) -> CheckedProgram:
    """Check ``program``; return a :class:`CheckedProgram` or raise :class:`StlError` with every problem.

    ``includes`` are the programs ``program`` includes, already read and parsed
    (:func:`stlspec.pipeline.check` resolves them; that is what ``stlspec.check``
    runs), with the problems found while resolving them.
    """
    if includes is None:
        if any(isinstance(i, ast.Include) for i in program.items):
            raise ValueError("this program has includes: check it with stlspec.check (stlspec.pipeline.check), "
                             "which resolves them")
        includes = []
    diags: list[Diagnostic] = list(include_diagnostics)
    sources = {program.path: program.source}
    sources.update(include_sources if include_sources is not None else {inc.path: inc.source for inc in includes})
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
        match f:
            case ast.And(args) | ast.Or(args):
                stack.extend(args)
            case ast.Quantified():
                stack.append(f.body)
            case ast.Implies(_, right):  # `a implies b` lowers to `not a or b`: b is positive
                stack.append(right)
            case ast.BoolLit() | ast.Atom() | ast.VarEq() | ast.Not() | ast.Next() | ast.Eventually() \
                    | ast.Always() | ast.Until() | ast.Release() | ast.Sequence() | ast.Hinted():
                pass
            case _:
                assert_never(f)


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

    def err(self, make, message: str, span: Span = NO_SPAN, *hints: str, path: str | None = None) -> None:
        """Record ``make(message, ...)``; ``make`` is the code's constructor in :mod:`stlspec.diagnostics`."""
        self.diags.append(make(message, span, path or self.path, hints))

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
            self.err(diagnostics.duplicate_declaration, "'any' is built in and cannot be declared as a category", n.span,
                     "remove it from the category list", path=path)
        elif n.text in self.categories:
            prev = self.categories[n.text]
            if prev.known:
                self.err(diagnostics.duplicate_declaration, f"category '{n.text}' is declared twice", n.span,
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
            self.err(diagnostics.duplicate_declaration, f"predicate '{name}' is declared twice", decl.name.span,
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
                    self.err(diagnostics.inconsistent_arity, f"predicate '{atom.pred.text}' is used with {arity} argument(s) here "
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
        self.err(diagnostics.unknown_category, f"unknown category '{n.text}'", n.span,
                 f"did you mean {_or_list(sugg)}?" if sugg else
                 "declare it with `category " + quote_name(n.text) + "` or use `any`", path=path)

    # ------------------------------------------------------------ specs
    def check_specs(self, program: ast.Program) -> None:
        seen: dict[str, Span] = {}
        for spec in program.specs:
            if spec.name in seen:
                self.err(diagnostics.duplicate_declaration, f"spec '{spec.name}' is defined twice", spec.name_span,
                         f"first defined at line {seen[spec.name].line}; rename one of them")
            else:
                seen[spec.name] = spec.name_span
            too_deep = depth_diagnostics(spec, self.path)  # the parser checks text; this, trees built in code
            if too_deep:
                self.diags.extend(too_deep)
                continue
            top = {id(f) for f in top_level_positions(spec.formula)}
            self._formula(spec.formula, {}, top)

    def _formula(self, f: ast.Formula, scope: dict[str, "_Var"], top: set[int]) -> None:
        """Check ``f`` and everything under it (one pre-order pass; scopes travel as contexts)."""
        blocks: dict[int, dict[str, _Var]] = {}

        def enter(g: ast.Formula, scope: dict[str, _Var]) -> tuple | None:
            match g:
                case ast.BoolLit():
                    pass
                case ast.Atom():
                    self._atom(g, scope)
                case ast.VarEq():
                    self._use(g.left, g.span, scope)
                    self._use(g.right, g.span, scope)  # `x == x` is trivially true; allowed
                case ast.Next(_, _, steps):
                    if steps < 1:
                        self.err(diagnostics.invalid_window, f"next[{steps}] must step at least one frame", g.span,
                                 "write the formula without `next`, or use next[1]")
                case ast.Eventually(_, window) | ast.Always(_, window) | ast.Until(_, _, window) \
                        | ast.Release(_, _, window):
                    if window is not None:
                        self._window(window)
                case ast.Not() | ast.And() | ast.Or() | ast.Implies():
                    pass
                case ast.Quantified():
                    inner, blocks[id(g)] = self._binders(g, scope)
                    return (inner,)
                case ast.Sequence(events):
                    for ev in events:
                        if ev.hint is not None:
                            self._hint(ev.hint)
                            if id(g) not in top:
                                self._hint_ignored(ev.hint)
                case ast.Hinted(formula, hint):
                    self._hint(hint)
                    if not isinstance(formula, ast.Eventually):
                        self.err(diagnostics.misplaced_hint, "a hint must follow a `then` event or an `eventually` formula", hint.span,
                                 "write `eventually φ @hint`, or make φ one event of an `A then B` chain")
                    elif id(g) not in top:
                        self._hint_ignored(hint)
                case _:
                    assert_never(g)
            return None

        def leave(g: ast.Formula, _scope, _kids) -> None:
            if isinstance(g, ast.Quantified):  # after the body: which of the block's variables were used
                for var in blocks.pop(id(g)).values():
                    if not var.used:
                        self.err(diagnostics.unused_variable, f"variable '{var.name}' is never used", var.span,
                                 f"remove it, or use it in the body (an unused variable still requires a distinct "
                                 f"{var.category or 'track'} to exist)")

        ast.fold(f, leave, enter, scope)

    def _hint_ignored(self, hint: ast.Hint) -> None:
        self.err(diagnostics.hint_ignored, "this hint is ignored: its event is nested under a temporal operator or `not`", hint.span,
                 "only events at the top level of a spec (under and/or/exists/forall) get witness frames")

    def _binders(self, q: ast.Quantified, scope: dict) -> tuple[dict, dict]:
        """The scope inside ``q`` and the variables its block binds (checking categories and shadowing)."""
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
                self.err(diagnostics.duplicate_variable, f"variable '{b.var}' is bound twice in this quantifier", b.span,
                         "give each variable its own name")
                continue
            if b.var in scope:
                self.err(diagnostics.duplicate_variable, f"variable '{b.var}' shadows a variable bound at line {scope[b.var].span.line}",
                         b.span, "rename the inner variable")
            var = _Var(b.var, cat, b.span)
            block[b.var] = var
            inner[b.var] = var
        return inner, block

    def _use(self, name: str, span: Span, scope: dict) -> "_Var | None":
        var = scope.get(name)
        if var is None:
            sugg = did_you_mean(name, scope)
            self.err(diagnostics.unbound_variable, f"variable '{name}' is not bound", span,
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
            self.err(diagnostics.wrong_arity, f"'{name}' is a {kind} predicate: it takes {len(params)} argument(s), not {arity}",
                     atom.span, f"write `{quote_name(name)}({', '.join((list(atom.args) + ['y'])[:len(params)])})`")
            return
        def fits(vs, ps) -> list[bool]:
            return [v is None or p is None or v.category is None or v.category == p for v, p in zip(vs, ps)]

        ok = fits(vars_, params)
        if arity == 2 and not all(ok) and all(fits(vars_[::-1], params)):
            self.err(diagnostics.category_mismatch, f"the arguments of '{name}' look swapped: it takes ({', '.join(p or 'any' for p in params)})",
                     atom.span, f"write `{quote_name(name)}({atom.args[1]}, {atom.args[0]})`")
            return
        for i, (var, param, span) in enumerate(zip(vars_, params, spans)):
            if ok[i]:
                continue
            if var.category != param:
                self.err(diagnostics.category_mismatch, f"argument {i + 1} of '{name}' must be a {param}, but '{var.name}' is a "
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
        self.err(diagnostics.unknown_predicate, f"unknown {kind} predicate '{name}'", atom.pred.span, hint)

    def _window(self, w: ast.Window) -> None:
        if w.unit == "fraction":
            if not (0.0 <= w.lo <= 1.0) or w.hi is None or not (0.0 <= w.hi <= 1.0):
                self.err(diagnostics.invalid_window, f"fraction window [{w.lo}, {w.hi}] must lie inside [0.0, 1.0]", w.span,
                         "use integers for frame offsets, e.g. [2, 10]")
                return
        if w.hi is not None and w.hi < w.lo:
            self.err(diagnostics.invalid_window, f"window [{w.lo}, {w.hi}] is inverted (its end is before its start)", w.span,
                     f"did you mean [{w.hi}, {w.lo}]?")

    def _hint(self, h: ast.Hint) -> None:
        if h.name is not None:
            if h.name not in ast.HINT_NAMES:
                sugg = did_you_mean(h.name, ast.HINT_NAMES)
                self.err(diagnostics.unknown_hint, f"unknown hint '@{h.name}'", h.span,
                         f"did you mean @{sugg[0]}?" if sugg else
                         "use @early, @middle, @late, @anytime or a fraction interval like @[0, 0.25]")
            return
        lo, hi = h.lo, h.hi
        if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):  # type: ignore[operator]
            self.err(diagnostics.hint_out_of_range, f"hint interval [{lo:g}, {hi:g}] is outside [0, 1]", h.span,
                     "hints are fractions of the video: 0 is the first frame, 1 the last")
        elif lo > hi:  # type: ignore[operator]
            self.err(diagnostics.hint_out_of_range, f"hint interval [{lo:g}, {hi:g}] is inverted", h.span, f"did you mean [{hi:g}, {lo:g}]?")


@dataclass(slots=True)
class _Var:
    name: str
    category: str | None
    span: Span
    used: bool = False


def _or_list(xs) -> str:
    xs = [f"'{x}'" for x in xs]
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " or " + xs[-1]


def _atoms(f: ast.Formula):
    return (g for g in ast.walk(f) if isinstance(g, ast.Atom))


def _quantifiers(f: ast.Formula):
    return (g for g in ast.walk(f) if isinstance(g, ast.Quantified))
