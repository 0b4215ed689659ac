"""Throughput of the stlspec torch backend (not a test): one JSON object per workload on stdout.

Workloads
---------
``laser``      B = 64 videos, each with its own random 3-event spec (3 variables, 2 atoms per
               event), T = 32, N = 8, 50 unary and 50 binary predicates (LASER's setting); exact.
``laser_top4`` the same with ``top_m = 4`` candidate tracks per variable (an approximation).
``sweep_T``    T = 32 … 512 (B = 64, N = 8, top-4).
``sweep_N``    N = 4 … 32 (B = 4, T = 32, exact: shows the N^3 growth).
``sweep_B``    B = 1 … 1024 (T = 32, N = 8, top-4).

Fields: ``workload, device, B, T, N, logic, witnesses, videos_per_s_fwd, videos_per_s_fwdbwd,
videos_per_s_fwdbwd_values_only, peak_mem_mb, ratio_vs_reference, ratio_vs_per_video_loop,
reference_videos_per_s, per_video_loop_videos_per_s, groups, compile_ms_per_spec``.

* ``videos_per_s_fwd`` / ``_fwdbwd``: values and witnesses (what training uses); the values-only
  fwd+bwd rate is reported too.
* ``ratio_vs_reference``: batched forward (values only) vs the reference interpreter on the same
  specs and videos, values only, measured in this run (on ``--reference-videos`` videos).
* ``ratio_vs_per_video_loop``: batched fwd+bwd vs the same evaluator called once per video in a
  Python loop, measured in this run.
* ``peak_mem_mb``: peak bytes allocated by torch during one fwd+bwd (CUDA: the allocator's peak;
  CPU: the profiler's allocation trace).

Usage: ``python bench/eval_throughput.py [--quick] [--device cpu|cuda] [--logic product]
[--workloads laser,sweep_T,...]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stlspec import ir  # noqa: E402
from stlspec.backends import reference  # noqa: E402
from stlspec.backends.torch import SceneGraphBatch, compile_specs  # noqa: E402
from stlspec.trace import Trace  # noqa: E402

C, P, R = 20, 50, 50
VOCAB = ir.Vocabulary(categories=tuple(f"c{i}" for i in range(C)),
                      unary=tuple((f"u{i}", None) for i in range(P)),
                      binary=tuple((f"b{i}", None, None) for i in range(R)))


def laser_specs(n: int, seed: int = 0) -> list[ir.Spec]:
    """Random specs ``exists a: c, b: c', c: c''. A0 then A1 then A2``, each A two atoms."""
    rng = np.random.default_rng(seed)
    vs = ("a", "b", "c")

    def atom() -> ir.Formula:
        if rng.random() < 0.5:
            return ir.Unary(f"u{rng.integers(P)}", vs[rng.integers(3)])
        i, j = rng.choice(3, 2, replace=False)
        return ir.Binary(f"b{rng.integers(R)}", vs[i], vs[j])

    out = []
    for k in range(n):
        elems = [ir.And((atom(), atom())) for _ in range(3)]
        f: ir.Formula = ir.Eventually(elems[2], event=2)
        for e in (1, 0):
            f = ir.Eventually(ir.And((elems[e], ir.Next(f))), event=e)
        cats = tuple((v, f"c{rng.integers(C)}") for v in vs)
        out.append(ir.Spec(f"s{k}", ir.Exists(cats, f), tuple(ir.EventInfo(e) for e in range(3))))
    return out


def random_batch(B: int, T: int, N: int, device: str, seed: int = 0) -> SceneGraphBatch:
    g = torch.Generator().manual_seed(seed)
    # Sparse-ish scores, like a perception model's sigmoid outputs.
    names = torch.rand(B, N, C, generator=g) ** 4
    unary = torch.rand(B, T, N, P, generator=g) ** 4
    binary = torch.rand(B, T, N, N, R, generator=g) ** 4
    return SceneGraphBatch(names.to(device), unary.to(device), binary.to(device),
                           torch.ones(B, T, dtype=torch.bool, device=device),
                           torch.ones(B, N, dtype=torch.bool, device=device))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rate(fn, n_videos: int, device: str, min_time: float, min_reps: int = 2) -> float:
    fn()  # warm-up
    _sync(device)
    reps, start = 0, time.perf_counter()
    while True:
        fn()
        reps += 1
        _sync(device)
        elapsed = time.perf_counter() - start
        if reps >= min_reps and elapsed >= min_time:
            return n_videos * reps / elapsed


