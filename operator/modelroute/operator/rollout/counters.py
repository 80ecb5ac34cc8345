"""Per-revision evidence counters: their wire form, and summing them over pods and over time.

Each sidecar keeps cumulative counters per route, rollout run and variant (stable, canary,
mirror) and serves them as JSON; the operator reads one snapshot per pod each analysis
interval. Cumulative counters from many processes are combined the Prometheus way: sum
over pods, and a delta between two snapshots of one pod that treats a decrease (the sidecar
restarted) as a reset, so the delta is the whole new value.

The wire form is ``modelroute.api.stats.VariantCounters``, written by the sidecar.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from modelroute.api.stats import (
    AgreementCounts,
    CostCounts,
    LatencyHistogram,
    OutputCounts,
    SidecarStats,
    TokenCounts,
    VariantCounters,
)

NOT_ERRORS = frozenset({"cancelled", "ok"})
"""Classes that are not failures of the revision (the app went away; success)."""


@dataclass(frozen=True)
class Histogram:
    """A latency histogram: per-bucket counts (not cumulative) for upper ``bounds`` plus +Inf."""

    bounds: tuple[float, ...] = ()
    counts: tuple[int, ...] = (0,)
    sum: float = 0.0

    def __post_init__(self) -> None:
        if len(self.counts) != len(self.bounds) + 1:
            raise ValueError(f"histogram needs {len(self.bounds) + 1} counts (one per bound and +Inf), got {len(self.counts)}")
        if list(self.bounds) != sorted(self.bounds):
            raise ValueError("histogram bounds must ascend")

    @property
    def count(self) -> int:
        return sum(self.counts)

    def quantile(self, q: float) -> float | None:
        """Quantile ``q`` by linear interpolation inside its bucket (as PromQL ``histogram_quantile``).

        None when empty. A quantile in the +Inf bucket is the highest finite bound.
        """
        total = self.count
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for i, n in enumerate(self.counts):
            if n and seen + n >= rank:
                if i == len(self.bounds):
                    return self.bounds[-1] if self.bounds else None
                lower = self.bounds[i - 1] if i > 0 else 0.0
                upper = self.bounds[i]
                return lower + (upper - lower) * max(0.0, rank - seen) / n
            seen += n
        return self.bounds[-1] if self.bounds else None

    def __add__(self, other: Histogram) -> Histogram:
        if not other.count and not other.sum:
            return self
        if not self.count and not self.sum:
            return other
        if self.bounds != other.bounds:
            raise ValueError("cannot merge histograms with different bucket bounds")
        return Histogram(self.bounds, tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)), self.sum + other.sum)

    def minus(self, before: Histogram) -> Histogram:
        """``self - before``; a reset (any bucket went down, or bounds changed) yields ``self``."""
        if before.bounds != self.bounds or any(a < b for a, b in zip(self.counts, before.counts, strict=True)):
            return self
        return Histogram(self.bounds, tuple(a - b for a, b in zip(self.counts, before.counts, strict=True)), max(0.0, self.sum - before.sum))


@dataclass(frozen=True)
class Counters:
    """Evidence about one revision (one variant, or several summed)."""

    requests: int = 0
    errors: Mapping[str, int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=Histogram)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    priced: int = 0
    outputs_checked: int = 0
    outputs_valid: int = 0
    compared: int = 0
    agreed: int = 0
    task_compared: int = 0          # of ``compared``: mirrored task requests (classify, extract)
    task_agreed: int = 0

    @property
    def failed(self) -> int:
        return sum(n for k, n in self.errors.items() if k not in NOT_ERRORS)

    def __add__(self, other: Counters) -> Counters:
        errors = dict(self.errors)
        for k, n in other.errors.items():
            errors[k] = errors.get(k, 0) + n
        return Counters(
            requests=self.requests + other.requests,
            errors=errors,
            latency=self.latency + other.latency,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            priced=self.priced + other.priced,
            outputs_checked=self.outputs_checked + other.outputs_checked,
            outputs_valid=self.outputs_valid + other.outputs_valid,
            compared=self.compared + other.compared,
            agreed=self.agreed + other.agreed,
            task_compared=self.task_compared + other.task_compared,
            task_agreed=self.task_agreed + other.task_agreed,
        )

    def minus(self, before: Counters) -> Counters:
        """The increase from ``before`` to ``self`` (same process); a counter reset yields ``self``."""
        if self.requests < before.requests or self.priced < before.priced or self.compared < before.compared \
                or self.outputs_checked < before.outputs_checked:
            return self
        return Counters(
            requests=self.requests - before.requests,
            errors={k: max(0, n - before.errors.get(k, 0)) for k, n in self.errors.items()},
            latency=self.latency.minus(before.latency),
            prompt_tokens=max(0, self.prompt_tokens - before.prompt_tokens),
            completion_tokens=max(0, self.completion_tokens - before.completion_tokens),
            cost_usd=max(0.0, self.cost_usd - before.cost_usd),
            priced=self.priced - before.priced,
            outputs_checked=self.outputs_checked - before.outputs_checked,
            outputs_valid=max(0, self.outputs_valid - before.outputs_valid),
            compared=self.compared - before.compared,
            agreed=max(0, self.agreed - before.agreed),
            task_compared=max(0, self.task_compared - before.task_compared),
            task_agreed=max(0, self.task_agreed - before.task_agreed),
        )

    # -- wire form ----------------------------------------------------------------------
    @staticmethod
    def of(w: VariantCounters) -> Counters:
        """From the sidecar's wire form (``modelroute.api.stats.VariantCounters``)."""
        return Counters(
            requests=w.requests,
            errors=dict(w.errors),
            latency=Histogram(tuple(w.latency.le), tuple(w.latency.counts), w.latency.sum),
            prompt_tokens=w.tokens.prompt,
            completion_tokens=w.tokens.completion,
            cost_usd=w.cost.usd,
            priced=w.cost.priced,
            outputs_checked=w.outputs.checked,
            outputs_valid=w.outputs.valid,
            compared=w.agreement.compared,
            agreed=w.agreement.agreed,
            task_compared=w.agreement.task_compared,
            task_agreed=w.agreement.task_agreed,
        )

    def wire(self) -> VariantCounters:
        return VariantCounters(
            requests=self.requests,
            errors=dict(self.errors),
            latency=LatencyHistogram(le=list(self.latency.bounds), counts=list(self.latency.counts), sum=self.latency.sum),
            tokens=TokenCounts(prompt=self.prompt_tokens, completion=self.completion_tokens),
            cost=CostCounts(usd=self.cost_usd, priced=self.priced),
            outputs=OutputCounts(checked=self.outputs_checked, valid=self.outputs_valid),
            agreement=AgreementCounts(compared=self.compared, agreed=self.agreed,
                                      task_compared=self.task_compared, task_agreed=self.task_agreed),
        )


