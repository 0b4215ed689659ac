"""Training objectives: LASER's spec losses and three embedding baselines, in one registry.

``loss.objective`` names one objective or a weighted sum of several:

=========== ==================================================================== ===========================
name        objective                                                            config
=========== ==================================================================== ===========================
``laser``   specs evaluated on the scene graph (:mod:`laser_train.losses`)        ``loss.weights``
``svilm``   S-ViLM: global contrast, spatial grounding, temporal grouping        ``loss.svilm``
``finsta``  Finsta: object-centred spatial, predicate-centred temporal alignment ``loss.finsta``
``hero``    HERO: contrastive action correspondence (+ object retrieval)         ``loss.hero``
=========== ==================================================================== ===========================

Combinations are written ``laser+svilm`` or with weights ``laser+0.5*finsta``
(:func:`parse_objective`; from Python a mapping ``{"laser": 1, "finsta": 0.5}``
works too). Every objective trains the same perception model on the same
batches: the embedding objectives read the model's track / pair embeddings and
vocabulary word embeddings (:class:`EmbeddingBatch`), LASER reads its scene
graph — the same scene graph that evaluation scores, computed from the same
embeddings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from laser_train.objectives.configs import FinstaConfig, HEROConfig, SViLMConfig

__all__ = ["OBJECTIVES", "ObjectiveInfo", "parse_objective", "format_objective", "needs_embeddings",
           "ObjectiveContext", "objective_loss", "SViLMConfig", "FinstaConfig", "HEROConfig", "ObjectiveError"]


class ObjectiveError(ValueError):
    """``loss.objective`` names an unknown objective or is malformed."""


@dataclass(frozen=True)
class ObjectiveInfo:
    name: str
    title: str
    paper: str
    config_key: str  # the LossConfig field holding its config
    embeddings: bool  # reads EmbeddingBatch (else: the spec supervision)


OBJECTIVES: dict[str, ObjectiveInfo] = {
    "laser": ObjectiveInfo("laser", "LASER (specs)", "Huang et al., ICLR 2025", "weights", False),
    "svilm": ObjectiveInfo("svilm", "S-ViLM", "arXiv 2303.16341", "svilm", True),
    "finsta": ObjectiveInfo("finsta", "Finsta", "arXiv 2406.19255", "finsta", True),
    "hero": ObjectiveInfo("hero", "HERO", "arXiv 2208.05818", "hero", True),
}

_TERM = re.compile(r"^\s*(?:(?P<w>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?(?P<name>[a-z_]+)\s*$")


def parse_objective(spec: str | Mapping[str, float]) -> dict[str, float]:
    """``"laser+0.5*svilm"`` (or a mapping) → ``{"laser": 1.0, "svilm": 0.5}``, validated."""
    choices = ", ".join(OBJECTIVES)
    if isinstance(spec, Mapping):
        items = [(str(k), float(v)) for k, v in spec.items()]
    else:
        items = []
        for part in str(spec).split("+"):
            m = _TERM.match(part)
            if not m:
                raise ObjectiveError(f"loss.objective={spec!r}: cannot read {part.strip()!r}; write a sum of "
                                     f"[weight*]name terms, e.g. 'laser' or 'laser+0.5*svilm' (names: {choices})")
            items.append((m["name"], float(m["w"]) if m["w"] else 1.0))
    out: dict[str, float] = {}
    for name, w in items:
        if name not in OBJECTIVES:
            raise ObjectiveError(f"loss.objective={spec!r}: unknown objective {name!r} (choose from {choices})")
        if name in out:
            raise ObjectiveError(f"loss.objective={spec!r}: {name!r} appears twice; give it one weight")
        if not w >= 0 or w != w or w == float("inf"):
            raise ObjectiveError(f"loss.objective={spec!r}: weight of {name!r} must be a finite number >= 0")
        out[name] = w
    if not out or not any(out.values()):
        raise ObjectiveError(f"loss.objective={spec!r}: needs at least one objective with a weight > 0")
    return out


def format_objective(weights: Mapping[str, float]) -> str:
    """The canonical string of a weight mapping (inverse of :func:`parse_objective`)."""
    return "+".join(name if w == 1.0 else f"{w:g}*{name}" for name, w in weights.items())


def needs_embeddings(weights: Mapping[str, float]) -> bool:
    return any(OBJECTIVES[n].embeddings and w for n, w in weights.items())


@dataclass
class ObjectiveContext:
    """One training step's inputs to the objectives (built by the trainer)."""

    laser: Callable[[], tuple[Any, dict[str, Any]]] | None  # LASER's weak loss for this batch
    embeddings: Any = None  # EmbeddingBatch, when an embedding objective is used
    captions: Any = None  # CaptionBatch of the batch's caption specs
    generator: Any = None  # torch.Generator for S-ViLM's cut-and-paste draw


def objective_loss(weights: Mapping[str, float], ctx: ObjectiveContext, loss_cfg: Any
                   ) -> tuple[Any, dict[str, Any]]:
    """``Σ_o w_o L_o`` and every term. LASER's terms keep their names (``alignment`` …), the others are
    prefixed (``svilm.global`` …). With ``weights == {"laser": 1}`` the total is exactly LASER's loss."""
    total = None
    terms: dict[str, Any] = {}
    for name, w in weights.items():
        if not w:
            continue
        match name:
            case "laser":
                if ctx.laser is None:
                    raise ObjectiveError("the laser objective needs the spec supervision (a weak run)")
                loss, t = ctx.laser()
                terms.update(t)
            case "svilm":
                from laser_train.objectives.svilm import paste_plan, svilm_loss

                device = ctx.embeddings.frame_mask.device
                plan = tuple(x.to(device) for x in paste_plan(ctx.embeddings.frame_mask, loss_cfg.svilm, ctx.generator))
                loss, t = svilm_loss(ctx.embeddings, ctx.captions, loss_cfg.svilm, plan)
                terms.update({f"svilm.{k}": v for k, v in t.items()})
            case "finsta":
                from laser_train.objectives.finsta import finsta_loss

                loss, t = finsta_loss(ctx.embeddings, ctx.captions, loss_cfg.finsta)
                terms.update({f"finsta.{k}": v for k, v in t.items()})
            case "hero":
                from laser_train.objectives.hero import hero_loss

                loss, t = hero_loss(ctx.embeddings, ctx.captions, loss_cfg.hero)
                terms.update({f"hero.{k}": v for k, v in t.items()})
            case _:
                raise ObjectiveError(f"unknown objective {name!r} (choose from {', '.join(OBJECTIVES)})")
        part = loss if w == 1.0 else w * loss
        total = part if total is None else total + part.to(total.dtype)
    return total, terms
