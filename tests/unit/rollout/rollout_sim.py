"""A tiny simulated fleet and clock for driving the rollout state machine in tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modelroute.api.v1alpha1.strategy import RolloutStatus, Strategy
from modelroute.operator.rollout import (
    Counters,
    Decision,
    Desired,
    Histogram,
    Observations,
    Serving,
    serving_of,
    step,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STEPS = [
    {"mirror": 100}, {"pause": {"duration": "30m"}}, {"weight": 5}, {"pause": {"duration": "10m"}},
    {"weight": 25}, {"pause": {}}, {"weight": 100},
]


def strategy(steps: list[dict[str, Any]] | None = None, **analysis: Any) -> Strategy:
    a = {"interval": "1m", "minSamples": 200, "maxErrorRate": 0.02, "maxLatencyP95Ratio": 1.25,
         "minAgreement": 0.95, "failureLimit": 1}
    a.update(analysis)
    return Strategy.model_validate({"canary": {"steps": steps if steps is not None else STEPS, "analysis": a,
                                               "progressDeadlineSeconds": 600, "stickyBy": {"header": "x-user-id"}}})


def counters(n: int, *, errors: int = 0, latency_bucket: int = 1, agree: float = 1.0) -> Counters:
    counts = [0] * (len(BOUNDS) + 1)
    counts[latency_bucket] = n
    return Counters(requests=n, errors={"server_error": errors} if errors else {},
                    latency=Histogram(BOUNDS, tuple(counts), n * 0.08),
                    compared=n, agreed=round(n * agree))


@dataclass
class Fleet:
    """Sidecars that serve whatever was pushed last, one call later (or never, when stuck)."""

    desired: Desired
    state: RolloutStatus | None = None
    now: datetime = T0
    served: Serving | None = None
    stuck: bool = False
    rate: float = 20           # canary requests per second of traffic
    errors: float = 0.0
    agree: float = 1.0
    stable: Counters = field(default_factory=Counters)
    canary: Counters = field(default_factory=Counters)
    run: str | None = None
    decisions: list[Decision] = field(default_factory=list)

    def call(self, **obs: Any) -> Decision:
        acked = self.state is not None and self.served == serving_of(self.state, self.desired.strategy)
        d = step(self.state, self.desired, Observations(all_acked=acked, stable=self.stable, canary=self.canary, **obs), self.now)
        self.state = d.status
        if not self.stuck:
            self.served = d.serving
        if d.serving.run_id != self.run:   # a new run: sidecars count from zero
            self.run, self.stable, self.canary = d.serving.run_id, Counters(), Counters()
        self.decisions.append(d)
        return d

    def wait(self, seconds: float) -> None:
        """Time passes; traffic flows to what the sidecars serve."""
        self.now += timedelta(seconds=seconds)
        s = self.served
        if s is None or s.canary_revision is None:
            return
        share = max(s.weights.canary, s.weights.mirror) / 100
        n = int(self.rate * seconds * share)
        self.canary = self.canary + counters(n, errors=round(n * self.errors), agree=self.agree)
        self.stable = self.stable + counters(int(self.rate * seconds))

    def act(self, verb: str) -> None:
        self.desired = Desired(self.desired.revision, self.desired.strategy, f"{verb}:{len(self.decisions)}")

    def until(self, pred: Any, *, limit: int = 500, tick: float = 30.0) -> Decision:
        for _ in range(limit):
            d = self.call()
            if pred(d):
                return d
            self.wait(min(tick, d.requeue_after or tick))
        raise AssertionError(f"never reached; last status: {self.state}")
