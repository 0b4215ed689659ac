r"""S-ViLM: global contrast, inter-clip spatial grounding, intra-clip temporal grouping.

Xiong et al., *Structured Video-Language Modeling with Temporal Grouping and
Spatial Grounding*, ICLR 2024 (arXiv 2303.16341). No official implementation is
public; this is our adaptation of its three training objectives to tracks and
caption specs (the paper's video encoder, group tokens and text encoder are
replaced by our perception model's track embeddings and vocabulary word
embeddings). Notation: ``ĝ = g/‖g‖``, ``s(a, b) = â·b̂``, batch of ``B`` clips.

**Global video–caption contrast** (the paper's ``L_contrast``, symmetric InfoNCE)::

    L_g = ½ · mean_b [ −log e^{s(v_b,c_b)/τ} / Σ_j e^{s(v_b,c_j)/τ}  −log e^{s(v_b,c_b)/τ} / Σ_j e^{s(v_j,c_b)/τ} ]

with the video embedding ``v_b`` the mean of the pooled track, unary and pair
embeddings (:func:`video_embedding`) and the caption embedding ``c_b`` the mean
of the normalised word embeddings of the caption's scene graph — its entities'
categories and its predicates (:func:`caption_embedding`). The paper encodes
the caption text with a transformer; our captions are specs, and their words
are exactly the vocabulary the perception model is scored against.

**Inter-clip spatial grounding** (the paper's ``L_g``): every noun ``n_k`` of
caption ``b`` attends over the tracks of *every* clip ``j`` of the batch
(the paper attends over group tokens; our tracks are the groups)::

    a_kjn = softmax_n( s(n_k, g_jn) / τ_a ),   r_kj = Σ_n a_kjn g_jn
    L_s   = mean_k −log e^{s(n_k, r_kb)/τ} / Σ_j e^{s(n_k, r_kj)/τ}

``g_jn`` is track ``n``'s object embedding (the model's, pooled over the frames where it is visible).

**Intra-clip temporal grouping** (the paper's ``L_t``): a segment
``[t0, t1)`` of clip ``b`` is replaced by the same frames of another clip
``π(b)`` ("cut and paste", :func:`paste_plan`), giving frame features ``f_t``
and labels ``y_t ∈ {0, 1}`` (pasted or not). With the two segment centroids
``z_y = mean_{t: y_t = y} f_t``, every frame is classified to its segment::

    L_t = mean_{b,t} −log e^{s(f_t, z_{y_t})/τ} / (e^{s(f_t, z_0)/τ} + e^{s(f_t, z_1)/τ})

The paste happens on frame *features* (the frame embedding of the pasted
frame), equal to pasting pixels for a per-frame encoder such as ours and
without a second forward pass.

    L_S-ViLM = λ_g L_g + λ_s L_s + λ_t L_t
"""

from __future__ import annotations

import torch

from laser_train.objectives.common import cosine, info_nce, masked_mean, normalize, soft_assign
from laser_train.objectives.configs import SViLMConfig
from laser_train.objectives.inputs import EmbeddingBatch
from laser_train.objectives.structure import CaptionBatch

__all__ = ["SViLMConfig", "global_contrastive", "spatial_grounding", "temporal_grouping", "paste_plan",
           "video_embedding", "caption_embedding", "caption_nouns", "svilm_loss"]


def video_embedding(emb: EmbeddingBatch) -> torch.Tensor:
    """``[B, D]``: mean of the normalised object, track and pair embeddings over the visible ones."""
    pres = emb.present
    pair_vis = pres[..., :, None] & pres[..., None, :] & ~torch.eye(pres.shape[-1], dtype=torch.bool, device=pres.device)
    o = masked_mean(normalize(emb.objects), emb.visible, dim=1)
    t = masked_mean(normalize(emb.tracks), pres, dim=(1, 2))
    p = masked_mean(normalize(emb.pairs), pair_vis, dim=(1, 2, 3))
    return (normalize(o) + normalize(t) + normalize(p)) / 3


def caption_nouns(emb: EmbeddingBatch, caption: CaptionBatch) -> torch.Tensor:
    """``[B, E, D]``: the category word embedding of each caption entity."""
    return emb.categories[caption.entity_cat]


def caption_predicate_words(emb: EmbeddingBatch, caption: CaptionBatch) -> torch.Tensor:
    """``[B, Q, D]``: the word embedding of each predicate mention (unary or binary table by its kind)."""
    u = emb.unary_words[caption.pred_id.clamp(max=emb.unary_words.shape[0] - 1)]
    b = emb.binary_words[caption.pred_id.clamp(max=emb.binary_words.shape[0] - 1)]
    return torch.where((caption.pred_kind == 1)[..., None], b, u)


def caption_embedding(emb: EmbeddingBatch, caption: CaptionBatch) -> torch.Tensor:
    """``[B, D]``: the mean of the normalised word embeddings of the caption's entities and predicates."""
    words = torch.cat([normalize(caption_nouns(emb, caption)), normalize(caption_predicate_words(emb, caption))], 1)
    mask = torch.cat([caption.entity_mask, caption.pred_mask], 1)
    return masked_mean(words, mask, dim=1)


