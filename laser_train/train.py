"""The trainer: ``prepare`` (data + specs, once), ``train_one_epoch``, ``evaluate``, ``main(cfg)``.

One training run ("variant") trains one model from scratch on one prepared
:class:`Setup`:

* ``weak``           specs only: alignment + contrastive + temporal + semantic losses;
* ``full``           the hidden ground-truth scene graphs (the upper bound);
* ``no_<term>``      ``weak`` with one loss term's weight set to 0 (the ablation);
* ``untrained``      no training at all (the model at initialisation);
* ``svilm`` / ``finsta`` / ``hero``  an embedding baseline's objective instead of the specs
  (:mod:`laser_train.objectives`), ``weak+<baseline>`` LASER's objective plus the baseline's.

Data streams from disk through :mod:`laser_train.data.dataset` (a ``Dataset`` +
``DataLoader``; ``data.num_workers`` worker processes decode only the sampled
frames), so memory does not grow with the dataset. Under torchrun every process
loads only its slice of each global batch (:mod:`laser_train.distributed`).

Determinism: the model is initialised from ``train.seed``; epoch ``e`` shuffles
with a generator seeded by ``(seed, e)``, samples frames with
``numpy.random.default_rng([seed, e, video])`` and negatives with
``numpy.random.default_rng([seed, e])``. No other state crosses an epoch, so
resuming from the checkpoint written after epoch ``e`` replays epochs ``e+1...``
exactly as the uninterrupted run would (on the same machine and thread count).
"""

from __future__ import annotations

from contextlib import contextmanager

import copy
import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from laser_train.checkpoint import load_checkpoint, save_checkpoint
from laser_train.config import LOSS_TERMS, ExperimentConfig, to_dict
from laser_train.data.dataset import VideoDataset
from laser_train.device import Runtime
from laser_train.distributed import Dist
from laser_train.losses import SpecSupervision, WeakBatch, supervised_loss, weak_loss
from laser_train.objectives import parse_objective

__all__ = ["Setup", "prepare", "variant_config", "data_loader", "train_one_epoch", "evaluate", "evaluate_data",
           "main", "VARIANTS", "BASELINES", "start",
           "heldout_split", "heldout_negatives", "check_resume_config", "select_work"]

#: The embedding baselines (laser_train.objectives) trained alone, and each added to LASER's objective.
BASELINES = ("svilm", "finsta", "hero")
VARIANTS = (("weak", "full", "untrained") + tuple(f"no_{t}" for t in LOSS_TERMS) + BASELINES
            + tuple(f"weak+{b}" for b in BASELINES))


# ---------------------------------------------------------------------------------------------- setup


@dataclass
class Setup:
    """Everything a run needs that does not depend on the variant: data, compiled specs, negatives."""

    cfg: ExperimentConfig
    root: Path
    vocabulary: Any
    train: VideoDataset
    test: VideoDataset
    supervision: SpecSupervision
    background_ids: list[int]
    train_negative_pool: list[list[int]]  # per train video: generated negatives (empty: use other videos)
    test_negatives: list[list[int]]  # per test video: the fixed negatives of the spec accuracy
    timings: dict[str, float] = field(default_factory=dict)
    train_captions: Any = None  # CaptionBatch of the training captions (built on first use by an embedding objective)


def synthetic_cache_dir(cfg: ExperimentConfig) -> Path:
    """Where the synthetic world for ``cfg.data`` is written: next to the run directories, keyed by its settings."""
    from laser_train.data.worlds import world_settings

    d = cfg.data
    s = world_settings(d.world, num_frames=d.num_frames, image_size=d.image_size, min_objects=d.min_objects,
                       max_objects=d.max_objects)
    key = (f"{d.world}-s{d.seed}-{d.num_train}-{d.num_test}-f{s['num_frames']}-i{s['image_size']}"
           f"-o{s['min_objects']}-{s['max_objects']}-n{d.num_negatives}")
    return Path(cfg.run.out).parent / "data" / key


