"""The comparison statistics checked against an independent implementation (scipy, a dev dependency only).

``test_stats.py`` holds the published values (Newcombe 1998; Fagerland, Lydersen & Laake's Cavo et al.
example, -0.1186 to -0.0046, which the R package contingencytables reproduces in its tests); here
every Wilson interval, exact McNemar p-value, Newcombe paired interval and percentile bootstrap is
compared with scipy's own computation over many tables.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp

from modelroute.sidecar.eval.stats import (
    PairedCounts,
    mcnemar_exact,
    newcombe_paired,
    paired_bootstrap,
    wilson,
)

levels = st.sampled_from([0.8, 0.9, 0.95, 0.99, 0.999])


def scipy_wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    ci = sp.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))), levels)
def test_wilson_is_scipys(kn: tuple[int, int], confidence: float) -> None:
    k, n = kn
    ours, theirs = wilson(k, n, confidence), scipy_wilson(k, n, confidence)
    assert ours == pytest.approx(theirs, abs=1e-12), (k, n, confidence)


@given(st.integers(0, 300), st.integers(0, 300))
def test_mcnemar_exact_is_scipys_two_sided_binomial_test(b: int, c: int) -> None:
    expected = 1.0 if b + c == 0 else sp.binomtest(min(b, c), b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def reference_newcombe_paired(t: PairedCounts, confidence: float) -> tuple[float, float]:
    """Newcombe (1998) method 10 written from the paper with scipy's Wilson intervals (rows: candidate)."""
    a, b, c, d, n = t.both, t.candidate_only, t.baseline_only, t.neither, t.n
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = scipy_wilson(a + b, n, confidence)
    l2, u2 = scipy_wilson(a + c, n, confidence)
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    corrected = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    phi = corrected / math.sqrt(denom) if denom else 0.0
    lower = (p1 - p2) - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    upper = (p1 - p2) + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, lower), min(1.0, upper)


@given(st.builds(PairedCounts, st.integers(0, 80), st.integers(0, 80), st.integers(0, 80), st.integers(0, 80)), levels)
def test_newcombe_paired_matches_the_formula_with_scipys_wilson(t: PairedCounts, confidence: float) -> None:
    if t.n == 0:
        return
    assert newcombe_paired(t, confidence) == pytest.approx(reference_newcombe_paired(t, confidence), abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 40), st.integers(0, 15), st.integers(0, 15), st.integers(0, 10))
def test_the_paired_bootstrap_agrees_with_scipys_percentile_bootstrap(both: int, base: int, cand: int, neither: int) -> None:
    pairs = [(True, True)] * both + [(True, False)] * base + [(False, True)] * cand + [(False, False)] * neither
    if len(pairs) < 20:
        return
    if base == cand == 0:   # every case agrees: scipy calls the distribution degenerate (nan); ours is the point
        assert paired_bootstrap(pairs) == (0.0, 0.0)
        return
    diffs = np.array([int(c) - int(b) for b, c in pairs], dtype=float)
    ref = sp.bootstrap((diffs,), np.mean, confidence_level=0.95, method="percentile", n_resamples=20000,
                       rng=np.random.default_rng(1)).confidence_interval
    lo, hi = paired_bootstrap(pairs, 0.95, resamples=4000, seed=3)
    # Monte Carlo error of two resampling runs, and one case's step (1/n) at the percentile.
    tolerance = 0.02 + 1 / len(pairs)
    assert lo == pytest.approx(ref.low, abs=tolerance) and hi == pytest.approx(ref.high, abs=tolerance), (pairs, ref)
