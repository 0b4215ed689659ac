"""Vectorized logic and temporal operators on batched truth tensors.

Every truth tensor has the layout ``[K, Q, *blocks, T]``: ``K`` instances (a spec
on a video), ``Q`` pinned frames for witnesses (1 when nothing is pinned), one
dimension per quantifier block in scope, enumerating that block's variable
assignments (size 1 where the value does not depend on the block), and time last. Per-instance integers (frame counts ``T_b``, window
bounds) are ``[K]`` tensors and broadcast over the rest.

The semantics are those of :mod:`stlspec.backends.reference` (the oracle):
a temporal operator at ``t`` ranges over ``W(t) = [t+lo, t+hi] ∩ [0, T_b)``; an
empty ``W(t)`` makes ``eventually``/``until`` 0 and ``always`` 1, and no
"phantom" false operand is folded in past the end of the trace (which matters for
``smooth`` only).

How time is vectorized, and why it is exact:

* ``eventually``/``always`` are folds of an associative, commutative operator in a
  transformed space (max/min for ``godel``; products of ``1−x`` or ``x`` for
  ``product``; log-sum-exp of ``±x/τ`` for ``smooth``). Unbounded windows use one
  reversed cumulative op (``cummax``, ``cumprod``, ``logcumsumexp``); bounded
  windows use a doubling table (``log2 T`` levels) and the binary decomposition
  of each instance's window length, so no ``T × T`` tensor is ever built and
  windows may differ per instance (fraction windows depend on ``T_b``).
* ``until`` is the backward recursion ``u(t) = ψ(t) ∨ (φ(t) ∧ u(t+1))``: each
  position is a map ``x ↦ ψ ∨ (φ ∧ x)`` and the value at ``t`` is a composition of
  maps applied to ``ψ`` at the window's last position. The maps form a monoid
  closed under composition in every logic: ``x ↦ max(a, min(b, x))`` for godel,
  affine maps ``x ↦ a + b·x`` for product, and for smooth Möbius maps of
  ``X = e^{x/τ}`` (``X ↦ Ψ + ΦX/(Φ+X)``), i.e. 2×2 matrices kept in log space and
  renormalised after each product. Compositions over ranges use the same
  doubling table, so until is exact (no approximation) with ``O(log T)`` steps.
* Products are computed directly (not as ``exp Σ log``): multiplication has finite
  gradients at exactly 0 and 1 and underflow only rounds towards the true, tiny
  value. Log space is used where sums of exponentials appear (``smooth``).
"""

from __future__ import annotations

from typing import Sequence

import torch

from stlspec.logics import BIG, _suffix_prod, get_logic

__all__ = ["TorchLogic", "next_", "eventually", "always", "until", "quantify"]



