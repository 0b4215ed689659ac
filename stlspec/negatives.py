"""Negative specs for contrastive training, each verified to mean something else.

Training pushes a caption's spec towards 1 on its video and *negative* specs
towards 0. A useful negative is close to the positive in form but differs in
meaning. From a positive spec (surface AST, printed with :func:`stlspec.format`)
this module builds candidates of these kinds:

``swap-events``        two events of a ``then`` chain change places (hints stay with the positions)
``replace-predicate``  a predicate becomes a vocabulary neighbour of the same arity (antonyms first)
``swap-arguments``     ``r(x, y)`` becomes ``r(y, x)`` (not for symmetric relations such as ``near``)
``change-category``    a variable's category becomes another category
``negate-event``       an event ``A`` becomes ``not A``; a lone ``eventually A`` becomes ``always not A``
``drop-event``         an event is removed from a chain
``other-caption``      the spec of another caption

Every candidate must type-check against the vocabulary and is then **verified
with the reference interpreter**: it is kept only if some random trace gives
it a different truth value from the positive. A negative is also marked
``weaker`` when no sampled trace makes the positive true and the negative
false — it is then (very likely) *implied* by the positive, e.g. a chain with
an event dropped. Pushing an implied spec to 0 while its positive goes to 1
contradicts itself, so weaker negatives are left out unless
``allow_weaker=True``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from stlspec import ast, ir
from stlspec.naming import comment_line

__all__ = ["KINDS", "Negative", "candidates", "generate_negatives", "negatives_for_program",
           "random_traces", "ANTONYMS", "SYMMETRIC"]

KINDS = ("swap-events", "replace-predicate", "swap-arguments", "change-category", "negate-event",
         "drop-event", "other-caption")

#: Preferred replacements: predicates whose meaning is opposite or mutually exclusive.
ANTONYMS: dict[str, tuple[str, ...]] = {
    "open": ("closed",), "closed": ("open",),
    "left of": ("right of",), "right of": ("left of",),
    "above": ("below",), "below": ("above",), "on top of": ("below", "inside"),
    "in front of": ("behind",), "behind": ("in front of",),
    "near": ("far",), "far": ("near", "touching"),
    "sitting down": ("standing up",), "standing up": ("sitting down",),
    "on the left": ("on the right",), "on the right": ("on the left",),
    "walking": ("running", "jumping"), "running": ("walking",),
    "holding": ("touching", "throwing"), "throwing": ("holding",), "inside": ("on top of",),
    "upright": ("tilted", "falling"), "tilted": ("upright",),
}

#: Relations for which swapping the arguments would not change the meaning in a real video.
SYMMETRIC = frozenset({"near", "far", "touching", "next to", "close to", "beside", "adjacent to"})


@dataclass(frozen=True, slots=True)
class Negative:
    spec: ast.Spec
    kind: str
    description: str
    weaker: bool = False


# --------------------------------------------------------------------- candidates


def _replace(formula: ast.Formula, target, new) -> ast.Formula:
    return ast.map_formula(formula, lambda node: new if node is target else node)


def _sequences(f: ast.Formula) -> list[ast.Sequence]:
    return [n for n in ast.walk(f) if isinstance(n, ast.Sequence)]


def _single_events(f: ast.Formula) -> list[ast.Hinted]:
    return [n for n in ast.walk(f) if isinstance(n, ast.Hinted) and isinstance(n.formula, ast.Eventually)]


def _label(f) -> str:
    from stlspec.formatter import format_formula

    return " ".join(format_formula(f, inline=True).split())


def candidates(spec: ast.Spec, vocabulary: ir.Vocabulary, others: Sequence[ast.Spec] = (),
               rng: random.Random | None = None) -> Iterator[tuple[str, str, ast.Formula]]:
    """``(kind, description, formula)`` for every structural negative candidate (unverified)."""
    rng = rng or random.Random(0)
    f = spec.formula
    for seq in _sequences(f):
        evs = seq.events
        n = len(evs)
        pairs = [(i, i + 1) for i in range(n - 1)] + ([(0, n - 1)] if n >= 3 else [])
        for i, j in pairs:
            new = list(evs)
            new[i] = ast.Event(evs[j].formula, evs[i].hint)
            new[j] = ast.Event(evs[i].formula, evs[j].hint)
            yield "swap-events", f"events {i + 1} and {j + 1} swapped", _replace(f, seq, ast.Sequence(tuple(new)))
        for i, ev in enumerate(evs):
            neg = list(evs)
            neg[i] = ast.Event(ast.Not(ev.formula), ev.hint)
            yield "negate-event", f"event {i + 1} negated: not ({_label(ev.formula)})", \
                _replace(f, seq, ast.Sequence(tuple(neg)))
            rest = evs[:i] + evs[i + 1:]
            if len(rest) >= 2:
                dropped = ast.Sequence(tuple(rest))
            else:
                only = rest[0]
                dropped = ast.Eventually(only.formula)
                if only.hint is not None:
                    dropped = ast.Hinted(dropped, only.hint)
            yield "drop-event", f"event {i + 1} dropped: {_label(ev.formula)}", _replace(f, seq, dropped)
    for h in _single_events(f):
        body = h.formula.arg  # type: ignore[union-attr]
        yield "negate-event", f"the event never happens: always not ({_label(body)})", \
            _replace(f, h, ast.Always(ast.Not(body)))

    preds = {1: list(vocabulary.unary_names), 2: list(vocabulary.binary_names)}
    for node in ast.walk(f):
        if isinstance(node, ast.Atom) and len(node.args) in (1, 2):
            name = node.pred.text
            pool = [p for p in preds[len(node.args)] if p != name]
            preferred = [p for p in ANTONYMS.get(name, ()) if p in pool]
            others_ = [p for p in pool if p not in preferred]
            rng.shuffle(others_)
            for p in (preferred + others_)[:3]:
                yield "replace-predicate", f"{name} → {p}", \
                    _replace(f, node, ast.Atom(ast.Name(p), node.args, node.span, node.arg_spans))
            if len(node.args) == 2 and node.args[0] != node.args[1] and name not in SYMMETRIC:
                x, y = node.args
                yield "swap-arguments", f"{name}({x}, {y}) → {name}({y}, {x})", \
                    _replace(f, node, ast.Atom(node.pred, (y, x), node.span))
        elif isinstance(node, ast.Quantified):
            for bi, b in enumerate(node.binders):
                if b.category is None or b.category.text == ast.ANY:
                    continue
                pool = [c for c in vocabulary.categories if c != b.category.text]
                rng.shuffle(pool)
                for c in pool[:2]:
                    binders = list(node.binders)
                    binders[bi] = ast.Binder(b.var, ast.Name(c), b.span)
                    yield "change-category", f"{b.var}: {b.category.text} → {c}", \
                        _replace(f, node, ast.Quantified(node.kind, tuple(binders), node.body, node.span))
    for other in others:
        if other.name != spec.name and other.formula != f:
            yield "other-caption", f"the spec of {other.name}" + (f": {other.caption}" if other.caption else ""), \
                other.formula


# --------------------------------------------------------------------- verification


def _compile(spec: ast.Spec, vocabulary: ir.Vocabulary) -> ir.Spec | None:
    import stlspec

    try:
        core = stlspec.compile_text(stlspec.format(ast.Program((spec,))), vocabulary=vocabulary)
    except stlspec.StlError:
        return None
    return core.specs[0]


def _binder_categories(f: ir.Formula) -> list[str | None]:
    out: list[str | None] = []
    for node in ir.walk(f):
        if isinstance(node, (ir.Exists, ir.Forall)):
            out.extend(c for _, c in node.vars)
    return out


def random_traces(vocabulary: ir.Vocabulary, spec: ir.Spec, count: int, seed: int = 0):
    """``count`` random 0/1 traces shaped for ``spec``: one track per bound variable, mostly of its category.

    Densities vary from trace to trace (0.15 to 0.85) so that both the
    positive and its negatives are true on some traces and false on others.
    """
    import numpy as np

    from stlspec.trace import Trace

    rng = np.random.default_rng(seed)
    cats = list(vocabulary.categories) or ["thing"]
    binder_cats = _binder_categories(spec.formula)
    n_tracks = min(max(len(binder_cats), 1) + 1, 5)
    out = []
    for k in range(count):
        T = int(rng.integers(3, 7))
        p = float(rng.uniform(0.15, 0.85))
        names = (rng.random((n_tracks, len(cats))) < 0.1).astype(float)
        for i in range(n_tracks):
            c = binder_cats[i] if i < len(binder_cats) else None
            if c in cats and rng.random() < 0.85:
                names[i, cats.index(c)] = 1.0
            else:
                names[i, int(rng.integers(len(cats)))] = 1.0
        unary = (rng.random((T, n_tracks, len(vocabulary.unary_names))) < p).astype(float)
        binary = (rng.random((T, n_tracks, n_tracks, len(vocabulary.binary_names))) < p).astype(float)
        out.append(Trace(names=names, unary=unary, binary=binary, present=np.ones((T, n_tracks), dtype=bool),
                         categories=tuple(cats), unary_preds=vocabulary.unary_names,
                         binary_preds=vocabulary.binary_names, track_ids=tuple(f"t{i}" for i in range(n_tracks))))
    return out


class _Verifier:
    """Evaluates the positive once per trace, then each candidate until it is shown to differ."""

    def __init__(self, positive: ir.Spec, vocabulary: ir.Vocabulary, trials: int, seed: int):
        from stlspec.backends.reference import evaluate

        self._eval = lambda s, tr: evaluate(s, tr, "boolean", witnesses=False).value
        self.traces = random_traces(vocabulary, positive, trials, seed)
        self.pos = [self._eval(positive, tr) for tr in self.traces]

    def check(self, negative: ir.Spec) -> tuple[bool, bool]:
        """``(differs, weaker)``: some trace tells them apart; no trace has positive true, negative false."""
        differs = stronger_witness = False
        for tr, pv in zip(self.traces, self.pos):
            nv = self._eval(negative, tr)
            if nv != pv:
                differs = True
                if pv > nv:
                    stronger_witness = True
                    break
        return differs, differs and not stronger_witness


# --------------------------------------------------------------------- public API


def generate_negatives(spec: ast.Spec, vocabulary: ir.Vocabulary, *, others: Sequence[ast.Spec] = (),
                       kinds: Iterable[str] = KINDS, limit: int | None = 6, seed: int = 0,
                       allow_weaker: bool = False, trials: int = 40) -> list[Negative]:
    """Verified negatives of ``spec``, at most ``limit``, spread over ``kinds`` (round-robin).

    Each negative type-checks against ``vocabulary`` and differs in meaning
    from ``spec`` on at least one of ``trials`` random traces (reference
    interpreter, boolean logic). Deterministic for a given ``seed``.
    """
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"unknown negative kind(s) {bad}; choose from {KINDS}")
    rng = random.Random(seed)
    positive = _compile(spec, vocabulary)
    if positive is None:
        raise ValueError(f"spec {spec.name!r} does not compile against the vocabulary")
    by_kind: dict[str, list[tuple[str, ast.Formula]]] = {k: [] for k in kinds}
    seen = {spec.formula}
    for kind, desc, formula in candidates(spec, vocabulary, others, rng):
        if kind in by_kind and formula not in seen:
            seen.add(formula)
            by_kind[kind].append((desc, formula))
    for lst in by_kind.values():
        rng.shuffle(lst)
    verifier = _Verifier(positive, vocabulary, trials, seed)
    out: list[Negative] = []
    # Round-robin over kinds, so that a small limit still gets varied negatives.
    while any(by_kind.values()) and (limit is None or len(out) < limit):
        for kind in kinds:
            if not by_kind[kind] or (limit is not None and len(out) >= limit):
                continue
            desc, formula = by_kind[kind].pop(0)
            name = f"{spec.name}_neg{len(out) + 1}"
            neg_spec = ast.Spec(name, formula, None)
            core = _compile(neg_spec, vocabulary)
            if core is None:
                continue
            differs, weaker = verifier.check(core)
            if not differs or (weaker and not allow_weaker):
                continue
            out.append(Negative(neg_spec, kind, desc, weaker))
    return out


def negatives_for_program(program: ast.Program, *, per_spec: int = 6, kinds: Iterable[str] = KINDS,
                          seed: int = 0, allow_weaker: bool = False, output_dir: str | None = None) -> str:
    """``.stl`` text with the negatives of every spec of ``program`` (the ``stlspec negatives`` output).

    The text starts with the program's own declarations and its includes
    (re-pointed from ``output_dir``, default: the program's folder), so that it
    compiles on its own.
    """
    import os

    import stlspec

    checked = stlspec.check(program)
    vocabulary = checked.vocabulary
    specs = program.specs
    lines = [f"// Negative specs for {comment_line(program.path)}: each differs in meaning from its positive on "
             "random traces."]
    src_dir = os.path.dirname(os.path.abspath(program.path)) if program.path != "<string>" else os.getcwd()
    out_dir = os.path.abspath(output_dir) if output_dir else src_dir
    for item in program.items:
        if isinstance(item, ast.Include):
            target = os.path.normpath(os.path.join(src_dir, item.path))
            ref = os.path.relpath(target, out_dir).replace(os.sep, "/")
            lines.append(f'include "{ref}"')
        elif not isinstance(item, ast.Spec):
            lines.append(stlspec.format(ast.Program((item,))).rstrip())
    for i, spec in enumerate(specs):
        negs = generate_negatives(spec, vocabulary, others=specs, kinds=kinds, limit=per_spec, seed=seed + i,
                                  allow_weaker=allow_weaker)
        lines.append("")
        lines.append(f"// ---- negatives of {comment_line(spec.name)}"
                     + (f": {comment_line(spec.caption)}" if spec.caption else ""))
        for neg in negs:
            lines.append("")
            lines.append(f"// {neg.kind}: {comment_line(neg.description)}"
                         + (" (weaker: implied by the positive)" if neg.weaker else ""))
            lines.append(stlspec.format(ast.Program((neg.spec,))).rstrip())
    return "\n".join(lines) + "\n"
