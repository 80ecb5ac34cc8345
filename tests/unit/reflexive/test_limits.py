"""Token-aware limits: never overshoot under concurrency, bounded waits, usage correction, provider headers."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from modelroute.sidecar.pipeline.limits import (
    Limiters,
    RateLimited,
    TargetLimiter,
    estimate_tokens,
    parse_duration,
    parse_reset,
    usage_tokens,
)
from modelroute.sidecar.providers.errors import retry_after_seconds

from .fakeclock import FakeClock


def _window_ok(times: list[float], limit: int, window: float = 60.0) -> bool:
    """No window (t - window, t] holds more than ``limit`` admissions."""
    times = sorted(times)
    return all(sum(1 for u in times if t - window + 1e-9 < u <= t) <= limit for t in times)


async def test_200_concurrent_against_50_rpm_admit_exactly_50() -> None:
    clock = FakeClock()
    limiter = TargetLimiter("mini", requests_per_minute=50, max_wait=1.0, clock=clock)
    admitted: list[float] = []

    refusals: list[RateLimited] = []

    async def one() -> bool:
        try:
            await limiter.acquire(100)
        except RateLimited as e:
            refusals.append(e)
            return False
        admitted.append(clock.monotonic())
        return True

    start = clock.now
    results = await asyncio.gather(*(one() for _ in range(200)))
    assert sum(results) == 50 and results.count(False) == 150
    assert all(e.dimension == "requests" and e.retry_after == pytest.approx(60.0) for e in refusals)
    assert clock.now == start  # the excess was refused without waiting: the router falls back at once
    assert limiter.admitted == 50 and limiter.refused == 150
    # Still full for the rest of the window (room in 1.5 s > the 1 s bound), free again after it.
    with pytest.raises(RateLimited):
        await limiter.acquire(1)
    await clock.advance(58.5)
    with pytest.raises(RateLimited):
        await limiter.acquire(1)
    await clock.advance(1.5)
    await asyncio.wait_for(limiter.acquire(1), 1)


async def test_waiting_within_the_bound_then_admitted_and_never_over_the_window() -> None:
    clock = FakeClock()
    limiter = TargetLimiter("mini", requests_per_minute=50, max_wait=61.0, clock=clock)
    admitted: list[float] = []
    refused = 0

    async def one() -> None:
        nonlocal refused
        try:
            await limiter.acquire(10)
        except RateLimited:
            refused += 1
            return
        admitted.append(clock.monotonic())

    tasks = [asyncio.create_task(one()) for _ in range(200)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(admitted) == 50 and clock.sleeping == 50 and refused == 100
    await clock.advance(59.0)
    assert len(admitted) == 50  # reservations are for t+60, not earlier
    await clock.advance(1.0)
    await asyncio.gather(*tasks)
    assert len(admitted) == 100 and refused == 100
    assert _window_ok(admitted, 50)


async def test_random_arrivals_never_exceed_either_limit() -> None:
    rng = random.Random(7)
    clock = FakeClock()
    limiter = TargetLimiter("t", requests_per_minute=20, tokens_per_minute=5000, max_wait=5.0, clock=clock)
    log: list[tuple[float, int]] = []

    async def one(tokens: int) -> None:
        try:
            ticket = await limiter.acquire(tokens)
        except RateLimited:
            return
        # The fake clock wakes sleepers late (at the next advance); the admission instant is ticket.at.
        assert clock.monotonic() >= ticket.at
        log.append((ticket.at, tokens))

    tasks: list[asyncio.Task[None]] = []
    for _ in range(400):
        tasks.extend(asyncio.create_task(one(rng.randint(1, 900))) for _ in range(rng.randint(0, 4)))
        await clock.advance(rng.random() * 3)
    await clock.advance(120)
    await asyncio.gather(*tasks)
    assert len(log) > 50
    times = [t for t, _ in log]
    assert _window_ok(times, 20)
    for t, _ in log:
        assert sum(n for u, n in log if t - 60 + 1e-9 < u <= t) <= 5000


async def test_tokens_are_estimated_then_corrected_from_usage() -> None:
    clock = FakeClock()
    limiter = TargetLimiter("t", tokens_per_minute=1000, max_wait=0.5, clock=clock)
    ticket = await limiter.acquire(100)
    limiter.settle(ticket, {"prompt_tokens": 400, "completion_tokens": 200, "total_tokens": 600})
    assert limiter.snapshot().window_tokens == 600
    with pytest.raises(RateLimited) as info:
        await limiter.acquire(500)
    assert info.value.dimension == "tokens"
    other = await limiter.acquire(400)
    limiter.settle(other, None)  # no usage reported: the estimate stands
    assert limiter.snapshot().window_tokens == 1000
    with pytest.raises(RateLimited) as info:
        await limiter.acquire(5000)
    assert info.value.dimension == "too_large"
    # Anthropic usage shape counts too.
    assert usage_tokens({"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 3}) == 18


async def test_cancelled_wait_gives_the_slot_back() -> None:
    clock = FakeClock()
    limiter = TargetLimiter("t", requests_per_minute=1, max_wait=100, clock=clock)
    await limiter.acquire(1)
    waiter = asyncio.create_task(limiter.acquire(1))
    await asyncio.sleep(0)
    assert clock.sleeping == 1 and limiter.snapshot().window_requests == 2
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.snapshot().window_requests == 1
    await clock.advance(60)
    await limiter.acquire(1)  # admitted at once: the cancelled reservation is gone


async def test_cancel_before_the_call_frees_the_slot() -> None:
    clock = FakeClock()
    limiter = TargetLimiter("t", requests_per_minute=1, max_wait=0, clock=clock)
    ticket = await limiter.acquire(5)
    limiter.cancel(ticket)
    limiter.cancel(ticket)  # idempotent
    await limiter.acquire(5)


async def test_provider_headers_openai() -> None:
    clock = FakeClock()
    limiter = TargetLimiter("t", requests_per_minute=100, max_wait=1.0, clock=clock)
    limiter.observe_headers({"X-RateLimit-Limit-Requests": "60", "X-RateLimit-Remaining-Requests": "1",
                             "X-RateLimit-Reset-Requests": "2s", "x-ratelimit-limit-tokens": "150000",
                             "x-ratelimit-remaining-tokens": "149000", "x-ratelimit-reset-tokens": "6m0s"})
    assert limiter.limit("requests") == 60 and limiter.limit("tokens") == 150000
    await limiter.acquire(10)  # the one the provider still allows
    with pytest.raises(RateLimited) as info:
        await limiter.acquire(10)  # other clients of the key used the rest: wait for the reset (2 s > 1 s)
    assert info.value.dimension == "blocked" and info.value.retry_after == pytest.approx(2.0)
    waiter = asyncio.create_task(limiter.acquire(10, max_wait=3))
    await asyncio.sleep(0)
    await clock.advance(2.0)
    await waiter
    limiter.observe_headers({"x-ratelimit-limit-requests": "500"})  # the provider raised the limit
    assert limiter.limit("requests") == 100  # the configured limit still caps it


async def test_the_providers_remaining_binds_below_the_lease() -> None:
    """Issue 13: a lease leaves room, the provider's headers say less is left (other pods, other clients): the smaller wins."""
    clock = FakeClock()
    limiter = TargetLimiter("t", max_wait=1.0, clock=clock)
    limiter.set_lease(None, 10_000)
    limiter.observe_headers({"x-ratelimit-limit-tokens": "100000", "x-ratelimit-remaining-tokens": "300",
                             "x-ratelimit-reset-tokens": "5s"})
    await limiter.acquire(200)  # within both
    with pytest.raises(RateLimited) as info:
        await limiter.acquire(200)  # the lease has 9,800 left, the provider 100
    assert info.value.dimension == "blocked" and info.value.retry_after == pytest.approx(5.0)
    assert limiter.remaining() == {"tokens": 100.0}
    await clock.advance(5.0)  # the provider's window reset: the lease binds again
    await limiter.acquire(5_000)
    with pytest.raises(RateLimited) as info:
        await limiter.acquire(5_000)
    assert info.value.dimension == "tokens" and limiter.refused_by == {"blocked": 1, "lease": 1}


