r"""Finsta: object-centred spatial alignment and predicate-centred temporal alignment.

Fei et al., *Enhancing Video-Language Representations with Structural
Spatio-Temporal Alignment*, TPAMI 2024 (arXiv 2406.19255). No official
implementation is public; this is our adaptation. Finsta aligns the caption's
textual scene graph (TSG) with the video's dynamic scene graph (DSG). Our TSG
comes from the caption's spec (:mod:`laser_train.objectives.structure`), our
DSG nodes are the tracks and its edges the pair-tracks of the perception
model; the paper's graph transformers that contextualise both graphs are
replaced by the model's own embeddings (the comparison is about objectives, on
one shared backbone). Notation as in :mod:`laser_train.objectives.svilm`.

**Matching.** Each caption entity ``e`` (category word ``n_e``) is softly
matched to the tracks of its own video::

    a_e(n) = softmax_n( s(n_e, g_n) / τ_m ),   o_e = Σ_n a_e(n) g_n

**Object-centred spatial alignment.** Over the ``K`` entity mentions of the
batch, each entity node's positive is its own matched object feature; the
negatives are the objects matched to the *other* entities (of its own and of
the other videos), and symmetrically::

    L_osa = ½ [ mean_k −log e^{s(n_k,o_k)/τ} / Σ_{l∈V_k} e^{s(n_k,o_l)/τ}
              + mean_k −log e^{s(n_k,o_k)/τ} / Σ_{l∈V_k} e^{s(n_l,o_k)/τ} ]

``V_k`` excludes the mentions ``l ≠ k`` with the same category as ``k``: they
share ``k``'s word embedding, so treating them as negatives would push a word
away from itself (the paper's contextual node features do not have this tie).

**Predicate-centred temporal alignment.** Each predicate mention ``q`` of the
caption (word ``w_q``, subject ``e_s``, object ``e_o``) reads the edge feature
of its matched arguments at every frame (:func:`~laser_train.objectives.common.edge_features`:
``Σ_{n≠m} a_s(n) a_o(m) p_t(n, m)``, the unary embedding of the subject for a
unary predicate), pools it over time by its similarity to the predicate, inside
the event's "when" hint when ``use_hints``::

    β_t = softmax_t( s(w_q, h_t) / τ_p ),   h_q = Σ_t β_t h_t
    L_pta = ½ [ mean_q −log e^{s(w_q,h_q)/τ} / Σ_{r∈V_q} e^{s(w_q,h_r)/τ} + (the same with roles swapped) ]

with ``V_q`` the mentions of the same arity whose predicate differs from
``q``'s (plus ``q`` itself). The paper pools with a learned temporal
attention; similarity pooling is its parameter-free counterpart, and it lets a
predicate that holds during part of the video be found there rather than
averaged away.

    L_Finsta = λ_s L_osa + λ_t L_pta
"""

from __future__ import annotations

import torch

from laser_train.objectives.common import (cosine, edge_features, hint_frames, info_nce, masked_softmax, normalize,
                                           soft_assign)
from laser_train.objectives.configs import FinstaConfig
from laser_train.objectives.inputs import EmbeddingBatch
from laser_train.objectives.structure import CaptionBatch
from laser_train.objectives.svilm import caption_nouns, caption_predicate_words

__all__ = ["FinstaConfig", "match_entities", "object_alignment", "predicate_alignment", "finsta_loss",
           "symmetric_masked_nce", "predicate_frames"]


def match_entities(nouns: torch.Tensor, tracks: torch.Tensor, track_mask: torch.Tensor,
                   temperature: float) -> torch.Tensor:
    """``[B, E, N]``: each caption entity's soft match over the tracks of its own video."""
    a = soft_assign(nouns, tracks, track_mask, temperature)  # [B, E, B, N]
    B = nouns.shape[0]
    own = torch.arange(B, device=nouns.device)
    return a[own, :, own]


