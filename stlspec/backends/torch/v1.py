"""**Engine v1 (superseded; kept only as the benchmark's side-by-side comparison).**

The default engine is :mod:`stlspec.backends.torch.engine`; ``compile_specs(..., engine="v1")``
selects this one. Compile core-IR specs into a batched evaluation plan and run it.

A spec's *shape* is its IR tree with every leaf (``Unary``, ``Binary``, ``Eq``,
``Const``) abstracted to "a leaf", predicate and category names removed and
window bounds removed (only whether a node has a window stays). Specs of the same
shape form a :class:`_Group`: one template tree plus parameter tables with one
row per spec (leaf kinds, columns and variable positions; window bounds; binder
categories). A call evaluates each group present in the batch as one batched
computation over all its ``(spec, video)`` instances, gathering each instance's
parameters from the tables, so the number of torch operations grows with the
number of distinct shapes, not with the batch size.

Each leaf's tensor depends on the union, over the group's specs, of the
variables the leaf uses (so a group mixing ``walking(a)`` and ``near(a, b)`` in
one slot reads that slot as a function of ``a`` and ``b``): abstracting leaves
trades a little broadcasting for far fewer groups.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from stlspec import ir
from stlspec.backends import unsupported
from stlspec.backends.torch import ops
from stlspec.backends.torch.batch import Columns, EvalOutput, SceneGraphBatch
from stlspec.backends.torch.ops import TorchLogic
from stlspec.backends.torch.v1_witness import WitnessMixin
from stlspec.logics import Logic, get_logic

__all__ = ["TorchEvaluator"]

_UNARY, _BINARY, _EQ, _CONST = 0, 1, 2, 3
_HI_NONE = 1 << 30  # "unbounded" in integer window tables


# ---------------------------------------------------------------------- shapes and templates


@dataclass(eq=False)
class _Node:
    op: str  # leaf not and or next ev al until ex fa
    children: tuple["_Node", ...] = ()
    scope: tuple[int, ...] = ()  # variable ids in scope, outermost first (the tensor's var dims)
    slot: int = -1  # leaf / window / binder slot in the group's tables
    weak: bool = False
    steps: int = 1  # next: how many frames ahead
    windowed: bool = False
    event: int | None = None
    block: tuple[int, ...] = ()  # variable ids bound here
    has_cat: tuple[bool, ...] = ()
    events: frozenset = frozenset()  # tagged events in this subtree
    deps: tuple[int, ...] = ()  # leaf: variables it depends on (union over the group)
    temporal_above: bool = False  # some ancestor is a temporal operator


@dataclass
class _SpecParams:
    """One spec's rows of its group's tables, in the template's pre-order."""

    leaves: list  # (kind, col, value, var ids)
    windows: list  # (is_fraction, lo, hi)
    cats: list  # category name or None, per binder variable


