"""Full-jitter exponential backoff, retry-after honoured and capped."""

from __future__ import annotations

import pytest

from modelroute.api.v1alpha1.spec import Backoff
from modelroute.sidecar.routing.backoff import backoff_delay

B = Backoff(initial_ms=200, max_ms=5000)


@pytest.mark.parametrize(("retry", "ceiling"), [(1, 0.2), (2, 0.4), (3, 0.8), (5, 3.2), (6, 5.0), (40, 5.0)])
def test_ceiling_doubles_up_to_the_cap(retry: int, ceiling: float) -> None:
    assert backoff_delay(retry, B, rand=lambda: 0.999999) == pytest.approx(ceiling, rel=1e-5)


def test_full_jitter_spans_zero_to_ceiling() -> None:
    assert backoff_delay(3, B, rand=lambda: 0.0) == 0.0
    assert backoff_delay(3, B, rand=lambda: 0.5) == pytest.approx(0.4)


def test_real_rng_stays_in_range() -> None:
    for _ in range(200):
        assert 0.0 <= backoff_delay(2, B) <= 0.4


def test_retry_after_is_honoured_exactly() -> None:
    assert backoff_delay(1, B, retry_after=1.5, rand=lambda: 0.0) == 1.5


def test_retry_after_is_capped_by_max_ms() -> None:
    assert backoff_delay(1, B, retry_after=120.0) == 5.0
    assert backoff_delay(1, Backoff(initial_ms=10, max_ms=300), retry_after=2.0) == pytest.approx(0.3)


def test_negative_retry_after_means_now() -> None:
    assert backoff_delay(1, B, retry_after=-3) == 0.0


def test_zero_initial_means_no_wait() -> None:
    assert backoff_delay(4, Backoff(initial_ms=0, max_ms=1000), rand=lambda: 0.9) == 0.0
