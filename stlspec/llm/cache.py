"""The durable SQLite cache that makes runs resumable and never pays twice.

Three tables:

``responses``
    One row per *answered API request*, keyed by the SHA-256 of the request's
    parameters (model, system prompt, messages, max_tokens). Every answer is
    written (and committed) the moment it arrives, before the next request is
    sent, so a run killed at any point has paid only for what is stored here;
    a rerun replays stored answers instead of asking again. This holds in the
    middle of a repair conversation too.
``records``
    One finished :class:`~stlspec.llm.records.SpecRecord` per
    (model, prompt version, caption, vocabulary hash) — the key the design asks
    for. A rerun returns these without even re-validating. Records that failed
    for a *transient* reason (API errors) are never stored, so they are retried.
``batches`` / ``batch_requests``
    Message Batches submitted and not yet collected, with the exact
    ``custom_id`` → request key map, so a restarted ``--batch`` run resumes
    polling the batch it already paid for instead of submitting a new one.

The API key is never part of a key or a row. Connections are shared between
threads under a lock (SQLite serialises writers anyway); WAL mode keeps
readers from blocking.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

__all__ = ["Cache", "request_key", "record_key", "default_cache_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, reply TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, prompt_version TEXT NOT NULL, caption TEXT NOT NULL,
    vocab_hash TEXT NOT NULL, record TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, created REAL NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batch_requests (
    batch_id TEXT NOT NULL, custom_id TEXT NOT NULL, request_key TEXT NOT NULL,
    PRIMARY KEY (batch_id, custom_id));
"""


def _sha(obj: Any) -> str:
    data = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def request_key(params: dict) -> str:
    """The cache key of one Messages API request (its parameters, canonical JSON)."""
    return _sha(params)


def record_key(model: str, prompt_version: str, caption: str, vocab_hash: str) -> str:
    """The cache key of one finished record."""
    return _sha([model, prompt_version, caption, vocab_hash])


def default_cache_path() -> Path:
    """``$STLSPEC_CACHE`` or ``$XDG_CACHE_HOME/stlspec/llm.sqlite`` (``~/.cache/…``)."""
    if os.environ.get("STLSPEC_CACHE"):
        return Path(os.environ["STLSPEC_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "stlspec" / "llm.sqlite"


_CACHE_HINT = "pass --cache the path of an SQLite file (created if missing), or a new file name"


class Cache:
    """SQLite-backed cache; ``Cache(":memory:")`` for a throwaway one."""

    def __init__(self, path: str | os.PathLike = ":memory:"):
        """Open (creating it and its folder if missing) the cache at ``path``.

        A path that cannot hold the cache -- a directory, a device, a file that
        is not an SQLite database, a folder that cannot be created -- raises
        :class:`~stlspec.diagnostics.StlError` E706 naming it.
        """
        from stlspec.diagnostics import StlError, llm_unreadable_input

        self.path = str(path)
        self._lock = threading.Lock()
        try:
            if self.path != ":memory:":
                if os.path.exists(self.path) and not os.path.isfile(self.path):
                    kind = "a directory" if os.path.isdir(self.path) else "not a regular file"
                    raise StlError([llm_unreadable_input(f"cannot use {self.path} as the cache: it is {kind}",
                                                         path=self.path, hints=(_CACHE_HINT,))])
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
            with self._lock:
                if self.path != ":memory:":
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.executescript(_SCHEMA)
                self._db.commit()
        except (sqlite3.Error, OSError) as exc:
            msg = getattr(exc, "strerror", None) or str(exc)
            raise StlError([llm_unreadable_input(f"cannot use {self.path} as the cache: {msg}", path=self.path,
                                                 hints=(_CACHE_HINT,))]) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Cache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _one(self, sql: str, args: Iterable[Any]) -> tuple | None:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchone()

    def _write(self, sql: str, args: Iterable[Any]) -> None:
        with self._lock:
            self._db.execute(sql, tuple(args))
            self._db.commit()  # committed at once: a kill right after loses nothing

    # ------------------------------------------------------------- responses

    def get_response(self, key: str) -> dict | None:
        row = self._one("SELECT reply FROM responses WHERE key = ?", (key,))
        return json.loads(row[0]) if row else None

    def put_response(self, key: str, model: str, reply: dict) -> None:
        self._write("INSERT OR REPLACE INTO responses (key, model, reply, created) VALUES (?, ?, ?, ?)",
                    (key, model, json.dumps(reply, ensure_ascii=False), time.time()))

    def drop_response(self, key: str) -> None:
        self._write("DELETE FROM responses WHERE key = ?", (key,))

    # --------------------------------------------------------------- records

    def get_record(self, key: str) -> dict | None:
        row = self._one("SELECT record FROM records WHERE key = ?", (key,))
        return json.loads(row[0]) if row else None

    def put_record(self, key: str, *, model: str, prompt_version: str, caption: str, vocab_hash: str,
                   record: dict) -> None:
        self._write(
            "INSERT OR REPLACE INTO records (key, model, prompt_version, caption, vocab_hash, record, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, model, prompt_version, caption, vocab_hash, json.dumps(record, ensure_ascii=False), time.time()))

    def drop_record(self, key: str) -> None:
        self._write("DELETE FROM records WHERE key = ?", (key,))

    # --------------------------------------------------------------- batches

    def add_batch(self, batch_id: str, custom_ids: dict[str, str]) -> None:
        """Remember a submitted batch and its ``custom_id → request key`` map (one transaction)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO batches (batch_id, created, state) VALUES (?, ?, 'open')",
                             (batch_id, time.time()))
            self._db.executemany(
                "INSERT OR REPLACE INTO batch_requests (batch_id, custom_id, request_key) VALUES (?, ?, ?)",
                [(batch_id, cid, key) for cid, key in custom_ids.items()])
            self._db.commit()

    def open_batches(self) -> dict[str, dict[str, str]]:
        """``{batch_id: {custom_id: request_key}}`` for batches not yet collected."""
        with self._lock:
            rows = self._db.execute(
                "SELECT b.batch_id, r.custom_id, r.request_key FROM batches b JOIN batch_requests r"
                " ON b.batch_id = r.batch_id WHERE b.state = 'open' ORDER BY b.created").fetchall()
        out: dict[str, dict[str, str]] = {}
        for batch_id, cid, key in rows:
            out.setdefault(batch_id, {})[cid] = key
        return out

    def close_batch(self, batch_id: str, state: str = "collected") -> None:
        self._write("UPDATE batches SET state = ? WHERE batch_id = ?", (state, batch_id))

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {t: self._db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                    for t in ("responses", "records", "batches")}