def _peak_mem_mb(fn, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        fn()
        return torch.cuda.max_memory_allocated() / 2**20
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # Running sum of allocations and frees, in time order: its maximum is the peak.
    events = sorted((e for e in prof.events() if e.cpu_memory_usage != 0), key=lambda e: e.time_range.start)
    peak = cur = 0
    for e in events:
        cur += e.cpu_memory_usage
        peak = max(peak, cur)
    return peak / 2**20


def _leaf(batch: SceneGraphBatch) -> SceneGraphBatch:
    return SceneGraphBatch(batch.names.clone().requires_grad_(True), batch.unary.clone().requires_grad_(True),
                           batch.binary.clone().requires_grad_(True), batch.frame_mask, batch.track_mask)


def _traces(batch: SceneGraphBatch, n: int) -> list[Trace]:
    return [Trace.from_arrays(batch.names[b].cpu().double().numpy(), batch.unary[b].cpu().double().numpy(),
                              batch.binary[b].cpu().double().numpy(), categories=VOCAB.categories,
                              unary_preds=VOCAB.unary_names, binary_preds=VOCAB.binary_names) for b in range(n)]


def run_workload(name: str, B: int, T: int, N: int, args) -> dict:
    device, logic = args.device, args.logic
    specs = laser_specs(B, seed=1)
    t0 = time.perf_counter()
    ev = compile_specs(specs, vocabulary=VOCAB, logic=logic, top_m=args.top_m)
    compile_ms = (time.perf_counter() - t0) * 1e3 / B
    batch = random_batch(B, T, N, device)
    ids = list(range(B))
    witnesses = not args.no_witnesses

    def fwd():
        with torch.no_grad():
            ev(batch, ids, witnesses=witnesses)

    def fwd_values():
        with torch.no_grad():
            ev(batch, ids, witnesses=False)

    def fwdbwd(w=witnesses):
        b = _leaf(batch)
        out = ev(b, ids, witnesses=w)
        loss = out.values.sum()
        if w:
            loss = loss + (out.witnesses * torch.linspace(0, 1, T, device=device)).sum()
        loss.backward()

    def loop_fwdbwd():
        b = _leaf(batch)
        loss = 0.0
        for i in ids:
            out = ev(b, [i], [i], witnesses=witnesses)
            loss = loss + out.values.sum()
            if witnesses:
                loss = loss + (out.witnesses * torch.linspace(0, 1, T, device=device)).sum()
        loss.backward()

    mt = args.min_time
    row = {"threads": torch.get_num_threads(), "workload": name, "device": str(batch.unary.device) + (f" ({torch.cuda.get_device_name()})"
                                                                  if device.startswith("cuda") else ""),
           "B": B, "T": T, "N": N, "logic": logic, "witnesses": witnesses, "top_m": args.top_m,
           "groups": ev.groups_for(ids), "compile_ms_per_spec": round(compile_ms, 3)}
    row["videos_per_s_fwd"] = _rate(fwd, B, device, mt)
    row["videos_per_s_fwdbwd"] = _rate(fwdbwd, B, device, mt)
    row["videos_per_s_fwdbwd_values_only"] = _rate(lambda: fwdbwd(False), B, device, mt)
    row["peak_mem_mb"] = round(_peak_mem_mb(fwdbwd, device), 1)
    fwd_values_rate = _rate(fwd_values, B, device, mt)
    row["videos_per_s_fwd_values_only"] = fwd_values_rate
    if args.loop:
        loop = _rate(loop_fwdbwd, B, device, mt, min_reps=1)
        row["per_video_loop_videos_per_s"] = loop
        row["ratio_vs_per_video_loop"] = row["videos_per_s_fwdbwd"] / loop
    else:
        row["per_video_loop_videos_per_s"] = row["ratio_vs_per_video_loop"] = None
    n_ref = min(args.reference_videos, B) if args.reference else 0
    if n_ref:
        traces = _traces(batch, n_ref)
        start = time.perf_counter()
        for b in range(n_ref):
            reference.evaluate(specs[b], traces[b], logic, witnesses=False)
        ref_rate = n_ref / (time.perf_counter() - start)
        row["reference_videos_per_s"] = ref_rate
        row["ratio_vs_reference"] = fwd_values_rate / ref_rate
    else:
        row["reference_videos_per_s"] = row["ratio_vs_reference"] = None
    for k, v in list(row.items()):
        if isinstance(v, float):
            row[k] = float(f"{v:.4g}")
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--logic", default="product")
    ap.add_argument("--top-m", type=int, default=None)
    ap.add_argument("--no-witnesses", action="store_true")
    ap.add_argument("--workloads", default="laser,sweep_T,sweep_N,sweep_B")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds per timed measurement")
    ap.add_argument("--reference-videos", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    exact, top = args.top_m, args.top_m or 4
    if args.quick:
        args.min_time = 0.05
        plan = [("laser", 8, 8, 4, exact), ("sweep_T", 8, 16, 4, top), ("sweep_N", 4, 8, 6, exact),
                ("sweep_B", 16, 8, 4, top)]
    else:
        # Exact evaluation costs O(B·T·N^V) (V = 3 variables here), so the T and B sweeps keep the
        # m = 4 best tracks per variable (the documented top-m approximation) and the N sweep,
        # which shows the N^V growth of exact evaluation, uses a small B.
        plan = [("laser", 64, 32, 8, exact), ("laser_top4", 64, 32, 8, top)]
        plan += [("sweep_T", 64, t, 8, top) for t in (32, 64, 128, 256, 512)]
        plan += [("sweep_N", 4, 32, n, exact) for n in (4, 8, 16, 32)]
        plan += [("sweep_B", b, 32, 8, top) for b in (1, 4, 16, 64, 256, 1024)]
    wanted = set(args.workloads.split(","))
    for name, B, T, N, top_m in plan:
        if name not in wanted and name.split("_top")[0] not in wanted:
            continue
        args.top_m = top_m
        # The reference and the per-video loop are measured where they take seconds, not hours.
        args.reference = name == "laser" or args.quick
        args.loop = B <= 256 and T <= 128
        print(json.dumps(run_workload(name, B, T, N, args)), flush=True)
    args.top_m = exact

if __name__ == "__main__":
    main()
