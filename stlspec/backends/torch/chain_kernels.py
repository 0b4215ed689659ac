"""Fused CPU kernels for sequencing chains under the product logic (compiled with numba).

A *chain instance* is a spec ``∃ x₁: c₁, …, x_V: c_V. A_0 then A_1 … then A_{E−1}`` (one quantifier
block, or none) whose events ``A_k`` are conjunctions of literals, evaluated on one video. For each
injective assignment ``r`` of the variables to candidate tracks (one *row*), with ``A_k(t)`` the
product of the event's literals at frame ``t`` and ``T_b`` the video's frame count:

    Body_{E−1}(t) = A_{E−1}(t),   Body_k(t) = A_k(t) · F_{k+1}(t + 1)      (F_k(T_b) = 0)
    F_k(t)        = Body_k(t) ∨ F_k(t + 1)                                   (x ∨ y = x + y − x·y)
    Pre_0(q) = 1,  Pre_{j+1}(q) = ∨_{s < q} Pre_j(s) · A_j(s),   c_k(q) = Pre_k(q) · Body_k(q)

and, with ``w_r`` the product of the row's category weights, the instance's value and witness scores
are the folds ``value = 1 − ∏_r (1 − w_r · F_0(0))`` and ``s_k(q) = 1 − ∏_r (1 − w_r · c_k(q))``
(without a quantifier: the single row's ``F_0(0)`` and ``c_k(q)``). These are the defining equations
of ``docs/semantics.md`` and ``stlspec/ir.py`` for this shape, so the result equals the generic
engine's up to rounding (all arithmetic here is float64).

Layout. Per instance, every literal is first read from the fact tensors once per candidate track
(pair) into a buffer ``Lb[literal, t, n·N + m]`` (the fact tensors are strided in ``t``, and rows
sharing a literal would read it again). Rows are then processed in chunks of ``L`` *lanes*: every
per-row quantity is an array ``[event, t, lane]``, so each step of a scan along ``t`` -- a chain of
dependent operations within a row -- is one vectorisable loop over the chunk's rows, in cache.
The folds are kept per lane and combined at the end of the instance. A product that ends at
exactly 0 (a factor 0, or underflow) makes the instance run again counting zero factors apart
(``zv``, ``zs``), which the backward pass needs for the exclusive products.

The backward kernel recomputes each chunk's forward values and propagates the gradients of the value
and witness scores back: the exclusive product of a fold is its product divided by the row's factor
(or the product itself for its single zero factor), the scans are reversed, each literal's gradient
is summed per instance in a buffer like ``Lb`` and then added to the fact element it read, and each
category weight's gradient to ``names``.

Arguments: ``inst = (spec, video, witnesses?)`` per instance, ``video = (T_b, track mask, present,
has_present, names, unary, binary, prune_zero)``, ``spec = (nv, ne, fold, cat, ev, evid, kind, col,
v1, v2, neg, val)`` (see :class:`stlspec.backends.torch.chain.ChainTables`).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["chain_forward", "chain_backward", "L"]

#: Rows processed together (lanes).
L = 128

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
    if V == 0:
        if digits[0] == -1:
            digits[0] = 0
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


@numba.njit(**_INLINE)
def _chunk(b, s, V, Es, fold, skip_zero, spec, names, N, ncand, cand, digits, tr, trl, idx, wl):
    """Fills up to ``L`` lanes with the next rows (tracks ``trl``, literal columns ``idx``, weights
    ``wl``); returns how many. Rows of weight 0 are skipped when ``skip_zero``."""
    s_cat, s_ev, a_kind, a_v1, a_v2 = spec[3], spec[4], spec[6], spec[8], spec[9]
    j0, j1 = s_ev[s, 0], s_ev[s, Es]
    nl = 0
    while nl < L:
        if not _next_row(V, ncand, cand, digits, tr):
            break
        w = _weight(b, s, V, s_cat, names, tr) if fold else 1.0
        if w == 0.0 and skip_zero:
            continue
        for v in range(V):
            trl[nl, v] = tr[v]
        for j in range(j0, j1):
            idx[j - j0, nl] = tr[a_v1[j]] * N + (tr[a_v2[j]] if a_kind[j] == 1 or a_kind[j] == 2 else 0)
        wl[nl] = w
        nl += 1
    return nl


# ---------------------------------------------------------------------- literals


@numba.njit(**_INLINE)
def _fill_literals(b, s, Tb, spec, video, cand, ncand, Lb):
    """``Lb[j, t, n·N + m]``: literal ``j`` (local index) of spec ``s`` on candidate tracks ``(n, m)``
    (``m = 0`` for a unary one) at frame ``t`` of video ``b``; each fact element is read once."""
    s_ev, a_kind, a_col, a_v1, a_v2, a_neg, a_val = spec[4], spec[6], spec[7], spec[8], spec[9], spec[10], spec[11]
    present, has_present, unary, binary = video[2], video[3], video[5], video[6]
    N = video[1].shape[1]
    j0 = s_ev[s, 0]
    for j in range(j0, s_ev[s, s_ev.shape[1] - 1]):
        k, col, neg, v1, v2 = a_kind[j], a_col[j], a_neg[j], a_v1[j], a_v2[j]
        jl = j - j0
        # Frame by frame: the tracks of one frame lie close together in the fact tensors.
        if k == 0:
            for t in range(Tb):
                for a in range(ncand[v1]):
                    n = cand[v1, a]
                    f = unary[b, t, n, col] if not has_present or present[b, t, n] else 0.0
                    Lb[jl, t, n * N] = 1.0 - f if neg else f
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
                        Lb[jl, t, n * N + m] = 1.0 - f if neg else f
        else:  # equality and constants: every pair of tracks
            for t in range(Tb):
                for n in range(N):
                    for m in range(N):
                        f = (1.0 if n == m else 0.0) if k == 2 else a_val[j]
                        Lb[jl, t, n * N + m] = 1.0 - f if neg else f


@numba.njit(**_INLINE)
def _scatter_literals(b, s, Tb, spec, video, cand, ncand, gL, g_unary, g_binary):
    """Adds each literal's gradient (summed per instance in ``gL``) to the fact element it read."""
    s_ev, a_kind, a_col, a_v1, a_v2, a_neg = spec[4], spec[6], spec[7], spec[8], spec[9], spec[10]
    present, has_present = video[2], video[3]
    N = video[1].shape[1]
    j0 = s_ev[s, 0]
    for j in range(j0, s_ev[s, s_ev.shape[1] - 1]):
        k, col, v1, v2 = a_kind[j], a_col[j], a_v1[j], a_v2[j]
        if k > 1:
            continue
        sign = -1.0 if a_neg[j] else 1.0
        jl = j - j0
        for t in range(Tb):
            for a in range(ncand[v1]):
                n = cand[v1, a]
                if k == 0:
                    g = gL[jl, t, n * N]
                    if g != 0.0 and (not has_present or present[b, t, n]):
                        g_unary[b, t, n, col] += sign * g
                    continue
                for c in range(ncand[v2]):
                    m = cand[v2, c]
                    g = gL[jl, t, n * N + m]
                    if g != 0.0 and (not has_present or (present[b, t, n] and present[b, t, m])):
                        g_binary[b, t, n, m, col] += sign * g


