"""Fused CPU kernels for LASER-shaped specs under the product logic (compiled with numba).

A *kernel instance* is a spec with at most one quantifier block ``Q x₁: c₁, …, x_V: c_V`` (∃ or ∀) over
either a ``then`` chain of tagged events ``A_0 then … then A_{E−1}`` (no windows; ∃ or no quantifier)
or an ``always A_0`` (no window), each ``A_k`` a propositional formula of literals (*body*), evaluated
on one video. For each injective assignment ``r`` of the variables to candidate tracks (one *row*),
with ``A_k(t)`` the body's value at frame ``t`` and ``T_b`` the video's frame count, a chain is

    Body_{E−1}(t) = A_{E−1}(t),   Body_k(t) = A_k(t) · F_{k+1}(t + 1)      (F_k(T_b) = 0)
    F_k(t)        = Body_k(t) ∨ F_k(t + 1)                                   (x ∨ y = x + y − x·y)
    Pre_0(q) = 1,  Pre_{j+1}(q) = ∨_{s < q} Pre_j(s) · A_j(s),   c_k(q) = Pre_k(q) · Body_k(q)

with the row's value ``x_r = F_0(0)``, and an always is ``x_r = ∏_{t < T_b} A_0(t)``. With ``w_r`` the
product of the row's category weights, the instance's value is the fold ``1 − ∏_r (1 − w_r x_r)`` (∃),
``∏_r (1 − w_r (1 − x_r))`` (∀) or ``x_r`` of the single row (no quantifier), and the witness scores of
a chain are ``s_k(q) = 1 − ∏_r (1 − w_r · c_k(q))``. These are the defining equations of
``docs/semantics.md`` and ``stlspec/ir.py`` for these shapes, so the results equal the generic
engine's up to rounding: the per-row arrays below are in the facts' dtype (float32 or float64), the
folds over rows and the literal gradients' sums in float64.

Layout. Per instance, every literal is first read from the fact tensors once per candidate track
(pair) into a buffer ``Lb[literal·N² + n·N + m, t]`` (the fact tensors are strided in ``t``, and rows
sharing a literal would read it again). Rows are then processed in chunks of ``L`` *lanes*: every
per-row quantity is an array ``[body, t, lane]``, so each step of a scan along ``t`` -- a chain of
dependent operations within a row -- is one vectorisable loop over the chunk's rows, in cache. A body
is evaluated node by node (post-order) over the lanes, with a fast path for a conjunction of literals.
The folds are kept per lane and combined at the end of the instance. A product that ends at exactly 0
(a factor 0, or underflow) makes the instance run again counting zero factors apart (``zv``, ``zs``),
which the backward pass needs for the exclusive products.

The backward kernel recomputes each chunk's forward values and propagates the gradients of the value
and witness scores back: the exclusive product of a fold is its product divided by the row's factor
(or the product itself for its single zero factor), the scans are reversed, the bodies' nodes are
visited in reverse, each literal's gradient is summed per instance in a buffer like ``Lb`` and then
added to the fact element it read, and each category weight's gradient to ``names``.

Arguments: ``inst = (spec, video, witnesses?)`` per instance, ``video = (T_b, track mask, present,
has_present, names, unary, binary, prune_zero)``, ``spec`` the arrays of
:meth:`stlspec.backends.torch.chain.ChainTables.spec_args`.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["chain_forward", "chain_backward", "L"]

#: Rows processed together (lanes).
L = 64

_JIT = dict(cache=True, nogil=True, boundscheck=False, error_model="numpy")
_INLINE = dict(_JIT, inline="always")


# ---------------------------------------------------------------------- rows


@numba.njit(**_INLINE)
def _candidates(b, s, V, s_cat, tm, names, prune_zero, cand, ncand):
    """The candidate tracks of each variable: real tracks, minus those of category weight exactly 0
    with ``prune_zero`` (exactly the generic engine's choice)."""
    N = tm.shape[1]
    for v in range(V):
        c = s_cat[s, v]
        k = 0
        for n in range(N):
            if not tm[b, n]:
                continue
            if prune_zero and c != -1 and (c == -2 or names[b, n, c] == 0.0):
                continue
            cand[v, k] = n
            k += 1
        ncand[v] = k


@numba.njit(**_INLINE)
def _next_row(V, ncand, cand, digits, tr):
    """Advances ``digits`` (an odometer over the candidate lists) to the next injective assignment and
    writes its tracks to ``tr``; False when there is none left. ``digits[0] = -1`` starts."""
    if V == 0:  # one row; literals without variables read track (pair) 0 of their buffers
        if digits[0] == -1:
            digits[0] = 0
            tr[0] = 0
            return True
        return False
    while True:
        if digits[0] == -1:
            for v in range(V):
                digits[v] = 0
                if ncand[v] == 0:
                    digits[0] = -2
                    return False
        elif digits[0] == -2:
            return False
        else:
            v = V - 1
            while v >= 0:
                digits[v] += 1
                if digits[v] < ncand[v]:
                    break
                digits[v] = 0
                v -= 1
            if v < 0:
                digits[0] = -2
                return False
        ok = True
        for v in range(V):
            tr[v] = cand[v, digits[v]]
            for u in range(v):
                if tr[u] == tr[v]:
                    ok = False
        if ok:
            return True


@numba.njit(**_INLINE)
def _weight(b, s, V, s_cat, names, tr):
    w = 1.0
    for v in range(V):
        c = s_cat[s, v]
        if c == -2:
            return 0.0
        if c >= 0:
            w *= names[b, tr[v], c]
    return w


# Node operations, quantifiers and modes (as in stlspec.backends.torch.chain).
_LIT, _NOT, _AND, _OR = 0, 1, 2, 3
_NONE, _EXISTS, _FORALL = 0, 1, 2
_CHAIN, _ALWAYS = 0, 1


@numba.njit(**_INLINE)
def _chunk(b, s, V, fold, skip_zero, spec, names, N, ncand, cand, digits, tr, trl, idx, wl):
    """Fills up to ``L`` lanes with the next rows (tracks ``trl[v, lane]``, weights ``wl``, and per literal the
    row of the literal buffer it reads, ``idx``); returns how many. Rows of weight 0 are skipped when ``skip_zero``."""
    s_cat, s_lit, a_kind, a_v1, a_v2 = spec[5], spec[6], spec[8], spec[10], spec[11]
    l0, l1 = s_lit[s, 0], s_lit[s, 1]
    nl = 0
    while nl < L:
        if not _next_row(V, ncand, cand, digits, tr):
            break
        w = _weight(b, s, V, s_cat, names, tr) if fold else 1.0
        if w == 0.0 and skip_zero:
            continue
        for v in range(max(V, 1)):  # V = 0: track 0 (see _next_row)
            trl[v, nl] = tr[v]
        wl[nl] = w
        nl += 1
    for j in range(l0, l1):  # one vectorisable loop per literal
        base, v1, v2 = (j - l0) * N * N, a_v1[j], a_v2[j]
        if a_kind[j] == 1 or a_kind[j] == 2:
            for r in range(nl):
                idx[j - l0, r] = base + trl[v1, r] * N + trl[v2, r]
        else:
            for r in range(nl):
                idx[j - l0, r] = base + trl[v1, r] * N
    return nl


# ---------------------------------------------------------------------- literals


@numba.njit(**_INLINE)
def _fill_literals(b, s, Tb, spec, video, cand, ncand, Lb):
    """``Lb[j·N² + n·N + m, t]``: literal ``j`` (local index) of spec ``s`` on candidate tracks ``(n, m)``
    (``m = 0`` for a unary one) at frame ``t`` of video ``b``; each fact element is read once."""
    s_lit, a_kind, a_col, a_v1, a_v2, a_neg, a_val = spec[6], spec[8], spec[9], spec[10], spec[11], spec[12], spec[13]
    present, has_present, unary, binary = video[2], video[3], video[5], video[6]
    N = video[1].shape[1]
    l0 = s_lit[s, 0]
    for j in range(l0, s_lit[s, 1]):
        k, col, neg, v1, v2 = a_kind[j], a_col[j], a_neg[j], a_v1[j], a_v2[j]
        base = (j - l0) * N * N
        # Frame by frame: the tracks of one frame lie close together in the fact tensors.
        if k == 0:
            for t in range(Tb):
                for a in range(ncand[v1]):
                    n = cand[v1, a]
                    f = unary[b, t, n, col] if not has_present or present[b, t, n] else 0.0
                    Lb[base + n * N, t] = 1.0 - f if neg else f
        elif k == 1:
            for t in range(Tb):
                for a in range(ncand[v1]):
                    n = cand[v1, a]
                    for c in range(ncand[v2]):
                        m = cand[v2, c]
                        if m == n and v1 != v2:
                            continue  # never an injective assignment
                        ok = not has_present or (present[b, t, n] and present[b, t, m])
                        f = binary[b, t, n, m, col] if ok else 0.0
                        Lb[base + n * N + m, t] = 1.0 - f if neg else f
        else:  # equality and constants: every pair of tracks
            for n in range(N):
                for m in range(N):
                    f = (1.0 if n == m else 0.0) if k == 2 else a_val[j]
                    for t in range(Tb):
                        Lb[base + n * N + m, t] = 1.0 - f if neg else f


@numba.njit(**_INLINE)
def _scatter_literals(b, s, Tb, spec, video, cand, ncand, gL, g_unary, g_binary):
    """Adds each literal's gradient (summed per instance in ``gL``, laid out as ``Lb``) to the fact element
    it read, and sets ``gL`` back to zero where the instance wrote it."""
    s_lit, a_kind, a_col, a_v1, a_v2, a_neg = spec[6], spec[8], spec[9], spec[10], spec[11], spec[12]
    present, has_present = video[2], video[3]
    N = video[1].shape[1]
    V = spec[0][s]
    l0 = s_lit[s, 0]
    for j in range(l0, s_lit[s, 1]):
        k, col, v1, v2 = a_kind[j], a_col[j], a_v1[j], a_v2[j]
        sign = -1.0 if a_neg[j] else 1.0
        base = (j - l0) * N * N
        na = ncand[v1] if V > 0 else 1
        pair = k == 1 or k == 2
        # Frame by frame, as in _fill_literals: consecutive writes land close together in the fact gradients.
        for t in range(Tb):
            for a in range(na):
                n = cand[v1, a] if V > 0 else 0
                for c in range(ncand[v2] if pair else 1):
                    m = cand[v2, c] if pair else 0
                    row = base + n * N + m
                    g = gL[row, t]
                    if g == 0.0:
                        continue
                    gL[row, t] = 0.0
                    if k == 0:
                        if not has_present or present[b, t, n]:
                            g_unary[b, t, n, col] += sign * g
                    elif k == 1 and (not has_present or (present[b, t, n] and present[b, t, m])):
                        g_binary[b, t, n, m, col] += sign * g


# ---------------------------------------------------------------------- bodies (propositional)


@numba.njit(**_INLINE)
def _conj_literals(root, n_op, n_arg, k0, k1, kids, out):
    """The fast path's test and data: when the body rooted at ``root`` is one literal or a conjunction of
    literals, writes them to ``out`` and returns how many; otherwise returns -1."""
    if n_op[root] == _LIT:
        out[0] = n_arg[root]
        return 1
    if n_op[root] != _AND:
        return -1
    for k in range(k0[root], k1[root]):
        if n_op[kids[k]] != _LIT:
            return -1
        out[k - k0[root]] = n_arg[kids[k]]
    return k1[root] - k0[root]


@numba.njit(**_INLINE)
def _eval_nodes(n0, n1, t, nl, n_op, n_arg, k0, k1, kids, idx, Lb, vals, one):
    """Every node of a body at frame ``t``, into ``vals[node − n0]``."""
    for n in range(n0, n1):
        i, o = n - n0, n_op[n]
        if o == _LIT:
            j = n_arg[n]
            for r in range(nl):
                vals[i, r] = Lb[idx[j, r], t]
        elif o == _NOT:
            c = kids[k0[n]] - n0
            for r in range(nl):
                vals[i, r] = one - vals[c, r]
        elif o == _AND:
            c = kids[k0[n]] - n0
            for r in range(nl):
                vals[i, r] = vals[c, r]
            for k in range(k0[n] + 1, k1[n]):
                c = kids[k] - n0
                for r in range(nl):
                    vals[i, r] *= vals[c, r]
        else:  # or: 1 − ∏ (1 − x)
            c = kids[k0[n]] - n0
            for r in range(nl):
                vals[i, r] = one - vals[c, r]
            for k in range(k0[n] + 1, k1[n]):
                c = kids[k] - n0
                for r in range(nl):
                    vals[i, r] *= one - vals[c, r]
            for r in range(nl):
                vals[i, r] = one - vals[i, r]


@numba.njit(**_JIT)
def _bodies_forward(s, spec, nb, Tb, nl, idx, Lb, A, vals, tmp, lits, one):
    """``A[e, t, lane]``: body ``e`` of spec ``s`` on each lane's row. A conjunction of literals is computed
    row by row along ``t`` (each literal's frames are contiguous in ``Lb``), then stored per lane."""
    s_body, n_op, n_arg, k0, k1, kids = spec[7], spec[14], spec[15], spec[16], spec[17], spec[18]
    for e in range(nb):
        n0, n1 = s_body[s, e], s_body[s, e + 1]
        root = n1 - 1
        nk = _conj_literals(root, n_op, n_arg, k0, k1, kids, lits)
        if nk >= 0:
            if nk <= 2:  # one loop per row (most bodies)
                for r in range(nl):
                    i0, i1 = idx[lits[0], r], idx[lits[nk - 1], r]
                    if nk == 1:
                        for t in range(Tb):
                            A[e, t, r] = Lb[i0, t]
                    else:
                        for t in range(Tb):
                            A[e, t, r] = Lb[i0, t] * Lb[i1, t]
                continue
            for r in range(nl):
                row = idx[lits[0], r]
                for t in range(Tb):
                    tmp[t] = Lb[row, t]
                for k in range(1, nk):
                    row = idx[lits[k], r]
                    for t in range(Tb):
                        tmp[t] *= Lb[row, t]
                for t in range(Tb):
                    A[e, t, r] = tmp[t]
            continue
        for t in range(Tb):
            _eval_nodes(n0, n1, t, nl, n_op, n_arg, k0, k1, kids, idx, Lb, vals, one)
            for r in range(nl):
                A[e, t, r] = vals[root - n0, r]


@numba.njit(**_JIT)
def _bodies_backward(s, spec, nb, Tb, nl, idx, Lb, gA, vals, gvals, gL, tmp, gt, lits, one):
    """Adds the gradients of the literals, given ``gA[e, t, lane]``, to ``gL`` (laid out as ``Lb``). For a
    conjunction of literals, row by row along ``t``: each literal's gradient is ``gA`` times the others."""
    s_body, n_op, n_arg, k0, k1, kids = spec[7], spec[14], spec[15], spec[16], spec[17], spec[18]
    for e in range(nb):
        n0, n1 = s_body[s, e], s_body[s, e + 1]
        root = n1 - 1
        nk = _conj_literals(root, n_op, n_arg, k0, k1, kids, lits)
        if nk >= 0:
            if nk <= 2:  # one or two literals (most bodies): the lane's column once, then along t
                for r in range(nl):
                    i0, i1 = idx[lits[0], r], idx[lits[nk - 1], r]
                    if nk == 1:
                        for t in range(Tb):
                            gL[i0, t] += gA[e, t, r]
                    else:
                        for t in range(Tb):
                            gt[t] = gA[e, t, r]
                        for t in range(Tb):
                            gL[i0, t] += gt[t] * Lb[i1, t]
                        for t in range(Tb):
                            gL[i1, t] += gt[t] * Lb[i0, t]
                continue
            for r in range(nl):
                for t in range(Tb):
                    gt[t] = gA[e, t, r]
                for k in range(nk):
                    for t in range(Tb):
                        tmp[t] = gt[t]
                    for kk in range(nk):
                        if kk != k:
                            other = idx[lits[kk], r]
                            for t in range(Tb):
                                tmp[t] *= Lb[other, t]
                    row = idx[lits[k], r]
                    for t in range(Tb):
                        gL[row, t] += tmp[t]
            continue
        for t in range(Tb):
            _eval_nodes(n0, n1, t, nl, n_op, n_arg, k0, k1, kids, idx, Lb, vals, one)
            i = root - n0
            for r in range(nl):
                gvals[i, r] = gA[e, t, r]
            for n in range(n1 - 1, n0 - 1, -1):  # parents before children; each node has one parent
                i, o = n - n0, n_op[n]
                if o == _LIT:
                    j = n_arg[n]
                    for r in range(nl):
                        gL[idx[j, r], t] += gvals[i, r]
                elif o == _NOT:
                    c = kids[k0[n]] - n0
                    for r in range(nl):
                        gvals[c, r] = -gvals[i, r]
                else:
                    for k in range(k0[n], k1[n]):
                        c = kids[k] - n0
                        for r in range(nl):
                            gvals[c, r] = gvals[i, r]
                        for kk in range(k0[n], k1[n]):
                            if kk != k:
                                d = kids[kk] - n0
                                if o == _AND:
                                    for r in range(nl):
                                        gvals[c, r] *= vals[d, r]
                                else:
                                    for r in range(nl):
                                        gvals[c, r] *= one - vals[d, r]


# ---------------------------------------------------------------------- a chunk of rows
#
# The lane loops index the [body, t, lane] arrays directly rather than through per-step slices: numba
# reference-counts every array view it creates (two atomic operations), which cost more than a 64-lane
# vector step.


@numba.njit(**_JIT)
def _lanes_forward(mode, E, Tb, nl, A, F, Body, Pre, acc, pre):
    """Given the bodies ``A``: F (a chain's ``F[e, Tb] = 0``; an always's suffix products, ``F[0, Tb] = 1``),
    Body and (with ``pre``) Pre of the chunk's ``nl`` rows. The row's value is ``F[0, 0]``."""
    if mode == _ALWAYS:
        for r in range(nl):
            F[0, Tb, r] = 1.0
        for t in range(Tb - 1, -1, -1):
            for r in range(nl):
                F[0, t, r] = A[0, t, r] * F[0, t + 1, r]
        return
    for e in range(E - 1, -1, -1):
        for r in range(nl):
            F[e, Tb, r] = 0.0
        for t in range(Tb - 1, -1, -1):
            if e < E - 1:
                for r in range(nl):
                    body = A[e, t, r] * F[e + 1, t + 1, r]
                    Body[e, t, r] = body
                    nx = F[e, t + 1, r]
                    F[e, t, r] = body + nx - body * nx
            else:
                for r in range(nl):
                    body = A[e, t, r]
                    Body[e, t, r] = body
                    nx = F[e, t + 1, r]
                    F[e, t, r] = body + nx - body * nx
    if not pre:
        return
    for q in range(Tb):
        for r in range(nl):
            Pre[0, q, r] = 1.0
    for j in range(E - 1):
        for r in range(nl):
            acc[r] = 0.0
        for q in range(Tb):
            for r in range(nl):
                c = acc[r]
                Pre[j + 1, q, r] = c
                y = Pre[j, q, r] * A[j, q, r]
                acc[r] = c + y - c * y


@numba.njit(**_JIT)
def _lanes_backward(mode, E, Tb, nl, A, F, Body, Pre, gA, gF, gBody, gPre, acc, wit, one):
    """``gA`` (written, ``t < Tb``) from ``gF[0, ·]`` (the row values' gradients at ``t = 0``, zero elsewhere)
    and (a chain's witnesses; zero without ``wit``) ``gBody``, ``gPre``."""
    if mode == _ALWAYS:  # F[0, t] = A[0, t] · F[0, t + 1]
        for r in range(nl):
            acc[r] = gF[0, 0, r]
        for t in range(Tb):
            for r in range(nl):
                gA[0, t, r] = acc[r] * F[0, t + 1, r]
                acc[r] *= A[0, t, r]
        return
    # F scans, first event first: F[e, t] = Body[e, t] ∨ F[e, t + 1], Body[e, t] = A[e, t] · F[e + 1, t + 1].
    # Each gA[e, t] and gF[e + 1, t + 1] has one writer here (assigned); gF[e + 1, Tb] is never read.
    for e in range(E):
        for r in range(nl):
            acc[r] = 0.0
        if e < E - 1:
            for r in range(nl):
                gF[e + 1, 0, r] = 0.0
        for t in range(Tb):
            if e < E - 1:
                if wit:
                    for r in range(nl):
                        gg = gF[e, t, r] + acc[r]
                        gb = gg * (one - F[e, t + 1, r]) + gBody[e, t, r]
                        acc[r] = gg * (one - Body[e, t, r])
                        gA[e, t, r] = gb * F[e + 1, t + 1, r]
                        gF[e + 1, t + 1, r] = gb * A[e, t, r]
                else:
                    for r in range(nl):
                        gg = gF[e, t, r] + acc[r]
                        gb = gg * (one - F[e, t + 1, r])
                        acc[r] = gg * (one - Body[e, t, r])
                        gA[e, t, r] = gb * F[e + 1, t + 1, r]
                        gF[e + 1, t + 1, r] = gb * A[e, t, r]
            elif wit:
                for r in range(nl):
                    gg = gF[e, t, r] + acc[r]
                    acc[r] = gg * (one - Body[e, t, r])
                    gA[e, t, r] = gg * (one - F[e, t + 1, r]) + gBody[e, t, r]
            else:
                for r in range(nl):
                    gg = gF[e, t, r] + acc[r]
                    acc[r] = gg * (one - Body[e, t, r])
                    gA[e, t, r] = gg * (one - F[e, t + 1, r])
    # Pre scans, last first: Pre[j+1, q] = acc_q, acc_{q+1} = acc_q ∨ Pre[j, q]·A[j, q].
    for j in range(E - 2 if wit else -1, -1, -1):
        for r in range(nl):
            acc[r] = 0.0
        for q in range(Tb - 1, -1, -1):
            for r in range(nl):
                pj, a = Pre[j, q, r], A[j, q, r]
                y = pj * a
                gy = acc[r] * (one - Pre[j + 1, q, r])
                acc[r] = acc[r] * (one - y) + gPre[j + 1, q, r]
                gPre[j, q, r] += gy * a
                gA[j, q, r] += gy * pj


# ---------------------------------------------------------------------- the kernels


@numba.njit(**_INLINE)
def _sizes(spec, unary, tm):
    s_cat, s_lit, s_nb = spec[5], spec[6], spec[2]
    V1 = max(s_cat.shape[1], 1)
    E1, J1 = 1, 1
    for s in range(s_lit.shape[0]):
        E1 = max(E1, s_nb[s])
        J1 = max(J1, s_lit[s, 1] - s_lit[s, 0])
    M1 = 1
    body = spec[7]
    for s in range(body.shape[0]):
        for e in range(s_nb[s]):
            M1 = max(M1, body[s, e + 1] - body[s, e])
    return V1, E1, J1, M1, unary.shape[1], tm.shape[1]


@numba.njit(**_INLINE)
def _row_scratch(V1, N, J1, M1):
    """Buffers of the row enumeration: candidates, their counts, the odometer, a row's tracks, the chunk's
    tracks and literal rows, and the body nodes' literals."""
    return (np.zeros((V1, N), np.int64), np.zeros(V1, np.int64), np.zeros(V1, np.int64), np.zeros(V1, np.int64),
            np.zeros((V1, L), np.int64), np.zeros((J1, L), np.int64), np.zeros(M1, np.int64))


@numba.njit(**_INLINE)
def _scratch(E1, T, k, dt):
    x = np.zeros((k, E1, T + 1, L), dt)
    return x[0], x[1], x[2], x[3]


@numba.njit(**_INLINE)
def _factor(quant, w, x):
    """A row's factor in its quantifier's fold: ∃ ``1 − w·x``, ∀ ``1 − w·(1 − x)``."""
    return 1.0 - w * x if quant == _EXISTS else 1.0 - w * (1.0 - x)


@numba.njit(**_JIT)
def chain_forward(inst, video, spec, value, score, pv, zv, ps, zs, Lb_all):
    """Values ``value[K]`` and witness scores ``score[K, E, T]`` (zero-filled by the caller), and the folds'
    (product of non-zero factors, number of zero factors): ``pv, zv [K]`` and ``ps, zs [K, E, T]``.
    ``Lb_all [K or 1, J·N², T + 1]``: the literal buffers, kept per instance for the backward pass when
    its first dimension is K."""
    inst_spec, inst_vid, inst_wit = inst
    T_b, tm, names, unary, prune_zero = video[0], video[1], video[4], video[5], video[7]
    s_nv, s_ne, s_nb, s_quant, s_mode, s_cat, s_lit = spec[0], spec[1], spec[2], spec[3], spec[4], spec[5], spec[6]
    K = inst_spec.shape[0]
    V1, E1, J1, M1, T, N = _sizes(spec, unary, tm)
    cand, ncand, digits, tr, trl, idx, lits = _row_scratch(V1, N, J1, M1)
    dt = unary.dtype  # the lanes' (the facts' float32 or float64); folds in float64
    one = np.ones(1, dt)[0]
    wl, acc, pl, zl = np.zeros(L), np.zeros(L, dt), np.ones(L), np.zeros(L, np.int64)
    keep = Lb_all.shape[0] == K
    vals, tmp = np.zeros((M1, L), dt), np.zeros(T + 1, dt)
    A, F, Body, Pre = _scratch(E1, T, 4, dt)
    psl, zsl = np.ones((E1, T + 1, L)), np.zeros((E1, T + 1, L), np.int64)
    for i in range(K):
        s, b = inst_spec[i], inst_vid[i]
        V, Tb, quant, mode, nb = s_nv[s], T_b[b], s_quant[s], s_mode[s], s_nb[s]
        fold = quant != _NONE
        E = s_ne[s] if inst_wit[i] else 0  # events whose witness scores are computed
        Lb = Lb_all[i if keep else 0]
        _candidates(b, s, V, s_cat, tm, names, prune_zero, cand, ncand)
        _fill_literals(b, s, Tb, spec, video, cand, ncand, Lb)
        exact = False
        while True:
            used = 0
            for r in range(L):
                pl[r], zl[r] = 1.0, 0
            for e in range(E):
                for q in range(Tb):
                    for r in range(L):
                        psl[e, q, r], zsl[e, q, r] = 1.0, 0
            digits[0] = -1
            while True:
                nl = _chunk(b, s, V, fold, True, spec, names, N, ncand, cand, digits, tr, trl, idx, wl)
                if nl == 0:
                    break
                used = max(used, nl)
                _bodies_forward(s, spec, nb, Tb, nl, idx, Lb, A, vals, tmp, lits, one)
                _lanes_forward(mode, nb, Tb, nl, A, F, Body, Pre, acc, E > 0)
                if not fold:  # one row, no fold
                    value[i] = F[0, 0, 0]
                    for e in range(E):
                        for q in range(Tb):
                            score[i, e, q] = Pre[e, q, 0] * Body[e, q, 0]
                    continue
                if exact:
                    for r in range(nl):
                        f = _factor(quant, wl[r], F[0, 0, r])
                        zl[r] += f == 0.0
                        pl[r] *= 1.0 if f == 0.0 else f
                else:
                    for r in range(nl):
                        pl[r] *= _factor(quant, wl[r], F[0, 0, r])
                for e in range(E):
                    for q in range(Tb):
                        if exact:
                            for r in range(nl):
                                f = 1.0 - wl[r] * Pre[e, q, r] * Body[e, q, r]
                                zsl[e, q, r] += f == 0.0
                                psl[e, q, r] *= 1.0 if f == 0.0 else f
                        else:
                            for r in range(nl):
                                psl[e, q, r] *= 1.0 - wl[r] * Pre[e, q, r] * Body[e, q, r]
            if not fold:
                break
            hit_zero = False
            p, z = 1.0, 0
            for r in range(used):
                p *= pl[r]
                z += zl[r]
            pv[i], zv[i] = p, z
            prod = p if z == 0 else 0.0
            value[i] = 1.0 - prod if quant == _EXISTS else prod
            hit_zero |= p == 0.0
            for e in range(E):
                for q in range(Tb):
                    p, z = 1.0, 0
                    for r in range(used):
                        p *= psl[e, q, r]
                        z += zsl[e, q, r]
                    ps[i, e, q], zs[i, e, q] = p, z
                    score[i, e, q] = 1.0 - (p if z == 0 else 0.0)
                    hit_zero |= p == 0.0
            if exact or not hit_zero:
                break
            exact = True


@numba.njit(**_INLINE)
def _exclusive(f, p, z):
    """``∏`` of a fold's other factors: the fold is ``p`` (non-zero factors) times ``0^z``."""
    if z == 0:
        return p / f
    if z == 1 and f == 0.0:
        return p
    return 0.0


@numba.njit(**_JIT)
def chain_backward(inst, video, spec, folds, g_value, g_score, want_names, want_facts, g_names, g_unary,
                   g_binary, Lb_all, gL):
    """Adds the gradients of ``Σ g_value·value + Σ g_score·score`` to ``g_names``, ``g_unary``,
    ``g_binary`` (those wanted). ``Lb_all``: the forward pass's (refilled here when not kept per
    instance); ``gL [J·N², T + 1]``: zeros (left zero)."""
    inst_spec, inst_vid, inst_wit = inst
    pv, zv, ps, zs = folds
    T_b, tm, names, unary, prune_zero = video[0], video[1], video[4], video[5], video[7]
    s_nv, s_ne, s_nb, s_quant, s_mode, s_cat, s_lit = spec[0], spec[1], spec[2], spec[3], spec[4], spec[5], spec[6]
    K = inst_spec.shape[0]
    V1, E1, J1, M1, T, N = _sizes(spec, unary, tm)
    cand, ncand, digits, tr, trl, idx, lits = _row_scratch(V1, N, J1, M1)
    dt = unary.dtype  # as in chain_forward
    one = np.ones(1, dt)[0]
    wl, acc, gw = np.zeros(L), np.zeros(L, dt), np.zeros(L)
    keep = Lb_all.shape[0] == K
    vals, gvals = np.zeros((M1, L), dt), np.zeros((M1, L), dt)
    tmp, gt = np.zeros(T + 1, dt), np.zeros(T + 1, dt)
    A, F, Body, Pre = _scratch(E1, T, 4, dt)
    gA, gF, gBody, gPre = _scratch(E1, T, 4, dt)
    for i in range(K):
        s, b = inst_spec[i], inst_vid[i]
        V, Tb, quant, mode, nb = s_nv[s], T_b[b], s_quant[s], s_mode[s], s_nb[s]
        fold = quant != _NONE
        wit = inst_wit[i] and s_ne[s] > 0
        if Tb == 0 and (mode == _CHAIN or not fold):
            continue  # constant values
        _candidates(b, s, V, s_cat, tm, names, prune_zero, cand, ncand)
        Lb = Lb_all[i if keep else 0]
        if not keep:
            _fill_literals(b, s, Tb, spec, video, cand, ncand, Lb)
        digits[0] = -1
        while True:
            # Rows of weight 0 reach the facts with gradient 0, but their weight's gradient is not 0.
            nl = _chunk(b, s, V, fold, not want_names, spec, names, N, ncand, cand, digits, tr, trl, idx, wl)
            if nl == 0:
                break
            _bodies_forward(s, spec, nb, Tb, nl, idx, Lb, A, vals, tmp, lits, one)
            _lanes_forward(mode, nb, Tb, nl, A, F, Body, Pre, acc, wit)
            # Gradients of each row's x = F[0, 0] and c[e, q], and of its weight w through the folds.
            for t in range(Tb + 1):
                for r in range(nl):
                    gF[0, t, r] = 0.0
            gv = g_value[i]
            if fold:
                p, z = pv[i], zv[i]
                for r in range(nl):
                    f0 = F[0, 0, r]
                    ex = _exclusive(_factor(quant, wl[r], f0), p, z) * gv
                    gF[0, 0, r] = ex * wl[r]
                    gw[r] = ex * f0 if quant == _EXISTS else -ex * (1.0 - f0)
            else:
                for r in range(nl):
                    gF[0, 0, r] = gv
                    gw[r] = 0.0
            for e in range(nb if mode == _CHAIN and wit else 0):  # without witnesses gBody, gPre are not read
                for q in range(Tb):
                    gs = g_score[i, e, q]
                    if gs == 0.0:
                        for r in range(nl):
                            gBody[e, q, r] = 0.0
                            gPre[e, q, r] = 0.0
                        continue
                    if not fold:
                        for r in range(nl):
                            gBody[e, q, r] = gs * Pre[e, q, r]
                            gPre[e, q, r] = gs * Body[e, q, r]
                        continue
                    # The row's factor in the witness fold, 1 − w·Pre·Body, computed as in the forward pass.
                    p, z = ps[i, e, q], zs[i, e, q]
                    if z == 0:
                        for r in range(nl):
                            pr, bo = Pre[e, q, r], Body[e, q, r]
                            ex = p / (1.0 - wl[r] * pr * bo) * gs
                            gw[r] += ex * (pr * bo)
                            h = ex * wl[r]
                            gBody[e, q, r] = h * pr
                            gPre[e, q, r] = h * bo
                    else:
                        for r in range(nl):
                            pr, bo = Pre[e, q, r], Body[e, q, r]
                            ex = _exclusive(1.0 - wl[r] * pr * bo, p, z) * gs
                            gw[r] += ex * (pr * bo)
                            h = ex * wl[r]
                            gBody[e, q, r] = h * pr
                            gPre[e, q, r] = h * bo
            _lanes_backward(mode, nb, Tb, nl, A, F, Body, Pre, gA, gF, gBody, gPre, acc, wit, one)
            if want_facts:
                _bodies_backward(s, spec, nb, Tb, nl, idx, Lb, gA, vals, gvals, gL, tmp, gt, lits, one)
            if want_names and fold:
                for r in range(nl):
                    if gw[r] == 0.0:
                        continue
                    for v in range(V):
                        c = s_cat[s, v]
                        if c < 0:
                            continue
                        o = 1.0
                        for u in range(V):
                            cu = s_cat[s, u]
                            if u != v and cu >= 0:
                                o *= names[b, trl[u, r], cu]
                            elif u != v and cu == -2:  # an unknown category: a constant weight 0
                                o = 0.0
                        g_names[b, trl[v, r], c] += gw[r] * o
        if want_facts:
            _scatter_literals(b, s, Tb, spec, video, cand, ncand, gL, g_unary, g_binary)
