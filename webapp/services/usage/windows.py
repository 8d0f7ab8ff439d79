"""The one read path for request counts, error rates and latency: every page, partial,
API answer and the provider-health judge read these figures through this module.

Definitions (one per figure, used everywhere):
- windows: ``1h`` and ``24h`` are rolling, the last 60 minutes / 24 hours ending now, read
  from the hourly rollup for their whole UTC hours and from raw rows for the partial hour
  at each end (``reads.usage_between``); ``7d`` and ``30d`` are the last 7 / 30 whole UTC
  days including today (today so far), read from the daily rollup. Groupings the rollups
  do not hold (prompts) read raw rows. Pages caption them with ``RANGE_CAPTIONS`` ("last
  7 UTC days, today included").
- requests: *finished* requests (status success, error or timeout); ``pending`` ones have
  neither an outcome nor a latency yet and are left out of every figure but spend;
- error rate: error + timeout over finished requests; success rate: success over them;
- p95 latency: for every window, rolling or whole days, the latency histogram of
  ``LATENCY_BOUNDS_MS`` (the rollups', or raw rows bucketed the same way), interpolated
  linearly inside the bucket the 95th percentile falls in (``percentile_from_buckets``).
  So the same window gives the same p95 on every page, whichever table it is read from;
- uptime: the share of UTC hours with traffic in which at least half the requests
  succeeded (a rolling window's partial first and last hours count as hours);
- cost per request: total cost / requests, rounded half-even to the micro-dollar.
A window without requests has no rates (None), not a flattering 100 %.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.sql.elements import ColumnElement

from webapp.extensions import db
from webapp.models import ENVIRONMENTS, AIModel, UsageLog
from webapp.models.rollup import OUTCOME_KINDS
from webapp.models.types import utc_day, utc_hour
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.money import MICRO_DOLLAR
from webapp.services.usage.reads import (
    UsageKey,
    UsageSums,
    percentile_from_buckets,
    raw_usage_between,
    usage_between,
    usage_by,
)
from webapp.services.usage.rollup import FINISHED, OUTCOMES, ROLLUP

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
    *,
    with_uptime: bool = True,
) -> dict[uuid.UUID, UsageMetrics]:
    """Metrics per feature, model or provider (``group``: feature_id, model_id or
    provider_id) over a named range, in one environment or all (None): what every page
    and the API show. ``with_uptime=False`` leaves uptime out (hours 0, uptime None) for
    callers that do not show it, and spares its query."""
    since, until = window_for(time_range, now)
    return usage_metrics_by(
        GROUP_COLUMNS[group],
        since,
        until,
        only,
        whole_days=time_range in WHOLE_DAY_RANGES,
        with_uptime=with_uptime,
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
    ``whole_days``: ``since`` is a UTC midnight, and the sums come from the daily rollup
    when it holds the grouping; otherwise from the hourly rollup and the partial hours'
    raw rows (see the definitions)."""
    name = _group_name(group_column)
    if not whole_days:
        keys = (name, "hour", "status") if with_uptime else (name, "status")
        grouped = usage_between(since, until, keys, environment=environment, with_latency=True)
        return _metrics(grouped, only, _hourly_uptime(grouped) if with_uptime else {})
    keys = (name, "status")
    if name in ROLLUP_GROUPS:
        grouped = usage_by(
            since.date(), until.date(), keys, environment=environment, with_latency=True
        )
    else:
        grouped = raw_usage_between(since, until, keys, environment=environment, with_latency=True)
    uptime: dict[Any, tuple[int, int]] = {}
    if with_uptime and grouped and name in ROLLUP_GROUPS:
        uptime = _rollup_uptime_by(name, since, until, only, environment)
    elif with_uptime and grouped:
        conditions = finished_conditions(group_column, since, until, only, environment)
        uptime = _uptime_by(group_column, conditions)
    return _metrics(grouped, only, uptime)


def usage_metrics_by_windows(
    group_column: Any, until: datetime, windows: Sequence[timedelta]
) -> list[dict[uuid.UUID, UsageMetrics]]:
    """``usage_metrics_by(group_column, until - window, until, with_uptime=False)`` for each
    of ``windows`` ending together (provider health's 15 and 60 minutes), every row read
    once: the shortest window, then what each longer one adds to it, summed on. (Reading
    each window whole read the short one's rows twice: 75 minutes of raw rows for 60.)"""
    keys = (_group_name(group_column), "status")
    metrics: dict[timedelta, dict[uuid.UUID, UsageMetrics]] = {}
    summed: dict[UsageKey, UsageSums] = {}
    edge = until
    for window in sorted(set(windows)):
        since = until - window
        for key, sums in usage_between(since, edge, keys, with_latency=True).items():
            summed.setdefault(key, UsageSums()).add(sums)
        metrics[window] = _metrics(summed, None, {})
        edge = since
    return [metrics[window] for window in windows]


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


def _metrics(
    grouped: dict[UsageKey, UsageSums],
    only: list[uuid.UUID] | None,
    uptime: dict[Any, tuple[int, int]],
) -> dict[uuid.UUID, UsageMetrics]:
    """UsageMetrics per group value from sums keyed (group value, …, status)."""
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


