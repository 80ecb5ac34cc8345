"""Judge a canary revision against stable from their counters: one verdict per metric.

Pure: ``evaluate(spec, stable, canary)`` -> ``Judgement``. Table-driven: each metric is one
entry of ``ANALYSIS_METRICS`` (its threshold field and bound, in the API) and one of
``MEASURES`` (how it is measured); a new metric is a row in each. Only thresholds that are set are
checked, plus ``samples`` (canary requests against ``minSamples``), which is always there so
an analysis with no thresholds still refuses to pass on no data.

A metric with fewer than ``minSamples`` observations is Inconclusive: never Pass, never Fail.
The overall verdict is Fail if any metric failed, else Inconclusive if any was, else Pass.
Canary evidence is the canary's live counters plus its mirrored ones (``canary_evidence``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modelroute.api.v1alpha1.strategy import ANALYSIS_METRICS, UPPER_BOUNDS, Analysis, MetricResult, Verdict
from modelroute.operator.rollout.counters import Counters

RATIO_CAP = 1e6
"""Stands for an infinite ratio (JSON and the apiserver have no infinity)."""


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    metrics: tuple[MetricResult, ...]

    def failing(self) -> list[MetricResult]:
        return [m for m in self.metrics if m.verdict is Verdict.FAIL]

    def summary(self) -> str:
        """``errorRate 0.2 > 0.02 (500 samples); agreement ...`` for the failing or inconclusive metrics."""
        bad = [m for m in self.metrics if m.verdict is not Verdict.PASS]
        return "; ".join(describe(m) for m in bad) if bad else "all metrics pass"


def describe(m: MetricResult) -> str:
    """One metric in a human sentence fragment."""
    if m.verdict is Verdict.INCONCLUSIVE:
        if m.name == "samples" or m.value is None:
            return f"{m.name}: only {m.samples} samples"
        return f"{m.name}: {_fmt(m.value)} on only {m.samples} samples"
    rel = ">" if m.name in UPPER_BOUNDS else "<"
    if m.verdict is Verdict.PASS:
        rel = {">": "<=", "<": ">="}[rel]
    return f"{m.name} {_fmt(m.value)} {rel} {_fmt(m.threshold)} ({m.samples} samples)"


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= RATIO_CAP:
        return "inf"
    return f"{v:.4g}"


def canary_evidence(live: Counters, mirrored: Counters) -> Counters:
    """The canary revision's evidence: requests it answered plus requests mirrored to it."""
    return live + mirrored


def _metric(name: str, value: float | None, threshold: float, samples: int, min_samples: int, *, upper: bool) -> MetricResult:
    if samples < min_samples or value is None:
        verdict = Verdict.INCONCLUSIVE
    elif upper:
        verdict = Verdict.FAIL if value > threshold else Verdict.PASS
    else:
        verdict = Verdict.FAIL if value < threshold else Verdict.PASS
    return MetricResult(name=name, value=value, threshold=threshold, samples=samples, verdict=verdict)


def _ratio(canary: float | None, stable: float | None) -> float | None:
    if canary is None or stable is None:
        return None
    if stable <= 0:
        return 1.0 if canary <= 0 else RATIO_CAP  # stable free, canary not: as bad as it gets
    return canary / stable


# ---- the metrics: one measure per entry of ``ANALYSIS_METRICS`` ---------------------------

Measured = tuple[float | None, int]   # (value, the observations it rests on)
Measure = Callable[[Counters, Counters], Measured]   # (stable, canary) -> measured


def _rate(part: int, whole: int) -> Measured:
    return (part / whole if whole else None), whole


def _latency_ratio(q: float) -> Measure:
    def measure(stable: Counters, canary: Counters) -> Measured:
        return _ratio(canary.latency.quantile(q), stable.latency.quantile(q)), min(canary.latency.count, stable.latency.count)
    return measure


def _cost_ratio(stable: Counters, canary: Counters) -> Measured:
    per_c = canary.cost_usd / canary.priced if canary.priced else None
    per_s = stable.cost_usd / stable.priced if stable.priced else None
    return _ratio(per_c, per_s), min(canary.priced, stable.priced)


MEASURES: dict[str, Measure] = {
    "errorRate": lambda _s, c: _rate(c.failed, c.requests),
    "latencyP95Ratio": _latency_ratio(0.95),
    "latencyP99Ratio": _latency_ratio(0.99),
    "validOutputRate": lambda _s, c: _rate(c.outputs_valid, c.outputs_checked),
    "agreement": lambda _s, c: _rate(c.agreed, c.compared),
    "taskAgreement": lambda _s, c: _rate(c.task_agreed, c.task_compared),
    "costRatio": _cost_ratio,
}
assert MEASURES.keys() == ANALYSIS_METRICS.keys(), "every analysis metric needs exactly one measure"


def evaluate(spec: Analysis, stable: Counters, canary: Counters) -> Judgement:
    """Per-metric verdicts for ``canary`` (vs ``stable`` where the metric is a ratio): one per threshold set."""
    n = spec.min_samples
    out = [MetricResult(
        name="samples", value=float(canary.requests), threshold=float(n), samples=canary.requests,
        verdict=Verdict.PASS if canary.requests >= n else Verdict.INCONCLUSIVE,
    )]
    for name, (field_name, upper) in ANALYSIS_METRICS.items():
        threshold = getattr(spec, field_name)
        if threshold is not None:
            value, samples = MEASURES[name](stable, canary)
            out.append(_metric(name, value, threshold, samples, n, upper=upper))
    return Judgement(overall(out), tuple(out))


def overall(metrics: list[MetricResult]) -> Verdict:
    verdicts = {m.verdict for m in metrics}
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.INCONCLUSIVE in verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS
