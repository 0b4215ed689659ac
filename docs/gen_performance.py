"""Regenerate the torch part of ``docs/performance.md`` and ``docs/img/torch_scaling.png`` from benchmark JSON.

Inputs (JSON lines, as written by the benchmarks):

* ``bench/results/cpu.jsonl``        ``python bench/eval_throughput.py --json-out bench/results/cpu.jsonl``
* ``bench/results/train_step.jsonl`` ``python bench/train_step.py --engines v2,v2-generic,v1 >> bench/results/train_step.jsonl``
* ``bench/results/gpu/eval_cuda.jsonl`` the same throughput benchmark on a GPU (``--device cuda``, written by
  ``bench/gpu_checks.sh``), when one was lent; every run's rows are kept, each with its measurement time

The text between ``<!-- torch-bench:start -->`` and ``<!-- torch-bench:end -->`` in
``docs/performance.md`` is replaced; nothing else on the page is touched. Usage:
``python docs/gen_performance.py`` (``--check`` exits 1 if the page is stale).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "performance.md"
PLOT = ROOT / "docs" / "img" / "torch_scaling.png"
RESULTS = ROOT / "bench" / "results"
START, END = "<!-- torch-bench:start -->", "<!-- torch-bench:end -->"


def _rows(name: str) -> list[dict]:
    path = RESULTS / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]


def _runs(rows: list[dict]) -> list[list[dict]]:
    """Rows grouped by run (the header's measurement time), oldest first."""
    runs: dict = {}
    for r in rows:
        runs.setdefault(r["header"]["time"], []).append(r)
    return [runs[t] for t in sorted(runs)]


def _n(x, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and x >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def throughput_table(rows: list[dict]) -> str:
    head = ["workload", "B", "T", "N", "top-m", "engine", "fwd+bwd v/s (CPU)", "fwd+bwd v/s (wall)",
            "values-only fwd+bwd v/s (CPU)", "fwd v/s (CPU)", "RSS growth MB", "alloc peak MB",
            "v2 / v2-generic (fwd+bwd, CPU)", "v2 / v1 (fwd+bwd, CPU)", "load"]
    body = [[r["workload"], str(r["B"]), str(r["T"]), str(r["N"]), str(r["top_m"] or "exact"), r["engine"],
             f"**{_n(r['videos_per_s_fwdbwd_cpu'])}**" if r["engine"] == "v2" else _n(r["videos_per_s_fwdbwd_cpu"]),
             _n(r["videos_per_s_fwdbwd"]), _n(r["videos_per_s_fwdbwd_values_only_cpu"]),
             _n(r["videos_per_s_fwd_cpu"]), _n(r.get("rss_peak_mb")), _n(r.get("alloc_peak_mb")),
             _n(r.get("ratio_vs_v2_generic_fwdbwd_cpu")) if r["engine"] == "v2" else "",
             _n(r.get("ratio_vs_v1_fwdbwd_cpu")) if r["engine"] == "v2" else "", _n(r.get("load_avg"))]
            for r in rows]
    return _table(head, body)


def fused_table(rows: list[dict]) -> str:
    """The fused kernel against the generic engine (``v2`` vs ``v2-generic``), workload by workload."""
    head = ["workload", "B", "T", "N", "fwd+bwd v/s (CPU), fused", "generic", "fused / generic",
            "values-only, fused", "generic", "fwd, fused", "generic", "alloc peak MB, fused", "generic"]
    body = []
    for r in rows:
        if r["engine"] != "v2":
            continue
        g = next((x for x in rows if x["engine"] == "v2-generic" and x["workload"] == r["workload"]
                  and x["B"] == r["B"] and x["N"] == r["N"] and x["T"] == r["T"]), None)
        if g is None:
            continue
        body.append([r["workload"], str(r["B"]), str(r["T"]), str(r["N"]), f"**{_n(r['videos_per_s_fwdbwd_cpu'])}**",
                     _n(g["videos_per_s_fwdbwd_cpu"]), _n(r["videos_per_s_fwdbwd_cpu"] / g["videos_per_s_fwdbwd_cpu"]),
                     _n(r["videos_per_s_fwdbwd_values_only_cpu"]), _n(g["videos_per_s_fwdbwd_values_only_cpu"]),
                     _n(r["videos_per_s_fwd_cpu"]), _n(g["videos_per_s_fwd_cpu"]), _n(r.get("alloc_peak_mb")),
                     _n(g.get("alloc_peak_mb"))])
    return _table(head, body) if body else ""


def gpu_table(rows: list[dict]) -> str:
    """GPU rows: wall-clock rates (the host's CPU time says little there), one row per run and workload."""
    head = ["measured (UTC)", "GPU", "workload", "B", "T", "N", "fwd+bwd v/s (wall)",
            "values-only fwd+bwd v/s (wall)", "fwd v/s (wall)", "alloc peak MB"]
    body = [[r["header"]["time"], r["device"].split("(")[-1].rstrip(")"), r["workload"], str(r["B"]), str(r["T"]),
             str(r["N"]), f"**{_n(r['videos_per_s_fwdbwd'])}**", _n(r["videos_per_s_fwdbwd_values_only"]),
             _n(r["videos_per_s_fwd"]), _n(r.get("alloc_peak_mb"))] for r in rows if r["engine"] == "v2"]
    return _table(head, body)


def train_table(rows: list[dict]) -> str:
    head = ["batch", "planning timed", "step s (CPU)", "perception s (CPU)", "spec eval s (CPU), v2",
            "v2-generic", "v1", "v2-generic / v2", "v1 / v2", "spec share of step (CPU)", "spec share (wall)", "load"]
    body = [[str(r["batch_size"]), "yes" if _fresh(r) else "no (understated)", _n(r["step_s_cpu"]),
             _n(r["perception_s_cpu"]), _n(r["spec_eval_s_cpu"]), _n(r.get("spec_eval_s_v2_generic_cpu")),
             _n(r.get("spec_eval_s_v1_cpu")), _n(r.get("spec_eval_ratio_v2_generic_over_v2_cpu")),
             _n(r.get("spec_eval_ratio_v1_over_v2_cpu")),
             f"**{r['spec_fraction_cpu']:.0%}**" if _fresh(r) else f"{r['spec_fraction_cpu']:.0%}",
             f"{r['spec_fraction']:.0%}", _n(r.get("load_avg"))]
            for r in rows]
    return _table(head, body)


def _fresh(row: dict) -> bool:
    """A training-step row whose spec evaluation was timed with its planning (rows before 2026-12-01 were
    timed on a plan the step itself had just cached, which hid the planning in `rest`)."""
    return row.get("plans") == "fresh"


def targets(cpu: list[dict], train: list[dict]) -> list[str]:
    """The issue's targets against the recorded rows, stated plainly (met or not)."""
    def get(workload, engine="v2", **match):
        for r in cpu:
            if r["workload"] == workload and r["engine"] == engine and all(r[k] == v for k, v in match.items()):
                return r
        return None

    out = ["**Targets** (one thread, CPU time):", ""]
    laser = get("laser")
    if laser:
        v = laser["videos_per_s_fwdbwd_cpu"]
        gen, v1 = get("laser", "v2-generic"), get("laser", "v1")
        same = [r for r in (get("sweep_T", T=32), get("sweep_B", B=64)) if r is not None]
        again = (f"; the same workload is the `sweep_T` T = 32 and `sweep_B` B = 64 rows of this run, measured there "
                 f"at {' and '.join(_n(r['videos_per_s_fwdbwd_cpu']) for r in same)}: the spread is the machine's"
                 if same else "")
        out.append(f"* `laser` fwd+bwd with witnesses ≥ 2,500 videos/s: **{_n(v)}** — "
                   f"{'met' if v >= 2500 else 'not met'} (in the same run: the generic engine "
                   f"{_n(gen['videos_per_s_fwdbwd_cpu']) if gen else '—'}, v1 "
                   f"{_n(v1['videos_per_s_fwdbwd_cpu']) if v1 else '—'}{again}).")
        out.append(f"* peak memory ≤ 128 MB: alloc peak **{_n(laser['alloc_peak_mb'])} MB** — "
                   f"{'met' if laser['alloc_peak_mb'] <= 128 else 'not met'}.")
    b64, b1024 = get("sweep_B", B=64), get("sweep_B", B=1024)
    if b64 and b1024:
        ok = b1024["videos_per_s_fwdbwd_cpu"] >= b64["videos_per_s_fwdbwd_cpu"]
        kept = b1024["header"].get("freed_memory_kept")
        how = {True: " (freed memory kept, as `python -m laser_train` runs)",
               False: " (glibc's default malloc)"}.get(kept, "")
        out.append(f"* throughput at B = 1,024 not below B = 64's: {_n(b1024['videos_per_s_fwdbwd_cpu'])} vs "
                   f"{_n(b64['videos_per_s_fwdbwd_cpu'])}{how} — {'met' if ok else 'not met'}.")
    else:
        out.append("* throughput at B = 1,024 vs B = 64: not recorded in this run.")
    fresh = [t for t in train if _fresh(t)]
    if any("spec_eval_s_v2_generic_cpu" in t for t in fresh):  # the engine with its fused kernel: its runs only
        fresh = [t for t in fresh if "spec_eval_s_v2_generic_cpu" in t]
    if fresh:  # every run timed with its planning, at the default batch size (the first row's): their range
        train = fresh
        rows = [t for t in train if t["batch_size"] == train[0]["batch_size"]]
        lo, hi = (f(t["spec_fraction_cpu"] for t in rows) for f in (min, max))
        r_lo, r_hi = (f(t.get("spec_eval_ratio_v1_over_v2_cpu", 0) for t in rows) for f in (min, max))
        share = f"{lo:.0%}" if lo == hi else f"{lo:.0%}–{hi:.0%}"
        ratio = f"{r_lo:.1f}" if round(r_lo, 1) == round(r_hi, 1) else f"{r_lo:.1f}–{r_hi:.1f}"
        gen = [t["spec_eval_ratio_v2_generic_over_v2_cpu"] for t in rows if "spec_eval_ratio_v2_generic_over_v2_cpu" in t]
        per = [t["perception_s_cpu"] for t in rows]
        out.append(f"* spec evaluation ≤ 15 % of a training step: **{share}** at batch {train[0]['batch_size']} "
                   f"({len(rows)} run{'s' if len(rows) > 1 else ''} of the current engine) — "
                   f"{'met' if hi <= 0.15 else 'not met'} (v1: {ratio}× v2's spec time"
                   + (f"; the generic engine, `fused=False`: {min(gen):.1f}–{max(gen):.1f}×" if gen else "")
                   + f"; the perception model took {min(per):.3f}–{max(per):.3f} s of these steps).")
    n32 = get("sweep_N", N=32)
    if n32:
        v = n32["videos_per_s_fwdbwd_cpu"]
        g32 = get("sweep_N", "v2-generic", N=32)
        out.append(f"* N = 32 exact ≥ 50 videos/s: **{_n(v)}** — {'met' if v >= 50 else 'not met'}; alloc peak "
                   f"{_n(n32['alloc_peak_mb'])} MB (the fused kernel's memory is its per-instance literal buffers "
                   "and the dense gradients of the fact tensors, whatever the number of assignments; the generic "
                   f"engine: {_n(g32['videos_per_s_fwdbwd_cpu']) if g32 else '—'} videos/s, "
                   f"{_n(g32['alloc_peak_mb']) if g32 else '—'} MB, its chunks keeping their activations below "
                   "`checkpoint_above`).")
    p32 = get("prune_N", N=32)
    if p32:
        exact = get("prune_N", engine="v2 exact", N=32)
        out.append(f"* N = 32 with certified pruning (`prune_below` = {p32['prune_below']}, a confident "
                   f"classifier's category scores): **{_n(p32['videos_per_s_fwdbwd_cpu'])}** videos/s "
                   f"(exact on the same batch: {_n(exact['videos_per_s_fwdbwd_cpu']) if exact else '—'}); "
                   f"error bound median {_n(p32['error_bound_median'])}, max {_n(p32['error_bound_max'])}; "
                   f"largest measured error {_n(p32['error_max'])}.")
    out.append("")
    return out


def history(runs: list[list[dict]]) -> list[str]:
    """One line per recorded run: the `laser` rates of v2 and v1 and their ratio (the engine's history)."""
    out = []
    for rows in runs:
        v2 = next((r for r in rows if r["workload"] == "laser" and r["engine"] == "v2"), None)
        v1 = next((r for r in rows if r["workload"] == "laser" and r["engine"] == "v1"), None)
        if v2 is None:
            continue
        out.append(f"* {rows[0]['header']['time']} UTC: v2 **{_n(v2['videos_per_s_fwdbwd_cpu'])}**, v1 "
                   f"{_n(v1['videos_per_s_fwdbwd_cpu']) if v1 else '—'} videos/s (v2 / v1 "
                   f"{_n(v2.get('ratio_vs_v1_fwdbwd_cpu'))}), alloc peak {_n(v2['alloc_peak_mb'])} MB, load "
                   f"{_n(v2['load_avg'])}")
    if len(out) < 2:
        return []
    return ["**History** (`laser` fwd+bwd with witnesses, CPU time, every run recorded in "
            "`bench/results/cpu.jsonl`, oldest first; v1 shares the temporal operators of `ops.py`, so it "
            "gains from some of v2's changes too; the machine's instances differ from day to day — v1 ran 3.5× "
            "faster on 2026-12-01 than on 2026-11-30 — so across days compare the v2 / v1 ratios, not the "
            "rates):", ""] + out + [""]


def plot(rows: list[dict]) -> bool:
    sweeps = [w for w in ("sweep_B", "sweep_N") if any(r["workload"] == w for r in rows)]
    if not sweeps:
        return False
    from laser_train.plots import _plt, _save

    plt = _plt()
    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.5 * len(sweeps), 4), squeeze=False)
    for ax, w in zip(axes[0], sweeps):
        key = "B" if w == "sweep_B" else "N"
        for engine, style in (("v2", "o-"), ("v2-generic", "^-."), ("v1", "s--")):
            pts = sorted((r[key], r["videos_per_s_fwdbwd_cpu"]) for r in rows if r["workload"] == w
                         and r["engine"] == engine)
            if pts:
                ax.plot(*zip(*pts), style, label={"v2": "v2 (fused kernel)", "v2-generic": "v2, fused=False",
                                                  "v1": "v1"}[engine])
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel({"B": "videos per call (B), T = 32, N = 8", "N": "tracks (N), B = 16, T = 32"}[key])
        ax.set_ylabel("fwd+bwd videos/s (thread CPU time)")
        ax.set_title(f"laser specs, exact, product logic: {w}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    _save(plt, fig, PLOT)
    return True


def section(cpu: list[dict], train: list[dict], cuda: list[dict], has_plot: bool, runs=()) -> str:
    header = cpu[0]["header"] if cpu else {}
    parts = [START, "", "## Torch backend", "",
             "<!-- Generated by docs/gen_performance.py from bench/results/*.jsonl; do not edit by hand. -->", ""]
    parts.append(
        "Benchmarks: `python bench/eval_throughput.py --json-out bench/results/cpu.jsonl` (`--quick` for a smoke "
        "run, `--list` for the workloads) and `python bench/train_step.py --engines v2,v2-generic,v1`. Every "
        "workload runs the current engine (v2: LASER-shaped specs by the fused CPU kernel, the rest by the "
        "level-by-level plans), the same engine with the fused kernel off (`v2-generic`, `fused=False`) and the "
        "superseded per-shape engine (v1) **side by side in one process**, alternating repetitions on the same "
        "specs, inputs and loss, with one intra-op thread (rows recorded before the fused kernel have no "
        "`v2-generic`: their v2 *is* the generic engine). Rates are given by "
        "the calling thread's CPU time (`time.thread_time`; with one thread that is all the work) and by wall "
        "time; on a machine shared with other jobs the CPU-time rates and the v2/v1 ratios are the numbers to "
        "read, wall time mostly measures the load. `alloc peak` is the peak of torch's allocations during one "
        "fwd+bwd from the profiler's self memory events (each allocation counted once): the memory measure. "
        "`RSS growth` cross-checks it from the operating system's side: the process's resident high-water mark "
        "during the same fwd+bwd above its resident size before it (`VmHWM`, reset via "
        "`/proc/self/clear_refs`); it is about 0 when the allocator reuses pages made resident by earlier "
        "repetitions, so it is a lower bound, large only where a call needs more than any earlier one. "
        "Inputs are built before the timed regions; gradients are reset outside them.")
    parts.append("")
    if header:
        parts.append(f"**Machine:** {header.get('cpus')}-core {header.get('machine')} CPU, torch {header.get('torch')}, "
                     f"float32, {header.get('threads')} intra-op thread, measured {header.get('time')} UTC while "
                     f"the machine was shared with other engineers' jobs (1-minute load average "
                     f"{header['load_avg'][0]:.1f} on {header.get('cpus')} cores at the start; per-row load in the "
                     "last column).")
        parts.append("")
    parts.append(
        "**Workloads.** `laser`: B = 64 videos, each with its own random 3-event spec (`exists a: c_i, b: c_j, "
        "c: c_k. A0 then A1 then A2`, each `A` the conjunction of 2 random unary or binary atoms), T = 32, N = 8, "
        "20 categories, 50 unary and 50 binary predicates, product logic; fwd+bwd evaluates values and witnesses "
        "and backpropagates a loss on both (what training does). `mixed`: the same sizes with six different "
        "spec shapes in the batch. `sweep_B` and `sweep_N` vary the batch size and the number of tracks (exact "
        "evaluation). `prune_N`: certified pruning (`prune_below` = 0.05, engine `v2`) against the exact "
        "evaluation (`v2 exact`) of the same batch, whose category scores are a confident classifier's (a "
        "softmax whose true category leads by 6 logits). v1 is skipped where it would take minutes and many GB.")
    parts.append("")
    parts.append(throughput_table(cpu) if cpu else "_No CPU results recorded._")
    parts.append("")
    parts += targets(cpu, train)
    parts += history(list(runs))
    parts.append(
        "**Where the time goes** (CPU, `laser`, one thread, thread CPU time per kernel and per autograd node, "
        "2026-11-30 20:10–20:45 UTC). The backward pass is about 60 % of a fwd+bwd call. Its largest single "
        "cost is the gradient of `binary` (`[B, T, N, N, R]`, 26 MB at B = 64), zero-filled and written once per "
        "call (about 14 of ~95 ms) whatever the engine does, since autograd hands it on dense; then the row "
        "gathers' backwards (segment sums, ~16 ms), the `and` nodes' product backwards (~10 ms) and the fused "
        "folds (~20 ms together). Under the product logic the hot folds are single autograd nodes with "
        "hand-derived backwards (`ops.product_fold`: quantifiers and `eventually` read at t = 0; "
        "`ops.suffix_or`: `eventually` over time; `ops.prefix_or1`: the witness chains' prefix ∨): each replaces "
        "5–9 elementwise passes and autograd nodes by 3–5 passes, computes its forward with the unfused "
        "composition's arithmetic (bitwise-equal values), checks only the fold's total product for zeros and "
        "differentiates the unfused composition where it is 0. Measured as interleaved processes on the same "
        "inputs (the engine of commit 3a93a3f against this one, `--engines v2`, three runs each, load 3.0–3.6): "
        "`laser` fwd+bwd 413–529 → 571–643 videos/s (1.3×), values-only fwd+bwd 854–1,154 → 1,173–1,221, "
        "forward 1,579–1,749 → 1,678–1,840, alloc peak 108 → 93 MB. At large B the gain is larger: chunks "
        "(2^21 elements, checkpointed) now take the instances sorted by video and read their own slices of "
        "the fact tensors, where before every chunk's backward filled a gradient the size of the whole batch "
        "(B = 1,024: 160 → 306–382 videos/s in one process). What is left is one pass over ~20,000 rows × 32 "
        "frames of memory per remaining operation, at a few GB/s on this shared machine; reaching 2,500 "
        "videos/s needs kernels that keep a chain's intermediate values in cache (one pass per chain instead of "
        "one per node), i.e. compiled code: `torch.compile` fused a 3-operation product chain 3.7× on this CPU "
        "but took 48 s to compile and would recompile for every plan layout, so the engine does not use it. "
        "N = 32 costs what its 29,760 assignments per 3-variable node cost (88× N = 8's 336): meeting 50 "
        "videos/s there needs less work per video (factorised or pruned assignments), not faster kernels.")
    parts.append("")
    parts.append(
        "**2026-12-01** (the same machine type, quieter: load about 1). *Large batches:* the fall of "
        "throughput with B had two causes, both measured in one process: (1) glibc returns every freed block "
        "above its mmap threshold (at most 32 MB) to the system, so each call's whole-batch gradients (420 MB "
        "for `binary` at B = 1,024) were page-faulted in afresh — `laser` fwd+bwd at B = 1,024 553 videos/s, "
        "1,314 with freed memory kept (`stlspec.backends.torch.memory.keep_freed_memory`, which `python -m "
        "laser_train` and the benchmarks now call); (2) every chunked call was checkpointed, i.e. its forward "
        "recomputed in the backward pass — chunks now keep their activations below `checkpoint_above` (2 GiB "
        "on CPU): 1,801–1,821 videos/s at B = 1,024 against 1,763–1,813 at B = 64. *Training step:* its spec "
        "evaluation had been timed on a plan the step had just cached; timed with its planning it was 37 % of "
        "the step (0.091 of 0.249 s at batch 16). Planning is now array work per (template, node) item instead "
        "of Python per (template, node) (`plan.py`; plans bit-identical to the previous builder's on 24 "
        "recorded training calls), the segment-sum sort of a gather is done at the first backward that needs "
        "it (float64 backwards never do), and positives and negatives share one call (per-instance witness "
        "flags): spec evaluation 0.091 → 0.064–0.067 s per step (the recorded rows below), of which about 20 ms is "
        "planning (batch tables 10, device tables 7.5), 15 ms the engine's fused nodes and gathers, and the rest the stock "
        "autograd nodes of the engine and of the loss (the sparsity term alone about 7 ms). The perception model "
        "takes 0.134–0.142 s, so 15 % would need spec evaluation under 24 ms per step.")
    parts.append("")
    parts.append(
        "**2026-12-01, afternoon: the fused kernel.** Every one of the 1,295 specs of the default training set — "
        "the captions' chains, their negatives (chains with negated conjunctions, `exists … always not …`) and "
        "the 9 background rules (`forall x, y. always (not a or b)`) — is of the kernel's shape, so a training "
        "step's two spec calls (positives and negatives; the rules on one-frame pseudo-videos, now views of the "
        "fact tensors instead of copies) no longer plan anything on the host. Profiled per step (batch 16): "
        "the kernel's forward and backward about 2.3 + 5.5 ms for the caption call (~76 instances) and 1.8 + "
        "3.1 ms for the rules (864 one-frame instances); the rest of the spec losses' time is the loss terms' "
        "own torch operations and autograd (sparsity, clamps, logs, the float64 casts of the scene graph). "
        "Spec evaluation: 0.064–0.067 s → 0.027–0.028 s per step.")
    parts.append("")
    parts += ["### Fused kernel", ""]
    parts.append(
        "The fused kernel (`stlspec/backends/torch/chain_kernels.py`, numba; see [the torch backend]"
        "(torch.md#the-fused-kernel-for-laser-shaped-specs)) evaluates a LASER-shaped spec instance in one pass "
        "per chunk of 64 assignments, in cache, with a hand-derived backward; the generic engine (`fused=False`) "
        "runs one kernel per node batch over every row. Side by side in the latest run (`mixed` holds two of its "
        "six shapes in the kernel's form; `sweep_*` and `prune_N`'s `v2 exact` are LASER chains):")
    parts.append("")
    ft = fused_table(cpu)
    parts.append(ft or "_No side-by-side rows in the latest run._")
    parts.append("")
    parts.append(
        "**Where its time goes** (the kernel's own time, sampled with `perf` over 40 `laser` calls and 3 N = 32 "
        "calls, fwd+bwd with witnesses, float32, 2026-12-01 16:40 UTC; shares noisy to a few points). `laser` "
        "(B = 64, N = 8): reading the literals from the fact tensors 17 % and adding their gradients to the fact "
        "gradients 16 % (each element on its own cache line of the strided `[B, T, N, N, R]` layout; the generic "
        "engine's atom gathers and their backward pay the same), the event products 16 % (computed in the "
        "forward pass and again in the backward one) and their gradients 10 %, the scans 7 % forward and 8 % "
        "backward, the folds, exclusive products and witness gradients 15 %, enumerating the assignments 4 %, "
        "numba's reference counting 7 %; outside the kernel, the backward pass zero-fills the dense gradient "
        "of `binary` (26 MB), as every engine does. N = 32 (B = 16, 29,760 assignments per video): the event "
        "products 20 %, their gradients 19 %, the backward pass's exclusive products, witness and weight "
        "gradients and enumeration 23 %, the forward pass's folds, enumeration and literal reads 12 %, the "
        "scans 9 % forward and 10 % backward. What made the kernel 1.3–1.7× faster than in the run of "
        "2026-12-01 14:27 UTC: its lane loops index the `[body, t, lane]` arrays directly instead of through "
        "per-step views (numba reference-counts each view with two atomic operations, which cost more than a 64-lane "
        "step; they were 18 % of the time at N = 32), and the per-row arrays are in the facts' dtype "
        "(float32 halves their memory traffic and doubles the vector width). Without witnesses (values only) "
        "the kernel is now also the faster engine at every N, although its backward pass recomputes the "
        "forward one. Precision: the per-row scans run in the facts' dtype, the folds over rows (up to N³ "
        "factors) and the literal gradients' sums in float64; on the `laser` batch in float32 its values, "
        "witnesses and gradients are within 3e-7 of float64 (relative to the largest), where the generic "
        "engine's float32 witnesses are 2e-3 off and its category gradients 5e-3.")
    parts.append("")
    ref = [r for r in cpu if r.get("reference_videos_per_s")]
    for r in ref:
        if r["engine"] == "v2":
            parts.append(f"The reference interpreter ran the `laser` specs at {_n(r['reference_videos_per_s'])} "
                         f"videos/s (values only, no gradients, CPU time, {r['B']}-video batch's first videos): "
                         f"the v2 engine's fwd+bwd with witnesses is {_n(r['ratio_vs_reference'])}× that.")
            parts.append("")
    if has_plot:
        parts += ["![fwd+bwd throughput against batch size and number of tracks, engines v1 and v2]"
                  "(img/torch_scaling.png)", ""]
    parts += ["### Training step", ""]
    parts.append(
        "`bench/train_step.py`: median over the measured steps of a weakly supervised step of `python -m "
        "laser_train` (default configuration, product logic, positives with witnesses, negatives, background "
        "rules), split into the perception model and the spec losses; the spec losses of every step are also "
        "evaluated by v1 on the same inputs (the two losses agree to 1e-6, checked in the benchmark). The spec "
        "losses are timed as a training step meets them: with the host-side planning of a new batch layout "
        "(every timed region starts with `clear_plans()`). Rows recorded before 2026-12-01 (`planning timed: "
        "no`) were timed on the plan the step had just cached, which hid the planning in the step's remainder: "
        "their spec shares are understated and are kept only for the record; the target reads the other rows.")
    parts.append("")
    if train:
        t = train[0]
        parts.append(f"Dataset: synthetic world, {t.get('train_videos')} training videos, up to {t['frames']} frames, up "
                     f"to {t['max_tracks']} tracks, {t['negatives_per_video']} negatives per video, "
                     f"{t['background_specs']} background rules, {t['steps']} measured steps.")
        parts.append("")
        parts.append(train_table(train))
    else:
        parts.append("_No training-step results recorded._")
    parts.append("")
    parts += ["### GPU", ""]
    if cuda:
        parts.append(
            "`bash bench/gpu_checks.sh` on a lent GPU machine (`bench/eval_throughput.py --device cuda --engines v2 "
            "--threads 0`; rates by wall time, which on a GPU is what counts; the GPU target is `laser` ≥ 100,000 "
            "videos/s fwd+bwd). Every run is kept, oldest first, so the table shows the engine's history: the run "
            "of 2026-11-30 16:50 UTC predates the vectorised plan lookup (no per-instance host work on a repeated "
            "layout), the flat-offset atom gathers and the prepared gather backwards; the run of 17:36 has all "
            "three, with chunks of 2^23 elements (checkpointed) at B ≥ 1,024; the run of 17:57 sizes chunks from the "
            "GPU's free memory (one chunk at B = 1,024 and 4,096). Its B = 16,384 row is not representative: the "
            "bound was then re-read on every call, and the caching allocator's reserved blocks shrink the free "
            "memory, so chunk boundaries changed between calls and each call built new plans on the host (hence "
            "the 2,446 videos/s forward). The bound is now read once per evaluator and device, counting the "
            "allocator's unused blocks as free; that fix has not been measured on a GPU yet.")
        parts.append("")
        parts.append(gpu_table(cuda))
    else:
        parts.append("Not measured: no GPU was lent to this session. The engine has no CPU-only operation (host "
                     "tables are built once per call layout and copied to the device of the inputs; one host "
                     "synchronisation per call reads frame counts, track masks and, with pruning or `top_m`, the "
                     "category scores, and the backward of each fused product-logic fold reads one flag). The script to run on a GPU machine is one command: `bash "
                     "bench/gpu_checks.sh`, then `python docs/gen_performance.py`.")
    parts += ["", END]
    return "\n".join(parts)


def generate() -> str:
    runs = _runs(_rows("cpu.jsonl"))
    cpu = runs[-1] if runs else []  # the table, targets and plot show the latest run
    train, cuda = _rows("train_step.jsonl"), _rows("gpu/eval_cuda.jsonl")
    has_plot = plot(cpu)
    text = PAGE.read_text(encoding="utf-8")
    new = section(cpu, train, cuda, has_plot, runs)
    if START in text:
        a, b = text.index(START), text.index(END) + len(END)
        return text[:a] + new + text[b:]
    a = text.index("## Torch backend")
    b = text.find("\n## ", a + 1)  # the next section is not ours
    return text[:a] + new + ("\n\n" + text[b + 1:] if b >= 0 else "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/performance.md is stale")
    args = ap.parse_args(argv)
    text = generate()
    if args.check:
        return 0 if PAGE.read_text(encoding="utf-8") == text else 1
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
