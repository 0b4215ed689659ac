"""The torch engine: every (spec, video) instance of a call evaluated level by level, in one plan.

Execution model
---------------
Each spec is canonicalised once (:mod:`stlspec.backends.torch.canon`) into a table of
nodes. A call lays every instance's nodes out as **rows**: a node with variables
``vars`` gets one row per assignment of ``vars`` to the instance's candidate tracks
(injective within a quantifier block), each row a vector over frames (width ``T``, or 1
for nodes only read at ``t = 0``). Nodes of all instances are then grouped into
*batches* by ``(level, op, axis, static parameters)`` -- the level being the node's
height in its tree -- and each batch is computed by one kernel over all its rows, with
per-row parameters (video, frame count, window bounds, columns, tracks) gathered from
host-built tables. The number of torch operations therefore depends on the depth of
the specs and the set of operators they use, **never on the batch size or on how many
different spec shapes the call holds** (positives, negatives and background rules of a
training step are one call).

Data moves only by row gathers: a parent reads each child's row for the projection of
its own assignment (a child over fewer variables is broadcast, never recomputed), and a
quantifier folds its body's rows into its own by a segment reduction. Each gather's backward
is prepared with the plan (:class:`ops.RowIndex`), so no backward zero-fills a dense gradient
per gather. Atoms read the fact tensors by precomputed flat offsets (:class:`ops.FactIndex`):
one ``index_select`` per fact tensor and atom batch, masked for padding on the gathered rows
only; its backward fills one zero gradient per fact tensor.

The host-side layout is built by :mod:`stlspec.backends.torch.plan` (array work over the call's
(template, node) items, no Python loop over instances or rows). Plans (the host tables and their
device copies) are cached in a bounded LRU keyed by the call's exact layout, so repeated calls on
the same layout do no host work; :meth:`TorchEvaluator.clear_plans` drops them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from stlspec import ir
from stlspec.backends import unsupported
from stlspec.backends.torch import ops
from stlspec.backends.torch.batch import Columns, EvalOutput, SceneGraphBatch
from stlspec.backends.torch.canon import AtomKind, Axis, Op, canonicalize
from stlspec.backends.torch.ops import TorchLogic
from stlspec.backends.torch.plan import LRU, Batch, Plan, Planner
from stlspec.backends.torch.prune import error_bounds, prefix_blocks
from stlspec.diagnostics import StlError, did_you_mean, invalid_evaluator_input, unsupported_by_backend
from stlspec.logics import Logic, get_logic

__all__ = ["TorchEvaluator", "LRU"]

#: The default chunk bound on CPU (elements of the widest node): about 200 MB of activations in float32.
_CPU_CHUNK = 1 << 21
#: The default ``checkpoint_above`` on CPU: chunks are recomputed in the backward pass only when the whole
#: call's activations would exceed this many bytes (estimated, see ``_ACT_BYTES``).
_CPU_CHECKPOINT_ABOVE = 2 << 30
#: Estimated bytes of activations (fwd + bwd with witnesses) per element of the widest node, per byte of
#: the dtype's item size (about 90 measured at B = 64, T = 32, N = 8 in float32).
_ACT_BYTES = 25


# ---------------------------------------------------------------------- the evaluator


class TorchEvaluator:
    """A compiled list of specs; call it on a :class:`SceneGraphBatch`.

    Attributes: ``specs`` (in order), ``spec_ids`` (name → index), ``num_events`` (``E``, the
    widest spec's number of events), ``logic``, ``temperature``, ``top_m``, ``columns``,
    ``prune_zero`` (drop assignments whose category weight is exactly 0: exact values, see
    ``docs/torch.md``), ``max_chunk_elements`` (instances are evaluated in chunks whose
    largest tensor stays below this many elements, which bounds the working set of every kernel;
    None, the default, means 2^21 on CPU and, on CUDA, what a quarter of the device's free memory
    holds at about 100 bytes of activations per element, measured once, when a call first needs
    more than 2^21), ``checkpoint_above`` (with autograd and several chunks, each chunk is
    checkpointed -- recomputed in the backward pass, so memory is bounded by the chunk, not by
    ``B`` -- when the call's estimated activations exceed this many bytes; below it the chunks keep
    their activations, which saves the recomputation; None, the default, means 2 GiB on CPU and
    always on CUDA, where chunks are sized by the free memory; 0 means always), ``prune_below``
    (certified pruning, :mod:`stlspec.backends.torch.prune`: tracks whose category weight is below
    this are dropped from specs whose quantifiers form a prefix, and every call returns
    ``EvalOutput.error_bound``, a bound on the difference to the exact values), ``fused`` (specs of
    LASER's chain shape are evaluated on the CPU by a compiled kernel, :mod:`stlspec.backends.torch.chain`;
    None, the default, means whenever it can: product logic, numba installed, no ``top_m`` or
    ``prune_below``; True insists and fails where it cannot; False never).
    """

    def __init__(self, specs: Sequence[ir.Spec], columns: Columns, logic: str | Logic = "product",
                 temperature: float = 0.1, top_m: int | None = None, *, prune_zero: bool = True,
                 max_chunk_elements: int | None = None, checkpoint_above: int | None = None,
                 prune_below: float | None = None, plan_cache_size: int = 16, fused: bool | None = None):
        L = get_logic(logic, temperature)
        if L.enumerates:
            raise unsupported("torch", "the exact logic", "use product, godel, smooth or boolean")
        if top_m is not None and (isinstance(top_m, bool) or not isinstance(top_m, int) or top_m < 1):
            raise StlError([unsupported_by_backend(f"top_m must be a positive integer or None, got {top_m!r}")])
        self.logic = L.name
        self.temperature = float(getattr(L, "temperature", temperature))
        self.top_m = top_m
        self.columns = columns
        self.specs = tuple(specs)
        self.spec_ids = {s.name: i for i, s in enumerate(self.specs)}
        self.tables = [canonicalize(s, columns) for s in self.specs]
        self.num_events = max((t.num_events for t in self.tables), default=0)
        self._num_events = np.asarray([t.num_events for t in self.tables], dtype=np.int64)
        self.L = TorchLogic(self.logic, self.temperature)
        # Dropping an assignment of category weight 0 is exact where 0 annihilates ∧ (not in smooth).
        self.prune_zero = bool(prune_zero) and self.L.zero_annihilates
        self.prune_below = _check_prune_below(prune_below, self.L, top_m)
        self.max_chunk_elements = None if max_chunk_elements is None else int(max_chunk_elements)
        self.checkpoint_above = None if checkpoint_above is None else int(checkpoint_above)
        self._plans = LRU(plan_cache_size)
        self._cuda_chunks: dict = {}
        self._planner = Planner(self.tables, self.num_events)
        self._var_cats = []
        self._cat_table: np.ndarray | None = None  # [specs, variables] -> category column (_candidate_codes)
        self._num_vars = np.asarray([t.num_vars for t in self.tables], dtype=np.int64)
        for t in self.tables:
            vc = [-1] * t.num_vars
            for n in t.nodes:
                if n.op in (Op.EXISTS, Op.FORALL):
                    for v, c in zip(n.block, n.cats):
                        vc[v] = c
            self._var_cats.append(tuple(vc))
        # Certified pruning: each spec's prefix blocks (None: evaluated exactly), and whether each of its
        # variables drops tracks of weight below prune_below.
        self._blocks = [prefix_blocks(t) if self.prune_below is not None else None for t in self.tables]
        self._var_eps = [tuple(bl is not None and c >= 0 for c in vc) for bl, vc in zip(self._blocks, self._var_cats)]
        self.fused = _check_fused(fused, self.L, top_m, self.prune_below)
        self._chains = None
        if self.fused:
            from stlspec.backends.torch import chain

            self._chains = chain.ChainTables([chain.chain_table(s, columns) for s in self.specs])

    # -- compatibility with the grouped engine's API

    @property
    def num_groups(self) -> int:
        """Always 1: every call is one plan, whatever the shapes of its specs."""
        return 1

    def groups_for(self, spec_ids) -> int:
        return 1 if len(spec_ids) else 0

    # -- calls

    def __call__(self, batch: SceneGraphBatch, spec_ids=None, video_ids=None, *,
                 witnesses: bool | Sequence[bool] = True) -> EvalOutput:
        """Evaluate ``spec_ids[k]`` on video ``video_ids[k]``. ``witnesses``: True (every instance), False
        (none: ``EvalOutput.witnesses`` is None), or one flag per instance -- the witnesses of unflagged
        instances are 0 and cost nothing, so positives (with witnesses) and negatives (without) can share a
        call."""
        B, T, N = batch.shape
        sid, vid = self._resolve_ids(spec_ids, video_ids, B)
        dev = batch.unary.device
        out_dtype = batch.unary.dtype
        E = self.num_events
        K = len(sid)
        wmask, want = _witness_mask(witnesses, K)
        mask = torch.as_tensor(np.arange(E)[None, :] < self._num_events[sid][:, None], device=dev)
        if K == 0:
            return EvalOutput(torch.zeros(0, dtype=out_dtype, device=dev),
                              torch.zeros(0, E, T, dtype=out_dtype, device=dev) if want else None, mask,
                              None if self.prune_below is None else torch.zeros(0, dtype=out_dtype, device=dev))
        ctx = _Context(batch, self)
        fmask = self._fused_mask(sid, ctx)
        if fmask is None:
            v, w = self._generic(sid, vid, wmask, ctx, want)
        else:
            v, w = self._merged(sid, vid, wmask, ctx, want, fmask)
        if ctx.T_pad != T:  # T = 0: evaluated on one padded frame
            w = w[..., :T] if w is not None else None
        if ctx.requires_grad and torch.is_grad_enabled() and not v.requires_grad and not self.L.crisp:
            # Every assignment of every instance was pruned (or none needed a fact): constant values, still
            # connected to the inputs (zero gradients), as any output of a differentiable logic is under
            # autograd (boolean thresholds its atoms: its outputs are constants of the inputs).
            anchor = sum(t.reshape(-1)[:1].sum() for t in (batch.unary, batch.binary, batch.names) if t.requires_grad)
            v = v + anchor * 0
            w = None if w is None else w + anchor * 0
        bound = None
        if self.prune_below is not None:
            bound = torch.as_tensor(error_bounds([self._blocks[s] for s in sid.tolist()], vid, ctx.weights_np,
                                                 ctx.tm_np, self.prune_below, self.L.minmax), dtype=out_dtype,
                                    device=dev)
        return EvalOutput(v.to(out_dtype), w.to(out_dtype) if w is not None else None, mask, bound)

    def _fused_mask(self, sid: np.ndarray, ctx: "_Context") -> np.ndarray | None:
        """Which instances the fused chain kernel evaluates (None: none)."""
        if self._chains is None or ctx.device.type != "cpu":
            return None
        m = self._chains.is_chain[sid]
        if not m.any() or not self._chains.fits(ctx.N, ctx.T_pad):
            return None
        return m

    def _merged(self, sid, vid, wmask, ctx: "_Context", witnesses: bool, fmask: np.ndarray):
        """Chain instances by the fused kernel, the others by the generic engine, in the caller's order."""
        from stlspec.backends.torch import chain

        fi = np.nonzero(fmask)[0]
        v, s = chain.evaluate(self._chains, sid[fi], vid[fi], wmask[fi] & witnesses, ctx.names, ctx.unary,
                              ctx.binary, ctx.T_b_np, ctx.tm_np, ctx.present, self.prune_zero, self.num_events)
        w = _normalise(s) if witnesses else None
        if len(fi) == len(sid):
            return v, w
        gi = np.nonzero(~fmask)[0]
        vg, wg = self._generic(sid[gi], vid[gi], wmask[gi], ctx, witnesses)
        back = np.empty(len(sid), dtype=np.int64)
        back[np.concatenate([fi, gi])] = np.arange(len(sid))
        inv = torch.as_tensor(back, device=ctx.device)
        v = torch.cat([v, vg]).index_select(0, inv)
        w = torch.cat([w, wg]).index_select(0, inv) if witnesses else None
        return v, w

    def _generic(self, sid, vid, wmask, ctx: "_Context", witnesses: bool):
        """``(values [K], witnesses [K, E, T_pad] or None)`` by the level-by-level plans."""
        B = ctx.B
        E = self.num_events
        K = len(sid)
        # Chunks of instances, each evaluated by one plan.
        chunks, est = self._chunks(sid, vid, ctx)
        values, wits = [], []
        if len(chunks) == 1:
            plan = self._plan(sid, vid, ctx, wmask)
            v, w = _run_plan(plan, ctx, self.L, witnesses, E, ctx.unary, ctx.binary, ctx.names)
            values.append(v)
            wits.append(w)
        else:
            # Instances sorted by video and cut at video boundaries: each chunk reads its own slice of
            # the fact tensors (one split, whose backward is one concatenation), so no chunk's backward
            # fills a gradient the size of the whole batch.
            # (Where a video's instances span two chunks, every chunk reads the whole tensors.)
            order = np.argsort(vid, kind="stable")
            sid_s, vid_s = sid[order], vid[order]
            if all(vid_s[lo] != vid_s[lo - 1] for lo, _ in chunks[1:]):
                cuts = [0] + [int(vid_s[lo]) for lo, _ in chunks[1:]] + [B]
                sizes = [b - a for a, b in zip(cuts[:-1], cuts[1:])]
                pieces = [t.split(sizes) for t in (ctx.unary, ctx.binary, ctx.names)]
            else:
                cuts = [0] * (len(chunks) + 1)
                pieces = [[t] * len(chunks) for t in (ctx.unary, ctx.binary, ctx.names)]
            if len(chunks) > self._plans.size // 2:  # every chunk's plan stays cached
                self._plans.size = 2 * len(chunks)
            checkpointed = torch.is_grad_enabled() and ctx.requires_grad and self._checkpoints(est, ctx)
            for j, (lo, hi) in enumerate(chunks):
                u, b, n = (p[j] for p in pieces)
                sub = ctx.sub(cuts[j], cuts[j + 1], u, b, n) if cuts[-1] else ctx
                plan = self._plan(sid_s[lo:hi], vid_s[lo:hi] - cuts[j], sub, wmask[order][lo:hi])
                if checkpointed:
                    from torch.utils.checkpoint import checkpoint

                    v, w = checkpoint(_run_plan, plan, sub, self.L, witnesses, E, u, b, n, use_reentrant=False)
                else:
                    v, w = _run_plan(plan, sub, self.L, witnesses, E, u, b, n)
                values.append(v)
                wits.append(w)
            back = np.empty(K, dtype=np.int64)
            back[order] = np.arange(K)
            if not (back == np.arange(K)).all():
                inv = torch.as_tensor(back, device=ctx.device)
                values = [torch.cat(values).index_select(0, inv)]
                wits = [torch.cat(wits).index_select(0, inv)] if witnesses else wits
        v = torch.cat(values) if len(values) > 1 else values[0]
        w = (torch.cat(wits) if len(wits) > 1 else wits[0]) if witnesses else None
        return v, w

    def _resolve_ids(self, spec_ids, video_ids, B: int):
        if spec_ids is None:
            if len(self.specs) == 1:
                sid = np.zeros(B, dtype=np.int64)
            elif len(self.specs) == B:
                sid = np.arange(B)
            else:
                raise _input_error(f"pass spec_ids: {len(self.specs)} specs for {B} videos",
                                   "spec_ids[k] names (or indexes) the spec evaluated on video video_ids[k]")
        else:
            if isinstance(spec_ids, torch.Tensor):
                spec_ids = spec_ids.tolist()
            fast = np.asarray(spec_ids) if len(spec_ids) else np.zeros(0, dtype=np.int64)
            if fast.dtype.kind in "iu" and fast.ndim == 1 and (len(fast) == 0 or (
                    0 <= fast.min() and fast.max() < len(self.specs))):
                spec_ids = ()  # all in range: no per-id checks needed
            out = []
            for k, s in enumerate(spec_ids):
                if isinstance(s, str):
                    if s not in self.spec_ids:
                        close = did_you_mean(s, self.spec_ids)
                        raise _input_error(f"spec_ids[{k}]: no spec named {s!r}",
                                           f"did you mean {close[0]!r}?" if close else
                                           f"the evaluator has {len(self.specs)} specs")
                    out.append(self.spec_ids[s])
                elif isinstance(s, (int, np.integer)) and not isinstance(s, bool):
                    if not 0 <= int(s) < len(self.specs):
                        raise _input_error(f"spec_ids[{k}] = {int(s)} is out of range",
                                           f"spec indices run from 0 to {len(self.specs) - 1}")
                    out.append(int(s))
                else:
                    raise _input_error(f"spec_ids[{k}] is {type(s).__name__} {s!r}", "use a spec name or index")
            sid = np.asarray(out, dtype=np.int64) if out or fast.dtype.kind not in "iu" else fast.astype(np.int64)
        if video_ids is None:
            if len(sid) > B:
                raise _input_error(f"{len(sid)} specs for {B} videos: pass video_ids")
            vid = np.arange(len(sid), dtype=np.int64)
        else:
            if isinstance(video_ids, torch.Tensor):
                video_ids = video_ids.tolist()
            vid = np.asarray(video_ids, dtype=np.int64) if len(video_ids) else np.zeros(0, dtype=np.int64)
        if vid.shape != sid.shape:
            raise _input_error(f"{len(sid)} spec_ids but {len(vid)} video_ids", "pass one video per spec id")
        bad = np.nonzero((vid < 0) | (vid >= B))[0]
        if len(bad):
            raise _input_error(f"video_ids[{bad[0]}] = {vid[bad[0]]} is out of range for a batch of {B} videos")
        return sid, vid

    # -- host planning

    def _cands(self, ctx: "_Context", k_vid: int, cat: int, memo: dict, eps: bool = False):
        key = (k_vid, cat, eps)
        hit = memo.get(key)
        if hit is not None:
            return hit
        real = ctx.tm_np[k_vid]
        tracks = np.nonzero(real)[0]
        if cat != -1 and (self.prune_zero or self.top_m is not None or eps):
            if cat == -2:  # an unknown category: weight 0 on every track
                score = np.zeros(len(tracks))
            else:
                score = ctx.weights_np[k_vid, tracks, cat]
            if self.prune_zero or eps:
                keep = (score != 0) & (score >= self.prune_below) if eps else score != 0
                tracks, score = tracks[keep], score[keep]
            if self.top_m is not None and self.top_m < len(tracks):
                order = np.argsort(-score, kind="stable")[: self.top_m]
                tracks = np.sort(tracks[order])
        hit = (tracks.astype(np.int64), tracks.astype(np.int64).tobytes())
        memo[key] = hit
        return hit

    def _key_cands(self, ctx: "_Context", s: int, b: int, memo: dict) -> tuple:
        """``(template key, candidate lists)`` of spec ``s`` on video ``b``: its variables' candidate tracks."""
        cs = [self._cands(ctx, b, c, memo, e) for c, e in zip(self._var_cats[s], self._var_eps[s])]
        return (s, tuple(c[1] for c in cs)), tuple(c[0] for c in cs)

    def _instance_keys(self, sid, vid, ctx):
        memo: dict = {}
        pairs = [self._key_cands(ctx, s, b, memo) for s, b in zip(sid.tolist(), vid.tolist())]
        return [k for k, _ in pairs], [c for _, c in pairs]

    def _chunks(self, sid, vid, ctx):
        """Ranges of the instances sorted by video (stable) whose estimated largest tensor stays under
        ``max_chunk_elements``."""
        K = len(sid)
        if K <= 1:
            return [(0, K)], 0.0
        order = np.argsort(vid, kind="stable")
        sid, vid = sid[order], vid[order]
        # Rows of the widest node: the product of candidate counts over a spec's variables.
        real = np.maximum(ctx.tm_np.sum(1), 1).astype(np.float64)
        est = real[vid] ** np.minimum(self._num_vars[sid], 6) * ctx.T_pad
        limit = self.max_chunk_elements
        if limit is None:
            limit = _CPU_CHUNK
            if est.sum() > limit and ctx.device.type == "cuda":
                limit = self._cuda_chunk(ctx)
        total = float(est.sum())
        if total <= limit:
            return [(0, K)], total
        out, start, acc = [], 0, 0.0
        for k, e in enumerate(est.tolist()):
            if k > start and acc + e > limit:
                out.append((start, k))
                start, acc = k, 0.0
            acc += e
        out.append((start, K))
        return out, total

    def _checkpoints(self, est: float, ctx: "_Context") -> bool:
        """Whether the chunks of a call with ``est`` elements (widest nodes, summed) are checkpointed."""
        limit = self.checkpoint_above
        if limit is None:
            if ctx.device.type != "cpu":
                return True
            limit = _CPU_CHECKPOINT_ABOVE
        return est * _ACT_BYTES * torch.finfo(ctx.dtype).bits // 8 > limit

    def _cuda_chunk(self, ctx: "_Context") -> int:
        """The default chunk bound on a CUDA device, fixed at its first use (per device and dtype).

        A quarter of the free memory (the caching allocator's unused blocks counted as free) at
        about 100 bytes of activations per float32 element of the widest node (fwd + bwd with
        witnesses). Fixed once, so equal calls get equal chunks, and hence cached plans.
        """
        key = (str(ctx.device), ctx.dtype)
        hit = self._cuda_chunks.get(key)
        if hit is None:
            free, _ = torch.cuda.mem_get_info(ctx.device)
            free += torch.cuda.memory_reserved(ctx.device) - torch.cuda.memory_allocated(ctx.device)
            hit = self._cuda_chunks[key] = max(_CPU_CHUNK, free // 4 // (_ACT_BYTES * torch.finfo(ctx.dtype).bits // 8))
        return hit

    def _candidate_codes(self, sid, vid, ctx: "_Context") -> np.ndarray | None:
        """The candidate tracks of every instance's variables as bytes ``[K, V, ceil(N / 8)]``, computed
        without a per-instance Python loop (None under ``top_m``, whose candidates depend on a ranking).

        Equal codes (with equal ``sid``) mean equal :meth:`_instance_keys`: a variable's candidates
        are the real tracks, minus those of category weight exactly 0 when ``prune_zero`` (weight
        below 0.5 under ``boolean``), exactly as :meth:`_cands` selects them. This is what a cached
        plan is looked up by, so a repeated call costs O(instances) numpy work, not Python work.
        """
        if self.top_m is not None:
            return None
        if self._cat_table is None:
            V = max((len(c) for c in self._var_cats), default=0)
            C = len(self.columns.categories)
            # Column C: every real track (no category, -1); C + 1: an unknown category (-2); C + 2: padding;
            # C + 3 + c: category c with the tracks below prune_below dropped (certified pruning).
            table = np.full((len(self._var_cats), max(V, 1)), C + 2, dtype=np.int64)
            for i, (cats, eps) in enumerate(zip(self._var_cats, self._var_eps)):
                for v, (c, e) in enumerate(zip(cats, eps)):
                    table[i, v] = C if c == -1 else C + 1 if c == -2 else C + 3 + c if e else c
            self._cat_table = table
        tm = ctx.tm_np  # [B, N]
        B, N = tm.shape
        C = len(self.columns.categories)
        cols = np.zeros((B, N, 2 * C + 3 if self.prune_below is not None else C + 3), dtype=bool)
        if self.prune_zero:
            cols[:, :, :C] = ctx.weights_np != 0
        else:
            cols[:, :, :C] = True
            cols[:, :, C + 1] = True
        if self.prune_below is not None:
            cols[:, :, C + 3:] = (ctx.weights_np != 0) & (ctx.weights_np >= self.prune_below)
        cols[:, :, C] = True
        cols &= tm[:, :, None]
        packed = np.packbits(cols, axis=1).transpose(0, 2, 1)  # [B, columns, ceil(N / 8)]
        return np.ascontiguousarray(packed[vid[:, None], self._cat_table[sid]])  # [K, V, ceil(N / 8)]

    def _plan(self, sid, vid, ctx: "_Context", wmask: np.ndarray) -> Plan:
        shape_key = (vid.tobytes(), ctx.T_b_np[vid].tobytes(), ctx.T_pad, ctx.N, np.packbits(wmask).tobytes())
        codes = self._candidate_codes(sid, vid, ctx)
        keys = None
        if codes is not None:  # the key needs no per-instance Python
            pkey = (sid.tobytes(), codes.tobytes()) + shape_key
        else:  # top_m: candidates depend on a ranking, computed per instance
            keys, cands = self._instance_keys(sid, vid, ctx)
            pkey = (tuple(keys),) + shape_key
        plan = self._plans.get(pkey)
        if plan is None:
            if keys is None:
                group, gkeys, gcands = self._code_groups(sid, vid, ctx, codes)
            else:
                ids: dict = {}
                group = np.fromiter((ids.setdefault(k, len(ids)) for k in keys), np.int64, len(keys))
                firsts = np.unique(group, return_index=True)[1]
                gkeys, gcands = list(ids), [cands[k] for k in firsts.tolist()]
            plan = self._planner.build(sid, vid, group, gkeys, gcands, ctx.T_b_np, (ctx.N, ctx.C), wmask)
            self._plans.put(pkey, plan)
        return plan

    def _code_groups(self, sid, vid, ctx: "_Context", codes: np.ndarray) -> tuple:
        """``(group of each instance, key per group, candidate lists per group)``: instances with equal spec
        and candidate codes form one group (same candidates, hence one template); candidates are computed
        once per group, not per instance."""
        K = len(sid)
        rows = np.concatenate([sid.astype("<i8").view(np.uint8).reshape(K, 8), codes.reshape(K, -1)], 1)
        rows = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).reshape(-1)
        _, first, inv = np.unique(rows, return_index=True, return_inverse=True)
        memo: dict = {}
        pairs = [self._key_cands(ctx, int(sid[k]), int(vid[k]), memo) for k in first.tolist()]
        return inv.reshape(-1).astype(np.int64), [k for k, _ in pairs], [c for _, c in pairs]

    def clear_plans(self) -> None:
        """Forget the cached plans (not the per-template tables): the next call plans afresh, as a call
        on a new layout of instances does (used by the benchmarks to time what a training step pays)."""
        self._plans.clear()


def _witness_mask(witnesses, K: int) -> tuple[np.ndarray, bool]:
    """``(per-instance flags, whether the call returns witnesses)`` from a bool or one flag per instance."""
    if isinstance(witnesses, (bool, np.bool_)):
        return np.full(K, bool(witnesses)), bool(witnesses)
    if isinstance(witnesses, torch.Tensor):
        witnesses = witnesses.detach().cpu().numpy()
    w = np.asarray(witnesses)
    if w.shape != (K,) or (K and w.dtype != bool):
        raise _input_error(f"witnesses must be a bool or {K} bools (one per instance), got "
                           f"{'shape ' + str(w.shape) if w.shape != (K,) else 'dtype ' + str(w.dtype)}",
                           "pass witnesses=True, False, or a boolean mask over the spec_ids")
    return w.astype(bool), True


def _check_prune_below(prune_below, L: TorchLogic, top_m) -> float | None:
    if prune_below is None:
        return None
    if isinstance(prune_below, bool) or not isinstance(prune_below, (int, float)) or not 0 < prune_below <= 1:
        raise StlError([unsupported_by_backend(f"prune_below must be a number in (0, 1] or None, got {prune_below!r}")])
    if not L.zero_annihilates:
        raise unsupported("torch", f"certified pruning (prune_below) under the {L.name} logic",
                          "its folds are not bounded by the dropped weight; use product, godel or boolean")
    if top_m is not None:
        raise StlError([unsupported_by_backend("prune_below and top_m are two pruning modes: pass one",
                                               hints=("prune_below is certified (error_bound), top_m is not",))])
    return float(prune_below)


def _check_fused(fused, L: TorchLogic, top_m, prune_below) -> bool:
    """Whether the fused chain kernel is used (``fused``: None = when it can, True = insist, False = never)."""
    if fused is not None and not isinstance(fused, (bool, np.bool_)):
        raise StlError([unsupported_by_backend(f"fused must be True, False or None, got {fused!r}")])
    if fused is False:
        return False
    from stlspec.backends.torch import chain

    why = ("numba is not installed (pip install 'stlspec[fast]')" if not chain.available() else
           f"it evaluates the product logic, not {L.name}" if not L.fused_product else
           "top_m selects candidates the kernel does not" if top_m is not None else
           "certified pruning (prune_below) needs the generic engine's error bounds" if prune_below is not None
           else None)
    if why is not None and fused:
        raise unsupported("torch", "the fused chain kernel (fused=True)", why)
    return why is None


def _input_error(msg: str, hint: str = "") -> StlError:
    return StlError([invalid_evaluator_input(msg, hints=(hint,))])


# ---------------------------------------------------------------------- per-call tensors


class _Context:
    """The call's inputs: fact tensors (sanitised), frame counts and track masks (also on the host)."""

    def __init__(self, batch: SceneGraphBatch, ev: TorchEvaluator):
        B, T, N = batch.shape
        unary, binary, names = batch.unary, batch.binary, batch.names
        _check_shapes(batch, ev.columns)
        dt = unary.dtype
        if dt in (torch.float16, torch.bfloat16):  # folds and log-sum-exp need more range than half floats
            unary, binary, names = unary.float(), binary.float(), names.float()
        elif not dt.is_floating_point:
            raise _input_error(f"the fact tensors must be floating point, got {dt}")
        self.dtype = unary.dtype
        self.device = unary.device
        self.B, self.T, self.N = B, T, N
        fm = batch.frame_mask
        self.T_b_np = (fm.sum(-1).cpu().numpy().astype(np.int64) if fm is not None else np.full(B, T, np.int64))
        tm = batch.track_mask
        self.tm_np = tm.cpu().numpy().astype(bool) if tm is not None else np.ones((B, N), dtype=bool)
        names_np = names.detach().cpu().numpy() if (ev.prune_zero or ev.top_m is not None
                                                      or ev.prune_below is not None) else None
        # The category weights as the logic reads them (0/1 under boolean): what candidates are chosen by.
        self.weights_np = (names_np >= 0.5).astype(names_np.dtype) if names_np is not None and ev.L.crisp \
            else names_np
        self.full = bool((self.T_b_np == T).all())
        self.T_pad = max(T, 1)
        if T == 0:  # no frames at all: one padded frame, so every kernel has a time axis
            unary = unary.new_zeros(B, 1, N, unary.shape[-1])
            binary = binary.new_zeros(B, 1, N, N, binary.shape[-1])
            self.full = False
        # Padded frames (and absent tracks) read 0 whatever they hold, NaN and inf included. They are
        # masked on the rows the atoms gather (torch.where: nothing passes through, gradients
        # included), never by a pass over the whole fact tensors.
        present = batch.present
        self.present = present.to(torch.bool).reshape(-1) if present is not None and T > 0 else None
        self.unary, self.binary, self.names = unary.contiguous(), binary.contiguous(), names.contiguous()
        self.requires_grad = unary.requires_grad or binary.requires_grad or names.requires_grad
        self.C = names.shape[-1]
        self.P, self.R = unary.shape[-1], binary.shape[-1]

    def sub(self, v0: int, v1: int, unary, binary, names) -> "_Context":
        """The context of videos ``v0 … v1 − 1`` alone (their slices of the fact tensors given)."""
        import copy

        out = copy.copy(self)
        out.B = v1 - v0
        out.unary, out.binary, out.names = unary, binary, names
        out.T_b_np, out.tm_np = self.T_b_np[v0:v1], self.tm_np[v0:v1]
        out.weights_np = None if self.weights_np is None else self.weights_np[v0:v1]
        if self.present is not None:
            per = self.T_pad * self.N
            out.present = self.present[v0 * per:v1 * per]
        out.full = self.full or bool((out.T_b_np == self.T).all() and self.T > 0)
        return out


def _check_shapes(batch: SceneGraphBatch, columns: Columns) -> None:
    u, b, n = batch.unary, batch.binary, batch.names
    if u.dim() != 4 or b.dim() != 5 or n.dim() != 3:
        raise _input_error(f"expected names [B, N, C], unary [B, T, N, P], binary [B, T, N, N, R]; got "
                           f"{tuple(n.shape)}, {tuple(u.shape)}, {tuple(b.shape)}")
    B, T, N, _ = u.shape
    if b.shape[:4] != (B, T, N, N) or n.shape[:2] != (B, N):
        raise _input_error(f"inconsistent shapes: names {tuple(n.shape)}, unary {tuple(u.shape)}, "
                           f"binary {tuple(b.shape)}", "B, T and N must agree across the three tensors")
    for name, got, cols in (("names", n.shape[-1], columns.categories), ("unary", u.shape[-1], columns.unary),
                            ("binary", b.shape[-1], columns.binary)):
        if got != len(cols):
            raise _input_error(f"{name} has {got} columns but the evaluator's columns name {len(cols)}",
                               "build the batch with SceneGraphBatch.from_traces(traces, ev.columns) or pass "
                               "columns= matching the tensors to compile_specs")
    for name, m, shape in (("frame_mask", batch.frame_mask, (B, T)), ("track_mask", batch.track_mask, (B, N)),
                           ("present", batch.present, (B, T, N))):
        if m is not None and tuple(m.shape) != shape:
            raise _input_error(f"{name} has shape {tuple(m.shape)}, expected {shape}")


# ---------------------------------------------------------------------- execution (device)


class _Dev:
    """Device copies of a plan's tables.

    Atom batches are stored compactly (:class:`ops.FactIndex`: their distinct fact rows, then a 0
    row and a 1 row), so every reader of an atom batch reads it through that batch's row map.
    """

    def __init__(self, plan: Plan, ctx: _Context):
        dev = ctx.device
        T = ctx.T_pad
        self.tensors = []
        t_idx = torch.arange(T, device=dev)
        # Stored rows of each batch, and the logical-row -> stored-row map of atom batches.
        self.stored = [b.rows for b in plan.batches]
        self.row_maps: dict = {}
        atoms: dict = {}
        for j, b in enumerate(plan.batches):
            if b.op == Op.ATOM:
                fi, row_map = _atom_tables(b.params, ctx, b.axis)
                atoms[j] = fi
                self.row_maps[j] = row_map
                self.stored[j] = fi.n_u + fi.n_b + (2 if fi.consts else 0)
        for j, b in enumerate(plan.batches):
            d: dict = {}
            p = b.params
            d["T_b"] = torch.as_tensor(p["T_b"], device=dev)
            d["slots"] = [self.src(s, dev) for s in b.slots]
            if b.op == Op.ATOM:
                d["facts"] = atoms[j]
            elif b.op in (Op.EXISTS, Op.FORALL):
                d["seg"] = torch.as_tensor(p["seg"], device=dev)
                d["cat_idx"] = None if p["cat_idx"] is None else torch.as_tensor(p["cat_idx"], device=dev)
                d["cat_zero"] = None if p["cat_zero"] is None else torch.as_tensor(p["cat_zero"], device=dev)
                d["nonempty"] = torch.as_tensor(p["nonempty"], device=dev)[:, None]
            elif b.op == Op.NEXT:
                steps = p["steps"]
                d["steps1"] = bool((steps == 1).all())
                pos = torch.as_tensor(steps, device=dev)[:, None] + t_idx[None, :]
                # None: every position inside is known on the host (one step ahead in full-length
                # videos: the shift already fills the last frame).
                inside = (steps[:, None] + np.arange(T)[None, :]) < p["T_b"][:, None]
                d["inside"] = None if d["steps1"] and (inside[:, :-1].all() if T > 1 else True) else \
                    pos < d["T_b"][:, None]
                d["pos"] = pos.clamp(max=T - 1)
            elif "lo" in p:
                lo, hi, T_b = p["lo"], p["hi"], p["T_b"]
                d["lo"] = None if (lo == 0).all() else torch.as_tensor(np.minimum(lo, T + 1), device=dev)
                d["hi"] = None if (hi >= T - 1).all() else torch.as_tensor(np.minimum(hi, T + 1), device=dev)
                if b.op == Op.PIN:
                    hi0 = np.minimum(hi, T_b - 1)
                    keep = (np.arange(T)[None, :] >= lo[:, None]) & (np.arange(T)[None, :] <= hi0[:, None])
                    d["keep"] = None if keep.all() else torch.as_tensor(keep, device=dev)
                if b.op == Op.PREFIX:
                    real = np.arange(T)[None, :] < T_b[:, None]
                    d["real"] = None if real.all() else torch.as_tensor(real, device=dev)
                    d["lo1"] = torch.as_tensor(np.minimum(lo, T + 1) + 1, device=dev)
                    d["hi1"] = None if (hi >= T - 1).all() else torch.as_tensor(np.minimum(hi, T + 1) + 1,
                                                                                 device=dev)
            self.tensors.append(d)
        self.value_src = self.src(plan.value_src, dev)
        self.witness_flat = None
        if plan.witness_src is not None and len(plan.witness_src[1]):
            src, flat, wvid = plan.witness_src
            self.witness_src = self.src(src, dev)
            self.witness_flat = torch.as_tensor(flat, device=dev)
            self.witness_real = t_idx[None, :] < torch.as_tensor(ctx.T_b_np[wvid], device=dev)[:, None]

    def src(self, src, dev) -> list:
        """Per source batch ``(batch, inverse, gather)``: the consumer's rows from that batch (``gather``
        an :class:`ops.RowIndex`, or None for a direct read) and, when the consumer reads several
        batches, ``inverse`` (on the first part) puts their concatenation back in the consumer's order."""
        b, r, uniq = src
        if len(uniq) == 0:  # nothing to read (every assignment pruned)
            return []

        def index(u, rows):
            m = self.row_maps.get(u)
            if m is not None:
                rows = m[rows]
            n = self.stored[u]
            if len(rows) == n and bool((rows == np.arange(n)).all()):
                return None
            return ops.RowIndex(rows, n, dev)

        if len(uniq) == 1:
            u = int(uniq[0])
            return [(u, None, index(u, r))]
        parts = []
        for u in uniq.tolist():
            pos = np.nonzero(b == u)[0]
            parts.append((u, pos, index(u, r[pos])))
        order = np.concatenate([p[1] for p in parts])
        back = np.empty(len(order), dtype=np.int64)
        back[order] = np.arange(len(order))  # the inverse permutation, without a sort
        # A permutation (its backward is a gather), or None when the parts are already in order.
        inv = None if bool((back == np.arange(len(back))).all()) else ops.RowIndex(back, len(order), dev)
        return [(u, inv if k == 0 else None, g) for k, (u, _, g) in enumerate(parts)]


def _atom_tables(p: dict, ctx: _Context, axis: Axis) -> tuple:
    """An atom batch's :class:`ops.FactIndex` and its row map (logical row -> stored row).

    Rows reading the same fact elements (the same atom on the same video in several instances)
    are stored once.
    """
    dev = ctx.device
    N, T = ctx.N, ctx.T_pad
    P, Rb = ctx.P, ctx.R
    W = 1 if axis == Axis.ONE else T
    kind, col, ta, tb, vid, value = p["kind"], p["col"], p["ta"], p["tb"], p["vid"], p["value"]
    row_map = np.zeros(len(kind), np.int64)
    is_u, is_b = kind == int(AtomKind.UNARY), kind == int(AtomKind.BINARY)
    t_off = np.arange(W, dtype=np.int64)
    # Flat offset of each row's element at t = 0; the element at t is t · stride further.
    u_base, u_inv = _dedupe(((vid[is_u] * T) * N + ta[is_u]) * P + col[is_u])
    b_base, b_inv = _dedupe((((vid[is_b] * T) * N + ta[is_b]) * N + tb[is_b]) * Rb + col[is_b])
    n_u, n_b = len(u_base), len(b_base)
    row_map[is_u] = u_inv.reshape(-1)
    row_map[is_b] = n_u + b_inv.reshape(-1)
    const = ~(is_u | is_b)
    if const.any():
        eq = kind == int(AtomKind.EQ)
        one = np.where(eq, ta == tb, value > 0)
        row_map[const] = n_u + n_b + one[const].astype(np.int64)
    u_idx = torch.as_tensor((u_base[:, None] + t_off[None, :] * (N * P)).reshape(-1), device=dev)
    b_idx = torch.as_tensor((b_base[:, None] + t_off[None, :] * (N * N * Rb)).reshape(-1), device=dev)
    real = None
    if not ctx.full:  # frame t of a stored row is real if t < T_b of the row's video
        T_b = ctx.T_b_np
        rv = np.concatenate([u_base // (T * N * P), b_base // (T * N * N * Rb)]).astype(np.int64)
        r = t_off[None, :] < T_b[rv][:, None]
        if const.any():
            r = np.concatenate([r, np.ones((2, W), dtype=bool)])
        real = torch.as_tensor(r, device=dev)
    return ops.FactIndex(u_idx, b_idx, n_u, n_b, W, bool(const.any()), real, (N, P, Rb)), row_map


def _dedupe(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(x, return_inverse=True)`` for non-negative offsets: by a bitmap over ``[0, max]`` when
    that range is small against ``len(x)`` (no sort), else by ``np.unique``."""
    if len(x) == 0:
        return x, x
    bound = int(x.max()) + 1
    if bound > 8 * len(x) + 4096:
        return np.unique(x, return_inverse=True)
    seen = np.zeros(bound, dtype=bool)
    seen[x] = True
    rank = np.cumsum(seen, dtype=np.int64) - 1
    return np.flatnonzero(seen), rank[x]


def _run_plan(plan: Plan, ctx: _Context, L: TorchLogic, witnesses: bool, E: int, unary, binary, names):
    key = (str(ctx.device), ctx.T_pad, ctx.N)
    dev = plan.device_cache.get(key)
    if dev is None:
        dev = _Dev(plan, ctx)
        plan.device_cache = {key: dev}  # one device layout per plan
    T = ctx.T_pad
    store: list = []
    for b, d in zip(plan.batches, dev.tensors):
        width = 1 if b.axis == Axis.ONE else T
        in_width = T if b.op in (Op.EVENTUALLY0, Op.ALWAYS0) else width
        xs = [_fetch(store, plan, s, b, in_width, ctx) for s in d["slots"]]
        store.append(_kernel(b, d, xs, L, ctx, width, unary, binary, names))
    values = _fetch(store, plan, dev.value_src, None, 1, ctx)[:, 0]
    if not witnesses:
        return values, None
    K = len(values)
    out = values.new_zeros(K * E, T)
    if dev.witness_flat is not None:
        s = _fetch(store, plan, dev.witness_src, None, T, ctx, raw=True)
        s = torch.where(dev.witness_real, s, torch.zeros((), dtype=s.dtype, device=s.device))
        out = out.index_copy(0, dev.witness_flat, _normalise(s))
    return values, out.view(K, E, T)


def _normalise(s: torch.Tensor) -> torch.Tensor:
    """Witness distributions from witness scores (last axis: frames; padded frames already 0):
    ``max(s, 0) / Σ max(s, 0)``, all zeros where the sum is 0."""
    s = s.clamp_min(0)
    zero = torch.zeros((), dtype=s.dtype, device=s.device)
    total = s.sum(-1, keepdim=True)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, s / safe, zero)


def _fetch(store, plan: Plan, parts, consumer: Batch | None, width: int, ctx: _Context, raw: bool = False):
    """The rows a consumer reads from the store, converted to its width/axis."""
    if not parts:
        return torch.zeros(0, width, dtype=ctx.dtype, device=ctx.device)
    raw = raw or (consumer is not None and (consumer.key[3] or consumer.op in (Op.EVENTUALLY0, Op.ALWAYS0)))
    outs = []
    for u, inv, rows in parts:
        x = store[u]
        src_axis = plan.batches[u].axis
        if not raw and src_axis == Axis.TIME and (consumer is None or consumer.axis != Axis.TIME):
            x = x[:, :1]  # a t = 0 reader of a value over time
        if rows is not None:
            x = ops.gather_rows(x, rows)
        if x.shape[1] != width:
            x = x.expand(x.shape[0], width)
        outs.append(x)
    if len(outs) == 1:
        return outs[0]
    x = torch.cat(outs)
    return x if parts[0][1] is None else ops.gather_rows(x, parts[0][1])


def _kernel(b: Batch, d: dict, xs: list, L: TorchLogic, ctx: _Context, width: int, unary, binary, names):
    op = b.op
    match op:
        case Op.ATOM:
            return _atoms(d, ctx, L, unary, binary)
        case Op.NOT:
            return L.not_(xs[0])
        case Op.AND:
            return L.and_(xs)
        case Op.OR:
            return L.or_(xs)
        case Op.NEXT:
            x = xs[0]
            fill = 1.0 if b.key[4] else 0.0
            if d["steps1"]:
                y = torch.cat([x[:, 1:], x.new_full((x.shape[0], 1), fill)], 1)
            else:
                y = torch.gather(x, 1, d["pos"])
            return y if d["inside"] is None else ops.masked(y, d["inside"], fill)
        case Op.EVENTUALLY | Op.ALWAYS:
            return ops.window_fold(xs[0], L, op == Op.EVENTUALLY, d["lo"], d["hi"], d["T_b"], ctx.full)
        case Op.EVENTUALLY0 | Op.ALWAYS0:
            return ops.window_fold_t0(xs[0], L, op == Op.EVENTUALLY0, d["lo"], d["hi"], d["T_b"], ctx.full)
        case Op.UNTIL:
            return ops.until(xs[0], xs[1], L, d["lo"], d["hi"], d["T_b"])
        case Op.EXISTS | Op.FORALL:
            return _quantify(b, d, xs[0], L, names)
        case Op.PIN:
            return xs[0] if d["keep"] is None else ops.masked(xs[0], d["keep"], 0.0)
        case Op.PREFIX:
            x = xs[0] if d["real"] is None else ops.masked(xs[0], d["real"], 0.0)
            if d["lo"] is None and d["hi"] is None and not b.key[4]:
                return ops.prefix_or1(x) if L.fused_product else ops.prefix_or(x, L, shift=1)
            full_T = torch.full_like(d["T_b"], x.shape[-1])
            return ops.window_fold(x.flip(-1), L, True, d["lo1"], d["hi1"], full_T, True).flip(-1)
    raise AssertionError(op)


def _atoms(d: dict, ctx: _Context, L: TorchLogic, unary, binary):
    return L.atom(ops.gather_facts(unary, binary, d["facts"], ctx.present))


def _quantify(b: Batch, d: dict, body, L: TorchLogic, names):
    existential = b.op == Op.EXISTS
    cats = []
    if d["cat_idx"] is not None:
        flat = names.reshape(-1)
        for j in range(d["cat_idx"].shape[0]):
            c = L.atom(flat.index_select(0, d["cat_idx"][j]))
            if d["cat_zero"] is not None:
                c = torch.where(d["cat_zero"][j], torch.zeros((), dtype=c.dtype, device=c.device), c)
            cats.append(c[:, None])
    A = b.params["uniform"]
    if L.fused_product and A > 0 and body.shape[0] and (cats or existential):
        # One fused node (ops.product_fold), same arithmetic as the composition below.
        c = L.and_(cats) if cats else None
        if c is not None and not existential:
            c = 1.0 - L.not_(c)
        return ops.product_fold(c, body, A, existential)
    if existential:
        vals = L.and_(cats + [body]) if cats else body
    else:
        vals = L.or_([L.not_(L.and_(cats)), body]) if cats else body
    if vals.shape != body.shape:
        vals = vals.expand(body.shape)
    to, _, e, back = L.fold_space(existential)
    z = to(vals)
    R = b.rows
    W = z.shape[1]
    if A == 0 or z.shape[0] == 0:
        y = z.new_full((R, W), e)
    elif A > 0:
        zz = z.reshape(R, A, W)
        if L.minmax:
            y = zz.amax(1) if existential else zz.amin(1)
        elif L.fused_product:
            y = zz.prod(1)
        else:
            y = torch.logsumexp(zz, 1)
    else:
        idx = d["seg"][:, None].expand(-1, W)
        if L.minmax:
            y = z.new_full((R, W), e).scatter_reduce(0, idx, z, "amax" if existential else "amin", include_self=True)
        elif L.fused_product:
            y = z.new_full((R, W), e).scatter_reduce(0, idx, z, "prod", include_self=True)
        else:
            m = z.detach().new_full((R, W), -ops.BIG).scatter_reduce(0, idx, z.detach(), "amax", include_self=True)
            s = z.new_zeros((R, W)).scatter_add(0, idx, torch.exp(z - m.index_select(0, d["seg"])))
            y = torch.log(s.clamp_min(torch.finfo(s.dtype).tiny)) + m
    y = back(y)
    if L.log_sum_exp:
        y = torch.where(d["nonempty"], y, torch.full((), 0.0 if existential else 1.0, dtype=y.dtype,
                                                     device=y.device))
    return y