# ---------------------------------------------------------------------- a chunk of rows


@numba.njit(**_JIT)
def _lanes_forward(j0, ev, E, Tb, nl, idx, Lb, A, F, Body, Pre, acc, pre):
    """A, F (``F[e, Tb] = 0``), Body and (with ``pre``) Pre of the chunk's ``nl`` rows; ``ev[e] … ev[e+1]``
    is event ``e``'s literal range."""
    for e in range(E):
        ja, jb = ev[e] - j0, ev[e + 1] - j0
        for t in range(Tb):
            a = A[e, t]
            if jb == ja:
                for r in range(nl):
                    a[r] = 1.0
                continue
            lb, ix = Lb[ja, t], idx[ja]
            for r in range(nl):
                a[r] = lb[ix[r]]
            for j in range(ja + 1, jb):
                lb, ix = Lb[j, t], idx[j]
                for r in range(nl):
                    a[r] *= lb[ix[r]]
    for e in range(E - 1, -1, -1):
        f = F[e, Tb]
        for r in range(nl):
            f[r] = 0.0
        for t in range(Tb - 1, -1, -1):
            a, bo, fx, fo = A[e, t], Body[e, t], F[e, t + 1], F[e, t]
            if e < E - 1:
                fn = F[e + 1, t + 1]
                for r in range(nl):
                    body = a[r] * fn[r]
                    bo[r] = body
                    nx = fx[r]
                    fo[r] = body + nx - body * nx
            else:
                for r in range(nl):
                    body = a[r]
                    bo[r] = body
                    nx = fx[r]
                    fo[r] = body + nx - body * nx
    if not pre:
        return
    for q in range(Tb):
        p0 = Pre[0, q]
        for r in range(nl):
            p0[r] = 1.0
    for j in range(E - 1):
        for r in range(nl):
            acc[r] = 0.0
        for q in range(Tb):
            pj, pn, a = Pre[j, q], Pre[j + 1, q], A[j, q]
            for r in range(nl):
                c = acc[r]
                pn[r] = c
                y = pj[r] * a[r]
                acc[r] = c + y - c * y


