"""Answer extraction, name normalization, validation, cost estimates and caption files (no SDK needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stlspec import ast
from stlspec.llm import (
    Cache, CaptionFileError, SpecRecord, Usage, VocabularyMapper, estimate_cost, extract_spec, load_captions,
    normalize_name, price_for, validate_answer,
)
from stlspec.llm.records import spec_name_for
from stlspec.pipeline import load_vocabulary

VOCAB = load_vocabulary(str(Path(__file__).parent / "fixtures" / "llm" / "vocab.stl"))
SPEC = 'spec s "c" {\n  exists d: dog. eventually running(d) @late\n}'


@pytest.mark.parametrize("answer, how", [
    (f"```stl\n{SPEC}\n```", "fenced"),
    (f"Sure, here it is:\n\n```stlspec\n{SPEC}\n```\n\nLet me know!", "fenced"),
    (f"```\n{SPEC}\n```", "fenced"),
    (f"~~~stl\n{SPEC}\n~~~", "fenced"),
    (f"The spec is:\n{SPEC}\nThat captures the caption.", "prose"),
    (f"```stl\n{SPEC}", "fenced-truncated"),
    ("```python\nprint('no')\n```\n" + SPEC, "prose"),
])
def test_extract_spec_tolerates_prose_and_fences(answer, how):
    found = extract_spec(answer)
    assert found is not None and found.how == how
    assert found.text.strip() == SPEC


def test_extract_prefers_the_last_spec_and_keeps_declaration_blocks():
    answer = ("```stl\ncategory dog\n```\nDraft:\n```stl\nspec s { bad( }\n```\nFixed:\n```stl\n" + SPEC + "\n```")
    found = extract_spec(answer)
    assert found.text == "category dog\n" + SPEC


def test_extract_braces_inside_strings_and_comments():
    spec = 'spec s "a { tricky } caption" {\n  // a } comment\n  exists d: dog. eventually running(d)\n}'
    found = extract_spec("Answer: " + spec + " and some prose after } it")
    assert found.text == spec


def test_extract_bare_formula_and_nothing():
    found = extract_spec("exists d: dog. eventually running(d)\n\nThis is it.")
    assert found.how == "bare-formula" and found.text.startswith("spec answer {")
    assert extract_spec("I don't know.") is None


@pytest.mark.parametrize("raw, norm", [
    ("is holding", "holding"), ("Sitting_On", "sitting on"), ("  IS   being  carried ", "carried"),
    ("on-top-of", "on top of"), ("the door", "door"), ("is", "is"),
])
def test_normalize_name(raw, norm):
    assert normalize_name(raw) == norm


def test_closed_vocabulary_mapping():
    m = VocabularyMapper(VOCAB, synonyms={"grips": "holding"})
    assert m.map_name("holding", 2) == "holding"
    assert m.map_name("is holding", 2) == "holding"
    assert m.map_name("Sitting_on", 2) == "sitting on"
    assert m.map_name("grasping", 2) == "holding"            # built-in synonym
    assert m.map_name("grips", 2) == "holding"               # user synonym
    assert m.map_name("mugs", "category") == "cup"            # plural + synonym
    assert m.map_name("boy", "category") == "child"           # most specific declared category
    assert m.map_name("cups", "category") == "cup"
    assert m.map_name("walking", 2) is None                   # arity matters: walking is unary
    assert m.map_name("juggling", 2) is None                  # unknown: left for the checker to report


def test_unknown_names_are_reported_by_the_checker_with_suggestions():
    out = validate_answer('```stl\nspec s { exists d: dog. eventually runing(d) @late }\n```', "c", "s", VOCAB)
    assert not out.ok
    assert out.diagnostics[0].code == "E201"
    assert "did you mean 'running'" in out.rendered
    assert "```stl" in out.repair_prompt and "runing(d)" in out.repair_prompt


def test_validate_sets_name_and_caption_and_ignores_declarations():
    out = validate_answer("```stl\nunary running(any)\nspec whatever \"x\" { exists d: dog. eventually running(d) @late }"
                          "\n```", 'A dog "runs".', "vid_7", VOCAB)
    assert out.ok
    assert out.text.startswith('spec vid_7 "A dog \\"runs\\"." {')
    assert [d.code for d in out.diagnostics] == ["W702"]


def test_validate_rejects_two_specs():
    out = validate_answer(f"```stl\n{SPEC}\n{SPEC.replace('spec s', 'spec t')}\n```", "c", "s", VOCAB)
    assert not out.ok and out.diagnostics[0].code == "E702"


def test_costs():
    assert price_for("claude-haiku-4-5-20251001").input == 1.0
    assert price_for("claude-opus-4-1").output == 75.0
    assert price_for("claude-opus-4-6").output == 25.0
    assert price_for("gpt-4") is None
    u = Usage(input_tokens=1_000_000, output_tokens=100_000, cache_read_input_tokens=1_000_000)
    assert estimate_cost("claude-sonnet-4-6", u) == pytest.approx(3.0 + 1.5 + 0.3)
    assert estimate_cost("claude-sonnet-4-6", u, batch=True) == pytest.approx((3.0 + 1.5 + 0.3) / 2)
    assert estimate_cost("unknown-model", u) is None


def test_load_captions(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"id": "a", "caption": "x"}\n\n{"video_id": 7, "text": "y"}\n"just text"\n{"caption": "z"}\n')
    caps = load_captions(p)
    assert [(c.id, c.text) for c in caps] == [("a", "x"), ("7", "y"), ("line4", "just text"), ("line5", "z")]
    t = tmp_path / "c.txt"
    t.write_text("first caption\nsecond caption\n")
    assert [c.text for c in load_captions(t)] == ["first caption", "second caption"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n')
    with pytest.raises(CaptionFileError, match=r"bad.jsonl:1:1: error\[E706\]: no caption text"):
        load_captions(bad)


def test_spec_names_are_identifiers_and_unique():
    used: set[str] = set()
    assert [spec_name_for(x, used) for x in ["03f2-ed", "a b", "a b", "then", ""]] == \
        ["c_03f2_ed", "a_b", "a_b_2", "c_then", "caption"]


def test_record_round_trip_and_status_check():
    r = SpecRecord("id", "cap", "id", "ok", spec="spec id { true }")
    assert SpecRecord.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    with pytest.raises(ValueError):
        SpecRecord("id", "cap", "id", "maybe")


def test_cache_tables(tmp_path):
    with Cache(tmp_path / "x" / "c.sqlite") as c:
        c.put_response("k", "m", {"text": "t"})
        assert c.get_response("k") == {"text": "t"} and c.get_response("nope") is None
        c.add_batch("b1", {"k1": "key1"})
        assert c.open_batches() == {"b1": {"k1": "key1"}}
        c.close_batch("b1")
        assert c.open_batches() == {}
    with Cache(tmp_path / "x" / "c.sqlite") as c:  # durable
        assert c.get_response("k") == {"text": "t"}


def test_ast_helpers_rebuild_only_what_changes():
    import stlspec

    f = stlspec.parse(SPEC).specs[0].formula
    assert ast.map_formula(f, lambda n: n) is f
    atoms = [n for n in ast.walk(f) if isinstance(n, ast.Atom)]
    assert [a.pred.text for a in atoms] == ["running"]
