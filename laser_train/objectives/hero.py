r"""HERO: contrastive action correspondence (with weakly supervised object retrieval).

Li et al., *HERO: HiErarchical spatio-tempoRal reasOning with Contrastive
Action Correspondence for End-to-End Video Object Grounding*, ACM MM 2022
(arXiv 2208.05818). No official implementation is public; this is our
adaptation. HERO observes that a video shows more than its caption says: only
some frames show the caption's action. It splits the frames into
*action-consistent* and *action-independent* ones by their similarity to the
caption's action and trains with a contrastive loss that pulls the action
towards the consistent frames and away from the independent ones.

**Actions.** Our caption's "actions" are its predicate mentions ``q`` (word
``w_q``, arguments matched to tracks as in :mod:`laser_train.objectives.finsta`);
the frame feature of ``q`` at frame ``t`` is the edge feature ``h_t`` of its
matched arguments (:func:`~laser_train.objectives.common.edge_features`). The
paper's action is a verb phrase against whole-frame features; ours is read on
the arguments' tracks, so that what it learns is a per-track scene graph.

**Split.** Candidate frames ``C_q`` are the real frames where the arguments are
visible — inside the event's "when" hint when ``use_hints`` (the caption says
when, as it does for LASER). The ``⌈ρ·|C_q|⌉`` candidates most similar to
``w_q`` are action-consistent (``P_q``); every other real frame is
action-independent. The split is a pseudo-label: it is taken without gradient.

**Contrastive action correspondence** (multi-positive InfoNCE, averaged over
the positives)::

    L_act = mean_q mean_{t∈P_q} −log e^{s(w_q,h_t)/τ} / Σ_{t'∈F_q} e^{s(w_q,h_t')/τ}

with ``F_q`` the real frames where ``q``'s arguments are visible.

**Object retrieval.** HERO grounds the caption's subject with box supervision,
which a caption-only setting does not have; we substitute the weakly supervised
inter-clip grounding of S-ViLM (:func:`laser_train.objectives.svilm.spatial_grounding`)
so that the entities — and with them the arguments of the actions — are found
at all. Setting ``retrieval_weight=0`` gives the action term alone.

    L_HERO = λ_a L_act + λ_r L_ret
"""

from __future__ import annotations

import math

import torch

from laser_train.objectives.common import NEG, cosine, edge_features
from laser_train.objectives.configs import HEROConfig
from laser_train.objectives.finsta import match_entities, predicate_frames
from laser_train.objectives.inputs import EmbeddingBatch
from laser_train.objectives.structure import CaptionBatch
from laser_train.objectives.svilm import caption_nouns, caption_predicate_words, spatial_grounding

__all__ = ["HEROConfig", "action_split", "action_correspondence", "hero_loss"]


def action_split(sim: torch.Tensor, candidates: torch.Tensor, fraction: float) -> torch.Tensor:
    """``[K, T]`` bool: the top ``⌈fraction·|candidates|⌉`` candidate frames by ``sim`` (no gradient)."""
    with torch.no_grad():
        n = candidates.sum(-1)
        k = torch.ceil(n.to(sim.dtype) * fraction).long().clamp(min=1)
        k = torch.where(n > 0, k, torch.zeros_like(k))
        ranked = sim.detach().masked_fill(~candidates, -math.inf)
        order = ranked.argsort(-1, descending=True)
        rank = torch.empty_like(order)
        rank.scatter_(-1, order, torch.arange(sim.shape[-1], device=sim.device).expand_as(order))
        return (rank < k[:, None]) & candidates


def action_correspondence(words: torch.Tensor, feats: torch.Tensor, frames: torch.Tensor,
                          candidates: torch.Tensor, use: torch.Tensor, temperature: float,
                          fraction: float) -> torch.Tensor:
    """``L_act``: ``words [K, D]``, frame features ``[K, T, D]``, frames ``F_q`` and candidates ``C_q`` ``[K, T]``."""
    logits = cosine(words[:, None, :], feats) / temperature  # [K, T]
    pos = action_split(logits, candidates & frames, fraction)
    rows = use & pos.any(-1)
    if not bool(rows.any()):
        return logits.sum() * 0.0
    lse = torch.logsumexp(logits.masked_fill(~frames, NEG), dim=-1, keepdim=True)
    nll = (lse - logits) * pos
    per_row = nll.sum(-1) / pos.sum(-1).clamp_min(1)
    return per_row[rows].mean()


def hero_loss(emb: EmbeddingBatch, caption: CaptionBatch, cfg: HEROConfig
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``λ_a L_act + λ_r L_ret`` and each term."""
    nouns = caption_nouns(emb, caption)
    zero = emb.tracks.sum() * 0.0
    terms = {"action": zero, "retrieval": zero}
    if cfg.retrieval_weight:
        terms["retrieval"] = spatial_grounding(nouns, caption.entity_mask, emb.objects, emb.visible, cfg.temperature,
                                               cfg.match_temperature)
    if cfg.action_weight:
        assign = match_entities(nouns, emb.objects, emb.visible, cfg.match_temperature)
        feats, vis = edge_features(caption.pred_kind, caption.pred_args, assign, emb.tracks, emb.pairs, emb.present)
        visible = emb.frame_mask[:, None, :] & (vis > 1e-6)
        candidates = predicate_frames(caption, emb.frame_mask, cfg.use_hints) & visible
        words = caption_predicate_words(emb, caption)
        D = words.shape[-1]
        T = feats.shape[2]
        terms["action"] = action_correspondence(
            words.reshape(-1, D), feats.reshape(-1, T, D), visible.reshape(-1, T), candidates.reshape(-1, T),
            caption.pred_mask.reshape(-1), cfg.temperature, cfg.consistent_fraction)
    return cfg.action_weight * terms["action"] + cfg.retrieval_weight * terms["retrieval"], terms
