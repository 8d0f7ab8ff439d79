"""The statistics of an experiment, as pure functions of per-variant sums (no database).

Definitions (the experiment page and the API documentation repeat them):

- A metric whose every recorded value is 0 or 1 is a *rate* (conversion); any other metric
  is a *mean*.
- Confidence intervals are 95 %: Wilson score intervals for rates, Student-t intervals for
  means.
- Each challenger is compared with the control: a pooled two-proportion z-test for rates,
  Welch's t-test (unequal variances) for means, both two-sided. With more than one
  challenger the p-values of a metric are Holm-corrected (family = that metric's tests).
- Minimum sample guard: a rate test needs n·p ≥ 5 and n·(1−p) ≥ 5 in both variants, a
  mean test n ≥ 30 in both; below it the answer is "not enough data", never a p-value.
- Sample-ratio mismatch: chi-square of the distinct subjects seen per variant against the
  allocation; a p-value below SRM_ALPHA means the traffic split is broken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType


def scipy_stats() -> ModuleType:
    """``scipy.stats``, imported when a statistic is first computed: the import costs
    about 1.4 s (numpy, scipy.special, …) that no page, command or API call pays unless it
    analyses an experiment (Python keeps the module after the first import)."""
    from scipy import stats

    return stats


CONFIDENCE = 0.95
MIN_RATE_COUNT = 5  # n·p and n·(1−p) per variant
MIN_MEAN_SAMPLE = 30  # observations per variant
# A strict threshold, as is usual for SRM: the check runs on every look at the data and a
# false alarm costs a good experiment.
SRM_ALPHA = 0.001
MIN_SRM_EXPECTED = 5  # chi-square needs this many expected subjects in every variant


@dataclass(frozen=True)
class Sums:
    """What the database sums up for one variant and one metric."""

    n: int
    total: float  # sum of the values
    total_squares: float  # sum of the squared values

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n − 1 in the denominator)."""
        if self.n < 2:
            return None
        variance = (self.total_squares - self.total * self.total / self.n) / (self.n - 1)
        return math.sqrt(max(variance, 0.0))  # rounding may leave a tiny negative


def wilson_interval(successes: float, n: int) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion (good at small n and near 0 or 1)."""
    if n == 0:
        return None
    z = scipy_stats().norm.ppf(0.5 + CONFIDENCE / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(sums: Sums) -> tuple[float, float] | None:
    """95 % Student-t interval of a mean."""
    if sums.n < 2 or sums.std is None or sums.mean is None:
        return None
    if sums.std == 0:
        return (sums.mean, sums.mean)
    low, high = scipy_stats().t.interval(
        CONFIDENCE, sums.n - 1, loc=sums.mean, scale=sums.std / math.sqrt(sums.n)
    )
    return (float(low), float(high))


def rate_has_enough_data(sums: Sums) -> bool:
    p = sums.total / sums.n if sums.n else 0.0
    # A tiny tolerance: 0.05 * 100 is 5.000000000000001 or 4.999999999999999 in floats.
    return (
        sums.n > 0
        and sums.n * p >= MIN_RATE_COUNT - 1e-9
        and sums.n * (1 - p) >= (MIN_RATE_COUNT - 1e-9)
    )


def mean_has_enough_data(sums: Sums) -> bool:
    return sums.n >= MIN_MEAN_SAMPLE


def two_proportion_p_value(control: Sums, challenger: Sums) -> float:
    """Two-sided pooled two-proportion z-test (as statsmodels' proportions_ztest)."""
    pooled = (control.total + challenger.total) / (control.n + challenger.n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / challenger.n))
    if se == 0:
        return 1.0
    z = (challenger.total / challenger.n - control.total / control.n) / se
    return float(2 * scipy_stats().norm.sf(abs(z)))


def welch_p_value(control: Sums, challenger: Sums) -> float | None:
    """Two-sided Welch t-test from the sums; None when neither variant varies at all, or
    when one has fewer than two values (no standard deviation)."""
    control_mean, control_std = control.mean, control.std
    challenger_mean, challenger_std = challenger.mean, challenger.std
    if control_mean is None or challenger_mean is None:
        return None
    if control_std is None or challenger_std is None:
        return None
    if not control_std and not challenger_std:
        return None
    result = scipy_stats().ttest_ind_from_stats(
        control_mean,
        control_std,
        control.n,
        challenger_mean,
        challenger_std,
        challenger.n,
        equal_var=False,
    )
    p = float(result.pvalue)
    return None if math.isnan(p) else p


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values, in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running_max = 0.0
    for rank, index in enumerate(order):
        running_max = max(running_max, (m - rank) * p_values[index])
        adjusted[index] = min(1.0, running_max)
    return adjusted


@dataclass(frozen=True)
class SrmCheck:
    checked: bool
    p_value: float | None
    mismatch: bool
    observed: dict[str, int]
    expected: dict[str, float]
    message: str

    def as_dict(self) -> dict:
        return {
            "checked": self.checked,
            "p_value": self.p_value,
            "mismatch": self.mismatch,
            "threshold": SRM_ALPHA,
            "observed": self.observed,
            "expected": self.expected,
            "message": self.message,
        }


def srm_check(observed: dict[str, int], allocation: dict[str, Decimal]) -> SrmCheck:
    """Chi-square goodness of fit of subjects per variant against the allocation (%)."""
    total = sum(observed.get(v, 0) for v in allocation)
    counts = {v: observed.get(v, 0) for v in allocation}
    expected = {v: total * float(share) / 100 for v, share in allocation.items()}
    if total == 0 or min(expected.values()) < MIN_SRM_EXPECTED:
        return SrmCheck(
            False,
            None,
            False,
            counts,
            expected,
            f"Not checked yet: every variant needs at least {MIN_SRM_EXPECTED} expected "
            "subjects (results carrying a user_id or session_id).",
        )
    result = scipy_stats().chisquare(list(counts.values()), f_exp=list(expected.values()))
    p = float(result.pvalue)
    if p < SRM_ALPHA:
        message = (
            f"Sample ratio mismatch (p = {p:.2g}): the subjects per variant do not match the "
            "allocation. Assignment or logging is broken; do not trust these results."
        )
    else:
        message = f"Traffic split matches the allocation (p = {p:.2g})."
    return SrmCheck(True, p, p < SRM_ALPHA, counts, expected, message)
