"""Hand-computed cases for the reference interpreter: every operator under every logic,
windows (frames and fractions), quantifier distinctness, presence, exact vs. brute force,
the E601 refusal, and witnesses of a three-event chain."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from stlspec import ir
from stlspec.backends import get_backend
from stlspec.backends.reference import BACKEND, Result, evaluate, evaluate_formula, evaluate_program
from stlspec.diagnostics import StlError
from stlspec.trace import Trace

CATS = ("person", "cup")
UNARY = ("walking", "open")
BINARY = ("near",)
A, B = ir.Unary("walking", "a"), ir.Unary("open", "a")


def make(T: int, N: int = 1, unary=None, binary=None, names=None, present=None) -> Trace:
    """A trace from sparse dicts: ``unary={(pred, n): [p per frame]}``, ``binary={(pred, n, m): [...]}``,
    ``names={(n, cat): p}``. Every track is a person with probability 1 unless ``names`` says otherwise."""
    un = np.zeros((T, N, len(UNARY)))
    bi = np.zeros((T, N, N, len(BINARY)))
    nm = np.zeros((N, len(CATS)))
    nm[:, 0] = 1.0
    for (pred, n), ps in (unary or {}).items():
        un[:, n, UNARY.index(pred)] = ps
    for (pred, n, m), ps in (binary or {}).items():
        bi[:, n, m, BINARY.index(pred)] = ps
    for (n, c), p in (names or {}).items():
        nm[n, CATS.index(c)] = p
    return Trace.from_arrays(nm, un, bi, present, categories=CATS, unary_preds=UNARY, binary_preds=BINARY)


def ex(body: ir.Formula, *vars_: tuple[str, str | None]) -> ir.Formula:
    return ir.Exists(vars_ or (("a", None),), body)


def val(f: ir.Formula, tr: Trace, logic: str = "godel", **kw) -> float:
    return evaluate_formula(f, tr, logic, **kw)


def smooth_or(xs, tau=0.1):
    return tau * math.log(sum(math.exp(x / tau) for x in xs))


def smooth_and(xs, tau=0.1):
    return -tau * math.log(sum(math.exp(-x / tau) for x in xs))


# ---------------------------------------------------------------------- connectives per logic

X, Y = 0.6, 0.3
TR_XY = make(1, unary={("walking", 0): [X], ("open", 0): [Y]})

CONNECTIVES = {
    # logic: (A and B, A or B, not A)
    "boolean": (0.0, 1.0, 0.0),  # 0.6 reads as true, 0.3 as false
    "godel": (0.3, 0.6, 0.4),
    "product": (0.18, 0.72, 0.4),
    "smooth": (smooth_and([X, Y]), smooth_or([X, Y]), 0.4),
}


@pytest.mark.parametrize("logic", CONNECTIVES)
def test_connectives(logic):
    conj, disj, neg = CONNECTIVES[logic]
    assert val(ex(ir.And((A, B))), TR_XY, logic) == pytest.approx(conj)
    assert val(ex(ir.Or((A, B))), TR_XY, logic) == pytest.approx(disj)
    assert val(ex(ir.Not(A)), TR_XY, logic) == pytest.approx(neg)
    assert val(ir.TRUE, TR_XY, logic) == 1.0 and val(ir.FALSE, TR_XY, logic) == 0.0


def test_smooth_nary_fold_is_one_logsumexp():
    tr = make(1, unary={("walking", 0): [0.2], ("open", 0): [0.7]})
    f = ex(ir.Or((A, B, ir.Not(A))))
    assert val(f, tr, "smooth") == pytest.approx(smooth_or([0.2, 0.7, 0.8]), abs=1e-12)
    assert evaluate_formula(f, tr, "smooth", temperature=0.5) == pytest.approx(smooth_or([0.2, 0.7, 0.8], 0.5))


def test_unknown_logic_is_e603():
    with pytest.raises(StlError) as info:
        val(ir.TRUE, TR_XY, "goedel")
    (d,) = info.value.diagnostics
    assert d.code == "E603" and "did you mean 'godel'?" in d.hints


# ---------------------------------------------------------------------- temporal operators

PS = [0.2, 0.5, 0.4]
QS = [0.3, 0.6, 0.9]
TR3 = make(3, unary={("walking", 0): PS, ("open", 0): QS})


def test_next_strong_and_weak():
    assert val(ex(ir.Next(A)), TR3) == 0.5
    two = make(2, unary={("walking", 0): [1, 1]})
    assert val(ex(ir.Next(ir.Next(A))), two) == 0.0
    assert val(ex(ir.Next(ir.Next(A), weak=True)), two) == 0.0  # inner next is strong
    assert val(ex(ir.Next(ir.Next(A, weak=True))), two) == 1.0
    assert val(ex(ir.Next(ir.FALSE, weak=True)), make(1)) == 1.0


@pytest.mark.parametrize("logic,expected", [
    ("godel", 0.5), ("product", 1 - 0.8 * 0.5 * 0.6), ("boolean", 1.0), ("smooth", smooth_or(PS))])
def test_eventually(logic, expected):
    assert val(ex(ir.Eventually(A)), TR3, logic) == pytest.approx(expected)


@pytest.mark.parametrize("logic,expected", [
    ("godel", 0.2), ("product", 0.2 * 0.5 * 0.4), ("boolean", 0.0), ("smooth", smooth_and(PS))])
def test_always(logic, expected):
    assert val(ex(ir.Always(A)), TR3, logic) == pytest.approx(expected)


def test_smooth_eventually_on_one_frame_has_no_phantom_false():
    assert val(ex(ir.Eventually(A)), make(1, unary={("walking", 0): [0.3]}), "smooth") == pytest.approx(0.3)


def until_product(ps, qs):
    # ψ0 ∨ (φ0 ∧ (ψ1 ∨ (φ1 ∧ ψ2))) unfolded literally with x∨y = x+y−xy.
    por = lambda x, y: x + y - x * y  # noqa: E731
    return por(qs[0], ps[0] * por(qs[1], ps[1] * qs[2]))


@pytest.mark.parametrize("logic,expected", [
    ("godel", max(0.3, min(0.2, max(0.6, min(0.5, 0.9))))),
    ("product", until_product(PS, QS)),
    ("smooth", smooth_or([0.3, smooth_and([0.2, smooth_or([0.6, smooth_and([0.5, 0.9])])])])),
])
def test_until_unfolds_literally(logic, expected):
    assert val(ex(ir.Until(A, B)), TR3, logic) == pytest.approx(expected)


def test_product_until_is_not_the_distributed_form():
    # 1 − ∏_t' (1 − ψ(t')·∏ φ) would count φ0 twice; the defining equation does not.
    distributed = 1 - (1 - 0.3) * (1 - 0.2 * 0.6) * (1 - 0.2 * 0.5 * 0.9)
    got = val(ex(ir.Until(A, B)), TR3, "product")
    assert got == pytest.approx(until_product(PS, QS)) and got != pytest.approx(distributed)


# ---------------------------------------------------------------------- windows

VS = [0.1, 0.7, 0.3, 0.9, 0.5]
TR5 = make(5, unary={("walking", 0): VS, ("open", 0): [0.4] * 5})


@pytest.mark.parametrize("window,ev,al", [
    (ir.Window(1, 2), 0.7, 0.3),                         # frames 1..2
    (ir.Window(2, None), 0.9, 0.3),                      # frames 2..4
    (ir.Window(0, 0), 0.1, 0.1),
    (ir.Window(3, 10), 0.9, 0.5),                        # capped at the last frame
    (ir.Window(5, 7), 0.0, 1.0),                         # starts past the end: empty
    (ir.Window(0.5, 1.0, "fraction"), 0.9, 0.3),         # [ceil 2, floor 4]
    (ir.Window(0.1, 0.3, "fraction"), 0.7, 0.7),         # [ceil 0.4, floor 1.2] = [1, 1]
    (ir.Window(0.3, 0.45, "fraction"), 0.0, 1.0),        # [ceil 1.2, floor 1.8] = [2, 1]: empty
])
def test_windows_godel(window, ev, al):
    assert val(ex(ir.Eventually(A, window)), TR5) == pytest.approx(ev)
    assert val(ex(ir.Always(A, window)), TR5) == pytest.approx(al)


def test_windows_are_relative_to_the_current_position():
    # always (eventually[0,1] walking): min over t of max(v_t, v_{t+1}).
    f = ex(ir.Always(ir.Eventually(A, ir.Window(0, 1))))
    assert val(f, TR5) == pytest.approx(min(max(VS[t:t + 2]) for t in range(5)))
    # next eventually[0.0, 0.25] at t=1 covers frames 1..2 of T=5 (0.25·4 = 1 frame).
    g = ex(ir.Next(ir.Eventually(A, ir.Window(0.0, 0.25, "fraction"))))
    assert val(g, TR5) == pytest.approx(0.7)


def test_windowed_until_product():
    # until[1,2] at t=0: φ(0) ∧ (ψ(1) ∨ (φ(1) ∧ ψ(2)))
    phi, psi = [0.5, 0.8, 0.1, 0.0, 0.0], [0.9, 0.3, 0.6, 1.0, 1.0]
    tr = make(5, unary={("walking", 0): phi, ("open", 0): psi})
    expected = 0.5 * (0.3 + 0.8 * 0.6 - 0.3 * 0.8 * 0.6)
    assert val(ex(ir.Until(A, B, ir.Window(1, 2))), tr, "product") == pytest.approx(expected)
    assert val(ex(ir.Until(A, B, ir.Window(0, 0))), tr, "product") == pytest.approx(0.9)
    assert val(ex(ir.Until(A, B, ir.Window(7, 9))), tr, "product") == 0.0


def test_empty_fraction_window_identities():
    w = ir.Window(0.3, 0.4, "fraction")  # T=3: [ceil 0.6, floor 0.8] = [1, 0]
    tr = make(3, unary={("walking", 0): [1, 1, 1], ("open", 0): [1, 1, 1]})
    assert w.frames(3) == (1, 0)
    assert val(ex(ir.Eventually(A, w)), tr) == 0.0
    assert val(ex(ir.Always(ir.FALSE, w)), tr) == 1.0
    assert val(ex(ir.Until(A, B, w)), tr) == 0.0


# ---------------------------------------------------------------------- quantifiers

def test_one_block_is_injective_nested_blocks_are_not():
    self_near = make(1, N=2, binary={("near", 0, 0): [1.0], ("near", 1, 1): [1.0]})
    near = ir.Binary("near", "a", "b")
    assert val(ir.Exists((("a", None), ("b", None)), near), self_near) == 0.0
    assert val(ir.Exists((("a", None),), ir.Exists((("b", None),), near)), self_near) == 1.0
    nested_distinct = ir.Exists((("a", None),), ir.Exists((("b", None),), ir.And((near, ir.Not(ir.Eq("a", "b"))))))
    assert val(nested_distinct, self_near) == 0.0
    assert val(ir.Forall((("a", None), ("b", None)), ir.Not(ir.Eq("a", "b"))), self_near) == 1.0


def test_empty_assignment_sets():
    one = make(2, N=1)
    block = (("a", None), ("b", None))
    assert val(ir.Exists(block, ir.TRUE), one) == 0.0
    assert val(ir.Forall(block, ir.FALSE), one) == 1.0


@pytest.mark.parametrize("logic", ["godel", "product"])
def test_categories(logic):
    # track 0: person 0.8 walking 0.5; track 1: cup 1.0 (not a person) walking 1.0
    tr = make(1, N=2, unary={("walking", 0): [0.5], ("walking", 1): [1.0]},
              names={(0, "person"): 0.8, (1, "person"): 0.0, (1, "cup"): 1.0})
    exists = val(ir.Exists((("a", "person"),), A), tr, logic)
    forall = val(ir.Forall((("a", "person"),), A), tr, logic)
    if logic == "godel":
        assert exists == pytest.approx(max(min(0.8, 0.5), min(0.0, 1.0)))
        assert forall == pytest.approx(min(max(0.2, 0.5), max(1.0, 1.0)))
    else:
        assert exists == pytest.approx(1 - (1 - 0.4) * (1 - 0.0))
        assert forall == pytest.approx((0.2 + 0.5 - 0.1) * 1.0)
    # Two categories in one block are one conjunct each: ∃ a: person, b: cup.
    both = val(ir.Exists((("a", "person"), ("b", "cup")), ir.TRUE), tr, logic)
    assert both == pytest.approx(0.8)  # (0, 1): 0.8 ∧ 1; (1, 0): 0 ∧ 0


def test_unknown_names_read_as_zero():
    tr = make(1, unary={("walking", 0): [1.0]})
    assert val(ex(ir.Unary("flying", "a")), tr) == 0.0
    assert val(ir.Exists((("a", "unicorn"),), ir.TRUE), tr) == 0.0
    assert val(ir.Forall((("a", "unicorn"),), ir.FALSE), tr) == 1.0
    assert val(ir.Exists((("a", None), ("b", None)), ir.Binary("hugging", "a", "b")), make(1, N=2)) == 0.0


def test_presence():
    tr = make(3, N=2, unary={("walking", 0): [1, 1, 1]}, binary={("near", 0, 1): [1, 1, 1]},
              present=[[True, True], [False, True], [True, False]])
    assert val(ex(ir.Always(A), ("a", "person")), tr) == 0.0  # absent at frame 1
    assert val(ex(A), tr) == 1.0
    assert val(ex(ir.Next(A)), tr) == 0.0  # track 0 absent at frame 1
    assert val(ex(ir.Next(ir.Next(A))), tr) == 1.0
    near = ir.Exists((("a", None), ("b", None)), ir.Eventually(ir.And((ir.Binary("near", "a", "b"), ir.TRUE)), ir.Window(1, None)))
    assert val(near, tr) == 0.0  # frame 1: a absent; frame 2: b absent


def test_free_variables_are_rejected():
    with pytest.raises(ValueError, match="free variables"):
        val(A, TR3)


# ---------------------------------------------------------------------- exact

def brute_force(f: ir.Formula, tr: Trace) -> float:
    """Independent oracle: enumerate 0/1 versions of every fact of the trace (all of them)."""
    flat = [(k, idx) for k in ("names", "unary", "binary") for idx in np.ndindex(getattr(tr, k).shape)
            if 0 < getattr(tr, k)[idx] < 1]
    total = 0.0
    for bits in itertools.product((0, 1), repeat=len(flat)):
        arrs = {k: np.array(getattr(tr, k)) for k in ("names", "unary", "binary")}
        w = 1.0
        for (k, idx), b in zip(flat, bits):
            p = arrs[k][idx]
            w *= p if b else 1 - p
            arrs[k][idx] = b
        world = Trace.from_arrays(arrs["names"], arrs["unary"], arrs["binary"], tr.present, categories=CATS,
                                  unary_preds=UNARY, binary_preds=BINARY)
        total += w * evaluate_formula(f, world, "boolean")
    return total


def test_exact_single_eventually_is_one_minus_product():
    assert val(ex(ir.Eventually(A)), TR3, "exact") == pytest.approx(1 - 0.8 * 0.5 * 0.6)


def test_exact_counts_a_repeated_fact_once():
    tr = make(1, unary={("walking", 0): [0.5]})
    assert val(ex(ir.And((A, A))), tr, "exact") == pytest.approx(0.5)
    assert val(ex(ir.And((A, A))), tr, "product") == pytest.approx(0.25)
    assert val(ex(ir.Or((A, ir.Not(A)))), tr, "exact") == pytest.approx(1.0)


@pytest.mark.parametrize("f", [
    ex(ir.Until(A, B)),
    ex(ir.And((ir.Eventually(A), ir.Always(ir.Or((A, B)))))),
    ir.Exists((("a", "person"), ("b", None)), ir.Eventually(ir.And((ir.Binary("near", "a", "b"), ir.Next(A))))),
    ir.Forall((("a", "person"),), ir.Or((ir.Not(A), ir.Eventually(B, ir.Window(0.5, 1.0, "fraction"))))),
])
def test_exact_matches_brute_force(f):
    tr = make(3, N=2, unary={("walking", 0): [0.3, 0.8, 1.0], ("open", 1): [0.5, 0.0, 0.6]},
              binary={("near", 0, 1): [0.4, 1.0, 0.0]}, names={(1, "person"): 0.7})
    assert val(f, tr, "exact") == pytest.approx(brute_force(f, tr))


def test_exact_refuses_too_many_uncertain_facts():
    tr = make(17, unary={("walking", 0): [0.5] * 17})
    with pytest.raises(StlError) as info:
        val(ex(ir.Eventually(A)), tr, "exact")
    (d,) = info.value.diagnostics
    assert d.code == "E601"
    assert "2^17 worlds" in d.message and "17 uncertain facts" in d.message and "limit of 16" in d.message
    with pytest.raises(StlError, match="limit of 2"):
        val(ex(ir.Eventually(A)), TR3, "exact", max_uncertain_facts=2)
    # Facts the formula cannot read do not count.
    assert val(ex(ir.Eventually(B)), tr, "exact") == 0.0


# ---------------------------------------------------------------------- witnesses

def chain3(window: ir.Window | None = None) -> ir.Spec:
    C = ir.Binary("near", "a", "a")
    e2 = ir.Eventually(C, event=2)
    e1 = ir.Eventually(ir.And((B, ir.Next(e2))), event=1)
    e0 = ir.Eventually(ir.And((A, ir.Next(e1))), window, event=0)
    return ir.Spec("chain", ex(e0), tuple(ir.EventInfo(k) for k in range(3)))


def test_witnesses_of_a_boolean_chain():
    tr = make(4, unary={("walking", 0): [1, 0, 0, 0], ("open", 0): [0, 1, 1, 0]},
              binary={("near", 0, 0): [0, 0, 0, 1]})
    r = evaluate(chain3(), tr, "boolean")
    assert r.value == 1.0
    assert r.witnesses == ((1, 0, 0, 0), (0, 0.5, 0.5, 0), (0, 0, 0, 1))


def test_witnesses_of_a_fuzzy_chain_godel():
    a, b, c = [0.9, 0.2, 0.1, 0.0], [0.1, 0.6, 0.8, 0.3], [0.0, 0.2, 0.4, 0.7]
    tr = make(4, unary={("walking", 0): a, ("open", 0): b}, binary={("near", 0, 0): c})
    r = evaluate(chain3(), tr, "godel")
    # s_1(t) = max_{t0<t} a(t0) ∧ b(t) ∧ max_{t2>t} c(t2)
    s1 = [0.0] + [min(max(a[:t]), b[t], max(c[t + 1:])) for t in (1, 2)] + [0.0]
    assert r.witnesses[1] == pytest.approx(tuple(x / sum(s1) for x in s1))
    s0 = [max(min(a[t], b[t1], c[t2]) for t1 in range(t + 1, 4) for t2 in range(t1 + 1, 4)) if t < 2 else 0.0
          for t in range(4)]
    assert r.witnesses[0] == pytest.approx(tuple(x / sum(s0) for x in s0))
    assert r.value == pytest.approx(max(s0))


def test_witness_outside_the_window_is_zero_and_all_zero_when_false():
    tr = make(4, unary={("walking", 0): [1, 1, 0, 0], ("open", 0): [0, 1, 1, 0]},
              binary={("near", 0, 0): [0, 0, 0, 1]})
    r = evaluate(chain3(ir.Window(1, 3)), tr, "boolean")
    assert r.witnesses[0] == (0, 1, 0, 0)
    r = evaluate(chain3(), make(4), "godel")
    assert r.value == 0 and r.witnesses == ((0.0,) * 4,) * 3


def test_witnesses_under_exact_and_product():
    tr = make(3, unary={("walking", 0): [0.5, 0.5, 0.0]})
    spec = ir.Spec("e", ex(ir.Eventually(A, event=0)), (ir.EventInfo(0, (0.0, 0.5)),))
    for logic in ("exact", "product"):
        r = evaluate(spec, tr, logic)
        assert r.value == pytest.approx(0.75)
        assert r.witnesses == (pytest.approx((0.5, 0.5, 0.0)),)
    assert evaluate(spec, tr, "godel", witnesses=False) == Result(0.5, ())


# ---------------------------------------------------------------------- program / backend API

def test_program_and_backend():
    prog = ir.CoreProgram(ir.Vocabulary(CATS, (("walking", None), ("open", None)), (("near", None, None),)),
                          (ir.Spec("ev", ex(ir.Eventually(A))), chain3()))
    out = evaluate_program(prog, TR3, "product")
    assert list(out) == ["ev", "chain"] and out["ev"].value == pytest.approx(1 - 0.8 * 0.5 * 0.6)
    assert len(out["chain"].witnesses) == 3
    backend = get_backend("reference")
    assert backend is BACKEND and backend.name == "reference"
    run = backend.compile(prog, logic="godel")
    assert run(TR3)["ev"].value == 0.5
    assert run(TR3, logic="product")["ev"].value == pytest.approx(out["ev"].value)
    with pytest.raises(StlError):
        backend.compile(prog, logic="fuzzy")


# ---------------------------------------------------------------------- from .stl text

SOURCE = '''
category person, cup, door
unary walking(person)
binary holding(person, any), near(any, any)

spec pick_up "A man picks up a cup, then walks away." {
  exists m: person, c: cup.
    near(m, c) @early
    then holding(m, c)
    then walking(m) and not near(m, c) @late
}

spec asymmetric_near {
  forall x, y. always not (near(x, y) and near(y, x))
}
'''

STL_TRACE = {
    "num_frames": 5,
    "tracks": [{"id": "man", "names": {"person": 0.9}}, {"id": "cup", "names": {"cup": 0.8}}],
    "unary": [{"pred": "walking", "track": "man", "frames": [3, 4], "p": [0.6, 1.0]}],
    "binary": [{"pred": "near", "subject": "man", "object": "cup", "frames": [0, 1], "p": [0.7, 1.0]},
               {"pred": "holding", "subject": "man", "object": "cup", "frames": [1, 2]}],
}


def test_stl_text_to_results():
    import stlspec

    program = stlspec.compile_text(SOURCE)
    tr = Trace.from_dict(STL_TRACE, program.vocabulary)
    out = stlspec.compile(program, target="reference")(tr, logic="godel")
    pick = out["pick_up"]
    # near 0.7@0 or 1.0@1, holding 1.0@1..2, walking 0.6@3 1.0@4 (not near there): best path 1 → 2 → 4,
    # capped by the categories 0.9 ∧ 0.8.
    assert pick.value == pytest.approx(0.8)
    assert [e.hint for e in program.spec("pick_up").events][0] == pytest.approx((0.0, 1 / 3))
    w0, w1, w2 = pick.witnesses
    assert w0 == pytest.approx((0.7 / 1.5, 0.8 / 1.5, 0, 0, 0))
    # holding pinned at 1 leaves only near@0 (0.7) before it; pinned at 2, near@1 (1.0, capped at 0.8).
    assert w1 == pytest.approx((0, 0.7 / 1.5, 0.8 / 1.5, 0, 0))
    assert w2 == pytest.approx((0, 0, 0, 0.6 / 1.4, 0.8 / 1.4))
    assert out["asymmetric_near"].value == 1.0  # near(cup, man) is never given
    exact = evaluate(program.spec("pick_up"), tr, "exact")
    product = evaluate(program.spec("pick_up"), tr, "product")
    assert 0 < exact.value <= 0.9 * 0.8 and 0 < product.value <= 1


def test_stl_until_release_on_boolean_trace():
    import stlspec

    program = stlspec.compile_text('''
category person, door
unary open(door), closed(door)
binary touching(person, door)
spec waits { exists p: person, d: door. not touching(p, d) until open(d) }
spec stays { exists p: person, d: door. touching(p, d) release closed(d) }
''')
    tr = Trace.from_dict({"num_frames": 4, "tracks": [{"id": "p", "names": {"person": 1}},
                                                      {"id": "d", "names": {"door": 1}}],
                          "unary": [{"pred": "closed", "track": "d", "frames": [0, 1, 2]},
                                    {"pred": "open", "track": "d", "frame": 3}],
                          "binary": [{"pred": "touching", "subject": "p", "object": "d", "frame": 2}]},
                         program.vocabulary)
    for logic in ("boolean", "godel", "product", "exact"):
        out = evaluate_program(program, tr, logic)
        assert out["waits"].value == 0.0  # touched at 2 before open at 3
        assert out["stays"].value == 1.0  # closed up to and including the touch at 2
