"""The thin layer over the official ``anthropic`` SDK.

The SDK is imported here, lazily, and nowhere else: ``import stlspec`` and
``import stlspec.llm`` work without it. Rate limits (429), overload (529) and
server errors (5xx) are retried *by the SDK* (exponential backoff honouring
``retry-after``), so this module only decides what a failure that survived the
retries means: an authentication or permission problem, or an unknown model,
stops the run (every other request would fail the same way); anything else
fails one caption, transiently (it is not cached and a rerun tries again).

The API key comes from ``ANTHROPIC_API_KEY`` only and is passed to the SDK
explicitly, so no profile or other credential source is consulted by
surprise. It is never printed, logged, cached or written anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LLMError", "MissingAPIKeyError", "FatalAPIError", "TransientAPIError", "Reply",
           "require_api_key", "make_client", "send", "reply_from_message"]

API_KEY_ENV = "ANTHROPIC_API_KEY"


class LLMError(Exception):
    """Base class of the errors :mod:`stlspec.llm` raises."""


class MissingAPIKeyError(LLMError):
    def __init__(self) -> None:
        super().__init__(
            f"{API_KEY_ENV} is not set. Create a key at https://console.anthropic.com/ and export it:\n"
            f"    export {API_KEY_ENV}=...\n"
            "(stlspec reads the key only from this variable and never stores it.)")


class FatalAPIError(LLMError):
    """A failure that would hit every request (bad key, no permission, unknown model)."""


class TransientAPIError(LLMError):
    """A failure of one request that survived the SDK's retries; the caption is retried next run."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What we keep of one Messages API response (the cache stores exactly this)."""

    text: str
    stop_reason: str | None
    model: str
    usage: dict = field(default_factory=dict)
    id: str = ""
    refusal_explanation: str | None = None

    def to_dict(self) -> dict:
        return {"text": self.text, "stop_reason": self.stop_reason, "model": self.model,
                "usage": dict(self.usage), "id": self.id, "refusal_explanation": self.refusal_explanation}

    @classmethod
    def from_dict(cls, d: dict) -> "Reply":
        return cls(text=d.get("text", ""), stop_reason=d.get("stop_reason"), model=d.get("model", ""),
                   usage=dict(d.get("usage") or {}), id=d.get("id", ""),
                   refusal_explanation=d.get("refusal_explanation"))


def require_api_key() -> str:
    """The key from ``ANTHROPIC_API_KEY``, or :class:`MissingAPIKeyError`."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise MissingAPIKeyError()
    return key


def make_client(*, base_url: str | None = None, max_retries: int = 6, timeout: float = 300.0) -> Any:
    """An ``anthropic.Anthropic`` client with the key from the environment."""
    key = require_api_key()  # before importing anything: a missing key is the first thing reported
    try:
        import anthropic
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise LLMError("the `anthropic` package is needed: pip install 'stlspec[llm]'") from exc
    return anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=max_retries, timeout=timeout)


def _usage_dict(usage: Any) -> dict:
    if usage is None:
        return {}
    return {k: int(getattr(usage, k, 0) or 0) for k in
            ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}


def reply_from_message(message: Any) -> Reply:
    """Convert an SDK ``Message`` to a :class:`Reply`."""
    text = "".join(getattr(b, "text", "") for b in (message.content or []) if getattr(b, "type", "") == "text")
    details = getattr(message, "stop_details", None)
    return Reply(text=text, stop_reason=message.stop_reason, model=str(message.model), usage=_usage_dict(message.usage),
                 id=message.id, refusal_explanation=getattr(details, "explanation", None) if details else None)


def send(client: Any, params: dict) -> Reply:
    """One Messages API call (the SDK retries transient failures itself)."""
    import anthropic

    try:
        message = client.messages.create(**params)
    except (anthropic.AuthenticationError, anthropic.PermissionDeniedError) as exc:
        raise FatalAPIError(f"the API rejected the credentials ({exc.status_code}): check {API_KEY_ENV}") from None
    except anthropic.NotFoundError as exc:
        raise FatalAPIError(f"not found ({exc.status_code}): is the model name {params.get('model')!r} right? "
                            f"{_message_of(exc)}") from None
    except anthropic.APIStatusError as exc:
        raise TransientAPIError(f"HTTP {exc.status_code} after retries: {_message_of(exc)}") from None
    except anthropic.APIConnectionError as exc:
        raise TransientAPIError(f"connection failed after retries: {exc}") from None
    return reply_from_message(message)


def _message_of(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(getattr(exc, "message", exc))
