"""A local fake of the Messages API (and Message Batches API) that replays recorded answers.

It exists so that everything in :mod:`stlspec.llm` can be exercised through the
*real* ``anthropic`` SDK without network access or an API key: the tests use
it, and so can you, to try ``stlspec from-captions`` offline::

    python -m stlspec.llm.fakeapi tests/fixtures/llm/answers.json --port 8765 &
    ANTHROPIC_API_KEY=fake stlspec from-captions captions.jsonl -o out.stl \\
        --base-url http://127.0.0.1:8765

The *script* (a JSON object) maps captions to what the "model" does::

    {"captions": {
       "A man picks up a cup.": {"answers": ["```stl\\nspec s { … }\\n```"]},
       "…": {"answers": ["bad", "good"]},           # one answer per round (repairs)
       "…": {"errors": [429]},                      # first attempt of each request fails
       "…": {"always_error": 500},                  # every attempt fails
       "…": {"refusal": true}}}                     # stop_reason "refusal"

A request is matched to the longest script caption that occurs in its first
user message; the round is the number of assistant turns already in the
conversation. Unknown captions get a 400, so a test that forgot a recording
fails loudly. The server counts every request and every *answered* request
body (:attr:`FakeMessagesAPI.answered`), which is how the tests prove that a
resumed run asks nothing twice. ``block_after=k`` makes the server stop
answering after ``k`` answered message requests (it holds the connection open
until :meth:`unblock`), to simulate a run killed in the middle.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeMessagesAPI", "main"]


def _body_key(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _first_user_text(messages: list[dict]) -> str:
    for m in messages:
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            return "".join(b.get("text", "") for b in c if isinstance(b, dict))
    return ""


def _error(status: int, kind: str, message: str) -> tuple[int, dict]:
    return status, {"type": "error", "error": {"type": kind, "message": message}}


_ERROR_KINDS = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


class FakeMessagesAPI:
    """A threaded HTTP server on 127.0.0.1 speaking enough of the Messages API for stlspec."""

    def __init__(self, script: dict, *, port: int = 0, api_key: str | None = None,
                 batch_polls: int = 2, block_after: int | None = None):
        self.script = script.get("captions", script)
        self.api_key = api_key
        self.batch_polls = batch_polls
        self.block_after = block_after
        self.requests: list[dict] = []          # every request: method, path, status
        self.answered: Counter[str] = Counter()  # body key -> times answered with 200
        self.attempts: Counter[str] = Counter()  # body key -> attempts (for transient errors)
        self.blocked = threading.Event()
        self._unblock = threading.Event()
        self._batches: dict[str, dict] = {}
        self._prompt_cache: set[str] = set()
        self._lock = threading.Lock()
        self._n = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> "FakeMessagesAPI":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._unblock.set()
        self._server.shutdown()
        self._server.server_close()

    def unblock(self) -> None:
        self.block_after = None
        self._unblock.set()

    def __enter__(self) -> "FakeMessagesAPI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def message_requests(self) -> int:
        """How many POST /v1/messages requests arrived (retries included)."""
        return sum(1 for r in self.requests if r["path"] == "/v1/messages")

    # ------------------------------------------------------------- replies

    def _entry(self, body: dict) -> dict | None:
        text = _first_user_text(body.get("messages", []))
        best = None
        for caption, entry in self.script.items():
            if caption in text and (best is None or len(caption) > len(best[0])):
                best = (caption, entry)
        return best[1] if best else None

    def _message(self, body: dict, entry: dict) -> dict:
        round_ = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        with self._lock:
            self._n += 1
            n = self._n
        refusal = bool(entry.get("refusal"))
        if refusal:
            text = entry.get("text", "I can't help with that request.")
        else:
            answers = entry.get("answers") or [""]
            text = answers[min(round_, len(answers) - 1)]
        return {
            "id": f"msg_fake_{n:05d}", "type": "message", "role": "assistant", "model": body.get("model"),
            "content": [{"type": "text", "text": text}],
            "stop_reason": "refusal" if refusal else entry.get("stop_reason", "end_turn"),
            "stop_sequence": None,
            "stop_details": {"type": "refusal", "category": None, "explanation": None} if refusal else None,
            "usage": self._usage(body, text),
        }

    def _usage(self, body: dict, text: str) -> dict:
        """Token counts at ~4 characters per token, with prompt caching of a ``cache_control``-marked system."""
        total = len(json.dumps(body)) // 4
        system = body.get("system")
        cached = 0
        if isinstance(system, list) and any(isinstance(b, dict) and b.get("cache_control") for b in system):
            cached = len(json.dumps(system)) // 4
        usage = {"input_tokens": total - cached, "output_tokens": len(text) // 4 + 1,
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if cached:
            key = _body_key({"system": system, "model": body.get("model")})
            with self._lock:
                first = key not in self._prompt_cache
                self._prompt_cache.add(key)
            usage["cache_creation_input_tokens" if first else "cache_read_input_tokens"] = cached
        return usage

    def _answer_message(self, body: dict) -> tuple[int, dict, dict]:
        entry = self._entry(body)
        if entry is None:
            return (*_error(400, "invalid_request_error", "fake API: no recorded answer for this caption"), {})
        key = _body_key(body)
        with self._lock:
            self.attempts[key] += 1
            attempt = self.attempts[key]
        fast_retry = {"retry-after-ms": "5"}  # the SDK honours it: tests retry in milliseconds
        if entry.get("always_error"):
            status = int(entry["always_error"])
            return (*_error(status, _ERROR_KINDS.get(status, "api_error"), "fake API: scripted failure"), fast_retry)
        errors = entry.get("errors", [])
        if attempt <= len(errors):
            status = int(errors[attempt - 1])
            return (*_error(status, _ERROR_KINDS.get(status, "api_error"), "fake API: scripted transient failure"),
                    fast_retry)
        with self._lock:
            self.answered[key] += 1
        return 200, self._message(body, entry), {}

    def _create_batch(self, body: dict) -> dict:
        with self._lock:
            batch_id = f"msgbatch_fake_{len(self._batches) + 1:04d}"
        results = []
        for req in body.get("requests", []):
            params = req["params"]
            entry = self._entry(params)
            if entry is None or entry.get("always_error"):
                result = {"type": "errored", "error": {"type": "error", "error": {
                    "type": "invalid_request_error" if entry is None else "api_error",
                    "message": "fake API: no recorded answer" if entry is None else "fake API: scripted failure"}}}
            else:
                with self._lock:
                    self.answered[_body_key(params)] += 1
                result = {"type": "succeeded", "message": self._message(params, entry)}
            results.append({"custom_id": req["custom_id"], "result": result})
        results.reverse()  # results come back out of order, as the real API allows
        batch = {"id": batch_id, "type": "message_batch", "processing_status": "in_progress",
                 "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-02T00:00:00Z",
                 "request_counts": {"processing": len(results), "succeeded": 0, "errored": 0,
                                    "canceled": 0, "expired": 0},
                 "results_url": None}
        self._batches[batch_id] = {"batch": batch, "results": results, "polls": 0}
        return batch

    def _retrieve_batch(self, batch_id: str) -> dict | None:
        state = self._batches.get(batch_id)
        if state is None:
            return None
        state["polls"] += 1
        batch = dict(state["batch"])
        if state["polls"] >= self.batch_polls:
            ok = sum(r["result"]["type"] == "succeeded" for r in state["results"])
            batch.update(processing_status="ended", ended_at="2026-01-01T01:00:00Z",
                         results_url=f"{self.base_url}/v1/messages/batches/{batch_id}/results",
                         request_counts={"processing": 0, "succeeded": ok, "errored": len(state["results"]) - ok,
                                         "canceled": 0, "expired": 0})
        return batch

    # ------------------------------------------------------------- handler

    def _handler_class(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: Any, headers: dict | None = None, jsonl: bool = False) -> None:
                data = ("".join(json.dumps(x) + "\n" for x in payload) if jsonl else json.dumps(payload)).encode()
                self.send_response(status)
                self.send_header("content-type", "application/binary" if jsonl else "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_fake_{len(api.requests)}")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass  # the client went away (killed): nothing to do

            def _authorised(self) -> bool:
                auth = self.headers.get("authorization", "") or self.headers.get("x-api-key", "")
                if not auth:
                    return False
                if api.api_key is None:
                    return True
                return auth in (f"Bearer {api.api_key}", api.api_key)

            def _log(self, status: int) -> None:
                with api._lock:
                    api.requests.append({"method": self.command, "path": self.path.split("?")[0],
                                         "status": status, "time": time.time()})

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                path = self.path.split("?")[0]
                if not self._authorised():
                    status, payload = _error(401, "authentication_error", "invalid x-api-key")
                    self._log(status)
                    return self._send(status, payload)
                if path == "/v1/messages":
                    if api.block_after is not None and sum(api.answered.values()) >= api.block_after:
                        self._log(0)
                        api.blocked.set()
                        api._unblock.wait(60)  # hold the connection: the client is about to be killed
                        status, payload = _error(529, "overloaded_error", "fake API: was blocked")
                        return self._send(status, payload)
                    status, payload, headers = api._answer_message(body)
                    self._log(status)
                    return self._send(status, payload, headers)
                if path == "/v1/messages/batches":
                    self._log(200)
                    return self._send(200, api._create_batch(body))
                self._log(404)
                self._send(*_error(404, "not_found_error", f"fake API: no route {path}"))

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?")[0]
                if not self._authorised():
                    self._log(401)
                    return self._send(*_error(401, "authentication_error", "invalid x-api-key"))
                parts = path.strip("/").split("/")
                if parts[:3] == ["v1", "messages", "batches"] and len(parts) in (4, 5):
                    batch_id = parts[3]
                    if len(parts) == 4:
                        batch = api._retrieve_batch(batch_id)
                        if batch is not None:
                            self._log(200)
                            return self._send(200, batch)
                    elif parts[4] == "results" and batch_id in api._batches:
                        self._log(200)
                        return self._send(200, api._batches[batch_id]["results"], jsonl=True)
                self._log(404)
                self._send(*_error(404, "not_found_error", f"fake API: no route {path}"))

        return Handler


def main(argv: list[str] | None = None) -> int:
    """Run the fake server in the foreground (``python -m stlspec.llm.fakeapi SCRIPT.json``)."""
    parser = argparse.ArgumentParser(prog="python -m stlspec.llm.fakeapi", description=__doc__.split("\n\n")[0])
    parser.add_argument("script", help="JSON file of recorded answers")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    with open(args.script, encoding="utf-8") as fh:
        script = json.load(fh)
    api = FakeMessagesAPI(script, port=args.port)
    print(f"fake Messages API on {api.base_url} (Ctrl-C to stop)", flush=True)
    try:
        api._server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