def _canon(spec: ir.Spec, columns: Columns):
    """The spec's shape key, its parameters and a template tree (used for the group's first spec)."""
    leaves: list = []
    windows: list = []
    cats: list = []
    names: dict[str, int] = {}
    ucol = {p: i for i, p in enumerate(columns.unary)}
    bcol = {p: i for i, p in enumerate(columns.binary)}

    def win(w: ir.Window | None) -> bool:
        if w is None:
            return False
        hi = _HI_NONE if w.hi is None else w.hi
        windows.append((w.unit == "fraction", float(w.lo), float(hi)))
        return True

    def go(f: ir.Formula, scope: tuple[int, ...], temporal: bool):
        match f:
            case ir.Const(v):
                leaves.append((_CONST, 0, 1.0 if v else 0.0, ()))
                return ("L",), _Node("leaf", scope=scope, slot=len(leaves) - 1, temporal_above=temporal)
            case ir.Unary(p, v):
                if p in ucol:
                    leaves.append((_UNARY, ucol[p], 0.0, (names[v],)))
                else:  # a predicate the tensors do not have is false, as in the reference
                    leaves.append((_CONST, 0, 0.0, ()))
                return ("L",), _Node("leaf", scope=scope, slot=len(leaves) - 1, temporal_above=temporal)
            case ir.Binary(p, a, b):
                if p in bcol:
                    leaves.append((_BINARY, bcol[p], 0.0, (names[a], names[b])))
                else:
                    leaves.append((_CONST, 0, 0.0, ()))
                return ("L",), _Node("leaf", scope=scope, slot=len(leaves) - 1, temporal_above=temporal)
            case ir.Eq(a, b):
                leaves.append((_EQ, 0, 0.0, (names[a], names[b])))
                return ("L",), _Node("leaf", scope=scope, slot=len(leaves) - 1, temporal_above=temporal)
            case ir.Not(a):
                k, n = go(a, scope, temporal)
                return ("not", k), _Node("not", (n,), scope, events=n.events, temporal_above=temporal)
            case ir.And(args) | ir.Or(args):
                op = "and" if isinstance(f, ir.And) else "or"
                ks, ns = zip(*(go(a, scope, temporal) for a in args))
                ev = frozenset().union(*(n.events for n in ns))
                return (op, ks), _Node(op, tuple(ns), scope, events=ev, temporal_above=temporal)
            case ir.Next(a, weak, steps):
                k, n = go(a, scope, True)
                return ("next", weak, steps, k), _Node("next", (n,), scope, weak=weak, steps=steps, events=n.events,
                                                temporal_above=temporal)
            case ir.Eventually(a, w, event):
                slot = len(windows)
                has = win(w)
                k, n = go(a, scope, True)
                ev = n.events | ({event} if event is not None else set())
                return (("ev", has, event, k),
                        _Node("ev", (n,), scope, slot=slot if has else -1, windowed=has, event=event,
                              events=frozenset(ev), temporal_above=temporal))
            case ir.Always(a, w):
                slot = len(windows)
                has = win(w)
                k, n = go(a, scope, True)
                return ("al", has, k), _Node("al", (n,), scope, slot=slot if has else -1, windowed=has,
                                             events=n.events, temporal_above=temporal)
            case ir.Until(a, b, w):
                slot = len(windows)
                has = win(w)
                ka, na = go(a, scope, True)
                kb, nb = go(b, scope, True)
                return (("until", has, ka, kb),
                        _Node("until", (na, nb), scope, slot=slot if has else -1, windowed=has,
                              events=na.events | nb.events, temporal_above=temporal))
            case ir.Exists(block, body) | ir.Forall(block, body):
                op = "ex" if isinstance(f, ir.Exists) else "fa"
                ids = []
                for v, c in block:
                    names[v] = len(cats)
                    ids.append(len(cats))
                    cats.append(c)
                inner = scope + tuple(ids)
                k, n = go(body, inner, temporal)
                has_cat = tuple(c is not None for _, c in block)
                return ((op, has_cat, k),
                        _Node(op, (n,), scope, block=tuple(ids), has_cat=has_cat, events=n.events,
                              temporal_above=temporal))
        raise unsupported("torch", f"the formula node {type(f).__name__}")

    key, root = go(spec.formula, (), False)
    return key, _SpecParams(leaves, windows, cats), root


class _Group:
    """Specs of one shape: a template tree and parameter tables (one row per spec)."""

    def __init__(self, key, root: _Node):
        self.key = key
        self.root = root
        self.params: list[_SpecParams] = []
        self.spec_index: list[int] = []  # global spec id of each row
        self._device_tables: dict = {}

    def finish(self, columns: Columns) -> None:
        nodes = list(_nodes(self.root))
        self.leaves = [n for n in nodes if n.op == "leaf"]
        self.binders = [n for n in nodes if n.op in ("ex", "fa")]
        self.window_nodes = [n for n in nodes if n.windowed]
        S = len(self.params)
        self.num_vars = len(self.params[0].cats)
        # Leaf dependency sets: union over specs, in scope order.
        for n in self.leaves:
            used = set()
            for p in self.params:
                used.update(p.leaves[n.slot][3])
            n.deps = tuple(v for v in n.scope if v in used)
        # Integer table: per leaf (kind, col, posA, posB) ; per window (is_frac) ; per var (cat col).
        L, W, V = len(self.leaves), len(self.window_nodes), self.num_vars
        ints = np.zeros((S, 4 * L + W + V), dtype=np.int64)
        floats = np.zeros((S, L + 2 * W), dtype=np.float64)
        cat_col = {c: i for i, c in enumerate(columns.categories)}
        for s, p in enumerate(self.params):
            for i, n in enumerate(self.leaves):
                kind, col, value, vs = p.leaves[n.slot]
                pos = [n.deps.index(v) for v in vs] + [-1, -1]
                ints[s, 4 * i:4 * i + 4] = (kind, col, pos[0], pos[1] if len(vs) > 1 else pos[0])
                floats[s, i] = value
            for i, n in enumerate(self.window_nodes):
                frac, lo, hi = p.windows[n.slot]
                ints[s, 4 * L + i] = int(frac)
                floats[s, L + 2 * i:L + 2 * i + 2] = (lo, hi)
            for v, c in enumerate(p.cats):
                ints[s, 4 * L + W + v] = cat_col.get(c, -1) if c is not None else -1
        self.ints, self.floats = ints, floats
        # Static facts that spare per-instance work.
        self.leaf_kinds = [frozenset(int(k) for k in ints[:, 4 * i]) for i in range(L)]
        self.window_static = []
        for i, n in enumerate(self.window_nodes):
            frac = ints[:, 4 * L + i]
            lo, hi = floats[:, L + 2 * i], floats[:, L + 2 * i + 1]
            lo_zero = bool(np.all(lo == 0))
            hi_none = bool(np.all((frac == 0) & (hi >= _HI_NONE)))
            self.window_static.append((lo_zero, hi_none))
        self.window_pos = {id(n): i for i, n in enumerate(self.window_nodes)}
        self.leaf_pos = {id(n): i for i, n in enumerate(self.leaves)}

    def tables(self, device):
        key = str(device)
        if key not in self._device_tables:
            self._device_tables[key] = (torch.as_tensor(self.ints, device=device),
                                        torch.as_tensor(self.floats, dtype=torch.float64, device=device))
        return self._device_tables[key]


