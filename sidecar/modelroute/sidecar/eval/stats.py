"""Paired statistics for comparing two revisions on the same cases (pure functions, no I/O).

Why a module of its own: the verdict of ``modelroute eval --baseline --candidate`` is only as
honest as these numbers, so they are small, textbook methods with unit and property tests.

* ``wilson``: Wilson score interval of one proportion (Newcombe 1998a, method 3).
* ``newcombe_paired``: CI of the difference of two paired proportions from Wilson intervals
  with the phi correction (Newcombe 1998b, "method 10"; Tango's table layout ``a b / c d``).
* ``mcnemar_exact``: two-sided exact McNemar test (binomial on the discordant pairs, p = 1/2).
* ``paired_bootstrap``: percentile CI of the same difference by resampling cases (fixed seed).
* ``verdict``: better / worse / no significant difference / too few cases.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from modelroute.api.evaluation import Verdict

MIN_PAIRED_CASES = 20
"""Fewer scored pairs than this: no verdict is claimed, whatever the numbers say."""


@dataclass(frozen=True)
class PairedCounts:
    """The 2x2 table of paired outcomes (correct or not) of baseline and candidate."""

    both: int = 0             # both correct
    baseline_only: int = 0    # baseline correct, candidate wrong
    candidate_only: int = 0   # candidate correct, baseline wrong
    neither: int = 0          # both wrong

    @property
    def n(self) -> int:
        return self.both + self.baseline_only + self.candidate_only + self.neither

    @property
    def difference(self) -> float | None:
        """Candidate accuracy minus baseline accuracy (None without pairs)."""
        return (self.candidate_only - self.baseline_only) / self.n if self.n else None

    @staticmethod
    def of(pairs: Sequence[tuple[bool, bool]]) -> PairedCounts:
        """Counts of (baseline correct, candidate correct) pairs."""
        return PairedCounts(
            sum(1 for b, c in pairs if b and c), sum(1 for b, c in pairs if b and not c),
            sum(1 for b, c in pairs if c and not b), sum(1 for b, c in pairs if not b and not c))


def z_of(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` trials; (0, 1) when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError("need 0 <= k <= n")
    z = z_of(confidence)
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    # The bounds at k = 0 and k = n are exactly 0 and 1 (rounding would leave 1e-17 and 0.9999999999999998).
    lo = 0.0 if k == 0 else max(0.0, (centre - half) / denom)
    hi = 1.0 if k == n else min(1.0, (centre + half) / denom)
    return lo, hi


def newcombe_paired(t: PairedCounts, confidence: float = 0.95) -> tuple[float, float]:
    """CI of candidate minus baseline accuracy on paired cases (Newcombe's method 10).

    Each revision's accuracy gets a Wilson interval; the two are combined with the phi
    coefficient of the 2x2 table, so agreement between the revisions narrows the interval.
    Always contains the point estimate and stays within [-1, 1]; (-1, 1) with no pairs.
    """
    n = t.n
    if n == 0:
        return -1.0, 1.0
    cand_k, base_k = t.both + t.candidate_only, t.both + t.baseline_only
    p1, p2 = cand_k / n, base_k / n
    l1, u1 = wilson(cand_k, n, confidence)
    l2, u2 = wilson(base_k, n, confidence)
    a, b, c, d = t.both, t.candidate_only, t.baseline_only, t.neither   # rows: candidate, columns: baseline
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    if not margins or 0 <= cross <= n / 2:
        phi = 0.0
    else:   # positive association is shrunk by n/2 (Newcombe's correction), negative taken as is
        phi = (cross - n / 2 if cross > 0 else cross) / math.sqrt(margins)
    dl, du = p1 - l1, u2 - p2
    el, eu = u1 - p1, p2 - l2
    delta = math.sqrt(max(0.0, dl * dl - 2 * phi * dl * du + du * du))
    eps = math.sqrt(max(0.0, el * el - 2 * phi * el * eu + eu * eu))
    diff = p1 - p2
    return max(-1.0, diff - delta), min(1.0, diff + eps)


def mcnemar_exact(baseline_only: int, candidate_only: int) -> float:
    """Two-sided exact McNemar p-value: P(as extreme a split of the discordant pairs | no difference)."""
    m = baseline_only + candidate_only
    if m == 0:
        return 1.0
    k = min(baseline_only, candidate_only)
    tail = sum(math.comb(m, i) for i in range(k + 1)) / (1 << m)   # exact integers: no overflow for large m
    return min(1.0, 2 * tail)


def paired_bootstrap(pairs: Sequence[tuple[bool, bool]], confidence: float = 0.95, *,
                     resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of candidate minus baseline accuracy, resampling whole cases (deterministic per ``seed``)."""
    n = len(pairs)
    if n == 0:
        return -1.0, 1.0
    diffs_by_case = [int(c) - int(b) for b, c in pairs]
    rng = random.Random(seed)
    stats = sorted(sum(rng.choices(diffs_by_case, k=n)) / n for _ in range(resamples))
    alpha = 1 - confidence
    lo = stats[max(0, math.floor(alpha / 2 * resamples))]
    hi = stats[min(resamples - 1, math.ceil((1 - alpha / 2) * resamples) - 1)]
    point = sum(diffs_by_case) / n
    return min(lo, point), max(hi, point)


def verdict(t: PairedCounts, ci: tuple[float, float], p_value: float, *, alpha: float = 0.05,
            min_cases: int = MIN_PAIRED_CASES) -> tuple[Verdict, str]:
    """The verdict and a sentence saying it: a winner only when the CI excludes 0 and McNemar agrees."""
    n = t.n
    if n < min_cases:
        return Verdict.TOO_FEW_CASES, (f"too few cases to judge: {n} scored pairs, at least {min_cases} needed; "
                                       "no winner is claimed")
    lo, hi = ci
    pct = f"{round(100 * (1 - alpha))}%"
    if lo > 0 and p_value < alpha:
        return Verdict.BETTER, f"candidate better at {n} cases ({pct} CI of the difference excludes 0, p={p_value:.3g})"
    if hi < 0 and p_value < alpha:
        return Verdict.WORSE, f"candidate worse at {n} cases ({pct} CI of the difference excludes 0, p={p_value:.3g})"
    return Verdict.NO_SIGNIFICANT_DIFFERENCE, f"no significant difference at {n} cases (p={p_value:.3g})"
