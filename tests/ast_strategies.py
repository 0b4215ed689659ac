"""Hypothesis strategies for surface ASTs and source text (parser, formatter and checker tests).

``programs()`` draws whole programs whose specs are well-scoped against a small
vocabulary, so they also pass the checker when ``checkable=True``.
"""

from __future__ import annotations

from hypothesis import strategies as st

from stlspec import ast
from stlspec.lexicon import KEYWORDS

CATEGORIES = ("person", "cup", "dining table")
UNARY = {"walking": "person", "open": None, "standing up": "person"}
BINARY = {"holding": ("person", None), "near": (None, None), "sitting on": ("person", "dining table")}

VOCAB_TEXT = """category person, cup, "dining table"
unary walking(person), open(any), "standing up"(person)
binary holding(person, any), near(any, any), "sitting on"(person, "dining table")
"""

names = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in KEYWORDS),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8),
)
idents = st.from_regex(r"[a-z][a-z0-9_]{0,4}", fullmatch=True).filter(lambda s: s not in KEYWORDS)

unit_floats = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0, 1 / 3]), st.floats(0, 1, allow_nan=False))


@st.composite
def windows(draw) -> ast.Window | None:
    kind = draw(st.sampled_from(["none", "none", "frames", "fraction"]))
    if kind == "none":
        return None
    if kind == "frames":
        lo = draw(st.integers(0, 5))
        hi = draw(st.one_of(st.none(), st.integers(lo, lo + 6)))
        return ast.Window(lo, hi, "frames")
    lo, hi = sorted((draw(unit_floats), draw(unit_floats)))
    return ast.Window(lo, hi, "fraction")


@st.composite
def hints(draw) -> ast.Hint | None:
    kind = draw(st.sampled_from(["none", "name", "interval"]))
    if kind == "none":
        return None
    if kind == "name":
        return ast.Hint(name=draw(st.sampled_from(sorted(ast.HINT_NAMES))))
    lo, hi = sorted((draw(unit_floats), draw(unit_floats)))
    return ast.Hint(lo=lo, hi=hi)


def _atoms(vars_: tuple[tuple[str, str | None], ...]):
    var_names = [v for v, _ in vars_]
    opts = [st.builds(lambda v: ast.BoolLit(v), st.booleans())]
    if var_names:
        vs = st.sampled_from(var_names)
        opts.append(st.builds(lambda p, v: ast.Atom(ast.Name(p), (v,)), st.sampled_from(sorted(UNARY)), vs))
        opts.append(st.builds(lambda p, a, b: ast.Atom(ast.Name(p), (a, b)), st.sampled_from(sorted(BINARY)), vs, vs))
        opts.append(st.builds(lambda a, b, e: ast.VarEq(a, b, e), vs, vs, st.booleans()))
    return st.one_of(*opts)


@st.composite
def formulas(draw, vars_: tuple = (), depth: int = 3) -> ast.Formula:
    """A formula whose free variables are among ``vars_`` (names may be bound by nested quantifiers)."""
    if depth <= 0:
        return draw(_atoms(vars_))
    sub = lambda: formulas(vars_, depth - 1)  # noqa: E731
    choice = draw(st.sampled_from(
        ["atom", "not", "and", "or", "implies", "next", "eventually", "always", "until", "release",
         "quant", "seq", "hinted"]))
    if choice == "atom":
        return draw(_atoms(vars_))
    if choice == "not":
        return ast.Not(draw(sub()))
    if choice in ("and", "or"):
        args = tuple(draw(st.lists(sub(), min_size=2, max_size=3)))
        return ast.And(args) if choice == "and" else ast.Or(args)
    if choice == "implies":
        return ast.Implies(draw(sub()), draw(sub()))
    if choice == "next":
        steps = draw(st.sampled_from((1, 2, 3, 100_000_000)))  # next[k] is one node however large k is
        return ast.Next(draw(sub()), draw(st.booleans()), steps, steps_given=steps != 1 or draw(st.booleans()))
    if choice == "eventually":
        return ast.Eventually(draw(sub()), draw(windows()))
    if choice == "always":
        return ast.Always(draw(sub()), draw(windows()))
    if choice in ("until", "release"):
        cls = ast.Until if choice == "until" else ast.Release
        return cls(draw(sub()), draw(sub()), draw(windows()))
    if choice == "seq":
        n = draw(st.integers(2, 3))
        return ast.Sequence(tuple(ast.Event(draw(sub()), draw(hints())) for _ in range(n)))
    if choice == "hinted":
        h = draw(hints())
        ev = ast.Eventually(draw(sub()), draw(windows()))
        return ev if h is None else ast.Hinted(ev, h)
    # quantifier: new variables not already in scope (the checker rejects shadowing)
    taken = {v for v, _ in vars_}
    n = draw(st.integers(1, 2))
    new = []
    for _ in range(n):
        v = draw(idents.filter(lambda s: s not in taken))
        taken.add(v)
        new.append((v, draw(st.sampled_from([None, "person", "cup", "dining table", "any"]))))
    binders = tuple(ast.Binder(v, None if c is None else ast.Name(c)) for v, c in new)
    kind = draw(st.sampled_from(["exists", "forall"]))
    return ast.Quantified(kind, binders, draw(formulas(tuple(vars_) + tuple(new), depth - 1)))


@st.composite
def specs(draw, name: str | None = None) -> ast.Spec:
    f = draw(formulas((), draw(st.integers(1, 4))))
    caption = draw(st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)))
    return ast.Spec(name or draw(idents), f, caption)


@st.composite
def programs(draw) -> ast.Program:
    items: list[ast.Item] = []
    if draw(st.booleans()):
        items.append(ast.Include(draw(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=10))))
    if draw(st.booleans()):
        items.append(ast.CategoryDecl(tuple(ast.Name(n) for n in draw(st.lists(names, min_size=1, max_size=3)))))
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["unary", "binary"]))
        params = tuple(ast.Name(draw(names)) for _ in range(1 if kind == "unary" else 2))
        items.append(ast.PredicateDecl(kind, ast.Name(draw(names)), params))
    spec_names = draw(st.lists(idents, min_size=1, max_size=3, unique=True))
    items.extend(draw(specs(n)) for n in spec_names)
    return ast.Program(tuple(items))