@numba.njit(**_JIT)
def _lanes_backward(j0, ev, E, Tb, nl, idx, Lb, A, F, Body, Pre, gA, gF, gBody, gPre, acc, wit, gL, want_facts):
    """Given ``gF[0, 0]`` and ``gBody``, ``gPre`` (from the witness scores; zero without ``wit``), the
    gradients of the chunk's literals, added to ``gL`` (with ``want_facts``)."""
    for e in range(E):
        for t in range(Tb + 1):
            ga = gA[e, t]
            for r in range(nl):
                ga[r] = 0.0
        if e > 0:
            for t in range(Tb + 1):
                gf = gF[e, t]
                for r in range(nl):
                    gf[r] = 0.0
    # Pre scans, last first: Pre[j+1, q] = acc_q, acc_{q+1} = acc_q ∨ Pre[j, q]·A[j, q].
    for j in range(E - 2 if wit else -1, -1, -1):
        for r in range(nl):
            acc[r] = 0.0
        for q in range(Tb - 1, -1, -1):
            pj, pn, a, gpj, gpn, ga = Pre[j, q], Pre[j + 1, q], A[j, q], gPre[j, q], gPre[j + 1, q], gA[j, q]
            for r in range(nl):
                y = pj[r] * a[r]
                gy = acc[r] * (1.0 - pn[r])
                acc[r] = acc[r] * (1.0 - y) + gpn[r]
                gpj[r] += gy * a[r]
                ga[r] += gy * pj[r]
    # F scans, first event first: F[e, t] = Body[e, t] ∨ F[e, t + 1] (gF[e + 1, Tb] is never read).
    for e in range(E):
        for r in range(nl):
            acc[r] = 0.0
        for t in range(Tb):
            gf, fx, gb_, bo, ga = gF[e, t], F[e, t + 1], gBody[e, t], Body[e, t], gA[e, t]
            if e < E - 1:
                fn, gfn, a = F[e + 1, t + 1], gF[e + 1, t + 1], A[e, t]
                for r in range(nl):
                    gg = gf[r] + acc[r]
                    gb = gg * (1.0 - fx[r]) + gb_[r]
                    acc[r] = gg * (1.0 - bo[r])
                    ga[r] += gb * fn[r]
                    gfn[r] += gb * a[r]
            else:
                for r in range(nl):
                    gg = gf[r] + acc[r]
                    gb = gg * (1.0 - fx[r]) + gb_[r]
                    acc[r] = gg * (1.0 - bo[r])
                    ga[r] += gb
    if not want_facts:
        return
    # A[e, t] is the product of its literals: each literal's gradient is gA times the others.
    for e in range(E):
        ja, jb = ev[e] - j0, ev[e + 1] - j0
        for j in range(ja, jb):
            ix = idx[j]
            for t in range(Tb):
                ga = gA[e, t]
                for r in range(nl):
                    acc[r] = ga[r]
                for jj in range(ja, jb):
                    if jj != j:
                        lb, ixx = Lb[jj, t], idx[jj]
                        for r in range(nl):
                            acc[r] *= lb[ixx[r]]
                gl = gL[j, t]
                for r in range(nl):
                    gl[ix[r]] += acc[r]


# ---------------------------------------------------------------------- the kernels


@numba.njit(**_INLINE)
def _scratch(E1, T, k):
    x = np.zeros((k, E1, T + 1, L))
    return x[0], x[1], x[2], x[3]


