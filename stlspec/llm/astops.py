"""Generic traversals of surface-AST formulas (used by normalization and negatives).

The AST (:mod:`stlspec.ast`) is immutable; these helpers rebuild a formula
bottom-up with :func:`dataclasses.replace`, so they work for every node type
without a hand-written case per class (adding a construct needs no change
here). Children are the fields holding formulas, tuples of formulas, or
``then``-chain :class:`~stlspec.ast.Event` s.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

from stlspec import ast

__all__ = ["map_formula", "iter_formula", "is_formula"]

_LEAVES = (ast.Name, ast.Window, ast.Hint, ast.Binder)


def is_formula(x: object) -> bool:
    return dataclasses.is_dataclass(x) and not isinstance(x, type) and type(x).__module__ == ast.__name__ \
        and not isinstance(x, _LEAVES + (ast.Event,))


def _is_node(x: object) -> bool:
    return is_formula(x) or isinstance(x, ast.Event)


def _rebuild(node, fn):
    changes = {}
    for f in dataclasses.fields(node):
        if f.name == "span" or not f.init:
            continue
        value = getattr(node, f.name)
        if _is_node(value):
            new = _rebuild(value, fn)
        elif isinstance(value, tuple) and value and all(_is_node(v) for v in value):
            new = tuple(_rebuild(v, fn) for v in value)
        else:
            continue
        if new is not value and new != value:
            changes[f.name] = new
    out = dataclasses.replace(node, **changes) if changes else node
    return fn(out) if is_formula(out) else out


def map_formula(formula: ast.Formula, fn: Callable[[ast.Formula], ast.Formula]) -> ast.Formula:
    """Apply ``fn`` to every sub-formula, children first; returns the rebuilt formula."""
    return _rebuild(formula, fn)


def iter_formula(formula) -> Iterator:
    """Pre-order iteration over ``formula``, its sub-formulas and chain events."""
    stack = [formula]
    while stack:
        node = stack.pop()
        yield node
        kids = []
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if _is_node(value):
                kids.append(value)
            elif isinstance(value, tuple):
                kids.extend(v for v in value if _is_node(v))
        stack.extend(reversed(kids))