async def test_settled_usage_adds_its_cost_for_daily_cost_budgets() -> None:
    from modelroute.api.v1alpha1.providers import Price
    limiter = TargetLimiter("t", clock=FakeClock())
    limiter.settle(await limiter.acquire(10), {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500})
    assert limiter.cost_usd == 0.0, "no price known: nothing counted"
    limiter.price = Price(0.15, 0.60)  # USD per 1M tokens
    limiter.settle(await limiter.acquire(10), {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500})
    limiter.settle(await limiter.acquire(10), None)
    assert limiter.cost_usd == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6)
    assert limiter.tokens_admitted == 3010


async def test_retry_after_blocks_the_target() -> None:
    clock = FakeClock()
    limiter = TargetLimiter("t", max_wait=1.0, clock=clock)
    limiter.observe_headers({"retry-after": "5"})
    with pytest.raises(RateLimited) as info:
        await limiter.acquire(1)
    assert info.value.dimension == "blocked"
    await clock.advance(5)
    await limiter.acquire(1)
    limiter.observe_headers({"retry-after-ms": "300"})
    waiter = asyncio.create_task(limiter.acquire(1))
    await asyncio.sleep(0)
    await clock.advance(0.3)
    await waiter


async def test_provider_headers_anthropic() -> None:
    clock = FakeClock()
    limiter = TargetLimiter("t", clock=clock, max_wait=0)
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.wall() + 30))
    limiter.observe_headers({
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-tokens-limit": "40000", "anthropic-ratelimit-tokens-remaining": "0",
        "anthropic-ratelimit-tokens-reset": reset,
        "anthropic-ratelimit-input-tokens-limit": "30000", "anthropic-ratelimit-input-tokens-remaining": "100",
    })
    assert limiter.limit("requests") == 50 and limiter.limit("tokens") == 30000
    with pytest.raises(RateLimited) as info:
        await limiter.acquire(10)
    assert info.value.dimension == "blocked" and 29 <= info.value.retry_after <= 30


