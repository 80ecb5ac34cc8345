"""Response cache (keys, LRU, TTL, stream replay) and cost per request."""

from __future__ import annotations

import time
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from modelroute.sidecar.pipeline.cache import (
    ResponseCache,
    cache_key,
    chunks_to_completion,
    completion_to_chunks,
    is_cacheable,
)
from modelroute.sidecar.pipeline.cost import DEFAULT_PRICES, Price, PriceTable, cost_of

from .fakeclock import FakeClock

REQUEST: dict[str, Any] = {
    "model": "classify", "temperature": 0, "max_tokens": 16,
    "messages": [{"role": "system", "content": "You label tickets."}, {"role": "user", "content": "I was charged twice"}],
}
COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
        "role": "assistant", "content": "Checking.",
        "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]}}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
}


def test_cacheable_rules() -> None:
    assert is_cacheable(REQUEST)
    assert not is_cacheable({**REQUEST, "temperature": 0.7})
    assert not is_cacheable({k: v for k, v in REQUEST.items() if k != "temperature"})  # provider default is not 0
    assert is_cacheable({**REQUEST, "temperature": 0.7}, route_temperature=0)  # the route's params win
    assert not is_cacheable(REQUEST, route_temperature=0.5)
    assert is_cacheable({**REQUEST, "temperature": 1}, policy=True)
    assert not is_cacheable({**REQUEST, "n": 3}, policy=True)
    assert not is_cacheable({**REQUEST, "logprobs": True})


def test_key_ignores_transport_fields_and_key_order() -> None:
    base = cache_key("classify", "rev1", REQUEST)
    streamed = {**REQUEST, "stream": True, "stream_options": {"include_usage": True}, "user": "u1", "metadata": {"a": "b"}}
    assert cache_key("classify", "rev1", streamed) == base
    assert cache_key("classify", "rev1", dict(reversed(list(REQUEST.items())))) == base
    assert cache_key("classify", "rev2", REQUEST) != base  # new revision, new answers
    assert cache_key("other", "rev1", REQUEST) != base
    assert cache_key("classify", "rev1", {**REQUEST, "max_tokens": 17}) != base
    changed = {**REQUEST, "messages": [*REQUEST["messages"][:1], {"role": "user", "content": "I was charged once"}]}
    assert cache_key("classify", "rev1", changed) != base


def test_lru_ttl_and_counters() -> None:
    clock = FakeClock()
    cache = ResponseCache(max_entries=2, ttl=10, clock=clock)
    assert cache.get("a") is None
    cache.put("a", COMPLETION, target="mini")
    cache.put("b", COMPLETION, target="mini")
    entry = cache.get("a")
    assert entry is not None and entry.target == "mini" and entry.completion is COMPLETION
    cache.put("c", COMPLETION, target="mini")  # evicts b (a was used more recently)
    assert cache.get("b") is None and cache.get("a") is not None
    clock.now += 10
    assert cache.get("a") is None and len(cache) == 1  # expired entries are dropped on read
    cache.put("d", COMPLETION, target="mini", ttl=0)  # a route with ttl 0 caches nothing
    assert cache.get("d") is None
    assert cache.snapshot() == {"entries": 1, "maxEntries": 2, "hits": 2, "misses": 4, "evictions": 1, "hitRatio": 0.3333}


def test_stream_replay_round_trip() -> None:
    chunks = completion_to_chunks(COMPLETION, include_usage=True)
    for c in chunks:
        ChatCompletionChunk.model_validate(c)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == COMPLETION["usage"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    rebuilt = chunks_to_completion(chunks)
    ChatCompletion.model_validate(rebuilt)
    assert rebuilt["choices"][0]["message"] == COMPLETION["choices"][0]["message"]
    assert rebuilt["usage"] == COMPLETION["usage"] and rebuilt["id"] == "chatcmpl-1"
    assert completion_to_chunks(COMPLETION, include_usage=False)[-1]["choices"]


def test_chunks_to_completion_joins_fragments() -> None:
    def ch(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "c", "object": "chat.completion.chunk", "created": 2, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    out = chunks_to_completion([
        ch({"role": "assistant", "content": ""}), ch({"content": "bil"}), ch({"content": "ling"}), ch({}, "stop")])
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "billing"}
    assert "usage" not in out


def test_key_is_microseconds() -> None:
    request = {**REQUEST, "messages": [*REQUEST["messages"], {"role": "user", "content": "x" * 2000}]}
    n = 5000
    start = time.perf_counter()
    for _ in range(n):
        cache_key("classify", "rev1", request)
    per_us = (time.perf_counter() - start) / n * 1e6
    assert per_us < 200, per_us  # typically ~10 us


def test_cost() -> None:
    table = PriceTable({"my-vllm-model": Price(0.0, 0.0), "gpt-4o-mini": Price(0.2, 0.8)})
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 500_000, "total_tokens": 1_500_000}
    assert table.cost("gpt-4o-mini", usage) == pytest.approx(0.2 + 0.4)  # the config overrides the default
    assert table.cost("gpt-4o-mini-2024-07-18", usage) == pytest.approx(0.6)  # dated ids use the base price
    assert table.cost("gpt-4o-2024-08-06", usage) == pytest.approx(2.5 + 5.0)  # longest prefix, not gpt-4o-mini
    assert table.cost("my-vllm-model", usage) == 0.0
    assert table.cost("unknown-model", usage) is None
    assert table.cost("models/gemini-2.5-flash", None) == 0.0
    cached = {"prompt_tokens": 1_000_000, "completion_tokens": 0,
              "prompt_tokens_details": {"cached_tokens": 600_000, "cache_write_tokens": 100_000}}
    # 300k fresh at $1, 600k cache reads at $0.10, 100k cache writes at $1.25.
    assert cost_of(DEFAULT_PRICES["claude-haiku-4-5"], cached) == pytest.approx(0.3 + 0.06 + 0.125)
    assert cost_of(Price(1.0, 2.0), cached) == pytest.approx(1.0)  # no cache prices: input price