def _nodes(n: _Node):
    yield n
    for c in n.children:
        yield from _nodes(c)


# ---------------------------------------------------------------------- the evaluator


class TorchEvaluator:
    """A compiled list of specs; call it on a :class:`SceneGraphBatch`.

    Attributes: ``specs`` (the compiled specs, in order), ``spec_ids`` (name →
    index), ``num_groups`` (distinct shapes), ``num_events`` (``E``, the widest
    spec's number of events), ``logic``, ``temperature``, ``top_m``, ``columns``.
    """

    def __init__(self, specs: Sequence[ir.Spec], columns: Columns, logic: str | Logic = "product",
                 temperature: float = 0.1, top_m: int | None = None):
        L = get_logic(logic, temperature)
        if L.enumerates:
            raise unsupported("torch", "the exact logic", "use product, godel, smooth or boolean")
        self.logic = L.name
        self.temperature = float(getattr(L, "temperature", temperature))
        self._logic = TorchLogic(L.name, self.temperature)
        if top_m is not None and top_m < 1:
            raise ValueError("top_m must be a positive number of tracks")
        self.top_m = top_m
        self.columns = Columns.coerce(columns)
        self.specs = tuple(specs)
        self.spec_ids = {s.name: i for i, s in enumerate(self.specs)}
        groups: dict = {}
        group_index: dict = {}
        self._group_of = np.zeros(len(self.specs), dtype=np.int64)
        self._row_of = np.zeros(len(self.specs), dtype=np.int64)
        self._num_events = np.zeros(len(self.specs), dtype=np.int64)
        for i, spec in enumerate(self.specs):
            free = ir.free_vars(spec.formula)
            if free:
                raise ValueError(f"spec {spec.name!r} has free variables {sorted(free)}")
            key, params, root = _canon(spec, self.columns)
            if key not in groups:
                groups[key] = _Group(key, root)
                group_index[key] = len(group_index)
            g = groups[key]
            self._group_of[i] = group_index[key]
            self._row_of[i] = len(g.params)
            g.params.append(params)
            g.spec_index.append(i)
            evs = [n.event for n in _nodes(root) if n.op == "ev" and n.event is not None]
            self._num_events[i] = max([e + 1 for e in evs] + [len(spec.events)], default=0)
        self.groups: list[_Group] = list(groups.values())
        for g in self.groups:
            g.finish(self.columns)
        self.num_events = int(self._num_events.max(initial=0))

    @property
    def num_groups(self) -> int:
        return len(self.groups)

    def groups_for(self, spec_ids: Iterable[int]) -> int:
        """How many groups (batched computations) a call with these specs runs."""
        return len(set(self._group_of[np.asarray(list(spec_ids), dtype=np.int64)].tolist()))

    def __call__(self, batch: SceneGraphBatch, spec_ids: Any = None, video_ids: Any = None, *,
                 witnesses: Any = True) -> EvalOutput:
        """Evaluate ``spec_ids[k]`` on video ``video_ids[k]`` for every ``k``.

        ``spec_ids``: indices or names; ``None`` means spec ``b`` on video ``b``
        when there are as many specs as videos, or the single spec on every video.
        ``video_ids``: ``None`` means ``0..K-1``. ``witnesses=False`` skips the
        pinned evaluations (``witnesses`` is then ``None``); one flag per instance evaluates the
        flagged and the other instances in two calls (the witnesses of the others are 0).
        """
        B, T, N = batch.shape
        sid, vid = self._resolve_ids(spec_ids, video_ids, B)
        K = len(sid)
        dev, dtype = batch.unary.device, batch.unary.dtype
        E = int(self._num_events[sid].max(initial=0)) if K else 0
        if not isinstance(witnesses, (bool, np.bool_)):  # one flag per instance: two calls, merged
            from stlspec.backends.torch.engine import _witness_mask

            wmask, _ = _witness_mask(witnesses, K)
            on, off = np.flatnonzero(wmask), np.flatnonzero(~wmask)
            a = self(batch, sid[on], vid[on], witnesses=True)
            b = self(batch, sid[off], vid[off], witnesses=False)
            values = torch.zeros(K, dtype=dtype, device=dev)
            values = values.index_put((torch.as_tensor(on, device=dev),), a.values)
            values = values.index_put((torch.as_tensor(off, device=dev),), b.values)
            wits = torch.zeros(K, E, T, dtype=dtype, device=dev)
            wits = wits.index_put((torch.as_tensor(on, device=dev),),
                                  torch.nn.functional.pad(a.witnesses, (0, 0, 0, E - a.witnesses.shape[1])))
            mask = torch.as_tensor(np.arange(E)[None, :] < self._num_events[sid][:, None], device=dev)
            return EvalOutput(values, wits, mask)
        ctx = _BatchContext(batch, self._logic, self.top_m)
        gid = self._group_of[sid]
        order = np.argsort(gid, kind="stable")
        values, wits, where = [], [], []
        for g_index in np.unique(gid):
            pos = order[gid[order] == g_index]
            g = self.groups[g_index]
            rows = torch.as_tensor(self._row_of[sid[pos]], device=dev)
            vids = torch.as_tensor(vid[pos], device=dev)
            v, w = _GroupRun(g, ctx, rows, vids, self._row_of[sid[pos]], vid[pos]).run(witnesses, E)
            values.append(v)
            wits.append(w)
            where.append(pos)
        inv = torch.as_tensor(np.argsort(np.concatenate(where)) if where else np.zeros(0, np.int64), device=dev)
        out_v = torch.cat(values)[inv] if values else torch.zeros(0, dtype=dtype, device=dev)
        out_w = (torch.cat(wits)[inv] if wits else torch.zeros(0, E, T, dtype=dtype, device=dev)) if witnesses \
            else None
        mask = torch.as_tensor(np.arange(E)[None, :] < self._num_events[sid][:, None], device=dev)
        return EvalOutput(out_v, out_w, mask)

    def _resolve_ids(self, spec_ids, video_ids, B: int):
        from stlspec.backends.torch.engine import TorchEvaluator as _V2

        return _V2._resolve_ids(self, spec_ids, video_ids, B)  # same checks and errors as the current engine


