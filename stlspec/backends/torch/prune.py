"""Certified pruning: drop tracks of small category weight, and bound the error that makes.

``prune_below=ε`` drops, for every categorised variable of a spec whose quantifiers form a
*prefix* (quantifier blocks, possibly under ``not``, above a quantifier-free matrix -- the shape of
LASER's specs, ``exists a: c1, b: c2, c: c3. A0 then A1 then A2``), the tracks whose category
weight for that variable is below ``ε``. As with ``top_m``, the result is then exactly the value
in which those weights are 0, and the evaluator returns with it a bound on the difference to the
exact value (``EvalOutput.error_bound``).

The bound. Write a block's fold as over assignments ``σ`` with category weight ``w(σ)`` (the ∧ of
its variables' category weights) and body value ``ψ(σ)``: ``∃`` is ``1 − ∏(1 − w·ψ)`` (product) or
``max min(w, ψ)`` (godel), ``∀`` is ``∏(1 − w·(1 − ψ))`` or ``min max(1 − w, ψ)``. Dropping a set
``D`` of assignments changes the fold by at most ``Σ_D w`` (product) or ``max_D w`` (godel), and
both folds change by at most ``Σ_σ w(σ)·|Δψ(σ)|`` (product; ``≤ max|Δψ|`` for godel) when their
bodies change. With per-variable sums over the real tracks ``S_v = Σ_x c_v(x)`` and over the
kept ones ``K_v`` (``M_v`` the largest dropped weight), the assignments of block ``j`` that use a
dropped track weigh ``W_j ≤ ∏_v S_v − ∏_v K_v`` in all (the sum over every assignment of the block's
variables, injective or not, minus those using kept tracks only; injectivity only removes
assignments). Each such assignment weighs at most ``ε`` (one of its factors is below ``ε``), so the
product folds' drop error ``1 − ∏_D (1 − w)`` is at most ``B_j = min(W_j, 1 − exp(−W_j / (1 − ε)))``
(from ``ln(1 − w) ≥ −w / (1 − w)``), and for blocks ``1 … m`` from the root down

* product: ``|exact − pruned| ≤ Σ_j B_j · ∏_{i<j} max(1, ∏_{v ∈ block i} S_v)``;
* godel and boolean: ``|exact − pruned| ≤ Σ_j max_{v ∈ block j} M_v``;

``not`` above or between blocks changes nothing (it is 1-Lipschitz), and the quantifier-free
matrix is evaluated exactly. The bound is capped at 1. Uncategorised variables (weight 1 on every
real track) are never pruned; an unknown category (weight 0) has nothing to prune. Specs of
other shapes are evaluated exactly (only weights of exactly 0 are dropped) with bound 0.
"""

from __future__ import annotations

import numpy as np

from stlspec.backends.torch.canon import Op, SpecTable

__all__ = ["prefix_blocks", "error_bounds"]


def prefix_blocks(tab: SpecTable) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] | None:
    """The spec's quantifier blocks ``(variables, categories)`` from the root down, or None when its
    quantifiers are not a prefix over a quantifier-free matrix (or it has none)."""
    blocks = []
    i = tab.root
    while tab.nodes[i].op in (Op.EXISTS, Op.FORALL, Op.NOT):
        n = tab.nodes[i]
        if n.op != Op.NOT:
            blocks.append((n.block, n.cats))
        i = n.kids[0]
    if not blocks:
        return None
    stack = [i]
    while stack:  # the matrix (value nodes only: witness nodes lie above the root) has no quantifier
        n = tab.nodes[stack.pop()]
        if n.op in (Op.EXISTS, Op.FORALL):
            return None
        stack.extend(n.kids)
    return tuple(blocks)


def error_bounds(blocks: list, vid: np.ndarray, weights: np.ndarray, real: np.ndarray, eps: float,
                 minmax: bool) -> np.ndarray:
    """``[K]`` bounds on ``|exact − pruned|`` for instances on videos ``vid`` whose specs have ``blocks[k]``
    (None: not pruned, bound 0). ``weights [B, N, C]`` are the category weights as the logic reads
    them, ``real [B, N]`` the real tracks."""
    K = len(vid)
    out = np.zeros(K)
    if not K:
        return out
    w = np.where(real[:, :, None], weights, 0.0).astype(np.float64)
    dropped = real[:, :, None] & (weights < eps)
    S = w.sum(1)  # [B, C]
    P = np.where(dropped, w, 0.0).sum(1)
    M = np.where(dropped, w, 0.0).max(1, initial=0.0)
    n_real = real.sum(1).astype(np.float64)
    for k in range(K):
        bl = blocks[k]
        if bl is None:
            continue
        b = int(vid[k])
        total, scale = 0.0, 1.0
        for _, cats in bl:
            s = [n_real[b] if c == -1 else 0.0 if c == -2 else S[b, c] for c in cats]
            if minmax:
                total += max((M[b, c] for c in cats if c >= 0), default=0.0)
                continue
            kept = [s[v] - (P[b, c] if c >= 0 else 0.0) for v, c in enumerate(cats)]
            dropped = max(float(np.prod(s)) - float(np.prod(kept)), 0.0)  # Σ_D w(σ), injectivity ignored
            bound = dropped if eps >= 1 else min(dropped, -np.expm1(-dropped / (1.0 - eps)))
            total += bound * scale
            scale *= max(1.0, float(np.prod(s)))
        out[k] = min(total, 1.0)
    return out
