"""The one read path for request counts, error rates and latency: every page, partial,
API answer and the provider-health judge read these figures through this module.

Definitions (one per figure, used everywhere):
- windows: ``1h`` and ``24h`` are rolling, the last 60 minutes / 24 hours ending now, read
  from raw rows; ``7d`` and ``30d`` are the last 7 / 30 whole UTC days including today
  (today so far), read from the daily rollup where the grouping is in it. Pages caption
  them with ``RANGE_CAPTIONS`` ("last 7 UTC days, today included").
- requests: *finished* requests (status success, error or timeout); ``pending`` ones have
  neither an outcome nor a latency yet and are left out of every figure but spend;
- error rate: error + timeout over finished requests; success rate: success over them;
- p95 latency: for a rolling window, the exact interpolated percentile of the raw rows
  (PostgreSQL's ``percentile_cont(0.95)``, the same formula by window functions on
  SQLite); for a whole-day window, the latency histogram of ``LATENCY_BOUNDS_MS`` (the
  rollup's, or raw rows bucketed the same way), interpolated inside its bucket. So the same
  window gives the same p95 on every page, whichever table it is read from;
- uptime: the share of hours with traffic in which at least half the requests succeeded;
- cost per request: total cost / requests, rounded half-even to the micro-dollar.
A window without requests has no rates (None), not a flattering 100 %.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from webapp.extensions import db
from webapp.models import ENVIRONMENTS, AIModel, UsageLog
from webapp.models.types import utc_day, utc_hour
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.money import MICRO_DOLLAR
from webapp.services.usage.reads import (
    UsageSums,
    percentile_from_buckets,
    raw_usage_between,
    usage_by,
)

TIME_RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
WHOLE_DAY_RANGES = ("7d", "30d")
# Whole-UTC-day ranges of the date-based pages (spending, the overview), today included.
DAY_RANGES = {"7d": 7, "30d": 30, "90d": 90, "month": None}
RANGE_CAPTIONS = {
    "1h": "last 60 minutes, rolling",
    "24h": "last 24 hours, rolling",
    "7d": "last 7 UTC days, today included",
    "30d": "last 30 UTC days, today included",
    "90d": "last 90 UTC days, today included",
    "month": "this UTC month, today included",
}
FINISHED = ("success", "error", "timeout")
FAILED = ("error", "timeout")

PERCENT = Decimal("0.01")


def checked_range(time_range: str, field: str = "time_range") -> str:
    """``time_range`` when it is one of TIME_RANGES; otherwise a validation error on ``field``
    (pages call the parameter ``range``, the API ``time_range``)."""
    if time_range not in TIME_RANGES:
        raise ValidationFailed({field: f"must be one of {', '.join(TIME_RANGES)}"})
    return time_range


def checked_environment(environment: str | None, field: str = "environment") -> str | None:
    """``environment`` when it is one of ENVIRONMENTS, None (every environment) when it is
    None or empty; otherwise a validation error on ``field``."""
    if environment in (None, ""):
        return None
    if environment not in ENVIRONMENTS:
        raise ValidationFailed({field: f"must be one of {', '.join(ENVIRONMENTS)}"})
    return environment


def days_of(range_name: str, today: date) -> tuple[date, date]:
    """First and last UTC day of a whole-day range ending today (``month``: since the 1st)."""
    if range_name not in DAY_RANGES:
        raise ValidationFailed({"range": f"must be one of {', '.join(DAY_RANGES)}"})
    days = DAY_RANGES[range_name]
    if days is None:
        return today.replace(day=1), today
    return today - timedelta(days=days - 1), today


def window_for(time_range: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[since, until) for a named range (see the definitions above); an unknown name is a
    validation error."""
    checked_range(time_range)
    until = now or datetime.now(UTC)
    if time_range in WHOLE_DAY_RANGES:
        first = until.date() - timedelta(days=TIME_RANGES[time_range].days - 1)
        return datetime.combine(first, time.min, tzinfo=UTC), until
    return until - TIME_RANGES[time_range], until


