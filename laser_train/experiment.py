"""The main job: one run directory, every variant, one honest results table.

``python -m laser_train`` (no arguments) calls :func:`run_experiment` on the
embedded defaults: it prepares the data once (the synthetic world unless
``data.path`` is set), trains each variant of ``run.variants`` on the same data,
evaluates all of them on the same held-out videos, and writes::

    RUN/config.json          the resolved configuration
    RUN/metrics.json         every row and column, seeds, spreads, ratios to the prior, targets, timings
    RUN/<variant>/checkpoint.pt, RUN/<variant>/metrics.json          (the first seed)
    RUN/<variant>-seed<S>/checkpoint.pt, ...                          (further seeds of weak and full)
    RUN/plots/*.png          loss curves, results with error bars, scene-graph timelines, frame grids

Rows of the table:

* ``chance``    a uniformly random ranking (computed exactly);
* ``prior``     training-set predicate frequencies per (pair of) true categories, constant over time
  (:func:`laser_train.evaluate.prior_scores`): what the type gates and the frequency prior alone give;
* ``untrained`` the initial model;
* ``weak`` and ``full`` trained with every seed of ``run.seeds`` (mean ± sd over seeds), the other
  variants (ablations) with the first seed only.

Ratios are reported against ``prior`` (``ratios_vs_prior`` in ``metrics.json``). With
``run.resume`` an existing run directory is continued: finished runs are re-evaluated from
their checkpoints, unfinished ones resume after their last finished epoch.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

from laser_train.config import ExperimentConfig, to_dict

__all__ = ["run_experiment", "format_table", "targets", "pick_run_dir", "TABLE_COLUMNS", "RATIO_KEYS",
           "summarize", "ratios_vs", "SEEDED_VARIANTS", "reference_rows", "run_jobs"]

#: (metric key, column title) of the results table, in order. ``free`` = rule-free predicates only.
TABLE_COLUMNS = (
    ("names_r1", "names R@1"),
    ("unary_r1", "unary R@1"), ("unary_r5", "unary R@5"),
    ("unary_macro_r1", "unary mR@1"), ("unary_macro_r5", "unary mR@5"),
    ("binary_r1", "binary R@1"), ("binary_r5", "binary R@5"),
    ("binary_macro_r1", "binary mR@1"), ("binary_macro_r5", "binary mR@5"),
    ("unary_free_macro_r1", "unary free mR@1"), ("binary_free_r1", "binary free R@1"),
    ("binary_free_macro_r1", "binary free mR@1"),
    ("spec_pos_acc", "spec pos acc"), ("spec_neg_acc", "spec neg acc"),
    # the fact threshold (a probability, in %) of the spec accuracy: eval.threshold or calibrated per model
    ("spec_threshold", "spec thr %"),
)
#: Columns of the other evaluation protocols (:mod:`laser_train.protocols`, ``eval.protocol``), shown when
#: the metrics have them.
PROTOCOL_COLUMNS = (
    ("laser_obj_r1", "LASER obj R@1"), ("laser_unary_r1", "LASER unary R@1"), ("laser_pair_r1", "LASER pair R@1"),
    ("laser_pair_r5", "LASER pair R@5"), ("predcls_gc_r5", "PredCls R@5"), ("predcls_nogc_r5", "PredCls ng R@5"),
    ("predcls_gc_mr5", "PredCls mR@5"), ("predcls_nogc_mr5", "PredCls ng mR@5"),
)
#: The keys whose ratio to ``prior`` is reported (recall columns; spec accuracy has no prior meaning).
RATIO_KEYS = tuple(k for k, _ in TABLE_COLUMNS + PROTOCOL_COLUMNS if "_r" in k or "_mr" in k)
#: Variants trained with every seed of ``run.seeds``.
SEEDED_VARIANTS = ("weak", "full")


def pick_run_dir(out: str, resume: bool) -> Path:
    """``out`` itself, or when it already holds a run (and we are not resuming) the first free ``out-N``."""
    path = Path(out)
    if resume or not (path / "config.json").exists():
        return path
    n = 1
    while Path(f"{out}-{n}").exists():
        n += 1
    return Path(f"{out}-{n}")


def _nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fmt(v: Any, sd: Any = None) -> str:
    if _nan(v):
        return "-"
    if sd is None or _nan(sd):
        return f"{100 * v:.1f}"
    return f"{100 * v:.1f}±{100 * sd:.1f}"


def table_columns(rows: dict[str, dict[str, float]]) -> list[tuple[str, str]]:
    """:data:`TABLE_COLUMNS` plus the :data:`PROTOCOL_COLUMNS` present in any row."""
    return list(TABLE_COLUMNS) + [(k, t) for k, t in PROTOCOL_COLUMNS if any(k in m for m in rows.values())]


def format_table(results: dict[str, dict[str, float]], times: dict[str, float] | None = None,
                 spread: dict[str, dict[str, float]] | None = None) -> str:
    """A fixed-width text table (percentages; ``mean±sd`` where ``spread`` has the row) of ``results``."""
    times, spread = times or {}, spread or {}
    cols = table_columns(results)
    widths = [max(len(title) + 2, 13 if spread else 8) for _, title in cols]
    head = f"{'':15s}" + "".join(f"{title:>{w}s}" for (_, title), w in zip(cols, widths)) + f"{'train s':>9s}"
    lines = [head, "-" * len(head)]
    for row, m in results.items():
        sd = spread.get(row, {})
        t = times.get(row)
        lines.append(f"{row:15s}" + "".join(f"{_fmt(m.get(k), sd.get(k)):>{w}s}" for (k, _), w in zip(cols, widths))
                     + (f"{t:9.1f}" if t is not None else f"{'-':>9s}"))
    return "\n".join(lines)


def summarize(per_seed: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and sample standard deviation (nan for one seed) of every numeric metric over seeds."""
    mean: dict[str, float] = {}
    sd: dict[str, float] = {}
    for k in per_seed[0]:
        vals = [m[k] for m in per_seed if isinstance(m.get(k), (int, float)) and not _nan(m.get(k))]
        if not vals:
            mean[k], sd[k] = float("nan"), float("nan")
            continue
        mean[k] = statistics.fmean(vals)
        sd[k] = statistics.stdev(vals) if len(vals) > 1 else float("nan")
    return mean, sd


