"""Benchmark: where a weakly supervised training step spends its time.

Prints one JSON object per batch size with the median over ``--steps`` steps of

* ``step_s``        a whole training step (forward, spec losses, backward, optimizer);
* ``perception_s``  the perception model alone: forward and backward of a surrogate loss on its outputs;
* ``spec_eval_s``   the spec losses alone (torch backend): forward and backward from the scene-graph
                    probabilities (a detached leaf) — positives with witnesses, negatives, background rules;
* ``rest_s``        what is left (optimizer, batching, bookkeeping) = step − perception − spec evaluation;
* ``spec_fraction`` spec_eval_s / step_s.

Usage: ``python bench/train_step.py [--steps 20] [--batch-sizes 16,32] [--threads 1]`` (uses the
default synthetic dataset of ``python -m laser_train``, generating it on first use); ``--quick`` is a smoke
run on a tiny dataset (used by CI).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-sizes", default="16,32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/default", help="run.out (the synthetic data is cached next to it)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: a 24-video synthetic dataset in a temporary folder, 2 steps at batch 4")
    args = ap.parse_args()
    overrides = [f"--run.out={args.out}", "--train.progress=false"]
    if args.quick:
        import tempfile

        args.steps, args.batch_sizes = 2, "4"
        overrides = [f"--run.out={tempfile.mkdtemp()}/runs", "--train.progress=false", "--data.num_train=16",
                     "--data.num_test=8", "--data.num_negatives=2"]
    torch.set_num_threads(args.threads)

    from laser_train import train as T
    from laser_train.config import load_config
    from laser_train.losses import weak_loss

    cfg = load_config(None, overrides)
    setup = T.prepare(cfg, progress=not args.quick)
    vcfg = T.variant_config(cfg, "weak")
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        model, opt, sched = T.build(vcfg, setup, 100)
        rng = np.random.default_rng(0)
        gen = torch.Generator().manual_seed(0)
        rows = {"step_s": [], "perception_s": [], "spec_eval_s": []}
        for i in range(args.steps + 2):  # two warm-up steps
            index = torch.randperm(len(setup.train), generator=gen)[:bs]
            batch = setup.train.batch(index)
            work = T._weak_work(setup, vcfg, index, rng)
            t0 = time.perf_counter()
            loss, _ = weak_loss(setup.supervision, model(batch).probs(), batch, work, vcfg.loss.weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            t1 = time.perf_counter()
            scores = model(batch)
            surrogate = sum(p.sum() for p in scores.probs())
            opt.zero_grad()
            surrogate.backward()
            t2 = time.perf_counter()
            probs = tuple(p.detach().requires_grad_(True) for p in scores.probs())
            loss, _ = weak_loss(setup.supervision, probs, batch, work, vcfg.loss.weights)
            loss.backward()
            t3 = time.perf_counter()
            if i >= 2:
                rows["step_s"].append(t1 - t0)
                rows["perception_s"].append(t2 - t1)
                rows["spec_eval_s"].append(t3 - t2)
        med = {k: statistics.median(v) for k, v in rows.items()}
        med["rest_s"] = max(med["step_s"] - med["perception_s"] - med["spec_eval_s"], 0.0)
        print(json.dumps({
            "workload": "laser_train weak step", "batch_size": bs, "frames": cfg.data.num_frames,
            "max_tracks": setup.train.max_tracks, "negatives_per_video": vcfg.loss.num_negatives,
            "background_specs": len(setup.background_ids), "threads": args.threads,
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "steps": args.steps,
            **{k: round(v, 5) for k, v in med.items()},
            "spec_fraction": round(med["spec_eval_s"] / med["step_s"], 3),
            "videos_per_s": round(bs / med["step_s"], 1),
        }))


if __name__ == "__main__":
    main()