def global_contrastive(video: torch.Tensor, text: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE over the batch: ``video [B, D]``, ``text [B, D]`` (row b matches row b)."""
    logits = normalize(video) @ normalize(text).T / temperature
    eye = torch.eye(len(video), dtype=torch.bool, device=video.device)
    valid = torch.ones_like(eye)
    return 0.5 * (info_nce(logits, eye, valid) + info_nce(logits.T, eye, valid))


def spatial_grounding(nouns: torch.Tensor, noun_mask: torch.Tensor, tracks: torch.Tensor,
                      track_mask: torch.Tensor, temperature: float, attention_temperature: float) -> torch.Tensor:
    """Inter-clip grounding: ``nouns [B, E, D]`` (mask ``[B, E]``), object ``tracks [B, N, D]`` (mask ``[B, N]``).

    Each noun's positive is its own clip's attention-pooled track feature, its
    negatives the same noun grounded in the other clips of the batch.
    """
    B, E, _ = nouns.shape
    a = soft_assign(nouns, tracks, track_mask, attention_temperature)  # [B, E, B', N]
    grounded = torch.einsum("bejn,jnd->bejd", a, tracks)  # r_kj
    logits = cosine(nouns[:, :, None, :], grounded) / temperature  # [B, E, B']
    has_track = track_mask.any(-1)  # a clip without tracks grounds nothing
    pos = torch.eye(B, dtype=torch.bool, device=nouns.device)[:, None, :].expand(B, E, B)
    valid = has_track[None, None, :].expand(B, E, B)
    return info_nce(logits.reshape(B * E, B), pos.reshape(B * E, B), valid.reshape(B * E, B),
                    rows=noun_mask.reshape(-1))


def paste_plan(frame_mask: torch.Tensor, cfg: SViLMConfig, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw the cut-and-paste: partner clip ``π(b) ≠ b`` and segment ``[start, end)`` per clip.

    The segment lies within the real frames of both clips and covers
    ``[paste_min, paste_max]`` of them (at least one frame, never all of them,
    so both segments are non-empty). With a single clip the partner is itself
    and the grouping term is skipped.
    """
    B = frame_mask.shape[0]
    frame_mask = frame_mask.cpu()  # drawn on the CPU generator; moved to the batch's device by the caller
    shift = int(torch.randint(1, B, (1,), generator=generator)) if B > 1 else 0
    partner = (torch.arange(B) + shift) % B
    length = torch.minimum(frame_mask.sum(1), frame_mask[partner].sum(1))  # [B]
    frac = cfg.paste_min + (cfg.paste_max - cfg.paste_min) * torch.rand(B, generator=generator)
    size = (frac * length).round().long().clamp(min=1)
    size = torch.minimum(size, (length - 1).clamp_min(0))
    start = (torch.rand(B, generator=generator) * (length - size + 1).clamp_min(1)).floor().long()
    return partner, start, start + size


def temporal_grouping(frames: torch.Tensor, frame_mask: torch.Tensor, partner: torch.Tensor,
                      start: torch.Tensor, end: torch.Tensor, temperature: float) -> torch.Tensor:
    """Intra-clip grouping on ``frames [B, T, D]``: frames ``[start, end)`` of clip b come from ``partner[b]``."""
    B, T, _ = frames.shape
    t = torch.arange(T, device=frames.device)
    pasted = (t[None] >= start[:, None]) & (t[None] < end[:, None]) & (partner != torch.arange(B, device=frames.device))[:, None]
    mixed = torch.where(pasted[..., None], frames[partner], frames)
    real = frame_mask & (~pasted | frame_mask[partner])
    seg0, seg1 = real & ~pasted, real & pasted
    z0 = masked_mean(mixed, seg0, dim=1)  # [B, D] centroids
    z1 = masked_mean(mixed, seg1, dim=1)
    logits = torch.stack([cosine(mixed, z0[:, None]), cosine(mixed, z1[:, None])], -1) / temperature  # [B, T, 2]
    label = torch.stack([seg0, seg1], -1)
    use = real & (seg0.any(1) & seg1.any(1))[:, None]
    K = B * T
    return info_nce(logits.reshape(K, 2), label.reshape(K, 2), torch.ones(K, 2, dtype=torch.bool, device=frames.device),
                    rows=use.reshape(-1))


def svilm_loss(emb: EmbeddingBatch, caption: CaptionBatch, cfg: SViLMConfig,
               plan: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``λ_g L_g + λ_s L_s + λ_t L_t`` and each term; ``plan`` from :func:`paste_plan`."""
    zero = emb.tracks.sum() * 0.0
    terms = {
        "global": global_contrastive(video_embedding(emb), caption_embedding(emb, caption), cfg.temperature)
        if cfg.global_weight else zero,
        "grounding": spatial_grounding(caption_nouns(emb, caption), caption.entity_mask, emb.objects,
                                       emb.visible, cfg.temperature,
                                       cfg.attention_temperature) if cfg.grounding_weight else zero,
        "grouping": temporal_grouping(emb.frames(), emb.frame_mask, *plan, cfg.temperature)
        if cfg.grouping_weight else zero,
    }
    total = cfg.global_weight * terms["global"] + cfg.grounding_weight * terms["grounding"] \
        + cfg.grouping_weight * terms["grouping"]
    return total, terms
