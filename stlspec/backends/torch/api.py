"""Entry points of the torch backend: :func:`compile_specs` and :func:`evaluate`."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from stlspec import ir
from stlspec.backends.torch.batch import Columns, SceneGraphBatch
from stlspec.backends.torch.engine import TorchEvaluator
from stlspec.diagnostics import StlError, unsupported_by_backend
from stlspec.logics import Logic

__all__ = ["compile_specs", "evaluate", "ENGINES"]

#: ``"v2"``: the level-by-level engine (default); ``"v1"``: the superseded per-shape engine, kept only
#: for the benchmark's side-by-side comparison.
ENGINES = ("v2", "v1")


def compile_specs(specs: Sequence[ir.Spec], columns: Any = None, *, logic: str | Logic = "product",
                  temperature: float = 0.1, top_m: int | None = None,
                  vocabulary: ir.Vocabulary | None = None, engine: str = "v2", **options: Any):
    """Compile specs (from one or many programs) into one :class:`TorchEvaluator`.

    ``columns`` names the tensor columns (a :class:`Columns`, vocabulary or trace);
    without it, ``vocabulary`` is used. ``top_m`` keeps, for every variable with a
    category, only its ``m`` best tracks by category score (an approximation:
    assignments using other tracks are dropped; exact when ``m >= N``). Further
    options of the v2 engine: ``prune_zero`` (default True: assignments whose category
    weight is exactly 0 are skipped -- exact values), ``prune_below`` (certified pruning:
    tracks of category weight below it are dropped where the spec's quantifiers form a prefix,
    and calls return ``EvalOutput.error_bound``), ``max_chunk_elements``, ``checkpoint_above``
    and ``plan_cache_size`` (see :class:`TorchEvaluator`).
    """
    if columns is None:
        if vocabulary is None:
            raise ValueError("compile_specs needs columns= or vocabulary=")
        columns = Columns.from_vocabulary(vocabulary)
    columns = Columns.coerce(columns)
    if engine == "v2":
        return TorchEvaluator(specs, columns, logic, temperature, top_m, **options)
    if engine == "v1":
        from stlspec.backends.torch import v1

        return v1.TorchEvaluator(specs, columns, logic, temperature, top_m)
    raise StlError([unsupported_by_backend(f"unknown torch engine {engine!r}", hints=("use 'v2' (or 'v1' to compare)",))])


def evaluate(spec: ir.Spec, trace: Any, logic: str | Logic = "product", temperature: float = 0.1, *,
             witnesses: bool = True, top_m: int | None = None, dtype: torch.dtype = torch.float64,
             engine: str = "v2"):
    """Evaluate one spec on one :class:`stlspec.trace.Trace`; returns ``(value, witnesses [E, T])`` as floats.

    A convenience mirroring :func:`stlspec.backends.reference.evaluate` (used by
    the differential tests); batch work should call a :class:`TorchEvaluator`.
    """
    ev = compile_specs([spec], Columns.from_trace(trace), logic=logic, temperature=temperature, top_m=top_m,
                       engine=engine)
    batch = SceneGraphBatch.from_traces([trace], ev.columns, dtype=dtype)
    out = ev(batch, [0], [0], witnesses=witnesses)
    w = out.witnesses[0].tolist() if witnesses else []
    return float(out.values[0]), w