def bk(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """A ``[K]`` or ``[K, T]`` tensor viewed to broadcast against ``[K, Q, *blocks, T]`` of ``ndim`` dims."""
    if x.dim() == 1:
        return x.view(-1, *([1] * (ndim - 1)))
    return x.view(x.shape[0], *([1] * (ndim - 2)), x.shape[-1])


#: What the kernels need to know about each logic, one row per logic (a new logic is one new row):
#: ``minmax`` (∧/∨ are min/max: boolean, Gödel), ``fused_product`` (the hand-derived product-logic
#: kernels apply: folds, suffix/prefix-or), ``log_sum_exp`` (∨ and ∃ are temperature-smoothed
#: log-sum-exps over a domain), ``crisp`` (a category weight counts when >= 0.5, not when > 0),
#: ``zero_annihilates`` (a conjunct of exactly 0 makes the conjunction 0: assignments of category
#: weight 0 can be dropped exactly).
KERNEL_TRAITS: dict[str, tuple[bool, bool, bool, bool, bool]] = {
    #           minmax fused_product log_sum_exp crisp  zero_annihilates
    "boolean": (True, False, False, True, True),
    "godel": (True, False, False, False, True),
    "product": (False, True, False, False, True),
    "smooth": (False, False, True, False, False),
}


class TorchLogic:
    """The tensor side of one :class:`stlspec.logics.Logic` (``boolean``, ``godel``, ``product``, ``smooth``).

    A thin view: every operation is the logic's own tensor method (one definition per logic, shared with
    the scalar reference), plus the properties the kernels branch on, from one row of :data:`KERNEL_TRAITS`
    (never on the logic's name): ``minmax``, ``fused_product``, ``log_sum_exp``, ``crisp``,
    ``zero_annihilates``; and ``tau``, the temperature.
    """

    def __init__(self, name: str, temperature: float = 0.1):
        if name not in KERNEL_TRAITS:
            raise ValueError(name)
        self.logic = get_logic(name, temperature)
        self.name = name
        self.tau = float(temperature)
        self.minmax, self.fused_product, self.log_sum_exp, self.crisp, self.zero_annihilates = KERNEL_TRAITS[name]
        self.atom = self.logic.tensor_atom
        self.not_ = self.logic.tensor_not
        self.and_ = self.logic.tensor_and
        self.or_ = self.logic.tensor_or
        self.fold_space = self.logic.fold_space

    def until_maps(self):
        return self.logic.until_maps()


def masked(x: torch.Tensor, keep: torch.Tensor, fill: float) -> torch.Tensor:
    """``torch.where(keep, x, fill)`` for finite ``x``, as arithmetic on a float mask.

    ``x·m + fill·(1−m)`` with ``m ∈ {0, 1}`` is exact (``x·1 = x``, ``x·0 = 0``) and so is its
    gradient (``g·m``); a multiplication by a small broadcast mask costs a fraction of a
    ``where`` on CPU. Every truth value and transformed truth value here is finite (log-space
    folds use the finite ``−BIG``), so this is how the evaluator masks its big tensors.
    """
    m = keep.to(x.dtype)
    if fill == 0.0:
        return x * m
    return torch.addcmul(fill * (1.0 - m), x, m)


def suffix_prod(z: torch.Tensor) -> torch.Tensor:
    """``∏_{s ≥ t} z_s`` along the last dim (reversed cumulative product, cheap exact backward)."""
    return _suffix_prod(z)


# ---------------------------------------------------------------------- time helpers


def _time_index(T: int, device: torch.device) -> torch.Tensor:
    return torch.arange(T, device=device)


def _shift(x: torch.Tensor, k: int, fill: float) -> torch.Tensor:
    """``y[..., t] = x[..., t + k]`` (``fill`` past the end of the tensor)."""
    if k == 0:
        return x
    T = x.shape[-1]
    if k >= T:
        return torch.full_like(x, fill)
    pad = torch.full((*x.shape[:-1], k), fill, dtype=x.dtype, device=x.device)
    return torch.cat([x[..., k:], pad], dim=-1)


def _gather_time(x: torch.Tensor, pos: torch.Tensor, fill: float) -> torch.Tensor:
    """``y[k, ..., t] = x[k, ..., pos[k, t]]``; ``fill`` where ``pos`` is outside ``[0, T)``."""
    T = x.shape[-1]
    ok = (pos >= 0) & (pos < T)
    idx = bk(pos.clamp(0, T - 1), x.dim()).expand(*x.shape[:-1], T)
    y = torch.gather(x, -1, idx)
    return masked(y, bk(ok, x.dim()), fill)


def _mask_frames(x: torch.Tensor, T_b: torch.Tensor, fill: float) -> torch.Tensor:
    """Replace values at padded frames ``t >= T_b`` by ``fill``."""
    t = _time_index(x.shape[-1], x.device)
    valid = bk(t[None, :] < T_b[:, None], x.dim())
    return masked(x, valid, fill)


def next_(x: torch.Tensor, T_b: torch.Tensor, weak: bool, full: bool = False, steps: int = 1) -> torch.Tensor:
    """``next[steps] φ``: φ at ``t+steps`` if ``t+steps < T_b``, else 0 (strong) or 1 (weak).

    ``full=True`` promises ``T_b == T`` for every instance (no padded frames).
    """
    fill = 1.0 if weak else 0.0
    steps = min(steps, x.shape[-1])  # beyond T every position is past the end (and int64 cannot overflow)
    y = _shift(x, steps, fill)
    if full:
        return y
    t = _time_index(x.shape[-1], x.device)
    inside = bk(t[None, :] + steps < T_b[:, None], x.dim())
    return masked(y, inside, fill)


# ---------------------------------------------------------------------- windowed folds


def _doubling(x: torch.Tensor, op, identity, levels: int, compose_shift) -> list:
    """``P_0 = x``, ``P_{j+1}(t) = op(P_j(t), P_j(t + 2^j))`` (identity past the end)."""
    table = [x]
    for j in range(levels - 1):
        table.append(op(table[-1], compose_shift(table[-1], 1 << j, identity)))
    return table


def _levels(T: int) -> int:
    return max(1, int(T).bit_length())


def _range_fold(table: list, op, identity, start: torch.Tensor, length: torch.Tensor, like: torch.Tensor,
                gather) -> object:
    """Fold of positions ``[start, start + length)`` (per ``[K, T]``) via the doubling table."""
    acc = identity(like)
    pos = start
    for j, level in enumerate(table):
        bit = (length >> j) & 1
        step = gather(level, pos)
        acc = _where_tree(bk(bit.bool(), like.dim()), op(acc, step), acc)
        pos = pos + bit * (1 << j)
    return acc


def _where_tree(cond, a, b):
    if isinstance(a, tuple):
        return tuple(torch.where(cond, x, y) for x, y in zip(a, b))
    return torch.where(cond, a, b)


def window_fold(x: torch.Tensor, logic: TorchLogic, disjunction: bool, lo: torch.Tensor | None,
                hi: torch.Tensor | None, T_b: torch.Tensor, full: bool = False) -> torch.Tensor:
    """``∨`` (or ``∧``) of ``x`` over ``W(t) = [t+lo, t+hi] ∩ [0, T_b)``.

    ``lo``/``hi`` are ``[K]`` frame offsets; ``lo=None`` means 0 for every
    instance and ``hi=None`` unbounded (known when the plan is built, so the
    common cases need no per-instance gathers). An empty ``W(t)`` gives 0 for ∨
    and 1 for ∧.
    """
    to, op, e, back = logic.fold_space(disjunction)
    T = x.shape[-1]
    t = _time_index(T, x.device)[None, :]
    if logic.fused_product and disjunction and lo is None and hi is None:
        # One fused node: padded frames read 0 (z = 1, the fold's identity, as _mask_frames gives).
        if full:
            return suffix_or(x)
        real = bk(t < T_b[:, None], x.dim())
        return masked(suffix_or(masked(x, real, 0.0)), real, 0.0)
    z = to(x) if full else _mask_frames(to(x), T_b, e)
    start = t if lo is None else t + lo[:, None]  # [K, T] (or [1, T])
    if hi is None:
        # One reversed cumulative op, then read the suffix fold at t + lo.
        if logic.fused_product:
            s = suffix_prod(z)
        else:
            zr = z.flip(-1)
            if logic.minmax:
                s = (zr.cummax(-1) if disjunction else zr.cummin(-1)).values
            else:
                s = zr.logcumsumexp(-1)
            s = s.flip(-1)
        if lo is None:
            if full:  # W(t) = [t, T-1] is never empty
                return back(s)
            # W(t) is empty at padded frames only; a video with no frames at all reads them at t = 0.
            y, nonempty = s, t < T_b[:, None]
        else:
            y = _gather_time(s, start, e)
            nonempty = start <= T_b[:, None] - 1
    else:
        end = torch.minimum(t + hi[:, None], T_b[:, None] - 1)  # inclusive
        length = (end - start + 1).clamp_min(0)
        table = _doubling(z, op, e, _levels(T), _shift)
        y = _range_fold(table, op, lambda like: torch.full_like(like, e), start.expand_as(length), length, z,
                        lambda level, pos: _gather_time(level, pos, e))
        nonempty = length > 0
    empty_value = 0.0 if disjunction else 1.0
    return masked(back(y), bk(nonempty, x.dim()), empty_value)


def window_fold_t0(x: torch.Tensor, logic: TorchLogic, disjunction: bool, lo: torch.Tensor | None,
                   hi: torch.Tensor | None, T_b: torch.Tensor, full: bool = False) -> torch.Tensor:
    """:func:`window_fold` read at ``t = 0`` only (``[..., 1]``): one reduction over ``W(0)``.

    Where only the value at the first frame is needed (an ``eventually``/``always`` that no
    temporal operator encloses), the fold over ``W(0) = [lo, hi] ∩ [0, T_b)`` is a plain
    reduction (``prod``, ``amax``/``amin``, ``logsumexp``) instead of a cumulative op.
    """
    to, _, e, back = logic.fold_space(disjunction)
    T = x.shape[-1]
    nonempty = keep = None
    if lo is not None or hi is not None:
        t = _time_index(T, x.device)[None, :]
        last = T_b[:, None] - 1
        end = last if hi is None else torch.minimum(hi[:, None], last)
        start = 0 if lo is None else lo[:, None]
        keep = bk((t >= start) & (t <= end), x.dim())
        nonempty = (start <= end)[:, 0] if lo is not None else (end >= 0)[:, 0]
    elif not full:
        keep = bk(_time_index(T, x.device)[None, :] < T_b[:, None], x.dim())
        nonempty = T_b >= 1  # W(0) is empty only in a video without frames
    if logic.fused_product and disjunction:
        # One fused node (product_fold over the frames); outside the window x reads 0, so z = 1 - x
        # reads 1 there, the fold's identity, exactly as masking z gives.
        xm = x if keep is None else masked(x, keep, 0.0)
        y = product_fold(None, xm.reshape(-1, 1), T, True).view(*x.shape[:-1], 1)
        return y if nonempty is None else masked(y, bk(nonempty, x.dim()), 0.0)
    z = to(x)
    if keep is not None:
        z = masked(z, keep, e)
    if logic.minmax:
        y = z.amax(-1, keepdim=True) if disjunction else z.amin(-1, keepdim=True)
    elif logic.fused_product:
        y = z.prod(-1, keepdim=True)
    else:
        y = torch.logsumexp(z, -1, keepdim=True)
    y = back(y)
    if nonempty is None:
        return y
    return masked(y, bk(nonempty, x.dim()), 0.0 if disjunction else 1.0)


def prefix_or(x: torch.Tensor, logic: TorchLogic, shift: int = 0) -> torch.Tensor:
    """``y(t) = ∨ of x(s) for s <= t - shift`` (0 when empty), one forward cumulative op."""
    to, _, e, back = logic.fold_space(True)
    z = to(x)
    if logic.minmax:
        s = z.cummax(-1).values
    elif logic.fused_product:
        s = z.cumprod(-1)
    else:
        s = z.logcumsumexp(-1)
    if shift:
        pad = torch.full((*s.shape[:-1], shift), e, dtype=s.dtype, device=s.device)
        s = torch.cat([pad, s[..., :-shift]], dim=-1)
    y = back(s)
    if logic.log_sum_exp and shift:
        # An empty fold is 0 (not τ·(−BIG)).
        t = _time_index(x.shape[-1], x.device)
        y = torch.where(t < shift, torch.zeros((), dtype=y.dtype, device=y.device), y)
    return y


def eventually(x, logic, lo, hi, T_b, full=False):
    return window_fold(x, logic, True, lo, hi, T_b, full)


def always(x, logic, lo, hi, T_b, full=False):
    return window_fold(x, logic, False, lo, hi, T_b, full)


# ---------------------------------------------------------------------- until as a scan of maps


def _shift_maps(maps):
    ident = maps.identity_value()

    def shift(m, k, _identity):
        return tuple(_shift(c, k, v) for c, v in zip(m, ident))
    return shift


def _gather_maps(maps):
    ident = maps.identity_value()

    def gather(m, pos):
        return tuple(_gather_time(c, pos, v) for c, v in zip(m, ident))
    return gather


def until(phi: torch.Tensor, psi: torch.Tensor, logic: TorchLogic, lo: torch.Tensor | None,
          hi: torch.Tensor | None, T_b: torch.Tensor) -> torch.Tensor:
    """``φ until[lo, hi] ψ`` exactly as the reference unfolds it.

    With ``W(t)`` non-empty and ``e = min(t+hi, T_b−1)``: the value is
    ``g_t ∘ … ∘ g_{t+lo−1} ∘ f_{t+lo} ∘ … ∘ f_{e−1} (ψ(e))`` with ``g_s(x) = φ(s) ∧ x``
    and ``f_s(x) = ψ(s) ∨ (φ(s) ∧ x)``; an empty ``W(t)`` gives 0. ``lo=None``
    means 0 and ``hi=None`` unbounded, as in :func:`window_fold`.
    """
    phi, psi = torch.broadcast_tensors(phi, psi)
    maps = logic.until_maps()
    T = phi.shape[-1]
    t = _time_index(T, phi.device)[None, :]
    last = T_b[:, None] - 1
    start = (t if lo is None else t + lo[:, None]).expand(last.shape[0], T)
    end = last.expand_as(start) if hi is None else torch.minimum(t + hi[:, None], last)  # e, inclusive
    nonempty = start <= end
    levels = _levels(T)
    shift, gather = _shift_maps(maps), _gather_maps(maps)
    f_table = _doubling(maps.f(phi, psi), maps.compose, None, levels, shift)
    m = _range_fold(f_table, maps.compose, maps.identity, start, (end - start).clamp_min(0), phi, gather)
    if lo is not None:
        g_table = _doubling(maps.g(phi), maps.compose, None, levels, shift)
        mg = _range_fold(g_table, maps.compose, maps.identity, t.expand_as(start),
                         lo[:, None].expand_as(start), phi, gather)
        m = maps.compose(mg, m)
    base = _gather_time(psi, end.clamp_min(0), 0.0)
    y = maps.apply(m, base)
    return torch.where(bk(nonempty, phi.dim()), y, torch.zeros((), dtype=phi.dtype, device=phi.device))


# ---------------------------------------------------------------------- quantifiers


def quantify(body: torch.Tensor, logic: TorchLogic, existential: bool, cats: Sequence[torch.Tensor],
             domain: torch.Tensor, nblock: int) -> torch.Tensor:
    """Fold ``∃``/``∀`` over the last ``nblock`` assignment dimensions of ``body`` ``[K, Q, *blocks, T]``.

    ``cats``: category scores, each broadcastable to ``body`` (one per categorised
    binder). ``domain``: bool, broadcastable to ``body``, true on injective
    assignments of real tracks (masked arithmetically: see :func:`masked`). ∃ folds ∨ of (cats ∧ body); ∀ folds ∧ of
    (¬(∧ cats) ∨ body); an empty domain gives 0 (∃) or 1 (∀).
    """
    L = logic
    if L.fused_product:
        # Fold the domain into the (small) category factor: a masked assignment then reads
        # exactly 0 (∃) or 1 (∀), the fold's identity, without a pass over the big tensor.
        cats = list(cats) + [domain.to(body.dtype)]
        domain = None
    if existential:
        vals = L.and_(list(cats) + [body]) if cats else body
    else:
        vals = L.or_([L.not_(L.and_(list(cats))), body]) if cats else body
    dims = tuple(range(vals.dim() - 1 - nblock, vals.dim() - 1))
    to, op, e, back = L.fold_space(existential)
    z = to(vals) if domain is None else masked(to(vals), domain, e)
    dom = domain.expand(z.shape) if L.log_sum_exp else None
    if L.minmax:
        y = z.amax(dims) if existential else z.amin(dims)
    elif L.fused_product:
        y = z.prod(dims[0]) if len(dims) == 1 else z.flatten(dims[0], dims[-1]).prod(dims[0])
    else:
        y = torch.logsumexp(z, dims)
    y = back(y)
    if L.log_sum_exp:
        any_ = dom.any(dim=dims[-1])
        for d in reversed(dims[:-1]):
            any_ = any_.any(dim=d)
        empty = 0.0 if existential else 1.0
        y = torch.where(any_, y, torch.full((), empty, dtype=y.dtype, device=y.device))
    return y


# ---------------------------------------------------------------------- row gathers with a cheap backward


class RowIndex:
    """A fixed row gather ``y = x[rows]`` from a source of ``n_src`` rows, with its backward prepared.

    Autograd's own backward of ``index_select`` zero-fills a gradient the size of the source and
    scatters into it, for every gather. Here the backward is chosen once, when the plan is built (the
    sort a segment sum needs is done at the first backward that takes that path, and kept):

    * ``rows`` a permutation of the source: the gradient is gathered back (``g[inverse]``), no
      zero-fill and no scatter;
    * otherwise, on CPU in float32: ``embedding_bag(order, g, offsets, "sum")`` sums each source row's
      readers (``order`` sorts the reads by source row), a segment sum with no zero-fill;
    * otherwise (float64, CUDA): one ``index_add_`` into one zero buffer.

    All three give the exact sum of the incoming gradients of each source row.
    """

    __slots__ = ("rows", "n_src", "inverse", "order", "offsets", "_host")

    def __init__(self, rows, n_src: int, device):
        import numpy as np

        rows = np.asarray(rows, dtype=np.int64)
        self.n_src = int(n_src)
        self.rows = torch.as_tensor(rows, device=device)
        self.inverse = self.order = self.offsets = None
        self._host = None
        if len(rows) == self.n_src and (not len(rows) or (np.bincount(rows, minlength=self.n_src) == 1).all()):
            inv = np.empty(len(rows), dtype=np.int64)
            inv[rows] = np.arange(len(rows))
            self.inverse = torch.as_tensor(inv, device=device)
        else:
            self._host = rows  # the segment-sum tables are built at the first backward that uses them

    def _segments(self):
        """``(order, offsets)`` of the segment sum, built once (a gather evaluated without gradients, or
        whose backward takes the ``index_add_`` path, never pays for the sort)."""
        if self.order is None:
            import numpy as np

            rows = self._host
            counts = np.bincount(rows, minlength=self.n_src) if len(rows) else np.zeros(self.n_src, np.int64)
            self.order = torch.as_tensor(np.argsort(rows, kind="stable"), device=self.rows.device)
            self.offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64),
                                           device=self.rows.device)
        return self.order, self.offsets

    def backward(self, g: torch.Tensor) -> torch.Tensor:
        if self.inverse is not None:
            return g.index_select(0, self.inverse)
        if g.device.type == "cpu" and g.dtype == torch.float32 and g.dim() == 2:
            order, offsets = self._segments()
            return torch.nn.functional.embedding_bag(order, g.contiguous(), offsets, mode="sum")
        return g.new_zeros((self.n_src, *g.shape[1:])).index_add_(0, self.rows, g)


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.index = index
        return x.index_select(0, index.rows)

    @staticmethod
    def backward(ctx, g):
        return ctx.index.backward(g), None