def ensure_dataset(cfg: ExperimentConfig, progress: bool = False) -> Path:
    """The dataset directory: ``data.path``, or the synthetic world (generated on first use)."""
    if cfg.data.path:
        return Path(cfg.data.path)
    from laser_train.data.synthetic import write_dataset

    from laser_train.distributed import current

    root = synthetic_cache_dir(cfg)
    dist = current()
    # Written by rank 0 only; synthetic.json is written last: its presence means the dataset is complete.
    if dist.is_main and not (root / "synthetic.json").exists():
        d = cfg.data
        write_dataset(root, seed=d.seed, num_train=d.num_train, num_test=d.num_test, num_frames=d.num_frames,
                      image_size=d.image_size, min_objects=d.min_objects, max_objects=d.max_objects,
                      num_negatives=d.num_negatives, progress=progress, world=d.world)
    dist.barrier()
    return root


def load_background(spec: str, vocabulary: Any, root: Path | None = None) -> list[Any]:
    """Background-knowledge specs: ``auto`` (``root/background.stl`` if the dataset has one, else none),
    ``builtin:NAME`` (a file in ``laser_train/configs``), a path, or ``""`` (none)."""
    import stlspec

    if spec == "auto":
        if root is None or not (Path(root) / "background.stl").exists():
            return []
        spec = str(Path(root) / "background.stl")
    if not spec:
        return []
    if spec.startswith("builtin:"):
        path = Path(__file__).parent / "configs" / spec.split(":", 1)[1]
    else:
        path = Path(spec)
    return list(stlspec.compile_text(path.read_text(encoding="utf-8"), vocabulary=vocabulary,
                                     path=str(path)).specs)


def generated_negatives(records: list[Any], vocabulary: Any, count: int, seed: int,
                        progress: bool = False) -> list[list[Any]] | None:
    """Compiled negatives from :mod:`stlspec.negatives` for records that have none (None if unavailable)."""
    import stlspec

    from laser_train.data import negatives

    if not negatives.available():
        return None
    texts = negatives.make_negatives([r.spec_source for r in records], vocabulary, count, seed,
                                     names=[r.spec.name for r in records], progress=progress)
    return [list(stlspec.compile_text(t, vocabulary=vocabulary).specs) if t else [] for t in texts]


def heldout_split(ds: Any) -> str:
    """The split a run evaluates on: ``test`` when the dataset has one, else ``val``."""
    return "test" if ds.split("test") else "val"


def heldout_negatives(cfg: ExperimentConfig, sup: SpecSupervision, data: VideoDataset, vocabulary: Any,
                      progress: bool = False) -> list[list[int]]:
    """Per video of ``data`` (registered in ``sup``): the spec ids of the negatives of the spec accuracy.

    The manifest's negatives; else (``loss.negatives`` auto/generator) ``loss.num_negatives`` made by
    :mod:`stlspec.negatives`; else other videos' captions drawn with a generator seeded by ``data.seed``.
    Depends only on ``cfg`` and ``data``: training's evaluation and ``python -m laser_train eval`` call
    this one function, so a checkpoint gets the same numbers both ways.
    """
    k = cfg.loss.num_negatives
    negs: list[list[int]] = [list(sup.add_many(n or ())) for n in data.negatives]
    if cfg.loss.negatives in ("auto", "generator"):
        # Only records whose manifest has no `negatives` field; "" means the dataset has none for it.
        missing = [v for v, r in enumerate(data.records) if r.negatives is None]
        gen = generated_negatives([data.records[v] for v in missing], vocabulary, k, cfg.data.seed + 1,
                                  progress=progress)
        for v, specs in zip(missing, gen or ()):
            negs[v].extend(sup.add_many(specs))
    rng = np.random.default_rng([cfg.data.seed, 7])
    for v in range(len(data)):  # other held-out captions, fixed per setup
        if not negs[v]:
            negs[v] = other_captions(data, v, k, rng)
    return negs


def other_captions(data: VideoDataset, v: int, k: int, rng: np.random.Generator) -> list[int]:
    """The caption spec ids of ``k`` other videos of ``data`` than ``v`` (as many as there are: a tiny
    dataset has fewer than ``k``), drawn without replacement: the negatives of a video without its own."""
    n = len(data)
    if n < 2:
        return []
    return [data.spec_ids[int((v + 1 + o) % n)] for o in rng.choice(n - 1, size=min(k, n - 1), replace=False)]


