"""Cost of the Scallop runner next to the torch backend (not a test): one JSON object on stdout.

Workload (issue 13, item 17): one 3-event spec ``exists a: c, b: c', c: c''. A0 then A1 then A2`` (each A
two atoms, from ``bench/eval_throughput.py``), one video with T = 32 frames and N = 8 tracks, 50 unary and
50 binary predicates; scores ``U(0,1)**4`` like a perception model's sigmoid outputs, and each track has a
non-zero name score for 2 of the 20 categories (a detector's top-2 labels; the rest exactly 0, which is
what lets the Scallop backend restrict quantified variables to candidate tracks).

Rows (all side by side in this one process, same spec and video):

* ``scallop_fwd_s`` / ``scallop_fwdbwd_s``: ``ScallopModule`` (scallopy, ``difftopkproofs``, k = 3,
  ``threshold=0.0`` so exactly-0 facts are left out), forward / forward + backward of the value, seconds;
* ``scallop_witnesses_fwd_s``: ``run(..., witnesses=True)`` forward (only with ``--witnesses``: slow);
* ``torch_fwdbwd_s``: the torch backend (``product`` logic, values and witnesses), forward + backward;
* ``ratio_scallop_over_torch``: ``scallop_fwdbwd_s / torch_fwdbwd_s``.

Each time is the best of ``--reps`` runs, as wall and CPU (process) seconds; the load average is printed,
since the machine may be shared. ``--quick`` (CI): T = 8, N = 4, one repetition.

Usage: ``python bench/scallop_runner.py [--quick] [--T 32] [--N 8] [--reps 3] [--witnesses]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_throughput import VOCAB, laser_specs  # noqa: E402
from stlspec import ir  # noqa: E402
from stlspec.backends.torch import SceneGraphBatch, compile_specs  # noqa: E402


def _video(T: int, N: int, spec_categories: list[int], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    C, P, R = len(VOCAB.categories), len(VOCAB.unary), len(VOCAB.binary)
    names = torch.zeros(1, N, C)
    for n in range(N):
        # One of the spec's categories (so every variable has candidates) and one other.
        cats = [spec_categories[n % len(spec_categories)], int(torch.randint(C, (1,), generator=g))]
        names[0, n, cats] = torch.rand(2, generator=g) * 0.9 + 0.1
    unary = torch.rand(1, T, N, P, generator=g) ** 4
    binary = torch.rand(1, T, N, N, R, generator=g) ** 4
    return names, unary, binary


def _best(fn, reps: int) -> tuple[float, float]:
    """Best (wall, cpu) seconds over ``reps`` calls."""
    wall = cpu = float("inf")
    for _ in range(reps):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke run: T = 8, N = 4, one repetition")
    ap.add_argument("--T", type=int, default=32)
    ap.add_argument("--N", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--witnesses", action="store_true", help="also time run(..., witnesses=True) (slow)")
    args = ap.parse_args(argv)
    T, N, reps = (8, 4, 1) if args.quick else (args.T, args.N, args.reps)
    torch.set_num_threads(1)  # a shared machine: see docs/performance.md
    spec = laser_specs(1, seed=1)[0]
    program = ir.CoreProgram(VOCAB, (spec,))
    cats = [VOCAB.categories.index(c) for _, c in spec.formula.vars]  # type: ignore[attr-defined]
    names, unary, binary = _video(T, N, cats)
    row: dict = {"workload": "scallop_runner", "T": T, "N": N, "spec": "3-event chain, 3 variables",
                 "load_average": os.getloadavg()}

    ev = compile_specs([spec], vocabulary=VOCAB, logic="product")

    def torch_fwdbwd():
        b = SceneGraphBatch(names.clone().requires_grad_(), unary.clone().requires_grad_(),
                            binary.clone().requires_grad_())
        out = ev(b, [0], witnesses=True)
        (out.values.sum() + (out.witnesses * torch.linspace(0, 1, T)).sum()).backward()

    row["torch_fwdbwd_s"], row["torch_fwdbwd_cpu_s"] = _best(torch_fwdbwd, reps)
    try:
        from stlspec.backends.scallop import ScallopModule, run
        from stlspec.backends.scallop.runner import require_scallopy

        require_scallopy()
    except ImportError as exc:
        row["scallop"] = f"skipped: {str(exc).splitlines()[0][:80]}"
        print(json.dumps(row))
        return
    module = ScallopModule(program, provenance="difftopkproofs", k=3, threshold=0.0)

    def scallop_fwd():
        with torch.no_grad():
            module(names, unary, binary)

    def scallop_fwdbwd():
        u = unary.clone().requires_grad_()
        module(names, u, binary).sum().backward()

    row["scallop_fwd_s"], row["scallop_fwd_cpu_s"] = _best(scallop_fwd, reps)
    row["scallop_fwdbwd_s"], row["scallop_fwdbwd_cpu_s"] = _best(scallop_fwdbwd, reps)
    row["ratio_scallop_over_torch"] = row["scallop_fwdbwd_s"] / row["torch_fwdbwd_s"]
    if args.witnesses:
        from stlspec.trace import Trace

        trace = Trace.from_arrays(names[0].double().numpy(), unary[0].double().numpy(), binary[0].double().numpy(),
                                  categories=VOCAB.categories, unary_preds=VOCAB.unary_names,
                                  binary_preds=VOCAB.binary_names)
        row["scallop_witnesses_fwd_s"], row["scallop_witnesses_fwd_cpu_s"] = _best(
            lambda: run(program, trace, provenance="difftopkproofs", k=3, witnesses=True), 1)
    row["load_average_after"] = os.getloadavg()
    print(json.dumps(row))


if __name__ == "__main__":
    main()
