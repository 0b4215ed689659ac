"""Host-side planning for the torch engine: a call's (spec, video) instances laid out as batches of rows.

Every instance's nodes become **rows** (one per assignment of the node's own variables to the
instance's candidate tracks, injective within a quantifier block), and nodes of all instances
are grouped into **batches** by ``(level, op, axis, static parameters)``; the engine
(:mod:`stlspec.backends.torch.engine`) then runs one kernel per batch.

A call's instances fall into *templates* (a spec over one tuple of candidate-track lists):
each template's rows, projections and tracks are computed once and cached
(:func:`build_template`). Laying a call out (:meth:`Planner.build`) is then array work over
the call's *items* -- one per (template, node), covering all instances of the template --
with no Python loop over instances or rows: a sort per level assigns items to batches and
row offsets, and each batch's tables (source rows of its children, videos, windows, atom
columns and tracks, quantifier segments) are built by ragged expansions of the templates'
cached arrays. This is what a training step pays for every new batch layout, so it is kept
to a fixed number of numpy operations per batch plus one list comprehension per batch over
its items.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from stlspec import ir
from stlspec.backends.torch.canon import Op, SpecTable

__all__ = ["LRU", "Planner", "Plan", "Batch", "BIG_OFFSET", "batch_key"]

#: Window offsets are clamped to this on the host (any bound past the longest video acts the same).
BIG_OFFSET = 1 << 40

_I64 = np.int64


class LRU:
    """A small bounded least-recently-used cache."""

    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict = OrderedDict()

    def get(self, key):
        hit = self.data.get(key)
        if hit is not None:
            self.data.move_to_end(key)
        return hit

    def put(self, key, value) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)

    def clear(self) -> None:
        self.data.clear()

    def __len__(self) -> int:
        return len(self.data)


# ---------------------------------------------------------------------- assignments


class _Assignments:
    """Enumerations of variable sets over candidate tracks, with dense lookups for projections.

    ``enum(vars, blocks, cands)`` is ``(pos [R, n], lookup)``: every assignment of ``vars`` as
    candidate positions, lexicographic, injective within each block, and an array indexed by a
    tuple of positions giving the row (``-1`` for a non-injective tuple).
    """

    def __init__(self, size: int = 4096):
        self.cache = LRU(size)

    def enum(self, vars_: tuple[int, ...], blocks: tuple[int, ...], cands: tuple) -> tuple:
        key = (blocks, tuple(c.tobytes() for c in cands))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        sizes = tuple(len(c) for c in cands)
        n = len(sizes)
        if n == 0:
            hit = (np.zeros((1, 0), dtype=_I64), np.zeros((), dtype=_I64))
        else:
            grid = np.indices(sizes, dtype=_I64).reshape(n, -1).T  # [prod, n], lexicographic
            ok = np.ones(len(grid), dtype=bool)
            for i in range(n):
                for j in range(i):
                    if blocks[i] == blocks[j]:
                        ok &= cands[i][grid[:, i]] != cands[j][grid[:, j]]
            pos = grid[ok]
            lookup = np.full(sizes, -1, dtype=_I64)
            lookup[tuple(pos.T)] = np.arange(len(pos))
            hit = (pos, lookup)
        self.cache.put(key, hit)
        return hit


_ASSIGN = _Assignments()


# ---------------------------------------------------------------------- per-template tables


@dataclass
class Template:
    """One spec over one tuple of candidate lists: rows, projections and tracks of its first ``n`` nodes.

    Per node ``i``: ``R[i]`` rows; ``aligns[i][j]`` the row of child ``j`` each row reads (for a
    quantifier: each *expanded* row, one per assignment of its own and its block's variables);
    ``tracks[i]`` an atom's ``(a, b)`` track arrays, or a quantifier's track array per block
    variable (expanded rows); ``segs[i]`` a quantifier's ``(segment of each expanded row,
    uniform segment length or -1, rows per segment)``.
    """

    n: int
    R: np.ndarray
    aligns: list
    tracks: list
    segs: list


def build_template(tab: SpecTable, cands: tuple, upto: int) -> Template:
    nodes = tab.nodes
    vb = tab.var_block
    enums: dict = {}

    def en(vars_):
        e = enums.get(vars_)
        if e is None:
            e = _ASSIGN.enum(vars_, tuple(vb[v] for v in vars_), tuple(cands[v] for v in vars_))
            enums[vars_] = e
        return e

    def project(pos, src_vars, dst_vars):
        if src_vars == dst_vars:
            return np.arange(len(pos), dtype=_I64)
        _, lookup = en(dst_vars)
        if not dst_vars:
            return np.zeros(len(pos), dtype=_I64)
        cols = [src_vars.index(v) for v in dst_vars]
        return lookup[tuple(pos[:, c] for c in cols)]

    rows, aligns, tracks, segs = [], [], [], []
    for i in range(upto):
        n = nodes[i]
        pos, _ = en(n.vars)
        rows.append(len(pos))
        if n.op in (Op.EXISTS, Op.FORALL):
            xvars = tuple(sorted(set(n.vars) | set(n.block)))
            xpos, _ = en(xvars)
            body = nodes[n.kids[0]].vars
            aligns.append([project(xpos, xvars, body)])
            seg = project(xpos, xvars, n.vars)
            counts = np.bincount(seg, minlength=len(pos))
            uniform = int(counts[0]) if len(counts) and (counts == counts[0]).all() else -1
            tracks.append(tuple(cands[v][xpos[:, xvars.index(v)]] for v in n.block))
            segs.append((seg, uniform, counts))
            continue
        aligns.append([project(pos, n.vars, nodes[k].vars) for k in n.kids])
        segs.append(None)
        if n.op == Op.ATOM and n.args:
            a = cands[n.args[0]][pos[:, n.vars.index(n.args[0])]]
            b = cands[n.args[-1]][pos[:, n.vars.index(n.args[-1])]]
            tracks.append((a, b))
        else:
            tracks.append(None)
    return Template(upto, np.asarray(rows, dtype=_I64), aligns, tracks, segs)


# ---------------------------------------------------------------------- the plan


@dataclass
class Batch:
    """Nodes of one ``(level, op, axis, params)`` key: one kernel over all their rows.

    ``slots[j]`` is ``(source batch of each row, source row of each row, the distinct source
    batches)`` for child ``j`` (a quantifier: its body, per expanded row); ``params`` holds the
    per-row tables its kernel needs.
    """

    key: tuple
    op: Op
    axis: object
    rows: int = 0
    slots: list = field(default_factory=list)
    params: dict = field(default_factory=dict)


class Plan:
    """Host tables of one call layout, and their device copies (per device)."""

    def __init__(self):
        self.batches: list[Batch] = []
        self.value_src: tuple | None = None
        self.witness_src: tuple | None = None
        self.device_cache: dict = {}


def batch_key(n) -> tuple:
    """Static parameters that must agree inside a batch."""
    base = (int(n.op), int(n.axis), n.raw)
    match n.op:
        case Op.AND | Op.OR:
            return base + (len(n.kids),)
        case Op.NEXT:
            return base + (n.weak,)
        case Op.EXISTS | Op.FORALL:
            return base + (sum(c != -1 for c in n.cats),)
        case Op.PREFIX:
            return base + (n.window is not None,)
        case _:
            return base


def window_rows(window: ir.Window | None, T_b: np.ndarray, cache: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per-row frame offsets ``(lo, hi)`` of ``window`` for videos of ``T_b`` frames (clamped to int range)."""
    if window is None:
        return np.zeros(len(T_b), dtype=_I64), np.full(len(T_b), BIG_OFFSET, dtype=_I64)
    lo = np.empty(len(T_b), dtype=_I64)
    hi = np.empty(len(T_b), dtype=_I64)
    for tb in np.unique(T_b).tolist():
        key = (window, tb)
        hit = cache.get(key)
        if hit is None:
            a, b = window.frames(tb)
            hit = (min(max(int(a), 0), BIG_OFFSET), min(int(b), BIG_OFFSET))
            cache[key] = hit
        sel = T_b == tb
        lo[sel], hi[sel] = hit
    return lo, hi


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ragged expansion: for ``sum(counts)`` elements, the owner of each and its position in the owner."""
    owner = np.repeat(np.arange(len(counts), dtype=_I64), counts)
    start = np.cumsum(counts) - counts
    return owner, np.arange(len(owner), dtype=_I64) - start[owner]


def _cat(arrays: list, dtype=_I64) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype)


@dataclass
class _SpecArrays:
    """Per spec, static: each node's batch-key id (the key starts with the level), children (padded with -1),
    the root and witness roots."""

    key_ids: np.ndarray
    kids: np.ndarray  # [n, max arity], -1 padded
    same: np.ndarray  # [n, max arity] bool: the child has the node's variables (reads row for row)
    root: int
    witness: tuple  # ((event, node), ...)


class Planner:
    """Lays calls out for one evaluator's spec tables; caches templates and window offsets.

    Templates are cached per ``(key, nodes laid out)``: the caller's key names a spec and a tuple of
    candidate lists, and a template without witnesses lays out only the value nodes.
    """

    def __init__(self, tables: list[SpecTable], num_events: int, template_cache: int = 4096):
        self.tables = tables
        self.num_events = num_events
        self.templates = LRU(template_cache)
        self.windows: dict = {}
        self.key_tuples: list[tuple] = []  # key id -> (level,) + batch key
        self._key_ids: dict = {}
        self._specs: dict[int, _SpecArrays] = {}

    def spec(self, s: int) -> _SpecArrays:
        hit = self._specs.get(s)
        if hit is None:
            tab = self.tables[s]
            ids = []
            for n in tab.nodes:
                kt = (n.level,) + batch_key(n)
                kid = self._key_ids.get(kt)
                if kid is None:
                    kid = self._key_ids[kt] = len(self.key_tuples)
                    self.key_tuples.append(kt)
                ids.append(kid)
            arity = max((len(n.kids) for n in tab.nodes), default=0)
            kids = np.full((len(tab.nodes), max(arity, 1)), -1, dtype=_I64)
            same = np.zeros(kids.shape, dtype=bool)
            for i, n in enumerate(tab.nodes):
                kids[i, :len(n.kids)] = n.kids
                if n.op not in (Op.EXISTS, Op.FORALL):
                    same[i, :len(n.kids)] = [tab.nodes[k].vars == n.vars for k in n.kids]
            hit = self._specs[s] = _SpecArrays(np.asarray(ids, _I64), kids, same, tab.root,
                                               tuple(tab.witness_roots.items()))
        return hit

    def template(self, key, s: int, cands: tuple, witnesses: bool) -> Template:
        tab = self.tables[s]
        upto = len(tab.nodes) if witnesses else tab.root + 1
        tkey = (key, upto)
        t = self.templates.get(tkey)
        if t is None:
            t = build_template(tab, cands, upto)
            self.templates.put(tkey, t)
        return t

    def build(self, sid: np.ndarray, vid: np.ndarray, group: np.ndarray, gkeys: list, gcands: list,
              T_b_all: np.ndarray, NC: tuple[int, int], wmask: np.ndarray) -> Plan:
        """The plan of instances ``(sid[k], vid[k])``. Instances of one ``group[k]`` share spec and candidate
        lists (``gcands[group[k]]``, cached templates named by ``gkeys[group[k]]``); ``T_b_all`` is the frame
        count of every video, ``NC`` the number of tracks and categories of the fact tensors, ``wmask[k]``
        whether instance k's witnesses are wanted."""
        K = len(sid)
        # Instances by template (with or without its witness nodes), groups in order of first appearance.
        _, first, inv = np.unique(group * 2 + wmask, return_index=True, return_inverse=True)
        G = len(first)
        by_first = np.argsort(first, kind="stable")
        rank = np.empty(G, _I64)
        rank[by_first] = np.arange(G, dtype=_I64)
        where_g = rank[inv.reshape(-1)]
        first_k = first[by_first].tolist()
        ks_flat = np.argsort(where_g, kind="stable")
        gcount = np.bincount(where_g, minlength=G).astype(_I64)
        ks_start = np.cumsum(gcount) - gcount
        where_pos = np.empty(K, _I64)
        where_pos[ks_flat] = np.arange(K, dtype=_I64) - ks_start[where_g[ks_flat]]
        gspec = [int(sid[k]) for k in first_k]
        temps = [self.template(gkeys[group[k]], s, gcands[group[k]], bool(wmask[k]))
                 for k, s in zip(first_k, gspec)]
        sas = [self.spec(s) for s in gspec]
        # Items: one per (group, node), group-major.
        n_g = np.fromiter((t.n for t in temps), _I64, G)
        gstart = np.cumsum(n_g) - n_g
        total = int(n_g.sum())
        item_g = np.repeat(np.arange(G, dtype=_I64), n_g)
        item_i = np.arange(total, dtype=_I64) - gstart[item_g]
        item_key = _cat([sa.key_ids[:t.n] for sa, t in zip(sas, temps)])
        item_R = _cat([t.R for t in temps])
        item_cnt = gcount[item_g]
        width = max((sa.kids.shape[1] for sa in sas), default=1)
        item_kids = np.full((total, width), -1, _I64)
        item_same = np.zeros((total, width), bool)
        for sa, t, g0 in zip(sas, temps, gstart.tolist()):
            kk = sa.kids[:t.n]
            item_kids[g0:g0 + t.n, :kk.shape[1]] = np.where(kk >= 0, kk + g0, -1)
            item_same[g0:g0 + t.n, :kk.shape[1]] = sa.same[:t.n]
        # Batch order: by key (the level first), then by the batch of the first child, then (group, node).
        ukeys = np.unique(item_key).tolist()
        ranked = sorted(ukeys, key=self.key_tuples.__getitem__)
        rank_of = np.zeros(len(self.key_tuples), _I64)
        rank_of[ranked] = np.arange(len(ranked))
        item_rank = rank_of[item_key]
        level_of_rank = np.asarray([self.key_tuples[k][0] for k in ranked], _I64)
        item_level = level_of_rank[item_rank]
        item_batch = np.full(total, -1, _I64)
        item_off = np.zeros(total, _I64)
        batches: list[Batch] = []
        members: list[np.ndarray] = []
        for lev in np.unique(item_level).tolist():
            sel = np.nonzero(item_level == lev)[0]
            k0 = item_kids[sel, 0]
            fk = np.where(k0 >= 0, item_batch[np.maximum(k0, 0)], -1)
            ss = sel[np.lexsort((fk, item_rank[sel]))]
            r = item_rank[ss]
            new = np.ones(len(ss), bool)
            new[1:] = r[1:] != r[:-1]
            starts = np.nonzero(new)[0]
            ends = np.append(starts[1:], len(ss))
            rows = item_R[ss] * item_cnt[ss]
            before = np.cumsum(rows) - rows
            base = before[starts]
            item_off[ss] = before - np.repeat(base, ends - starts)
            item_batch[ss] = len(batches) + np.cumsum(new) - 1
            for a, b, rk in zip(starts.tolist(), ends.tolist(), r[starts].tolist()):
                node = self.tables[gspec[item_g[ss[a]]]].nodes[item_i[ss[a]]]
                batch = Batch(self.key_tuples[ranked[rk]], node.op, node.axis)
                batch.rows = int(rows[a:b].sum())
                batches.append(batch)
                members.append(ss[a:b])
        lay = _Layout(vid, T_b_all, NC, ks_flat, ks_start, gspec, temps, item_g, item_i, item_R, item_cnt,
                      item_kids, item_same, item_batch, item_off)
        for batch, m in zip(batches, members):
            self._fill(batch, m, lay)
        plan = Plan()
        plan.batches = batches
        # Values: each instance's root row.
        roots = np.asarray([sa.root for sa in sas], _I64)[where_g]
        item = gstart[where_g] + roots
        plan.value_src = _single(item_batch[item], item_off[item] + where_pos * item_R[item])
        if wmask.any():
            E = self.num_events
            ks_w, ev_w, node_w = [], [], []
            for k in np.flatnonzero(wmask).tolist():
                for e, i in sas[where_g[k]].witness:
                    ks_w.append(k)
                    ev_w.append(e)
                    node_w.append(i)
            kk = np.asarray(ks_w, _I64)
            item = gstart[where_g[kk]] + np.asarray(node_w, _I64)
            src = _single(item_batch[item], item_off[item] + where_pos[kk] * item_R[item])
            plan.witness_src = (src, kk * E + np.asarray(ev_w, _I64), vid[kk])
        return plan

    def _fill(self, batch: Batch, m: np.ndarray, lay: "_Layout") -> None:
        """The per-row tables of one batch, from its items ``m`` (in row order).

        Work is done per *block* (one item's rows for one instance: ``R`` rows, or ``X`` expanded rows
        of a quantifier) and expanded to rows with one ``np.repeat`` per table; per-item arrays
        (projections, tracks, segments) are concatenated once and read at ``local + arange``.
        """
        op = batch.op
        p = batch.params
        g, i = lay.item_g[m], lay.item_i[m]
        cnt, R = lay.item_cnt[m], lay.item_R[m]
        gl, il = g.tolist(), i.tolist()
        temps = [lay.temps[x] for x in gl]
        nodes = [self.tables[lay.gspec[x]].nodes[y] for x, y in zip(gl, il)]
        # Blocks: (item, instance), instance-major within each item, in row order.
        ob, jj = _expand(cnt)
        inst = lay.ks_flat[lay.ks_start[g][ob] + jj]
        bvid = lay.vid[inst]
        self_base = lay.item_off[m][ob] + jj * R[ob]  # each block's first row in this batch

        def rows_of(width_of_item):
            """``(rows per block, each row's index into the items' per-item arrays of this width
            concatenated, arange over the rows, each block's first row)``."""
            Wb = width_of_item[ob]
            first = np.cumsum(Wb) - Wb
            item_start = np.cumsum(width_of_item) - width_of_item
            ar = np.arange(int(Wb.sum()), dtype=_I64)
            return Wb, np.repeat(item_start[ob] - first, Wb) + ar, ar, first

        def child(slot, Wb, local, ar, first, aligns):
            """(source batch per row or None, source row per row, distinct source batches) of child ``slot``."""
            ck = lay.item_kids[m, slot]
            base = lay.item_off[ck][ob] + jj * lay.item_R[ck][ob]
            cb = lay.item_batch[ck]
            if lay.item_same[m, slot].all():  # row for row: no projection table to read
                rows = np.repeat(base - first, Wb) + ar
            else:
                rows = np.repeat(base, Wb) + _cat(aligns())[local]
            uniq = np.unique(cb) if len(rows) else np.zeros(0, _I64)
            return (np.repeat(cb[ob], Wb) if len(uniq) > 1 else None, rows, uniq)

        Rb, rlocal, rar, rfirst = rows_of(R)
        p["vid"] = np.repeat(bvid, Rb)
        bT = lay.T_b_all[bvid]
        p["T_b"] = np.repeat(bT, Rb)
        if op in (Op.EXISTS, Op.FORALL):
            segs = [t.segs[y] for t, y in zip(temps, il)]
            X = np.fromiter((len(s[0]) for s in segs), _I64, len(segs))
            Xb, xlocal, xar, xfirst = rows_of(X)
            p["seg"] = np.repeat(self_base, Xb) + _cat([s[0] for s in segs])[xlocal]
            unis = {s[1] for s in segs}
            p["uniform"] = unis.pop() if len(unis) == 1 else -1
            p["nonempty"] = _cat([s[2] > 0 for s in segs], bool)[rlocal]
            batch.slots = [child(0, Xb, xlocal, xar, xfirst, lambda: [t.aligns[y][0] for t, y in zip(temps, il)])]
            xvid = np.repeat(bvid, Xb)
            cats = [[(tr, c) for tr, c in zip(t.tracks[y], n.cats) if c != -1] for t, y, n in zip(temps, il, nodes)]
            ncat = len(cats[0]) if cats else 0
            N, C = lay.NC
            if ncat:
                idx, zero = [], []
                for q in range(ncat):
                    tr = _cat([cs[q][0] for cs in cats])[xlocal]
                    c = np.repeat(np.asarray([cs[q][1] for cs in cats], _I64)[ob], Xb)
                    idx.append((xvid * N + tr) * C + np.maximum(c, 0))
                    zero.append(c == -2)
                p["cat_idx"] = np.stack(idx)
                z = np.stack(zero)
                p["cat_zero"] = z if z.any() else None
            else:
                p["cat_idx"] = p["cat_zero"] = None
            return
        if op == Op.ATOM:
            p["kind"] = np.repeat(np.asarray([int(n.kind) for n in nodes], _I64)[ob], Rb)
            p["col"] = np.repeat(np.asarray([n.col for n in nodes], _I64)[ob], Rb)
            p["value"] = np.repeat(np.asarray([n.value for n in nodes], np.float64)[ob], Rb)
            ta = [t.tracks[y][0] if t.tracks[y] is not None else np.zeros(int(n_), _I64)
                  for t, y, n_ in zip(temps, il, R.tolist())]
            tb = [t.tracks[y][1] if t.tracks[y] is not None else np.zeros(int(n_), _I64)
                  for t, y, n_ in zip(temps, il, R.tolist())]
            p["ta"] = _cat(ta)[rlocal]
            p["tb"] = _cat(tb)[rlocal]
            return
        arity = len(nodes[0].kids)
        batch.slots = [child(s, Rb, rlocal, rar, rfirst, lambda s=s: [t.aligns[y][s] for t, y in zip(temps, il)])
                       for s in range(arity)]
        if op == Op.NEXT:
            p["steps"] = np.repeat(np.asarray([min(n.steps, BIG_OFFSET) for n in nodes], _I64)[ob], Rb)
        if op in (Op.EVENTUALLY, Op.ALWAYS, Op.EVENTUALLY0, Op.ALWAYS0, Op.UNTIL, Op.PIN, Op.PREFIX):
            wins: dict = {}
            for q, n in enumerate(nodes):
                wins.setdefault(n.window, []).append(q)
            if len(wins) == 1:
                lo, hi = window_rows(nodes[0].window, bT, self.windows)
            else:
                lo = np.empty(len(ob), _I64)
                hi = np.empty(len(ob), _I64)
                for w, qs in wins.items():
                    mine = np.zeros(len(nodes), bool)
                    mine[qs] = True
                    sel = mine[ob]
                    lo[sel], hi[sel] = window_rows(w, bT[sel], self.windows)
            p["lo"], p["hi"] = np.repeat(lo, Rb), np.repeat(hi, Rb)


def _single(b: np.ndarray, r: np.ndarray) -> tuple:
    return (b, r, np.unique(b))


@dataclass
class _Layout:
    """A call's items and where they landed (for :meth:`Planner._fill`)."""

    vid: np.ndarray
    T_b_all: np.ndarray
    NC: tuple
    ks_flat: np.ndarray
    ks_start: np.ndarray
    gspec: list
    temps: list
    item_g: np.ndarray
    item_i: np.ndarray
    item_R: np.ndarray
    item_cnt: np.ndarray
    item_kids: np.ndarray
    item_same: np.ndarray
    item_batch: np.ndarray
    item_off: np.ndarray
