"""Benchmark: where a weakly supervised training step spends its time.

Prints one JSON object per batch size with the median over ``--steps`` steps of

* ``step_s``        a whole training step (forward, spec losses, backward, optimizer);
* ``perception_s``  the perception model alone: forward and backward of a surrogate loss on its outputs;
* ``spec_eval_s``   the spec losses alone (torch backend): forward and backward from the scene-graph
                    probabilities (a detached leaf) — positives with witnesses, negatives, background rules —
                    host-side planning included (cached plans are dropped before each timed region, as a
                    step on a new batch never finds its layout cached);
* ``rest_s``        what is left (optimizer, batching, bookkeeping) = step − perception − spec evaluation;
* ``spec_fraction`` spec_eval_s / step_s.

Each is measured by wall time and, with the suffix ``_cpu``, by the calling thread's CPU time
(``time.thread_time``: with ``--threads 1`` all the work, and the number to trust on a shared machine);
``load_avg`` is the 1-minute load average. With ``--engines v2,v2-generic,v1`` the spec losses of every
step are also evaluated by the engine without its fused kernel (``fused=False``) and by the superseded
engine v1 (same inputs, alternating), giving ``spec_eval_s_v2_generic``, ``spec_eval_s_v1`` and their
ratios over v2 (``spec_eval_ratio_*_over_v2_cpu``); the step itself always uses the default engine (v2). Batches and spec
work are prepared before the timed regions.

Usage: ``python bench/train_step.py [--steps 20] [--batch-sizes 16,32] [--threads 1] [--engines v2,v2-generic,v1]``
(uses the default synthetic dataset of ``python -m laser_train``, generating it on first use; ``--set
data.num_train=100`` and the like override the configuration); ``--quick`` is a smoke run on a tiny dataset
(used by CI).
"""

from __future__ import annotations

