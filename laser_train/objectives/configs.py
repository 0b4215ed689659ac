"""Typed configurations of the embedding objectives (torch-free, so that ``laser_train.config`` stays light).

Each dataclass is re-exported by its objective's module and documented there
(the equations the fields enter). They appear in a run's configuration as
``loss.svilm``, ``loss.finsta`` and ``loss.hero`` (``--loss.svilm.temperature=0.05``).
Defaults: the papers leave most of these open for our setting; the values and
the reasons are in ``docs/baselines.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SViLMConfig", "FinstaConfig", "HEROConfig"]


@dataclass
class SViLMConfig:
    """S-ViLM (Xiong et al., ICLR 2024, arXiv 2303.16341); see :mod:`laser_train.objectives.svilm`."""

    temperature: float = 0.1  # τ of the global, grounding and grouping softmaxes
    attention_temperature: float = 0.1  # τ_a of the noun → track soft attention
    global_weight: float = 1.0  # λ_g: video–caption contrastive
    grounding_weight: float = 1.0  # λ_s: inter-clip spatial grounding
    grouping_weight: float = 1.0  # λ_t: intra-clip temporal grouping
    paste_min: float = 0.25  # the pasted segment covers this ...
    paste_max: float = 0.5  # ... to this fraction of the clip's frames


@dataclass
class FinstaConfig:
    """Finsta (Fei et al., TPAMI 2024, arXiv 2406.19255); see :mod:`laser_train.objectives.finsta`."""

    temperature: float = 0.1  # τ of both alignments' InfoNCE
    match_temperature: float = 0.1  # τ_m of the entity → track soft matching
    pool_temperature: float = 0.1  # τ_p of the similarity-weighted temporal pooling of edges
    spatial_weight: float = 1.0  # object-centred spatial alignment
    temporal_weight: float = 1.0  # predicate-centred temporal alignment
    use_hints: bool = True  # pool an event's predicates only inside its "when" hint (same input as LASER)


@dataclass
class HEROConfig:
    """HERO (Li et al., ACM MM 2022, arXiv 2208.05818); see :mod:`laser_train.objectives.hero`."""

    temperature: float = 0.1  # τ of the action-correspondence and retrieval contrasts
    match_temperature: float = 0.1  # τ_m of the entity → track soft matching
    consistent_fraction: float = 0.5  # ρ: share of the candidate frames labelled action-consistent
    action_weight: float = 1.0  # contrastive action correspondence
    retrieval_weight: float = 1.0  # object retrieval (weakly supervised grounding; HERO uses boxes here)
    use_hints: bool = True  # candidate frames of an event = its "when" hint (same input as LASER)