def gather_rows(x: torch.Tensor, index: RowIndex) -> torch.Tensor:
    """``x[index.rows]`` whose backward is :meth:`RowIndex.backward` (see :class:`RowIndex`)."""
    if x.requires_grad and torch.is_grad_enabled():
        return _Gather.apply(x, index)
    return x.index_select(0, index.rows)


class FactIndex:
    """Where an atom batch's rows live in the flattened fact tensors.

    A row of a unary atom reads ``unary[v, t, a, c]`` for ``t < W``, a binary one
    ``binary[v, t, a, b, c]``: ``u_idx``/``b_idx`` (``[n_u · W]``, ``[n_b · W]``) are those
    elements' flat offsets, row by row. Stored rows are the unary rows, the binary rows, then
    (when ``consts``) one row of 0s and one of 1s for constants and ``==`` atoms. ``real``
    (``[rows, W]`` bool, or None when every frame is real) marks the elements at real frames.
    """

    __slots__ = ("u_idx", "b_idx", "n_u", "n_b", "width", "consts", "real", "tracks", "_present_idx")

    def __init__(self, u_idx, b_idx, n_u: int, n_b: int, width: int, consts: bool, real, tracks: tuple):
        self.u_idx, self.b_idx, self.n_u, self.n_b = u_idx, b_idx, n_u, n_b
        self.width, self.consts, self.real = width, consts, real
        self.tracks = tracks  # (N, P, R): to find an element's (video, frame, track) in ``present``
        self._present_idx = None

    def keep(self, present: torch.Tensor | None) -> torch.Tensor | None:
        """Which gathered elements are real (frame real, and with ``present`` ``[B·T·N]`` bool, its
        tracks present): ``[rows, W]`` bool, or None when all are."""
        if present is None:
            return self.real
        if self._present_idx is None:
            N, P, R = self.tracks
            e = self.b_idx // R  # ((v·T + t)·N + a)·N + b
            self._present_idx = (self.u_idx // P, e // N, (e // (N * N)) * N + e % N)
        pu, pa, pb = self._present_idx
        W = self.width
        parts = [present.index_select(0, pu).view(self.n_u, W),
                 (present.index_select(0, pa) & present.index_select(0, pb)).view(self.n_b, W)]
        if self.consts:
            parts.append(torch.ones(2, W, dtype=torch.bool, device=present.device))
        keep = torch.cat(parts)
        return keep if self.real is None else keep & self.real


def _fact_rows(unary, binary, fi: FactIndex) -> torch.Tensor:
    W = fi.width
    parts = []
    if fi.n_u:
        parts.append(unary.reshape(-1).index_select(0, fi.u_idx).view(fi.n_u, W))
    if fi.n_b:
        parts.append(binary.reshape(-1).index_select(0, fi.b_idx).view(fi.n_b, W))
    if fi.consts:
        c = torch.zeros(2, W, dtype=unary.dtype, device=unary.device)
        c[1] = 1.0
        parts.append(c)
    if not parts:  # every assignment pruned
        return torch.zeros(0, W, dtype=unary.dtype, device=unary.device)
    return parts[0] if len(parts) == 1 else torch.cat(parts)


class _FactGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, unary, binary, fi):
        ctx.fi = fi
        ctx.shapes = (unary.shape, binary.shape)
        return _fact_rows(unary, binary, fi)

    @staticmethod
    def backward(ctx, g):
        fi = ctx.fi
        W = fi.width
        gu = gb = None
        if ctx.needs_input_grad[0]:
            gu = g.new_zeros(ctx.shapes[0].numel())
            if fi.n_u:  # offsets are distinct (rows are deduplicated): a copy, not a sum
                gu.index_copy_(0, fi.u_idx, g[:fi.n_u].reshape(-1))
            gu = gu.view(ctx.shapes[0])
        if ctx.needs_input_grad[1]:
            gb = g.new_zeros(ctx.shapes[1].numel())
            if fi.n_b:
                gb.index_copy_(0, fi.b_idx, g[fi.n_u:fi.n_u + fi.n_b].reshape(-1))
            gb = gb.view(ctx.shapes[1])
        return gu, gb, None


