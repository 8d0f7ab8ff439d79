"""Spending analytics: the seed's breakdown, recommendations and trends, made exact.

Sums come from the database (rollup for past days, raw rows for today: see usage.reads);
money stays Decimal throughout and percentages are rounded so that they add up to exactly
100.00 (largest remainder).
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

from webapp.services.catalog.names import display_names
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.money import MICRO_DOLLAR
from webapp.services.usage.reads import (
    OTHER_FEATURES,
    ZERO_COST,
    UsageKey,
    UsageSums,
    usage_by,
    usage_by_sets,
)
from webapp.services.usage.windows import checked_environment

CENT_PERCENT = Decimal("0.01")
HUNDRED = Decimal(100)
MAX_RANGE_DAYS = 366 * 5
NO_FEATURE = "(no feature)"
NO_MODEL = "(no model)"
NO_PROVIDER = "(no provider)"
CHART_FEATURES = 8  # features drawn apart in the spend-per-day chart; the rest as one


# ---------------------------------------------------------------------------------------
# Dates


EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(2999, 12, 31)


def as_utc_date(value: Any, field_name: str) -> date:
    """A UTC calendar date from a date, a datetime or an ISO 8601 string of either (a
    datetime counts for the UTC day it falls on; one without a time zone is UTC), from
    1970-01-01 to 2999-12-31."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return as_utc_date(moment.astimezone(UTC).date(), field_name)
    if isinstance(value, date):
        if not EARLIEST_DATE <= value <= LATEST_DATE:
            raise ValidationFailed(
                {field_name: f"must be between {EARLIEST_DATE} and {LATEST_DATE}"}
            )
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return as_utc_date(date.fromisoformat(text), field_name)
        except ValueError:
            pass  # not a plain date: perhaps a timestamp
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationFailed(
                {field_name: "must be a date (YYYY-MM-DD) or an ISO 8601 timestamp"}
            ) from None
        return as_utc_date(parsed, field_name)
    if value is None or value == "":
        raise ValidationFailed({field_name: "is required"})
    raise ValidationFailed({field_name: "must be a date (YYYY-MM-DD) or an ISO 8601 timestamp"})


def checked_date_range(start: Any, end: Any) -> tuple[date, date]:
    """Both dates parsed and in order; every wrong field named at once."""
    errors: dict[str, str] = {}
    parsed: dict[str, date] = {}
    for name, value in (("start_date", start), ("end_date", end)):
        try:
            parsed[name] = as_utc_date(value, name)
        except ValidationFailed as error:
            errors.update(error.errors)
    if errors:
        raise ValidationFailed(errors)
    first, last = parsed["start_date"], parsed["end_date"]
    if last < first:
        raise ValidationFailed({"end_date": "must be on or after start_date"})
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise ValidationFailed({"end_date": f"the range may span at most {MAX_RANGE_DAYS} days"})
    return first, last


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


# ---------------------------------------------------------------------------------------
# Breakdown


@dataclass
class FeatureSpend:
    feature_id: uuid.UUID | None
    feature_name: str
    amount: Decimal
    percentage: Decimal = Decimal("0.00")
    request_count: int = 0


@dataclass
class ModelSpend:
    model_id: uuid.UUID | None
    model_name: str
    provider_id: uuid.UUID | None
    provider_name: str
    amount: Decimal
    request_count: int
    percentage: Decimal = Decimal("0.00")


@dataclass
class ProviderSpend:
    provider_id: uuid.UUID | None
    provider_name: str
    amount: Decimal
    percentage: Decimal = Decimal("0.00")
    request_count: int = 0


@dataclass
class DaySpend:
    date: date
    amount: Decimal
    request_count: int = 0


