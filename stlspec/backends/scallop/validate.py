"""Self-check of emitted Scallop text: the subset grammar plus semantic rules.

Nothing in this project can execute Scallop, so every program the emitter
produces is checked here instead, in two layers:

1. :func:`parse` -- the text must parse under ``subset.lark``, a grammar of the
   Scallop subset we emit that rejects each known lexical pitfall (tabs,
   ``x-1``, ``a < b, c > d``, reserved words as names, unsafe strings, bad
   float literals, ``_``-names). See the grammar file's header.
2. :func:`check` -- rules a grammar cannot express: every relation is declared
   once by ``type`` and used with its arity and field types; every variable of
   a head, a negated atom or a constraint is bound by a positive atom of the
   same body (range restriction, grounded negation); no relation depends on
   itself through ``not`` (stratification).

:func:`validate` does both and raises :class:`ScallopSubsetError`. The parsed
:class:`Module` is also what the test-suite's mini-Datalog evaluator
(``tests/scallop_sim.py``) runs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Union

import lark

__all__ = ["ScallopSubsetError", "Module", "Rule", "Atom", "Constraint", "FactSet", "parse", "check",
           "validate", "validate_program", "check_fact_block", "grammar_text", "strata"]


class ScallopSubsetError(ValueError):
    """The text is outside the Scallop subset stlspec emits (a bug in the emitter if it emitted it)."""


# Terms: ("var", name) | ("int", value) | ("str", body) | ("op", "+|-|*|/", left, right)
Term = tuple


@dataclass(frozen=True)
class Atom:
    rel: str
    args: tuple[Term, ...]
    negated: bool = False


@dataclass(frozen=True)
class Constraint:
    op: str  # ">=", ">", "==", "!="
    left: Term
    right: Term


@dataclass(frozen=True)
class Rule:
    head: Atom
    body: tuple[Union[Atom, Constraint], ...]
    line: int = 0


@dataclass(frozen=True)
class FactSet:
    rel: str
    facts: tuple[tuple[float | None, tuple], ...]
    line: int = 0


@dataclass(frozen=True)
class Module:
    types: dict[str, tuple[tuple[str, str], ...]]
    fact_sets: tuple[FactSet, ...]
    rules: tuple[Rule, ...]
    queries: tuple[str, ...]


def grammar_text() -> str:
    """The subset grammar (``subset.lark``), shipped as package data."""
    return resources.files("stlspec.backends.scallop").joinpath("subset.lark").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    return lark.Lark(grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=True)


def _term(node) -> Term:
    if isinstance(node, lark.Token):
        if node.type == "INT":
            return ("int", int(node))
        if node.type == "STRING":
            return ("str", str(node)[1:-1])
        if node.type == "NAME":
            return ("var", str(node))
        raise AssertionError(node)  # pragma: no cover
    if node.data == "var":
        return ("var", str(node.children[0]))
    if node.data == "binop":
        left, op, right = node.children
        return ("op", str(op).strip(), _term(left), _term(right))
    raise AssertionError(node)  # pragma: no cover


def _atom(node, negated: bool = False) -> Atom:
    name, *args = node.children
    return Atom(str(name), tuple(_term(a) for a in args), negated)


def parse(text: str) -> Module:
    """Parse ``text`` under the subset grammar into a :class:`Module` (no semantic checks)."""
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        line = getattr(exc, "line", "?")
        col = getattr(exc, "column", "?")
        src = text.splitlines()[line - 1] if isinstance(line, int) and 0 < line <= len(text.splitlines()) else ""
        raise ScallopSubsetError(f"line {line}, column {col}: not in the emitted Scallop subset\n"
                                 f"  {src!r}\n{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    types: dict[str, tuple[tuple[str, str], ...]] = {}
    facts, rules, queries = [], [], []
    for item in tree.children:
        line = item.meta.line if not item.meta.empty else 0
        if item.data == "type_decl":
            name, *fields = item.children
            if str(name) in types:
                raise ScallopSubsetError(f"line {line}: relation {name} is declared twice")
            types[str(name)] = tuple((str(f.children[0]), str(f.children[1])) for f in fields)
        elif item.data == "fact_set":
            name, *fs = item.children
            parsed = []
            for fact in fs:
                prob, tup = fact.children
                parsed.append((None if prob is None else float(prob), tuple(_term(c)[1] for c in tup.children)))
            facts.append(FactSet(str(name), tuple(parsed), line))
        elif item.data == "rule":
            name, *rest = item.children
            body_node = rest[-1]
            head = Atom(str(name), tuple(_term(a) for a in rest[:-1]))
            body = []
            for lit in body_node.children:
                if lit.data == "atom":
                    body.append(_atom(lit))
                elif lit.data == "neg":
                    body.append(_atom(lit.children[0], negated=True))
                else:
                    left, op, right = lit.children
                    body.append(Constraint(str(op), _term(left), _term(right)))
            rules.append(Rule(head, tuple(body), line))
        elif item.data == "query":
            queries.append(str(item.children[0]))
    return Module(types, tuple(facts), tuple(rules), tuple(queries))


def _vars(term: Term) -> set[str]:
    if term[0] == "var":
        return {term[1]}
    if term[0] == "op":
        return _vars(term[2]) | _vars(term[3])
    return set()


def _kind(term: Term) -> str | None:
    """The Scallop type a term has (``None`` when it depends on variables)."""
    return {"int": "i32", "str": "String"}.get(term[0])


def check(module: Module) -> None:
    """Semantic rules (see the module docstring); raises :class:`ScallopSubsetError`."""
    problems: list[str] = []
    types = module.types

    def check_atom(atom: Atom, where: str) -> None:
        if atom.rel not in types:
            problems.append(f"{where}: relation {atom.rel} is not declared with `type`")
            return
        fields = types[atom.rel]
        if len(fields) != len(atom.args):
            problems.append(f"{where}: {atom.rel} has {len(fields)} fields, used with {len(atom.args)}")
            return
        for (fname, ftype), arg in zip(fields, atom.args):
            kind = _kind(arg)
            if kind is not None and kind != ftype:
                problems.append(f"{where}: {atom.rel}.{fname} is {ftype}, given a {kind}")

    for fs in module.fact_sets:
        for prob, tup in fs.facts:
            check_atom(Atom(fs.rel, tuple(("int", v) if isinstance(v, int) else ("str", v) for v in tup)),
                       f"line {fs.line}")
            if prob is not None and not 0.0 <= prob <= 1.0:
                problems.append(f"line {fs.line}: probability {prob} outside [0, 1]")
    for q in module.queries:
        if q not in types:
            problems.append(f"query of undeclared relation {q}")
    for rule in module.rules:
        where = f"line {rule.line}"
        check_atom(rule.head, where)
        bound: set[str] = set()
        for lit in rule.body:
            if isinstance(lit, Atom):
                check_atom(lit, where)
                if not lit.negated:
                    bound |= set().union(*(_vars(a) for a in lit.args))
        for lit in rule.body:
            if isinstance(lit, Atom) and lit.negated:
                free = set().union(*(_vars(a) for a in lit.args)) - bound
                if free:
                    problems.append(f"{where}: negated {lit.rel} has ungrounded variables {sorted(free)}")
            elif isinstance(lit, Constraint):
                free = (_vars(lit.left) | _vars(lit.right)) - bound
                if free:
                    problems.append(f"{where}: constraint has unbound variables {sorted(free)}")
        free = set().union(*(_vars(a) for a in rule.head.args)) - bound
        if free:
            problems.append(f"{where}: head of {rule.head.rel} has unbound variables {sorted(free)}")
    problems += _stratification_problems(module)
    if problems:
        raise ScallopSubsetError("\n".join(problems))


def strata(module: Module) -> list[list[str]]:
    """Strongly connected components of the derived relations, dependencies first."""
    deps: dict[str, set[str]] = {}
    for rule in module.rules:
        deps.setdefault(rule.head.rel, set()).update(
            lit.rel for lit in rule.body if isinstance(lit, Atom) and lit.rel in _heads(module))
    # Tarjan's algorithm, iteratively (programs can be deep).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(deps):
        if root in index:
            continue
        work = [(root, iter(sorted(deps.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(deps.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(sorted(comp))
    return out


def _heads(module: Module) -> set[str]:
    return {r.head.rel for r in module.rules}


def _stratification_problems(module: Module) -> list[str]:
    comp_of = {rel: i for i, comp in enumerate(strata(module)) for rel in comp}
    problems = []
    for rule in module.rules:
        for lit in rule.body:
            if isinstance(lit, Atom) and lit.negated and lit.rel in comp_of \
                    and comp_of[lit.rel] == comp_of[rule.head.rel]:
                problems.append(f"line {rule.line}: {rule.head.rel} depends on itself through `not {lit.rel}` "
                                f"(not stratified)")
    return problems


def validate(text: str) -> Module:
    """:func:`parse` then :func:`check`; returns the parsed module."""
    module = parse(text)
    check(module)
    return module


_INT = r"[0-9]{1,9}"
_STR = r'"[A-Za-z0-9 _.~-]*"'
_PROB = r"(?:0\.[0-9]+|1\.0+)"


def check_fact_block(block: str, types: dict[str, tuple[tuple[str, str], ...]]) -> None:
    """Fast line-based check of an embedded trace (what the emitter writes), for large traces.

    Parsing megabytes of facts with the LALR grammar takes seconds; this checks
    the same token rules (safe strings, float literals, i32 integers, tuple
    arity and field types) with one regular expression per relation.
    """
    import re

    def item_re(rel: str) -> str:
        fields = ", ".join(_INT if ty == "i32" else _STR for _, ty in types[rel])
        return rf"(?:{_PROB}::)?\({fields}{',' if len(types[rel]) == 1 else ''}\)"

    current = None
    for i, line in enumerate(block.splitlines(), 1):
        if re.fullmatch(r"//[ -~]*", line):
            continue
        if current is None:
            m = re.fullmatch(r"rel ([a-z_]+) = \{(.*)\}", line) or re.fullmatch(r"rel ([a-z_]+) = \{", line)
            if m is None or m.group(1) not in types:
                raise ScallopSubsetError(f"fact block line {i}: unexpected {line[:80]!r}")
            if m.lastindex == 2:
                item = item_re(m.group(1))
                if not re.fullmatch(rf"{item}(?:, {item})*", m.group(2)):
                    raise ScallopSubsetError(f"fact block line {i}: malformed facts for {m.group(1)}")
            else:
                current = re.compile(rf"  {item_re(m.group(1))},?")
        elif line == "}":
            current = None
        elif not current.fullmatch(line):
            raise ScallopSubsetError(f"fact block line {i}: malformed fact {line[:80]!r}")
    if current is not None:
        raise ScallopSubsetError("fact block: unterminated fact set")


def validate_program(text: str, fact_block: str = "") -> Module:
    """:func:`validate` ``text``; a large embedded ``fact_block`` is checked by :func:`check_fact_block`."""
    if not fact_block or len(fact_block) < 200_000:
        return validate(text)
    assert fact_block in text
    module = validate(text.replace(fact_block, "", 1))
    check_fact_block(fact_block, module.types)
    return module
