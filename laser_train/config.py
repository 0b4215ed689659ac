"""Typed configuration for laser_train: one dataclass per section, each owning its defaults.

A run's configuration is an :class:`ExperimentConfig` with the sections ``data``,
``model``, ``loss``, ``train``, ``eval`` and ``run``. It is built from (in order):
the defaults below, an optional JSON config file (``--config FILE``; the same
nested shape as :func:`to_dict` prints), and ``--section.key=value`` overrides
on the command line (``laser_train/configs/default.json`` is the defaults as a
file, kept equal to them by a test). Values given on the command line are parsed according to
the field's declared type, so ``--train.epochs=3`` is an int and
``--loss.weights.semantic=0`` a float; unknown keys are errors (a typo must not
be silently ignored). The resolved configuration is saved in every checkpoint
and in the run directory.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laser_train.objectives.configs import FinstaConfig, HEROConfig, SViLMConfig

__all__ = [
    "DataConfig", "ModelConfig", "LossWeights", "LossConfig", "TrainConfig", "EvalConfig",
    "RunConfig", "ExperimentConfig", "to_dict", "from_dict", "apply_overrides", "load_config",
    "ConfigError", "LOSS_TERMS", "EVAL_PROTOCOLS", "MODEL_NAMES", "PRECISIONS", "config_diff",
]

#: The scene-graph evaluation protocols ``eval.protocol`` may list (see :mod:`laser_train.protocols`).
EVAL_PROTOCOLS = ("facts", "laser", "predcls")

#: The five weak-supervision loss terms; the ablation removes each in turn.
LOSS_TERMS = ("alignment", "contrastive", "temporal", "semantic", "sparsity")


class ConfigError(ValueError):
    """A configuration file or override names an unknown key or has a value of the wrong type."""


@dataclass
class DataConfig:
    """Where the videos come from. ``path=""`` means: generate the synthetic world."""

    path: str = ""  # a dataset directory in the documented format; empty = synthetic
    world: str = "playroom"  # which synthetic world (laser_train.data.worlds): playroom or toy
    seed: int = 0  # synthetic world seed (video i depends only on (seed, i))
    num_train: int = 120  # small enough for the 10-minute default run on 2 CPU cores (docs/training.md)
    num_test: int = 60
    # frames sampled per video (0 = every frame), and frames per synthetic video (0 = the world's: playroom 24, toy 12)
    num_frames: int = 0
    fps: float = 0.0  # subsample each video to this rate before picking num_frames (0 = the source rate)
    sampling: str = "uniform"  # "uniform" (segment centres) or "segment" (a random frame per segment in training)
    clip_seconds: float = 0.0  # longer videos: a window this long (random in training, centred in eval); 0 = all
    crop: str = "box"  # "box", "mask" (zero outside the track's mask) or "mask_box" (the mask's bounding box)
    num_workers: int = 0  # DataLoader worker processes decoding videos (0 = in the training process)
    prefetch_factor: int = 2  # batches each worker prepares ahead
    image_size: int = 0  # synthetic: 0 = the world's (playroom 96, toy 64); likewise the next two
    min_objects: int = 0  # playroom 4, toy 3
    max_objects: int = 0  # playroom 10, toy 4
    num_negatives: int = 8  # synthetic: negative specs stored with each video (made by stlspec.negatives)
    crop_size: int = 16  # every track box is resampled to crop_size x crop_size pixels
    skip_invalid: bool = False  # report and skip malformed records instead of failing
    # decoded samples kept in memory per process, in MiB, when every epoch samples the same frames
    # (uniform sampling, no clip_seconds; evaluation always): decoded once, not every epoch. 0 = off
    cache_mb: float = 512.0
    # background-knowledge specs for the semantic loss: "auto" = the dataset's background.stl (the
    # synthetic worlds write theirs there), "builtin:NAME" (laser_train/configs), a path, or "" (none)
    background: str = "auto"


#: Perception models (:func:`laser_train.model.build_model`).
MODEL_NAMES = ("small", "clip")
#: ``train.precision`` values: the perception model's autocast dtype (fp16 adds a GradScaler).
PRECISIONS = ("fp32", "bf16", "fp16")


def _check_device(value: str) -> str | None:
    """None if ``value`` names a device (auto, cpu, cuda, cuda:N), else what is wrong."""
    if value in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", value):
        return None
    return "expected one of auto, cpu, cuda, cuda:N (N a GPU index)"


def _choice(default: str, choices: tuple[str, ...]) -> Any:
    return field(default=default, metadata={"choices": choices})


@dataclass
class ModelConfig:
    """The perception model (see :mod:`laser_train.model`): ``small`` (CPU, from scratch) or ``clip``."""

    name: str = _choice("small", MODEL_NAMES)
    embed_dim: int = 48  # small: appearance embedding per crop
    hidden_dim: int = 96  # small: hidden width of the heads = width of its track and word embeddings
    # clip: from_pretrained(path) — a local directory or a hub id (read from the local hub cache only)
    path: str = ""
    layout: str = _choice("separate", ("separate", "shared"))  # clip: three towers (LASER's) or one
    pair_crop: str = _choice("two_crops", ("two_crops", "union"))  # clip: how a pair of tracks is seen
    # clip: what is not trained: nothing, the vision or text encoders, or everything but the projections
    freeze: str = _choice("none", ("none", "vision", "text", "all_but_projections"))
    prompt_names: str = "a photo of a {word}"  # clip: text prompts per vocabulary kind ({word}: the word)
    prompt_unary: str = "a photo of something {word}"
    prompt_binary: str = "a photo of something {word} something"
    # Initial probability of every unary / binary fact (the score heads' biases start at its log-odds).
    # Facts are sparse: at 0.5, `eventually` over a few dozen frames is already ~1 under the product logic
    # and spec losses pass almost no gradient to the predicates (the focal-loss paper's prior init).
    fact_prior: float = field(default=0.1, metadata={"check": lambda p: None if 0 < p < 1 else
                                                     "must lie strictly between 0 and 1 (a probability)"})


@dataclass
class LossWeights:
    alignment: float = 1.0
    contrastive: float = 1.0
    temporal: float = 0.2
    semantic: float = 0.5
    sparsity: float = 30.0  # a mean over ~10^5 facts per batch: per fact far weaker than the per-frame rules


@dataclass
class LossConfig:
    """Weak supervision: how specs become losses (see :mod:`laser_train.losses`)."""

    supervision: str = "weak"  # "weak" (specs only) or "full" (hidden scene graphs; the upper bound)
    logic: str = "product"  # logic of the stlspec torch backend: product, godel, smooth
    temperature: float = 0.1  # for logic="smooth"
    num_negatives: int = 4  # negative specs per video and training step
    # "auto": the manifest's negatives, else made by stlspec.negatives at start-up, else other videos' specs;
    # "generator": like auto but fail without stlspec.negatives; "other": other training videos' specs only
    negatives: str = "auto"
    # The contrastive term: "ratio" = -log(v(pos) / (v(pos) + Σ v(neg))), the caption's spec against its own
    # negatives (scale-free: it still pushes when every value is small, as early in training); "absolute" =
    # mean -log(1 - v(neg)) (vanishes as v(neg) -> 0 however close v(neg) is to v(pos)).
    contrastive: str = _choice("ratio", ("ratio", "absolute"))
    # Frame-local background rules (`forall ... always φ`) are evaluated on this many randomly drawn frames
    # per video and step (0: every frame): an unbiased estimate of the same per-frame mean, at a fraction
    # of the cost (they are most of a step's spec evaluation).
    semantic_frames: int = 6
    # Certified pruning of the spec evaluation (stlspec.backends.torch.prune): tracks whose category
    # probability is below this are dropped from specs whose quantifiers form a prefix (caption specs);
    # 0 = exact. For scenes with many tracks (real videos); the error bound is reported by the backend.
    prune_below: float = 0.0
    weights: LossWeights = field(default_factory=LossWeights)
    # Which objective(s) train the model (laser_train.objectives): "laser" (the specs, weighted by
    # `weights`), "svilm", "finsta", "hero", or a weighted sum such as "laser+0.5*finsta".
    objective: str = "laser"
    svilm: SViLMConfig = field(default_factory=SViLMConfig)
    finsta: FinstaConfig = field(default_factory=FinstaConfig)
    hero: HEROConfig = field(default_factory=HEROConfig)


@dataclass
class TrainConfig:
    seed: int = 0
    # 16 epochs at 8e-3 keep the default run (python -m laser_train) inside 10 minutes on 2 CPU cores;
    # 20 at 5e-3 trained the weak model about as well (docs/training.md) but took 11-12 minutes
    epochs: int = 16
    batch_size: int = 16
    lr: float = 8e-3
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"  # "cosine" or "constant"
    grad_clip: float = 5.0
    threads: int = 1  # torch intra-op threads; fixed so that runs reproduce bit for bit (0 = torch default)
    # glibc's malloc keeps freed memory for reuse (process-wide, for the rest of the process): large tensors
    # are then not page-faulted in afresh on every step (stlspec.backends.torch.memory.keep_freed_memory)
    keep_freed_memory: bool = True
    progress: bool = True
    device: str = field(default="auto", metadata={"check": _check_device})  # auto: CUDA when available
    precision: str = _choice("fp32", PRECISIONS)  # autocast of the perception model (specs: spec_dtype)
    spec_dtype: str = _choice("float64", ("float64", "float32"))  # spec evaluation (see docs/training.md)


@dataclass
class EvalConfig:
    ks: tuple[int, ...] = (1, 5)
    plot_videos: int = 3  # held-out videos shown in the timeline plots
    threshold: float = 0.5  # spec accuracy: a predicted fact holds iff its probability >= threshold
    # spec accuracy: instead of `threshold`, each model's threshold is chosen on the training videos'
    # captions and negatives (laser_train.evaluate.calibrate_threshold), recorded as spec_threshold
    calibrate: bool = True
    # scene-graph protocols reported (laser_train.protocols): facts, laser, predcls; predcls uses ks as K
    protocol: tuple[str, ...] = ("facts", "laser", "predcls")


@dataclass
class RunConfig:
    out: str = "runs/default"  # run directory; a numbered sibling is used if it exists (unless resuming)
    variants: tuple[str, ...] = (
        "weak", "full", "no_alignment", "no_contrastive", "no_temporal", "no_semantic", "no_sparsity",
    )
    seeds: tuple[int, ...] = (0, 1, 2)  # train.seed of each weak and full run (mean ± sd); others use the first
    workers: int = 2  # training runs in parallel processes (each single-threaded: results do not change)
    resume: bool = False
    allow_config_change: bool = False  # resume even if the configuration differs (recorded in the run)
    plots: bool = True


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON-able nested dict (tuples become lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Coerce a JSON value or command-line string to the declared field type."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        (elem, *_rest) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_convert(v, elem, key) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            converted = tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}") from None
        if tp is int and isinstance(value, float) and value != converted:
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return converted
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {tp!r}")


def _set(cfg: Any, dotted: str, value: Any, full_key: str) -> None:
    head, _, rest = dotted.partition(".")
    hints = typing.get_type_hints(type(cfg))
    if head not in hints:
        names = ", ".join(f.name for f in dataclasses.fields(cfg))
        raise ConfigError(f"unknown config key {full_key!r} (known here: {names})")
    current = getattr(cfg, head)
    if dataclasses.is_dataclass(current):
        if rest:
            _set(current, rest, value, full_key)
            return
        if not isinstance(value, dict):
            raise ConfigError(f"{full_key}: expected a section (object), got {value!r}")
        for k, v in value.items():
            _set(current, k, v, f"{full_key}.{k}")
        return
    if rest:
        raise ConfigError(f"unknown config key {full_key!r} ({head!r} is not a section)")
    converted = _convert(value, hints[head], full_key)
    meta = next(f.metadata for f in dataclasses.fields(cfg) if f.name == head)
    if "choices" in meta and converted not in meta["choices"]:
        raise ConfigError(f"{full_key}: unknown value {converted!r} (choose from {', '.join(meta['choices'])})")
    if "check" in meta and (problem := meta["check"](converted)):
        raise ConfigError(f"{full_key}: {converted!r}: {problem}")
    setattr(cfg, head, converted)


def from_dict(data: dict[str, Any], base: ExperimentConfig | None = None) -> ExperimentConfig:
    """Build a config from a (possibly partial) nested dict on top of ``base`` (default: the defaults)."""
    cfg = base if base is not None else ExperimentConfig()
    for key, value in data.items():
        _set(cfg, key, value, key)
    return cfg


def apply_overrides(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Apply ``section.key=value`` strings (leading dashes allowed)."""
    for raw in overrides:
        text = raw.lstrip("-")
        if "=" not in text:
            raise ConfigError(f"override {raw!r} must look like --section.key=value")
        key, value = text.split("=", 1)
        _set(cfg, key, value, key)
    return cfg