@dataclass
class SpendingBreakdown:
    total_spend: Decimal
    total_requests: int
    period_start: date
    period_end: date
    by_feature: list[FeatureSpend] = field(default_factory=list)
    by_model: list[ModelSpend] = field(default_factory=list)
    by_provider: list[ProviderSpend] = field(default_factory=list)
    by_day: list[DaySpend] = field(default_factory=list)
    # {feature name: [amount per day of by_day]}, for the stacked chart: the
    # CHART_FEATURES largest features, then "Other features (n)" for the rest
    by_day_and_feature: dict[str, list[Decimal]] = field(default_factory=dict)
    # Usage sums per (feature_id, model_id) with tokens, from the same pass as the tables:
    # what the cost recommendations re-price (webapp/services/spending/recommendations.py).
    by_feature_and_model: dict[UsageKey, UsageSums] = field(default_factory=dict)


def shares_of(amounts: Sequence[Decimal]) -> list[Decimal]:
    """Percentages of the total with two decimals that add up to exactly 100.00 (largest
    remainder: round every share down, give the missing hundredths to the largest
    remainders). All zeros when the total is zero."""
    total = sum(amounts, Decimal(0))
    if total <= 0:
        return [Decimal("0.00") for _ in amounts]
    exact = [amount * HUNDRED / total for amount in amounts]
    floors = [share.quantize(CENT_PERCENT, rounding=ROUND_DOWN) for share in exact]
    missing = int((HUNDRED - sum(floors, Decimal(0))) / CENT_PERCENT)
    order = sorted(range(len(exact)), key=lambda i: (exact[i] - floors[i], -i), reverse=True)
    for i in order[:missing]:
        floors[i] += CENT_PERCENT
    return floors


def spending_breakdown(
    start: Any,
    end: Any,
    *,
    environment: str | None = None,
    raw_from: date | None = None,
    with_chart: bool = True,
) -> SpendingBreakdown:
    """Spend from ``start`` to ``end`` (UTC calendar dates, both inclusive), by feature,
    model, provider and day (every day present), in one ``environment`` or all (None).
    ``with_chart``: also the per-day series of the stacked chart (``by_day_and_feature``:
    a second read, so the API and the recommendations, which draw nothing, skip it).

    Each figure is one query grouped by the database to exactly the groups it shows
    (shards, statuses and environments summed there): a year of rollup rows never crosses
    into Python, only some dozens of groups and one row per day (and per day and feature,
    for the chart)."""
    errors: dict[str, str] = {}
    try:
        first, last = checked_date_range(start, end)
    except ValidationFailed as error:
        errors.update(error.errors)
    try:
        environment = checked_environment(environment)
    except ValidationFailed as error:
        errors.update(error.errors)
    if errors:
        raise ValidationFailed(errors)

    per_feature, per_model, per_provider, per_day, per_feature_model = usage_by_sets(
        first,
        last,
        (
            ("feature_id",),
            ("model_id", "provider_id"),
            ("provider_id",),
            ("day",),
            ("feature_id", "model_id"),
        ),
        environment=environment,
        raw_from=raw_from,
    )
    names = display_names(
        features={k.feature_id for k in per_feature},
        models={k.model_id for k in per_model},
        providers={k.provider_id for k in (*per_model, *per_provider)},
    )
    features, models, providers = names["features"], names["models"], names["providers"]

    # An id that no longer names a row (deleted since) counts as "none": its group joins
    # the None group (a handful of groups, never rows).
    def known(value: uuid.UUID | None, found: dict[uuid.UUID, str]) -> uuid.UUID | None:
        return value if value in found else None

    by_feature: dict[uuid.UUID | None, FeatureSpend] = {}
    for key, sums in per_feature.items():
        feature_id = known(key.feature_id, features)
        f = by_feature.setdefault(
            feature_id,
            FeatureSpend(feature_id, features[feature_id] if feature_id else NO_FEATURE, ZERO_COST),
        )
        f.amount += sums.cost
        f.request_count += sums.requests
    by_model: dict[tuple, ModelSpend] = {}
    for key, sums in per_model.items():
        model_id, provider_id = known(key.model_id, models), known(key.provider_id, providers)
        m = by_model.setdefault(
            (model_id, provider_id),
            ModelSpend(
                model_id,
                models[model_id] if model_id else NO_MODEL,
                provider_id,
                providers[provider_id] if provider_id else NO_PROVIDER,
                ZERO_COST,
                0,
            ),
        )
        m.amount += sums.cost
        m.request_count += sums.requests
    by_provider: dict[uuid.UUID | None, ProviderSpend] = {}
    for key, sums in per_provider.items():
        provider_id = known(key.provider_id, providers)
        p = by_provider.setdefault(
            provider_id,
            ProviderSpend(
                provider_id, providers[provider_id] if provider_id else NO_PROVIDER, ZERO_COST
            ),
        )
        p.amount += sums.cost
        p.request_count += sums.requests
    by_day = _zero_filled_days(first, last, per_day)

    result = SpendingBreakdown(
        total_spend=sum((d.amount for d in by_day), ZERO_COST),
        total_requests=sum(d.request_count for d in by_day),
        period_start=first,
        period_end=last,
        by_feature=_ranked(list(by_feature.values()), lambda r: r.feature_name),
        by_model=_ranked(list(by_model.values()), lambda r: r.model_name),
        by_provider=_ranked(list(by_provider.values()), lambda r: r.provider_name),
        by_day=by_day,
        by_feature_and_model=per_feature_model,
    )
    if with_chart:
        result.by_day_and_feature = _chart_series(
            result, [key.feature_id for key in per_feature], environment, raw_from
        )
    return result


