"""The Global Overview: KPIs with their change against the previous period of the same
length, chart series, alerts, top models, features and recent activity.

Usage figures come from ``usage_days``: the daily rollup for whole past days and raw rows
only for today, or, for the 24-hour range, raw rows of the last 48 hours (an index range:
never whole past days). One grouped read serves the KPIs, the charts and the tables, so
the number of queries does not grow with the number of features, models or providers.

Definitions:
- requests: every request; success rate, latencies: finished requests only (pending
  left out), as on the feature and model pages;
- p95 latency: from the rollup's latency histogram (exact to the bucket, interpolated);
- active features: status ``active``; features with traffic: those that served a request
  in the period (this one has a previous-period value);
- budgets at risk: active budgets whose status is warning, critical or over_budget, now
  and as they stood at the end of the previous period.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    AIModel,
    AuditLog,
    Experiment,
    Feature,
    FeatureModelAssignment,
    Provider,
    ProviderHealthLog,
    UsageLog,
    User,
)
from webapp.services import budgets as budget_service
from webapp.services import provider_health
from webapp.services.errors import ValidationFailed
from webapp.services.spending import checked_date_range, days_between
from webapp.services.usage_days import (
    UsageSums,
    percentile_from_buckets,
    raw_usage_between,
    usage_by,
)

RANGES = ("24h", "7d", "30d", "custom")
AT_RISK = ("warning", "critical", "over_budget")
PERCENT = Decimal("0.01")
ZERO = Decimal("0.000000")
FINISHED = ("success", "error", "timeout")


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
        if self.hourly:
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
        last = today
        first = today - timedelta(days=int(range_name[:-1]) - 1)
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


def _grouped(period: Period, today: date, with_time: bool) -> dict[tuple, UsageSums]:
    """Usage sums by (time bucket,) feature, model, provider, status."""
    if period.hourly:
        keys = ("hour", *GROUP_KEYS) if with_time else GROUP_KEYS
        return raw_usage_between(period.since, period.until, keys, with_latency=True)
    keys = ("day", *GROUP_KEYS) if with_time else GROUP_KEYS
    return usage_by(period.first_day, period.last_day, keys, today=today, with_latency=True)


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
    def p95_latency_ms(self) -> int | None:
        return percentile_from_buckets(self.buckets, 0.95) if self.buckets else None


def usage_kpis(grouped: dict[tuple, UsageSums]) -> UsageKpis:
    """KPIs from rows keyed (…, feature_id, model_id, provider_id, status)."""
    kpis = UsageKpis()
    features = set()
    for key, sums in grouped.items():
        feature_id, status = key[-4], key[-1]
        kpis.requests += sums.requests
        kpis.spend += sums.cost
        if sums.requests and feature_id is not None:
            features.add(feature_id)
        if status not in FINISHED:
            continue
        kpis.finished += sums.requests
        kpis.response_time_ms += sums.response_time_ms
        if status == "success":
            kpis.successes += sums.requests
        kpis.buckets = (
            [a + b for a, b in zip(kpis.buckets, sums.latency_buckets, strict=True)]
            if kpis.buckets
            else list(sums.latency_buckets)
        )
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
    latest = (
        select(
            ProviderHealthLog.provider_id,
            func.max(ProviderHealthLog.checked_at).label("checked_at"),
        )
        .where(ProviderHealthLog.checked_at <= moment)
        .group_by(ProviderHealthLog.provider_id)
        .subquery()
    )
    rows = db.session.execute(
        select(ProviderHealthLog.status, ProviderHealthLog.health_score).join(
            latest,
            (latest.c.provider_id == ProviderHealthLog.provider_id)
            & (latest.c.checked_at == ProviderHealthLog.checked_at),
        )
    )
    counts = {"healthy": 0, "degraded": 0, "down": 0, "unknown": 0}
    for status, score in rows:
        # A check without a score found no usage to judge (see provider_health).
        counts["unknown" if score is None else status] += 1
    return counts


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
    grouped: dict[tuple, UsageSums],
    health: dict[uuid.UUID, Any],
    analyses: list[Any],
    now: datetime,
) -> Kpis:
    today = now.date()
    current = usage_kpis(grouped)
    before = usage_kpis(_grouped(previous, today, with_time=False))
    status_counts = dict(
        db.session.execute(select(Feature.status, func.count()).group_by(Feature.status)).all()
    )
    active = int(status_counts.get("active", 0))
    at_risk = sum(1 for a in analyses if a.budget.is_active and a.status in AT_RISK)
    previous_end = min(previous.until - timedelta(microseconds=1), now)
    at_risk_before = sum(
        1 for a in budget_service.analyse_budgets(previous_end) if a.status in AT_RISK
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
        Tile("active_features", "Active features", active, None, "count", "none"),
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


# --- series for the charts ------------------------------------------------------------


@dataclass
class Series:
    buckets: list[str]  # days (YYYY-MM-DD) or hours (YYYY-MM-DD HH)
    spend_by_feature: dict[str, list[Decimal]]
    requests: list[int]
    error_rate: list[Decimal | None]
    spend_by_provider: list[tuple[str, Decimal]]


def _buckets(period: Period) -> list[str]:
    if period.hourly:
        start = period.since.replace(minute=0, second=0, microsecond=0)
        count = int((period.until - start).total_seconds() // 3600) + 1
        hours = [start + timedelta(hours=i) for i in range(count)]
        return [f"{h:%Y-%m-%d %H}" for h in hours if h < period.until]
    return [d.isoformat() for d in days_between(period.first_day, period.last_day)]


def series(period: Period, grouped: dict[tuple, UsageSums], names: dict[str, dict]) -> Series:
    buckets = _buckets(period)
    index = {bucket: i for i, bucket in enumerate(buckets)}
    spend: dict[str, list[Decimal]] = {}
    requests = [0] * len(buckets)
    finished = [0] * len(buckets)
    failed = [0] * len(buckets)
    by_provider: dict[str, Decimal] = {}
    for (moment, feature_id, _model, provider_id, status), sums in grouped.items():
        slot = index.get(moment if isinstance(moment, str) else moment.isoformat())
        if slot is None:
            continue
        feature = names["features"].get(feature_id, "(no feature)")
        spend.setdefault(feature, [ZERO] * len(buckets))[slot] += sums.cost
        requests[slot] += sums.requests
        if status in FINISHED:
            finished[slot] += sums.requests
            if status != "success":
                failed[slot] += sums.requests
        provider = names["providers"].get(provider_id, "(no provider)")
        by_provider[provider] = by_provider.get(provider, ZERO) + sums.cost
    error_rate = [
        (Decimal(f) * 100 / n).quantize(PERCENT) if n else None
        for f, n in zip(failed, finished, strict=True)
    ]
    ordered = sorted(spend.items(), key=lambda item: (-sum(item[1]), item[0]))
    return Series(
        buckets,
        dict(ordered),
        requests,
        error_rate,
        sorted(by_provider.items(), key=lambda item: (-item[1], item[0])),
    )


# --- tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCost:
    model_id: uuid.UUID
    name: str
    provider: str
    cost: Decimal
    requests: int
    cost_per_request: Decimal | None
    p95_ms: int | None


def top_models(
    grouped: dict[tuple, UsageSums], names: dict[str, dict], limit: int = 5
) -> list[ModelCost]:
    per_model: dict[uuid.UUID, UsageSums] = {}
    finished_buckets: dict[uuid.UUID, list[int]] = {}
    provider_of: dict[uuid.UUID, uuid.UUID | None] = {}
    for key, sums in grouped.items():
        model_id, provider_id, status = key[-3], key[-2], key[-1]
        if model_id is None or model_id not in names["models"]:
            continue
        per_model.setdefault(model_id, UsageSums()).add(sums)
        provider_of[model_id] = provider_id
        if status in FINISHED:
            current = finished_buckets.get(model_id)
            finished_buckets[model_id] = (
                [a + b for a, b in zip(current, sums.latency_buckets, strict=True)]
                if current
                else list(sums.latency_buckets)
            )
    rows = [
        ModelCost(
            model_id,
            names["models"][model_id],
            names["providers"].get(provider_of[model_id], "(no provider)"),
            sums.cost,
            sums.requests,
            (sums.cost / sums.requests).quantize(Decimal("0.000001")) if sums.requests else None,
            percentile_from_buckets(finished_buckets.get(model_id, []), 0.95)
            if finished_buckets.get(model_id)
            else None,
        )
        for model_id, sums in per_model.items()
    ]
    rows.sort(key=lambda r: (-r.cost, r.name))
    return rows[:limit]


@dataclass(frozen=True)
class FeatureHealth:
    feature: Feature
    production_model: AIModel | None
    production_provider: str | None
    provider_status: str | None
    requests: int
    success_rate: Decimal | None


def features_table(
    grouped: dict[tuple, UsageSums], health: dict[uuid.UUID, Any]
) -> list[FeatureHealth]:
    """Every feature with its production model, that model's provider health and the
    feature's success rate in the period (two queries)."""
    features = db.session.scalars(select(Feature).order_by(Feature.display_name)).all()
    serving = {
        feature_id: (model, provider_name)
        for feature_id, model, provider_name in db.session.execute(
            select(FeatureModelAssignment.feature_id, AIModel, Provider.display_name)
            .join(AIModel, AIModel.id == FeatureModelAssignment.model_id)
            .join(Provider, Provider.id == AIModel.provider_id)
            .where(
                FeatureModelAssignment.environment == "production",
                FeatureModelAssignment.is_active.is_(True),
            )
        )
    }
    rows = [(feature, *serving.get(feature.id, (None, None))) for feature in features]
    totals: dict[uuid.UUID, list[int]] = {}
    for key, sums in grouped.items():
        feature_id, status = key[-4], key[-1]
        if feature_id is None or status not in FINISHED:
            continue
        entry = totals.setdefault(feature_id, [0, 0])
        entry[0] += sums.requests
        entry[1] += sums.requests if status == "success" else 0
    table = []
    for feature, model, provider_name in rows:
        finished, successes = totals.get(feature.id, [0, 0])
        table.append(
            FeatureHealth(
                feature,
                model,
                provider_name,
                health[model.provider_id].status if model and model.provider_id in health else None,
                finished,
                (Decimal(successes) * 100 / finished).quantize(PERCENT) if finished else None,
            )
        )
    return table


