"""Evidence aggregation (sum over pods, deltas with resets, p95) and per-metric verdicts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelroute.api.stats import SidecarStats, VariantCounters
from modelroute.api.v1alpha1.strategy import Analysis, Verdict
from modelroute.operator.rollout import (
    Counters,
    Histogram,
    canary_evidence,
    evaluate,
    evidence_from_stats,
    total,
    window,
)

from .rollout_sim import BOUNDS, counters


def hist(*counts: int) -> Histogram:
    return Histogram(BOUNDS, tuple(counts), 0.0)


def test_p95_interpolates_inside_the_bucket_like_histogram_quantile() -> None:
    h = hist(50, 40, 10, 0, 0, 0, 0)   # 100 observations: p95 is halfway into (0.1, 0.25]
    assert h.quantile(0.95) == pytest.approx(0.175)
    assert h.quantile(0.5) == pytest.approx(0.05)
    assert hist(0, 0, 0, 0, 0, 0, 5).quantile(0.95) == 2.5, "+Inf bucket: the highest finite bound"
    assert hist(0, 0, 0, 0, 0, 0, 0).quantile(0.95) is None


def test_histograms_merge_only_with_equal_bounds() -> None:
    assert (hist(1, 2, 0, 0, 0, 0, 0) + hist(0, 1, 1, 0, 0, 0, 0)).counts == (1, 3, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="different bucket bounds"):
        _ = hist(1, 0, 0, 0, 0, 0, 0) + Histogram((1.0,), (1, 0), 0.1)
    with pytest.raises(ValueError, match="counts"):
        Histogram((1.0,), (1,), 0.0)


def test_sum_over_pods_and_window_with_a_restarted_sidecar() -> None:
    before = {"pod-a/1": counters(100, errors=1), "pod-b/1": counters(50), "pod-gone/1": counters(999)}
    after = {
        "pod-a/1": counters(160, errors=4),   # +60, +3 errors
        "pod-b/1": counters(20),              # went down: the process restarted under the same key
        "pod-c/1": counters(30, errors=30),   # new pod: everything counts
    }
    w = window(before, after)
    assert w.requests == 60 + 20 + 30 and w.failed == 3 + 30
    assert w.latency.count == 110
    assert total(after.values()).requests == 210


def test_wire_form_round_trips_and_missing_keys_are_zero() -> None:
    c = counters(10, errors=2) + Counters(cost_usd=0.5, priced=10, outputs_checked=10, outputs_valid=9)
    assert Counters.of(c.wire()) == c
    assert Counters.of(VariantCounters.model_validate({"requests": 3})) == Counters(requests=3)
    assert Counters(errors={"cancelled": 5, "timeout": 2}).failed == 2, "the app going away is not the revision's fault"


def test_verdicts_per_metric() -> None:
    spec = Analysis(min_samples=100, max_error_rate=0.02, max_latency_p95_ratio=1.25, min_agreement=0.95,
                    min_valid_output_rate=0.99, max_cost_ratio=1.5)
    stable = counters(1000) + Counters(cost_usd=1.0, priced=1000)
    good = canary_evidence(counters(150), counters(150, agree=0.97)) + Counters(
        cost_usd=0.36, priced=300, outputs_checked=300, outputs_valid=300)
    j = evaluate(spec, stable, good)
    assert j.verdict is Verdict.PASS, j.summary()
    by = {m.name: m for m in j.metrics}
    assert by["costRatio"].value == pytest.approx(1.2) and by["agreement"].value == pytest.approx((150 + 146) / 300)
    assert by["latencyP95Ratio"].value == pytest.approx(1.0)

    slow = counters(300, latency_bucket=3) + Counters(cost_usd=0.3, priced=300, outputs_checked=300, outputs_valid=300)
    j = evaluate(spec, stable, slow)
    assert j.verdict is Verdict.FAIL and [m.name for m in j.failing()] == ["latencyP95Ratio"]
    assert "latencyP95Ratio" in j.summary() and ">" in j.summary()


def test_no_data_is_inconclusive_never_pass_or_fail() -> None:
    spec = Analysis(min_samples=200, max_error_rate=0.02, min_agreement=0.95)
    j = evaluate(spec, counters(1000), counters(50, errors=50, agree=0.0))
    assert j.verdict is Verdict.INCONCLUSIVE, "50 failures out of 50 are still too few to judge"
    assert {m.verdict for m in j.metrics} == {Verdict.INCONCLUSIVE}
    assert "only 50 samples" in j.summary()
    # No thresholds at all: still needs minSamples before it may pass.
    assert evaluate(Analysis(min_samples=10), Counters(), Counters(requests=5)).verdict is Verdict.INCONCLUSIVE
    assert evaluate(Analysis(min_samples=10), Counters(), Counters(requests=10)).verdict is Verdict.PASS


def test_cost_ratio_with_a_free_stable() -> None:
    spec = Analysis(min_samples=1, max_cost_ratio=2)
    free = Counters(requests=10, priced=10)
    assert evaluate(spec, free, Counters(requests=10, priced=10)).verdict is Verdict.PASS
    assert evaluate(spec, free, Counters(requests=10, priced=10, cost_usd=0.1)).verdict is Verdict.FAIL
    unpriced = evaluate(spec, Counters(requests=10), Counters(requests=10))
    assert unpriced.verdict is Verdict.INCONCLUSIVE, "no prices: cannot judge cost"


def test_evidence_from_sidecar_stats_counts_only_this_run() -> None:
    def doc(run: str, stable: int, canary: int, mirror: int) -> SidecarStats:
        return SidecarStats.model_validate({"rollouts": {"classify": {"run": run, "revision": run.split(".")[0], "variants": {
            "stable": counters(stable).wire(), "canary": counters(canary, errors=1).wire(),
            "mirror": counters(mirror).wire()}}}})

    stats = {
        "pod-a": doc("b.0", 100, 5, 40),
        "pod-b": doc("b.0", 80, 4, 30),
        "pod-c": doc("a.3", 999, 999, 999),             # still on an older run: ignored
        "pod-d": SidecarStats.model_validate({"routes": {}}),   # no rollout counters yet
    }
    with pytest.raises(ValidationError, match="histogram needs 2 counts"):   # a malformed document never gets this far
        SidecarStats.model_validate(
            {"rollouts": {"classify": {"run": "b.0", "revision": "b", "variants": {"canary": {"latency": {"le": [1.0], "counts": [1]}}}}}})
    stable, canary = evidence_from_stats(stats, "classify", "b.0")
    assert stable.requests == 180 and canary.requests == 5 + 40 + 4 + 30 and canary.failed == 2
    assert canary.compared == 79


def test_the_analysis_is_one_table_entry_per_metric() -> None:
    """Every metric of ``ANALYSIS_METRICS`` has a threshold field in ``Analysis`` and one measure; status lists them in table order."""
    from modelroute.api.v1alpha1.strategy import ANALYSIS_METRICS
    from modelroute.operator.rollout.analysis import MEASURES

    assert MEASURES.keys() == ANALYSIS_METRICS.keys()
    fields = {name: 0.5 for name, _ in ANALYSIS_METRICS.values()}
    assert set(fields) <= set(Analysis.model_fields)
    j = evaluate(Analysis(min_samples=1, **fields), counters(10), counters(10))
    assert [m.name for m in j.metrics] == ["samples", *ANALYSIS_METRICS]


def test_p99_ratio_catches_a_tail_the_p95_hides() -> None:
    stable = Counters(requests=1000, latency=hist(500, 500, 0, 0, 0, 0, 0))
    # 3% of the canary's answers are very slow: p95 is unchanged, p99 is far out.
    tail = Counters(requests=1000, latency=hist(500, 470, 0, 0, 0, 0, 30))
    spec = Analysis(min_samples=100, max_latency_p95_ratio=1.25, max_latency_p99_ratio=2.0)
    j = evaluate(spec, stable, tail)
    by = {m.name: m for m in j.metrics}
    assert by["latencyP95Ratio"].verdict is Verdict.PASS and by["latencyP99Ratio"].verdict is Verdict.FAIL, j.summary()
    assert by["latencyP99Ratio"].value is not None and by["latencyP99Ratio"].value > 2.0
    assert "latencyP99Ratio" in j.summary() and ">" in j.summary()
    assert Analysis.model_validate({"maxLatencyP99Ratio": 1.5}).max_latency_p99_ratio == 1.5
    with pytest.raises(ValidationError):
        Analysis.model_validate({"maxLatencyP99Ratio": 0})


def test_task_agreement_judges_only_mirrored_task_requests() -> None:
    # 200 compared answers: 100 chat (free text, 40 agree) and 100 tasks (97 agree).
    canary = Counters(requests=200, compared=200, agreed=137, task_compared=100, task_agreed=97)
    j = evaluate(Analysis(min_samples=100, min_task_agreement=0.95), Counters(), canary)
    by = {m.name: m for m in j.metrics}
    assert j.verdict is Verdict.PASS and by["taskAgreement"].value == pytest.approx(0.97) and by["taskAgreement"].samples == 100
    assert evaluate(Analysis(min_samples=100, min_agreement=0.95), Counters(), canary).verdict is Verdict.FAIL
    worse = Counters(requests=200, compared=200, agreed=170, task_compared=100, task_agreed=70)
    assert [m.name for m in evaluate(Analysis(min_samples=100, min_task_agreement=0.95), Counters(), worse).failing()] == ["taskAgreement"]
    no_tasks = Counters(requests=200, compared=200, agreed=200)
    assert evaluate(Analysis(min_samples=100, min_task_agreement=0.95), Counters(), no_tasks).verdict is Verdict.INCONCLUSIVE
    # Summed over pods and windows like the other counters; round-trips through /stats.
    assert (canary + worse).task_compared == 200 and canary.minus(Counters()).task_agreed == 97
    assert Counters.of(canary.wire()) == canary
