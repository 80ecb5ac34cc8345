"""Quota pressure from sidecar /stats -> QuotaPressure Events: once per crossing, per ModelRoute."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelroute.api.stats import SidecarStats
from modelroute.operator import quota
from modelroute.operator.quota import Pressure, decide, has_limits, pressures

KEY = "shop/tickets"


def stats(**targets: tuple[float, float]) -> SidecarStats:
    """A sidecar /stats document for route "classify"; per target (requests, tokens) utilisation."""
    return SidecarStats.model_validate({"routes": {"classify": {"requests": 3, "targets": {
        name: {"costUsd": 0.1, "limits": {"requestsPerMinute": 5, "utilisation": {"requests": r, "tokens": t},
                                          "pressure": max(r, t) >= 0.8}}
        for name, (r, t) in targets.items()} | {"plain": {"costUsd": 0.2}}}}})


def test_has_limits_looks_at_the_targets() -> None:
    assert has_limits({"spec": {"targets": [{"name": "a"}, {"name": "b", "limits": {"requestsPerMinute": 5}}]}})
    assert not has_limits({"spec": {"targets": [{"name": "a"}]}})
    assert not has_limits({})


def test_pressures_reads_the_limits_of_each_target() -> None:
    doc = stats(mini=(1.0, 0.2), nano=(0.5, 0.85), calm=(0.79, 0.1))
    assert pressures(KEY, "classify", "web-1", doc) == [
        Pressure(KEY, "mini", "web-1", "requests", 1.0),
        Pressure(KEY, "nano", "web-1", "tokens", 0.85),
    ]
    assert pressures(KEY, "other-route", "web-1", doc) == []
    with pytest.raises(ValidationError):   # the push client treats such a pod as not answering
        SidecarStats.model_validate({"routes": "garbage"})


def test_one_event_per_route_per_crossing_not_per_poll() -> None:
    present = ["web-1", "web-2"]
    first = pressures(KEY, "classify", "web-1", stats(mini=(1.0, 0.0)))
    events, reported = decide(first, frozenset(), answered=present, present=present)
    (notice,) = events.values()
    assert list(events) == [KEY] and (notice.type, notice.reason) == ("Warning", quota.REASON)
    assert "target mini on pod web-1: requests at 100%" in notice.message

    # The same pressure on the next poll: nothing new.
    events, reported = decide(first, reported, answered=present, present=present)
    assert events == {} and reported == {(KEY, "mini", "web-1")}

    # A second pod crosses while the first stays: one event naming only the new crossing.
    both = first + pressures(KEY, "classify", "web-2", stats(mini=(0.8, 0.0)))
    events, reported = decide(both, reported, answered=present, present=present)
    assert "web-2" in events[KEY].message and "web-1" not in events[KEY].message

    # Pressure ends on web-1, then comes back: a new crossing, announced again.
    web2 = [p for p in both if p.pod == "web-2"]
    events, reported = decide(web2, reported, answered=present, present=present)
    assert events == {} and reported == {(KEY, "mini", "web-2")}
    events, reported = decide(both, reported, answered=present, present=present)
    assert "web-1" in events[KEY].message and "web-2" not in events[KEY].message


def test_a_pod_that_does_not_answer_keeps_its_report_until_it_is_gone() -> None:
    p = pressures(KEY, "classify", "web-1", stats(mini=(1.0, 0.0)))
    _, reported = decide(p, frozenset(), answered=["web-1"], present=["web-1"])
    events, kept = decide([], reported, answered=[], present=["web-1"])
    assert events == {} and kept == reported, "a timeout is no end of pressure"
    _, dropped = decide([], reported, answered=[], present=[])
    assert dropped == frozenset()


def test_many_crossings_are_listed_up_to_a_bound() -> None:
    many = [Pressure(KEY, f"t{i}", "web-1", "tokens", 0.9) for i in range(8)]
    events, reported = decide(many, frozenset(), answered=["web-1"], present=["web-1"])
    assert len(reported) == 8 and "(and 3 more)" in events[KEY].message
    assert events[KEY].message.count("tokens at 90%") == 5


@pytest.mark.parametrize("pressed", [True, False])
def test_the_sidecar_flag_counts_even_below_the_threshold(pressed: bool) -> None:
    doc = SidecarStats.model_validate(
        {"routes": {"classify": {"targets": {"mini": {"limits": {"utilisation": {"requests": 0.5}, "pressure": pressed}}}}}})
    assert bool(pressures(KEY, "classify", "web-1", doc)) is pressed