@numba.njit(**_JIT)
def chain_forward(inst, video, spec, value, score, pv, zv, ps, zs):
    """Values ``value[K]`` and witness scores ``score[K, E, T]`` (zero-filled by the caller), and the folds'
    (product of non-zero factors, number of zero factors): ``pv, zv [K]`` and ``ps, zs [K, E, T]``."""
    inst_spec, inst_vid, inst_wit = inst
    T_b, tm, names, unary, prune_zero = video[0], video[1], video[4], video[5], video[7]
    s_nv, s_ne, s_fold, s_cat, s_ev, s_evid = spec[0], spec[1], spec[2], spec[3], spec[4], spec[5]
    K, T, N = inst_spec.shape[0], unary.shape[1], tm.shape[1]
    V1, E1 = max(s_cat.shape[1], 1), max(s_ev.shape[1] - 1, 1)
    J1 = 1
    for s in range(s_ev.shape[0]):
        J1 = max(J1, s_ev[s, s_ev.shape[1] - 1] - s_ev[s, 0])
    cand, ncand = np.zeros((V1, N), np.int64), np.zeros(V1, np.int64)
    digits, tr = np.zeros(V1, np.int64), np.zeros(V1, np.int64)
    trl, idx = np.zeros((L, V1), np.int64), np.zeros((J1, L), np.int64)
    wl, acc, pl, zl = np.zeros(L), np.zeros(L), np.ones(L), np.zeros(L, np.int64)
    Lb = np.zeros((J1, T + 1, N * N))
    A, F, Body, Pre = _scratch(E1, T, 4)
    psl, zsl = np.ones((E1, T + 1, L)), np.zeros((E1, T + 1, L), np.int64)
    for i in range(K):
        s, b = inst_spec[i], inst_vid[i]
        V, Tb, fold, Es = s_nv[s], T_b[b], s_fold[s], s_ne[s]
        E = Es if inst_wit[i] else 0  # events whose witness scores are computed
        j0 = s_ev[s, 0]
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
                nl = _chunk(b, s, V, Es, fold, True, spec, names, N, ncand, cand, digits, tr, trl, idx, wl)
                if nl == 0:
                    break
                used = max(used, nl)
                _lanes_forward(j0, s_ev[s], Es, Tb, nl, idx, Lb, A, F, Body, Pre, acc, E > 0)
                if not fold:  # one row, no fold
                    value[i] = F[0, 0, 0]
                    for e in range(E):
                        for q in range(Tb):
                            score[i, s_evid[s, e], q] = Pre[e, q, 0] * Body[e, q, 0]
                    continue
                f0 = F[0, 0]
                if exact:
                    for r in range(nl):
                        f = 1.0 - wl[r] * f0[r]
                        zl[r] += f == 0.0
                        pl[r] *= 1.0 if f == 0.0 else f
                else:
                    for r in range(nl):
                        pl[r] *= 1.0 - wl[r] * f0[r]
                for e in range(E):
                    for q in range(Tb):
                        pp, pr, bo = psl[e, q], Pre[e, q], Body[e, q]
                        if exact:
                            zz = zsl[e, q]
                            for r in range(nl):
                                f = 1.0 - wl[r] * pr[r] * bo[r]
                                zz[r] += f == 0.0
                                pp[r] *= 1.0 if f == 0.0 else f
                        else:
                            for r in range(nl):
                                pp[r] *= 1.0 - wl[r] * pr[r] * bo[r]
            if not fold:
                break
            hit_zero = False
            p, z = 1.0, 0
            for r in range(used):
                p *= pl[r]
                z += zl[r]
            pv[i], zv[i] = p, z
            value[i] = 1.0 - (p if z == 0 else 0.0)
            hit_zero |= p == 0.0
            for e in range(E):
                for q in range(Tb):
                    p, z = 1.0, 0
                    for r in range(used):
                        p *= psl[e, q, r]
                        z += zsl[e, q, r]
                    ps[i, e, q], zs[i, e, q] = p, z
                    score[i, s_evid[s, e], q] = 1.0 - (p if z == 0 else 0.0)
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
                   g_binary):
    """Adds the gradients of ``Σ g_value·value + Σ g_score·score`` to ``g_names``, ``g_unary``,
    ``g_binary`` (those wanted)."""
    inst_spec, inst_vid, inst_wit = inst
    pv, zv, ps, zs = folds
    T_b, tm, names, unary, prune_zero = video[0], video[1], video[4], video[5], video[7]
    s_nv, s_ne, s_fold, s_cat, s_ev, s_evid = spec[0], spec[1], spec[2], spec[3], spec[4], spec[5]
    K, T, N = inst_spec.shape[0], unary.shape[1], tm.shape[1]
    V1, E1 = max(s_cat.shape[1], 1), max(s_ev.shape[1] - 1, 1)
    J1 = 1
    for s in range(s_ev.shape[0]):
        J1 = max(J1, s_ev[s, s_ev.shape[1] - 1] - s_ev[s, 0])
    cand, ncand = np.zeros((V1, N), np.int64), np.zeros(V1, np.int64)
    digits, tr = np.zeros(V1, np.int64), np.zeros(V1, np.int64)
    trl, idx = np.zeros((L, V1), np.int64), np.zeros((J1, L), np.int64)
    wl, acc, gw = np.zeros(L), np.zeros(L), np.zeros(L)
    Lb, gL = np.zeros((J1, T + 1, N * N)), np.zeros((J1, T + 1, N * N))
    A, F, Body, Pre = _scratch(E1, T, 4)
    gA, gF, gBody, gPre = _scratch(E1, T, 4)
    for i in range(K):
        s, b = inst_spec[i], inst_vid[i]
        V, E, Tb = s_nv[s], s_ne[s], T_b[b]
        wit, fold = inst_wit[i], s_fold[s]
        if Tb == 0:
            continue  # constant values
        j0 = s_ev[s, 0]
        _candidates(b, s, V, s_cat, tm, names, prune_zero, cand, ncand)
        _fill_literals(b, s, Tb, spec, video, cand, ncand, Lb)
        if want_facts:
            for j in range(s_ev[s, E] - j0):
                for t in range(Tb):
                    gl = gL[j, t]
                    for r in range(N * N):
                        gl[r] = 0.0
        digits[0] = -1
        while True:
            # Rows of weight 0 reach the facts with gradient 0, but their weight's gradient is not 0.
            nl = _chunk(b, s, V, E, fold, not want_names, spec, names, N, ncand, cand, digits, tr, trl, idx, wl)
            if nl == 0:
                break
            _lanes_forward(j0, s_ev[s], E, Tb, nl, idx, Lb, A, F, Body, Pre, acc, wit)
            # Gradients of each row's x = F[0, 0] and c[e, q], and of its weight w through the folds.
            f0, gf0 = F[0, 0], gF[0, 0]
            for t in range(Tb + 1):
                gf = gF[0, t]
                for r in range(nl):
                    gf[r] = 0.0
            gv = g_value[i]
            if fold:
                p, z = pv[i], zv[i]
                for r in range(nl):
                    ex = _exclusive(1.0 - wl[r] * f0[r], p, z) * gv
                    gf0[r] = ex * wl[r]
                    gw[r] = ex * f0[r]
            else:
                for r in range(nl):
                    gf0[r] = gv
                    gw[r] = 0.0
            for e in range(E):
                ev_out = s_evid[s, e]
                for q in range(Tb):
                    gb_, gp = gBody[e, q], gPre[e, q]
                    gs = g_score[i, ev_out, q] if wit else 0.0
                    if gs == 0.0:
                        for r in range(nl):
                            gb_[r] = 0.0
                            gp[r] = 0.0
                        continue
                    pr, bo = Pre[e, q], Body[e, q]
                    if not fold:
                        for r in range(nl):
                            gb_[r] = gs * pr[r]
                            gp[r] = gs * bo[r]
                        continue
                    p, z = ps[i, e, q], zs[i, e, q]
                    if z == 0:
                        for r in range(nl):
                            c = pr[r] * bo[r]
                            ex = p / (1.0 - wl[r] * c) * gs
                            gw[r] += ex * c
                            h = ex * wl[r]
                            gb_[r] = h * pr[r]
                            gp[r] = h * bo[r]
                    else:
                        for r in range(nl):
                            c = pr[r] * bo[r]
                            ex = _exclusive(1.0 - wl[r] * c, p, z) * gs
                            gw[r] += ex * c
                            h = ex * wl[r]
                            gb_[r] = h * pr[r]
                            gp[r] = h * bo[r]
            _lanes_backward(j0, s_ev[s], E, Tb, nl, idx, Lb, A, F, Body, Pre, gA, gF, gBody, gPre, acc, wit, gL,
                            want_facts)
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
                                o *= names[b, trl[r, u], cu]
                        g_names[b, trl[r, v], c] += gw[r] * o
        if want_facts:
            _scatter_literals(b, s, Tb, spec, video, cand, ncand, gL, g_unary, g_binary)
