"""Captions → specs through the real ``anthropic`` SDK against a local fake Messages API.

The fake server (:mod:`stlspec.llm.fakeapi`) replays the recorded answers in
``tests/fixtures/llm/answers.json`` and counts every request, so these tests
check what was sent as well as what came back: a clean spec, a spec in prose
and code fences, a repair, a spec that never becomes valid, a refusal, a 429
and a 500 that the SDK retries, a 500 that never goes away, the cache serving
a second run, and the API key handling.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stlspec.llm import (
    Cache, Caption, FatalAPIError, MissingAPIKeyError, SpecRecord, specs_from_captions,
)
from stlspec.llm.fakeapi import FakeMessagesAPI

pytest.importorskip("anthropic")

FIX = Path(__file__).parent / "fixtures" / "llm"
SCRIPT = json.loads((FIX / "answers.json").read_text(encoding="utf-8"))
VOCAB = str(FIX / "vocab.stl")
KEY = "sk-ant-test-not-a-real-key-0123456789"


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with FakeMessagesAPI(SCRIPT, api_key=KEY) as server:
        yield server


def run(api, captions, cache=None, **kw) -> list[SpecRecord]:
    items = [Caption(f"c{i}", text) for i, text in enumerate(captions)]
    kw.setdefault("concurrency", 2)
    result = specs_from_captions(items, VOCAB, base_url=api.base_url, cache=cache, **kw)
    assert [r.caption for r in result.records] == list(captions)  # one record per caption, in order
    return result


def test_clean_spec(api):
    rec = run(api, ["A man picks up a cup from the table."]).records[0]
    assert rec.status == "ok" and rec.rounds == 1 and not rec.cache_hit
    assert rec.spec.startswith('spec c0 "A man picks up a cup from the table." {')
    assert "then holding(m, c) @late" in rec.spec
    assert rec.usage["input_tokens"] > 0 and rec.usage["output_tokens"] > 0
    assert rec.model == "claude-sonnet-4-6"
    assert api.message_requests == 1


def test_spec_in_prose_and_fences(api):
    res = run(api, ["A woman opens the door and walks out.", "A child throws a ball to a dog.",
                    "A boy kicks a ball, then runs after it.", "A child picks up a book, then sits down."])
    assert [r.status for r in res.records] == ["ok"] * 4
    assert "then walking(w) @late" in res.records[0].spec       # ```stlspec fence inside prose
    assert "then near(b, d) @late" in res.records[1].spec       # no fence at all
    assert "kicking(b, x) @early" in res.records[2].spec        # unlabelled fence
    assert "pick_up" not in res.records[3].spec                 # draft + correction: the last spec wins


def test_names_are_normalized_onto_the_vocabulary(api):
    rec = run(api, ["A man sits down on a chair and looks at his phone."]).records[0]
    assert rec.status == "ok"
    assert rec.renamed == {"sitting_on": "sitting on", "is_looking_at": "looking at", "man": "person"}
    assert '"sitting on"(m, c)' in rec.spec and '"looking at"(m, p)' in rec.spec


def test_invalid_spec_fixed_in_one_repair_round(api):
    rec = run(api, ["A man grabs a bottle, then drinks from it."]).records[0]
    assert rec.status == "repaired" and rec.rounds == 2
    assert "touching(b, m)" in rec.spec
    # The repair request carried the checker's rendered diagnostics back to the model.
    assert api.message_requests == 2


def test_never_valid_is_reported_failed_with_diagnostics(api):
    rec = run(api, ["A person juggles three flaming torches."], max_repairs=2).records[0]
    assert rec.status == "failed" and rec.rounds == 3
    codes = {d.code for d in rec.diagnostics}
    assert {"E201", "E202"} <= codes  # unknown predicate juggling, unknown category flame
    assert "juggling" in rec.rendered and "error[E201]" in rec.rendered
    assert rec.spec and "juggling" in rec.spec  # the last attempt is kept for review, marked failed


def test_refusal(api):
    rec = run(api, ["Two people argue in a kitchen."]).records[0]
    assert rec.status == "failed" and rec.rounds == 1
    assert rec.diagnostics[0].code == "E703"
    assert rec.error.startswith("refused")
    assert api.message_requests == 1  # a refusal is not "repaired"


def test_429_then_success_via_sdk_retries(api):
    rec = run(api, ["A dog runs around a table."]).records[0]
    assert rec.status == "ok"
    statuses = [r["status"] for r in api.requests if r["path"] == "/v1/messages"]
    assert statuses == [429, 200]


def test_500_then_success_via_sdk_retries(api):
    rec = run(api, ["A woman closes a box."]).records[0]
    assert rec.status == "ok"
    assert [r["status"] for r in api.requests if r["path"] == "/v1/messages"] == [500, 200]


def test_persistent_500_fails_transiently_and_is_retried_next_run(api, tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    rec = run(api, ["A robot welds a car door."], cache=cache, max_retries=2).records[0]
    assert rec.status == "failed" and rec.transient
    assert rec.diagnostics[0].code == "E704" and "500" in rec.error
    assert api.message_requests == 3  # the first try and the SDK's two retries
    run(api, ["A robot welds a car door."], cache=cache, max_retries=0)
    assert api.message_requests == 4  # not cached: asked again


def test_no_spec_in_answer_then_repaired(api):
    rec = run(api, ["A cat sleeps on a chair."]).records[0]
    assert rec.status == "repaired" and rec.rounds == 2
    assert rec.renamed == {}


def test_second_run_is_served_from_cache(api, tmp_path):
    captions = ["A man picks up a cup from the table.", "A man grabs a bottle, then drinks from it.",
                "Two people argue in a kitchen."]
    cache = Cache(tmp_path / "c.sqlite")
    first = run(api, captions, cache=cache)
    sent = api.message_requests
    assert sent == 4 and first.fresh_usage.requests == 4
    second = run(api, captions, cache=cache)
    assert api.message_requests == sent  # nothing sent
    assert all(r.cache_hit for r in second.records)
    assert second.fresh_usage.requests == 0 and second.estimated_cost == 0
    assert [r.spec for r in second.records] == [r.spec for r in first.records]
    assert [r.status for r in second.records] == ["ok", "repaired", "failed"]


def test_duplicate_captions_are_asked_once(api):
    res = specs_from_captions([Caption("a", "A dog jumps onto the table."), Caption("b", "A dog jumps onto the table.")],
                              VOCAB, base_url=api.base_url)
    assert api.message_requests == 1
    assert [r.spec_name for r in res.records] == ["a", "b"]
    assert res.records[1].spec.startswith('spec b "A dog jumps onto the table."')


def test_missing_key_is_reported_before_any_work(monkeypatch, api):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        specs_from_captions(["A dog jumps onto the table."], VOCAB, base_url=api.base_url)
    assert api.requests == []


def test_rejected_key_stops_the_run(monkeypatch, api):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-wrong")
    with pytest.raises(FatalAPIError, match="credentials"):
        specs_from_captions(["A dog jumps onto the table."], VOCAB, base_url=api.base_url)


def test_key_is_never_stored(api, tmp_path):
    db = tmp_path / "c.sqlite"
    with Cache(db) as cache:
        res = run(api, ["A man picks up a cup from the table.", "Two people argue in a kitchen."], cache=cache)
    blobs = [p.read_bytes() for p in tmp_path.iterdir()]
    assert all(KEY.encode() not in b for b in blobs)
    assert KEY not in json.dumps([r.to_dict() for r in res.records])


def test_open_vocabulary(api):
    res = specs_from_captions([Caption("x", "A dog jumps onto the table.")], None, base_url=api.base_url)
    rec = res.records[0]
    assert rec.status == "ok" and rec.renamed == {"on_top_of": "on top of"}
    system = api_last_system(api)
    assert "There is no fixed vocabulary" in system


def api_last_system(api) -> str:
    # The fake API does not keep bodies; rebuild the prompt the run used instead.
    from stlspec.llm.prompt import build_prompt

    return build_prompt(None).text


def test_pathological_answers_fail_their_record_and_are_cached_as_failures(monkeypatch, tmp_path):
    # Issue 13 item 6: a model answer nested too deeply or with a huge next[k] fails that caption with
    # diagnostics (never an exception that kills the run), the validated failure is what the cache stores,
    # and a rerun replays the failure from the cache without asking again.
    bodies = {"A man walks in circles.": "not " * 5000 + "walking(m)",
              "A man walks much later.": "next[100000000] walking(m)",
              "A man walks far later.": "next[" + "9" * 400 + "] walking(m)",
              "A man walks very deep.": "eventually[0, 2] " * 3000 + "walking(m)"}
    script = {"captions": {cap: {"answers": ["```stl\nspec s {\n  exists m: person. " + body + "\n}\n```"]}
                           for cap, body in bodies.items()}}
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    cache = Cache(tmp_path / "c.sqlite")
    with FakeMessagesAPI(script, api_key=KEY) as server:
        first = run(server, list(bodies), cache=cache, max_repairs=0)
        asked = server.message_requests
        second = run(server, list(bodies), cache=cache, max_repairs=0)
        assert server.message_requests == asked  # served from the cache
    by_caption = {r.caption: r for r in first.records}
    assert by_caption["A man walks in circles."].status == "failed"
    assert by_caption["A man walks very deep."].status == "failed"
    for rec in first.records:
        assert rec.status in ("ok", "failed")
        if rec.status == "failed":
            assert rec.diagnostics and all(hasattr(d, "code") for d in rec.diagnostics)
    assert "E107" in {d.code for d in by_caption["A man walks in circles."].diagnostics}
    assert [(r.status, r.spec) for r in second.records] == [(r.status, r.spec) for r in first.records]
    assert all(r.cache_hit for r in second.records)