def metrics_for(
    group: str,
    time_range: str,
    now: datetime | None = None,
    only: list[uuid.UUID] | None = None,
    environment: str | None = None,
) -> dict[uuid.UUID, UsageMetrics]:
    """Metrics per feature, model or provider (``group``: feature_id, model_id or
    provider_id) over a named range, in one environment or all (None): what every page
    and the API show."""
    since, until = window_for(time_range, now)
    return usage_metrics_by(
        GROUP_COLUMNS[group],
        since,
        until,
        only,
        whole_days=time_range in WHOLE_DAY_RANGES,
        environment=checked_environment(environment),
    )


@dataclass(frozen=True)
class UsageMetrics:
    total_requests: int
    successes: int
    failures: int
    total_cost: Decimal
    avg_response_ms: Decimal | None
    p95_response_ms: Decimal | None
    hours_with_traffic: int
    hours_up: int

    @staticmethod
    def empty() -> UsageMetrics:
        return UsageMetrics(0, 0, 0, Decimal("0.000000"), None, None, 0, 0)

    def _percent(self, part: int, whole: int) -> Decimal | None:
        if not whole:
            return None
        return (Decimal(part) * 100 / whole).quantize(PERCENT, rounding=ROUND_HALF_EVEN)

    @property
    def success_rate(self) -> Decimal | None:
        return self._percent(self.successes, self.total_requests)

    @property
    def error_rate(self) -> Decimal | None:
        return self._percent(self.failures, self.total_requests)

    @property
    def uptime(self) -> Decimal | None:
        return self._percent(self.hours_up, self.hours_with_traffic)

    @property
    def cost_per_request(self) -> Decimal | None:
        if not self.total_requests:
            return None
        return (self.total_cost / self.total_requests).quantize(
            MICRO_DOLLAR, rounding=ROUND_HALF_EVEN
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_requests": self.total_requests,
            "success_rate": self.success_rate,
            "error_rate": self.error_rate,
            "uptime": self.uptime,
            "avg_response_time_ms": self.avg_response_ms,
            "p95_response_time_ms": self.p95_response_ms,
            "total_cost": self.total_cost,
            "cost_per_request": self.cost_per_request,
        }


def usage_metrics_by(
    group_column: Any,
    since: datetime,
    until: datetime,
    only: list[uuid.UUID] | None = None,
    *,
    whole_days: bool = False,
    with_uptime: bool = True,
    environment: str | None = None,
) -> dict[uuid.UUID, UsageMetrics]:
    """Metrics per value of ``group_column`` (UsageLog.feature_id, .model_id, .prompt_id
    or AIModel.provider_id) over [since, until), in one ``environment`` or all (None).
    ``whole_days``: ``since`` is a UTC midnight and the p95 comes from the latency
    histogram (see the definitions); counts are then read from the rollup when it holds
    the grouping."""
    conditions = finished_conditions(group_column, since, until, only, environment)
    if whole_days:
        return _whole_day_metrics(
            group_column, since, until, only, conditions, with_uptime, environment
        )

    totals = db.session.execute(
        select(
            group_column,
            func.count(),
            func.sum(case((UsageLog.status == "success", 1), else_=0)),
            func.sum(case((UsageLog.status.in_(("error", "timeout")), 1), else_=0)),
            func.sum(UsageLog.cost_usd),
            func.avg(UsageLog.response_time_ms),
        )
        .where(*conditions)
        .group_by(group_column)
    ).all()
    if not totals:
        return {}
    p95 = p95_by(group_column, conditions)
    uptime = _uptime_by(group_column, conditions) if with_uptime else {}
    result = {}
    for key, count, successes, failures, cost, avg_ms in totals:
        hours, up = uptime.get(key, (0, 0))
        result[key] = UsageMetrics(
            total_requests=int(count),
            successes=int(successes or 0),
            failures=int(failures or 0),
            total_cost=cost if cost is not None else Decimal("0.000000"),
            avg_response_ms=_ms(avg_ms),
            p95_response_ms=_ms(p95.get(key)),
            hours_with_traffic=hours,
            hours_up=up,
        )
    return result