def prepare(cfg: ExperimentConfig, progress: bool = False) -> Setup:
    """Load (or generate) the data, compile every spec once, fix the evaluation negatives."""
    from laser_train.data.dataset import CROP_MODES, build_dataset, sampling_of
    from laser_train.data.format import validate_dataset

    from laser_train.config import ConfigError
    from laser_train.data.sampling import SamplingError

    try:  # bad data settings fail before any data is generated or read
        sampling_of(cfg.data)
    except SamplingError as exc:
        raise ConfigError(f"data.num_frames / fps / sampling / clip_seconds: {exc}") from None
    if cfg.data.crop not in CROP_MODES:
        raise ConfigError(f"data.crop: unknown crop {cfg.data.crop!r}; choose from {', '.join(CROP_MODES)}")
    _, dist = start(cfg)
    progress = progress and dist.is_main
    t0 = time.perf_counter()
    root = ensure_dataset(cfg, progress)
    t1 = time.perf_counter()
    ds = validate_dataset(root, skip_invalid=cfg.data.skip_invalid)
    for p in ds.skipped if dist.is_main else ():
        print(f"skipped: {p}")
    train = build_dataset(ds, "train", cfg.data, train=True, seed=cfg.train.seed)
    test = build_dataset(ds, heldout_split(ds), cfg.data, train=False, seed=cfg.train.seed)
    t2 = time.perf_counter()
    sup = SpecSupervision(ds.vocabulary, cfg.loss.logic, cfg.loss.temperature, cfg.loss.prune_below)
    sup.register(train)
    sup.register(test)
    background_ids = sup.add_many(load_background(cfg.data.background, ds.vocabulary, root))
    k = cfg.loss.num_negatives
    mode = cfg.loss.negatives
    pool: list[list[int]] = [list(sup.add_many(n or ())) for n in train.negatives]  # the manifest's
    if mode == "other":  # train on other videos' captions only (evaluation keeps the fixed negatives)
        pool = [[] for _ in range(len(train))]
    if mode in ("auto", "generator"):
        need_train = [r for r in train.records if r.negatives is None]
        gen_train = generated_negatives(need_train, ds.vocabulary, 2 * k, cfg.data.seed, progress=progress)
        if gen_train is None and mode == "generator":
            raise RuntimeError("loss.negatives=generator but stlspec.negatives is not available")
        missing = [v for v, r in enumerate(train.records) if r.negatives is None]
        for v, negs in zip(missing, gen_train or ()):
            pool[v].extend(sup.add_many(negs))
    test_negs = heldout_negatives(cfg, sup, test, ds.vocabulary, progress)
    sup.evaluator()  # compile now, so that the training timings measure training
    t3 = time.perf_counter()
    timings = {"data_generate_s": t1 - t0, "data_load_s": t2 - t1, "spec_compile_s": t3 - t2}
    return Setup(cfg, root, ds.vocabulary, train, test, sup, background_ids, pool, test_negs, timings)


# ---------------------------------------------------------------------------------------------- variants


