"""Throughput of the stlspec torch backend (not a test): one JSON object per workload and engine on stdout.

Workloads (``--workloads`` takes exact names, comma-separated; ``--list`` prints them)
------------------------------------------------------------------------------------------
``laser``       B = 64 videos, each with its own random 3-event spec (3 variables, 2 atoms per
                event), T = 32, N = 8, 50 unary and 50 binary predicates (LASER's setting); exact.
``laser_top4``  the same with ``top_m = 4`` candidate tracks per variable (an approximation).
``sweep_T``     T = 32 … 256 (B = 64, N = 8, exact).
``sweep_N``     N = 4 … 32 (B = 16, T = 32, exact: N!/(N-3)! assignments per 3-variable node).
``sweep_B``     B = 16 … 1,024 (T = 32, N = 8, exact).
``prune_N``     N = 16 and 32 (B = 16, T = 32) with a confident classifier's category scores (a
                softmax over the 20 categories whose true logit leads by 6, the others N(0, 1): about
                0.93 for the true category, 0.004 for the others): certified pruning
                (``prune_below = 0.05``, engine label ``v2``) against the exact evaluation of the same
                batch (``v2 exact``), with the returned error bounds and the measured error.
``gpu_B``       B = 1,024 … 16,384 (T = 32, N = 8, exact), each video's spec drawn from a pool of 1,024
                random laser specs (compiling 16k specs would dominate the run): the large batches a GPU
                needs to fill up. Not in the default set (minutes on a CPU); name it with ``--workloads``.
``mixed``       B = 64 videos whose specs have 6 different shapes (chains of 2-3 events, windows,
                until, forall, disjunctions): the case where the per-shape engine v1 runs 6 groups.

Every workload is run by each engine of ``--engines`` (default ``v2,v2-generic,v1``: the current engine
-- LASER-shaped specs by the fused CPU kernel, the rest by the level-by-level plans --, the current
engine with the fused kernel off (``fused=False``), and the superseded per-shape one, side by side in
one process, alternating repetitions), with the same specs, inputs and loss. Fields per row:

* ``videos_per_s_fwd`` / ``_fwdbwd`` / ``_fwdbwd_values_only`` by wall time, and the same with the suffix
  ``_cpu`` by the thread CPU time of the calling thread (``time.thread_time``; with ``--threads 1``
  this is all the work, and it is what to compare on a shared machine);
* ``rss_peak_mb``: the process's resident high-water mark during one fwd+bwd minus its resident size
  before it (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``), and ``alloc_peak_mb``: the peak
  of the running sum of the profiler's *self* memory events in time order (each allocation counted
  once); on CUDA the allocator's peak. The two measure different things (pages touched vs. bytes
  allocated) and cross-check each other;
* ``ratio_vs_v1_*`` and ``ratio_vs_v2_generic_*``: this engine's rate over v1's (over the generic
  engine's), measured alternately in the same process;
* ``reference_videos_per_s`` and ``ratio_vs_reference``: the reference interpreter on
  ``--reference-videos`` videos (values only, no gradients) against this engine's fwd+bwd with
  witnesses (``laser`` only);
* ``load_avg``: the 1-minute load average when the row was measured.

Inputs (leaf tensors) are built before timing; gradients are reset outside the timed region.

Usage: ``python bench/eval_throughput.py [--quick] [--device cpu|cuda] [--workloads laser,mixed]
[--engines v2,v2-generic,v1] [--threads 1] [--json-out bench/results/cpu.jsonl]``. On a GPU machine:
``python bench/eval_throughput.py --device cuda --engines v2 --workloads laser,sweep_B``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def mixed_specs(n: int, seed: int = 0) -> list[ir.Spec]:
    """Six spec shapes in turn: laser chains, + a windowed always, until under forall, 2-event chains,
    a disjunction with a forall rule, and a chain with a fraction-windowed first event."""
    base = laser_specs(n, seed)
    out = []
    for i, s in enumerate(base):
        f, events = s.formula, s.events
        u = ir.Unary(f"u{i % P}", "a")
        match i % 6:
            case 1:
                f = ir.Exists(f.vars, ir.And((f.body, ir.Always(u, ir.Window(0.0, 0.5, "fraction")))))
            case 2:
                f, events = ir.Forall(f.vars[:2], ir.Until(u, ir.Not(ir.Binary("b1", "a", "b")), ir.Window(1, 3))), ()
            case 3:
                f = ir.Exists(f.vars[:2], ir.Eventually(ir.And((u, ir.Next(ir.Eventually(
                    ir.Binary("b2", "a", "b"), event=1)))), event=0))
                events = events[:2]
            case 4:
                f = ir.Or((f, ir.Forall((("x", "c3"),), ir.Always(ir.Unary("u3", "x")))))
            case 5:
                body = f.body
                f = ir.Exists(f.vars, ir.Eventually(body.arg, ir.Window(0.0, 0.6, "fraction"), body.event))
        out.append(ir.Spec(s.name, f, events))
    return out


def random_batch(B: int, T: int, N: int, device: str, seed: int = 0, peaked: bool = False) -> SceneGraphBatch:
    g = torch.Generator().manual_seed(seed)
    # Sparse-ish scores, like a perception model's sigmoid outputs.
    names = torch.rand(B, N, C, generator=g) ** 4
    if peaked:  # a confident classifier: a softmax whose true category's logit leads by 6 (others ~ N(0, 1))
        logits = torch.randn(B, N, C, generator=g)
        logits.scatter_add_(2, torch.randint(0, C, (B, N, 1), generator=g), torch.full((B, N, 1), 6.0))
        names = logits.softmax(-1)
    unary = torch.rand(B, T, N, P, generator=g) ** 4
    binary = torch.rand(B, T, N, N, R, generator=g) ** 4
    return SceneGraphBatch(names.to(device), unary.to(device), binary.to(device),
                           torch.ones(B, T, dtype=torch.bool, device=device),
                           torch.ones(B, N, dtype=torch.bool, device=device))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class _Timer:
    """Accumulates wall and thread-CPU time of timed calls only."""

    def __init__(self, device: str):
        self.device, self.wall, self.cpu, self.reps = device, 0.0, 0.0, 0

    def run(self, fn, after=None) -> None:
        _sync(self.device)
        w0, c0 = time.perf_counter(), time.thread_time()
        fn()
        _sync(self.device)
        self.wall += time.perf_counter() - w0
        self.cpu += time.thread_time() - c0
        self.reps += 1
        if after is not None:
            after()


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_peak_mb(fn) -> float | None:
    """Resident high-water mark during ``fn()`` above the resident size before it (Linux only)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
    except OSError:
        return None
    before = _rss_kb("VmRSS")
    fn()
    return (_rss_kb("VmHWM") - before) / 1024