def total(parts: Iterable[Counters]) -> Counters:
    """Sum of counters (over pods, or over variants such as canary + mirror)."""
    out = Counters()
    for c in parts:
        out = out + c
    return out


def window(before: Mapping[str, Counters], after: Mapping[str, Counters]) -> Counters:
    """What happened between two sets of per-instance cumulative snapshots, summed over instances.

    Keys are sidecar *instances* (pod uid plus process start, so a restarted sidecar is a new
    key). An instance only in ``after`` contributes all of its counts; one only in ``before``
    (pod gone) contributes nothing; a counter that went down is treated as a reset.
    """
    return total(now.minus(before[k]) if k in before else now for k, now in after.items())


def evidence_from_stats(stats_by_pod: Mapping[str, SidecarStats], route: str, run_id: str) -> tuple[Counters, Counters]:
    """(stable, canary) evidence of one rollout run, summed over the sidecars' ``/stats`` documents.

    Counters start at zero for a new run id, so the cumulative values *are* the run's
    evidence and no baseline is needed. The canary's evidence is its live counters plus its
    mirrored ones. A pod reporting another run (not yet switched, or already moved on)
    contributes nothing.
    """
    stable, canary = Counters(), Counters()
    for doc in stats_by_pod.values():
        entry = doc.rollouts.get(route)
        if entry is None or entry.run != run_id:
            continue
        parsed = {k: Counters.of(v) for k, v in entry.variants.items()}
        stable = stable + parsed.get("stable", Counters())
        canary = canary + parsed.get("canary", Counters()) + parsed.get("mirror", Counters())
    return stable, canary
