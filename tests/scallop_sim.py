"""A tiny bottom-up Datalog evaluator for the Scallop subset stlspec emits, under ``minmaxprob``.

Scallop cannot be installed here, so this module stands in for it in tests: it
parses an emitted program with the *same* subset grammar the emitter is
checked against (:func:`stlspec.backends.scallop.validate.validate`) and
evaluates it the way Scallop's ``minmaxprob`` provenance does:

* a fact's tag is its probability (1 when it has none); a missing tuple is 0;
* a rule body is a conjunction: the derivation's tag is the **min** of its
  positive atoms' tags and of ``1 - tag`` of its negated atoms (a missing
  negated tuple contributes 1);
* a tuple's tag is the **max** over all its derivations (over every rule
  and every variable binding), computed to a fixpoint within each strongly
  connected component, components in dependency order (the program is
  stratified, so negation only reads finished relations).

It is deliberately naive (hash joins on bound columns, naive iteration) and
only meant for the small traces of the tests.
"""

from __future__ import annotations

from collections import defaultdict

from stlspec.backends.scallop.validate import Atom, Constraint, Module, strata, validate

__all__ = ["evaluate", "run_text", "run_program"]

Relations = dict[str, dict[tuple, float]]


def _eval_term(term, env):
    kind = term[0]
    if kind == "var":
        return env[term[1]]
    if kind in ("int", "str"):
        return term[1]
    _, op, left, right = term
    a, b = _eval_term(left, env), _eval_term(right, env)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        # Rust integer division truncates toward zero.
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    raise AssertionError(op)


def _term_vars(term) -> set[str]:
    if term[0] == "var":
        return {term[1]}
    if term[0] == "op":
        return _term_vars(term[2]) | _term_vars(term[3])
    return set()


def _holds(c: Constraint, env) -> bool:
    a, b = _eval_term(c.left, env), _eval_term(c.right, env)
    return {">=": a >= b, ">": a > b, "==": a == b, "!=": a != b}[c.op]


class _Index:
    """Lazily built hash indexes of a snapshot of the relations, keyed by bound positions."""

    def __init__(self, rels: Relations):
        self.rels = rels
        self.cache: dict[tuple[str, tuple[int, ...]], dict[tuple, list]] = {}

    def lookup(self, rel: str, positions: tuple[int, ...], key: tuple) -> list:
        ck = (rel, positions)
        if ck not in self.cache:
            idx: dict[tuple, list] = defaultdict(list)
            for tup, tag in self.rels.get(rel, {}).items():
                idx[tuple(tup[i] for i in positions)].append((tup, tag))
            self.cache[ck] = idx
        return self.cache[ck].get(key, [])


def _derive(rule, index: _Index, rels: Relations):
    """Yield (head tuple, tag) for every derivation of ``rule``."""
    positives = [lit for lit in rule.body if isinstance(lit, Atom) and not lit.negated]
    negatives = [lit for lit in rule.body if isinstance(lit, Atom) and lit.negated]
    constraints = [lit for lit in rule.body if isinstance(lit, Constraint)]

    def search(env, remaining, pending, tag):
        # Apply every constraint whose variables are bound (prunes early).
        still = []
        for c in pending:
            if (_term_vars(c.left) | _term_vars(c.right)) <= env.keys():
                if not _holds(c, env):
                    return
            else:
                still.append(c)
        if not remaining:
            assert not still, "unbound constraint (the validator should have caught it)"
            for neg in negatives:
                tup = tuple(_eval_term(a, env) for a in neg.args)
                tag = min(tag, 1.0 - rels.get(neg.rel, {}).get(tup, 0.0))
            yield tuple(_eval_term(a, env) for a in rule.head.args), tag
            return
        # Next atom: the one with most bound arguments.
        def bound_count(atom):
            return sum(1 for a in atom.args if a[0] != "var" or a[1] in env)

        atom = max(remaining, key=bound_count)
        rest = [a for a in remaining if a is not atom]
        positions = tuple(i for i, a in enumerate(atom.args) if a[0] != "var" or a[1] in env)
        key = tuple(_eval_term(atom.args[i], env) for i in positions)
        for tup, t in index.lookup(atom.rel, positions, key):
            env2 = dict(env)
            ok = True
            for a, v in zip(atom.args, tup):
                if a[0] == "var":
                    if a[1] in env2 and env2[a[1]] != v:
                        ok = False
                        break
                    env2[a[1]] = v
            if ok:
                yield from search(env2, rest, still, min(tag, t))

    yield from search({}, positives, constraints, 1.0)


def evaluate(module: Module) -> Relations:
    """Every relation of ``module`` as ``{tuple: tag}`` (tuples with tag 0 may be present)."""
    rels: Relations = defaultdict(dict)
    for fs in module.fact_sets:
        for prob, tup in fs.facts:
            tag = 1.0 if prob is None else prob
            rels[fs.rel][tup] = max(rels[fs.rel].get(tup, 0.0), tag)
    by_head = defaultdict(list)
    for rule in module.rules:
        by_head[rule.head.rel].append(rule)
    for comp in strata(module):
        rules = [r for rel in comp for r in by_head[rel]]
        recursive = any(isinstance(lit, Atom) and lit.rel in comp for r in rules for lit in r.body)
        while True:
            index = _Index(rels)
            changed = False
            for rule in rules:
                target = rels[rule.head.rel]
                for tup, tag in list(_derive(rule, index, rels)):
                    if tag > target.get(tup, -1.0):
                        target[tup] = tag
                        changed = True
            if not (recursive and changed):
                break
    return rels


def run_text(text: str) -> Relations:
    """Validate ``text`` against the emitted subset, then :func:`evaluate` it."""
    return evaluate(validate(text))


def run_program(program, num_frames: int) -> dict[str, tuple[float, tuple[tuple[float, ...], ...]]]:
    """Run a standalone :class:`~stlspec.backends.scallop.ScallopProgram` as ``runner.run`` reads it.

    Returns ``{spec name: (sat tag, one normalised witness distribution per event)}``;
    a missing tuple is 0, and a witness relation whose tags sum to 0 gives all zeros.
    """
    rels = run_text(program.text)
    result = {}
    for name in program.specs:
        value = rels["sat"].get((program.sat_keys[name],), 0.0)
        dists = []
        for _, rel in program.witnesses.get(name, ()):
            s = [max(rels[rel].get((t,), 0.0), 0.0) for t in range(num_frames)]
            total = sum(s)
            dists.append(tuple(x / total if total > 0 else 0.0 for x in s))
        result[name] = (value, tuple(dists))
    return result
