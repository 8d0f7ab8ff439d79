"""The statistics agree with SciPy's and statsmodels' own functions on generated data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from webapp.services.experiments import stats as st


def sums_of(values) -> st.Sums:
    values = np.asarray(values, dtype=float)
    return st.Sums(len(values), float(values.sum()), float((values * values).sum()))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_welch_from_sums_matches_scipy_on_raw_data(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(100, 15, 400).round(4)
    b = rng.normal(103, 25, 250).round(4)
    expected = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert st.welch_p_value(sums_of(a), sums_of(b)) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("rates", [(0.10, 0.12), (0.30, 0.30), (0.5, 0.42)])
def test_two_proportion_z_matches_statsmodels(rates):
    rng = np.random.default_rng(7)
    a = (rng.random(2000) < rates[0]).astype(int)
    b = (rng.random(1500) < rates[1]).astype(int)
    _, expected = proportions_ztest([b.sum(), a.sum()], [len(b), len(a)])
    assert st.two_proportion_p_value(sums_of(a), sums_of(b)) == pytest.approx(expected, rel=1e-9)


def test_wilson_interval_matches_statsmodels():
    for successes, n in [(0, 10), (3, 40), (120, 1000), (999, 1000)]:
        low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
        ours = st.wilson_interval(successes, n)
        assert ours == pytest.approx((low, high), rel=1e-9, abs=1e-12)
    assert st.wilson_interval(0, 0) is None


def test_mean_interval_matches_scipy():
    values = np.random.default_rng(4).normal(50, 10, 60)
    expected = stats.t.interval(0.95, 59, loc=values.mean(), scale=stats.sem(values))
    assert st.mean_interval(sums_of(values)) == pytest.approx(expected, rel=1e-9)
    assert st.mean_interval(sums_of([1.0])) is None


@pytest.mark.parametrize(
    "p_values",
    [[0.01, 0.04, 0.03], [0.2, 0.001], [0.5], [0.04, 0.04, 0.04, 0.9], [0.001, 0.5, 0.02, 0.013]],
)
def test_holm_matches_statsmodels(p_values):
    expected = multipletests(p_values, method="holm")[1]
    assert st.holm(p_values) == pytest.approx(list(expected), rel=1e-12)


def test_sample_guard_boundaries():
    # rates: n·p and n·(1−p) must both reach 5
    assert st.rate_has_enough_data(st.Sums(100, 5, 5))
    assert not st.rate_has_enough_data(st.Sums(100, 4, 4))
    assert not st.rate_has_enough_data(st.Sums(100, 96, 96))
    assert st.rate_has_enough_data(st.Sums(100, 95, 95))
    assert not st.rate_has_enough_data(st.Sums(0, 0, 0))
    # means: n ≥ 30
    assert st.mean_has_enough_data(st.Sums(30, 30, 40))
    assert not st.mean_has_enough_data(st.Sums(29, 29, 40))


def test_srm_matches_chisquare_and_flags_a_broken_split():
    allocation = {"a": st.Decimal("50"), "b": st.Decimal("50")}
    fine = st.srm_check({"a": 5020, "b": 4980}, allocation)
    assert fine.checked and not fine.mismatch
    assert fine.p_value == pytest.approx(stats.chisquare([5020, 4980]).pvalue)
    broken = st.srm_check({"a": 5300, "b": 4700}, allocation)
    assert broken.checked and broken.mismatch and "mismatch" in broken.message.lower()
    uneven = st.srm_check({"a": 900, "b": 100}, {"a": st.Decimal("90"), "b": st.Decimal("10")})
    assert not uneven.mismatch
    too_few = st.srm_check({"a": 3, "b": 1}, allocation)
    assert not too_few.checked and too_few.p_value is None


def test_welch_without_any_variation_has_no_p_value():
    assert st.welch_p_value(sums_of([1.0] * 40), sums_of([1.0] * 40)) is None


@pytest.mark.parametrize("short", [[], [5.0]])
def test_welch_with_a_variant_of_fewer_than_two_values_has_no_p_value(short):
    # No standard deviation without two values: no test rather than a crash.
    spread = sums_of([1.0, 2.0, 3.0, 4.0] * 10)
    assert st.welch_p_value(sums_of(short), spread) is None
    assert st.welch_p_value(spread, sums_of(short)) is None