def symmetric_masked_nce(text: torch.Tensor, visual: torch.Tensor, label: torch.Tensor, mask: torch.Tensor,
                         temperature: float, group: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE over ``K`` flattened mentions ``[B, M, D]`` (mask ``[B, M]``).

    Mention ``k`` is paired with visual ``k``; mentions with the same ``label``
    (other than ``k``) are left out of ``k``'s denominator; when ``group`` is
    given only mentions of the same group (e.g. arity) compete.
    """
    D = text.shape[-1]
    keep = mask.reshape(-1)
    t, v, lab = text.reshape(-1, D)[keep], visual.reshape(-1, D)[keep], label.reshape(-1)[keep]
    K = len(t)
    if K == 0:
        return text.sum() * 0.0 + visual.sum() * 0.0
    logits = normalize(t) @ normalize(v).T / temperature
    eye = torch.eye(K, dtype=torch.bool, device=logits.device)
    valid = (lab[:, None] != lab[None, :]) | eye
    if group is not None:
        g = group.reshape(-1)[keep]
        valid = valid & (g[:, None] == g[None, :])
    return 0.5 * (info_nce(logits, eye, valid) + info_nce(logits.T, eye, valid.T))


def object_alignment(nouns: torch.Tensor, categories: torch.Tensor, noun_mask: torch.Tensor,
                     tracks: torch.Tensor, track_mask: torch.Tensor, cfg: FinstaConfig
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``L_osa`` and the entity → track matching ``[B, E, N]`` (reused by the temporal alignment)."""
    assign = match_entities(nouns, tracks, track_mask, cfg.match_temperature)
    objects = torch.einsum("ben,bnd->bed", assign, tracks)
    return symmetric_masked_nce(nouns, objects, categories, noun_mask, cfg.temperature), assign


def predicate_frames(caption: CaptionBatch, frame_mask: torch.Tensor, use_hints: bool) -> torch.Tensor:
    """``[B, Q, T]``: the frames a predicate mention may be read at (its event's hint, or every real frame)."""
    if use_hints:
        return hint_frames(caption.pred_hint, frame_mask)
    return frame_mask[:, None, :].expand(*caption.pred_id.shape, frame_mask.shape[1])


def predicate_alignment(words: torch.Tensor, caption: CaptionBatch, assign: torch.Tensor, emb: EmbeddingBatch,
                        cfg: FinstaConfig) -> torch.Tensor:
    """``L_pta`` for predicate words ``[B, Q, D]`` under the entity matching ``assign [B, E, N]``."""
    feats, vis = edge_features(caption.pred_kind, caption.pred_args, assign, emb.tracks, emb.pairs, emb.present)
    allowed = predicate_frames(caption, emb.frame_mask, cfg.use_hints) & (vis > 1e-6)
    beta = masked_softmax(cosine(words[:, :, None, :], feats) / cfg.pool_temperature, allowed, dim=-1)
    pooled = (beta[..., None] * feats).sum(2)  # [B, Q, D]
    use = caption.pred_mask & allowed.any(-1)
    R = int(emb.binary_words.shape[0]) + int(emb.unary_words.shape[0])
    label = caption.pred_id + caption.pred_kind * R  # one label per (arity, predicate)
    return symmetric_masked_nce(words, pooled, label, use, cfg.temperature, group=caption.pred_kind)


def finsta_loss(emb: EmbeddingBatch, caption: CaptionBatch, cfg: FinstaConfig
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``λ_s L_osa + λ_t L_pta`` and each term."""
    spatial, assign = object_alignment(caption_nouns(emb, caption), caption.entity_cat, caption.entity_mask,
                                       emb.objects, emb.visible, cfg)
    temporal = predicate_alignment(caption_predicate_words(emb, caption), caption, assign, emb, cfg) \
        if cfg.temporal_weight else spatial * 0.0
    terms = {"spatial": spatial, "temporal": temporal}
    return cfg.spatial_weight * spatial + cfg.temporal_weight * temporal, terms
