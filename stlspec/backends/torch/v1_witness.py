"""Witness distributions, for a group's batched evaluation.

An event's witness score at frame ``q`` is the spec's value with the head of the
event's ``then`` chain replaced by ``Pre_k(q) ∧ Body_k(q)`` (the definition in
``stlspec/ir.py``). All frames are pinned at once on the ``Q`` dimension of the
``[K, Q, *blocks, T]`` layout: the pinned value is put on ``Q`` and propagated
through the positive skeleton above it (``and``/``or``/quantifiers) at ``t = 0``
only. ``Pre_k`` is a forward prefix fold, so a chain costs ``O(T)`` per assignment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from stlspec.backends.torch import ops
from stlspec.backends.torch.ops import bk

if TYPE_CHECKING:
    from stlspec.backends.torch.v1 import _Node

__all__ = ["WitnessMixin"]


class WitnessMixin:
    """Pinned evaluation; mixed into the group runner, which provides ``value``, ``compute``,
    ``windows``, ``_full_time``, ``K``, ``T_b``, ``L`` and ``ctx``."""

    def pinned(self, n: _Node, event: int, t0: bool) -> torch.Tensor:
        """``n``'s value with ``event`` pinned at every frame ``q`` (the ``Q`` dim); ``t0``: only ``t = 0``."""
        if event not in n.events:
            return self.value(n, t0)
        if n.op == "ev" and n.event == event:
            body = self._full_time(self.value(n.children[0]))  # [K, 1, *blocks, T]
            T = body.shape[-1]
            bq = body.transpose(1, -1)  # B(q) on the Q dim: [K, T, *blocks, 1]
            lo, hi = self.windows(n)
            if t0 and lo is None and hi is None and self.ctx.full:
                return bq  # W(0) is every frame and there is no padding: nothing to mask
            lo_ = torch.zeros_like(self.T_b) if lo is None else lo
            hi_ = (self.T_b - 1) if hi is None else hi
            q = torch.arange(T, device=body.device)[None, :, None]
            t = torch.arange(1 if t0 else T, device=body.device)[None, None, :]
            ind = (q >= t + lo_[:, None, None]) & (q <= t + hi_[:, None, None]) & (q < self.T_b[:, None, None])
            ind = ind.view(self.K, T, *([1] * (body.dim() - 3)), ind.shape[-1])
            return ops.masked(bq, ind, 0.0)
        if t0 and n.op == "ev":
            chain = self._chain(n, event)
            if chain is not None:
                return self._factored(n, chain)
        pointwise = n.op in ("not", "and", "or", "ex", "fa")
        child_t0 = t0 and pointwise
        xs = [self.pinned(c, event, child_t0) for c in n.children]
        y = self.compute(n, xs) if n.op != "leaf" else self.value(n)
        return y[..., :1] if (t0 and not pointwise) else y

    @staticmethod
    def _chain(head: _Node, event: int) -> list[_Node] | None:
        """The ``then``-chain events ``[head, ..., target]`` if ``event`` sits in ``head``'s chain."""
        out, cur = [head], head
        while cur.event != event:
            body = cur.children[0]
            if not (body.op == "and" and len(body.children) == 2 and body.children[1].op == "next"
                    and not body.children[1].weak and body.children[1].steps == 1
                    and body.children[1].children[0].op == "ev"
                    and event not in body.children[0].events):
                return None
            cur = body.children[1].children[0]
            out.append(cur)
        return out if len(out) > 1 else None

    def _factored(self, head: _Node, chain: list[_Node]) -> torch.Tensor:
        """Factored witness of the chain's last event at ``t = 0``: ``Pre_k(q) ∧ B_k(q)``.

        ``Pre`` runs forward: ``Pre_h(q) = [q ∈ W_h(0)]`` and
        ``Pre_{j+1}(q) = ∨_{s : q ∈ W_{j+1}(s+1)} (Pre_j(s) ∧ A_j(s))`` -- a window fold looking
        backwards, computed as a forward fold on the time-reversed tensor. ``B_k`` is the
        target event's (unpinned) body.
        """
        L, T = self.L, self.ctx.T
        t = torch.arange(T, device=self.ctx.device)[None, :]
        real = t < self.T_b[:, None]
        lo, hi = self.windows(head)
        lo_ = 0 if lo is None else lo[:, None]
        hi_ = (self.T_b - 1)[:, None] if hi is None else hi[:, None]
        pre_mask = (t >= lo_) & (t <= hi_) & real  # [K, T]: W_h(0)
        # With no head window and no padded frames, pre_mask (and later `real`) is all true.
        trivial = self.ctx.full and lo is None and hi is None
        pre = None  # Pre_j as a truth tensor; None means "the indicator pre_mask"
        full_T = torch.full_like(self.T_b, T)
        if not hasattr(self, "_pre_cache"):
            self._pre_cache: dict = {}
        for j, node in enumerate(chain[:-1]):
            # Pre_{j+1} depends only on the chain's first j+1 events: shared by later events' witnesses.
            key = (id(head), id(chain[j + 1]))
            hit = self._pre_cache.get(key)
            if hit is not None:
                pre = hit
                continue
            a = self._full_time(self.value(node.children[0].children[0]))  # A_j [K, 1, *blocks, T]
            x = a if pre is None else L.and_([pre, a])
            if pre is None and not trivial:
                x = ops.masked(x, bk(pre_mask, x.dim()), 0.0)
            elif pre is not None and not self.ctx.full:
                x = ops.masked(x, bk(real, x.dim()), 0.0)
            lo, hi = self.windows(chain[j + 1])
            if lo is None and hi is None:
                # Unwindowed (the usual chain): a prefix fold over s <= q-1, no time reversal needed.
                pre = ops.prefix_or(x, L, shift=1)
            else:
                lo1 = (torch.zeros_like(self.T_b) if lo is None else lo) + 1
                hi1 = None if hi is None else hi + 1
                pre = ops.window_fold(x.flip(-1), L, True, lo1, hi1, full_T, True).flip(-1)
            self._pre_cache[key] = pre
        body = self._full_time(self.value(chain[-1].children[0]))  # B_k(q)
        v = L.and_([pre, body])
        return v.transpose(1, -1)  # q on the Q dim, t = 0
