"""Token accounting and cost estimates.

Prices are US dollars per million tokens, from Anthropic's public price list at
the time of writing. They change; the numbers here are *estimates* for planning
a run, not an invoice. Models are matched by family prefix so that dated
snapshots (``claude-haiku-4-5-20251001``) find their price; a model we have no
price for gives ``None`` and the CLI says "cost unknown" rather than guessing.
Pass ``prices=`` (or ``--price IN,OUT`` on the CLI) to override.

Prompt caching: cache writes cost 1.25× the input price, cache reads 0.1×.
The Message Batches API halves every price.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Usage", "Price", "PRICES", "price_for", "estimate_cost"]


@dataclass(frozen=True, slots=True)
class Price:
    input: float   # $ per million input tokens
    output: float  # $ per million output tokens


#: Family prefix → price. Longest matching prefix wins.
PRICES: dict[str, Price] = {
    "claude-haiku-4-5": Price(1.0, 5.0),
    "claude-haiku-": Price(1.0, 5.0),
    "claude-sonnet-4": Price(3.0, 15.0),
    "claude-sonnet-": Price(3.0, 15.0),
    "claude-opus-4-0": Price(15.0, 75.0),
    "claude-opus-4-1": Price(15.0, 75.0),
    "claude-opus-4-2025": Price(15.0, 75.0),
    "claude-opus-4-5": Price(5.0, 25.0),
    "claude-opus-4-6": Price(5.0, 25.0),
    "claude-opus-4-7": Price(5.0, 25.0),
    "claude-opus-4-8": Price(5.0, 25.0),
}

CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
BATCH_FACTOR = 0.5


@dataclass(slots=True)
class Usage:
    """Token counts, summed over requests."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    requests: int = field(default=0)

    def add(self, other: "Usage | dict") -> None:
        """Add another total, or one API response's ``usage`` (which counts as one request)."""
        d = other.to_dict() if isinstance(other, Usage) else other
        self.input_tokens += int(d.get("input_tokens") or 0)
        self.output_tokens += int(d.get("output_tokens") or 0)
        self.cache_creation_input_tokens += int(d.get("cache_creation_input_tokens") or 0)
        self.cache_read_input_tokens += int(d.get("cache_read_input_tokens") or 0)
        self.requests += int(d.get("requests", 1))

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def to_dict(self) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "requests": self.requests,
        }


def price_for(model: str, prices: dict[str, Price] | None = None) -> Price | None:
    """The price of ``model`` by longest matching family prefix, or ``None``."""
    table = PRICES if prices is None else prices
    best = None
    for prefix, price in table.items():
        if model.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, price)
    return best[1] if best else None


def estimate_cost(model: str, usage: Usage, *, batch: bool = False,
                  prices: dict[str, Price] | None = None) -> float | None:
    """Estimated dollars for ``usage`` on ``model``; ``None`` if the model has no known price."""
    price = price_for(model, prices)
    if price is None:
        return None
    dollars = (
        usage.input_tokens * price.input
        + usage.cache_creation_input_tokens * price.input * CACHE_WRITE_FACTOR
        + usage.cache_read_input_tokens * price.input * CACHE_READ_FACTOR
        + usage.output_tokens * price.output
    ) / 1e6
    return dollars * (BATCH_FACTOR if batch else 1.0)