import argparse
import json
import os
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
    ap.add_argument("--engines", default="v2",
                    help="v2, or v2,v2-generic,v1 to time the spec losses of the engine without its fused kernel "
                         "(fused=False) and of the superseded engine side by side")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="configuration override, e.g. --set data.num_train=100 (repeatable)")
    ap.add_argument("--system-malloc", action="store_true",
                    help="leave the C library's malloc as it is (default: keep freed memory, as training does)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: a 24-video synthetic dataset in a temporary folder, 2 steps at batch 4")
    args = ap.parse_args()
    overrides = [f"--run.out={args.out}", "--train.progress=false"] + [f"--{kv}" for kv in args.set]
    if args.quick:
        import tempfile

        args.steps, args.batch_sizes = 2, "4"
        overrides = [f"--run.out={tempfile.mkdtemp()}/runs", "--train.progress=false", "--data.world=toy", "--data.num_train=16",
                     "--data.num_test=8", "--data.num_negatives=2"]
        args.engines = "v2,v2-generic,v1"
    torch.set_num_threads(args.threads)
    kept = False
    if not args.system_malloc:  # as python -m laser_train does (train.keep_freed_memory)
        from stlspec.backends.torch.memory import keep_freed_memory

        kept = keep_freed_memory()

    from laser_train import train as T
    from laser_train.config import load_config
    from laser_train.losses import weak_loss

    cfg = load_config(None, overrides)
    setup = T.prepare(cfg, progress=not args.quick)
    vcfg = T.variant_config(cfg, "weak")
    sup = setup.supervision
    engines = [e for e in args.engines.split(",") if e]
    evaluators = {}
    if set(engines) - {"v2"}:
        # The supervision object compiles its evaluator lazily; put the engines' evaluators side by side.
        from stlspec.backends.torch import Columns, compile_specs

        ev2 = sup.evaluator()
        opts = {"temperature": sup.temperature} if sup.logic == "smooth" else {}
        columns = Columns.from_vocabulary(sup.vocabulary)
        evaluators = {"v2": ev2}
        for e in engines:
            if e == "v1":
                evaluators[e] = compile_specs(tuple(sup.specs), columns, logic=sup.logic, engine="v1", **opts)
            elif e == "v2-generic":
                evaluators[e] = compile_specs(tuple(sup.specs), columns, logic=sup.logic, fused=False, **opts)

    def use(engine):
        if evaluators:
            sup._compiled[sup.logic] = (len(sup.specs), evaluators[engine])

    def fresh():
        # A training step meets a new layout of instances every step (its batch is a new draw of videos),
        # so its plans are never cached: drop them before every timed spec evaluation, or the second
        # evaluation of the same work would be timed without its host-side planning.
        for ev in (evaluators.values() if evaluators else [sup.evaluator()]):
            clear = getattr(ev, "clear_plans", None)
            if clear is not None:
                clear()

    def timed(fn):
        fresh()
        w0, c0 = time.perf_counter(), time.thread_time()
        out = fn()
        return out, time.perf_counter() - w0, time.thread_time() - c0

    for bs in (int(b) for b in args.batch_sizes.split(",")):
        model, opt, sched = T.build(vcfg, setup, 100)
        rng = np.random.default_rng(0)
        gen = torch.Generator().manual_seed(0)
        rows: dict[str, list] = {}
        frames = 0  # the longest video seen (cfg.data.num_frames is 0 for "every frame")

        def add(key, wall, cpu):
            rows.setdefault(key, []).append(wall)
            rows.setdefault(key + "_cpu", []).append(cpu)

        for i in range(args.steps + 2):  # two warm-up steps
            index = torch.randperm(len(setup.train), generator=gen)[:bs]
            batch = setup.train.batch(index)
            frames = max(frames, int(batch["frame_mask"].sum(1).max()))
            work = T._weak_work(setup, vcfg, index, rng)
            use("v2")

            def step():
                loss, _ = weak_loss(sup, model(batch).probs(), batch, work, vcfg.loss.weights)
                opt.zero_grad()
                loss.backward()
                opt.step()

            def perception():
                scores = model(batch)
                surrogate = sum(p.sum() for p in scores.probs())
                opt.zero_grad()
                surrogate.backward()
                return scores

            _, w_step, c_step = timed(step)
            scores, w_per, c_per = timed(perception)
            spec = {}
            for e in (engines if evaluators else ["v2"]):
                use(e)
                probs = tuple(p.detach().requires_grad_(True) for p in scores.probs())

                def spec_eval():
                    loss, _ = weak_loss(sup, probs, batch, work, vcfg.loss.weights)
                    loss.backward()
                    return float(loss.detach())

                value, w_spec, c_spec = timed(spec_eval)
                spec[e] = (value, w_spec, c_spec)
            use("v2")
            for e in spec:  # every engine computed the same loss
                assert abs(spec[e][0] - spec["v2"][0]) <= 1e-6 * max(1.0, abs(spec["v2"][0])), spec
            if i >= 2:
                add("step_s", w_step, c_step)
                add("perception_s", w_per, c_per)
                add("spec_eval_s", spec["v2"][1], spec["v2"][2])
                for e in spec:
                    if e != "v2":
                        add(f"spec_eval_s_{e.replace('-', '_')}", spec[e][1], spec[e][2])
        med = {k: statistics.median(v) for k, v in rows.items()}
        for sfx in ("", "_cpu"):
            med["rest_s" + sfx] = max(med["step_s" + sfx] - med["perception_s" + sfx] - med["spec_eval_s" + sfx], 0.0)
        row = {
            "workload": "laser_train weak step", "batch_size": bs, "frames": frames,
            "max_tracks": setup.train.max_tracks, "negatives_per_video": vcfg.loss.num_negatives,
            "background_specs": len(setup.background_ids), "threads": args.threads,
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "steps": args.steps,
            "train_videos": len(setup.train),
            **{k: round(v, 5) for k, v in sorted(med.items())},
            "spec_fraction": round(med["spec_eval_s"] / med["step_s"], 3),
            "spec_fraction_cpu": round(med["spec_eval_s_cpu"] / med["step_s_cpu"], 3),
            "videos_per_s": round(bs / med["step_s"], 1),
            "videos_per_s_cpu": round(bs / med["step_s_cpu"], 1),
            "load_avg": round(os.getloadavg()[0], 2),
            "freed_memory_kept": kept,
            "plans": "fresh",  # spec evaluation timed with its host-side planning (see fresh())
        }
        for e in ("v1", "v2_generic"):
            if f"spec_eval_s_{e}" in med:
                row[f"spec_eval_ratio_{e}_over_v2_cpu"] = round(med[f"spec_eval_s_{e}_cpu"] / med["spec_eval_s_cpu"], 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
