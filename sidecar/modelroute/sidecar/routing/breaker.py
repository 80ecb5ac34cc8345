"""Per-target circuit breaker: stop calling a target that keeps failing, probe it later.

closed -> (``failureThreshold`` consecutive failures) -> open -> (``openSeconds``) ->
half-open, where exactly one request is let through as a probe: its success closes the
breaker, its failure opens it again. Asking an open breaker is a few attribute reads, so
a skipped target costs ~0 ms. Single event loop, no locks needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from modelroute.api.v1alpha1.spec import CircuitBreaker


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Breaker:
    """One target's breaker. The router calls ``allow()`` before an attempt and then exactly
    one of ``record_success()``, ``record_failure()`` or ``release()`` (neither: cancelled)."""

    __slots__ = ("_clock", "_failures", "_open_seconds", "_opened_at", "_probe_at", "_state", "_threshold")

    def __init__(self, settings: CircuitBreaker, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = settings.failure_threshold
        self._open_seconds = settings.open_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_at: float | None = None  # when the in-flight half-open probe started

    @property
    def state(self) -> BreakerState:
        """Current state; an open breaker whose time is up reports half-open."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._open_seconds:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def is_open(self) -> bool:
        """Opened and not yet due for a probe attempt (no clock read: a retry check)."""
        return self._state is BreakerState.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """May an attempt be made now? In half-open this claims the single probe slot."""
        if self._state is BreakerState.CLOSED:
            return True
        now = self._clock()
        if self._state is BreakerState.OPEN:
            if now - self._opened_at < self._open_seconds:
                return False
            self._state = BreakerState.HALF_OPEN
            self._probe_at = None
        # half-open: one probe at a time; a probe that never reported back (a bug, or a
        # task killed without cleanup) is presumed lost after openSeconds.
        if self._probe_at is not None and now - self._probe_at < self._open_seconds:
            return False
        self._probe_at = now
        return True

    def record_success(self) -> None:
        """The target answered (including a 4xx caused by the request): close the breaker."""
        self._failures = 0
        self._state = BreakerState.CLOSED
        self._probe_at = None

    def record_failure(self) -> None:
        """The target failed (any falling-back failure kind)."""
        self._failures += 1
        if self._state is BreakerState.OPEN:
            return  # a late failure of a request started before opening: keep the timer
        if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._probe_at = None

    def release(self) -> None:
        """The attempt ended with no verdict (cancelled): free the probe slot, change nothing else."""
        if self._state is BreakerState.HALF_OPEN:
            self._probe_at = None
