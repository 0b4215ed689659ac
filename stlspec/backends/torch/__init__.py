"""The torch backend: batched, vectorized, differentiable evaluation of core-IR specs.

Compile once, evaluate many batches::

    import stlspec
    from stlspec.backends.torch import SceneGraphBatch

    program = stlspec.compile_text(text)
    ev = stlspec.compile(program, target="torch", logic="product")   # a TorchEvaluator
    batch = SceneGraphBatch(names=..., unary=..., binary=..., frame_mask=..., track_mask=...)
    out = ev(batch, spec_ids=[0, 3, 1], video_ids=[0, 0, 1])       # K = 3 (spec, video) pairs
    out.values      # [K]          satisfaction of spec_ids[k] on video video_ids[k]
    out.witnesses   # [K, E, T]    per event, a distribution over frames (zeros for missing events)
    out.event_mask  # [K, E]       which event slots the spec really has

Tensor shapes (``B`` videos, ``T`` frames, ``N`` tracks; ``C``/``P``/``R`` columns):

=============== ================= ==========================================================
``names``       ``[B, N, C]``     category scores of each track (constant over time)
``unary``       ``[B, T, N, P]``  unary predicate scores
``binary``      ``[B, T, N, N, R]`` binary predicate scores, ``binary[b, t, n, m, r] = r(n, m)``
``frame_mask``  ``[B, T]`` bool   real frames; a video's frames must be a prefix ``[0, T_b)``
``track_mask``  ``[B, N]`` bool   real tracks (the quantifiers' domain)
``present``     ``[B, T, N]`` bool optional; facts of a track at a frame where it is absent are 0
=============== ================= ==========================================================

Columns are looked up by name through :class:`Columns` (by default the program's
vocabulary order). The device and dtype follow the input tensors. The evaluator
works under ``torch.no_grad()`` and under autograd.

Heterogeneous batches: every ``(spec, video)`` instance of a call is evaluated together, level
by level (:mod:`stlspec.backends.torch.engine`): nodes of all instances and all spec shapes are
batched by (height, op, axis), so the number of torch operations depends on the depth of the
specs and the operators they use, never on the batch size or on how many different shapes the
call holds. Witnesses follow the definition in ``stlspec/ir.py`` (``Pre_k ∧ Body_k`` for the
``k``-th event of a ``then`` chain), computed with forward prefix folds in ``O(T)`` per
assignment. See ``docs/torch.md``.
"""

from __future__ import annotations

from typing import Any

from stlspec.backends.torch.batch import Columns, EvalOutput, SceneGraphBatch
from stlspec.backends.torch.api import compile_specs, evaluate
from stlspec.backends.torch.engine import TorchEvaluator

__all__ = [
    "BACKEND", "Columns", "EvalOutput", "SceneGraphBatch", "TorchEvaluator",
    "compile_specs", "evaluate",
]


class _TorchBackend:
    """Registry entry: ``stlspec.compile(program, target="torch", **options)``."""

    name = "torch"

    def compile(self, program: Any, **options: Any) -> TorchEvaluator:
        """Compile every spec of ``program`` (a :class:`stlspec.ir.CoreProgram`).

        Options: ``logic`` (``"boolean" | "godel" | "product" | "smooth"``, default
        ``"product"``), ``temperature`` (smooth logic, default 0.1), ``top_m``
        (keep only the ``m`` best tracks per categorised variable; ``None`` = exact),
        ``columns`` (a :class:`Columns`, a vocabulary or a trace naming the tensor
        columns; default: the program's vocabulary).
        """
        columns = options.pop("columns", None)
        if columns is None:
            columns = Columns.from_vocabulary(program.vocabulary)
        return compile_specs(program.specs, columns, **options)


BACKEND = _TorchBackend()

