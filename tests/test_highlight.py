"""The Pygments lexer (`stlspec.highlight`): keywords agree with the grammar, real files lex without errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("pygments")

from pygments.lexers import get_lexer_by_name, get_lexer_for_filename  # noqa: E402
from pygments.token import Error, Keyword, Name, Operator  # noqa: E402

from stlspec.highlight import KEYWORD_GROUPS, StlspecLexer  # noqa: E402
from stlspec.parser import KEYWORDS, grammar_text  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def grammar_keywords() -> set[str]:
    """Quoted literals of the grammar that look like words: the language's reserved words."""
    return set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', grammar_text()))


def test_keyword_groups_are_exactly_the_grammars_keywords():
    lexer_words = [w for group in KEYWORD_GROUPS.values() for w in group]
    assert len(lexer_words) == len(set(lexer_words)), "a keyword is in two groups"
    assert set(lexer_words) == grammar_keywords() == set(KEYWORDS)


def test_registered_with_pygments():
    """The entry point makes the lexer findable by name and file name (needs the package installed)."""
    assert isinstance(get_lexer_by_name("stlspec"), StlspecLexer)
    assert isinstance(get_lexer_for_filename("cup.stl"), StlspecLexer)


def _tokens(text: str):
    return list(StlspecLexer().get_tokens(text))


def _files() -> list[Path]:
    return sorted((REPO / "examples").rglob("*.stl")) + sorted((REPO / "laser_train").rglob("*.stl")) + \
        sorted((REPO / "tests" / "check_cases").glob("*.stl"))


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_real_files_lex_without_error_tokens(path: Path):
    text = path.read_text(encoding="utf-8")
    toks = _tokens(text)
    errors = [v for t, v in toks if t in Error]
    assert not errors, f"{path}: error tokens {errors[:5]}"
    assert "".join(v for _, v in toks) == text if text.endswith("\n") else text + "\n"


def test_docs_blocks_lex_without_error_tokens():
    from tests.test_docs import BLOCKS  # every stlspec block of the docs and README

    blocks = [b for b in BLOCKS if b.lang == "stlspec"]
    assert len(blocks) > 30
    for b in blocks:
        if b.expect is not None and b.expect[1].startswith("E1"):
            continue  # syntax-error examples may contain characters the language does not have
        bad = [v for t, v in _tokens(b.text) if t in Error]
        assert not bad, f"{b.id}: error tokens {bad[:5]}"


def test_token_roles():
    text = ('include "vocab.stl"\ncategory person\nbinary "on top of"(any, any)\n'
            'spec s "caption" {\n  exists a: person. not "on top of"(a, a) then always[0, 0.5] true @early\n}\n')
    toks = [(t, v) for t, v in _tokens(text) if v.strip()]
    kinds = dict((v, t) for t, v in toks)
    assert kinds["include"] in Keyword and kinds["exists"] in Keyword and kinds["then"] in Keyword
    assert kinds["not"] in Operator.Word
    assert kinds['"on top of"'] in Name.Function
    assert kinds["s"] in Name.Class
    assert kinds["@early"] in Name.Decorator
    assert kinds["true"] in Keyword.Constant
    assert kinds['"caption"'] not in Name.Function


def test_garbage_is_an_error_token():
    assert any(t in Error for t, _ in _tokens("spec s { p(x) $ }"))