def _chart_series(
    result: SpendingBreakdown,
    feature_ids: list[uuid.UUID | None],
    environment: str | None,
    raw_from: date | None,
) -> dict[str, list[Decimal]]:
    """Spend per day of the ``CHART_FEATURES`` largest features and, when there are more,
    of all the others together (one series: forty stacked colours are unreadable, and
    each series costs the page a row per day), grouped so by the database."""
    shown = result.by_feature[:CHART_FEATURES]
    if len(result.by_feature) == CHART_FEATURES + 1:
        shown = result.by_feature  # an "other" series of one feature is that feature
    known = {row.feature_id for row in result.by_feature}
    series_of: dict[uuid.UUID | None, int] = {}
    for number, row in enumerate(shown):
        series_of[row.feature_id] = number
        if row.feature_id is None:  # deleted features count as "none"
            series_of.update((ident, number) for ident in feature_ids if ident not in known)
    days = {d.date: index for index, d in enumerate(result.by_day)}
    amounts = {number: [ZERO_COST] * len(days) for number in (*series_of.values(), OTHER_FEATURES)}
    if shown:
        found = usage_by(
            result.period_start,
            result.period_end,
            ("day", "feature_id"),
            environment=environment,
            raw_from=raw_from,
            feature_as=series_of,
        )
        for key, sums in found.items():
            amounts[key.feature_id][days[key.day]] += sums.cost
    series = {_label(row, result.by_feature): amounts[n] for n, row in enumerate(shown)}
    others = len(result.by_feature) - len(shown)
    if others:
        series[f"Other features ({others})"] = amounts[OTHER_FEATURES]
    return series


def spend_per_day(
    first: date, last: date, *, environment: str | None = None, raw_from: date | None = None
) -> list[DaySpend]:
    """Spend and requests per UTC day from ``first`` to ``last`` (both included, every day
    present), in one ``environment`` or all (None): the one computation of daily spend
    behind the breakdown's days and the trends."""
    found = usage_by(first, last, ("day",), environment=environment, raw_from=raw_from)
    return _zero_filled_days(first, last, found)


def _zero_filled_days(first: date, last: date, found: dict[UsageKey, UsageSums]) -> list[DaySpend]:
    per_day = {day: DaySpend(day, ZERO_COST) for day in days_between(first, last)}
    for key, sums in found.items():
        per_day[key.day].amount += sums.cost
        per_day[key.day].request_count += sums.requests
    return list(per_day.values())