def alloc_peak_mb(fn, device: str) -> float:
    """Peak of torch's allocations during ``fn()``: CUDA's allocator peak, or the profiler's self events."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # Self memory only (children's allocations are not counted again by their parents), in time order.
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage != 0), key=lambda e: e.time_range.start)
    peak = cur = 0
    for e in events:
        cur += e.self_cpu_memory_usage
        peak = max(peak, cur)
    return peak / 2**20


def _traces(batch: SceneGraphBatch, n: int) -> list[Trace]:
    return [Trace.from_arrays(batch.names[b].detach().cpu().double().numpy(),
                              batch.unary[b].detach().cpu().double().numpy(),
                              batch.binary[b].detach().cpu().double().numpy(), categories=VOCAB.categories,
                              unary_preds=VOCAB.unary_names, binary_preds=VOCAB.binary_names) for b in range(n)]


def plan(quick: bool) -> list[tuple]:
    """``(workload, B, T, N, top_m)`` rows."""
    if quick:
        return [("laser", 8, 8, 4, None), ("laser_top4", 8, 8, 4, 2), ("mixed", 12, 8, 4, None),
                ("sweep_T", 8, 16, 4, None), ("sweep_N", 4, 8, 6, None), ("sweep_B", 16, 8, 4, None)]
    rows = [("laser", 64, 32, 8, None), ("laser_top4", 64, 32, 8, 4), ("mixed", 64, 32, 8, None)]
    rows += [("sweep_T", 64, t, 8, None) for t in (32, 64, 128, 256)]
    rows += [("sweep_N", 16, 32, n, None) for n in (4, 8, 16, 32)]
    rows += [("sweep_B", b, 32, 8, None) for b in (16, 64, 256, 1024)]
    rows += [("prune_N", 16, 32, n, None) for n in (16, 32)]
    rows += [("gpu_B", b, 32, 8, None) for b in (1024, 4096, 16384)]
    return rows


WORKLOADS = ("laser", "laser_top4", "mixed", "sweep_T", "sweep_N", "sweep_B", "prune_N", "gpu_B")
#: prune_N: the certified pruning threshold (category weights below it are dropped)
PRUNE_BELOW = 0.05
DEFAULT_WORKLOADS = WORKLOADS[:-1]  # gpu_B only when named
SPEC_POOL = 1024  # gpu_B: distinct specs


def run_workload(name: str, B: int, T: int, N: int, top_m, args) -> list[dict]:
    device, logic = args.device, args.logic
    specs = mixed_specs(B, seed=1) if name == "mixed" else laser_specs(min(B, SPEC_POOL) if name == "gpu_B" else B,
                                                                       seed=1)
    engines = [e for e in args.engines.split(",") if e]
    # v1 at the largest sizes takes minutes and many GB (its cost is what v2 removes); skip it there.
    if B * max(N, 8) ** 3 * T > 64 * 8 ** 3 * 32 * 4 or (N > 16 and B > 4):
        engines = [e for e in engines if e != "v1"] or engines[:1]
    evs = {}
    variants = [(e, "v2", {"fused": False}) if e == "v2-generic" else (e, e, {}) for e in engines]
    if name == "prune_N":  # certified pruning against the exact evaluation of the same batch
        variants = [("v2", "v2", {"prune_below": PRUNE_BELOW}), ("v2 exact", "v2", {})]
    for label, e, opts in variants:
        t0 = time.perf_counter()
        evs[label] = compile_specs(specs, vocabulary=VOCAB, logic=logic, top_m=top_m, engine=e, **opts)
        evs[label]._compile_ms = (time.perf_counter() - t0) * 1e3 / len(specs)
    batch = random_batch(B, T, N, device, peaked=name == "prune_N")
    leaves = [x.clone().requires_grad_(True) for x in (batch.names, batch.unary, batch.binary)]
    grad_batch = SceneGraphBatch(*leaves, batch.frame_mask, batch.track_mask)
    ids = [i % len(specs) for i in range(B)]
    weights = torch.linspace(0, 1, T, device=device)
    witnesses = not args.no_witnesses

    def clear():
        for x in leaves:
            x.grad = None

    def calls(ev):
        def fwd():
            with torch.no_grad():
                ev(batch, ids, witnesses=witnesses)

        def fwdbwd(w=witnesses):
            out = ev(grad_batch, ids, witnesses=w)
            loss = out.values.sum()
            if w:
                loss = loss + (out.witnesses * weights).sum()
            loss.backward()

        return {"fwd": fwd, "fwdbwd": fwdbwd, "fwdbwd_values_only": lambda: fwdbwd(False)}

    fns = {e: calls(ev) for e, ev in evs.items()}
    timers = {(e, k): _Timer(device) for e in evs for k in fns[e]}
    for e in evs:  # warm-up: plans, caches, allocator
        for k, fn in fns[e].items():
            fn()
            clear()
    # Alternate engines and kinds until each measurement has run min_time (at least min_reps times).
    start = time.perf_counter()
    while True:
        for e in evs:
            for k, fn in fns[e].items():
                timers[(e, k)].run(fn, clear)
        done = all(t.reps >= args.min_reps for t in timers.values())
        if done and time.perf_counter() - start >= args.min_time * len(timers):
            break
    ref_rate = None
    n_ref = min(args.reference_videos, B) if name == "laser" else 0
    if n_ref:
        traces = _traces(batch, n_ref)
        c0 = time.thread_time()
        for b in range(n_ref):
            reference.evaluate(specs[b], traces[b], logic, witnesses=False)
        ref_rate = n_ref / (time.thread_time() - c0)
    load = os.getloadavg()[0]
    rows = []
    for e, ev in evs.items():
        row = {"workload": name, "engine": e, "device": str(batch.unary.device) + (
            f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else ""),
            "B": B, "T": T, "N": N, "logic": logic, "witnesses": witnesses, "top_m": top_m,
            "threads": torch.get_num_threads(), "compile_ms_per_spec": ev._compile_ms}
        for k in fns[e]:
            t = timers[(e, k)]
            row[f"videos_per_s_{k}"] = B * t.reps / t.wall
            row[f"videos_per_s_{k}_cpu"] = B * t.reps / max(t.cpu, 1e-9)
        row["rss_peak_mb"] = rss_peak_mb(lambda: (fns[e]["fwdbwd"](), clear()))
        row["alloc_peak_mb"] = alloc_peak_mb(lambda: (fns[e]["fwdbwd"](), clear()), device)
        if ref_rate is not None:
            row["reference_videos_per_s"] = ref_rate
            row["ratio_vs_reference"] = row["videos_per_s_fwdbwd_cpu"] / ref_rate
        if getattr(ev, "prune_below", None) is not None:  # the certified error, and the measured one
            with torch.no_grad():
                out, exact = ev(batch, ids, witnesses=False), evs["v2 exact"](batch, ids, witnesses=False)
            row["prune_below"] = ev.prune_below
            row["error_bound_median"] = float(out.error_bound.median())
            row["error_bound_max"] = float(out.error_bound.max())
            row["error_max"] = float((out.values - exact.values).abs().max())
        row["load_avg"] = load
        rows.append(row)
    for ref in ("v1", "v2-generic"):
        if ref not in evs:
            continue
        base = next(r for r in rows if r["engine"] == ref)
        for r in rows:
            for k in fns[ref]:
                for suffix in ("", "_cpu"):
                    r[f"ratio_vs_{ref.replace('-', '_')}_{k}{suffix}"] = (r[f"videos_per_s_{k}{suffix}"]
                                                                         / base[f"videos_per_s_{k}{suffix}"])
    for r in rows:
        for k, v in list(r.items()):
            if isinstance(v, float):
                r[k] = float(f"{v:.4g}")
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes and short timings: a smoke test (CI)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--logic", default="product", help="boolean, godel, product or smooth (default product)")
    ap.add_argument("--no-witnesses", action="store_true", help="time values only (training uses witnesses)")
    ap.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS),
                    help=f"comma-separated, exact names (default: all but gpu_B): {', '.join(WORKLOADS)}")
    ap.add_argument("--list", action="store_true", help="print the workloads with their sizes and exit")
    ap.add_argument("--engines", default="v2,v2-generic,v1",
                    help="engines side by side (v2 = current, v2-generic = current without the fused kernel, "
                         "v1 = superseded)")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds per timed measurement (default 1)")
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--reference-videos", type=int, default=3, help="videos the reference interpreter runs")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1; 0 = torch's)")
    ap.add_argument("--json-out", help="also append the rows to this JSON-lines file (docs/gen_performance.py)")
    ap.add_argument("--system-malloc", action="store_true",
                    help="leave the C library's malloc as it is (default: keep freed memory for reuse, as "
                         "python -m laser_train does; see stlspec.backends.torch.memory)")
    args = ap.parse_args(argv)
    rows = plan(args.quick)
    if args.list:
        for r in rows:
            print("{:<11} B={:<5} T={:<4} N={:<3} top_m={}".format(*r))
        return
    wanted = [w for w in args.workloads.split(",") if w]
    unknown = sorted(set(wanted) - set(WORKLOADS))
    if unknown:
        ap.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.min_time, args.min_reps, args.reference_videos = 0.0, 1, 1
    kept = False
    if not args.system_malloc:
        from stlspec.backends.torch.memory import keep_freed_memory

        kept = keep_freed_memory()
    header = {"machine": f"{platform.machine()} {platform.processor()}".strip(), "cpus": os.cpu_count(),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "load_avg": os.getloadavg(),
              "device": args.device, "time": time.strftime("%Y-%m-%d %H:%M:%S"), "freed_memory_kept": kept}
    print("# " + json.dumps(header), file=sys.stderr, flush=True)
    out = open(args.json_out, "a") if args.json_out else None
    for name, B, T, N, top_m in rows:
        if name not in wanted:
            continue
        for row in run_workload(name, B, T, N, top_m, args):
            row["header"] = header
            line = json.dumps(row)
            print(line, flush=True)
            if out:
                out.write(line + "\n")
                out.flush()


if __name__ == "__main__":
    main()