def ratios_vs(results: dict[str, dict[str, float]], base: str = "prior",
              keys: tuple[str, ...] = RATIO_KEYS) -> dict[str, dict[str, float]]:
    """``results[row][k] / results[base][k]`` for every row and recall key (nan where undefined)."""
    ref = results.get(base, {})
    out: dict[str, dict[str, float]] = {}
    for row, m in results.items():
        out[row] = {}
        for k in keys:
            a, b = m.get(k), ref.get(k)
            out[row][k] = a / b if not (_nan(a) or _nan(b) or b == 0) else float("nan")
    return out


def targets(results: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The goals of the method, checked on the means (issue 11):

    * weak macro recall@1 >= 70% of full's, on unary and on binary predicates;
    * weak macro recall@1 >= 2x the prior's, on unary and on binary;
    * weak positive spec accuracy >= 80%;
    * weak binary macro recall@1 on rule-free predicates clearly (>= 1.5x) above the prior's.
    """
    out: dict[str, Any] = {}
    weak, full, prior = results.get("weak"), results.get("full"), results.get("prior")

    def check(name: str, a: float | None, b: float | None, need: float) -> None:
        if a is None or b is None or _nan(a) or _nan(b) or b == 0:
            return
        out[name] = a / b
        out[f"{name}_met"] = bool(a / b >= need)
        out[f"{name}_target"] = need

    for kind in ("unary", "binary"):
        key = f"{kind}_macro_r1"
        check(f"{kind}_weak_over_full", (weak or {}).get(key), (full or {}).get(key), 0.7)
        check(f"{kind}_weak_over_prior", (weak or {}).get(key), (prior or {}).get(key), 2.0)
    check("binary_free_weak_over_prior", (weak or {}).get("binary_free_macro_r1"),
          (prior or {}).get("binary_free_macro_r1"), 1.5)
    if weak and not _nan(weak.get("spec_pos_acc")):
        out["weak_spec_pos_acc"] = weak["spec_pos_acc"]
        out["weak_spec_pos_acc_met"] = bool(weak["spec_pos_acc"] >= 0.8)
        out["weak_spec_pos_acc_target"] = 0.8
    return out


def _target_lines(goal: dict[str, Any]) -> list[str]:
    names = {"unary_weak_over_full": "unary mR@1 weak / full", "binary_weak_over_full": "binary mR@1 weak / full",
             "unary_weak_over_prior": "unary mR@1 weak / prior", "binary_weak_over_prior": "binary mR@1 weak / prior",
             "binary_free_weak_over_prior": "rule-free binary mR@1 weak / prior",
             "weak_spec_pos_acc": "weak positive spec accuracy"}
    lines = []
    for k, title in names.items():
        if k in goal:
            lines.append(f"{title} = {goal[k]:.2f} (target >= {goal[f'{k}_target']:.2f}: "
                         f"{'met' if goal[f'{k}_met'] else 'NOT met'})")
    return lines


def run_experiment(cfg: ExperimentConfig) -> dict[str, Any]:
    """Prepare once, train every variant (and seed), evaluate, write the run directory; returns metrics."""
    import contextlib

    from laser_train import train as T

    _, dist = T.start(cfg)
    # Under torchrun every rank trains, only rank 0 writes files and prints (laser_train.distributed).
    quiet = contextlib.nullcontext() if dist.is_main else contextlib.redirect_stdout(open(os.devnull, "w"))
    with T.torch_settings(cfg), quiet:
        return _run_experiment(cfg)


def _seed_config(cfg: ExperimentConfig, seed: int) -> ExperimentConfig:
    from laser_train.config import from_dict

    out = from_dict(to_dict(cfg))
    out.train.seed = seed
    return out


def reference_rows(setup: Any, cfg: ExperimentConfig, test_loader: Any = None
                   ) -> tuple[dict[str, list[dict[str, float]]], Any]:
    """The rows that need no training, each a one-element list of metrics: ``chance`` and ``prior`` (when
    the held-out and training data have ground truth). Also returns the fitted prior (None without).
    Shared by the main job and ``python -m laser_train compare``."""
    from laser_train import train as T
    from laser_train.data.dataset import make_loader
    from laser_train.evaluate import PriorModel, chance_metrics, evaluate_model, rule_free_predicates

    rows: dict[str, list[dict[str, float]]] = {}
    test = setup.test
    if not test.has_ground_truth:
        return rows, None
    free = rule_free_predicates([setup.supervision.specs[i] for i in setup.background_ids], setup.vocabulary)
    chance = chance_metrics(test, cfg.eval.ks, free)
    chance.update(spec_accuracy=0.5, spec_pos_acc=0.5, spec_neg_acc=0.5, spec_threshold=float("nan"))
    rows["chance"] = [chance]
    prior = None
    if setup.train.has_ground_truth:
        if test_loader is None:
            test_loader = make_loader(test, 64, num_workers=cfg.data.num_workers,
                                      prefetch_factor=cfg.data.prefetch_factor)
        prior = PriorModel(setup.vocabulary).fit(make_loader(setup.train, 64, num_workers=cfg.data.num_workers,
                                                             prefetch_factor=cfg.data.prefetch_factor))
        threshold, _ = T.spec_threshold(prior, setup, cfg)
        rows["prior"] = [evaluate_model(prior, test_loader, setup.supervision, setup.test_negatives,
                                        cfg.eval.ks, threshold, cfg.eval.protocol, rule_free=free)]
        rows["prior"][0]["spec_threshold"] = threshold
    return rows, prior


def _run_experiment(cfg: ExperimentConfig) -> dict[str, Any]:
    from laser_train import train as T
    from laser_train.data.dataset import make_loader
    from laser_train.evaluate import per_predicate_recall, rule_free_predicates

    t_start, cpu_start = time.perf_counter(), cpu_seconds()
    _, dist = T.start(cfg)
    run_dir = dist.broadcast(pick_run_dir(cfg.run.out, cfg.run.resume) if dist.is_main else None)
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n", encoding="utf-8")
    progress = cfg.train.progress
    print(f"run directory: {run_dir}")
    setup = T.prepare(cfg, progress)
    print(f"data: {setup.root} ({len(setup.train)} train / {len(setup.test)} held-out videos, "
          f"{len(setup.supervision.specs)} specs compiled)")
    voc = setup.vocabulary
    background = [setup.supervision.specs[i] for i in setup.background_ids]
    free = rule_free_predicates(background, voc)
    seeds = tuple(cfg.run.seeds) or (cfg.train.seed,)
    per_seed: dict[str, list[dict[str, float]]] = {}
    times_seed: dict[str, list[float]] = {}
    histories: dict[str, list] = {}
    models: dict[str, Any] = {}
    per_predicate: dict[str, dict[str, dict[str, float]]] = {}
    test = setup.test
    test_loader = make_loader(test, 64, num_workers=cfg.data.num_workers, prefetch_factor=cfg.data.prefetch_factor)
    reference, prior = reference_rows(setup, cfg, test_loader)
    per_seed.update(reference)
    if prior is not None:
        times_seed["prior"] = [0.0]
        per_predicate["prior"] = per_predicate_recall(prior, test_loader)
    variants = ("untrained",) + tuple(v for v in cfg.run.variants if v != "untrained")
    jobs = [(variant, seed, run_dir / (variant if seed == seeds[0] else f"{variant}-seed{seed}"))
            for variant in variants for seed in (seeds if variant in SEEDED_VARIANTS else seeds[:1])]
    for (variant, seed, out_dir), res in zip(jobs, run_jobs(cfg, setup, jobs)):
        per_seed.setdefault(variant, []).append(res["metrics"])
        times_seed.setdefault(variant, []).append(res["train_time_s"])
        if seed == seeds[0]:
            histories[variant] = res["history"]
            models[variant] = res["model"]
            if variant in SEEDED_VARIANTS and test.has_ground_truth:
                per_predicate[variant] = per_predicate_recall(res["model"], test_loader)
    results: dict[str, dict[str, float]] = {}
    spread: dict[str, dict[str, float]] = {}
    for row, runs in per_seed.items():
        results[row], spread[row] = summarize(runs)
    times = {row: statistics.fmean(v) for row, v in times_seed.items()}
    ratios = ratios_vs(results, "prior") if "prior" in results else {}
    notes: dict[str, Any] = {}
    if test.has_ground_truth:
        notes["spec_accuracy_on_true_scene_graphs"] = _truth_spec_accuracy(setup, test_loader)
        if "prior" in per_predicate:
            notes["predicate_share"] = {k: per_predicate["prior"][f"{k}_share"] for k in ("unary", "binary")}
    table = format_table(results, times, {r: s for r, s in spread.items() if len(per_seed[r]) > 1})
    goal = targets(results)
    print()
    print(table)
    print()
    if "prior" in ratios and ratios.get("weak"):
        print("ratios to prior (macro R@1): " + ", ".join(
            f"{row} unary {ratios[row]['unary_macro_r1']:.2f} binary {ratios[row]['binary_macro_r1']:.2f}"
            for row in ("weak", "full") if row in ratios))
    for line in _target_lines(goal):
        print(line)
    if "spec_accuracy_on_true_scene_graphs" in notes:
        ceiling = notes["spec_accuracy_on_true_scene_graphs"]
        print(f"spec accuracy of the true scene graphs (ceiling): pos {100 * ceiling['spec_pos_acc']:.1f}, "
              f"neg {100 * ceiling['spec_neg_acc']:.1f}")
    names = lambda idx, all_: [all_[i] for i in idx]  # noqa: E731
    metrics = {
        "run_dir": str(run_dir), "dataset": str(setup.root),
        "columns": [list(c) for c in table_columns(results)],
        "rows": {row: {"mean": results[row], "sd": spread[row], "seeds": _row_seeds(row, seeds),
                       "per_seed": per_seed[row], "train_time_s": times.get(row),
                       "train_time_s_per_seed": times_seed.get(row)} for row in results},
        "results": results, "spread": spread, "ratio_base": "prior", "ratios_vs_prior": ratios,
        "targets": goal, "seeds": list(seeds), "videos": {"train": len(setup.train), "test": len(test)},
        "rule_free": {"unary": names(free["unary"], voc.unary_names),
                      "binary": names(free["binary"], voc.binary_names)},
        "rule_constrained": {"unary": [p for p in voc.unary_names if p not in names(free["unary"], voc.unary_names)],
                             "binary": [p for p in voc.binary_names
                                        if p not in names(free["binary"], voc.binary_names)]},
        "per_predicate_r1": per_predicate, "train_time_s": times, "timings": setup.timings, **notes,
        "histories": {k: [{kk: vv for kk, vv in h.items() if kk != "step_losses"} for h in v]
                      for k, v in histories.items()},
        "config": to_dict(cfg),
    }
    if not dist.is_main:
        return metrics
    if not dist.is_main:
        return metrics
    if cfg.run.plots:
        from laser_train import plots

        t0 = time.perf_counter()
        files = plots.make_all(run_dir / "plots", setup, models, histories, metrics, cfg)
        metrics["plots"] = [str(f) for f in files]
        setup.timings["plots_s"] = time.perf_counter() - t0
    setup.timings["total_s"] = time.perf_counter() - t_start
    setup.timings["total_cpu_s_with_workers"] = cpu_seconds() - cpu_start  # this process and its workers
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    setup.timings["load_average_end"] = list(load)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {run_dir}/metrics.json, checkpoints and plots")
    print(f"wall time {setup.timings['total_s']:.0f} s ({setup.timings['total_s'] / 60:.1f} min), CPU time "
          f"{setup.timings['total_cpu_s_with_workers']:.0f} s (with the training workers), load average at the end "
          f"{load[0]:.1f}")
    return metrics


_SETUP: Any = None  # the prepared setup, inherited by forked worker processes


def _job(args: tuple) -> dict[str, Any]:
    """One training run (in a worker process: single-threaded, no progress bars); the model stays on disk."""
    from laser_train import train as T

    cfg, variant, seed, out_dir, progress = args
    t0 = time.perf_counter()
    res = T.main(_seed_config(cfg, seed), variant, out_dir, setup=_SETUP, resume=cfg.run.resume, progress=progress)
    res.pop("model")
    res["wall_s"] = time.perf_counter() - t0
    return res


def _report(variant: str, seed: int, res: dict[str, Any]) -> None:
    if variant == "untrained":
        return
    m = res["metrics"]
    print(f"  {variant:15s} seed {seed}: unary mR@1 {_fmt(m.get('unary_macro_r1'))}  binary mR@1 "
          f"{_fmt(m.get('binary_macro_r1'))}  names R@1 {_fmt(m.get('names_r1'))}  spec pos "
          f"{_fmt(m.get('spec_pos_acc'))}  ({res['wall_s']:.0f} s)", flush=True)


def run_jobs(cfg: ExperimentConfig, setup, jobs: list[tuple[str, int, Path]]) -> list[dict[str, Any]]:
    """Train every (variant, seed) job, on ``run.workers`` forked processes; results in job order.

    Every run is seeded and single-threaded, so the results are the same however many workers run
    them. The parent reloads each model from its checkpoint (for plots and per-predicate recall).
    """
    global _SETUP
    from laser_train import train as T
    from laser_train.checkpoint import load_checkpoint
    from laser_train.model import build_model

    _, dist = T.start(cfg)
    # under torchrun every run is already spread over the ranks: run them one after another
    workers = 1 if dist.enabled else max(1, min(cfg.run.workers, len(jobs)))
    out = []
    _SETUP = setup
    try:
        if workers == 1:
            for variant, seed, out_dir in jobs:
                res = _job((cfg, variant, seed, out_dir, cfg.train.progress))
                _report(variant, seed, res)
                out.append(res)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            print(f"training {len(jobs)} runs on {workers} worker processes", flush=True)
            # Longest first, so that no long run starts last while the other workers idle; results
            # are reported as they finish and returned in job order.
            from concurrent.futures import as_completed

            longest_first = sorted(range(len(jobs)), key=lambda j: -_relative_cost(jobs[j][0]))
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
                submitted = {pool.submit(_job, (cfg, *jobs[j], False)): j for j in longest_first}
                done: dict[int, dict[str, Any]] = {}
                for fut in as_completed(submitted):
                    j = submitted[fut]
                    done[j] = fut.result()
                    _report(jobs[j][0], jobs[j][1], done[j])
                out = [done[j] for j in range(len(jobs))]
    finally:
        _SETUP = None
    for (variant, seed, out_dir), res in zip(jobs, out):
        model = build_model(cfg.model, setup.vocabulary, cfg.data.crop_size)
        model.load_state_dict(load_checkpoint(out_dir / "checkpoint.pt")["model"])
        res["model"] = model
    return out


def _relative_cost(variant: str) -> float:
    """Rough training cost of a variant, for ordering the jobs: no training, supervised (no spec
    evaluation: about half a weak run, measured on the default world), every spec-trained variant."""
    return {"untrained": 0.0, "full": 0.5}.get(variant, 1.0)


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have finished (the training workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _row_seeds(row: str, seeds: tuple[int, ...]) -> list[int]:
    if row in ("chance", "prior"):
        return []
    return list(seeds if row in SEEDED_VARIANTS else seeds[:1])


def _truth_spec_accuracy(setup, loader) -> dict[str, float]:
    """Spec accuracy of the ground-truth scene graphs themselves: the ceiling of those columns."""
    from laser_train.evaluate import spec_accuracy

    graphs = lambda b: (b["gt_names"], b["gt_unary"], b["gt_binary"])  # noqa: E731
    return spec_accuracy(setup.supervision, graphs, loader, setup.test_negatives)