def gather_facts(unary: torch.Tensor, binary: torch.Tensor, fi: FactIndex,
                 present: torch.Tensor | None = None) -> torch.Tensor:
    """The stored rows of an atom batch (see :class:`FactIndex`), ``[n_u + n_b (+ 2), W]``.

    One ``index_select`` per fact tensor; the backward zero-fills one gradient per fact tensor and
    copies every row's gradient into it with one ``index_copy_`` (rows are distinct elements).
    Elements at padded frames or of absent tracks (``present``, ``[B·T·N]`` bool) read 0 whatever
    the tensors hold there (``torch.where``: NaN and inf included, and their gradients are 0).
    """
    if (unary.requires_grad or binary.requires_grad) and torch.is_grad_enabled():
        x = _FactGather.apply(unary, binary, fi)
    else:
        x = _fact_rows(unary, binary, fi)
    keep = fi.keep(present)
    if keep is None:
        return x
    return torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))


# ---------------------------------------------------------------------- fused quantifier fold (product logic)


class _ProductFold(torch.autograd.Function):
    """``y = 1 − ∏_a z_a`` (∃) or ``∏_a z_a`` (∀) over segments of ``A`` consecutive rows, ``z = 1 − c·u``.

    ``u = x`` (∃) or ``1 − x`` (∀); ``c`` (``[X, 1]`` or None for 1) is the category weight of each
    assignment (under ∀ already in the ``1 − (1 − c)`` form the unfused formula computes). The
    forward is the same arithmetic as the unfused ``and``/``not``/``prod`` composition; the backward is
    hand-derived: with ``G = ±g·P / z`` (``P`` the segment's product), ``∂x = ∓c·G`` and
    ``∂c = −Σ_t u·G``, three passes over the assignments instead of autograd's eight. Where a
    segment's product is exactly 0 (a factor is 0, or the product underflowed) the division is
    undefined and the backward differentiates the unfused composition instead (exact, rare).
    """

    @staticmethod
    def forward(ctx, c, x, A: int, existential: bool):
        u = x if existential else 1.0 - x
        # 1 − c·u, bitwise as the unfused rsub of the product: (−c)·u = −(c·u) and 1 + (−a) = 1 − a.
        z = (u * -c).add_(1.0) if c is not None else 1.0 - u
        R = z.shape[0] // A
        P = z.view(R, A, z.shape[1]).prod(1)
        ctx.save_for_backward(c, x, z, P)
        ctx.A, ctx.existential = A, existential
        return 1.0 - P if existential else P

    @staticmethod
    def backward(ctx, g):
        c, x, z, P = ctx.saved_tensors
        A, existential = ctx.A, ctx.existential
        if bool((P == 0).any()):  # a zero factor: differentiate the composition instead
            with torch.enable_grad():
                cc = None if c is None else c.detach().requires_grad_(ctx.needs_input_grad[0])
                xx = x.detach().requires_grad_(ctx.needs_input_grad[1])
                y = _product_fold_reference(cc, xx, A, existential)
                wrt = [t for t in (cc, xx) if t is not None and t.requires_grad]
                grads = iter(torch.autograd.grad(y, wrt, g, allow_unused=True)) if wrt else iter(())
                gc = next(grads) if cc is not None and cc.requires_grad else None
                gx = next(grads) if xx.requires_grad else None
            return gc, gx, None, None
        R, W = P.shape
        dP = g * P if not existential else -(g * P)
        G = (dP[:, None, :] / z.view(R, A, W)).view(R * A, W)  # ∂L/∂z
        gc = None
        if c is not None and ctx.needs_input_grad[0]:
            u = x if existential else 1.0 - x
            gc = -torch.linalg.vecdot(u.expand_as(G), G)[:, None]
            if gc.shape != c.shape:
                gc = gc.sum_to_size(c.shape)
        gx = None
        if ctx.needs_input_grad[1]:  # ∂z/∂x = −c (∃) or +c (∀)
            if c is None:
                gx = G.neg_() if existential else G
            else:
                gx = G.mul_(-c if existential else c)
            if gx.shape != x.shape:
                gx = gx.sum_to_size(x.shape)
        return gc, gx, None, None


