"""Algebraic laws of the semantics, checked by Hypothesis on random specs and traces for every logic.

Each law compares the reference interpreter on two formulas that the defining
equations make equal: dualities, unfoldings of temporal operators into nested
``next``, sequencing vs. its expansion, agreement of all logics on 0/1 traces,
smooth → godel as τ → 0, and ``exact`` = ``product`` on read-once formulas.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stlspec import ir
from stlspec.backends.reference import evaluate, evaluate_formula
from strategies import VOCAB, boolean_traces, chains, formulas, open_formulas, specs, traces, windows

SCALAR = ("boolean", "godel", "product", "smooth")
LAW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rewrite(f: ir.Formula, fn) -> ir.Formula:
    """Bottom-up map: rebuild ``f`` with rewritten children, then apply ``fn``."""
    r = lambda g: rewrite(g, fn)  # noqa: E731
    match f:
        case ir.Not(a):
            f = ir.Not(r(a))
        case ir.And(args):
            f = ir.And(tuple(map(r, args)))
        case ir.Or(args):
            f = ir.Or(tuple(map(r, args)))
        case ir.Next(a, weak, steps):
            f = ir.Next(r(a), weak, steps)
        case ir.Eventually(a, w, e):
            f = ir.Eventually(r(a), w, e)
        case ir.Always(a, w):
            f = ir.Always(r(a), w)
        case ir.Until(a, b, w):
            f = ir.Until(r(a), r(b), w)
        case ir.Exists(vs, body):
            f = ir.Exists(vs, r(body))
        case ir.Forall(vs, body):
            f = ir.Forall(vs, r(body))
    return fn(f)


def same(f, g, tr, logic, tol=1e-9):
    assert evaluate_formula(f, tr, logic) == pytest.approx(evaluate_formula(g, tr, logic), abs=tol)


def nexts(f: ir.Formula, k: int, weak: bool = False) -> ir.Formula:
    for _ in range(k):
        f = ir.Next(f, weak)
    return f


def or_(fs):
    fs = tuple(fs)
    return ir.FALSE if not fs else fs[0] if len(fs) == 1 else ir.Or(fs)


def in_block(data):
    """A one-variable block ``exists v0`` (or forall) around ``body_fn(phi, psi)`` of random open formulas."""
    phi = data.draw(open_formulas(VOCAB, ("v0",), 2, quantifiers=False))
    psi = data.draw(open_formulas(VOCAB, ("v0",), 2, quantifiers=False))
    q = data.draw(st.sampled_from((ir.Exists, ir.Forall)))
    cat = data.draw(st.sampled_from((None, "person")))
    return (lambda body: q((("v0", cat),), body)), phi, psi


# ---------------------------------------------------------------------- dualities


@LAW
@given(formulas(VOCAB, 3), traces(max_T=4, max_N=3), st.sampled_from(SCALAR))
def test_double_negation_everywhere(f, tr, logic):
    g = rewrite(f, lambda n: ir.Not(ir.Not(n)))
    same(f, g, tr, logic)


@LAW
@given(formulas(VOCAB, 3), traces(max_T=4, max_N=3), st.sampled_from(SCALAR))
def test_not_eventually_is_always_not(f, tr, logic):
    def dual(n):
        match n:
            case ir.Eventually(a, w, _):
                return ir.Not(ir.Always(ir.Not(a), w))
            case ir.Always(a, w):
                return ir.Not(ir.Eventually(ir.Not(a), w))
        return n
    same(f, rewrite(f, dual), tr, logic)


@LAW
@given(st.data(), traces(max_T=5, max_N=2), st.sampled_from(SCALAR))
def test_until_and_release_unfold(data, tr, logic):
    """φ U ψ = ψ ∨ (φ ∧ next(φ U ψ)), ending with ψ at the last frame; release = ¬(¬φ U ¬ψ) and
    unfolds as ψ ∧ (φ ∨ next(φ R ψ)) — both checked against their expansion into nested ``next``."""
    q, phi, psi = in_block(data)
    T = tr.num_frames
    until, release = psi, psi
    for _ in range(T - 1):
        until = ir.Or((psi, ir.And((phi, ir.Next(until)))))
        release = ir.And((psi, ir.Or((phi, ir.Next(release)))))
    same(q(ir.Until(phi, psi)), q(until), tr, logic)
    same(q(ir.Not(ir.Until(ir.Not(phi), ir.Not(psi)))), q(release), tr, logic)


@LAW
@given(st.data(), traces(max_T=5, max_N=2), st.sampled_from(SCALAR))
def test_eventually_and_always_unfold(data, tr, logic):
    q, phi, _ = in_block(data)
    T = tr.num_frames
    ev, al = phi, phi
    for _ in range(T - 1):
        ev = ir.Or((phi, ir.Next(ev)))
        al = ir.And((phi, ir.Next(al, weak=True)))
    same(q(ir.Eventually(phi)), q(ev), tr, logic)
    same(q(ir.Always(phi)), q(al), tr, logic)
    whole = ir.Window(0.0, 1.0, "fraction")
    same(q(ir.Eventually(phi, whole)), q(ir.Eventually(phi)), tr, logic)


@LAW
@given(st.data(), traces(max_T=5, max_N=2), st.sampled_from(SCALAR),
       st.integers(0, 3), st.one_of(st.none(), st.integers(0, 3)))
def test_frame_windows_shift_with_next(data, tr, logic, lo, length):
    """eventually[lo, hi] φ = next^lo eventually[0, hi−lo] φ (strong); always uses weak next."""
    q, phi, psi = in_block(data)
    hi = None if length is None else lo + length
    rest = ir.Window(0, None if hi is None else hi - lo)
    same(q(ir.Eventually(phi, ir.Window(lo, hi))), q(nexts(ir.Eventually(phi, rest), lo)), tr, logic)
    same(q(ir.Always(phi, ir.Window(lo, hi))), q(nexts(ir.Always(phi, rest), lo, weak=True)), tr, logic)
    if lo > 0:
        # Before the window: φ and the until continues one frame later (when there is one).
        shifted = ir.Window(lo - 1, None if hi is None else hi - 1)
        if lo < tr.num_frames:
            same(q(ir.Until(phi, psi, ir.Window(lo, hi))),
                 q(ir.And((phi, ir.Next(ir.Until(phi, psi, shifted))))), tr, logic)
        else:
            same(q(ir.Until(phi, psi, ir.Window(lo, hi))), q(ir.FALSE), tr, logic)


# ---------------------------------------------------------------------- sequencing


@LAW
@given(st.data(), traces(max_T=5, max_N=2), st.sampled_from(SCALAR))
def test_sequencing_matches_its_expansion(data, tr, logic):
    """``φ then ψ`` = eventually(φ ∧ next eventually ψ) = ∨_t1 next^t1 (φ ∧ ∨_{d≥1} next^d ψ)."""
    q, phi, psi = in_block(data)
    T = tr.num_frames
    seq = ir.Eventually(ir.And((phi, ir.Next(ir.Eventually(psi)))), event=0)
    expansion = or_(nexts(ir.And((phi, or_(nexts(psi, d) for d in range(1, T - t1)))), t1) for t1 in range(T))
    same(q(seq), q(expansion), tr, logic)
    if logic in ("boolean", "godel"):
        # Distributive logics: "φ at some t1, ψ at some t2 > t1" over all pairs.
        pairs = or_(ir.And((nexts(phi, t1), nexts(psi, t2))) for t1 in range(T) for t2 in range(t1 + 1, T))
        same(q(seq), q(pairs), tr, logic)


# ---------------------------------------------------------------------- logics


@LAW
@given(specs(VOCAB, 3), boolean_traces(max_T=4, max_N=3))
def test_all_logics_agree_with_boolean_on_01_traces(spec, tr):
    want = evaluate(spec, tr, "boolean")
    assert want.value in (0.0, 1.0)
    for logic in ("godel", "product", "exact"):
        got = evaluate(spec, tr, logic)
        assert got.value == pytest.approx(want.value, abs=1e-12)
        for w, v in zip(got.witnesses, want.witnesses):
            assert w == pytest.approx(v, abs=1e-12)
    # smooth agrees up to its τ·log n slack per fold: at most d·τ·log(n_max) along d folds of at most n_max
    # operands (here d <= 15, n_max <= 24), < 5e-6 for τ = 1e-7.
    assert evaluate(spec, tr, "smooth", temperature=1e-7, witnesses=False).value == pytest.approx(want.value, abs=1e-5)


@LAW
@given(formulas(VOCAB, 3), traces(max_T=4, max_N=3))
def test_smooth_tends_to_godel(f, tr):
    godel = evaluate_formula(f, tr, "godel")
    errors = [abs(evaluate_formula(f, tr, "smooth", temperature=tau) - godel) for tau in (1e-2, 1e-4)]
    assert errors[1] <= 0.01
    assert errors[1] <= errors[0] + 1e-9


@LAW
@given(traces(max_T=6, max_N=1), windows(), st.sampled_from((None, "person")))
def test_product_eventually_is_one_minus_product(tr, w, cat):
    f = ir.Exists((("v0", cat),), ir.Eventually(ir.Unary("walking", "v0"), w))
    lo, hi = (0, tr.num_frames - 1) if w is None else w.frames(tr.num_frames)
    xs = [tr.unary[t, 0, tr.unary_index["walking"]] for t in range(lo, min(hi, tr.num_frames - 1) + 1)]
    c = 1.0 if cat is None else tr.names[0, tr.category_index[cat]]
    assert evaluate_formula(f, tr, "product") == pytest.approx(c * (1 - math.prod(1 - x for x in xs)))


_READ_ONCE = st.sampled_from(("eventually", "always", "until", "release"))


@LAW
@given(traces(max_T=3, max_N=2), _READ_ONCE, windows(), st.sampled_from((None, "person")),
       st.sampled_from((ir.Exists, ir.Forall)))
def test_exact_agrees_with_product_on_read_once_formulas(tr, op, w, cat, quant):
    """Every fact is read at most once, along independent positions: product is then exact."""
    p, q = ir.Unary("walking", "v0"), ir.Unary("red", "v0")
    body = {"eventually": ir.Eventually(p, w), "always": ir.Always(p, w), "until": ir.Until(p, q, w),
            "release": ir.Not(ir.Until(ir.Not(p), ir.Not(q), w))}[op]
    f = quant((("v0", cat),), body)
    assert evaluate_formula(f, tr, "exact") == pytest.approx(evaluate_formula(f, tr, "product"), abs=1e-9)


@LAW
@given(specs(VOCAB, 3), traces(max_T=4, max_N=3), st.sampled_from(SCALAR))
def test_witnesses_are_distributions(spec, tr, logic):
    r = evaluate(spec, tr, logic)
    assert len(r.witnesses) == len(spec.events)
    for w in r.witnesses:
        assert len(w) == tr.num_frames and all(0 <= x <= 1 for x in w)
        assert math.fsum(w) == pytest.approx(1.0) or math.fsum(w) == 0.0


@LAW
@given(st.data(), traces(max_T=5, max_N=2))
def test_godel_chain_witness_support_matches_value(data, tr):
    """Under godel, an ∃-chain is true to degree v > 0 iff some pinned frame reaches v; so every
    event of a bare chain has a witness distribution exactly when the spec's value is positive."""
    chain, infos = data.draw(chains(VOCAB, ("v0",), 3))
    spec = ir.Spec("c", ir.Exists((("v0", None),), chain), infos)
    r = evaluate(spec, tr, "godel")
    for w in r.witnesses:
        assert (math.fsum(w) > 0) == (r.value > 0)
