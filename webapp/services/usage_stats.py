"""Usage and spend aggregates, computed by the database (GROUP BY), zero-filled per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import case, func, select

from webapp.extensions import db
from webapp.models import Feature, UsageLog
from webapp.models.types import utc_day


@dataclass(frozen=True)
class UsageTotals:
    requests: int
    successes: int
    spend: Decimal
    tokens: int
    avg_response_ms: int

    @property
    def success_rate(self) -> Decimal | None:
        if not self.requests:
            return None
        return (Decimal(self.successes) * 100 / Decimal(self.requests)).quantize(Decimal("0.1"))


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _window(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00 UTC, the day after end 00:00 UTC): both calendar dates inclusive."""
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def usage_totals(start: date, end: date) -> UsageTotals:
    since, until = _window(start, end)
    row = db.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((UsageLog.status == "success", 1), else_=0)), 0),
            func.coalesce(func.sum(UsageLog.cost_usd), 0),
            func.coalesce(func.sum(UsageLog.tokens_used), 0),
            func.coalesce(func.avg(UsageLog.response_time_ms), 0),
        ).where(UsageLog.created_at >= since, UsageLog.created_at < until)
    ).one()
    return UsageTotals(
        requests=int(row[0]),
        successes=int(row[1]),
        spend=Decimal(row[2]) if row[0] else Decimal("0.000000"),
        tokens=int(row[3]),
        avg_response_ms=round(float(row[4] or 0)),
    )


def spend_by_day_and_feature(start: date, end: date) -> dict[str, dict[date, Decimal]]:
    """{feature display name: {day: spend}} with every day of the range present."""
    since, until = _window(start, end)
    day = utc_day(UsageLog.created_at).label("day")
    # Grouped by feature id (names need not be unique), named afterwards.
    per_feature = (
        select(UsageLog.feature_id, day, func.sum(UsageLog.cost_usd).label("spend"))
        .where(UsageLog.created_at >= since, UsageLog.created_at < until)
        .group_by(UsageLog.feature_id, day)
        .subquery()
    )
    rows = db.session.execute(
        select(
            per_feature.c.feature_id, Feature.display_name, per_feature.c.day, per_feature.c.spend
        ).outerjoin(Feature, Feature.id == per_feature.c.feature_id)
    ).all()
    days = day_range(start, end)
    series: dict[tuple[str, str], dict[date, Decimal]] = {}
    for feature_id, name, day_value, spend in rows:
        key = (name or "(no feature)", str(feature_id or ""))
        series.setdefault(key, {d: Decimal("0.000000") for d in days})[day_value] = spend
    labels = _unique_labels([key for key in sorted(series)])
    return {labels[key]: series[key] for key in sorted(series)}


def _unique_labels(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Display names, with a short id added where two features share a name."""
    counts: dict[str, int] = {}
    for name, _ in keys:
        counts[name] = counts.get(name, 0) + 1
    return {
        (name, ident): name if counts[name] == 1 else f"{name} ({ident[:8]})"
        for name, ident in keys
    }
