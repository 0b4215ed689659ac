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
frames), so memory does not grow with the dataset.

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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from laser_train.checkpoint import load_checkpoint, save_checkpoint
from laser_train.config import LOSS_TERMS, ExperimentConfig, to_dict
from laser_train.data.dataset import VideoDataset
from laser_train.losses import SpecSupervision, WeakBatch, supervised_loss, weak_loss
from laser_train.objectives import parse_objective

__all__ = ["Setup", "prepare", "variant_config", "data_loader", "train_one_epoch", "evaluate", "main", "VARIANTS",
           "BASELINES"]

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
    d = cfg.data
    key = (f"synthetic-s{d.seed}-{d.num_train}-{d.num_test}-f{d.num_frames}-i{d.image_size}"
           f"-o{d.min_objects}{d.max_objects}-n{d.num_negatives}")
    return Path(cfg.run.out).parent / "data" / key


def ensure_dataset(cfg: ExperimentConfig, progress: bool = False) -> Path:
    """The dataset directory: ``data.path``, or the synthetic world (generated on first use)."""
    if cfg.data.path:
        return Path(cfg.data.path)
    from laser_train.data.synthetic import write_dataset

    root = synthetic_cache_dir(cfg)
    if not (root / "synthetic.json").exists():  # written last: its presence means the dataset is complete
        d = cfg.data
        write_dataset(root, seed=d.seed, num_train=d.num_train, num_test=d.num_test, num_frames=d.num_frames,
                      image_size=d.image_size, min_objects=d.min_objects, max_objects=d.max_objects,
                      num_negatives=d.num_negatives, progress=progress)
    return root


def load_background(spec: str, vocabulary: Any) -> list[Any]:
    """Background-knowledge specs: ``builtin:NAME`` (a file in ``laser_train/configs``), a path, or ``""``."""
    import stlspec

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
    t0 = time.perf_counter()
    root = ensure_dataset(cfg, progress)
    t1 = time.perf_counter()
    ds = validate_dataset(root, skip_invalid=cfg.data.skip_invalid)
    for p in ds.skipped:
        print(f"skipped: {p}")
    train = build_dataset(ds, "train", cfg.data, train=True, seed=cfg.train.seed)
    test_split = "test" if ds.split("test") else "val"
    test = build_dataset(ds, test_split, cfg.data, train=False, seed=cfg.train.seed)
    t2 = time.perf_counter()
    sup = SpecSupervision(ds.vocabulary, cfg.loss.logic, cfg.loss.temperature)
    sup.register(train)
    sup.register(test)
    background_ids = sup.add_many(load_background(cfg.data.background, ds.vocabulary))
    k = cfg.loss.num_negatives
    mode = cfg.loss.negatives
    pool: list[list[int]] = [[] for _ in range(len(train))]
    test_negs: list[list[int]] = [[] for _ in range(len(test))]
    for data, target in ((train, pool), (test, test_negs)):
        for v, negs in enumerate(data.negatives):  # negatives written in the manifest
            target[v].extend(sup.add_many(negs or ()))
    if mode == "other":  # train on other videos' captions only (evaluation keeps the fixed negatives)
        pool = [[] for _ in range(len(train))]
    if mode in ("auto", "generator"):
        # Only records whose manifest has no `negatives` field; "" means the dataset has none for it.
        need_train = [r for r in train.records if r.negatives is None]
        need_test = [r for r in test.records if r.negatives is None]
        gen_train = generated_negatives(need_train, ds.vocabulary, 2 * k, cfg.data.seed, progress=progress)
        gen_test = generated_negatives(need_test, ds.vocabulary, k, cfg.data.seed + 1, progress=progress)
        if gen_train is None and mode == "generator":
            raise RuntimeError("loss.negatives=generator but stlspec.negatives is not available")
        if gen_train is not None:
            for target, data, gen in ((pool, train, gen_train), (test_negs, test, gen_test)):
                missing = [v for v, r in enumerate(data.records) if r.negatives is None]
                for v, negs in zip(missing, gen):
                    target[v].extend(sup.add_many(negs))
    rng = np.random.default_rng([cfg.data.seed, 7])
    for v in range(len(test)):  # evaluation negatives: other held-out captions, fixed per setup
        if not test_negs[v]:
            others = (v + 1 + rng.choice(len(test) - 1, size=min(k, len(test) - 1), replace=False)) % len(test)
            test_negs[v] = [test.spec_ids[int(o)] for o in others]
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


