"""``python -m laser_train compare``: the embedding baselines beside LASER's objective.

Every row trains the **same perception model** (``model.name``) from the same
initialisation (``train.seed``) on the **same batches** of the same prepared
data, and is evaluated by the same code on the same held-out videos; only the
objective differs (:mod:`laser_train.objectives`). Rows:

=================== ===========================================================================
``chance``          a uniformly random ranking (exact)
``prior``           training-set predicate frequencies per true category (no pixels, no time)
``untrained``       the model at initialisation
``svilm``           S-ViLM's objective (global contrast, spatial grounding, temporal grouping)
``finsta``          Finsta's objective (object-centred spatial, predicate-centred temporal alignment)
``hero``            HERO's objective (contrastive action correspondence + object retrieval)
``laser``           LASER's objective: the specs (the ``weak`` variant of the main job)
``laser+<best>``    LASER's objective plus the best baseline's (by mean unary/binary macro R@1)
``full``            the hidden ground-truth scene graphs (the upper bound)
=================== ===========================================================================

Every trained row runs with each seed of ``run.seeds`` (mean ± sd over seeds).
The run directory gets ``metrics.json`` (every row: mean, sd, per-seed metrics,
train time; the best baseline; where LASER wins and where not; wall and CPU
time with the load average) and one checkpoint per row and seed.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from laser_train.config import ExperimentConfig, to_dict

__all__ = ["run_compare", "COMPARE_KEYS", "verdict"]

#: The columns the comparison is decided on (macro recall@1: every predicate counts equally).
COMPARE_KEYS = ("unary_macro_r1", "binary_macro_r1")


def _row_name(variant: str) -> str:
    if variant == "weak":
        return "laser"
    if variant.startswith("weak+"):
        return "laser+" + variant[5:]
    return variant


def verdict(results: dict[str, dict[str, float]], spread: dict[str, dict[str, float]],
            baselines: tuple[str, ...], keys: tuple[str, ...] = COMPARE_KEYS) -> dict[str, Any]:
    """Where LASER's objective wins and where not: for each baseline and key, the difference of the means
    and whether it exceeds the two rows' combined sd (``clear``) or not (``within noise``)."""
    laser, laser_sd = results.get("laser", {}), spread.get("laser", {})
    out: dict[str, Any] = {}
    for b in baselines:
        if b not in results:
            continue
        for k in keys:
            a, c = laser.get(k), results[b].get(k)
            if a is None or c is None or a != a or c != c:
                continue
            sa, sb = laser_sd.get(k, float("nan")), spread.get(b, {}).get(k, float("nan"))
            noise = (sa ** 2 + sb ** 2) ** 0.5  # nan with one seed: no spread to judge by
            diff = a - c
            if abs(diff) < 5e-4:
                outcome = "tie"
            else:
                outcome = "laser ahead" if diff > 0 else "baseline ahead"
                outcome += (" (one seed, no spread)" if noise != noise
                            else " (clear)" if abs(diff) > noise else " (within noise)")
            out[f"{b}.{k}"] = {"laser": a, "baseline": c, "difference": diff, "noise": noise, "outcome": outcome}
    out["laser_ahead_of_every_baseline"] = bool(out) and all(
        v["difference"] > 0 for k, v in out.items() if isinstance(v, dict))
    return out


def run_compare(cfg: ExperimentConfig) -> dict[str, Any]:
    """Prepare once, train every row with every seed, write ``RUN/metrics.json``; returns the metrics."""
    from laser_train import train as T

    with T.torch_settings(cfg):
        return _run_compare(cfg)


def _run_compare(cfg: ExperimentConfig) -> dict[str, Any]:
    from laser_train import train as T
    from laser_train.experiment import (cpu_seconds, format_table, pick_run_dir, ratios_vs, reference_rows, run_jobs,
                                        summarize)

    t_start, cpu_start = time.perf_counter(), cpu_seconds()
    run_dir = pick_run_dir(cfg.run.out, cfg.run.resume)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n", encoding="utf-8")
    print(f"run directory: {run_dir}")
    setup = T.prepare(cfg, cfg.train.progress)
    print(f"data: {setup.root} ({len(setup.train)} train / {len(setup.test)} held-out videos)")
    seeds = tuple(cfg.run.seeds) or (cfg.train.seed,)
    reference, prior = reference_rows(setup, cfg)  # chance and prior: the same code as the main job's table
    per_seed: dict[str, list[dict[str, float]]] = dict(reference)
    times_seed: dict[str, list[float]] = {"prior": [0.0]} if prior is not None else {}
    baselines = T.BASELINES

    def train_rows(variants: tuple[str, ...]) -> None:
        """Every seed of every variant, on run.workers processes (the main job's runner)."""
        jobs = [(v, seed, run_dir / f"{_row_name(v)}-seed{seed}") for v in variants for seed in seeds]
        for (variant, _, _), res in zip(jobs, run_jobs(cfg, setup, jobs)):
            per_seed.setdefault(_row_name(variant), []).append(res["metrics"])
            times_seed.setdefault(_row_name(variant), []).append(res["train_time_s"])

    train_rows(("untrained", *baselines, "weak"))

    def score(row: str) -> float:
        mean, _ = summarize(per_seed[row])
        return statistics.fmean(mean.get(k, 0.0) for k in COMPARE_KEYS)

    best = max(baselines, key=score)
    print(f"best baseline by mean macro R@1: {best}", flush=True)
    train_rows((f"weak+{best}", "full"))
    order = [r for r in ("chance", "prior", "untrained", *baselines, "laser", f"laser+{best}", "full")
             if r in per_seed]
    results, spread = {}, {}
    for row in order:
        results[row], spread[row] = summarize(per_seed[row])
    times = {row: statistics.fmean(v) for row, v in times_seed.items()}
    table = format_table(results, times, {r: s for r, s in spread.items() if len(per_seed[r]) > 1})
    judged = verdict(results, spread, baselines)
    wall, cpu = time.perf_counter() - t_start, cpu_seconds() - cpu_start
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print()
    print(table)
    print()
    for k, v in judged.items():
        if isinstance(v, dict):
            print(f"laser vs {k}: {100 * v['laser']:.1f} vs {100 * v['baseline']:.1f} -> {v['outcome']}")
    print(f"LASER's objective ahead of every baseline on unary and binary macro R@1: "
          f"{'yes' if judged['laser_ahead_of_every_baseline'] else 'NO'}")
    print(f"wall time {wall:.0f} s ({wall / 60:.1f} min), CPU time {cpu:.0f} s (with the training workers), "
          f"load average {load[0]:.1f}")
    metrics = {
        "run_dir": str(run_dir), "dataset": str(setup.root), "seeds": list(seeds), "best_baseline": best,
        "rows": {row: {"mean": results[row], "sd": spread[row], "per_seed": per_seed[row],
                       "seeds": [] if row in ("chance", "prior") else list(seeds),
                       "train_time_s": times.get(row), "train_time_s_per_seed": times_seed.get(row)}
                 for row in order},
        "results": results, "spread": spread, "ratios_vs_prior": ratios_vs(results, "prior") if "prior" in results
        else {}, "verdict": judged, "table": table,
        "timings": {**setup.timings, "total_s": wall, "total_cpu_s_with_workers": cpu,
                    "load_average_end": list(load)},
        "config": to_dict(cfg),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {run_dir}/metrics.json")
    return metrics