class _BatchContext:
    """Per-call tensors shared by every group: flat fact views, frame counts, presence applied."""

    def __init__(self, batch: SceneGraphBatch, logic: TorchLogic, top_m: int | None):
        B, T, N = batch.shape
        dev = batch.unary.device
        self.logic, self.top_m = logic, top_m
        self.B, self.T, self.N = B, T, N
        unary, binary = batch.unary, batch.binary
        if batch.present is not None:
            pr = batch.present.to(unary.dtype)
            unary = unary * pr[..., None]
            binary = binary * (pr[:, :, :, None] * pr[:, :, None, :])[..., None]
        self.P, self.R = unary.shape[-1], binary.shape[-1]
        self.unary, self.binary = unary.contiguous(), binary.contiguous()
        self.names = batch.names
        fm = batch.frame_mask
        self.T_b = (fm.sum(-1) if fm is not None else torch.full((B,), T, device=dev)).long()
        self.full = fm is None or bool(fm.all())  # no padded frames: masks can be skipped
        self.track_mask = batch.track_mask if batch.track_mask is not None else \
            torch.ones(B, N, dtype=torch.bool, device=dev)
        self.dtype, self.device = unary.dtype, dev
        self.arangeN = torch.arange(N, device=dev)[None, :]


class _GroupRun(WitnessMixin):
    """One group's evaluation on ``K`` instances (rows of the tables, videos of the batch)."""

    def __init__(self, g: _Group, ctx: _BatchContext, rows: torch.Tensor, vids: torch.Tensor,
                 rows_np: np.ndarray, vids_np: np.ndarray):
        self.g, self.ctx, self.vids = g, ctx, vids
        self.rows_np, self.vids_np = rows_np, vids_np  # the same, on the host (tables live there too)
        self.K = rows.shape[0]
        ints, floats = g.tables(ctx.device)
        self.ints, self.floats = ints[rows], floats[rows]
        self.T_b = ctx.T_b[vids]
        self.L = ctx.logic
        self.cache: dict[int, torch.Tensor] = {}
        nL, nW = len(g.leaves), len(g.window_nodes)
        self.cat_col = self.ints[:, 4 * nL + nW:]
        self._binder_pos = {id(b): i for i, b in enumerate(g.binders)}
        self._vars()

    # -- variables: candidate tracks, category scores, validity; one assignment dim per block

    def _vars(self) -> None:
        """Per variable: candidate tracks ``cand [K, m_v]``, scores ``catv`` and ``valid``; per
        quantifier block: its assignments, laid out on **one** tensor dimension.

        Exact evaluation (every variable of the block ranges over all ``N`` tracks) enumerates only
        the injective assignments, ``N!/(N-n)!`` of them for ``n`` variables (336 instead of
        ``8^3 = 512`` for 3 variables over 8 tracks), from a static index table. With ``top_m``
        the candidate lists differ per variable and instance, so the block keeps the full product
        of candidate positions and masks the non-injective ones.
        """
        ctx, K = self.ctx, self.K
        self.cand: dict[int, torch.Tensor] = {}
        self.catv: dict[int, torch.Tensor] = {}
        self.valid: dict[int, torch.Tensor] = {}
        tm = ctx.track_mask[self.vids]  # [K, N]
        names = ctx.names[self.vids]  # [K, N, C]
        exact: dict[int, bool] = {}
        for b in self.g.binders:
            for v, has in zip(b.block, b.has_cat):
                exact[v] = True
                if has:
                    col = self.cat_col[:, v]
                    score = torch.gather(names, 2, col.clamp_min(0)[:, None, None].expand(K, ctx.N, 1))[..., 0]
                    score = torch.where((col >= 0)[:, None], score, torch.zeros((), dtype=score.dtype,
                                                                                  device=score.device))
                    score = self.L.atom(score)
                    if ctx.top_m is not None and ctx.top_m < ctx.N:
                        rank = torch.where(tm, score.detach(), torch.full_like(score, -1.0))
                        cand = rank.topk(ctx.top_m, dim=1).indices  # [K, m]
                        self.cand[v] = cand
                        self.catv[v] = torch.gather(score, 1, cand)
                        self.valid[v] = torch.gather(tm, 1, cand)
                        exact[v] = False
                        continue
                    self.catv[v] = score
                self.cand[v] = ctx.arangeN.expand(K, ctx.N)
                self.valid[v] = tm
        # Blocks: assignment index tables and per-assignment tracks, scores, domain.
        self.block_of: dict[int, int] = {}
        self.bsize: list[int] = []
        self.btrack: dict[int, torch.Tensor] = {}  # var -> [K, A_block] track of the var
        self.bcat: dict[int, torch.Tensor] = {}  # var -> [K, A_block] category score
        self.bdom: list[torch.Tensor] = []  # block -> [K, A_block] bool: real, injective
        dev = ctx.device
        for bi, b in enumerate(self.g.binders):
            vs = b.block
            # (fewer tracks than variables: no injective tuple; keep the masked product, never a 0-size dim)
            injective = all(exact[v] for v in vs) and ctx.N >= len(vs)
            sizes = tuple(self.cand[v].shape[1] for v in vs)
            idx = _assignments(sizes, injective, dev)  # [A, n]
            A = idx.shape[0]
            self.bsize.append(A)
            dom = None
            for i, v in enumerate(vs):
                self.block_of[v] = bi
                col = idx[:, i]
                if exact[v]:
                    self.btrack[v] = col[None, :].expand(K, A)
                    ok = tm[:, col]
                else:
                    self.btrack[v] = self.cand[v][:, col]
                    ok = self.valid[v][:, col]
                if v in self.catv:
                    self.bcat[v] = self.catv[v][:, col]
                dom = ok if dom is None else dom & ok
                if not injective:
                    for u in vs[:i]:
                        dom = dom & (self.btrack[v] != self.btrack[u])
            self.bdom.append(dom if dom is not None else torch.ones(K, A, dtype=torch.bool, device=dev))

    def _blocks(self, vars_: Iterable[int]) -> list[int]:
        """The blocks (tensor dims) of these variables, in scope order, without repeats."""
        out: list[int] = []
        for v in vars_:
            bi = self.block_of[v]
            if bi not in out:
                out.append(bi)
        return out

    def _block_view(self, t: torch.Tensor, bi: int, blocks: list[int], extra: int) -> torch.Tensor:
        """``[K, A_bi]`` viewed as ``[K, 1(Q), 1.., A_bi, ..1, 1(T)]`` over ``blocks`` (``extra``=2 adds Q, T)."""
        shape = [self.K] + [1] * (extra - 1) + [t.shape[1] if u == bi else 1 for u in blocks] + [1] * (extra - 1)
        return t.reshape(shape)

    # -- nodes

    def windows(self, n: _Node):
        """Per-instance ``(lo, hi)`` frame offsets (``None`` where static)."""
        if not n.windowed:
            return None, None
        i = self.g.window_pos[id(n)]
        lo_zero, hi_none = self.g.window_static[i]
        nL = len(self.g.leaves)
        frac = self.ints[:, 4 * nL + i].bool()
        lo_f, hi_f = self.floats[:, nL + 2 * i], self.floats[:, nL + 2 * i + 1]
        span = (self.T_b - 1).clamp_min(0).to(torch.float64)
        eps = 1e-9  # as ir.Window.frames: 0.3 * 10 counts as 3
        lo = torch.where(frac, torch.ceil(lo_f * span - eps), lo_f).long()
        hi = torch.where(frac, torch.floor(hi_f * span + eps), hi_f.clamp(max=_HI_NONE)).long()
        hi = torch.minimum(hi, self.T_b - 1)
        return (None if lo_zero else lo), (None if hi_none else hi)

    def _track(self, p: torch.Tensor, D: tuple[int, ...]) -> torch.Tensor:
        """The track of the variable at dep position ``p[k]``, over the deps' block dims ``[K, *A_D]``."""
        K = self.K
        bl = self._blocks(D)
        out = torch.zeros([K] + [self.bsize[b] for b in bl], dtype=torch.long, device=self.ctx.device)
        for d, v in enumerate(D):
            sel = (p == d).view(K, *([1] * len(bl)))
            c = self._block_view(self.btrack[v], self.block_of[v], bl, 1)
            out = torch.where(sel, c, out)
        return out

    def _gather_leaves(self) -> None:
        """Every leaf of the group at once, with three gathers whatever the group's size.

        1. index the predicate plane of each (instance, leaf) *of that kind* out of the fact
           tensors (one advanced index each: ``unary[vid, :, :, col]``, ``binary[vid, ..., col]``),
           laid out as unary rows ``[n_u·N, T]`` and binary rows ``[n_b·N·N, T]``, time
           contiguous; which (instance, leaf) pairs read which tensor is known on the host from
           the parameter tables, so no plane is read for nothing and no device sync is needed;
        2. lay the planes out as rows, plus a row of zeros and one of ones (for ``==`` and
           constant leaves);
        3. one ``index_select`` of rows ``[K, *A_D]`` per leaf, whatever its kind per instance.
        """
        ctx, K, T, N = self.ctx, self.K, self.ctx.T, self.ctx.N
        dev = ctx.device
        leaves = self.g.leaves
        nL = len(leaves)
        ints = self.g.ints[self.rows_np]  # host [K, 4·nL + ...]
        kinds = ints[:, 0:4 * nL:4]  # [K, nL]
        cols = ints[:, 1:4 * nL:4]
        has_deps = np.array([bool(n.deps) for n in leaves], dtype=bool)[None, :]
        any_u = any(_UNARY in self.g.leaf_kinds[i] and leaves[i].deps for i in range(nL))
        any_b = any(_BINARY in self.g.leaf_kinds[i] and leaves[i].deps for i in range(nL))
        vid = self.vids_np[:, None].astype(np.int64)
        rowbase = np.zeros((K, nL), dtype=np.int64)
        coef_a = np.zeros((K, nL), dtype=np.int64)
        coef_b = np.zeros((K, nL), dtype=np.int64)
        parts, base = [], 0
        if any_u:
            is_u = (kinds == _UNARY) & has_deps
            ku, iu = np.nonzero(is_u)  # row-major: plane p is pair (ku[p], iu[p])
            sel = torch.as_tensor(np.stack([vid[ku, 0], cols[ku, iu]]), device=dev)
            planes = ctx.unary.view(ctx.B, T * N, ctx.P)[sel[0], :, sel[1]]  # [n_u, T·N]
            parts.append(planes.view(-1, T, N).transpose(1, 2).reshape(-1, T))  # [n_u·N, T]
            rowbase[ku, iu] = base + np.arange(len(ku)) * N
            coef_a[ku, iu] = 1
            base += len(ku) * N
        if any_b:
            is_b = (kinds == _BINARY) & has_deps
            kb, ib = np.nonzero(is_b)
            NN = N * N
            sel = torch.as_tensor(np.stack([vid[kb, 0], cols[kb, ib]]), device=dev)
            planes = ctx.binary.view(ctx.B, T * NN, ctx.R)[sel[0], :, sel[1]]  # [n_b, T·N·N]
            parts.append(planes.view(-1, T, NN).transpose(1, 2).reshape(-1, T))  # [n_b·N·N, T]
            rowbase[kb, ib] = base + np.arange(len(kb)) * NN
            coef_a[kb, ib] = N
            coef_b[kb, ib] = 1
            base += len(kb) * NN
        zero_row, one_row = base, base + 1
        parts.append(torch.zeros(1, T, dtype=ctx.dtype, device=dev))
        parts.append(torch.ones(1, T, dtype=ctx.dtype, device=dev))
        table = torch.cat(parts)
        # Constants (and predicates the tensors lack) read the zero or one row.
        const = (kinds == _CONST) | ~has_deps
        values = self.g.floats[self.rows_np][:, :nL]
        rowbase = np.where(const, np.where(values > 0, one_row, zero_row), rowbase)
        is_eq = kinds == _EQ
        rowbase = np.where(is_eq, zero_row, rowbase)
        host = torch.as_tensor(np.stack([rowbase, coef_a, coef_b, is_eq.astype(np.int64)]), device=dev)
        rows, plans = [], []
        for i, n in enumerate(leaves):
            kinds_i = self.g.leaf_kinds[i]
            D = n.deps
            if D:
                _, _, pa, pb = (self.ints[:, 4 * i + j] for j in range(4))
                view = (K, *([1] * len(self._blocks(D))))
                nA = self._track(pa, D)
                r = host[0, :, i].view(view)
                if _UNARY in kinds_i or _BINARY in kinds_i:
                    nB = self._track(pb, D) if _BINARY in kinds_i else None
                    r = r + host[1, :, i].view(view) * nA
                    if nB is not None:
                        r = r + host[2, :, i].view(view) * nB
                if _EQ in kinds_i:
                    nB_ = self._track(pb, D)
                    r = r + host[3, :, i].view(view) * (nA == nB_).long()  # zero row + 1 = one row
            else:  # only constants have no variables
                r = host[0, :, i]
            plans.append((n, D))
            rows.append(r.reshape(-1))
        flat = self.L.atom(table.index_select(0, torch.cat(rows)))
        self.leaf_values = {}
        for (n, D), part in zip(plans, flat.split([r.numel() for r in rows])):
            # [K, *A_D, T] -> [K, 1, scope block dims, T]
            bD = self._blocks(D)
            shape = [K, 1] + [self.bsize[b] if b in bD else 1 for b in self._blocks(n.scope)] + [T]
            self.leaf_values[id(n)] = part.reshape(shape)

    def leaf(self, n: _Node) -> torch.Tensor:
        if not hasattr(self, "leaf_values"):
            self._gather_leaves()
        return self.leaf_values[id(n)]

    def value(self, n: _Node, t0: bool = False) -> torch.Tensor:
        """``n``'s truth tensor ``[K, 1, *blocks, T]``; ``t0=True``: only ``t = 0`` (``[..., 1]``).

        Nodes that no temporal operator encloses are only ever read at ``t = 0``: pointwise
        nodes then work on one frame, and an ``eventually``/``always`` there is one reduction
        over its window instead of a cumulative op (:func:`ops.window_fold_t0`).
        """
        key = (id(n), t0)
        hit = self.cache.get(key)
        if hit is None:
            full = self.cache.get((id(n), False)) if t0 else None
            if full is not None or (t0 and n.op in ("leaf", "next", "until")):
                hit = (full if full is not None else self.value(n))[..., :1]
            elif t0 and n.op in ("ev", "al"):
                lo, hi = self.windows(n)
                hit = ops.window_fold_t0(self._full_time(self.value(n.children[0])), self.L, n.op == "ev",
                                         lo, hi, self.T_b, self.ctx.full)
            else:
                hit = self.compute(n, [self.value(c, t0) for c in n.children])
            self.cache[key] = hit
        return hit

    def compute(self, n: _Node, xs: list[torch.Tensor]) -> torch.Tensor:
        L = self.L
        match n.op:
            case "leaf":
                return self.leaf(n)
            case "not":
                return L.not_(xs[0])
            case "and":
                return L.and_(xs)
            case "or":
                return L.or_(xs)
            case "next":
                return ops.next_(self._full_time(xs[0]), self.T_b, n.weak, self.ctx.full, n.steps)
            case "ev":
                lo, hi = self.windows(n)
                return ops.eventually(self._full_time(xs[0]), L, lo, hi, self.T_b, self.ctx.full)
            case "al":
                lo, hi = self.windows(n)
                return ops.always(self._full_time(xs[0]), L, lo, hi, self.T_b, self.ctx.full)
            case "until":
                lo, hi = self.windows(n)
                return ops.until(self._full_time(xs[0]), self._full_time(xs[1]), L, lo, hi, self.T_b)
            case "ex" | "fa":
                return self.quantify(n, xs[0])
        raise AssertionError(n.op)

    def _full_time(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.ctx.T:
            return x
        return x.expand(*x.shape[:-1], self.ctx.T)

    def quantify(self, n: _Node, body: torch.Tensor) -> torch.Tensor:
        bi = self.g.binders.index(n) if not hasattr(self, "_binder_pos") else self._binder_pos[id(n)]
        blocks = self._blocks(n.scope) + [bi]
        cats = [self._block_view(self.bcat[v], bi, blocks, 2) for v, has in zip(n.block, n.has_cat) if has]
        dom = self._block_view(self.bdom[bi], bi, blocks, 2)
        # The body may not depend on the block's variables: expand so each assignment counts.
        shape = list(body.shape)
        shape[2 + len(blocks) - 1] = self.bsize[bi]
        body = body.expand(shape)
        return ops.quantify(body, self.L, n.op == "ex", cats, dom, 1)

    def run(self, witnesses: bool, E: int):
        root = self.value(self.g.root, t0=True)
        values = root[:, 0, 0]
        if not witnesses:
            return values, None
        T = self.ctx.T
        zero = torch.zeros(self.K, T, dtype=self.ctx.dtype, device=self.ctx.device)
        rows = [zero] * E
        for e in sorted(self.g.root.events):
            s = self.pinned(self.g.root, e, True)  # [K, T(q), 1]
            # Only real frames can be pinned (padding would otherwise get the value of a pin-free formula).
            real = torch.arange(T, device=s.device)[None, :] < self.T_b[:, None]
            s = torch.where(real, s.reshape(self.K, T), torch.zeros((), dtype=s.dtype, device=s.device)).clamp_min(0)
            total = s.sum(-1, keepdim=True)
            safe = torch.where(total > 0, total, torch.ones_like(total))
            w = torch.where(total > 0, s / safe, torch.zeros_like(s))
            rows[e] = w
        out = torch.stack(rows, 1) if E else zero.new_zeros(self.K, 0, T)
        return values, out


# ---------------------------------------------------------------------- entry points


_ASSIGNMENTS: dict = {}


def _assignments(sizes: tuple[int, ...], injective: bool, device) -> torch.Tensor:
    """``[A, n]`` candidate positions of a block's variables: every injective tuple (``injective``:
    all variables range over the same ``sizes[0]`` tracks) or the full product (masked later)."""
    key = (sizes, injective, str(device))
    hit = _ASSIGNMENTS.get(key)
    if hit is None:
        if injective:
            rows = list(itertools.permutations(range(sizes[0]) if sizes else (), len(sizes)))
        else:
            rows = list(itertools.product(*(range(m) for m in sizes)))
        hit = torch.as_tensor(np.asarray(rows, dtype=np.int64).reshape(len(rows), len(sizes)), device=device)
        _ASSIGNMENTS[key] = hit
    return hit
