"""Quota leases in the sidecar: a lease caps the governed limiters (no per-request work), expires to
min(share, limit / pods), then falls to limit / pods; a pod without a lease waits, then takes
limit / (bundle count + 1); config swaps keep the caps; two governed targets split one lease."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelroute.api.leases import QuotaLease
from modelroute.api.v1alpha1 import ApiKey, Provider, Target
from modelroute.api.v1alpha1.providerquota import QuotaTerms
from modelroute.sidecar.pipeline.limits import Limiters, RateLimited
from modelroute.sidecar.pipeline.quotas import JOIN_WAIT, QuotaBook

from .fakeclock import FakeClock

KEY = ApiKey(env="KEY_A")


def target(name: str = "a", model: str = "gpt-4o-mini", key: ApiKey = KEY) -> Target:
    return Target(name=name, provider=Provider.OPENAI, model=model, api_key=key)


def terms(pods: int = 4) -> QuotaTerms:
    return QuotaTerms(quota="ns/org", provider=Provider.OPENAI, api_key=KEY, requests_per_minute=100,
                      tokens_per_minute=40_000, pod_count=pods)


def lease(clock: FakeClock, generation: int = 1, rpm: float = 30, tpm: float = 12_000, expires_in: float = 30,
          grace: float = 30, pods: int = 4) -> QuotaLease:
    t = clock.wall()
    return QuotaLease(**terms(pods).model_dump(), generation=generation, share_requests_per_minute=rpm, share_tokens_per_minute=tpm,
                      expires_at=datetime.fromtimestamp(t + expires_in, UTC), fallback_at=datetime.fromtimestamp(t + expires_in + grace, UTC))


def book_with(clock: FakeClock) -> tuple[Limiters, QuotaBook]:
    limiters = Limiters(clock=clock)
    return limiters, QuotaBook(limiters, wall=clock.wall)


def test_a_lease_caps_the_governed_limiter_and_leaves_others_alone() -> None:
    clock = FakeClock()
    limiters, book = book_with(clock)
    governed = limiters.get("a", requests_per_minute=50, tokens_per_minute=None, max_wait=0, target=target())
    other = limiters.get("b", requests_per_minute=50, tokens_per_minute=None, max_wait=0, target=target("b", key=ApiKey(env="KEY_B")))
    assert book.apply([lease(clock)])
    book.refresh()
    assert governed.limit("requests") == 30 and governed.limit("tokens") == 12_000
    assert other.limit("requests") == 50 and other.limit("tokens") is None


def test_expiry_shrinks_then_falls_back_to_limit_over_pods() -> None:
    clock = FakeClock()
    limiters, book = book_with(clock)
    lim = limiters.get("a", requests_per_minute=None, tokens_per_minute=None, max_wait=0, target=target())
    book.apply([lease(clock, rpm=60, tpm=1000)])
    following = book.refresh()
    assert following == pytest.approx(clock.wall() + 30)
    assert (lim.limit("requests"), lim.limit("tokens")) == (60, 1000)
    clock.now += 30
    assert book.refresh() == pytest.approx(clock.wall() + 30)
    assert (lim.limit("requests"), lim.limit("tokens")) == (25, 1000)   # min(share, limit / 4)
    clock.now += 30
    assert book.refresh() is None
    assert (lim.limit("requests"), lim.limit("tokens")) == (25, 10_000)  # limit / 4, never the full limit
    assert book.report()["ns/org"].state == "fallback"


def test_an_older_generation_is_ignored() -> None:
    clock = FakeClock()
    limiters, book = book_with(clock)
    lim = limiters.get("a", requests_per_minute=None, tokens_per_minute=None, max_wait=0, target=target())
    book.apply([lease(clock, generation=5, rpm=10)])
    assert not book.apply([lease(clock, generation=4, rpm=90)])
    book.refresh()
    assert lim.limit("requests") == 10 and book.report()["ns/org"].generation == 5


async def test_a_new_pod_waits_then_takes_limit_over_bundle_count_plus_one() -> None:
    clock = FakeClock()
    limiters, book = book_with(clock)
    lim = limiters.get("a", requests_per_minute=None, tokens_per_minute=None, max_wait=0, target=target())
    assert book.set_terms([terms(pods=3)])
    assert book.refresh() == pytest.approx(clock.wall() + JOIN_WAIT)
    assert lim.limit("requests") == 0
    with pytest.raises(RateLimited):
        await lim.acquire(1)
    clock.now += JOIN_WAIT
    book.refresh()
    assert (lim.limit("requests"), lim.limit("tokens")) == (25, 10_000)
    assert book.report()["ns/org"].state == "conservative"


def test_a_config_swap_keeps_the_cap_and_a_new_governed_limiter_takes_it_at_creation() -> None:
    clock = FakeClock()
    limiters, book = book_with(clock)
    lim = limiters.get("a", requests_per_minute=80, tokens_per_minute=None, max_wait=0, target=target())
    book.apply([lease(clock, rpm=30)])
    book.refresh()
    assert limiters.get("a", requests_per_minute=90, tokens_per_minute=None, max_wait=0, target=target()) is lim
    assert lim.limit("requests") == 30            # the swap re-configured the target's limit, the lease still binds
    second = limiters.get("a2", requests_per_minute=None, tokens_per_minute=None, max_wait=0, target=target("a2", model="gpt-4.1"))
    assert lim.limit("requests") == 15 and second.limit("requests") == 15  # one lease, split over the two


async def test_refusals_under_a_lease_count_as_lease_denials_in_metrics() -> None:
    clock = FakeClock()
    limiters, book = book_with(clock)
    lim = limiters.get("a", requests_per_minute=100, tokens_per_minute=None, max_wait=0, target=target())
    book.apply([lease(clock, rpm=2)])
    book.refresh()
    await lim.acquire(10)
    await lim.acquire(10)
    with pytest.raises(RateLimited):
        await lim.acquire(10)
    assert lim.refused_by == {"lease": 1}
    families = {f.name: f for f in book.collect()}
    assert [s.value for s in families["modelroute_quota_denials"].samples if s.name.endswith("_total")] == [1]
    used = {s.labels["dimension"]: s.value for s in families["modelroute_quota_used"].samples}
    assert used == {"requests": 2, "tokens": 20}
    lease_caps = {s.labels["dimension"]: s.value for s in families["modelroute_quota_lease"].samples}
    assert lease_caps == {"requests": 2, "tokens": 12_000}


async def test_tokens_total_follows_usage_and_cancellations() -> None:
    clock = FakeClock()
    limiters, book = book_with(clock)
    lim = limiters.get("a", requests_per_minute=None, tokens_per_minute=None, max_wait=0, target=target())
    book.apply([lease(clock)])
    book.refresh()
    first = await lim.acquire(10)
    lim.settle(first, {"total_tokens": 25})
    second = await lim.acquire(7)
    lim.cancel(second)
    assert book.report()["ns/org"].tokens_total == 25