def hour_is_up(successes: Any, finished: Any) -> Any:
    """The uptime rule for one hour with traffic: at least half its finished requests
    succeeded. Numbers give a bool, SQL columns a condition: one rule for the Python
    count of a rolling window and the database's counts of whole days."""
    return successes * 2 >= finished


def _hourly_uptime(grouped: dict[UsageKey, UsageSums]) -> dict[Any, tuple[int, int]]:
    """(hours with traffic, hours up) per group value from sums keyed (group value, hour,
    status): the uptime definition applied to the hours of a rolling window."""
    per_hour: dict[tuple[Any, str], list[int]] = {}  # successes, finished
    for key, sums in grouped.items():
        if key.status not in FINISHED or key[0] is None or not sums.requests:
            continue
        entry = per_hour.setdefault((key[0], key.hour), [0, 0])
        entry[0] += sums.requests if key.status == "success" else 0
        entry[1] += sums.requests
    uptime: dict[Any, list[int]] = {}
    for (group_value, _hour), (ok, requests) in per_hour.items():
        entry = uptime.setdefault(group_value, [0, 0])
        entry[0] += 1
        entry[1] += 1 if hour_is_up(ok, requests) else 0
    return {key: (hours, up) for key, (hours, up) in uptime.items()}


def p95_of_buckets(buckets: list[int]) -> Decimal | None:
    """The p95 of a latency histogram (see the definitions), to a tenth of a ms."""
    return _ms(percentile_from_buckets(buckets, 0.95)) if buckets else None


def _ms(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


def _rollup_uptime_by(
    name: str,
    since: datetime,
    until: datetime,
    only: list[uuid.UUID] | None,
    environment: str | None,
) -> dict[Any, tuple[int, int]]:
    """(hours with traffic, hours up) per value of the rollup column ``name`` over the
    whole hours of [since, until) (whole days: every hour of them is in the hourly
    outcomes), counted by the database from ``ai_usage_hourly_outcomes``: the same
    definition as ``_uptime_by`` over raw rows, without reading a raw row, and from two
    narrow sum columns instead of the hourly rollup's wide rows."""
    o = OUTCOMES.c
    kind = next(kind for kind, column in OUTCOME_KINDS.items() if column == name)
    conditions: list[ColumnElement[bool]] = [
        o.hour >= since,
        o.hour < until,
        o.kind == kind,
    ]
    if only is not None:
        conditions.append(o.key_id.in_(only))
    if environment is not None:
        conditions.append(o.environment == environment)
    finished = func.sum(o.finished)
    per_hour = (
        select(
            o.key_id.label("key"),
            func.sum(o.successes).label("ok"),
            finished.label("requests"),
        )
        .where(*conditions)
        .group_by(o.key_id, o.hour)
        .having(finished > 0)  # rows taken out again (pending → final) are no traffic
        .subquery()
    )
    return _hours_up_by(per_hour)


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
    return _hours_up_by(hourly)


def _hours_up_by(per_hour: Any) -> dict[Any, tuple[int, int]]:
    """(hours with traffic, hours up) per key, counted by the database from a subquery
    of one row per (key, hour) with its successes (``ok``) and finished ``requests``."""
    rows = db.session.execute(
        select(
            per_hour.c.key,
            func.count(),
            func.sum(case((hour_is_up(per_hour.c.ok, per_hour.c.requests), 1), else_=0)),
        ).group_by(per_hour.c.key)
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
    name = group_column.key
    if name in ROLLUP.c:
        # Whole days, today included: the daily rollup, a few rows per day and key.
        r = ROLLUP.c
        query = (
            select(
                r.day,
                r.status,
                func.sum(r.request_count),
                func.sum(r.cost_usd),
                func.sum(r.response_time_ms_sum),
            )
            .where(r[name] == key, r.day >= start, r.day <= today)
            .group_by(r.day, r.status)
        )
        if environment is not None:
            query = query.where(r.environment == environment)
    else:  # prompt_id: the rollups do not hold it
        day = utc_day(UsageLog.created_at)
        query = (
            select(
                day,
                UsageLog.status,
                func.count(),
                func.sum(UsageLog.cost_usd),
                func.sum(UsageLog.response_time_ms),
            )
            .where(
                group_column == key,
                UsageLog.created_at >= since,
                UsageLog.created_at < until,
                *only_environment,
            )
            .group_by(day, UsageLog.status)
        )
    found: dict[date, tuple[int, int, int, Decimal, int]] = {}
    for moment, status, count, spent, response_ms in db.session.execute(query):
        if status == "pending":  # not finished: neither a request nor an error yet
            continue
        n, ok, bad, cost, ms = found.get(moment, (0, 0, 0, Decimal("0.000000"), 0))
        count = int(count or 0)
        found[moment] = (
            n + count,
            ok + (count if status == "success" else 0),
            bad + (count if status in ("error", "timeout") else 0),
            cost + (spent if spent is not None else 0),
            ms + int(response_ms or 0),
        )
    series = []
    for offset in range(days):
        current = start + timedelta(days=offset)
        n, ok, bad, cost, ms = found.get(current, (0, 0, 0, Decimal("0.000000"), 0))
        series.append(DailyUsage(current, int(n), int(ok or 0), int(bad or 0), cost, int(ms or 0)))
    return series
