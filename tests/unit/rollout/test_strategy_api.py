"""spec.strategy / status.rollout models, revisions and sticky assignment."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from modelroute.api.crd import structural_schema
from modelroute.api.v1alpha1 import ModelRouteSpec
from modelroute.api.v1alpha1.strategy import (
    CanaryStep,
    RolloutStatus,
    Strategy,
    duration_seconds,
    format_duration,
    revision_of,
    sticky_bucket,
    variant_for,
)
from modelroute.testing.schemas import undocumented

ISSUE_EXAMPLE: dict[str, Any] = {"canary": {
    "steps": [{"mirror": 100}, {"pause": {"duration": "30m"}}, {"weight": 5}, {"pause": {"duration": "10m"}},
              {"weight": 25}, {"pause": {}}, {"weight": 100}],
    "analysis": {"interval": "1m", "minSamples": 200, "maxErrorRate": 0.02, "maxLatencyP95Ratio": 1.25,
                 "minValidOutputRate": 0.99, "minAgreement": 0.95, "maxCostRatio": 1.5, "failureLimit": 2},
    "progressDeadlineSeconds": 3600,
    "stickyBy": {"header": "x-user-id"},
}}


def test_issue_example_parses_and_round_trips() -> None:
    s = Strategy.model_validate(ISSUE_EXAMPLE)
    assert s.canary is not None and [st.describe() for st in s.canary.steps] == [
        "mirror: 100", "pause: 30m", "weight: 5", "pause: 10m", "weight: 25", "pause: until promoted", "weight: 100"]
    assert s.canary.steps[1].pause is not None and s.canary.steps[1].pause.seconds == 1800
    assert s.canary.analysis is not None and s.canary.analysis.interval_seconds == 60
    assert Strategy.model_validate(s.wire()) == s


@pytest.mark.parametrize(("step", "needle"), [
    ({}, "exactly one"), ({"mirror": 10, "weight": 5}, "exactly one"), ({"weight": 101}, "less than or equal"),
    ({"pause": {"duration": "10 minutes"}}, "pattern"),
])
def test_invalid_steps(step: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        CanaryStep.model_validate(step)


def test_durations() -> None:
    assert [duration_seconds(x) for x in ("90s", "30m", "1h30m", "2h")] == [90, 1800, 5400, 7200]
    assert [format_duration(x) for x in (0, 59, 60, 3725)] == ["0s", "59s", "1m", "1h2m5s"]
    with pytest.raises(ValueError, match="invalid duration"):
        duration_seconds("1.5h")


def test_crd_schema_has_cel_rule_for_steps_and_descriptions() -> None:
    schema = structural_schema(Strategy)
    step = schema["properties"]["canary"]["properties"]["steps"]["items"]
    assert "exactly one of mirror, weight or pause" in step["x-kubernetes-validations"][0]["message"]
    status = structural_schema(RolloutStatus)
    assert status["properties"]["phase"]["enum"] == ["Healthy", "Progressing", "Paused", "Degraded"]

    assert undocumented(schema, "strategy") == [] and undocumented(status, "rollout") == []


def _spec(**over: Any) -> ModelRouteSpec:
    base: dict[str, Any] = {"route": "classify", "targets": [
        {"name": "mini", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "K"}}]}
    base.update(over)
    return ModelRouteSpec.model_validate(base)


def test_revision_ignores_selector_and_strategy_but_not_routing() -> None:
    a = _spec()
    assert revision_of(a) == revision_of(_spec(selector={"matchLabels": {"app": "x"}}))
    assert revision_of(a) == revision_of({**a.wire(), "strategy": ISSUE_EXAMPLE})
    assert revision_of(a) != revision_of(_spec(params={"temperature": 0.5}))
    assert revision_of(a) != revision_of(_spec(prompt={"version": "v4", "system": "x"}))
    assert len(revision_of(a)) == 12


def test_sticky_assignment_follows_the_weight_and_is_stable_per_key() -> None:
    keys = [f"user-{i}" for i in range(20_000)]
    at5 = Counter(variant_for(k, "rev-b", 5) for k in keys)
    assert 0.04 < at5["canary"] / len(keys) < 0.06
    at25 = {k: variant_for(k, "rev-b", 25) for k in keys}
    assert 0.23 < sum(v == "canary" for v in at25.values()) / len(keys) < 0.27
    # The same key always gets the same answer (any pod, any process: no per-process seed).
    assert all(variant_for(k, "rev-b", 25) == v for k, v in list(at25.items())[:500])
    # Monotone: raising the weight moves keys to canary, never back.
    assert all(at25[k] == "canary" for k in keys if variant_for(k, "rev-b", 5) == "canary")
    assert {variant_for(k, "rev-b", 0) for k in keys[:200]} == {"stable"}
    assert {variant_for(k, "rev-b", 100) for k in keys[:200]} == {"canary"}
    # A new revision (salt) draws a different sample of callers.
    assert sum(sticky_bucket(k, "rev-b") == sticky_bucket(k, "rev-c") for k in keys) < 20