def _ranked(rows: list, name: Any) -> list:
    """Largest spend first (then by name), with each row's share of the total set."""
    rows.sort(key=lambda r: (-r.amount, name(r)))
    for row, share in zip(rows, shares_of([r.amount for r in rows]), strict=True):
        row.percentage = share
    return rows


def _label(row: FeatureSpend, rows: list[FeatureSpend]) -> str:
    """A feature's display name, with a short id where two features share the name."""
    same = sum(1 for other in rows if other.feature_name == row.feature_name)
    if same > 1 and row.feature_id is not None:
        return f"{row.feature_name} ({str(row.feature_id)[:8]})"
    return row.feature_name


# ---------------------------------------------------------------------------------------
# Trends


TREND_BAND = Decimal("0.10")  # ±10 % between the last 7 days and the 7 before is stable


@dataclass
class SpendingTrends:
    trend: str  # increasing | decreasing | stable | insufficient_data
    days: int
    period_start: date
    period_end: date
    daily_data: list[DaySpend]
    total_spend: Decimal
    daily_average: Decimal | None
    last_7_days: Decimal
    previous_7_days: Decimal
    change_percentage: Decimal | None
    forecast: dict[str, Any] | None
    days_with_data: int


def spending_trends(
    days: int = 30, *, today: date | None = None, environment: str | None = None
) -> SpendingTrends:
    """Spend over the last ``days`` complete UTC days (today is partial and left out, so
    it doesn't read as a drop), the last 7 days against the 7 before, a daily average and
    a 30-day forecast, in one ``environment`` or all (None). Fewer than 7 days with any
    usage: ``insufficient_data``."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
        raise ValidationFailed({"days": "must be a whole number from 1 to 365"})
    environment = checked_environment(environment)
    today = today or datetime.now(UTC).date()
    last = today - timedelta(days=1)
    first = last - timedelta(days=max(days, 14) - 1)
    series = spend_per_day(first, last, environment=environment)
    window = series[-days:]
    recent = sum((d.amount for d in series[-7:]), ZERO_COST)
    previous = sum((d.amount for d in series[-14:-7]), ZERO_COST)
    # Counted over every day the answer uses (the trend compares 14 days, even when
    # ``days`` is shorter).
    days_with_data = sum(1 for d in series if d.request_count)
    total = sum((d.amount for d in window), ZERO_COST)
    change = None
    if previous > 0:
        change = ((recent - previous) * HUNDRED / previous).quantize(CENT_PERCENT)
    if days_with_data < 7:
        trend = "insufficient_data"
    elif previous == 0:
        trend = "increasing" if recent > 0 else "stable"
    elif recent > previous * (1 + TREND_BAND):
        trend = "increasing"
    elif recent < previous * (1 - TREND_BAND):
        trend = "decreasing"
    else:
        trend = "stable"
    average = (total / days).quantize(MICRO_DOLLAR, rounding=ROUND_HALF_EVEN)
    forecast = None
    if trend != "insufficient_data":
        forecast = {
            "next_30_days": (total * 30 / days).quantize(MICRO_DOLLAR, rounding=ROUND_HALF_EVEN),
            "confidence": _confidence([d.amount for d in window]),
        }
    return SpendingTrends(
        trend=trend,
        days=days,
        period_start=window[0].date,
        period_end=last,
        daily_data=window,
        total_spend=total,
        daily_average=average,
        last_7_days=recent,
        previous_7_days=previous,
        change_percentage=change,
        forecast=forecast,
        days_with_data=days_with_data,
    )


def _confidence(amounts: list[Decimal]) -> str:
    """How steady daily spend is (coefficient of variation): under 0.25 high, under 0.5
    medium, otherwise low."""
    if len(amounts) < 2:
        return "low"
    mean = statistics.mean(amounts)
    if mean == 0:
        return "low"
    variation = statistics.stdev(amounts) / mean
    if variation < Decimal("0.25"):
        return "high"
    if variation < Decimal("0.5"):
        return "medium"
    return "low"