def variant_config(cfg: ExperimentConfig, variant: str) -> ExperimentConfig:
    """A copy of ``cfg`` with the loss settings of ``variant``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    out = copy.deepcopy(cfg)
    if variant == "full":
        out.loss.supervision = "full"
    elif variant.startswith("no_"):
        setattr(out.loss.weights, variant[3:], 0.0)
    elif variant == "untrained":
        out.train.epochs = 0
    elif variant in BASELINES:
        out.loss.objective = variant
    elif variant.startswith("weak+"):
        out.loss.objective = f"laser+{variant[5:]}"
    parse_objective(out.loss.objective)  # a malformed objective fails here, before any training
    return out


def build(cfg: ExperimentConfig, setup: Setup, steps_per_epoch: int, device: torch.device | str = "cpu"):
    """Model (initialised from ``train.seed``, on ``device``), AdamW over its trainable parameters, LR schedule."""
    from laser_train.model import build_model

    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, setup.vocabulary, cfg.data.crop_size).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    total = max(1, cfg.train.epochs * steps_per_epoch)
    if cfg.train.lr_schedule == "cosine":
        # Python floats, not numpy ones: the LR lands in the optimizer state, and checkpoints load with
        # weights_only=True, which accepts only plain types and tensors.
        lam = lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))  # noqa: E731
    elif cfg.train.lr_schedule == "constant":
        lam = lambda step: 1.0  # noqa: E731
    else:
        raise ValueError(f"unknown lr_schedule {cfg.train.lr_schedule!r} (cosine, constant)")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    return model, opt, sched


def _weak_work(setup: Setup, cfg: ExperimentConfig, index: torch.Tensor, rng: np.random.Generator) -> WeakBatch:
    """Which (spec, video) pairs a batch evaluates: positives and negatives (+ the background specs)."""
    train = setup.train
    V, k = len(train), cfg.loss.num_negatives
    spec_ids, video_ids, kinds = [], [], []
    idx = index.tolist()
    for j, v in enumerate(idx):
        spec_ids.append(train.spec_ids[v])
        video_ids.append(j)
        kinds.append(0)
    if k and cfg.loss.weights.contrastive:
        for j, v in enumerate(idx):
            pool = setup.train_negative_pool[v]
            if pool:
                chosen = [pool[int(i)] for i in rng.choice(len(pool), size=min(k, len(pool)), replace=False)]
            else:
                chosen = other_captions(train, v, k, rng)
            spec_ids.extend(chosen)
            video_ids.extend([j] * len(chosen))
            kinds.extend([1] * len(chosen))
    E = max((len(s.events) for s in setup.supervision.specs), default=0) or 1
    hints = torch.zeros(len(spec_ids), E, 2)
    has = torch.zeros(len(spec_ids), E, dtype=torch.bool)
    for row, (sid, kind) in enumerate(zip(spec_ids, kinds)):
        if kind != 0:
            continue
        for e, info in enumerate(setup.supervision.specs[sid].events):
            if info.hint is not None:
                hints[row, e] = torch.tensor(info.hint)
                has[row, e] = True
    background = list(setup.background_ids) if cfg.loss.weights.semantic else []
    return WeakBatch(spec_ids, video_ids, torch.tensor(kinds), background, hints, has,
                     semantic_frames=cfg.loss.semantic_frames, semantic_seed=int(rng.integers(2**31)),
                     videos=tuple(idx))


def _objective_step(setup: Setup, cfg: ExperimentConfig, objective: dict[str, float], scores, batch,
                    index: torch.Tensor, work: WeakBatch | None, paste_gen: torch.Generator,
                    spec_dtype: torch.dtype = torch.float64):
    """The configured objective(s) on one batch (:mod:`laser_train.objectives`); LASER alone is ``weak_loss``."""
    from laser_train.objectives import ObjectiveContext, needs_embeddings, objective_loss

    ctx = ObjectiveContext(laser=None, generator=paste_gen)
    if objective.get("laser"):
        ctx.laser = lambda: weak_loss(setup.supervision, scores.probs(), batch, work, cfg.loss.weights,
                                      dtype=spec_dtype, contrastive=cfg.loss.contrastive)
    if needs_embeddings(objective):
        from laser_train.objectives.inputs import EmbeddingBatch
        from laser_train.objectives.structure import caption_batch, caption_graph

        if getattr(scores, "embeddings", None) is None:
            raise ValueError(f"loss.objective={cfg.loss.objective!r} needs a model that exposes its embeddings "
                             f"(SceneGraphScores.embeddings); model.name={cfg.model.name!r} does not")
        if setup.train_captions is None:  # the textual scene graphs of the training captions, built once
            setup.train_captions = caption_batch([caption_graph(s) for s in setup.train.specs], setup.vocabulary)
        ctx.embeddings = EmbeddingBatch.from_model(scores.embeddings, batch)
        ctx.captions = setup.train_captions.index(index.cpu()).to(batch["present"].device)
    return objective_loss(objective, ctx, cfg.loss)


# ---------------------------------------------------------------------------------------------- loop


def select_work(work: WeakBatch, lo: int, hi: int) -> WeakBatch:
    """The rows of ``work`` (a global batch's spec work) for videos ``lo..hi-1``, renumbered from 0."""
    rows = [i for i, v in enumerate(work.video_ids) if lo <= v < hi]
    return WeakBatch([work.spec_ids[i] for i in rows], [work.video_ids[i] - lo for i in rows], work.kinds[rows],
                     work.background, work.hints[rows], work.has_hint[rows], work.semantic_frames,
                     work.semantic_seed, work.videos[lo:hi])


def _step_loss(scores, batch, setup: Setup, cfg: ExperimentConfig, index: torch.Tensor, work: WeakBatch | None,
               rt: Runtime, objective: dict[str, float], paste_gen: torch.Generator
               ) -> tuple[dict[str, torch.Tensor], dict[str, float], dict[str, int]]:
    """Loss terms, their weights and how many items each averages (for the data-parallel rescaling)."""
    counts: dict[str, int] = {}
    if cfg.loss.supervision == "full":
        _, terms = supervised_loss(scores, batch, (batch["gt_names"], batch["gt_unary"], batch["gt_binary"]),
                                   counts)
        return terms, {k: 1.0 for k in terms}, counts
    if work is not None:
        work = replace(work, hints=rt.to(work.hints), has_hint=rt.to(work.has_hint))
    if objective == {"laser": 1.0}:  # LASER's objective alone: the five weak terms
        _, terms = weak_loss(setup.supervision, scores.probs(), batch, work, cfg.loss.weights,
                             dtype=rt.spec_dtype, counts=counts, contrastive=cfg.loss.contrastive)
        return terms, {k: getattr(cfg.loss.weights, k) for k in terms}, counts
    # An embedding baseline (alone or with LASER's terms): one term, a mean over this rank's videos. Its
    # in-batch contrasts see the rank's slice of the batch only under torchrun.
    loss, parts = _objective_step(setup, cfg, objective, scores, batch, index, work, paste_gen, rt.spec_dtype)
    terms = {"objective": loss, **{k: v for k, v in parts.items() if k != "objective"}}
    return terms, {k: (1.0 if k == "objective" else 0.0) for k in terms}, {"objective": len(index)}


def data_loader(setup: Setup, cfg: ExperimentConfig, split: str = "train", sampler: Any = None,
                batch_size: int | None = None, dist: Dist | None = None) -> torch.utils.data.DataLoader:
    """The DataLoader of ``split`` with ``cfg.data``'s workers.

    "train": the global batches of a per-epoch shuffle, this process's slice of each under torchrun
    (:class:`laser_train.distributed.GlobalBatchSampler`; with one process, the plain batches);
    "test": in order. ``sampler`` replaces the default order (of the training batches, or of the
    held-out videos).
    """
    from laser_train.data.dataset import EpochSampler, make_loader
    from laser_train.distributed import GlobalBatchSampler

    dist = dist or Dist()
    data = setup.train if split == "train" else setup.test
    kw = dict(num_workers=cfg.data.num_workers, prefetch_factor=cfg.data.prefetch_factor)
    if split == "train":
        if cfg.loss.supervision != "full":
            data = data.without_ground_truth()  # weak supervision never reads the scene graphs
        order = sampler or EpochSampler(len(data), shuffle=True, seed=cfg.train.seed)
        return make_loader(data, cfg.train.batch_size, batch_sampler=GlobalBatchSampler(
            order, batch_size or cfg.train.batch_size, dist), **kw)
    return make_loader(data, batch_size or 64, sampler=sampler, **kw)


def train_one_epoch(model, optimizer, scheduler, setup: Setup, cfg: ExperimentConfig, epoch: int,
                    progress: bool = False, desc: str = "", loader: Any = None, rt: Runtime | None = None,
                    dist: Dist | None = None, scaler: Any = None) -> dict[str, Any]:
    """One pass over the training videos; returns mean losses, per-step totals and a time breakdown.

    ``loader``: :func:`data_loader`'s (made here if not given); ``rt``: device and precision
    (default: the CPU in fp32); ``dist``: this process's share of a data-parallel run (default: one
    process). Every rank walks the same global batches; see :mod:`laser_train.distributed` for how a
    step is split so that K processes compute the one-process step. ``scaler``: the fp16
    GradScaler (default: ``rt``'s).
    """
    from laser_train.data.dataset import set_epoch

    rt = rt or Runtime(torch.device("cpu"))
    dist = dist or Dist()
    scaler = scaler or rt.grad_scaler()
    loader = loader if loader is not None else data_loader(setup, cfg, "train", dist=dist)
    set_epoch(loader, epoch)
    global_batches = loader.batch_sampler.global_batches()
    rng = np.random.default_rng([cfg.train.seed, epoch])
    steps: Any = loader
    if progress and dist.is_main:
        from tqdm import tqdm

        steps = tqdm(loader, desc=desc or f"epoch {epoch + 1}", unit="step", leave=False)
    sums: dict[str, float] = {}
    step_losses: list[float] = []
    t_data = t_model = t_spec = t_opt = 0.0
    t_start = time.perf_counter()
    model.train()
    full = cfg.loss.supervision == "full"
    objective = parse_objective(cfg.loss.objective)
    paste_gen = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + epoch + 7919)  # S-ViLM's cut-and-paste
    t_wait = time.perf_counter()
    for step, batch in enumerate(steps):
        t0 = time.perf_counter()
        t_data += t0 - t_wait
        global_index = torch.tensor(global_batches[step])
        # Negatives are drawn for the global batch on every rank (same generator), then sliced: the
        # same draws as a one-process run, whatever the number of processes.
        work = _weak_work(setup, cfg, global_index, rng) if not full and objective.get("laser") else None
        lo, hi = dist.shard(len(global_index))
        weight = 1.0
        if lo == hi:  # fewer videos than ranks: the loader gave one with weight 0 (DDP needs every rank)
            lo, hi, weight = 0, 1, 0.0
        index = batch["index"]
        if work is not None:
            work = select_work(work, lo, hi)
        batch = rt.to(batch)
        t1 = time.perf_counter()
        with rt.autocast():
            scores = model(batch)
        t2 = time.perf_counter()
        terms, weights, counts = _step_loss(scores, batch, setup, cfg, index, work, rt, objective, paste_gen)
        t3 = time.perf_counter()
        # Per-rank means → the global mean: term k is scaled by count_k · K / global count_k (exactly
        # 1 for one process); DDP then averages the gradients over the K ranks.
        keys = list(terms)
        local = torch.tensor([weight * counts.get(k, 1) for k in keys], dtype=torch.float64)
        total = dist.all_reduce_sum(local)
        factors = [float(c * dist.world_size / g) if g > 0 else 0.0 for c, g in zip(local.tolist(), total.tolist())]
        loss = sum(weights[k] * terms[k] * f for k, f in zip(keys, factors)).float()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.train.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        t4 = time.perf_counter()
        t_data += t1 - t0
        t_model += t2 - t1
        t_spec += t3 - t2
        t_opt += t4 - t3
        # Reported values: the global loss and the global mean of each term.
        report = torch.tensor([float(loss.detach())] + [float(terms[k].detach()) * c for k, c in
                                                        zip(keys, local.tolist())], dtype=torch.float64)
        report = dist.all_reduce_sum(report)
        step_losses.append(float(report[0]) / dist.world_size)
        for k, v, g in zip(keys, report[1:].tolist(), total.tolist()):
            sums[k] = sums.get(k, 0.0) + (v / g if g > 0 else 0.0)
        if progress and hasattr(steps, "set_postfix"):
            steps.set_postfix(loss=f"{step_losses[-1]:.3f}")
        t_wait = time.perf_counter()
    n = max(len(step_losses), 1)
    return {"epoch": epoch + 1, "loss": sum(step_losses) / n, "terms": {k: v / n for k, v in sums.items()},
            "step_losses": step_losses, "time_s": time.perf_counter() - t_start, "data_s": t_data,
            "forward_model_s": t_model, "loss_s": t_spec, "optimizer_s": t_opt, "lr": scheduler.get_last_lr()[0]}


