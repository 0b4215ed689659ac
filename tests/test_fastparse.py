"""The fast parser and the Lark reference parser agree: same ASTs, same spans, same accepted texts."""

from __future__ import annotations

from dataclasses import fields, is_dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stlspec
from stlspec.diagnostics import StlError
from stlspec.fastparse import Fallback, fast_parse
from stlspec.parser import lark_parse

from ast_strategies import programs
from test_parser import TOKENS


def spans(node):
    """Every span in a node tree, in a fixed order (spans are excluded from ==)."""
    out = []
    if isinstance(node, (list, tuple)):
        for x in node:
            out.extend(spans(x))
    elif is_dataclass(node):
        for f in fields(node):
            v = getattr(node, f.name)
            if f.name.endswith("span") or f.name == "arg_spans":
                out.append(v)
            else:
                out.extend(spans(v))
    return out


def agree(text: str) -> None:
    try:
        fast, comments = fast_parse(text)
    except Fallback:
        fast = None
    try:
        slow = list(lark_parse(text).items)
    except StlError:
        slow = None
    if fast is None:
        # The fast parser may decline valid text only for the mistakes Lark's builder reports.
        assert slow is None, text
        return
    assert slow is not None, f"fast parser accepted text Lark rejects: {text!r}"
    assert fast == slow
    assert spans(fast) == spans(slow)
    assert comments == lark_parse(text).comments


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_formatted_programs(program):
    agree(stlspec.format(program))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS + ["x", "(", ")", ",", "y", "==", "a", "b"]), max_size=25))
def test_token_soup(tokens):
    agree(" ".join(tokens))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=12))
def test_token_soup_inside_a_spec(tokens):
    agree("spec s { " + " ".join(tokens) + " }")


def test_examples_and_layout_golden():
    from pathlib import Path

    root = Path(__file__).parent.parent
    for path in [*root.glob("examples/**/*.stl"), *root.glob("tests/golden/fmt/*.stl"), *root.glob("tests/check_cases/*.stl")]:
        agree(path.read_text())
