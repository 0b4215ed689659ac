"""Tensor building blocks shared by the embedding objectives (pure functions, documented shapes).

Similarities are cosines of L2-normalised vectors divided by a temperature
``τ``, so every logit lies in ``[-1/τ, 1/τ]`` whatever the embeddings' scale:
the objectives' gradients stay finite at extreme similarities and a zero
vector (a padded track) normalises to zero instead of NaN.

Masks are boolean; every masked ``softmax``/``logsumexp`` here is safe when a
row has no valid entry (it contributes nothing instead of NaN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["normalize", "cosine", "masked_softmax", "masked_mean", "info_nce", "soft_assign",
           "frame_features", "edge_features", "hint_frames"]

NEG = -1e4  # a logit that loses every softmax but keeps gradients finite (unlike -inf)


def normalize(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1, eps=1e-6)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[..., D] x [..., D] -> [...]`` cosine similarity (broadcasting)."""
    return (normalize(a) * normalize(b)).sum(-1)


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over the entries where ``mask`` holds; all zeros on a row without any."""
    w = torch.softmax(logits.masked_fill(~mask, NEG), dim=dim) * mask
    return w / w.sum(dim, keepdim=True).clamp_min(1e-12)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` where ``mask`` (broadcast to ``x`` minus the feature axis) holds."""
    m = mask.to(x.dtype)
    while m.dim() < x.dim():
        m = m[..., None]
    return (x * m).sum(dim) / m.sum(dim).clamp_min(1.0)


def info_nce(logits: torch.Tensor, positive: torch.Tensor, valid: torch.Tensor,
             rows: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over rows of ``-log Σ_{j∈pos} e^{l_ij} / Σ_{j∈valid} e^{l_ij}`` (``[K, M]`` logits and masks).

    ``positive`` must be a subset of ``valid``; rows without a positive (or
    excluded by ``rows``) do not count. Returns 0 (with a gradient path) when no
    row counts.
    """
    pos = positive & valid
    use = pos.any(-1)
    if rows is not None:
        use = use & rows
    if not bool(use.any()):
        return logits.sum() * 0.0
    lse_all = torch.logsumexp(logits.masked_fill(~valid, NEG), dim=-1)
    lse_pos = torch.logsumexp(logits.masked_fill(~pos, NEG), dim=-1)
    return (lse_all - lse_pos)[use].mean()


def soft_assign(words: torch.Tensor, tracks: torch.Tensor, track_mask: torch.Tensor,
                temperature: float) -> torch.Tensor:
    """Soft grounding of words in tracks: ``words [B, E, D]``, ``tracks [B', N, D]`` → ``[B, E, B', N]``.

    ``a[b, e, j, n] = softmax_n(cos(w_be, g_jn) / τ)`` over the real tracks of clip ``j``.
    """
    sim = torch.einsum("bed,jnd->bejn", normalize(words), normalize(tracks)) / temperature
    return masked_softmax(sim, track_mask[None, None].expand_as(sim), dim=-1)


def frame_features(track: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """``[B, T, D]``: the mean of the visible tracks' (normalised) embeddings at each frame."""
    return masked_mean(normalize(track), present, dim=2)


def hint_frames(hint: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """``[..., 2]`` hints (fractions) and ``[B, T]`` frame masks → ``[..., T]`` frames inside the hint.

    Uses :meth:`stlspec.ir.Window.frames`' convention: ``[ceil(lo·(L−1)), floor(hi·(L−1))]`` for a video
    of ``L`` frames. ``hint`` has the batch as its first axis.
    """
    T = frame_mask.shape[1]
    length = frame_mask.sum(1).to(hint.dtype)  # [B]
    span = (length - 1).clamp_min(0).reshape(-1, *([1] * (hint.dim() - 1)))
    lo = torch.ceil(hint[..., 0:1] * span - 1e-6)
    hi = torch.floor(hint[..., 1:2] * span + 1e-6)
    t = torch.arange(T, dtype=hint.dtype, device=hint.device)
    inside = (t >= lo) & (t <= hi)
    return inside & frame_mask.reshape(frame_mask.shape[0], *([1] * (hint.dim() - 2)), T)


def edge_features(kind: torch.Tensor, args: torch.Tensor, assign: torch.Tensor, unary: torch.Tensor,
                  pair: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame features of the caption's predicate mentions under a soft entity→track assignment.

    ``kind [B, Q]`` (0 unary, 1 binary), ``args [B, Q, 2]`` entity indices, ``assign [B, E, N]``,
    ``unary [B, T, N, D]``, ``pair [B, T, N, N, D]``, ``present [B, T, N]`` → (features ``[B, Q, T, D]``,
    visibility ``[B, Q, T]``: the weight of the assignment that is visible at that frame).

    Unary: ``Σ_n a_s(n)·present_t(n)·u_t(n)``; binary: ``Σ_{n≠m} a_s(n) a_o(m) present_t(n) present_t(m) p_t(n, m)``,
    each renormalised by its visible weight (so an argument that leaves the frame does not shrink the feature).
    """
    B, T, N = present.shape
    idx = args[..., None].expand(B, args.shape[1], 2, N)
    a = torch.gather(assign, 1, idx.reshape(B, -1, N)).reshape(B, -1, 2, N)  # [B, Q, 2, N]
    pres = present.to(unary.dtype)
    a_s = a[:, :, 0, None, :] * pres[:, None]  # [B, Q, T, N]
    a_o = a[:, :, 1, None, :] * pres[:, None]
    w_u = a_s
    off = 1 - torch.eye(N, dtype=unary.dtype, device=unary.device)
    w_b = a_s[..., :, None] * a_o[..., None, :] * off  # [B, Q, T, N, N]
    f_u = torch.einsum("bqtn,btnd->bqtd", w_u, unary)
    f_b = torch.einsum("bqtnm,btnmd->bqtd", w_b, pair)
    s_u, s_b = w_u.sum(-1), w_b.sum((-1, -2))
    is_b = (kind == 1)[..., None]
    weight = torch.where(is_b, s_b, s_u)  # [B, Q, T]
    feat = torch.where(is_b[..., None], f_b, f_u) / weight.clamp_min(1e-6)[..., None]
    return feat, weight