# --- alerts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    level: str  # critical | warning | info
    kind: str  # budget | provider | experiment | feature
    message: str
    endpoint: str
    resource_id: uuid.UUID


LEVEL_ORDER = {"critical": 0, "warning": 1, "info": 2}


def alerts(analyses: list[Any], health: dict[uuid.UUID, Any]) -> list[Alert]:
    found: list[Alert] = []
    for a in analyses:
        if a.budget.is_active and a.status in AT_RISK:
            level = "warning" if a.status == "warning" else "critical"
            found.append(
                Alert(
                    level,
                    "budget",
                    f"Budget {a.budget.name}: {a.alerts[0]}",
                    "budgets.detail",
                    a.budget.id,
                )
            )
    troubled = {pid: h for pid, h in health.items() if h.status in ("degraded", "down")}
    if troubled:
        affected = provider_health.affected_features_by_provider(health)
        names = dict(
            db.session.execute(
                select(Provider.id, Provider.display_name).where(Provider.id.in_(list(troubled)))
            ).all()
        )
        for provider_id, item in troubled.items():
            features = affected.get(provider_id, [])
            listing = ", ".join(f"{f.feature_display_name} ({f.environment})" for f in features)
            message = f"{names.get(provider_id, 'A provider')} is {item.status}"
            message += f": {listing} affected" if listing else ": no feature uses it"
            found.append(
                Alert(
                    "critical" if item.status == "down" else "warning",
                    "provider",
                    message,
                    "providers.detail",
                    provider_id,
                )
            )
    waiting = db.session.execute(
        select(Experiment.id, Experiment.name, Experiment.winner_variant, Experiment.status).where(
            Experiment.status.in_(("running", "paused")), Experiment.winner_variant.is_not(None)
        )
    ).all()
    for ident, name, winner, _status in waiting:
        found.append(
            Alert(
                "info",
                "experiment",
                f"Experiment {name} has a significant winner ({winner}) waiting for promotion",
                "experiments.detail",
                ident,
            )
        )
    maintenance = db.session.execute(
        select(Feature.id, Feature.display_name).where(Feature.status == "maintenance")
    ).all()
    for ident, name in maintenance:
        found.append(
            Alert("info", "feature", f"{name} is in maintenance", "features.detail", ident)
        )
    found.sort(key=lambda alert: LEVEL_ORDER[alert.level])
    return found