def calibration_negatives(cfg: ExperimentConfig, setup: Setup) -> list[list[int]]:
    """Per training video: the negatives threshold calibration decides (``loss.num_negatives`` of the
    video's training pool; other training videos' captions where the pool is empty), fixed per setup."""
    k = cfg.loss.num_negatives
    rng = np.random.default_rng([cfg.data.seed, 11])
    return [list(setup.train_negative_pool[v][:k]) or other_captions(setup.train, v, k, rng)
            for v in range(len(setup.train))]


def spec_threshold(model, setup: Setup, cfg: ExperimentConfig) -> tuple[float, dict[float, float]]:
    """The fact threshold of the spec accuracy for ``model``: ``eval.threshold``, or with ``eval.calibrate``
    the one :func:`laser_train.evaluate.calibrate_threshold` picks on the training videos (every rank
    computes it on all of them, so all ranks agree). Returns it and the training accuracy per grid point."""
    from laser_train.data.dataset import make_loader
    from laser_train.evaluate import calibrate_threshold

    if not cfg.eval.calibrate or not len(setup.train):
        return cfg.eval.threshold, {}
    # predictions and captions only: the scene graphs are not read (except by a model that scores from them)
    data = setup.train if getattr(model, "reads_ground_truth", False) else setup.train.without_ground_truth()
    loader = make_loader(data, 64, num_workers=cfg.data.num_workers, prefetch_factor=cfg.data.prefetch_factor)
    return calibrate_threshold(model, loader, setup.supervision, calibration_negatives(cfg, setup))