GROUP_COLUMNS: dict[str, Any] = {
    "feature_id": UsageLog.feature_id,
    "model_id": UsageLog.model_id,
    "provider_id": AIModel.provider_id,
    "prompt_id": UsageLog.prompt_id,
}
ROLLUP_GROUPS = {"feature_id", "model_id", "provider_id"}


def finished_conditions(
    group_column: Any,
    since: datetime,
    until: datetime,
    only: list[uuid.UUID] | None = None,
    environment: str | None = None,
) -> list[ColumnElement[bool]]:
    """The finished usage rows of [since, until) with a value of ``group_column``, in one
    ``environment`` or all (None)."""
    conditions: list[ColumnElement[bool]] = [
        UsageLog.created_at >= since,
        UsageLog.created_at < until,
        group_column.is_not(None),
        UsageLog.status.in_(FINISHED),
    ]
    if group_column is AIModel.provider_id:
        conditions.append(UsageLog.model_id == AIModel.id)
    if only is not None:
        conditions.append(group_column.in_(only))
    if environment is not None:
        conditions.append(UsageLog.environment == environment)
    return conditions


def _group_name(group_column: Any) -> str:
    return next(name for name, column in GROUP_COLUMNS.items() if column is group_column)


def _whole_day_metrics(
    group_column: Any,
    since: datetime,
    until: datetime,
    only: list[uuid.UUID] | None,
    conditions: list[ColumnElement[bool]],
    with_uptime: bool,
    environment: str | None,
) -> dict[uuid.UUID, UsageMetrics]:
    name = _group_name(group_column)
    keys = (name, "status")
    if name in ROLLUP_GROUPS:
        grouped = usage_by(
            since.date(), until.date(), keys, environment=environment, with_latency=True
        )
    else:
        grouped = raw_usage_between(since, until, keys, environment=environment, with_latency=True)
    per_key: dict[uuid.UUID, UsageSums] = {}
    counts: dict[uuid.UUID, list[int]] = {}  # successes, failures
    for key, sums in grouped.items():
        if key.status not in FINISHED or key[0] is None:
            continue
        group_value = key[0]
        if only is not None and group_value not in only:
            continue
        per_key.setdefault(group_value, UsageSums()).add(sums)
        entry = counts.setdefault(group_value, [0, 0])
        entry[0 if key.status == "success" else 1] += sums.requests
    uptime = _uptime_by(group_column, conditions) if with_uptime and per_key else {}
    result = {}
    for group_value, sums in per_key.items():
        if not sums.requests:
            continue
        hours, up = uptime.get(group_value, (0, 0))
        result[group_value] = UsageMetrics(
            total_requests=sums.requests,
            successes=counts[group_value][0],
            failures=counts[group_value][1],
            total_cost=sums.cost,
            avg_response_ms=_ms(Decimal(sums.response_time_ms) / sums.requests),
            p95_response_ms=p95_of_buckets(sums.latency_buckets),
            hours_with_traffic=hours,
            hours_up=up,
        )
    return result


def p95_of_buckets(buckets: list[int]) -> Decimal | None:
    """The histogram p95 (whole-day windows) in the same unit as the exact one."""
    return _ms(percentile_from_buckets(buckets, 0.95)) if buckets else None