# --- activity ---------------------------------------------------------------------------

RESOURCE_PAGES = {
    "feature": "features.detail",
    "model": "models.detail",
    "provider": "providers.detail",
    "prompt": "prompts.detail",
    "budget": "budgets.detail",
    "experiment": "experiments.detail",
}


@dataclass(frozen=True)
class Activity:
    event: AuditLog
    email: str | None
    endpoint: str | None


def recent_activity(limit: int = 10) -> list[Activity]:
    rows = db.session.execute(
        select(AuditLog, User.email)
        .outerjoin(User, User.id == AuditLog.user_id)
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .limit(limit)
    ).all()
    return [
        Activity(
            event, email, RESOURCE_PAGES.get(event.resource_type) if event.resource_id else None
        )
        for event, email in rows
    ]


# --- the whole page ---------------------------------------------------------------------


def _names(grouped: dict[tuple, UsageSums]) -> dict[str, dict]:
    """Display names of the features, models and providers in the rows (three queries)."""

    def lookup(model: Any, ids: set) -> dict:
        ids = {i for i in ids if i is not None}
        if not ids:
            return {}
        return dict(
            db.session.execute(select(model.id, model.display_name).where(model.id.in_(ids))).all()
        )

    return {
        "features": lookup(Feature, {k[-4] for k in grouped}),
        "models": lookup(AIModel, {k[-3] for k in grouped}),
        "providers": lookup(Provider, {k[-2] for k in grouped}),
    }


