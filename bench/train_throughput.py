"""Benchmark: training throughput (videos/s) and where a weakly supervised step spends its time.

For each perception model (``small``; ``clip-b32``: a CLIP ViT-B/32-shaped model with random
weights, built from a config — nothing is downloaded), each device (the CPU, and CUDA when
present) and each process count (one process; ``--ddp K`` processes with DDP: gloo on the CPU,
nccl on CUDA), prints one JSON object with the median over ``--steps`` steps (after warm-up) of

* ``step_s``         a whole training step at the global batch ``--batch-size``;
* ``data_s``         building the batch (crops to float) and moving it to the device;
* ``perception_s``   the perception model, forward and backward (under ``--precision`` autocast);
* ``spec_eval_s``    the spec losses (stlspec torch backend, ``train.spec_dtype``): forward and backward
                     from detached scene-graph probabilities — positives with witnesses, negatives, background;
* ``optimizer_s``    gradient clipping and the AdamW step (with DDP: after the gradient all-reduce);
* ``*_share``        each of those / ``step_s`` (perception = step − data − spec − optimizer);
* ``videos_per_s``   global batch / ``step_s``;

plus the wall and CPU time of the whole measurement, the load average before and after, and
the machine. CUDA timings synchronise the device around each phase.

Usage::

    python bench/train_throughput.py                     # small + clip-b32, cpu (+ cuda), 1 process and DDP 2
    python bench/train_throughput.py --models small --devices cuda --precision bf16 --batch-size 16
    python bench/train_throughput.py --quick             # smoke run for CI (tiny CLIP, 2 steps)

The synthetic dataset is generated in a temporary directory (``--videos`` training videos of
``--frames`` frames). Numbers go to ``docs/performance.md`` with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build_model(name: str, setup, cfg, device: torch.device):
    from laser_train.model import build_model

    torch.manual_seed(0)
    if name == "small":
        return build_model(cfg.model, setup.vocabulary, cfg.data.crop_size).to(device)
    from laser_train.clip_model import ClipPerception, random_clip

    shape = {"clip-b32": "b32", "clip-tiny": "tiny"}[name]
    model, tokenizer = random_clip(shape)
    import copy

    towers = [model] if cfg.model.layout == "shared" else [model, copy.deepcopy(model), copy.deepcopy(model)]
    return ClipPerception(towers, tokenizer, setup.vocabulary, pair_crop=cfg.model.pair_crop).to(device)


def measure(args, name: str, device_name: str, out_q=None) -> dict:
    """One configuration in this process (a rank of a DDP job when WORLD_SIZE is set)."""
    from laser_train import train as T
    from laser_train.config import load_config
    from laser_train.losses import weak_loss

    torch.set_num_threads(args.threads)
    overrides = [f"--run.out={args.tmp}/runs", "--train.progress=false", f"--data.num_train={args.videos}",
                 "--data.num_test=4", f"--data.num_frames={args.frames}", "--data.num_negatives=2",
                 f"--train.device={device_name}", f"--train.precision={args.precision}",
                 f"--train.spec_dtype={args.spec_dtype}", f"--model.layout={args.layout}",
                 f"--train.batch_size={args.batch_size}", f"--data.max_objects={args.objects}"]
    if name.startswith("clip"):
        overrides.append(f"--data.crop_size={args.crop_size}")
    cfg = T.variant_config(load_config(None, overrides), "weak")
    rt, dist = T.start(cfg)
    setup = T.prepare(cfg)
    model = _build_model(name, setup, cfg, rt.device)
    ddp = dist.wrap(model, rt.device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    scaler = rt.grad_scaler()
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    rows: dict[str, list[float]] = {k: [] for k in ("step_s", "data_s", "spec_eval_s", "optimizer_s")}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(args.steps + args.warmup):
        global_index = torch.randperm(len(setup.train), generator=gen)[:args.batch_size]
        work = T._weak_work(setup, cfg, global_index, rng)
        lo, hi = dist.shard(len(global_index))
        work = T.select_work(work, lo, hi)
        _sync(rt.device)
        t0 = time.perf_counter()
        batch = rt.to(setup.train.batch(global_index[lo:hi]))
        work_d = replace(work, hints=rt.to(work.hints), has_hint=rt.to(work.has_hint))
        _sync(rt.device)
        t1 = time.perf_counter()
        with rt.autocast():
            scores = ddp(batch)
        loss, _ = weak_loss(setup.supervision, scores.probs(), batch, work_d, cfg.loss.weights,
                            dtype=rt.spec_dtype)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        _sync(rt.device)
        t2 = time.perf_counter()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        scaler.step(opt)
        scaler.update()
        _sync(rt.device)
        t3 = time.perf_counter()
        # the spec losses alone, from the same probabilities as detached leaves
        probs = tuple(p.detach().requires_grad_(True) for p in scores.probs())
        _sync(rt.device)
        t4 = time.perf_counter()
        spec_loss, _ = weak_loss(setup.supervision, probs, batch, work_d, cfg.loss.weights, dtype=rt.spec_dtype)
        spec_loss.backward()
        _sync(rt.device)
        t5 = time.perf_counter()
        if i >= args.warmup:
            rows["step_s"].append(t3 - t0)
            rows["data_s"].append(t1 - t0)
            rows["optimizer_s"].append(t3 - t2)
            rows["spec_eval_s"].append(t5 - t4)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    med = {k: statistics.median(v) for k, v in rows.items()}
    med["perception_s"] = max(med["step_s"] - med["data_s"] - med["spec_eval_s"] - med["optimizer_s"], 0.0)
    row = {
        "model": name, "device": rt.describe(), "processes": dist.world_size, "precision": args.precision,
        "global_batch": args.batch_size, "frames": args.frames, "max_tracks": setup.train.max_tracks,
        "crop_size": cfg.data.crop_size, "layout": args.layout if name.startswith("clip") else None,
        "parameters": sum(p.numel() for p in model.parameters()), "threads_per_process": args.threads,
        "steps": args.steps, **{k: round(v, 5) for k, v in sorted(med.items())},
        **{k.replace("_s", "_share"): round(med[k] / med["step_s"], 3)
           for k in ("data_s", "perception_s", "spec_eval_s", "optimizer_s")},
        "videos_per_s": round(args.batch_size / med["step_s"], 2),
        "wall_s": round(wall, 2), "cpu_s_rank0": round(cpu, 2),
    }
    return row


def spec_dtype_check(args, batches: int = 4) -> dict:
    """float32 vs float64 spec evaluation on the same probabilities (small model, CPU): loss and gradient."""
    from laser_train import train as T
    from laser_train.config import load_config
    from laser_train.losses import weak_loss

    cfg = T.variant_config(load_config(None, [f"--run.out={args.tmp}/runs", "--train.progress=false",
                                              f"--data.num_train={args.videos}", "--data.num_test=4",
                                              f"--data.num_frames={args.frames}", "--data.num_negatives=2",
                                              "--train.device=cpu"]), "weak")
    setup = T.prepare(cfg)
    model = _build_model("small", setup, cfg, torch.device("cpu"))
    rng = np.random.default_rng(1)
    loss_rel, grad_rel, times = [], [], {"float64": 0.0, "float32": 0.0}
    for b in range(batches):
        index = torch.arange(b * args.batch_size, (b + 1) * args.batch_size) % len(setup.train)
        work = T._weak_work(setup, cfg, index, rng)
        batch = setup.train.batch(index)
        probs = tuple(p.detach() for p in model(batch).probs())
        out = {}
        for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
            leaves = tuple(p.clone().requires_grad_(True) for p in probs)
            t0 = time.perf_counter()
            loss, _ = weak_loss(setup.supervision, leaves, batch, work, cfg.loss.weights, dtype=dtype)
            loss.backward()
            times[name] += time.perf_counter() - t0
            out[name] = (float(loss.detach()), torch.cat([p.grad.flatten().double() for p in leaves]))
        (l64, g64), (l32, g32) = out["float64"], out["float32"]
        loss_rel.append(abs(l32 - l64) / abs(l64))
        grad_rel.append(float((g32 - g64).norm() / g64.norm().clamp_min(1e-300)))
    return {"check": "spec_dtype float32 vs float64", "batches": batches, "untrained small model": True,
            "loss_rel_diff_max": float(f"{max(loss_rel):.3g}"), "grad_rel_diff_max": float(f"{max(grad_rel):.3g}"),
            "float32_over_float64_time": round(times["float32"] / times["float64"], 3)}


def _ddp_worker(rank: int, world: int, port: int, args, name: str, device_name: str, path: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    row = measure(args, name, device_name)
    if rank == 0:
        Path(path).write_text(json.dumps(row), encoding="utf-8")
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="small,clip-b32", help="small, clip-b32, clip-tiny (comma-separated)")
    ap.add_argument("--devices", default="auto", help="cpu, cuda, or auto (cpu, plus cuda when present)")
    ap.add_argument("--ddp", type=int, default=2, help="also run with this many DDP processes (0: not)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=4, help="global batch (videos per step)")
    ap.add_argument("--videos", type=int, default=16, help="synthetic training videos")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--objects", type=int, default=4, help="max tracks per video")
    ap.add_argument("--crop-size", type=int, default=64, help="crop size for CLIP (resized to its input size)")
    ap.add_argument("--layout", default="separate", choices=("separate", "shared"))
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--spec-dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--out", help="also write the JSON lines to this file")
    ap.add_argument("--quick", action="store_true", help="smoke run for CI: small + a tiny CLIP, 2 steps, DDP 2")
    args = ap.parse_args()
    if args.quick:
        args.models, args.steps, args.videos, args.frames, args.crop_size = "small,clip-tiny", 2, 8, 4, 16
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" else \
        args.devices.split(",")
    args.tmp = tempfile.mkdtemp(prefix="train-throughput-")
    header = {"benchmark": "train_throughput", "machine": f"{platform.machine()} {platform.processor()}".strip(),
              "cpus": os.cpu_count(), "torch": torch.__version__,
              "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
              "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    lines = [header]
    print(json.dumps(header), flush=True)
    for device in devices:
        for name in args.models.split(","):
            runs = [1] + ([args.ddp] if args.ddp > 1 else [])
            for k in runs:
                if k > 1 and device == "cuda" and torch.cuda.device_count() < k:
                    continue
                if k == 1:
                    row = measure(args, name, device)
                else:
                    import torch.multiprocessing as mp

                    path = Path(args.tmp) / f"ddp-{name}-{device}.json"
                    mp.spawn(_ddp_worker, args=(k, _free_port(), args, name, device, str(path)), nprocs=k)
                    row = json.loads(path.read_text())
                row["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
                lines.append(row)
                print(json.dumps(row), flush=True)
    if not args.quick:
        row = spec_dtype_check(args)
        lines.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


if __name__ == "__main__":
    main()
