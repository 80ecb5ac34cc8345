"""Cache-read and cache-write prices, and rate-limit accounting of cached tokens, per provider.

Each provider reports cached tokens differently, and the translators turn every report into
OpenAI's shape (``prompt_tokens`` includes cached and written tokens):

* Anthropic: ``input_tokens`` EXCLUDES ``cache_read_input_tokens`` and ``cache_creation_input_tokens``;
* OpenAI: ``prompt_tokens`` INCLUDES ``prompt_tokens_details.cached_tokens``;
* Gemini: ``promptTokenCount`` INCLUDES ``cachedContentTokenCount``.

Expected figures are worked out in Decimal from the providers' published prices (the sources are
in ``ProviderSpec.prices``' comments): Anthropic cache writes 1.25x and reads 0.1x the base input
price (5-minute TTL); OpenAI gpt-4o-mini cached input $0.075/M against $0.15/M; Gemini 2.5 Flash
cached input $0.03/M against $0.30/M.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from modelroute.api.v1alpha1 import ApiKey, Provider, Target
from modelroute.sidecar.pipeline.cost import DEFAULT_PRICES, cost_of
from modelroute.sidecar.pipeline.limits import Limiters, TargetLimiter, usage_tokens
from modelroute.sidecar.translate.anthropic import usage_to_chat as anthropic_usage
from modelroute.sidecar.translate.gemini import usage_to_chat as gemini_usage
from modelroute.sidecar.translate.openai_responses import usage_to_chat as responses_usage

from .fakeclock import FakeClock

M = Decimal(1_000_000)


def _usd(*terms: tuple[int, str]) -> float:
    """Sum of tokens x USD-per-million, exactly, as a float."""
    return float(sum((Decimal(n) * Decimal(price) for n, price in terms), Decimal(0)) / M)


def test_published_cache_prices() -> None:
    haiku, mini, flash = DEFAULT_PRICES["claude-haiku-4-5"], DEFAULT_PRICES["gpt-4o-mini"], DEFAULT_PRICES["gemini-2.5-flash"]
    assert (haiku.input, haiku.cache_write, haiku.cached_input) == (1.00, 1.25, 0.10)
    assert Decimal(str(haiku.cache_write)) == Decimal(str(haiku.input)) * Decimal("1.25")   # 5-minute write: 1.25x
    assert Decimal(str(haiku.cached_input)) == Decimal(str(haiku.input)) * Decimal("0.1")   # read: 0.1x
    assert (mini.input, mini.cached_input, mini.cache_write) == (0.15, 0.075, None)  # OpenAI: no write charge
    assert (flash.input, flash.cached_input) == (0.30, 0.03)


def test_anthropic_write_then_read() -> None:
    # A 100,000-token document cached in the system prompt, a 50-token question, a 500-token answer (Haiku 4.5).
    write = anthropic_usage({"input_tokens": 50, "cache_creation_input_tokens": 100_000, "cache_read_input_tokens": 0,
                             "output_tokens": 500})
    read = anthropic_usage({"input_tokens": 50, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100_000,
                            "output_tokens": 500})
    assert write is not None and read is not None
    assert write["prompt_tokens"] == read["prompt_tokens"] == 100_050  # the pivot's prompt includes both
    price = DEFAULT_PRICES["claude-haiku-4-5"]
    assert cost_of(price, write) == _usd((50, "1.00"), (100_000, "1.25"), (500, "5.00")) == 0.12755
    assert cost_of(price, read) == _usd((50, "1.00"), (100_000, "0.10"), (500, "5.00")) == 0.01255
    uncached = _usd((100_050, "1.00"), (500, "5.00"))
    assert uncached == pytest.approx(0.10255)  # caching pays off from the first read: 0.12755 + 0.01255 < 2 x 0.10255


def test_anthropic_one_hour_writes_cost_twice_the_input_price() -> None:
    # The same write with ttl 1h: Anthropic bills 1-hour cache writes at 2x the base input price.
    usage = anthropic_usage({"input_tokens": 50, "cache_creation_input_tokens": 100_000, "cache_read_input_tokens": 0,
                             "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 100_000},
                             "output_tokens": 500})
    assert usage is not None and usage["prompt_tokens_details"]["cache_write_1h_tokens"] == 100_000
    price = DEFAULT_PRICES["claude-haiku-4-5"]
    assert cost_of(price, usage) == pytest.approx(_usd((50, "1.00"), (100_000, "2.00"), (500, "5.00")), rel=1e-12)
    assert _usd((50, "1.00"), (100_000, "2.00"), (500, "5.00")) == 0.20255
    mixed = anthropic_usage({"input_tokens": 0, "cache_creation_input_tokens": 3000, "output_tokens": 0,
                             "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}})
    assert cost_of(price, mixed) == pytest.approx(_usd((1000, "1.25"), (2000, "2.00")), rel=1e-12)


def test_openai_cached_tokens_inside_prompt_tokens() -> None:
    # gpt-4o-mini: 2,000 prompt tokens of which 1,920 cached (1024 + 7 x 128), 100 completion tokens.
    usage = {"prompt_tokens": 2000, "completion_tokens": 100, "total_tokens": 2100,
             "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0}}
    expected = _usd((80, "0.15"), (1920, "0.075"), (100, "0.60"))
    assert expected == 0.000216
    assert cost_of(DEFAULT_PRICES["gpt-4o-mini"], usage) == pytest.approx(expected, rel=1e-12)
    responses = responses_usage({"input_tokens": 2000, "input_tokens_details": {"cached_tokens": 1920},
                                 "output_tokens": 100, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2100})
    assert cost_of(DEFAULT_PRICES["gpt-4o-mini"], responses) == pytest.approx(expected, rel=1e-12)


def test_gemini_cached_content_inside_prompt_token_count() -> None:
    # Gemini 2.5 Flash: promptTokenCount 11,500 of which 10,000 cached; 1,000 candidates + 10,000 thinking tokens.
    usage = gemini_usage({"promptTokenCount": 11_500, "candidatesTokenCount": 1000, "cachedContentTokenCount": 10_000,
                          "thoughtsTokenCount": 10_000, "totalTokenCount": 22_500})
    assert usage is not None and usage["prompt_tokens"] == 11_500
    expected = _usd((1500, "0.30"), (10_000, "0.03"), (11_000, "2.50"))
    assert expected == 0.02825
    assert cost_of(DEFAULT_PRICES["gemini-2.5-flash"], usage) == pytest.approx(expected, rel=1e-12)


def test_limiter_counts_what_each_provider_counts() -> None:
    anthropic = anthropic_usage({"input_tokens": 50, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 1000,
                                 "output_tokens": 20})
    # Anthropic's cache-aware ITPM: reads do not count, writes do.
    assert usage_tokens(anthropic, cache_reads=False) == 50 + 300 + 20
    assert usage_tokens(anthropic) == 1370
    assert usage_tokens({"input_tokens": 50, "output_tokens": 20, "cache_read_input_tokens": 1000,
                         "cache_creation_input_tokens": 300}, cache_reads=False) == 370
    openai = {"prompt_tokens": 2000, "completion_tokens": 100, "total_tokens": 2100, "prompt_tokens_details": {"cached_tokens": 1920}}
    assert usage_tokens(openai) == 2100  # OpenAI counts cached tokens in TPM


def test_limiters_learn_the_rule_from_the_provider_registry() -> None:
    limiters = Limiters(clock=FakeClock())
    key = ApiKey(env="K")
    rule: dict[str, bool] = {}
    for provider, model in ((Provider.ANTHROPIC, "claude-haiku-4-5"), (Provider.ANTHROPIC, "claude-3-5-haiku-20241022"),
                            (Provider.OPENAI, "gpt-4o-mini"), (Provider.GEMINI, "gemini-2.5-flash")):
        limiter = limiters.get(f"{provider.value}:{model}", requests_per_minute=None, tokens_per_minute=10_000, max_wait=0,
                               target=Target(name="t", provider=provider, model=model, api_key=key))
        rule[model] = limiter.cache_reads_limited
    assert rule == {"claude-haiku-4-5": False, "claude-3-5-haiku-20241022": True, "gpt-4o-mini": True, "gemini-2.5-flash": True}


async def test_settle_leaves_anthropic_cache_reads_out_of_the_window() -> None:
    limiter = TargetLimiter("claude", tokens_per_minute=10_000, clock=FakeClock(), cache_reads_limited=False)
    ticket = await limiter.acquire(1500)
    limiter.settle(ticket, anthropic_usage({"input_tokens": 10, "cache_read_input_tokens": 1500, "output_tokens": 5}))
    assert limiter.snapshot().window_tokens == 15
    counted = TargetLimiter("gpt", tokens_per_minute=10_000, clock=FakeClock())
    ticket = await counted.acquire(1500)
    counted.settle(ticket, {"prompt_tokens": 1510, "completion_tokens": 5, "total_tokens": 1515,
                            "prompt_tokens_details": {"cached_tokens": 1500}})
    assert counted.snapshot().window_tokens == 1515
