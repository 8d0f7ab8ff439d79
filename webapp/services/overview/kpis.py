"""The overview's periods and KPI tiles (see webapp.services.overview.dashboard for the
definitions)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import (
    AuditLog,
    Feature,
    ProviderHealthLog,
)
from webapp.services.core.errors import ValidationFailed
from webapp.services.health.provider_health import latest_checks
from webapp.services.spending import budgets as budget_service
from webapp.services.spending.analytics import checked_date_range
from webapp.services.usage.reads import (
    UsageKey,
    UsageSums,
    merge_buckets,
    usage_between_sets,
    usage_by_sets,
)
from webapp.services.usage.windows import FINISHED, days_of, p95_of_buckets

RANGES = ("24h", "7d", "30d", "custom")
AT_RISK = ("warning", "critical", "over_budget")
PERCENT = Decimal("0.01")
ZERO = Decimal("0.000000")


@dataclass(frozen=True)
class Period:
    """[since, until) in time; ``days`` set for whole-day periods (read from the rollup)."""

    since: datetime
    until: datetime
    first_day: date | None = None
    last_day: date | None = None

    @property
    def hourly(self) -> bool:
        return self.first_day is None

    @property
    def label(self) -> str:
        if self.first_day is None or self.last_day is None:  # hourly
            return f"{self.since:%Y-%m-%d %H:%M} – {self.until:%Y-%m-%d %H:%M} UTC"
        return f"{self.first_day.isoformat()} – {self.last_day.isoformat()} (UTC)"


def periods_for(
    range_name: str, start: Any = None, end: Any = None, now: datetime | None = None
) -> tuple[str, Period, Period]:
    """The chosen period and the previous one of the same length. ``24h`` is the last 24
    hours; ``7d``/``30d`` are the last 7/30 UTC days including today; ``custom`` takes
    ``start``/``end`` dates (both included)."""
    now = now or datetime.now(UTC)
    today = now.date()
    if range_name not in RANGES:
        raise ValidationFailed({"range": f"must be one of {', '.join(RANGES)}"})
    if range_name == "24h":
        current = Period(now - timedelta(hours=24), now)
        return range_name, current, Period(now - timedelta(hours=48), current.since)
    if range_name == "custom":
        first, last = checked_date_range(start, end)
    else:
        first, last = days_of(range_name, today)
    length = (last - first).days + 1
    previous_last = first - timedelta(days=1)
    previous_first = previous_last - timedelta(days=length - 1)

    def whole_days(a: date, b: date) -> Period:
        return Period(
            datetime.combine(a, datetime.min.time(), UTC),
            datetime.combine(b + timedelta(days=1), datetime.min.time(), UTC),
            a,
            b,
        )

    return range_name, whole_days(first, last), whole_days(previous_first, previous_last)


GROUP_KEYS = ("feature_id", "model_id", "provider_id", "status")
# All the usage tiles need (usage_kpis reads nothing else): the tiles partial and the
# previous period read this grouping, about a third of GROUP_KEYS' groups to sum and
# merge. The page hands its GROUP_KEYS sums to the same usage_kpis: the same figures.
KPI_KEYS = ("feature_id", "status")


@dataclass
class OverviewUsage:
    """What the page reads, grouped by the database down to the groups it shows:
    ``untimed`` by GROUP_KEYS with latency (KPIs, top models, features table, spend by
    provider); per time bucket (day, or hour for a rolling period) ``by_feature`` keyed
    (bucket, feature_id) and ``by_status`` keyed (bucket, status), without latency. The
    timed ones are empty when not asked for."""

    untimed: dict[UsageKey, UsageSums]
    by_feature: dict[UsageKey, UsageSums] = field(default_factory=dict)
    by_status: dict[UsageKey, UsageSums] = field(default_factory=dict)


def grouped_usage(period: Period, with_time: bool, environment: str | None = None) -> OverviewUsage:
    """Usage sums of ``period`` in one ``environment`` or all (None): a rolling period from
    the hourly rollup and its partial hours' raw rows, whole days from the daily rollup.
    Two reads: the untimed set with its latency histogram, and the two timed sets in one
    GROUPING SETS pass without it (summing 21 latency buckets for every day's or hour's
    group, only to drop them, cost more than the second scan of the range)."""
    (untimed,) = _read(period, [GROUP_KEYS], environment, True)
    if not with_time:
        return OverviewUsage(untimed)
    bucket = "hour" if period.hourly else "day"
    by_feature, by_status = _read(
        period, [(bucket, "feature_id"), (bucket, "status")], environment, False
    )
    return OverviewUsage(untimed, by_feature, by_status)


def kpi_usage(period: Period, environment: str | None = None) -> dict[UsageKey, UsageSums]:
    """Usage sums of ``period`` keyed by KPI_KEYS, with latency: what usage_kpis needs."""
    (found,) = _read(period, [KPI_KEYS], environment, True)
    return found


def _read(
    period: Period, sets: list[tuple[str, ...]], environment: str | None, with_latency: bool
) -> list[dict[UsageKey, UsageSums]]:
    if period.first_day is None or period.last_day is None:  # hourly
        return usage_between_sets(
            period.since, period.until, sets, environment=environment, with_latency=with_latency
        )
    return usage_by_sets(
        period.first_day,
        period.last_day,
        sets,
        environment=environment,
        with_latency=with_latency,
    )


# --- KPIs -------------------------------------------------------------------------------


@dataclass
class UsageKpis:
    requests: int = 0
    finished: int = 0
    successes: int = 0
    spend: Decimal = ZERO
    response_time_ms: int = 0
    buckets: list[int] = field(default_factory=list)
    features_with_traffic: int = 0

    @property
    def success_rate(self) -> Decimal | None:
        if not self.finished:
            return None
        return (Decimal(self.successes) * 100 / self.finished).quantize(PERCENT, ROUND_HALF_EVEN)

    @property
    def avg_latency_ms(self) -> int | None:
        return round(self.response_time_ms / self.finished) if self.finished else None

    @property
    def error_rate(self) -> Decimal | None:
        if not self.finished:
            return None
        failures = self.finished - self.successes
        return (Decimal(failures) * 100 / self.finished).quantize(PERCENT, ROUND_HALF_EVEN)

    @property
    def p95_latency_ms(self) -> Decimal | None:
        """The p95 as every page computes it (webapp.services.usage.windows)."""
        return p95_of_buckets(self.buckets)


def usage_kpis(grouped: dict[UsageKey, UsageSums]) -> UsageKpis:
    """KPIs from rows keyed by (at least) feature_id and status, with latency.
    Requests are finished requests; spend counts every request."""
    kpis = UsageKpis()
    features = set()
    for key, sums in grouped.items():
        kpis.spend += sums.cost
        if key.status not in FINISHED:
            continue
        if sums.requests and key.feature_id is not None:
            features.add(key.feature_id)
        kpis.requests += sums.requests
        kpis.finished += sums.requests
        kpis.response_time_ms += sums.response_time_ms
        if key.status == "success":
            kpis.successes += sums.requests
        kpis.buckets = merge_buckets(kpis.buckets, sums.latency_buckets)
    kpis.features_with_traffic = len(features)
    return kpis


@dataclass(frozen=True)
class Tile:
    key: str
    label: str
    value: Any
    previous: Any
    kind: str  # count | money | percent | ms | text
    better: str = "up"  # which direction of change is good: up | down | none

    @property
    def delta(self) -> Any:
        if self.kind == "text" or self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def delta_percent(self) -> Decimal | None:
        if self.kind in ("percent", "text") or self.delta is None or not self.previous:
            return None
        return (Decimal(self.delta) * 100 / Decimal(self.previous)).quantize(Decimal("0.1"))

    @property
    def tone(self) -> str:
        delta = self.delta
        if not delta or self.better == "none":
            return "neutral"
        return "good" if (delta > 0) == (self.better == "up") else "bad"


def _health_counts(health: dict[uuid.UUID, Any]) -> dict[str, int]:
    counts = {"healthy": 0, "degraded": 0, "down": 0, "unknown": 0}
    for item in health.values():
        counts[item.status] = counts.get(item.status, 0) + 1
    return counts


def _health_counts_at(moment: datetime) -> dict[str, int]:
    """Provider statuses from the last health check recorded at or before ``moment``."""
    rows = db.session.execute(
        latest_checks(moment, None, ProviderHealthLog.status, ProviderHealthLog.health_score)
    )
    counts = {"healthy": 0, "degraded": 0, "down": 0, "unknown": 0}
    for _provider_id, status, score in rows:
        # A check without a score found no usage to judge (see provider_health).
        counts["unknown" if score is None else status] += 1
    return counts


def active_features_now_and_at(moment: datetime) -> tuple[int, int]:
    """How many features are active now, and were at ``moment``: today's statuses with the
    audited changes since then undone, newest first (features are only changed through
    audited services). Two queries."""
    statuses = dict(db.session.execute(select(Feature.id, Feature.status)).all())
    active_now = sum(1 for status in statuses.values() if status == "active")
    changes = db.session.execute(
        select(AuditLog.action, AuditLog.resource_id, AuditLog.old_values)
        .where(AuditLog.resource_type == "feature", AuditLog.created_at > moment)
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    )
    for action, feature_id, old_values in changes:
        if action == "feature.create":
            statuses.pop(feature_id, None)
        elif isinstance(old_values, dict) and "status" in old_values:
            statuses[feature_id] = old_values["status"]  # an update, or a deletion
    return active_now, sum(1 for status in statuses.values() if status == "active")


def _provider_text(counts: dict[str, int]) -> str:
    text = f"{counts['healthy']} / {counts['degraded']} / {counts['down']}"
    if counts.get("unknown"):
        text += f" · {counts['unknown']} unknown"
    return text


@dataclass
class Kpis:
    tiles: list[Tile]
    current: UsageKpis
    previous: UsageKpis
    providers: dict[str, int]
    providers_before: dict[str, int]


def kpis(
    period: Period,
    previous: Period,
    grouped: dict[UsageKey, UsageSums],
    health: dict[uuid.UUID, Any],
    analyses: list[Any],
    now: datetime,
    environment: str | None = None,
) -> Kpis:
    """The tiles. Usage figures are of one ``environment`` or all (None); budgets,
    providers and features are not per environment and always count them all."""
    current = usage_kpis(grouped)
    before = usage_kpis(kpi_usage(previous, environment))
    active, active_before = active_features_now_and_at(previous.until)
    at_risk = sum(1 for a in analyses if a.budget.is_active and a.status in AT_RISK)
    # As budgets stood at the end of the last whole UTC day before this period began:
    # whole past days come from the rollup (a partial day would need raw rows).
    before_day = (previous.until - timedelta(microseconds=1)).date()
    if previous.hourly:
        before_day -= timedelta(days=1)
    at_risk_before = sum(
        1 for a in budget_service.analyse_budgets(now, as_of=before_day) if a.status in AT_RISK
    )
    providers = _health_counts(health)
    providers_before = _health_counts_at(previous.until)
    tiles = [
        Tile("requests", "Requests", current.requests, before.requests, "count"),
        Tile("spend", "Spend", current.spend, before.spend, "money", "down"),
        Tile("success_rate", "Success rate", current.success_rate, before.success_rate, "percent"),
        Tile(
            "avg_latency",
            "Avg latency",
            current.avg_latency_ms,
            before.avg_latency_ms,
            "ms",
            "down",
        ),
        Tile(
            "p95_latency",
            "p95 latency",
            current.p95_latency_ms,
            before.p95_latency_ms,
            "ms",
            "down",
        ),
        Tile(
            "features",
            "Features with traffic",
            current.features_with_traffic,
            before.features_with_traffic,
            "count",
            "none",
        ),
        Tile("active_features", "Active features", active, active_before, "count", "none"),
        Tile(
            "providers",
            "Providers healthy / degraded / down",
            _provider_text(providers),
            _provider_text(providers_before),
            "text",
        ),
        Tile("budgets_at_risk", "Budgets at risk", at_risk, at_risk_before, "count", "down"),
    ]
    return Kpis(tiles, current, before, providers, providers_before)
