"""The statistics of a revision comparison: textbook values and properties (hypothesis).

Checked: the Wilson rows equal scipy's Wilson interval (``test_stats_reference.py`` compares the two
everywhere); the Cavo et al. paired interval is the one the R package contingencytables (Fagerland et al.'s
code) asserts in its tests; Newcombe's example (a) equals method 10 computed from the paper's formula
with scipy's Wilson intervals.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelroute.api.evaluation import Verdict
from modelroute.sidecar.eval import compare, stats
from modelroute.sidecar.eval.stats import (
    PairedCounts,
    mcnemar_exact,
    newcombe_paired,
    paired_bootstrap,
    verdict,
    wilson,
)


def _close(got: tuple[float, float], want: tuple[float, float]) -> None:
    """Equal to the 4 decimals textbooks print."""
    assert got[0] == pytest.approx(want[0], abs=5e-5) and got[1] == pytest.approx(want[1], abs=5e-5), (got, want)


@pytest.mark.parametrize(("k", "n", "lo", "hi"), [
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I, method 3 (Wilson).
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
])
def test_wilson_agrees_with_newcombe_1998(k: int, n: int, lo: float, hi: float) -> None:
    _close(wilson(k, n), (lo, hi))


def test_wilson_bounds_at_all_and_none_are_exactly_one_and_zero() -> None:
    # Regression: rounding left 0.9999999999999998 at k = n, and matplotlib refused the negative error bar.
    assert wilson(40, 40)[1] == 1.0 and wilson(0, 40)[0] == 0.0
    assert wilson(40, 40)[0] == pytest.approx(0.9124, abs=5e-5) and wilson(0, 40)[1] == pytest.approx(0.0876, abs=5e-5)


def test_newcombe_paired_agrees_with_published_examples() -> None:
    # Newcombe (1998), "Improved confidence intervals for the difference between binomial proportions based on
    # paired data", example (a): 36 both, 12 first only, 2 second only, 0 neither; method 10.
    _close(newcombe_paired(PairedCounts(both=36, candidate_only=12, baseline_only=2, neither=0)), (0.0569, 0.3404))
    # Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables", ch. 8 (Cavo et al. 2012): 59 6 / 16 80.
    _close(newcombe_paired(PairedCounts(both=59, candidate_only=6, baseline_only=16, neither=80)), (-0.1186, -0.0046))


def test_mcnemar_exact_is_the_binomial_tail() -> None:
    assert mcnemar_exact(2, 12) == pytest.approx(2 * (1 + 14 + 91) / 2 ** 14)   # 0.01294
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625) and mcnemar_exact(0, 6) == pytest.approx(0.03125)


def test_bootstrap_is_deterministic_per_seed() -> None:
    pairs = [(True, True)] * 30 + [(False, True)] * 12 + [(True, False)] * 1 + [(False, False)] * 5
    assert paired_bootstrap(pairs, seed=7) == paired_bootstrap(pairs, seed=7)
    lo, hi = paired_bootstrap(pairs, seed=7)
    assert 0 < lo < 11 / 48 < hi < 0.4


counts = st.builds(PairedCounts, st.integers(0, 60), st.integers(0, 60), st.integers(0, 60), st.integers(0, 60))
levels = st.sampled_from([0.8, 0.9, 0.95, 0.99])


@given(counts, levels)
def test_newcombe_ci_contains_the_estimate_and_stays_in_range(t: PairedCounts, conf: float) -> None:
    lo, hi = newcombe_paired(t, conf)
    assert -1 <= lo <= hi <= 1
    if t.n:
        assert t.difference is not None and lo <= t.difference <= hi


@given(counts, st.integers(2, 5))
def test_newcombe_ci_narrows_as_n_grows(t: PairedCounts, k: int) -> None:
    bigger = PairedCounts(k * t.both, k * t.baseline_only, k * t.candidate_only, k * t.neither)
    lo, hi = newcombe_paired(t)
    blo, bhi = newcombe_paired(bigger)
    assert bhi - blo <= hi - lo + 1e-12
    if t.n:
        assert bhi - blo < hi - lo


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=80), levels)
def test_bootstrap_ci_contains_the_estimate(pairs: list[tuple[bool, bool]], conf: float) -> None:
    lo, hi = paired_bootstrap(pairs, conf, resamples=200)
    diff = PairedCounts.of(pairs).difference
    assert diff is not None and -1 <= lo <= diff <= hi <= 1


@given(st.integers(0, 200), st.integers(0, 200))
def test_mcnemar_is_symmetric_and_a_probability(b: int, c: int) -> None:
    p = mcnemar_exact(b, c)
    assert p == mcnemar_exact(c, b) and 0 < p <= 1
    if b == c:
        assert p == 1.0


@given(counts)
def test_a_winner_needs_a_ci_excluding_zero_and_enough_pairs(t: PairedCounts) -> None:
    ci = newcombe_paired(t)
    v, message = verdict(t, ci, mcnemar_exact(t.baseline_only, t.candidate_only))
    if t.n < stats.MIN_PAIRED_CASES:
        assert v is Verdict.TOO_FEW_CASES and "no winner" in message
    elif v is Verdict.BETTER:
        assert ci[0] > 0 and t.candidate_only > t.baseline_only
    elif v is Verdict.WORSE:
        assert ci[1] < 0 and t.baseline_only > t.candidate_only
    else:
        assert message.startswith(f"no significant difference at {t.n} cases")


def test_verdicts() -> None:
    better = PairedCounts(both=30, baseline_only=1, candidate_only=15, neither=4)
    assert verdict(better, newcombe_paired(better), mcnemar_exact(1, 15))[0] is Verdict.BETTER
    worse = PairedCounts(both=30, baseline_only=15, candidate_only=1, neither=4)
    assert verdict(worse, newcombe_paired(worse), mcnemar_exact(15, 1))[0] is Verdict.WORSE
    same = PairedCounts(both=40, baseline_only=3, candidate_only=4, neither=3)
    assert verdict(same, newcombe_paired(same), mcnemar_exact(3, 4))[0] is Verdict.NO_SIGNIFICANT_DIFFERENCE
    tiny = PairedCounts(both=0, baseline_only=0, candidate_only=6, neither=0)   # 6 of 6 discordant, p=0.03
    assert verdict(tiny, newcombe_paired(tiny), mcnemar_exact(0, 6))[0] is Verdict.TOO_FEW_CASES
    with pytest.raises(ValueError, match="confidence"):
        wilson(1, 2, 1.5)


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=120), st.sampled_from(compare.CI_METHODS))
def test_swapping_the_revisions_mirrors_the_comparison(pairs: list[tuple[bool, bool]], method: str) -> None:
    ab = compare.comparison(pairs, ci_method=method)
    ba = compare.comparison([(c, b) for b, c in pairs], ci_method=method)
    assert ab.p_value == ba.p_value and (ab.baseline_only, ab.candidate_only) == (ba.candidate_only, ba.baseline_only)
    if ab.difference is not None and ba.difference is not None:
        assert ab.difference == pytest.approx(-ba.difference)
    _close((ab.ci_low, ab.ci_high), (-ba.ci_high, -ba.ci_low))
    mirror = {Verdict.BETTER: Verdict.WORSE, Verdict.WORSE: Verdict.BETTER}
    assert ba.verdict is mirror.get(ab.verdict, ab.verdict)
