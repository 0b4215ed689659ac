"""The prompt is generated from the project's own grammar, docs and compiled examples."""

from __future__ import annotations

from pathlib import Path

import pytest

import stlspec
from stlspec.llm import prompt as P
from stlspec.pipeline import load_vocabulary
from stlspec.parser import grammar_text

REPO = Path(__file__).resolve().parent.parent
VOCAB = Path(__file__).parent / "fixtures" / "llm" / "vocab.stl"


def test_language_snapshot_is_current():
    docs = REPO / "docs" / "language"
    if not docs.is_dir():
        pytest.skip("no docs/language in this checkout")
    packaged = (REPO / "stlspec" / "llm" / "language.md").read_text(encoding="utf-8")
    assert packaged == P.language_snapshot(docs), (
        "stlspec/llm/language.md is stale: run `python -m stlspec.llm --refresh`")


def test_prompt_contains_grammar_reference_examples_and_vocabulary():
    vocab = load_vocabulary(str(VOCAB))
    prompt = P.build_prompt(vocab)
    text = prompt.text
    assert grammar_text().strip() in text                      # verbatim, not a paraphrase
    for page in ("# Sequencing: then", "# When-hints"):         # reference pages from docs/language
        assert page in text
    assert 'binary "sitting on"(any, chair)' in text           # the task's vocabulary, formatted
    assert "Use only the categories and predicates" in text    # closed-vocabulary rule
    assert prompt.system[-1].get("cache_control") == {"type": "ephemeral"}
    assert prompt.version.startswith(P.PROMPT_TEMPLATE_VERSION + "-")
    open_prompt = P.build_prompt(None)
    assert "There is no fixed vocabulary" in open_prompt.text and "sitting on\"(any, chair)" not in open_prompt.text


def test_fewshot_examples_compile_and_have_hints():
    vocab_text, examples = P.fewshot_examples()
    assert len(examples) >= 3
    for ex in examples:
        core = stlspec.compile_text(vocab_text + "\n\n" + ex.answer)
        spec = core.specs[0]
        assert spec.caption == ex.caption
        assert spec.events and all(e.hint is not None for e in spec.events)


def test_vocabulary_rendering_round_trips():
    vocab = load_vocabulary(str(VOCAB))
    again = stlspec.compile_text(P.render_vocabulary(vocab)).vocabulary
    assert again == vocab


def test_vocabulary_hash_depends_on_vocabulary_and_synonyms():
    vocab = load_vocabulary(str(VOCAB))
    h = P.vocabulary_hash(vocab)
    assert h == P.vocabulary_hash(load_vocabulary(str(VOCAB)))
    assert h != P.vocabulary_hash(None)
    assert h != P.vocabulary_hash(vocab, {"grasping": "holding"})


def test_repair_message_carries_diagnostics_and_text():
    msg = P.repair_message("x:1:1: error[E201]: unknown predicate", "spec s { true }")
    assert "error[E201]" in msg and "spec s { true }" in msg and "```stl" in msg
