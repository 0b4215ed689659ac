"""``batch=True``: the Message Batches API through the real SDK, against the fake server.

The fake server returns batch results in *reverse* order, so these tests prove
that results are matched by ``custom_id`` only; a repair round becomes a second
batch; a batch submitted by a run that was then interrupted is resumed (polled
and collected), not submitted again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stlspec.llm import Cache, Caption, specs_from_captions
from stlspec.llm.fakeapi import FakeMessagesAPI

pytest.importorskip("anthropic")

FIX = Path(__file__).parent / "fixtures" / "llm"
SCRIPT = json.loads((FIX / "answers.json").read_text(encoding="utf-8"))
VOCAB = str(FIX / "vocab.stl")
KEY = "sk-ant-test-batch"

CAPTIONS = {
    "b1": ("A man picks up a cup from the table.", "holding(m, c) @late"),
    "b2": ("A boy kicks a ball, then runs after it.", "kicking(b, x) @early"),
    "b3": ("A dog jumps onto the table.", '"on top of"(d, t) @late'),
    "b4": ("A person touches a ball and then a cup.", "touching(p, c) @late"),
    "b5": ("A man grabs a bottle, then drinks from it.", "touching(b, m)"),  # needs a repair round
}


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with FakeMessagesAPI(SCRIPT, api_key=KEY, batch_polls=2) as server:
        yield server


def _posts(api, path="/v1/messages/batches"):
    return sum(1 for r in api.requests if r["method"] == "POST" and r["path"] == path)


def test_batch_results_out_of_order_are_matched_by_custom_id(api, tmp_path):
    caps = [Caption(cid, text) for cid, (text, _) in CAPTIONS.items()]
    lines = []
    res = specs_from_captions(caps, VOCAB, base_url=api.base_url, batch=True, poll_interval=0.01,
                              cache=Cache(tmp_path / "c.sqlite"), status=lines.append)
    for rec, (cid, (text, expected)) in zip(res.records, CAPTIONS.items()):
        assert rec.caption_id == cid and rec.caption == text
        assert expected in rec.spec, (cid, rec.spec)
    assert [r.status for r in res.records] == ["ok", "ok", "ok", "ok", "repaired"]
    assert _posts(api) == 2                      # first answers, then one repair round
    assert _posts(api, "/v1/messages") == 0      # nothing went through the per-message endpoint
    assert res.batch and res.fresh_usage.requests == 6
    assert any("submitted batch" in ln for ln in lines)


def test_batch_errored_entries_fail_transiently(api):
    res = specs_from_captions([Caption("x", "A robot welds a car door."), Caption("y", "A dog jumps onto the table.")],
                              VOCAB, base_url=api.base_url, batch=True, poll_interval=0.01)
    bad, good = res.records
    assert bad.status == "failed" and bad.transient and bad.diagnostics[0].code == "E705"
    assert good.status == "ok"


class Interrupted(Exception):
    pass


def test_interrupted_batch_run_resumes_polling_without_resubmitting(api, tmp_path):
    caps = [Caption(cid, text) for cid, (text, _) in list(CAPTIONS.items())[:4]]
    db = tmp_path / "c.sqlite"

    def stop_after_submit(line: str) -> None:
        if line.startswith("submitted batch"):
            raise Interrupted(line)  # the process "dies" right after submitting

    with pytest.raises(Interrupted):
        specs_from_captions(caps, VOCAB, base_url=api.base_url, batch=True, poll_interval=0.01,
                            cache=Cache(db), status=stop_after_submit)
    assert _posts(api) == 1
    with Cache(db) as cache:
        assert len(cache.open_batches()) == 1
    res = specs_from_captions(caps, VOCAB, base_url=api.base_url, batch=True, poll_interval=0.01, cache=Cache(db))
    assert [r.status for r in res.records] == ["ok"] * 4
    assert _posts(api) == 1                        # the same batch was collected, not a new one
    assert max(api.answered.values()) == 1         # no request was answered (paid) twice
    with Cache(db) as cache:
        assert cache.open_batches() == {}
    # and a third run needs no API at all
    before = len(api.requests)
    res = specs_from_captions(caps, VOCAB, base_url=api.base_url, batch=True, cache=Cache(db))
    assert len(api.requests) == before and all(r.cache_hit for r in res.records)