def evaluate(model, setup: Setup, cfg: ExperimentConfig, data: VideoDataset | None = None,
             negatives: list[list[int]] | None = None, dist: Dist | None = None,
             threshold: float | None = None) -> dict[str, float]:
    """Recall@k against the hidden scene graphs (when present) and held-out spec accuracy.

    The one evaluation of a run (:func:`evaluate_data`): ``python -m laser_train eval`` calls it
    too, on the same held-out split with the same negatives (:func:`heldout_negatives`), so a
    checkpoint gets the same numbers both ways. Under torchrun each rank evaluates its block of the
    videos and the sums are gathered.
    """
    from laser_train.evaluate import rule_free_predicates

    data = data if data is not None else setup.test
    negatives = negatives if negatives is not None else setup.test_negatives
    free = rule_free_predicates([setup.supervision.specs[i] for i in setup.background_ids], setup.vocabulary)
    return evaluate_data(model, data, setup.supervision, negatives, cfg, dist, free, threshold)


def evaluate_data(model, data: VideoDataset, supervision: SpecSupervision, negatives: list[list[int]],
                  cfg: ExperimentConfig, dist: Dist | None = None,
                  rule_free: dict[str, list[int]] | None = None, threshold: float | None = None) -> dict[str, float]:
    """:func:`laser_train.evaluate.evaluate_model` over ``data`` with ``cfg``'s loader and eval settings
    (``rule_free``: predicate columns no background rule mentions, for the ``free`` recall columns;
    ``threshold``: the spec accuracy's fact threshold, ``eval.threshold`` when None), plus the
    threshold used as ``spec_threshold``."""
    from laser_train.data.dataset import make_loader
    from laser_train.evaluate import evaluate_model

    dist = dist or Dist()
    sampler = list(range(*dist.shard(len(data)))) if dist.enabled else None
    loader = make_loader(data, 64, sampler=sampler, num_workers=cfg.data.num_workers,
                         prefetch_factor=cfg.data.prefetch_factor)
    threshold = cfg.eval.threshold if threshold is None else threshold
    metrics = evaluate_model(model, loader, supervision, negatives, cfg.eval.ks, threshold,
                             cfg.eval.protocol, dist=dist, rule_free=rule_free)
    metrics["spec_threshold"] = threshold
    return metrics