def load_config(path: str | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Defaults, then the JSON file at ``path`` (if any), then ``overrides``."""
    cfg = ExperimentConfig()
    if path:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        from_dict(data, cfg)
    cfg = apply_overrides(cfg, overrides or [])
    bad = [p for p in cfg.eval.protocol if p not in EVAL_PROTOCOLS]
    if bad:  # checked here, not after hours of training
        raise ConfigError(f"eval.protocol: unknown protocol {bad[0]!r} (choose from {', '.join(EVAL_PROTOCOLS)})")
    _check_objective(cfg)
    if not cfg.data.path:  # the synthetic world must exist (checked here, not after generating nothing)
        from laser_train.data.worlds import get_world

        get_world(cfg.data.world)
    if not 0 <= cfg.loss.prune_below <= 1:  # (NaN too)
        raise ConfigError(f"loss.prune_below must be 0 (exact) or a category probability in (0, 1], got "
                          f"{cfg.loss.prune_below}")
    if cfg.loss.prune_below and cfg.loss.logic == "smooth":
        raise ConfigError("loss.prune_below needs loss.logic=product or godel: the smooth logic's folds are not "
                          "bounded by the dropped weights (set loss.prune_below=0)")
    if cfg.loss.semantic_frames < 0:
        raise ConfigError(f"loss.semantic_frames must be 0 (every frame) or positive, got {cfg.loss.semantic_frames}")
    if cfg.run.workers < 1:
        raise ConfigError(f"run.workers must be at least 1, got {cfg.run.workers}")
    if not cfg.data.cache_mb >= 0:  # (NaN too)
        raise ConfigError(f"data.cache_mb must be 0 (no cache) or a positive number of MiB, got {cfg.data.cache_mb}")
    return cfg


def config_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every leaf where two :func:`to_dict` trees differ."""
    out: list[tuple[str, Any, Any]] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(config_diff(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append((f"{prefix}{key}", a, b))
    return out


def _check_objective(cfg: ExperimentConfig) -> None:
    """``loss.objective`` must name known objectives (checked before any data is loaded)."""
    from laser_train.objectives import ObjectiveError, parse_objective

    try:
        parse_objective(cfg.loss.objective)
    except ObjectiveError as exc:
        raise ConfigError(str(exc)) from None
