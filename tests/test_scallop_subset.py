"""The Scallop subset grammar and semantic self-check: it accepts what we emit and rejects every pitfall.

Each pitfall from ``shared/reference/scallop.md`` is a case that must fail to
parse (or fail the semantic check), next to a near-identical program that
passes, so a test cannot pass because the base program was already broken.
"""

from __future__ import annotations

import pytest

from stlspec.backends.scallop import names as nm
from stlspec.backends.scallop.validate import ScallopSubsetError, parse, validate

BASE = """\
type frame(t: i32)
type num_frames(n: i32)
type unary(p: String, t: i32, n: i32)
type track(n: i32)
rel frame = {(0,), (1,), (2,)}
rel num_frames = {(3,)}
rel track = {(0,), (1,)}
rel unary = {0.9::("walking", 0, 1), 1.0::("a b.c-d~22~", 2, 0)}
type succ(t: i32, s: i32)
rel succ(t, s) = frame(t) and frame(s) and s == t + 1
type r1(t: i32, v_x: i32)
rel r1(t, v_x) = unary("walking", t, v_x)
type r2(t: i32, v_x: i32)
rel r2(t, v_x) = r1(t, v_x)
rel r2(t, v_x) = succ(t, s) and r2(s, v_x)
type r3(t: i32, v_x: i32)
rel r3(t, v_x) = frame(t) and track(v_x) and not r2(t, v_x)
type w(lo: i32, hi: i32)
rel w((3 * (n - 1) + 9) / 10, (n - 1) / 2) = num_frames(n)
type sat(spec: String)
rel sat("s") = r3(0, v_x) and v_x != 0 and v_x >= 1
query sat
"""


def test_base_program_is_valid():
    module = validate(BASE)
    assert set(module.types) >= {"frame", "r1", "r2", "r3", "sat"}
    assert module.queries == ("sat",)