# ---------------------------------------------------------------------------------------------- main


@contextmanager
def torch_settings(cfg: ExperimentConfig):
    """Process-wide torch settings for training, restored on exit (callers may be tests or notebooks).

    Denormal floats are flushed to zero: when a variant drives probabilities towards 0 (the
    ablation without the alignment term does), products of them become subnormal numbers, which
    CPUs process 10-100x slower; this once made one ablation run ten times slower than the others.
    Values below ~1e-308 (float64) are 0 for our purposes anyway. torch has no getter for the
    flush mode, so it is restored to torch's default (off). ``train.keep_freed_memory`` tunes the C
    library's malloc for the rest of the process (not restored: there is no getter either).
    """
    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)
    if cfg.train.keep_freed_memory:  # process-wide and not undone (see its docstring)
        from stlspec.backends.torch.memory import keep_freed_memory

        keep_freed_memory()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)


def main(cfg: ExperimentConfig, variant: str = "weak", out_dir: str | Path | None = None,
         setup: Setup | None = None, resume: bool = False, progress: bool | None = None) -> dict[str, Any]:
    """Train one variant (checkpointing after every epoch) and evaluate it; returns history and metrics.

    With ``resume`` and an existing checkpoint in ``out_dir``, training continues after the
    last finished epoch; a finished run is only re-evaluated.
    """
    with torch_settings(cfg):
        return _main(cfg, variant, out_dir, setup, resume, progress)


#: Settings that may change when a run is resumed: where and how it runs, not what it computes.
RESUME_FREE_KEYS = ("run.", "eval.", "train.progress", "train.device", "train.threads", "train.keep_freed_memory",
                    "data.num_workers", "data.prefetch_factor")


