"""The shared lexicon agrees with the reference grammar (keywords, whitespace, names)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from stlspec import lexicon
from stlspec.parser import _parser, grammar_text


def grammar_keywords() -> set[str]:
    """Every word-like string literal of the grammar (anonymous or named terminals)."""
    return set(re.findall(r'"([a-z]+)"', grammar_text()))


def test_keywords_are_exactly_the_grammars_words():
    assert lexicon.KEYWORDS == grammar_keywords()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_quote_unquote_round_trip(text):
    if lexicon.quotable(text):
        token = lexicon.quote(text)
        assert re.fullmatch(lexicon.STRING, token)
        assert lexicon.unquote(token) == text


TERMINALS = {"WS": lexicon.WHITESPACE, "IDENT": lexicon.IDENT, "STRING": lexicon.STRING}
tricky = st.text(st.sampled_from(' \t\f\r\n\x0b\x1c\u00a0\u2028\u3000"\\a_1'), max_size=6)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(TERMINALS)), st.one_of(tricky, st.text(max_size=6)))
def test_terminals_agree_with_lark(name, text):
    """Whitespace, names and quoted names: the lexicon's regexes match exactly what Lark's do."""
    lark = {t.name: t.pattern.to_regexp() for t in _parser().terminals}[name]
    assert bool(re.fullmatch(lark, text)) == bool(re.fullmatch(TERMINALS[name], text))
