"""Health and performance metrics of usage, computed by the database.

One set of queries serves features and models alike: each groups ``ai_usage_logs`` by a
column (feature_id or model_id) over a time window. The p95 latency is PostgreSQL's
``percentile_cont(0.95)``; on SQLite the same interpolated percentile is computed with
window functions. Nothing loads log rows into Python.

Definitions (percentages of the *finished* requests in the window; ``pending`` ones,
which have neither an outcome nor a latency yet, are left out of every figure):
- success rate: status ``success``; error rate: ``error`` or ``timeout``;
- uptime: the share of hours with traffic in which at least half the requests succeeded;
- cost per request: total cost / requests, rounded half-even to the micro-dollar.
A window without requests has no rates (None), not a flattering 100 %.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from webapp.extensions import db
from webapp.models import UsageLog
from webapp.models.types import utc_day, utc_hour
from webapp.services.core.money import MICRO_DOLLAR
from webapp.services.errors import ValidationFailed

TIME_RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}

PERCENT = Decimal("0.01")


def checked_range(time_range: str, field: str = "time_range") -> str:
    """``time_range`` when it is one of TIME_RANGES; otherwise a validation error on ``field``
    (pages call the parameter ``range``, the API ``time_range``)."""
    if time_range not in TIME_RANGES:
        raise ValidationFailed({field: f"must be one of {', '.join(TIME_RANGES)}"})
    return time_range


def window_for(time_range: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[since, until) for a named range; an unknown name is a validation error."""
    checked_range(time_range)
    until = now or datetime.now(UTC)
    return until - TIME_RANGES[time_range], until


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
) -> dict[uuid.UUID, UsageMetrics]:
    """Metrics per value of ``group_column`` (UsageLog.feature_id or .model_id)."""
    conditions: list[ColumnElement[bool]] = [
        UsageLog.created_at >= since,
        UsageLog.created_at < until,
        group_column.is_not(None),
        UsageLog.status != "pending",
    ]
    if only is not None:
        conditions.append(group_column.in_(only))

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
    uptime = _uptime_by(group_column, conditions)
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


def _ms(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


def p95_by(group_column: Any, conditions: list[ColumnElement[bool]]) -> dict[Any, Any]:
    """The interpolated 95th percentile of response_time_ms per value of ``group_column``
    over the usage rows matching ``conditions`` (which may join other tables)."""
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
    group_column: Any, key: uuid.UUID, days: int, today: date | None = None
) -> list[DailyUsage]:
    """Per UTC day for the last ``days`` days (today included), every day present."""
    if not 1 <= days <= 366:
        raise ValidationFailed({"days": "must be between 1 and 366"})
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