def _ms(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


def p95_exact(
    group_column: Any, since: datetime, until: datetime, environment: str | None = None
) -> dict[Any, Decimal | None]:
    """The exact p95 (rolling windows) of the finished rows of [since, until) per value
    of ``group_column``, or ``{None: p95}`` overall when ``group_column`` is None; in one
    ``environment`` or all (None)."""
    column = group_column if group_column is not None else UsageLog.status
    conditions = finished_conditions(column, since, until, environment=environment)
    found = p95_by(group_column, conditions)
    return {key: _ms(value) for key, value in found.items()}


def p95_by(group_column: Any, conditions: list[ColumnElement[bool]]) -> dict[Any, Any]:
    """The interpolated 95th percentile of response_time_ms per value of ``group_column``
    over the usage rows matching ``conditions`` (which may join other tables); with
    ``group_column`` None, ``{None: p95}`` over them all."""
    if group_column is None:
        # One group: partition and group by a constant that every database accepts.
        group_column = func.coalesce(UsageLog.created_at.is_(None), False)
        found = p95_by(group_column, conditions)
        return {None: next(iter(found.values()), None)}
    if db.session.get_bind().dialect.name == "postgresql":
        rows = db.session.execute(
            select(
                group_column,
                func.percentile_cont(0.95).within_group(UsageLog.response_time_ms),
            )
            .where(*conditions)
            .group_by(group_column)
        ).all()
        return dict(rows)
    # SQLite: percentile_cont by hand — interpolate between the values at the floor and
    # the ceiling of the 0.95 * (n - 1) position in each group's sorted latencies.
    ranked = (
        select(
            group_column.label("key"),
            UsageLog.response_time_ms.label("ms"),
            (
                func.row_number().over(
                    partition_by=group_column, order_by=UsageLog.response_time_ms
                )
                - 1
            ).label("position"),
            (func.count().over(partition_by=group_column) - 1).label("last"),
        )
        .where(*conditions)
        .subquery()
    )
    target = ranked.c["last"] * literal_column("0.95")
    floor = func.cast(target, db.Integer)
    rows = db.session.execute(
        select(
            ranked.c.key,
            func.max(case((ranked.c.position == floor, ranked.c.ms))),
            func.max(case((ranked.c.position == floor + 1, ranked.c.ms))),
            func.max(target - floor),
        ).group_by(ranked.c.key)
    ).all()
    result = {}
    for key, low, high, fraction in rows:
        high = low if high is None else high
        result[key] = low + (high - low) * fraction
    return result


def _uptime_by(
    group_column: Any, conditions: list[ColumnElement[bool]]
) -> dict[Any, tuple[int, int]]:
    hourly = (
        select(
            group_column.label("key"),
            utc_hour(UsageLog.created_at).label("hour"),
            func.sum(case((UsageLog.status == "success", 1), else_=0)).label("ok"),
            func.count().label("requests"),
        )
        .where(*conditions)
        .group_by(group_column, utc_hour(UsageLog.created_at))
        .subquery()
    )
    rows = db.session.execute(
        select(
            hourly.c.key,
            func.count(),
            func.sum(case((hourly.c.ok * 2 >= hourly.c.requests, 1), else_=0)),
        ).group_by(hourly.c.key)
    ).all()
    return {key: (int(hours), int(up or 0)) for key, hours, up in rows}


@dataclass(frozen=True)
class DailyUsage:
    day: date
    requests: int
    successes: int
    errors: int
    cost: Decimal
    response_ms_sum: int


def daily_usage(
    group_column: Any,
    key: uuid.UUID,
    days: int,
    today: date | None = None,
    environment: str | None = None,
) -> list[DailyUsage]:
    """Per UTC day for the last ``days`` days (today included), every day present; in one
    ``environment`` or all (None)."""
    if not 1 <= days <= 366:
        raise ValidationFailed({"days": "must be between 1 and 366"})
    environment = checked_environment(environment)
    only_environment = [] if environment is None else [UsageLog.environment == environment]
    today = today or datetime.now(UTC).date()
    start = today - timedelta(days=days - 1)
    since = datetime(start.year, start.month, start.day, tzinfo=UTC)
    until = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    day = utc_day(UsageLog.created_at)
    rows = db.session.execute(
        select(
            day,
            func.count(),
            func.sum(case((UsageLog.status == "success", 1), else_=0)),
            func.sum(case((UsageLog.status.in_(("error", "timeout")), 1), else_=0)),
            func.sum(UsageLog.cost_usd),
            func.sum(UsageLog.response_time_ms),
        )
        .where(
            group_column == key,
            UsageLog.created_at >= since,
            UsageLog.created_at < until,
            UsageLog.status != "pending",
            *only_environment,
        )
        .group_by(day)
    ).all()
    found = {row[0]: row[1:] for row in rows}
    series = []
    for offset in range(days):
        current = start + timedelta(days=offset)
        n, ok, bad, cost, ms = found.get(current, (0, 0, 0, Decimal("0.000000"), 0))
        series.append(DailyUsage(current, int(n), int(ok or 0), int(bad or 0), cost, int(ms or 0)))
    return series