def check_resume_config(saved: dict, current: dict, allow: bool) -> list[str]:
    """The differing keys (``key: saved -> current``) between a checkpoint's config and this run's.

    Raises :class:`laser_train.config.ConfigError` listing them unless ``allow``
    (``--run.allow_config_change=true``); keys of :data:`RESUME_FREE_KEYS` are ignored.
    """
    from laser_train.config import ConfigError, config_diff

    diff = [f"{k}: {a!r} -> {b!r}" for k, a, b in config_diff(saved, current)
            if not k.startswith(RESUME_FREE_KEYS)]
    if diff and not allow:
        raise ConfigError("cannot resume: the configuration differs from the checkpoint's\n  " + "\n  ".join(diff)
                          + "\n(resume with the same settings, or pass --run.allow_config_change=true to continue "
                          "anyway; the change is recorded in the run)")
    return diff


def _main(cfg: ExperimentConfig, variant: str, out_dir: str | Path | None, setup: Setup | None,
          resume: bool, progress: bool | None) -> dict[str, Any]:
    rt, dist = start(cfg)
    progress = (cfg.train.progress if progress is None else progress) and dist.is_main
    setup = setup or prepare(cfg, progress)
    vcfg = variant_config(cfg, variant)
    steps_per_epoch = -(-len(setup.train) // vcfg.train.batch_size)
    model, opt, sched = build(vcfg, setup, steps_per_epoch, rt.device)
    history: list[dict] = []
    changes: list[dict] = []
    start_epoch = 0
    config = to_dict(vcfg)
    ckpt = Path(out_dir) / "checkpoint.pt" if out_dir is not None else None
    if resume and ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt)
        changes = list(state["extra"].get("config_changes", []))
        diff = check_resume_config(state["config"], config, cfg.run.allow_config_change)
        if diff:
            changes.append({"epoch": state["epoch"], "changed": diff})
            if dist.is_main:
                print("resuming with a changed configuration (run.allow_config_change):\n  " + "\n  ".join(diff))
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        history, start_epoch = state["history"], state["epoch"]
    scaler = rt.grad_scaler()
    if resume and ckpt is not None and ckpt.exists() and state.get("extra", {}).get("grad_scaler"):
        scaler.load_state_dict(state["extra"]["grad_scaler"])
    ddp = dist.wrap(model, rt.device)

    calibrated: dict[str, Any] = {}  # the spec accuracy's threshold, once training is done

    def checkpoint(epoch: int) -> None:
        if dist.is_main:
            save_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched, epoch=epoch, config=config,
                            history=history, extra={"variant": variant, "dataset": str(setup.root),
                                                    "config_changes": changes,
                                                    "grad_scaler": scaler.state_dict() if scaler.is_enabled()
                                                    else None, **calibrated})
        dist.barrier()  # nobody goes on (or reads the checkpoint) before it is complete

    loader = data_loader(setup, vcfg, "train", dist=dist)
    for epoch in range(start_epoch, vcfg.train.epochs):
        desc = f"{variant} {epoch + 1}/{vcfg.train.epochs}"
        history.append(train_one_epoch(ddp, opt, sched, setup, vcfg, epoch, progress, desc, loader, rt=rt,
                                       dist=dist, scaler=scaler))
        if ckpt is not None:
            checkpoint(epoch + 1)
    threshold, scores = spec_threshold(model, setup, vcfg)
    calibrated.update(spec_threshold=threshold, spec_threshold_train_acc={str(t): a for t, a in scores.items()})
    if ckpt is not None:  # the checkpoint carries the threshold: `laser_train eval` uses the same one
        checkpoint(len(history))  # "untrained" (no epoch) too: still a loadable checkpoint
    metrics = evaluate(model, setup, vcfg, dist=dist, threshold=threshold)
    result = {"variant": variant, "metrics": metrics, "history": history,
              "train_time_s": sum(h["time_s"] for h in history), "device": rt.describe(),
              "world_size": dist.world_size}
    if changes:
        result["config_changes"] = changes
    if out_dir is not None and dist.is_main:
        (Path(out_dir) / "metrics.json").write_text(json.dumps(
            {k: v for k, v in result.items() if k != "history"}, indent=2) + "\n", encoding="utf-8")
    result["model"] = model
    return result


def start(cfg: ExperimentConfig) -> tuple[Runtime, Dist]:
    """The run's device and precision, and its place in a torchrun job (the process group is started once)."""
    from laser_train import distributed
    from laser_train.device import runtime

    rt = runtime(cfg.train)
    return rt, distributed.init(rt.device)
