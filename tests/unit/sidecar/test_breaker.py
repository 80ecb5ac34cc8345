"""Circuit breaker: closed -> open after N consecutive failures -> one half-open probe."""

from __future__ import annotations

import time

from modelroute.api.v1alpha1.spec import CircuitBreaker
from modelroute.sidecar.routing.breaker import Breaker, BreakerState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(threshold: int = 3, open_s: float = 10.0) -> tuple[Breaker, Clock]:
    clock = Clock()
    return Breaker(CircuitBreaker(failure_threshold=threshold, open_seconds=open_s), clock), clock


def state(b: Breaker) -> BreakerState:
    """Read through a call: mypy would keep ``b.state`` narrowed across the calls that change it."""
    return b.state


def test_opens_after_consecutive_failures_only() -> None:
    b, _ = make(threshold=3)
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.allow()
    b.record_success()  # resets the streak
    for _ in range(2):
        b.record_failure()
    assert state(b) is BreakerState.CLOSED
    b.record_failure()
    assert state(b) is BreakerState.OPEN
    assert b.is_open
    assert not b.allow()


def test_half_open_lets_exactly_one_probe_through() -> None:
    b, clock = make(threshold=1, open_s=10)
    b.record_failure()
    clock.now += 9.9
    assert not b.allow()
    clock.now += 0.2
    assert state(b) is BreakerState.HALF_OPEN
    assert b.allow()          # the probe
    assert not b.allow()      # everyone else still skipped
    assert not b.allow()
    b.record_success()
    assert state(b) is BreakerState.CLOSED
    assert b.allow() and b.allow()


def test_failed_probe_reopens_for_a_full_period() -> None:
    b, clock = make(threshold=5, open_s=10)
    for _ in range(5):
        b.record_failure()
    clock.now += 10
    assert b.allow()
    b.record_failure()  # one failure in half-open is enough
    assert state(b) is BreakerState.OPEN
    clock.now += 9
    assert not b.allow()
    clock.now += 1
    assert b.allow()


def test_released_probe_frees_the_slot() -> None:
    b, clock = make(threshold=1, open_s=5)
    b.record_failure()
    clock.now += 5
    assert b.allow()
    b.release()  # cancelled: no verdict
    assert state(b) is BreakerState.HALF_OPEN
    assert b.allow()


def test_lost_probe_is_presumed_dead_after_open_seconds() -> None:
    b, clock = make(threshold=1, open_s=5)
    b.record_failure()
    clock.now += 5
    assert b.allow()
    clock.now += 4
    assert not b.allow()
    clock.now += 1.5
    assert b.allow()


def test_late_failures_do_not_extend_the_open_period() -> None:
    b, clock = make(threshold=1, open_s=10)
    b.record_failure()
    clock.now += 6
    b.record_failure()  # a request started before the breaker opened
    clock.now += 4
    assert b.allow()


def test_asking_an_open_breaker_costs_microseconds() -> None:
    b = Breaker(CircuitBreaker(failure_threshold=1, open_seconds=60))
    b.record_failure()
    t = time.perf_counter()
    for _ in range(10_000):
        b.allow()
    per_call = (time.perf_counter() - t) / 10_000
    assert per_call < 20e-6