async def test_pressure_signal_at_80_percent_once_per_crossing() -> None:
    clock = FakeClock()
    seen: list[tuple[str, str, float]] = []
    limiter = TargetLimiter("haiku", requests_per_minute=10, max_wait=0, clock=clock,
                            on_pressure=lambda *a: seen.append(a))
    for _ in range(7):
        await limiter.acquire(1)
    assert seen == []
    await limiter.acquire(1)
    assert seen == [("haiku", "requests", 0.8)]
    await limiter.acquire(1)
    assert len(seen) == 1 and limiter.snapshot().pressure is True
    await clock.advance(61)
    await limiter.acquire(1)  # back to 10%: re-armed
    for _ in range(7):
        await limiter.acquire(1)
    assert len(seen) == 2


async def test_registry_keeps_state_across_reconfiguration() -> None:
    clock = FakeClock()
    limiters = Limiters(clock=clock)
    a = limiters.get("openai|gpt-4o-mini|env:K", requests_per_minute=2, tokens_per_minute=None, max_wait=0)
    await a.acquire(1)
    b = limiters.get("openai|gpt-4o-mini|env:K", requests_per_minute=1, tokens_per_minute=None, max_wait=0)
    assert a is b
    with pytest.raises(RateLimited):
        await b.acquire(1)
    assert limiters.snapshot()["openai|gpt-4o-mini|env:K"].window_requests == 1


def test_parsers() -> None:
    assert parse_duration("6m0s") == 360 and parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5) and parse_duration("1.5") == 1.5
    assert parse_duration("soon") is None
    assert parse_reset("2026-01-01T00:00:10Z", wall=1767225600.0) == pytest.approx(10)
    assert retry_after_seconds({"retry-after": "Thu, 01 Jan 2026 00:00:05 GMT"}, wall=1767225600.0) == pytest.approx(5)
    assert retry_after_seconds({"retry-after": "3", "retry-after-ms": "1500"}, wall=0) == 1.5
    assert retry_after_seconds({}, wall=0) is None
    assert retry_after_seconds({"retry-after-ms": "-5", "retry-after": "2"}, wall=0) == 2  # a negative ms value is ignored
    assert retry_after_seconds({"retry-after": "soon"}, wall=0) is None


def test_estimate_tokens() -> None:
    request = {"messages": [{"role": "system", "content": "x" * 400}, {"role": "user", "content": [
        {"type": "text", "text": "y" * 40}, {"type": "image_url", "image_url": {"url": "data:..."}}]}]}
    assert estimate_tokens(request) == 110 + 8 + 1000 + 1
    assert estimate_tokens({"messages": []}) == 1


async def test_admission_and_estimate_are_microseconds() -> None:
    limiter = TargetLimiter("t", requests_per_minute=1e9, tokens_per_minute=1e12)
    request = {"messages": [{"role": "system", "content": "You label tickets."}, {"role": "user", "content": "x" * 2000}]}
    n = 5000
    start = time.perf_counter()
    for _ in range(n):
        ticket = await limiter.acquire(estimate_tokens(request))
        limiter.settle(ticket, {"total_tokens": 600})
    per_us = (time.perf_counter() - start) / n * 1e6
    assert per_us < 100, per_us  # typically a few us; generous for a loaded box
