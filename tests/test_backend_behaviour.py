"""One behaviour suite, written once, run against every backend that evaluates.

Each case is a spec (surface syntax, compiled by ``stlspec.compile_text``), a
small hand-made trace and the value -- and, for event chains, the witness
distributions -- worked out by hand in the comment next to it. The same cases
run on every evaluating target of :data:`stlspec.backends.BACKENDS`:

* ``reference`` under every logic (``boolean``, ``godel``, ``product``,
  ``smooth`` with τ = 0.1, ``exact``);
* ``torch`` on CPU in float64 under the logics it supports (not ``exact``);
* ``scallop``, whose ``minmaxprob`` provenance is the ``godel`` logic, twice:
  through ``tests/scallop_sim.py`` (the emitted program evaluated by our
  Datalog simulator) and through real Scallop (scallopy), which is skipped
  when it is not installed -- except under ``STLSPEC_REQUIRE_SCALLOPY=1``
  (CI), where its absence is an error (``tests/real_scallop.py``). Real
  Scallop also runs ``exact`` as top-k proofs with a large ``k`` on the
  negation-free cases (where that provenance is exact).

A (backend, logic) pair the backend does not support is a *skipped* test with
the reason, never a silent pass. The differential tests elsewhere compare
backends with each other on random input; this suite pins all of them to
independently computed numbers.

Notation in the comments: ``w``, ``r`` are the ``walking``/``red`` columns of
track 0 per frame; ``s_or``/``s_and`` are smooth's n-ary ∨/∧ (τ·logsumexp),
defined below exactly as in ``docs/semantics.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

import scallop_sim
import stlspec
import stlspec.logics
from real_scallop import HAVE_SCALLOPY
from stlspec import ir
from stlspec.backends import BACKENDS, get_backend
from stlspec.logics import get_logic
from stlspec.trace import Trace

TAU = 0.1  # smooth's temperature in every case
ABS = 1e-9  # every backend computes these tiny cases to float64 rounding

HEADER = """category person, cup, door
unary walking(any), open(any), red(any)
binary holding(any, any), near(any, any)
"""
VOCAB = stlspec.compile_text(HEADER).vocabulary
CRISP = ("boolean", "godel", "product", "exact")


def s_or(*xs: float) -> float:
    """Smooth ∨ of n operands: τ·log Σ e^(x/τ)."""
    return TAU * math.log(math.fsum(math.exp(x / TAU) for x in xs))


def s_and(*xs: float) -> float:
    """Smooth ∧ of n operands: −τ·log Σ e^(−x/τ)."""
    return -TAU * math.log(math.fsum(math.exp(-x / TAU) for x in xs))


def trace(T: int, N: int = 1, *, names: dict | None = None, unary: dict | None = None,
          binary: dict | None = None, present: dict | None = None) -> Trace:
    """A trace over :data:`VOCAB`; every fact not given is 0, every track present unless ``present`` says.

    ``names={(cat, n): p}``, ``unary={(pred, n): [p per frame]}``,
    ``binary={(pred, n, m): [p per frame]}``, ``present={n: [bool per frame]}``.
    """
    v = VOCAB
    na = np.zeros((N, len(v.categories)))
    un = np.zeros((T, N, len(v.unary)))
    bi = np.zeros((T, N, N, len(v.binary)))
    pr = np.ones((T, N), dtype=bool)
    for (c, n), p in (names or {}).items():
        na[n, v.categories.index(c)] = p
    for (p, n), ps in (unary or {}).items():
        un[:, n, v.unary_names.index(p)] = ps
    for (p, n, m), ps in (binary or {}).items():
        bi[:, n, m, v.binary_names.index(p)] = ps
    for n, flags in (present or {}).items():
        pr[:, n] = flags
    return Trace.from_arrays(na, un, bi, pr, categories=v.categories, unary_preds=v.unary_names,
                             binary_preds=v.binary_names)


@dataclass(frozen=True)
class Case:
    id: str
    body: str  # the spec's formula, surface syntax
    trace: Trace
    values: dict[str, float]  # logic -> value at frame 0
    witnesses: dict[str, list[list[float]]] = field(default_factory=dict)  # logic -> one distribution per event


def crisp(value: float, smooth: float | None = None) -> dict[str, float]:
    """On 0/1 facts boolean, godel, product and exact agree; smooth (when given) is computed separately."""
    out = {logic: float(value) for logic in CRISP}
    if smooth is not None:
        out["smooth"] = smooth
    return out


def crisp_witnesses(dists: list[list[float]]) -> dict[str, list[list[float]]]:
    return {logic: dists for logic in CRISP}


CASES: list[Case] = []


def case(id: str, body: str, tr: Trace, values: dict[str, float],
         witnesses: dict[str, list[list[float]]] | None = None) -> None:
    CASES.append(Case(id, body, tr, values, witnesses or {}))


# ---------------------------------------------------------------------- frame windows

# w = [1, 0, 0, 1, 0]
TR = trace(5, unary={("walking", 0): [1, 0, 0, 1, 0]})
# W(0) = [1, 2]: w1 = w2 = 0 -> 0; smooth folds exactly the window's two operands.
case("eventually_1_2", "exists x. eventually[1, 2] walking(x)", TR, crisp(0, s_or(0, 0)))
# W(0) = [1, 3] reaches w3 = 1.
case("eventually_1_3", "exists x. eventually[1, 3] walking(x)", TR, crisp(1, s_or(0, 0, 1)))
# W(0) = [3, 4] from frame 0 (offsets): w3 = 1.
case("eventually_3_inf", "exists x. eventually[3, inf] walking(x)", TR, crisp(1, s_or(1, 0)))

# w = [0, 0, 1, 1, 1]
TR = trace(5, unary={("walking", 0): [0, 0, 1, 1, 1]})
# frames 2..4 all walking -> 1
case("always_2_inf", "exists x. always[2, inf] walking(x)", TR, crisp(1, s_and(1, 1, 1)))
# frames 1..4 include w1 = 0 -> 0
case("always_1_inf", "exists x. always[1, inf] walking(x)", TR, crisp(0, s_and(0, 1, 1, 1)))
# always[0, 1] eventually[2, 2] w: t=0 reads w2 = 1, t=1 reads w3 = 1 -> 1
case("always_of_shifted_eventually", "exists x. always[0, 1] eventually[2, 2] walking(x)", TR,
     crisp(1, s_and(1, 1)))

# ---------------------------------------------------------------------- fraction windows

# T = 6, T-1 = 5: [0.1, 0.3] -> [ceil(0.5), floor(1.5)] = [1, 1]; w1 = 0 -> 0 (rounding outward would
# reach w0 or w2 = 1).
TR = trace(6, unary={("walking", 0): [1, 0, 1, 1, 1, 1]})
case("fraction_rounds_inward", "exists x. eventually[0.1, 0.3] walking(x)", TR, crisp(0, s_or(0)))
# [0.5, 1.0] -> [ceil(2.5), 5] = [3, 5]: all walking -> 1
case("fraction_always_late", "exists x. always[0.5, 1.0] walking(x)", TR, crisp(1, s_and(1, 1, 1)))

# T = 11: 0.3·10 is exactly 3 (in float arithmetic 3.0000000000000004, whose ceil is 4): window [3, 3].
TR = trace(11, unary={("walking", 0): [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]})
case("fraction_exact_rounding_eventually", "exists x. eventually[0.3, 0.3] walking(x)", TR, crisp(1, 1.0))
case("fraction_exact_rounding_always", "exists x. always[0.3, 0.3] walking(x)", TR, crisp(1, 1.0))

# T = 4, T-1 = 3, w = [1, 1, 1, 0]
TR = trace(4, unary={("walking", 0): [1, 1, 1, 0]})
# [0.0, 1.0] is the whole video: w3 = 0 -> 0
case("fraction_whole_video", "exists x. always[0.0, 1.0] walking(x)", TR, crisp(0, s_and(1, 1, 1, 0)))
# [0.5, 1.0] -> [ceil(1.5), 3] = [2, 3]: w2 = 1 -> 1
case("fraction_second_half", "exists x. eventually[0.5, 1.0] walking(x)", TR, crisp(1, s_or(1, 0)))

# ---------------------------------------------------------------------- empty windows

# T = 3, w = [1, 1, 1]: W(0) = [3, 5] ∩ [0, 3) is empty.
TR = trace(3, unary={("walking", 0): [1, 1, 1]})
case("empty_eventually", "exists x. eventually[3, 5] walking(x)", TR, crisp(0, 0.0))
case("empty_always", "exists x. always[3, 5] not walking(x)", TR, crisp(1, 1.0))
case("empty_until", "exists x. walking(x) until[3, 5] walking(x)", TR, crisp(0, 0.0))
# [0.6, 0.7] with T-1 = 2 -> [ceil(1.2), floor(1.4)] = [2, 1]: empty, though every frame is walking
case("empty_fraction_window", "exists x. eventually[0.6, 0.7] walking(x)", TR, crisp(0, 0.0))
# eventually[1, 1] is empty at the last frame (LTLf: no frame after it), so always fails there:
# per frame [1, 1, 0] -> 0; smooth s_and(1, 1, 0).
case("empty_window_at_the_end", "exists x. always eventually[1, 1] walking(x)", TR, crisp(0, s_and(1, 1, 0)))

# ---------------------------------------------------------------------- next[k]

# T = 4, w = [0, 0, 1, 0]
TR = trace(4, unary={("walking", 0): [0, 0, 1, 0]})
case("next_2", "exists x. next[2] walking(x)", TR, crisp(1, 1.0))  # w2
case("weak_next_2", "exists x. weak next[2] walking(x)", TR, crisp(1, 1.0))  # w2 (inside the trace)
case("next_3", "exists x. next[3] walking(x)", TR, crisp(0, 0.0))  # w3
# k = T and k far beyond T: strong next is false, weak next true, whatever the operand
case("next_k_equal_T", "exists x. next[4] true", TR, crisp(0, 0.0))
case("weak_next_k_equal_T", "exists x. weak next[4] false", TR, crisp(1, 1.0))
case("next_k_beyond_T", "exists x. next[1000000] true", TR, crisp(0, 0.0))
case("weak_next_k_beyond_T", "exists x. weak next[1000000] false", TR, crisp(1, 1.0))
# eventually (w ∧ weak next[2] false): per frame w(t) ∧ [t+2 >= 4] = [0∧0, 0∧0, 1∧1, 0∧1] -> 1
case("weak_next_inside_eventually", "exists x. eventually (walking(x) and weak next[2] false)", TR,
     crisp(1, s_or(s_and(0, 0), s_and(0, 0), s_and(1, 1), s_and(0, 1))))
# eventually (w ∧ next[2] true): per frame w(t) ∧ [t+2 < 4] = [0∧1, 0∧1, 1∧0, 0∧0] -> 0
case("strong_next_inside_eventually", "exists x. eventually (walking(x) and next[2] true)", TR,
     crisp(0, s_or(s_and(0, 1), s_and(0, 1), s_and(1, 0), s_and(0, 0))))

# ---------------------------------------------------------------------- until / release

# T = 4, w = [1, 1, 0, 0], r = [0, 0, 1, 0]
TR = trace(4, unary={("walking", 0): [1, 1, 0, 0], ("red", 0): [0, 0, 1, 0]})
# u3 = r3 = 0; u2 = r2 ∨ (w2 ∧ u3) = 1; u1 = r1 ∨ (w1 ∧ u2) = 1; u0 = 1
_u2 = s_or(1, s_and(0, 0))
case("until", "exists x. walking(x) until red(x)", TR,
     crisp(1, s_or(0, s_and(1, s_or(0, s_and(1, _u2))))))
# [0, 1]: v = r1 = 0; u0 = r0 ∨ (w0 ∧ v) = 0
case("until_0_1", "exists x. walking(x) until[0, 1] red(x)", TR, crisp(0, s_or(0, s_and(1, 0))))
# [2, 3]: within the window v = r3 = 0, then r2 ∨ (w2 ∧ v) = 1; the lo = 2 steps before it need
# w1 and w0: 1 ∧ 1 ∧ 1 = 1
case("until_2_3", "exists x. walking(x) until[2, 3] red(x)", TR,
     crisp(1, s_and(1, s_and(1, s_or(1, s_and(0, 0))))))
# [1, 1]: v = r1 = 0, then w0 ∧ v = 0
case("until_1_1", "exists x. walking(x) until[1, 1] red(x)", TR, crisp(0, s_and(1, 0)))

# Fuzzy: T = 2, w = [0.5, 0.9], r = [0.2, 0.6]; u1 = r1 = 0.6, u0 = r0 ∨ (w0 ∧ u1) = 0.2 ∨ (0.5 ∧ 0.6).
#   godel:   max(0.2, min(0.5, 0.6)) = 0.5
#   product: 0.5·0.6 = 0.3; 0.2 + 0.3 − 0.2·0.3 = 0.44
#   exact:   P(r0 ∨ (w0 ∧ r1)) = 1 − (1 − 0.2)(1 − 0.5·0.6) = 0.44 (independent facts)
#   boolean: atoms ≥ 0.5: w = [1, 1], r = [0, 1] -> 0 ∨ (1 ∧ 1) = 1
TR = trace(2, unary={("walking", 0): [0.5, 0.9], ("red", 0): [0.2, 0.6]})
case("until_fuzzy", "exists x. walking(x) until red(x)", TR,
     {"godel": 0.5, "product": 0.44, "exact": 0.44, "boolean": 1.0, "smooth": s_or(0.2, s_and(0.5, 0.6))})

# release = ¬(¬w until ¬r). T = 3, w = [0, 1, 0], r = [1, 1, 0]: ¬w = [1, 0, 1], ¬r = [0, 0, 1];
# u2 = 1, u1 = 0 ∨ (0 ∧ 1) = 0, u0 = 0 ∨ (1 ∧ 0) = 0 -> release = 1 (r held until w released it)
TR = trace(3, unary={("walking", 0): [0, 1, 0], ("red", 0): [1, 1, 0]})
case("release", "exists x. walking(x) release red(x)", TR,
     crisp(1, 1 - s_or(0, s_and(1, s_or(0, s_and(0, 1))))))
# [0, 1]: v = ¬r1 = 0; u0 = ¬r0 ∨ (¬w0 ∧ v) = 0 -> 1
case("release_0_1", "exists x. walking(x) release[0, 1] red(x)", TR, crisp(1, 1 - s_or(0, s_and(1, 0))))
# w = [0, 0, 0], r = [1, 0, 0]: ¬w = [1, 1, 1], ¬r = [0, 1, 1]; [0, 1]: v = ¬r1 = 1, u0 = 0 ∨ (1 ∧ 1) -> 0
TR = trace(3, unary={("red", 0): [1, 0, 0]})
case("release_0_1_broken", "exists x. walking(x) release[0, 1] red(x)", TR, crisp(0, 1 - s_or(0, s_and(1, 1))))

# ---------------------------------------------------------------------- then chains, hints, events

# T = 4, w = [1, 0, 0, 0], r = [0, 0, 1, 1]. Value: w0 and later r -> 1.
# Event 0: Body_0(q) = w(q) ∧ next eventually r = [1, 0, 0, 0].
# Event 1: Pre_1(q) = ∨_{s<q} w(s) = [0, 1, 1, 1]; ∧ r -> [0, 0, 1, 1] -> [0, 0, .5, .5].
TR = trace(4, unary={("walking", 0): [1, 0, 0, 0], ("red", 0): [0, 0, 1, 1]})
_W = crisp_witnesses([[1, 0, 0, 0], [0, 0, 0.5, 0.5]])
case("then", "exists x. walking(x) then red(x)", TR, crisp(1), _W)
case("then_with_hints", "exists x. walking(x) @early then red(x) @late", TR, crisp(1), _W)  # hints change nothing
case("then_with_window_hint", "exists x. walking(x) @[0.0, 0.25] then red(x) @[0.5, 1.0]", TR, crisp(1), _W)
# The other order: r never precedes w -> 0, witnesses all zero.
case("then_reversed", "exists x. red(x) then walking(x)", TR, crisp(0), crisp_witnesses([[0] * 4, [0] * 4]))

# T = 4, w = [1, 0, 0, 1], r = [0, 1, 1, 0]: walking, then red, then walking -> 1.
# Event 0: q = 0 only (w3 has no later frames) -> [1, 0, 0, 0].
# Event 1: Pre_1 = ∨_{s<q} w(s) = [0, 1, 1, 1]; Body_1(q) = r(q) ∧ next eventually w = [0, 1, 1, 0]
#          -> [0, .5, .5, 0].
# Event 2: Pre_2(q) = ∨_{s<q} (Pre_1(s) ∧ r(s)) = ∨_{s<q} [0, 1, 1, 0](s) = [0, 0, 1, 1]; ∧ w -> [0, 0, 0, 1].
TR = trace(4, unary={("walking", 0): [1, 0, 0, 1], ("red", 0): [0, 1, 1, 0]})
case("then_three_events", "exists x. walking(x) @early then red(x) @middle then walking(x) @late", TR, crisp(1),
     crisp_witnesses([[1, 0, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 0, 1]]))
# A chain element may itself be temporal: A_0 = eventually[2, 3] w = [w2 ∨ w3, w3, ∅, ∅] = [1, 1, 0, 0].
# Value: A_0(0) and a later red (r1) -> 1.
# Event 0: Body_0(q) = A_0(q) ∧ next eventually r = [1 ∧ 1, 1 ∧ r2, 0, 0] -> [.5, .5, 0, 0].
# Event 1: Pre_1(q) = ∨_{s<q} A_0(s) = [0, 1, 1, 1]; ∧ r = [0, 1, 1, 0] -> [0, .5, .5, 0].
case("then_temporal_element", "exists x. eventually[2, 3] walking(x) then red(x)", TR, crisp(1),
     crisp_witnesses([[0.5, 0.5, 0, 0], [0, 0.5, 0.5, 0]]))

# Fuzzy chain, T = 3, r = [.5, .5, 0], w = [0, .5, .5]: red(x) then walking(x).
#   godel:   eventually w = [.5, .5, .5]; next of it = [.5, .5, 0]; ∧ r = [.5, .5, 0] -> value .5;
#            event 0 ∝ [.5, .5, 0]; event 1: Pre_1 = ∨_{s<q} r(s) = [0, .5, .5], ∧ w = [0, .5, .5].
#   product: eventually w = [.75, .75, .5]; next = [.75, .5, 0]; ·r = [.375, .25, 0];
#            value 1 − .625·.75 = .53125; event 0 ∝ [.375, .25, 0] = [.6, .4, 0];
#            event 1: Pre_1 = [0, .5, .75], ·w = [0, .25, .375] -> [0, .4, .6].
#   exact:   P(r0 ∧ (w1 ∨ w2) or r1 ∧ w2) over 16 equally likely worlds: 6 with r0 + 2 without -> .5;
#            event 0: P(r0 ∧ (w1 ∨ w2)) = .375, P(r1 ∧ w2) = .25 -> [.6, .4, 0];
#            event 1: P(r0)·P(w1) = .25, P(r0 ∨ r1)·P(w2) = .375 -> [0, .4, .6].
#   boolean: r = [1, 1, 0], w = [0, 1, 1] -> 1; events [.5, .5, 0] and [0, .5, .5].
TR = trace(3, unary={("red", 0): [0.5, 0.5, 0], ("walking", 0): [0, 0.5, 0.5]})
case("then_fuzzy", "exists x. red(x) then walking(x)", TR,
     {"godel": 0.5, "product": 0.53125, "exact": 0.5, "boolean": 1.0},
     {"godel": [[0.5, 0.5, 0], [0, 0.5, 0.5]], "product": [[0.6, 0.4, 0], [0, 0.4, 0.6]],
      "exact": [[0.6, 0.4, 0], [0, 0.4, 0.6]], "boolean": [[0.5, 0.5, 0], [0, 0.5, 0.5]]})

# A hinted eventually is an event of its own; its witness pins the frame: w = [0, 1, 0, 1] -> [0, .5, 0, .5].
TR = trace(4, unary={("walking", 0): [0, 1, 0, 1]})
case("hinted_eventually", "exists x. eventually walking(x) @late", TR, crisp(1, s_or(0, 1, 0, 1)),
     crisp_witnesses([[0, 0.5, 0, 0.5]]))

# ---------------------------------------------------------------------- quantifiers, categories, distinctness

# T = 1, N = 2: person = [.8, .4], w = [.5, 1] per track.
#   godel max(min(.8, .5), min(.4, 1)) = .5; product 1 − (1 − .4)(1 − .4) = .64;
#   exact P((p0 ∧ w0) ∨ p1) = 1 − .6·.6 = .64; boolean: p0 ∧ w0 (both ≥ .5) -> 1.
TR = trace(1, 2, names={("person", 0): 0.8, ("person", 1): 0.4}, unary={("walking", 0): [0.5], ("walking", 1): [1]})
case("exists_category", "exists x: person. walking(x)", TR,
     {"godel": 0.5, "product": 0.64, "exact": 0.64, "boolean": 1.0, "smooth": s_or(s_and(0.8, 0.5), s_and(0.4, 1))})
# Without a category every track counts: max(.5, 1) = 1 in every logic but smooth.
case("exists_any", "exists x. walking(x)", TR, crisp(1, s_or(0.5, 1)))

# T = 1, N = 2: cup = [.5, 1], red = [.2, 1]. forall: each track's (¬cup ∨ red), folded with ∧.
#   godel min(max(.5, .2), max(0, 1)) = .5; product (.5 + .2 − .1)·1 = .6; exact P(¬c0 ∨ r0) = 1 − .5·.8 = .6;
#   boolean: c0 = 1 (.5 ≥ .5), r0 = 0 -> 0.
TR = trace(1, 2, names={("cup", 0): 0.5, ("cup", 1): 1.0}, unary={("red", 0): [0.2], ("red", 1): [1]})
case("forall_category", "forall x: cup. red(x)", TR,
     {"godel": 0.5, "product": 0.6, "exact": 0.6, "boolean": 0.0,
      "smooth": s_and(s_or(1 - 0.5, 0.2), s_or(1 - 1.0, 1))})

# T = 1, N = 2, near(0, 0) = 1 only. One block's variables are distinct tracks; separate blocks may coincide.
TR = trace(1, 2, binary={("near", 0, 0): [1]})
case("distinct_in_one_block", "exists a, b. near(a, b)", TR, crisp(0, s_or(0, 0)))  # (0,1), (1,0)
case("separate_blocks_may_coincide", "exists a. exists b. near(a, b)", TR, crisp(1, s_or(s_or(1, 0), s_or(0, 0))))
case("eq_constrains_separate_blocks", "exists a. exists b. a == b and near(a, b)", TR, crisp(1))
case("neq_constrains_separate_blocks", "exists a. exists b. a != b and near(a, b)", TR, crisp(0))
case("forall_distinct", "forall a, b. not (near(a, b) and near(b, a))", TR, crisp(1))  # only a ≠ b
case("forall_separate_blocks", "forall a. forall b. not (near(a, b) and near(b, a))", TR, crisp(0))  # a = b = 0
# More variables than tracks: no injective assignment; ∨ of nothing is 0, ∧ of nothing 1 (smooth too).
case("exists_more_vars_than_tracks", "exists a, b, c. true", TR, crisp(0, 0.0))
case("forall_more_vars_than_tracks", "forall a, b, c. false", TR, crisp(1, 1.0))

# ---------------------------------------------------------------------- presence

# T = 3, N = 2, w = 1 everywhere, but track 0 is present only at frame 1 and track 1 never; near(0, 1) = 1.
# Absent tracks read 0: w(track 0) = [0, 1, 0], w(track 1) = [0, 0, 0], near(0, 1) = [0, 0, 0].
TR = trace(3, 2, unary={("walking", 0): [1, 1, 1], ("walking", 1): [1, 1, 1]},
           binary={("near", 0, 1): [1, 1, 1]}, present={0: [False, True, False], 1: [False, False, False]})
case("absent_reads_zero", "exists x. walking(x)", TR, crisp(0, s_or(0, 0)))
case("present_frame_counts", "exists x. eventually walking(x)", TR, crisp(1, s_or(s_or(0, 1, 0), s_or(0, 0, 0))))
case("absent_track_is_in_the_domain", "forall x. eventually walking(x)", TR,
     crisp(0, s_and(s_or(0, 1, 0), s_or(0, 0, 0))))
case("absent_binary", "exists a, b. eventually near(a, b)", TR, crisp(0))
case("absent_until_presence", "exists x. not walking(x) until walking(x)", TR, crisp(1))  # track 0 at frame 1

# ---------------------------------------------------------------------- T = 1

# w = [1], r = [0]: every temporal operator sees one frame.
TR = trace(1, unary={("walking", 0): [1]})
case("T1_eventually", "exists x. eventually walking(x)", TR, crisp(1, 1.0))
case("T1_always", "exists x. always walking(x)", TR, crisp(1, 1.0))
case("T1_next", "exists x. next true", TR, crisp(0, 0.0))  # no frame 1
case("T1_weak_next", "exists x. weak next false", TR, crisp(1, 1.0))
case("T1_until", "exists x. walking(x) until red(x)", TR, crisp(0, 0.0))  # u0 = r0
case("T1_release", "exists x. red(x) release walking(x)", TR, crisp(1, 1.0))  # ¬(¬w0) = 1
case("T1_empty_window", "exists x. eventually[1, 2] true", TR, crisp(0, 0.0))
# [0.5, 1.0] with T − 1 = 0 is [0, 0]: not empty -> always r = r0 = 0
case("T1_fraction_window", "exists x. always[0.5, 1.0] red(x)", TR, crisp(0, 0.0))
# w0 ∧ next eventually r: the next frame does not exist -> 0; smooth s_and(1, 0)
case("T1_then", "exists x. walking(x) then red(x)", TR, crisp(0, s_and(1, 0)),
     crisp_witnesses([[0.0], [0.0]]))
case("T1_hinted_event", "exists x. eventually walking(x) @late", TR, crisp(1, 1.0), crisp_witnesses([[1.0]]))


# ---------------------------------------------------------------------- the backends

Results = dict[str, tuple[float, list[list[float]]]]  # spec name -> (value, witness distributions)


def _reference(program: ir.CoreProgram, tr: Trace, logic: str) -> Results:
    ev = get_backend("reference").compile(program, logic=logic, temperature=TAU)
    return {name: (r.value, [list(w) for w in r.witnesses]) for name, r in ev(tr).items()}


def _torch(program: ir.CoreProgram, tr: Trace, logic: str) -> Results:
    import torch

    from stlspec.backends.torch import SceneGraphBatch

    ev = get_backend("torch").compile(program, logic=logic, temperature=TAU)
    batch = SceneGraphBatch.from_traces([tr], ev.columns, dtype=torch.float64)
    ids = list(range(len(program.specs)))
    out = ev(batch, ids, [0] * len(ids))
    return {s.name: (float(out.values[k]), out.witnesses[k, : len(s.events)].tolist())
            for k, s in enumerate(program.specs)}


def _scallop_sim(program: ir.CoreProgram, tr: Trace, logic: str) -> Results:
    compiled = get_backend("scallop").compile(program, trace=tr, witnesses=True)
    return {name: (v, [list(w) for w in ws]) for name, (v, ws) in scallop_sim.run_program(compiled, tr.num_frames).items()}


def _scallopy(program: ir.CoreProgram, tr: Trace, logic: str) -> Results:
    from stlspec.backends.scallop import run

    compiled = get_backend("scallop").compile(program, witnesses=True)
    # top-k proofs with k above the number of proofs is exact weighted model counting (positive programs).
    options = {"provenance": "topkproofs", "k": 10_000} if logic == "exact" else {"provenance": "minmaxprob"}
    got = run(compiled, tr, **options)
    return {name: (got.values[name], [list(w) for w in got.witnesses[name]]) for name in compiled.specs}


@dataclass(frozen=True)
class Evaluator:
    id: str
    target: str  # its key in stlspec.backends.BACKENDS
    run: Callable[[ir.CoreProgram, Trace, str], Results]
    logics: dict[str, str | None]  # logic -> None (supported) or why not
    unavailable: str | None = None
    #: (case, logic) -> why this backend cannot compute that case in that logic, or None
    excludes: Callable[[Case, str], str | None] = lambda case, logic: None


def _negated(c: Case) -> bool:
    """Whether the case's core IR negates anything (``not``, ``always``, ``forall``, weak ``next`` are
    emitted through Scallop negation)."""
    return any(isinstance(n, (ir.Not, ir.Always, ir.Forall)) or (isinstance(n, ir.Next) and n.weak)
               for s in _program(c).specs for n in ir.walk(s.formula))


def _topk_exact_excludes(c: Case, logic: str) -> str | None:
    if logic == "exact" and _negated(c):
        return "top-k proofs treats a negated fact as a literal of its own: exact only on negation-free programs"
    return None


_SCALLOP_LOGICS = {
    "godel": None,
    "boolean": "Scallop's minmaxprob reads facts as probabilities; boolean thresholds them at 0.5",
    "product": "no Scallop provenance computes product (addmultprob's ∨ is a clamped sum, not x + y − xy)",
    "smooth": "no Scallop provenance computes smooth (log-sum-exp)",
    "exact": "the simulator implements minmaxprob only; real Scallop's top-k proofs is checked against exact",
}
EVALUATORS = (
    Evaluator("reference", "reference", _reference, dict.fromkeys(("boolean", "godel", "product", "smooth", "exact"))),
    Evaluator("torch", "torch", _torch, {**dict.fromkeys(("boolean", "godel", "product", "smooth")),
                                          "exact": "torch cannot enumerate worlds: it rejects exact with E602"}),
    Evaluator("scallop-sim", "scallop", _scallop_sim, _SCALLOP_LOGICS),
    Evaluator("scallop-real", "scallop", _scallopy, {**_SCALLOP_LOGICS, "exact": None},
              None if HAVE_SCALLOPY else "scallopy is not installed (see docs/scallop.md)", _topk_exact_excludes),
)


def _params():
    """Every (case, logic, evaluator); an unsupported or unavailable (evaluator, logic) is one skipped param."""
    for e in EVALUATORS:
        for logic in stlspec.logics.LOGICS:
            reason = e.unavailable or e.logics[logic]
            if reason:
                yield pytest.param(None, logic, e, id=f"{e.id}-{logic}", marks=pytest.mark.skip(reason=reason))
                continue
            for c in CASES:
                if logic in c.values:
                    why = e.excludes(c, logic)
                    yield pytest.param(c, logic, e, id=f"{e.id}-{logic}-{c.id}",
                                       marks=[pytest.mark.skip(reason=why)] if why else [])


def _program(c: Case) -> ir.CoreProgram:
    return stlspec.compile_text(HEADER + "spec s {\n  " + c.body + "\n}\n")


@pytest.mark.parametrize("case_,logic,evaluator", list(_params()))
def test_behaviour(case_: Case, logic: str, evaluator: Evaluator):
    program = _program(case_)
    value, witnesses = evaluator.run(program, case_.trace, logic)["s"]
    assert value == pytest.approx(case_.values[logic], abs=ABS, rel=0)
    want = case_.witnesses.get(logic)
    if want is not None:
        assert len(witnesses) == len(want) == len(program.specs[0].events)
        np.testing.assert_allclose(np.asarray(witnesses, dtype=float), np.asarray(want, dtype=float), atol=ABS, rtol=0)


# ---------------------------------------------------------------------- the suite itself


def test_every_evaluating_backend_is_in_the_suite():
    # A new evaluating target must join EVALUATORS; `core` only prints the IR.
    assert {e.target for e in EVALUATORS} == set(BACKENDS) - {"core"}
    assert isinstance(get_backend("core").compile(_program(CASES[0])).text, str)


def test_every_evaluator_names_every_logic():
    for e in EVALUATORS:
        assert set(e.logics) == set(stlspec.logics.LOGICS), e.id


def test_real_scallop_runs_the_logics_that_name_a_scallop_provenance():
    real = next(e for e in EVALUATORS if e.id == "scallop-real")
    supported = {logic for logic, why in real.logics.items() if why is None}
    assert supported == {logic for logic in stlspec.logics.LOGICS if get_logic(logic).scallop_provenance}


def test_torch_rejects_exact_as_the_skip_reason_says():
    pytest.importorskip("torch")
    with pytest.raises(stlspec.StlError) as err:
        get_backend("torch").compile(_program(CASES[0]), logic="exact")
    assert err.value.diagnostics[0].code == "E602"


def test_cases_cover_the_behaviours_and_logics():
    ids = {c.id for c in CASES}
    assert len(ids) == len(CASES), "case ids must be unique"
    for logic in stlspec.logics.LOGICS:
        assert sum(logic in c.values for c in CASES) >= 20, logic
    for c in CASES:
        # hand-computed values lie in [0, 1] up to smooth's τ·log n
        for logic, v in c.values.items():
            assert -0.5 <= v <= 1.5, (c.id, logic)
