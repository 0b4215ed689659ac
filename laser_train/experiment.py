"""The main job: one run directory, every variant, one results table.

``python -m laser_train`` (no arguments) calls :func:`run_experiment` on the
embedded defaults: it prepares the data once (the synthetic world unless
``data.path`` is set), trains each variant of ``run.variants`` from the same
initialisation on the same data, evaluates all of them on the same held-out
videos, and writes::

    RUN/config.json          the resolved configuration
    RUN/metrics.json         results table, targets, timings, per-variant histories
    RUN/<variant>/checkpoint.pt, RUN/<variant>/metrics.json
    RUN/plots/*.png          loss curves, results bars, scene-graph timelines, frame grids

Rows of the table: ``chance`` (a random ranking, computed exactly), ``untrained``
(the initial model), then the variants. With ``run.resume`` an existing run
directory is continued: finished variants are re-evaluated from their
checkpoints, unfinished ones resume after their last finished epoch.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from laser_train.config import ExperimentConfig, to_dict

__all__ = ["run_experiment", "format_table", "targets", "pick_run_dir", "TABLE_COLUMNS"]

#: (metric key, column title) of the printed table.
TABLE_COLUMNS = (
    ("names_r1", "names R@1"), ("unary_r1", "unary R@1"), ("unary_r5", "unary R@5"),
    ("unary_macro_r1", "unary mR@1"), ("binary_r1", "binary R@1"), ("binary_r5", "binary R@5"),
    ("binary_macro_r1", "binary mR@1"), ("spec_accuracy", "spec acc"),
)


def pick_run_dir(out: str, resume: bool) -> Path:
    """``out`` itself, or when it already holds a run (and we are not resuming) the first free ``out-N``."""
    path = Path(out)
    if resume or not (path / "config.json").exists():
        return path
    n = 1
    while Path(f"{out}-{n}").exists():
        n += 1
    return Path(f"{out}-{n}")


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:5.1f}"


def format_table(results: dict[str, dict[str, float]], times: dict[str, float] | None = None) -> str:
    """A fixed-width text table (percentages) of ``results`` rows."""
    times = times or {}
    head = f"{'':16s}" + "".join(f"{title:>12s}" for _, title in TABLE_COLUMNS) + f"{'train s':>10s}"
    lines = [head, "-" * len(head)]
    for row, m in results.items():
        t = times.get(row)
        lines.append(f"{row:16s}" + "".join(f"{_fmt(m.get(k)):>12s}" for k, _ in TABLE_COLUMNS)
                     + (f"{t:10.1f}" if t is not None else f"{'-':>10s}"))
    return "\n".join(lines)


def targets(results: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The issue's targets: weak R@1 >= 70% of full and >= 3x chance, on unary and on binary predicates."""
    out: dict[str, Any] = {}
    weak, full, chance = results.get("weak"), results.get("full"), results.get("chance")
    for kind in ("unary", "binary"):
        key = f"{kind}_r1"
        if weak and full and full.get(key):
            ratio = weak[key] / full[key]
            out[f"{kind}_weak_over_full"] = ratio
            out[f"{kind}_weak_over_full_met"] = ratio >= 0.7
        if weak and chance and chance.get(key):
            ratio = weak[key] / chance[key]
            out[f"{kind}_weak_over_chance"] = ratio
            out[f"{kind}_weak_over_chance_met"] = ratio >= 3.0
    return out


def run_experiment(cfg: ExperimentConfig) -> dict[str, Any]:
    """Prepare once, train every variant, evaluate, write the run directory; returns the metrics dict."""
    import contextlib
    import os

    from laser_train import train as T

    _, dist = T.start(cfg)
    # Under torchrun every rank trains, only rank 0 writes files and prints (laser_train.distributed).
    quiet = contextlib.nullcontext() if dist.is_main else contextlib.redirect_stdout(open(os.devnull, "w"))
    with T.torch_settings(cfg), quiet:
        return _run_experiment(cfg)


def _run_experiment(cfg: ExperimentConfig) -> dict[str, Any]:
    from laser_train import train as T
    from laser_train.evaluate import chance_metrics

    t_start = time.perf_counter()
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
    results: dict[str, dict[str, float]] = {}
    times: dict[str, float] = {}
    histories: dict[str, list] = {}
    models: dict[str, Any] = {}
    if setup.test.has_ground_truth:
        results["chance"] = chance_metrics(setup.test, cfg.eval.ks)
        results["chance"].update(spec_accuracy=0.5, spec_pos_acc=0.5, spec_neg_acc=0.5)
    for variant in ("untrained",) + tuple(v for v in cfg.run.variants if v != "untrained"):
        t0 = time.perf_counter()
        res = T.main(cfg, variant, run_dir / variant, setup=setup, resume=cfg.run.resume, progress=progress)
        results[variant] = res["metrics"]
        times[variant] = res["train_time_s"]
        histories[variant] = res["history"]
        models[variant] = res["model"]
        if variant != "untrained":
            m = res["metrics"]
            print(f"  {variant:16s} unary R@1 {_fmt(m.get('unary_r1'))}  binary R@1 {_fmt(m.get('binary_r1'))}"
                  f"  names R@1 {_fmt(m.get('names_r1'))}  ({time.perf_counter() - t0:.0f} s)")
    if setup.test.has_ground_truth:
        truth = _truth_spec_accuracy(setup)
        results_note = {"spec_accuracy_on_true_scene_graphs": truth}
    else:
        results_note = {}
    table = format_table(results, times)
    goal = targets(results)
    print()
    print(table)
    print()
    for kind in ("unary", "binary"):
        if f"{kind}_weak_over_full" in goal:
            print(f"{kind}: weak/full R@1 = {goal[f'{kind}_weak_over_full']:.2f} (target >= 0.70: "
                  f"{'met' if goal[f'{kind}_weak_over_full_met'] else 'NOT met'}), weak/chance = "
                  f"{goal[f'{kind}_weak_over_chance']:.1f}x (target >= 3x: "
                  f"{'met' if goal[f'{kind}_weak_over_chance_met'] else 'NOT met'})")
    if results_note:
        ceiling = results_note["spec_accuracy_on_true_scene_graphs"]
        print(f"spec accuracy of the true scene graphs (ceiling): {100 * ceiling:.1f}")
    metrics = {
        "run_dir": str(run_dir), "dataset": str(setup.root), "results": results, "targets": goal,
        "train_time_s": times, "timings": setup.timings, **results_note,
        "histories": {k: [{kk: vv for kk, vv in h.items() if kk != "step_losses"} for h in v]
                      for k, v in histories.items()},
        "config": to_dict(cfg),
    }
    if not dist.is_main:
        return metrics
    if cfg.run.plots:
        from laser_train import plots

        t0 = time.perf_counter()
        files = plots.make_all(run_dir / "plots", setup, models, histories, results, cfg)
        metrics["plots"] = [str(f) for f in files]
        setup.timings["plots_s"] = time.perf_counter() - t0
    setup.timings["total_s"] = time.perf_counter() - t_start
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {run_dir}/metrics.json, checkpoints and plots in {setup.timings['total_s']:.0f} s")
    return metrics


def _truth_spec_accuracy(setup) -> float:
    """Spec accuracy of the ground-truth scene graphs themselves: the ceiling of the metric."""
    from laser_train import train as T
    from laser_train.evaluate import truth_spec_accuracy

    loader = T.data_loader(setup, setup.cfg, "test", batch_size=64)
    return truth_spec_accuracy(setup.supervision, loader, setup.test_negatives)