def _product_fold_reference(c, x, A: int, existential: bool):
    """The unfused composition :class:`_ProductFold` computes (its fallback backward, and the tests' oracle)."""
    u = x if existential else 1.0 - x
    z = 1.0 - (u * c if c is not None else u)
    P = z.view(z.shape[0] // A, A, z.shape[1]).prod(1)
    return 1.0 - P if existential else P


def product_fold(c: torch.Tensor | None, x: torch.Tensor, A: int, existential: bool) -> torch.Tensor:
    """∃ (``1 − ∏(1 − c·x)``) or ∀ (``∏(1 − c·(1 − x))``) of ``x`` ``[R·A, W]`` over segments of ``A`` rows.

    ``c``: ``[R·A, 1]`` category weights or None. ``[R, W]``; one fused autograd node
    (:class:`_ProductFold`) when gradients are needed. Under ∀, ``c`` is required (without category
    weights ∀ folds ``x`` itself, which :func:`quantify`'s plain product does).
    """
    assert c is not None or existential, "a ∀ fold without category weights is a plain product"
    if torch.is_grad_enabled() and (x.requires_grad or (c is not None and c.requires_grad)):
        return _ProductFold.apply(c, x, A, existential)
    return _product_fold_reference(c, x, A, existential)


# ---------------------------------------------------------------------- fused time folds (product logic)


def _suffix_or_reference(x: torch.Tensor) -> torch.Tensor:
    return _suffix_or_z(1.0 - x)


def _suffix_or_z(z: torch.Tensor) -> torch.Tensor:
    return 1.0 - z.flip(-1).cumprod(-1).flip(-1)


def _prefix_or1_reference(x: torch.Tensor) -> torch.Tensor:
    return _prefix_or1_z(1.0 - x)


def _prefix_or1_z(z: torch.Tensor) -> torch.Tensor:
    c = z.cumprod(-1)
    pad = torch.ones((*c.shape[:-1], 1), dtype=c.dtype, device=c.device)
    return 1.0 - torch.cat([pad, c[..., :-1]], dim=-1)


def _fallback(of_z, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``∂x`` for ``y = of_z(1 − x)``, by autograd through ``of_z`` (the unfused composition)."""
    with torch.enable_grad():
        zz = z.detach().requires_grad_(True)
        return -torch.autograd.grad(of_z(zz), zz, g)[0]


class _SuffixOr(torch.autograd.Function):
    """``y_t = 1 − ∏_{s ≥ t} (1 − x_s)``: product-logic ``eventually`` over ``[t, T)``.

    Backward ``∂x_s = Σ_{t ≤ s} g_t p_t / z_s`` (``z = 1 − x``, ``p`` the suffix products): a forward
    cumulative sum, no flips and no sign passes. Where a row's product is 0 (some ``z`` is exactly 0,
    or it underflowed) it differentiates the unfused composition instead (exact, rare).
    """

    @staticmethod
    def forward(ctx, x):
        z = 1.0 - x
        p = z.flip(-1).cumprod(-1).flip(-1)
        ctx.save_for_backward(z, p)
        return 1.0 - p

    @staticmethod
    def backward(ctx, g):
        z, p = ctx.saved_tensors
        # Some z is 0 only if a row's whole product p[:, 0] is 0 (or underflowed: then also exact).
        if bool((p[..., 0] == 0).any()):
            return _fallback(_suffix_or_z, z, g)
        return (g * p).cumsum(-1).div_(z)


class _PrefixOr1(torch.autograd.Function):
    """``y_t = 1 − ∏_{s < t} (1 − x_s)`` (0 at ``t = 0``): the product-logic prefix fold of witness chains.

    Backward ``∂x_s = Σ_{t > s} g_t c_{t−1} / z_s`` (``c`` the prefix products of ``z = 1 − x``); where
    a row's product is 0 (some ``z`` is exactly 0, or it underflowed) it differentiates the unfused
    composition instead (exact, rare).
    """

    @staticmethod
    def forward(ctx, x):
        z = 1.0 - x
        c = z.cumprod(-1)
        y = torch.empty_like(c)
        y[..., :1] = 0.0
        torch.sub(1.0, c[..., :-1], out=y[..., 1:])
        ctx.save_for_backward(z, c)
        return y

    @staticmethod
    def backward(ctx, g):
        z, c = ctx.saved_tensors
        # Some z is 0 only if a row's whole product c[:, -1] is 0 (or underflowed: then also exact).
        if bool((c[..., -1] == 0).any()):
            return _fallback(_prefix_or1_z, z, g)
        h = torch.empty_like(c)
        h[..., -1:] = 0.0
        torch.mul(g[..., 1:], c[..., :-1], out=h[..., :-1])
        return h.flip(-1).cumsum(-1).flip(-1).div_(z)


def suffix_or(x: torch.Tensor) -> torch.Tensor:
    """``1 − ∏_{s ≥ t} (1 − x_s)`` along the last dim (one fused node when gradients are needed)."""
    if x.requires_grad and torch.is_grad_enabled():
        return _SuffixOr.apply(x)
    return _suffix_or_reference(x)


def prefix_or1(x: torch.Tensor) -> torch.Tensor:
    """``1 − ∏_{s < t} (1 − x_s)`` along the last dim, 0 at ``t = 0`` (one fused node with gradients)."""
    if x.requires_grad and torch.is_grad_enabled():
        return _PrefixOr1.apply(x)
    return _prefix_or1_reference(x)