@dataclass
class Overview:
    range_name: str
    period: Period
    previous: Period
    kpis: Kpis
    series: Series
    alerts: list[Alert]
    top_models: list[ModelCost]
    features: list[FeatureHealth]
    activity: list[Activity]
    empty: bool  # no usage recorded at all: the page says what to do first


def _without_time(grouped: dict[tuple, UsageSums]) -> dict[tuple, UsageSums]:
    untimed: dict[tuple, UsageSums] = {}
    for key, sums in grouped.items():
        untimed.setdefault(key[1:], UsageSums()).add(sums)
    return untimed


def any_usage() -> bool:
    return db.session.scalar(select(UsageLog.id).limit(1)) is not None


def build_overview(
    range_name: str = "7d", start: Any = None, end: Any = None, now: datetime | None = None
) -> Overview:
    """Everything the page shows, in a bounded number of queries."""
    now = now or datetime.now(UTC)
    range_name, period, previous = periods_for(range_name, start, end, now)
    grouped = _grouped(period, now.date(), with_time=True)
    untimed = _without_time(grouped)
    names = _names(untimed)
    health = provider_health.current_health_by_provider(now)
    analyses = budget_service.analyse_budgets(now)
    figures = kpis(period, previous, untimed, health, analyses, now)
    return Overview(
        range_name=range_name,
        period=period,
        previous=previous,
        kpis=figures,
        series=series(period, grouped, names),
        alerts=alerts(analyses, health),
        top_models=top_models(untimed, names),
        features=features_table(untimed, health),
        activity=recent_activity(),
        empty=figures.current.requests == 0 and not any_usage(),
    )


def build_tiles(
    range_name: str = "7d", start: Any = None, end: Any = None, now: datetime | None = None
) -> Kpis:
    """The KPI tiles alone (their partial refreshes every minute)."""
    now = now or datetime.now(UTC)
    _, period, previous = periods_for(range_name, start, end, now)
    untimed = _grouped(period, now.date(), with_time=False)
    health = provider_health.current_health_by_provider(now)
    return kpis(period, previous, untimed, health, budget_service.analyse_budgets(now), now)


def build_alerts(now: datetime | None = None) -> list[Alert]:
    """The alerts panel alone (its partial refreshes every minute)."""
    now = now or datetime.now(UTC)
    health = provider_health.current_health_by_provider(now)
    return alerts(budget_service.analyse_budgets(now), health)
