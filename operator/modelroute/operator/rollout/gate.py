"""Judge a golden-dataset run (``modelroute eval`` numbers) against a gate's thresholds. Pure.

The gate runs the dataset against the new revision before any live traffic; its results
arrive here as the numbers ``modelroute eval --json`` prints for one target or revision
(``GateResults.from_eval_json``) and become the ``GateStatus`` the state machine consumes.
A relative threshold (``maxAccuracyDrop``) compares with stable's numbers on the same cases,
which the sidecar runs beside the canary's when asked (``EvalRequest.baseline``).
Unlike live analysis there is no ``minSamples``: the dataset is the sample, chosen by people.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modelroute.api.evalgate import EvalTargetSummary
from modelroute.api.v1alpha1.strategy import (
    GateRevisionResult,
    GateStatus,
    GateThresholds,
    MetricResult,
    Verdict,
)
from modelroute.operator.rollout.analysis import describe, overall


@dataclass(frozen=True)
class GateResults:
    """One revision's numbers on the dataset."""

    cases: int
    errors: int
    exact_match: float | None       # None: the dataset has no expectations
    valid_output_rate: float
    latency_p95_seconds: float | None

    @staticmethod
    def from_summary(summary: EvalTargetSummary) -> GateResults:
        """From the sidecar's ``POST /eval`` answer (one entry of ``modelroute eval --json``'s ``targets``)."""
        p95_ms = summary.latency_ms.p95
        return GateResults(
            cases=summary.cases, errors=summary.errors, exact_match=summary.exact_match,
            valid_output_rate=summary.valid_output_rate,
            latency_p95_seconds=None if p95_ms is None else p95_ms / 1000,
        )

    def status(self, revision: str, role: Literal["candidate", "stable"]) -> GateRevisionResult:
        return GateRevisionResult(revision=revision, role=role, cases=self.cases, errors=self.errors,
                                  exact_match=self.exact_match, valid_output_rate=self.valid_output_rate,
                                  latency_p95_seconds=self.latency_p95_seconds)

    @staticmethod
    def from_eval_json(doc: Mapping[str, Any]) -> GateResults:
        """From one entry of ``modelroute eval --json``'s ``targets`` (validated as ``EvalTargetSummary``)."""
        return GateResults.from_summary(EvalTargetSummary.model_validate(doc))


def _check(name: str, value: float | None, threshold: float, samples: int, *, upper: bool) -> MetricResult:
    if value is None or samples == 0:
        verdict = Verdict.FAIL   # a gate that cannot measure what it is asked to must not pass
    elif upper:
        verdict = Verdict.FAIL if value > threshold else Verdict.PASS
    else:
        verdict = Verdict.FAIL if value < threshold else Verdict.PASS
    return MetricResult(name=name, value=value, threshold=threshold, samples=samples, verdict=verdict)


def _accuracy_drop(results: GateResults, baseline: GateResults | None) -> float | None:
    if baseline is None or baseline.exact_match is None or results.exact_match is None:
        return None   # nothing to compare with: the gate fails rather than pass unmeasured
    return baseline.exact_match - results.exact_match


def gate_status(thresholds: GateThresholds, results: GateResults, *, baseline: GateResults | None = None,
                revision: str = "", baseline_revision: str = "") -> GateStatus:
    """Pass only if every configured threshold holds; the message carries the numbers.

    ``baseline``: stable's numbers on the same cases, for relative thresholds (``maxAccuracyDrop``);
    both revisions' numbers go to ``status.revisions``."""
    n = results.cases
    metrics: list[MetricResult] = []
    if thresholds.min_exact_match is not None:
        metrics.append(_check("exactMatch", results.exact_match, thresholds.min_exact_match, n, upper=False))
    if thresholds.min_valid_output_rate is not None:
        metrics.append(_check("validOutputRate", results.valid_output_rate, thresholds.min_valid_output_rate, n, upper=False))
    if thresholds.max_error_rate is not None:
        rate = results.errors / n if n else None
        metrics.append(_check("errorRate", rate, thresholds.max_error_rate, n, upper=True))
    if thresholds.max_latency_p95_seconds is not None:
        metrics.append(_check("latencyP95Seconds", results.latency_p95_seconds, thresholds.max_latency_p95_seconds,
                              n - results.errors, upper=True))
    if thresholds.max_accuracy_drop is not None:
        metrics.append(_check("accuracyDrop", _accuracy_drop(results, baseline), thresholds.max_accuracy_drop,
                              min(n, baseline.cases) if baseline is not None else 0, upper=True))
    verdict = overall(metrics) if metrics else (Verdict.PASS if n else Verdict.FAIL)
    text = "; ".join(describe(m) for m in metrics) or f"{n} cases, no thresholds"
    if baseline is not None:
        text += f"; exact match {_pct(results.exact_match)} vs stable {_pct(baseline.exact_match)}"
    revisions = [results.status(revision, "candidate")]
    if baseline is not None:
        revisions.append(baseline.status(baseline_revision, "stable"))
    return GateStatus(verdict=verdict, metrics=metrics, message=f"{text} ({n} cases)"[:1024], revisions=revisions)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"