def build(cfg: ExperimentConfig, setup: Setup, steps_per_epoch: int):
    from laser_train.model import build_model

    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, setup.vocabulary, cfg.data.crop_size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    total = max(1, cfg.train.epochs * steps_per_epoch)
    if cfg.train.lr_schedule == "cosine":
        lam = lambda step: 0.5 * (1 + np.cos(np.pi * min(step, total) / total))  # noqa: E731
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
            else:  # other training videos' captions
                chosen = [train.spec_ids[int((v + 1 + o) % V)] for o in rng.choice(V - 1, size=k, replace=False)]
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
    return WeakBatch(spec_ids, video_ids, torch.tensor(kinds), background, hints, has)


def _objective_step(setup: Setup, cfg: ExperimentConfig, objective: dict[str, float], scores, batch,
                    index: torch.Tensor, rng: np.random.Generator, paste_gen: torch.Generator):
    """The configured objective(s) on one batch (:mod:`laser_train.objectives`); LASER alone is ``weak_loss``."""
    from laser_train.objectives import ObjectiveContext, needs_embeddings, objective_loss

    ctx = ObjectiveContext(laser=None, generator=paste_gen)
    if objective.get("laser"):
        work = _weak_work(setup, cfg, index, rng)
        ctx.laser = lambda: weak_loss(setup.supervision, scores.probs(), batch, work, cfg.loss.weights)
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


def data_loader(setup: Setup, cfg: ExperimentConfig, split: str = "train", sampler: Any = None,
                batch_size: int | None = None) -> torch.utils.data.DataLoader:
    """The DataLoader of ``split`` ("train": shuffled per epoch; "test": in order) with ``cfg.data``'s
    workers; ``sampler`` (e.g. a ``DistributedSampler``) replaces the default order."""
    from laser_train.data.dataset import make_loader

    data = setup.train if split == "train" else setup.test
    if split == "train" and cfg.loss.supervision != "full":
        data = data.without_ground_truth()  # weak supervision never reads the scene graphs
    return make_loader(data, batch_size or cfg.train.batch_size, shuffle=split == "train", seed=cfg.train.seed,
                       num_workers=cfg.data.num_workers, sampler=sampler, prefetch_factor=cfg.data.prefetch_factor)


def train_one_epoch(model, optimizer, scheduler, setup: Setup, cfg: ExperimentConfig, epoch: int,
                    progress: bool = False, desc: str = "", loader: Any = None) -> dict[str, Any]:
    """One pass over the training videos; returns mean losses, per-step totals and a time breakdown."""
    from laser_train.data.dataset import set_epoch

    loader = loader if loader is not None else data_loader(setup, cfg, "train")
    set_epoch(loader, epoch)
    rng = np.random.default_rng([cfg.train.seed, epoch])
    steps: Any = loader
    if progress:
        from tqdm import tqdm

        steps = tqdm(loader, desc=desc or f"epoch {epoch + 1}", unit="step", leave=False)
    sums: dict[str, float] = {}
    step_losses: list[float] = []
    t_model = t_spec = t_data = 0.0
    t_start = time.perf_counter()
    model.train()
    full = cfg.loss.supervision == "full"
    objective = parse_objective(cfg.loss.objective)
    paste_gen = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + epoch + 7919)  # S-ViLM's cut-and-paste
    t_wait = time.perf_counter()
    for batch in steps:
        index = batch["index"]
        t0 = time.perf_counter()
        t_data += t0 - t_wait
        scores = model(batch)
        t1 = time.perf_counter()
        if full:
            loss, terms = supervised_loss(scores, batch, (batch["gt_names"], batch["gt_unary"], batch["gt_binary"]))
            t2 = time.perf_counter()
        else:
            loss, terms = _objective_step(setup, cfg, objective, scores, batch, index, rng, paste_gen)
            t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        scheduler.step()
        t3 = time.perf_counter()
        t_model += t1 - t0
        t_spec += t2 - t1
        step_losses.append(float(loss.detach()))
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        if progress and hasattr(steps, "set_postfix"):
            steps.set_postfix(loss=f"{step_losses[-1]:.3f}")
        t_wait = time.perf_counter()
    n = max(len(step_losses), 1)
    return {"epoch": epoch + 1, "loss": sum(step_losses) / n, "terms": {k: v / n for k, v in sums.items()},
            "step_losses": step_losses, "time_s": time.perf_counter() - t_start, "data_s": t_data,
            "forward_model_s": t_model, "loss_s": t_spec, "lr": scheduler.get_last_lr()[0]}


def evaluate(model, setup: Setup, cfg: ExperimentConfig, data: VideoDataset | None = None,
             negatives: list[list[int]] | None = None) -> dict[str, float]:
    """Recall@k against the hidden scene graphs (when present) and held-out spec accuracy."""
    from laser_train.data.dataset import make_loader
    from laser_train.evaluate import evaluate_model

    data = data if data is not None else setup.test
    negatives = negatives if negatives is not None else setup.test_negatives
    loader = make_loader(data, 64, num_workers=cfg.data.num_workers, prefetch_factor=cfg.data.prefetch_factor)
    return evaluate_model(model, loader, setup.supervision, negatives, cfg.eval.ks, cfg.eval.threshold,
                          cfg.eval.protocol)


# ---------------------------------------------------------------------------------------------- main


@contextmanager
def torch_settings(cfg: ExperimentConfig):
    """Process-wide torch settings for training, restored on exit (callers may be tests or notebooks).

    Denormal floats are flushed to zero: when a variant drives probabilities towards 0 (the
    ablation without the alignment term does), products of them become subnormal numbers, which
    CPUs process 10-100x slower; this once made one ablation run ten times slower than the others.
    Values below ~1e-308 (float64) are 0 for our purposes anyway. torch has no getter for the
    flush mode, so it is restored to torch's default (off).
    """
    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)
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


def _main(cfg: ExperimentConfig, variant: str, out_dir: str | Path | None, setup: Setup | None,
          resume: bool, progress: bool | None) -> dict[str, Any]:
    progress = cfg.train.progress if progress is None else progress
    setup = setup or prepare(cfg, progress)
    vcfg = variant_config(cfg, variant)
    steps_per_epoch = -(-len(setup.train) // vcfg.train.batch_size)
    model, opt, sched = build(vcfg, setup, steps_per_epoch)
    history: list[dict] = []
    start = 0
    ckpt = Path(out_dir) / "checkpoint.pt" if out_dir is not None else None
    if resume and ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        history, start = state["history"], state["epoch"]
    config = to_dict(vcfg)
    loader = data_loader(setup, vcfg, "train")
    for epoch in range(start, vcfg.train.epochs):
        desc = f"{variant} {epoch + 1}/{vcfg.train.epochs}"
        history.append(train_one_epoch(model, opt, sched, setup, vcfg, epoch, progress, desc, loader))
        if ckpt is not None:
            save_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched, epoch=epoch + 1, config=config,
                            history=history, extra={"variant": variant, "dataset": str(setup.root)})
    if ckpt is not None and not ckpt.exists():  # e.g. "untrained": still leave a loadable checkpoint
        save_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched, epoch=0, config=config,
                        history=history, extra={"variant": variant, "dataset": str(setup.root)})
    metrics = evaluate(model, setup, vcfg)
    result = {"variant": variant, "metrics": metrics, "history": history,
              "train_time_s": sum(h["time_s"] for h in history)}
    if out_dir is not None:
        (Path(out_dir) / "metrics.json").write_text(json.dumps(
            {k: v for k, v in result.items() if k != "history"}, indent=2) + "\n", encoding="utf-8")
    result["model"] = model
    return result
