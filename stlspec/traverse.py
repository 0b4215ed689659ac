"""The one traversal engine behind :mod:`stlspec.ast` and :mod:`stlspec.ir`.

Every stage walks formula trees that may be nested as deeply as the language
allows (:data:`MAX_DEPTH` and beyond, for trees built in code), so nothing here
recurses: :func:`traverse` keeps its own stack. Each tree module supplies the
only tree-specific piece, an exhaustive ``children`` function (a ``match`` over
its node classes ending in ``assert_never``); the per-node functions that
stages pass in are exhaustive ``match`` es of their own.

``traverse(root, children, enter, leave, ctx)``:

* ``enter(node, ctx)`` runs in pre-order (parents before children, children
  left to right) and returns the context of each child (a tuple as long as
  ``children(node)``), or ``None`` to give every child ``ctx`` unchanged;
* ``leave(node, ctx, results)`` runs in post-order with the children's
  results, and its value is the node's result.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

__all__ = ["MAX_DEPTH", "traverse", "walk", "depth", "first_beyond", "structural"]

#: The deepest formula nesting the language accepts: operators on the longest
#: root-to-leaf path, atoms not counted, a ``then`` chain of k events counting
#: k − 1 (see ``ast.depth``). Both parsers report deeper text as E107 "nested too
#: deeply", and ``check`` does the same for trees built in code, so every later
#: stage may rely on it. The stages of the front end do not recurse at all;
#: lowering turns depth D into core-IR depth at most ``5·D + 2``
#: (``ir.MAX_IR_DEPTH``), the depth every backend must handle.
MAX_DEPTH = 1000

N = TypeVar("N")
R = TypeVar("R")

Children = Callable[[Any], Sequence[Any]]


def traverse(root: N, children: Children, leave: Callable[[N, Any, tuple], R],
             enter: Callable[[N, Any], Sequence[Any] | None] | None = None, ctx: Any = None) -> R:
    """Fold ``root`` bottom-up without recursion (see the module docstring)."""
    # Stack entries: (node, ctx, None) = not yet entered; (node, ctx, n_children) = children done.
    stack: list[tuple[Any, Any, int | None]] = [(root, ctx, None)]
    results: list[Any] = []
    while stack:
        node, c, n = stack.pop()
        if n is None:
            kids = children(node)
            kid_ctx = enter(node, c) if enter is not None else None
            if kid_ctx is None:
                kid_ctx = (c,) * len(kids)
            elif len(kid_ctx) != len(kids):
                raise AssertionError(f"enter gave {len(kid_ctx)} contexts for {len(kids)} children of {node!r}")
            stack.append((node, c, len(kids)))
            for k in range(len(kids) - 1, -1, -1):
                stack.append((kids[k], kid_ctx[k], None))
        else:
            if n:
                vals = tuple(results[-n:])
                del results[-n:]
            else:
                vals = ()
            results.append(leave(node, c, vals))
    (out,) = results
    return out


def walk(root: N, children: Children) -> Iterator[N]:
    """Pre-order iteration over ``root`` and all its descendants (children left to right)."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def depth(root: Any, children: Children, weight: Callable[[Any], int]) -> int:
    """The largest sum of ``weight`` over a root-to-leaf path."""
    return traverse(root, children, lambda node, _c, kids: weight(node) + max(kids, default=0))


def first_beyond(root: Any, children: Children, weight: Callable[[Any], int], limit: int) -> Any | None:
    """The first node (pre-order) where the summed ``weight`` from the root exceeds ``limit``, or ``None``."""
    stack = [(root, 0)]
    while stack:
        node, above = stack.pop()
        here = above + weight(node)
        if here > limit:
            return node
        stack.extend((k, here) for k in reversed(children(node)))
    return None


# ---------------------------------------------------------------- equality, hash and repr without recursion
#
# Dataclasses generate ``__eq__``, ``__hash__`` and ``__repr__`` that recurse
# into fields, so comparing or printing a formula a few hundred levels deep
# raises RecursionError. :func:`structural` replaces them on the node classes
# of a tree with versions that keep their own stack and follow the same rules
# (fields with ``compare=False`` take no part in ``==``/``hash``, fields with
# ``repr=False`` are not printed).


def _flatten(root: Any) -> list:
    """A flat pre-order token list that determines ``root``'s value (compared fields only)."""
    out: list = []
    stack = [root]
    while stack:
        x = stack.pop()
        if is_dataclass(x) and not isinstance(x, type):
            fs = [f for f in fields(x) if f.compare]
            out.append((type(x), len(fs)))
            stack.extend(getattr(x, f.name) for f in reversed(fs))
        elif isinstance(x, tuple) and type(x) is tuple:
            out.append((tuple, len(x)))
            stack.extend(reversed(x))
        else:
            out.append(x)
    return out


def _eq(self: Any, other: Any) -> bool:
    if self is other:
        return True
    if type(other) is not type(self):
        return NotImplemented
    return _flatten(self) == _flatten(other)


def _hash(self: Any) -> int:
    return hash(tuple(_flatten(self)))


def _repr(self: Any) -> str:
    def kids(x: Any) -> tuple:
        if is_dataclass(x) and not isinstance(x, type):
            return tuple(getattr(x, f.name) for f in fields(x) if f.repr)
        if isinstance(x, tuple) and type(x) is tuple:
            return x
        return ()

    def leave(x: Any, _ctx: Any, parts: tuple[str, ...]) -> str:
        if is_dataclass(x) and not isinstance(x, type):
            names = [f.name for f in fields(x) if f.repr]
            return f"{type(x).__name__}({', '.join(f'{n}={p}' for n, p in zip(names, parts))})"
        if isinstance(x, tuple) and type(x) is tuple:
            return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        return repr(x)

    return traverse(self, kids, leave)


def structural(*classes: type) -> None:
    """Give dataclass node ``classes`` a non-recursive ``__eq__``, ``__hash__`` and ``__repr__``."""
    for cls in classes:
        cls.__eq__ = _eq  # type: ignore[method-assign]
        cls.__hash__ = _hash  # type: ignore[method-assign]
        cls.__repr__ = _repr  # type: ignore[method-assign]