def _variant(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


# (pitfall, old text, broken text) -- each must be rejected.
PITFALLS = [
    ("tab as whitespace", "rel r1(t, v_x) = unary", "rel r1(t, v_x) =\tunary"),
    ("x-1 without spaces", "s == t + 1", "s == t+1"),
    ("x-1 lexes as x, -1", "s == t + 1", "s == t -1"),
    ("x-1", "(n - 1) / 2", "(n-1) / 2"),
    ("a < b, c > d", "v_x != 0 and v_x >= 1", "v_x < 2, v_x > 0"),
    ("less-than at all", "v_x >= 1", "1 <= v_x"),
    ("comma conjunction", "frame(t) and frame(s)", "frame(t), frame(s)"),
    ("reserved word as relation", "type r1(t: i32, v_x: i32)\nrel r1(t, v_x)", "type in(t: i32, v_x: i32)\nrel in(t, v_x)"),
    ("reserved word as variable", "rel r1(t, v_x) = unary(\"walking\", t, v_x)",
     "rel r1(t, then) = unary(\"walking\", t, then)"),
    ("type name as relation", "type r1(t: i32, v_x: i32)", "type String(t: i32, v_x: i32)"),
    ("identifier starting with _", "rel r1(t, v_x) = unary(\"walking\", t, v_x)",
     "rel r1(t, _x) = unary(\"walking\", t, _x)"),
    ("wildcard", "rel sat(\"s\") = r3(0, v_x)", "rel sat(\"s\") = r3(0, _)"),
    ("escaped quote in string", '("walking", 0, 1)', '("walk\\"ing", 0, 1)'),
    ("backslash in string", '("walking", 0, 1)', '("walk\\ning", 0, 1)'),
    ("newline in string", '("walking", 0, 1)', '("walk\ning", 0, 1)'),
    ("unicode in string", '("walking", 0, 1)', '("walkïng", 0, 1)'),
    ("float .5", "0.9::", ".9::"),
    ("float 1.", "1.0::", "1.::"),
    ("float exponent", "0.9::", "9e-1::"),
    ("probability above 1", "0.9::", "2.5::"),
    ("integer beyond i32", "rel num_frames = {(3,)}", "rel num_frames = {(30000000000,)}"),
    ("single tuple without comma", "rel num_frames = {(3,)}", "rel num_frames = {(3)}"),
    ("multiplication in a body", "s == t + 1", "s == t * 1"),
    ("parenthesised comparison", "and v_x >= 1", "and (v_x >= 1)"),
    ("or in a body", "frame(t) and frame(s)", "frame(t) or frame(s)"),
    ("comment with a control character", "query sat", "// a\x0bb\nquery sat"),
]


@pytest.mark.parametrize("what,old,new", PITFALLS, ids=[p[0] for p in PITFALLS])
def test_pitfall_is_rejected(what, old, new):
    with pytest.raises(ScallopSubsetError):
        validate(_variant(old, new))


SEMANTIC = [
    ("undeclared relation", "rel r2(t, v_x) = r1(t, v_x)", "rel r2(t, v_x) = r9(t, v_x)"),
    ("wrong arity", "rel r2(t, v_x) = r1(t, v_x)", "rel r2(t, v_x) = r1(t, v_x, v_x)"),
    ("string in an integer field", '("walking", 0, 1)', '("walking", "0", 1)'),
    ("ungrounded negation", "frame(t) and track(v_x) and not r2(t, v_x)", "frame(t) and not r2(t, v_x)"),
    ("unbound head variable", "rel r1(t, v_x) = unary(\"walking\", t, v_x)", "rel r1(t, v_y) = unary(\"walking\", t, v_x)"),
    ("unbound constraint variable", "v_x != 0", "v_y != 0"),
    ("recursion through negation", "rel r2(t, v_x) = r1(t, v_x)\n",
     "rel r2(t, v_x) = r1(t, v_x)\nrel r2(t, v_x) = frame(t) and track(v_x) and not r3(t, v_x)\n"),
    ("relation declared twice", "type r1(t: i32, v_x: i32)", "type r1(t: i32, v_x: i32)\ntype r1(t: i32)"),
]


@pytest.mark.parametrize("what,old,new", SEMANTIC, ids=[s[0] for s in SEMANTIC])
def test_semantic_error_is_rejected(what, old, new):
    parse(BASE)  # the base parses
    with pytest.raises(ScallopSubsetError):
        validate(_variant(old, new))


def test_error_message_points_at_the_line():
    with pytest.raises(ScallopSubsetError, match="line 10"):
        validate(_variant("s == t + 1", "s == t+1"))


# ---------------------------------------------------------------------- names

HOSTILE = ["in", "then", "type", "String", "a\"b", "a\\nb", "x\ny", "\t", "*/", "//", "~7e~", "~", "ünï",
           "🙂", "", " ", "_", "__", "_x", "a_b", "a__b", "rel r(t) = frame(t)", "'", "x-1", "a < b, c > d"]


def test_literal_is_injective_and_safe():
    seen = {}
    for name in HOSTILE:
        body = nm.literal(name)
        assert set(body) <= nm.SAFE_LITERAL_CHARS | set("~0123456789abcdef")
        assert nm.unliteral(body) == name
        assert body not in seen, (name, seen.get(body))
        seen[body] = name


def test_ident_is_injective_and_valid():
    seen = {}
    for name in HOSTILE:
        text = nm.ident("v_", name)
        assert nm.is_ident(text), text
        assert text not in seen, (name, seen.get(text))
        seen[text] = name


def test_comment_is_printable_ascii():
    for name in HOSTILE:
        text = nm.comment(name)
        assert all(" " <= c <= "~" for c in text), repr(text)


def test_reserved_words_are_not_identifiers():
    for word in nm.RESERVED:
        assert not nm.is_ident(word)


# ---------------------------------------------------------------------- large embedded traces

FACT_TYPES = {"frame": (("t", "i32"),), "name": (("n", "i32"), ("c", "String")),
              "unary": (("p", "String"), ("t", "i32"), ("n", "i32"))}
FACTS = """\
rel frame = {(0,), (1,)}
// track 0 = 'man'
rel unary = {
  0.9::("walking", 0, 1),
  1.0::("a b", 1, 0)
}
"""


def test_fact_block_checker_accepts_emitted_facts():
    from stlspec.backends.scallop.validate import check_fact_block

    check_fact_block(FACTS, FACT_TYPES)
    validate("type frame(t: i32)\ntype unary(p: String, t: i32, n: i32)\n" + FACTS)  # the grammar agrees


@pytest.mark.parametrize("old,new", [("0.9::", ".9::"), ("1.0::", "1.::"), ('"walking"', '"walk\\"ing"'),
                                     ("(1,)}", "(1)}"), ('"a b", 1, 0', '"a b", 1'), ("\n}", ""),
                                     ("rel unary", "rel in"), ('("walking", 0, 1)', '(0, "walking", 1)'),
                                     ("  0.9", "\t0.9")])
def test_fact_block_checker_rejects(old, new):
    from stlspec.backends.scallop.validate import check_fact_block

    assert old in FACTS
    with pytest.raises(ScallopSubsetError):
        check_fact_block(FACTS.replace(old, new, 1), FACT_TYPES)
