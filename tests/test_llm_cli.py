"""``stlspec from-captions`` end to end, as a new user would run it, against the fake Messages API.

* the 20-caption file: a useful summary, a ``.stl`` that compiles, a JSONL report with one record per caption;
* a second run served entirely from the cache (no request reaches the server);
* a run killed (SIGKILL) in the middle and resumed: no request is answered twice;
* a missing key: a clear error before anything happens.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import stlspec
from stlspec.cli import main
from stlspec.llm.fakeapi import FakeMessagesAPI

pytest.importorskip("anthropic")

FIX = Path(__file__).parent / "fixtures" / "llm"
SCRIPT = json.loads((FIX / "answers.json").read_text(encoding="utf-8"))
CAPTIONS = FIX / "captions20.jsonl"
VOCAB = FIX / "vocab.stl"
KEY = "sk-ant-test-cli"


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with FakeMessagesAPI(SCRIPT, api_key=KEY) as server:
        yield server


def _args(api, tmp_path, *extra):
    return ["from-captions", str(CAPTIONS), "-o", str(tmp_path / "out.stl"), "--vocab", str(VOCAB),
            "--cache", str(tmp_path / "cache.sqlite"), "--base-url", api.base_url, "--no-progress", *extra]


def test_from_captions_20_then_all_from_cache(api, tmp_path, capsys):
    code = main(_args(api, tmp_path))
    out = capsys.readouterr().out
    assert code == 1  # two captions failed (a refusal, one never valid); the outputs are still written
    assert "20 captions: 17 ok, 1 repaired, 2 failed" in out
    assert "API requests" in out and "estimated cost: $" in out
    assert "vid014: E20" in out and "vid015: refused" in out
    sent = api.message_requests
    assert sent == 25  # 20 first answers + 1 repair + 2 repairs + one 429 and one 500 retried by the SDK

    spec_file = tmp_path / "out.stl"
    core = stlspec.compile_file(str(spec_file))  # includes the vocabulary by a relative path
    assert len(core.specs) == 18
    assert "// FAILED vid015" in spec_file.read_text()
    report = [json.loads(line) for line in (tmp_path / "out.report.jsonl").read_text().splitlines()]
    assert [r["caption_id"] for r in report] == [f"vid{i:03d}" for i in range(1, 21)]
    assert {r["status"] for r in report} == {"ok", "repaired", "failed"}
    assert all(set(r) >= {"caption_id", "caption", "spec", "status", "diagnostics", "model", "rounds", "usage",
                          "cache_hit"} for r in report)

    code = main(_args(api, tmp_path))
    out = capsys.readouterr().out
    assert code == 1
    assert "cache: all 20 served from" in out and "nothing paid" in out
    assert "estimated cost: $0.0000 this run" in out
    assert api.message_requests == sent  # nothing reached the server


def test_missing_key_is_a_clear_error_before_any_work(monkeypatch, api, tmp_path, capsys):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert main(_args(api, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "ANTHROPIC_API_KEY is not set" in err
    assert api.requests == [] and not (tmp_path / "cache.sqlite").exists()


def test_dry_run_needs_no_key_and_sends_nothing(monkeypatch, api, tmp_path, capsys):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert main(_args(api, tmp_path, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "20 captions (20 distinct): 0 cached, 20 to ask" in out and "$" in out
    assert api.requests == []


def test_bad_caption_file(api, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "caption": "ok"}\n{"id": 2, "caption": \n')
    args = _args(api, tmp_path)
    args[1] = str(bad)
    assert main(args) == 1
    assert "bad.jsonl:2:22: error[E706]: not valid JSON" in capsys.readouterr().err


def _run(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stlspec", *argv], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_exit_statuses_follow_the_cli_convention(tmp_path):
    """docs/cli.md: 1 for an input or output that cannot be used (as in every subcommand), 2 for bad usage."""
    caps = tmp_path / "caps.jsonl"
    caps.write_text('{"id": "a", "caption": "a person walks"}\n')
    bad_vocab = tmp_path / "v.stl"
    bad_vocab.write_text("unary walking(persn)\n")
    bad_syn = tmp_path / "syn.json"
    bad_syn.write_text('{"grasping": 3}')
    base = ["from-captions", str(caps), "-o", str(tmp_path / "o.stl"), "--cache", str(tmp_path / "c.sqlite")]
    cases = [
        (1, [*base, "--vocab", str(bad_vocab), "--dry-run"], "v.stl:1:15: error[E202]"),
        (1, [*base, "--synonyms", str(bad_syn), "--dry-run"], "error[E706]: synonyms file: 'grasping'"),
        (1, [*base, "--synonyms", str(tmp_path), "--dry-run"], "error[E706]"),
        (1, ["from-captions", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o.stl"), "--dry-run"],
         "error[E706]"),
        (1, [*base[:3], str(tmp_path), *base[4:], "--dry-run"], "error[E804]: cannot write"),
        (1, [*base[:5], str(tmp_path), "--dry-run"], "error[E706]: cannot use"),
        (2, [*base, "--price", "3", "--dry-run"], "argument --price: '3': expected two numbers"),
        (2, [*base, "--price", "nan,1", "--dry-run"], "prices must be finite"),
        (2, base, "ANTHROPIC_API_KEY is not set"),
        (0, [*base, "--price", "3,15", "--dry-run"], ""),
    ]
    for status, argv, message in cases:
        proc = _run(*argv, env={"ANTHROPIC_API_KEY": ""})
        assert (proc.returncode, message in proc.stderr) == (status, True), (argv, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.stl").exists()


def test_killed_run_resumes_without_paying_twice(tmp_path, monkeypatch):
    """SIGKILL a real CLI process while a request is in flight, rerun, and count answers per request."""
    captions = tmp_path / "c.jsonl"
    lines = CAPTIONS.read_text().splitlines()
    captions.write_text("\n".join(lines[:13]) + "\n")  # includes vid013, which needs a repair round
    out, cache = tmp_path / "out.stl", tmp_path / "cache.sqlite"
    env = {**os.environ, "ANTHROPIC_API_KEY": KEY}
    with FakeMessagesAPI(SCRIPT, api_key=KEY, block_after=7) as api:
        cmd = [sys.executable, "-m", "stlspec", "from-captions", str(captions), "-o", str(out), "--vocab",
               str(VOCAB), "--cache", str(cache), "--base-url", api.base_url, "--concurrency", "1", "--no-progress"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert api.blocked.wait(60), proc.communicate(timeout=5)
            proc.send_signal(signal.SIGKILL)  # no chance to clean up: only what was committed survives
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert sum(api.answered.values()) == 7 and not out.exists()
        api.unblock()
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        assert main(cmd[3:]) == 0
        assert max(api.answered.values()) == 1         # no request was answered twice
        assert sum(api.answered.values()) == 14        # 13 captions + 1 repair round, in both runs together
    core = stlspec.compile_file(str(out))
    assert len(core.specs) == 13
