"""What a request cost: a price table per model applied to the reported usage.

Prices are USD per million tokens: ``input`` (uncached prompt tokens), ``output``
(completion tokens, reasoning included), ``cached_input`` (prompt tokens read from the
provider's cache; defaults to ``input``) and ``cache_write`` (Anthropic's cache creation;
defaults to ``input``; writes with a 1-hour TTL, ``cache_write_1h_tokens``, at ``cache_write_1h``,
by default 2x ``input`` as Anthropic prices them). Usage is the OpenAI shape the translators produce, where
``prompt_tokens`` already includes cached and cache-write tokens.

``DEFAULT_PRICES`` are public list prices for a few common small models (each provider's
``ProviderSpec.prices``), for convenience only: the config's price table overrides them (``PriceTable(overrides)``).
Model ids match exactly, then by the longest listed prefix (``claude-haiku-4-5-20251001``
uses ``claude-haiku-4-5``), after dropping a ``models/`` prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelroute.api.v1alpha1 import Target
from modelroute.api.v1alpha1.providers import PROVIDERS
from modelroute.api.v1alpha1.providers import Price as Price

Json = dict[str, Any]

PER = 1_000_000


# USD per 1M tokens, list prices: each provider's spec lists its models' (``ProviderSpec.prices``).
DEFAULT_PRICES: dict[str, Price] = {m: p for spec in PROVIDERS.values() for m, p in spec.prices.items()}


def cost_of(price: Price, usage: Json | None) -> float:
    """USD for one usage dict (OpenAI shape). Missing fields count as 0.

    The one cost formula (route cost in /stats and /metrics, traces, rollout evidence, eval
    reports). It runs once per attempt on every route, so usage without cache details is the
    short path."""
    if not usage:
        return 0.0
    prompt = usage.get("prompt_tokens") or 0
    fresh = prompt * price.input
    details = usage.get("prompt_tokens_details")
    if details:
        cached = details.get("cached_tokens") or 0
        written = details.get("cache_write_tokens") or 0
        hour = min(written, details.get("cache_write_1h_tokens") or 0)  # of written: Anthropic's 1-hour TTL
        fresh = (max(0, prompt - cached - written) * price.input
                 + cached * (price.input if price.cached_input is None else price.cached_input)
                 + (written - hour) * (price.input if price.cache_write is None else price.cache_write))
        if hour:
            fresh += hour * (2 * price.input if price.cache_write_1h is None else price.cache_write_1h)
    return (fresh + (usage.get("completion_tokens") or 0) * price.output) / PER


def target_price(target: Target, table: PriceTable) -> Price | None:
    """A target's price: its own ``pricing`` if set, else ``table``'s price of its model."""
    if target.pricing is not None:
        p = target.pricing
        return Price(p.input_per_million, p.output_per_million, p.cached_input_per_million, p.cache_write_per_million)
    return table.price(target.model)


class PriceTable:
    """Prices by model id: the defaults, overridden and extended by the config."""

    def __init__(self, overrides: Mapping[str, Price] | None = None, *, defaults: Mapping[str, Price] = DEFAULT_PRICES) -> None:
        self._prices: dict[str, Price] = {**defaults, **(overrides or {})}
        self._by_length = sorted(self._prices, key=len, reverse=True)
        self._memo: dict[str, Price | None] = {}

    def price(self, model: str) -> Price | None:
        """The price of a model id (exact, else the longest listed prefix), or None when unknown."""
        try:
            return self._memo[model]
        except KeyError:
            pass
        name = model[7:] if model.startswith("models/") else model
        found = self._prices.get(name)
        if found is None:
            found = next((self._prices[k] for k in self._by_length if name.startswith(k + "-")), None)
        if len(self._memo) < 4096:
            self._memo[model] = found
        return found

    def cost(self, model: str, usage: Json | None) -> float | None:
        """USD for one request on ``model``; None when the model has no price (report "unknown", not 0)."""
        price = self.price(model)
        return None if price is None else cost_of(price, usage)
