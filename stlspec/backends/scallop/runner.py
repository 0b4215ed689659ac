"""Run compiled Scallop programs through ``scallopy`` (optional; imported lazily).

``scallopy`` is not on the package index (the name there is an unrelated
placeholder): it is built from source with Rust, see ``docs/scallop.md``.
Nothing here imports it until a program is actually run, and when it is
missing :func:`require_scallopy` raises an :class:`ImportError` that says how
to install it.

Two entry points:

:func:`run`
    One trace, one :class:`~stlspec.backends.scallop.emit.ScallopProgram`
    (standalone or not): returns each spec's value and normalised witnesses.
:class:`ScallopModule`
    A ``torch.nn.Module`` taking the same tensors as the torch backend
    (``names [B, N, C]``, ``unary [B, T, N, P]``, ``binary [B, T, N, N, R]``,
    optional ``frame_mask [B, T]``, ``track_mask [B, N]``, ``present [B, T, N]``)
    and returning ``[B, S]`` spec values with gradients, through scallopy's
    forward function with ``dispatch="serial"`` (the default ``"parallel"``
    crashes in scallopy 0.2.5).

Default provenance is ``difftopkproofs`` with ``k = 3`` (what LASER trains
with). Use ``minmaxprob`` to reproduce stlspec's ``godel`` logic exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from stlspec.backends.scallop import names as nm
from stlspec.backends.scallop.emit import OUTPUT_SAT, ScallopProgram, check_frames, compile_program

__all__ = ["require_scallopy", "run", "RunResult", "ScallopModule", "trace_facts", "INSTALL_HINT"]

INSTALL_HINT = (
    "scallopy (Scallop's Python binding) is not installed. It is not on PyPI (the `scallopy` name there is an "
    "unrelated placeholder); build it from source: install Rust (https://rustup.rs), then "
    "`git clone https://github.com/scallop-lang/scallop && cd scallop` (check out the 0.2.5 release), then "
    "`pip install maturin && make install-scallopy` inside this virtual environment (`make install-scli` "
    "for the command line). See docs/scallop.md. "
    "The program text itself (stlspec.compile(..., target='scallop').text) needs no scallopy: "
    "run it with `scli -p minmaxprob -q sat FILE.scl`."
)

#: Input relations whose facts are certain (no tag): the domains.
NON_PROBABILISTIC = ("frame", "num_frames", "track", "candidate")


def require_scallopy():
    """Import and return ``scallopy``, or raise :class:`ImportError` with install instructions."""
    try:
        import scallopy  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    if not hasattr(scallopy, "ScallopContext"):
        raise ImportError("the installed `scallopy` is not Scallop's binding (no ScallopContext). " + INSTALL_HINT)
    return scallopy


@dataclass(frozen=True)
class RunResult:
    """Values by spec name, and per spec one normalised witness distribution per event."""

    values: dict[str, float]
    witnesses: dict[str, tuple[tuple[float, ...], ...]]


def trace_facts(trace: Any, used_literals: Sequence[str] | None = None) -> dict[str, list[tuple[float | None, tuple]]]:
    """The input facts of a :class:`stlspec.trace.Trace` as ``{relation: [(prob or None, tuple)]}``.

    Probability-0 facts are left out (a missing tuple is 0); ``candidate``
    holds, untagged, the ``(track, category)`` pairs with a non-zero name score.
    ``used_literals`` (encoded names) restricts the facts to the names a
    program mentions.
    """
    import numpy as np

    check_frames(trace.num_frames)
    keep = None if used_literals is None else set(used_literals)
    T, N = trace.num_frames, trace.num_tracks
    out: dict[str, list] = {
        "frame": [(None, (t,)) for t in range(T)],
        "num_frames": [(None, (T,))],
        "track": [(None, (n,)) for n in range(N)],
        "candidate": [], "name": [], "unary": [], "binary": [],
    }

    def ok(lit: str) -> bool:
        return keep is None or lit in keep

    for n, c in zip(*np.nonzero(trace.names)):
        lit = nm.literal(trace.categories[c])
        if ok(lit):
            out["name"].append((float(trace.names[n, c]), (int(n), lit)))
            out["candidate"].append((None, (int(n), lit)))
    for t, n, p in zip(*np.nonzero(trace.unary)):
        lit = nm.literal(trace.unary_preds[p])
        if ok(lit):
            out["unary"].append((float(trace.unary[t, n, p]), (lit, int(t), int(n))))
    for t, n, m, r in zip(*np.nonzero(trace.binary)):
        lit = nm.literal(trace.binary_preds[r])
        if ok(lit):
            out["binary"].append((float(trace.binary[t, n, m, r]), (lit, int(t), int(n), int(m))))
    return out


def _tag_value(tag: Any) -> float:
    if hasattr(tag, "item"):
        return float(tag.item())
    if isinstance(tag, tuple):  # some provenances report (prob, proofs)
        tag = tag[0]
    return float(tag)


def _normalise(scores: list[float]) -> tuple[float, ...]:
    s = [max(x, 0.0) for x in scores]
    total = math.fsum(s)
    return tuple(x / total for x in s) if total > 0 else tuple(0.0 for _ in s)


def run(program: Any, trace: Any = None, *, provenance: str = "difftopkproofs", k: int = 3,
        specs: Sequence[str] | None = None, witnesses: bool = False) -> RunResult:
    """Run ``program`` with scallopy and read ``sat`` (and, with ``witnesses=True``, the witness relations).

    ``program`` is a :class:`ScallopProgram` or a :class:`stlspec.ir.CoreProgram`
    (compiled here, with witness relations only when ``witnesses=True``: under
    top-k provenances they cost far more than ``sat``). A non-standalone
    program needs ``trace``; a standalone one must not get another. Without
    ``witnesses`` the result's witness tuples are empty; a compiled program is
    read for whatever witness relations it has.
    """
    scallopy = require_scallopy()
    if not isinstance(program, ScallopProgram):
        program = compile_program(program, specs=specs, witnesses=witnesses)

    if program.standalone and trace is not None:
        raise ValueError("this program already embeds a trace; compile it without `trace` to run another one")
    if not program.standalone and trace is None:
        raise ValueError("this program has no embedded trace: pass `trace=`")
    ctx = scallopy.ScallopContext(provenance=provenance, k=k)
    ctx.add_program(program.text)
    tagged = provenance != "unit"
    if trace is not None:
        if tagged:
            ctx.set_non_probabilistic(list(NON_PROBABILISTIC))
        for rel, facts in trace_facts(trace, list(program.literals)).items():
            if not facts:
                continue
            if not tagged or rel in NON_PROBABILISTIC:
                ctx.add_facts(rel, [tup for _, tup in facts])
            else:
                ctx.add_facts(rel, [(_as_tag(p, provenance), tup) for p, tup in facts])
    ctx.run()

    def rows(rel: str):
        # (tag, tuple) pairs; the unit provenance reports bare tuples.
        for row in ctx.relation(rel):
            yield (row[0], row[1]) if tagged else (1.0, row)

    sat = {tup[0]: _tag_value(tag) for tag, tup in rows(OUTPUT_SAT)}
    # sat keys are the encoded spec names (names.literal); a missing tuple is 0.
    values = {name: sat.get(program.sat_keys[name], 0.0) for name in program.specs}
    T = trace.num_frames if trace is not None else _embedded_frames(program.text)
    witnesses = {}
    for name in program.specs:
        dists = []
        for _, rel in program.witnesses.get(name, ()):
            scores = {tup[0]: _tag_value(tag) for tag, tup in rows(rel)}
            dists.append(_normalise([scores.get(t, 0.0) for t in range(T)]))
        witnesses[name] = tuple(dists)
    return RunResult(values, witnesses)


def _as_tag(p: float | None, provenance: str) -> Any:
    if p is None:
        return None
    if provenance.startswith("diff"):
        import torch

        return torch.tensor(p, dtype=torch.float32)
    return p


def _embedded_frames(text: str) -> int:
    import re

    m = re.search(r"^rel num_frames = \{\((\d+),\)\}$", text, flags=re.M)
    if m is None:  # pragma: no cover - standalone programs always have it
        raise ValueError("the program embeds no num_frames fact")
    return int(m.group(1))


try:  # torch is optional for `run`; the module class needs it as a base.
    import torch as _torch

    _ModuleBase: Any = _torch.nn.Module
except ImportError:  # pragma: no cover - torch is installed wherever training happens
    _torch = None
    _ModuleBase = object


class ScallopModule(_ModuleBase):
    """A ``torch.nn.Module`` evaluating a program's specs with scallopy (differentiable).

    ``ScallopModule(program, provenance="difftopkproofs", k=3, columns=None)``;
    ``module(names, unary, binary, frame_mask=None, track_mask=None, present=None)``
    returns ``[B, S]`` values, one column per spec in ``module.program.specs``
    order. ``program`` is a core program (compiled here, its vocabulary naming
    the tensor columns) or a :class:`ScallopProgram` compiled without a trace,
    in which case ``columns=(categories, unary_preds, binary_preds)`` must name
    the tensor columns. ``threshold`` drops facts with probability
    ``<= threshold`` (default: keep every fact of a present track and frame, so
    that gradients reach them). Padding (``frame_mask``: a prefix of real
    frames; ``track_mask``: real tracks) is left out of the facts, so it never
    changes a result.
    """

    def __init__(self, program: Any, provenance: str = "difftopkproofs", k: int = 3,
                 columns: tuple[Sequence[str], Sequence[str], Sequence[str]] | None = None,
                 threshold: float | None = None):
        scallopy = require_scallopy()
        if _torch is None:  # pragma: no cover
            raise ImportError("ScallopModule needs torch: pip install 'stlspec[torch]'")
        super().__init__()
        if not isinstance(program, ScallopProgram):
            if columns is None:
                v = program.vocabulary
                columns = (v.categories, v.unary_names, v.binary_names)
            program = compile_program(program)
        if program.standalone:
            raise ValueError("ScallopModule needs a program compiled without an embedded trace")
        if columns is None:
            raise ValueError("pass columns=(categories, unary_preds, binary_preds) naming the tensor columns")
        used = set(program.literals)
        self.program = program
        self.threshold = threshold
        # (column index, encoded literal) of the columns the program mentions.
        self.cols = tuple([(i, nm.literal(c)) for i, c in enumerate(cs) if nm.literal(c) in used]
                          for cs in columns)
        self.ctx = scallopy.ScallopContext(provenance=provenance, k=k)
        self.ctx.add_program(program.text)
        self.ctx.set_non_probabilistic(list(NON_PROBABILISTIC))
        self.forward_fn = self.ctx.forward_function(
            output=OUTPUT_SAT, output_mapping=[(program.sat_keys[s],) for s in program.specs],
            dispatch="serial")

    def facts(self, names, unary, binary, frame_mask=None, track_mask=None, present=None) -> dict[str, list]:
        """The batched input facts (``{relation: [facts of video b]}``) for scallopy's forward function."""
        B, T, N = unary.shape[0], unary.shape[1], unary.shape[2]
        if present is not None:
            unary = unary * present[..., None].to(unary.dtype)
            both = present[:, :, :, None] & present[:, :, None, :]
            binary = binary * both[..., None].to(binary.dtype)
        cat_cols, u_cols, b_cols = self.cols
        th = self.threshold
        keep = (lambda x: True) if th is None else (lambda x: float(x.detach() if hasattr(x, "detach") else x) > th)
        inputs: dict[str, list] = {r: [] for r in ("frame", "num_frames", "track", "candidate", "name", "unary",
                                                   "binary")}
        for b in range(B):
            Tb = T if frame_mask is None else int(frame_mask[b].sum())
            tracks = list(range(N)) if track_mask is None else [n for n in range(N) if bool(track_mask[b, n])]
            inputs["frame"].append([(t,) for t in range(Tb)])
            inputs["num_frames"].append([(Tb,)])
            inputs["track"].append([(n,) for n in tracks])
            name_facts = [(names[b, n, i], (n, lit)) for n in tracks for i, lit in cat_cols if keep(names[b, n, i])]
            inputs["name"].append(name_facts)
            # The quantifiers' domains: every track with a name fact (all of them without a threshold,
            # so that gradients reach every name score).
            inputs["candidate"].append([tup for _, tup in name_facts])
            inputs["unary"].append([(unary[b, t, n, i], (lit, t, n)) for t in range(Tb) for n in tracks
                                    for i, lit in u_cols if keep(unary[b, t, n, i])])
            inputs["binary"].append([(binary[b, t, n, m, i], (lit, t, n, m)) for t in range(Tb)
                                     for n in tracks for m in tracks for i, lit in b_cols
                                     if keep(binary[b, t, n, m, i])])
        return inputs

    def forward(self, names, unary, binary, frame_mask=None, track_mask=None, present=None):
        out = self.forward_fn(**self.facts(names, unary, binary, frame_mask, track_mask, present))
        # With an output mapping scallopy returns the [B, S] tensor (older versions: (mapping, tensor)).
        return out if isinstance(out, _torch.Tensor) else out[1]
