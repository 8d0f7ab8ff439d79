"""The overview's charts series, tables, alerts and recent activity, computed from the
grouped usage rows the page reads once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import (
    AIModel,
    AuditLog,
    Budget,
    Experiment,
    Feature,
    FeatureModelAssignment,
    Prompt,
    Provider,
    User,
)
from webapp.services.catalog.names import display_names
from webapp.services.core.money import to_micro_dollars
from webapp.services.health import provider_health
from webapp.services.overview.kpis import AT_RISK, FINISHED, PERCENT, ZERO, OverviewUsage, Period
from webapp.services.spending.analytics import days_between
from webapp.services.usage.reads import UsageKey, UsageSums
from webapp.services.usage.windows import p95_of_buckets

# --- series for the charts ------------------------------------------------------------


@dataclass
class Series:
    buckets: list[str]  # days (YYYY-MM-DD) or hours (YYYY-MM-DD HH)
    spend_by_feature: dict[str, list[Decimal]]
    requests: list[int]
    error_rate: list[Decimal | None]
    spend_by_provider: list[tuple[str, Decimal]]


def _buckets(period: Period) -> list[str]:
    if period.first_day is None or period.last_day is None:  # hourly
        start = period.since.replace(minute=0, second=0, microsecond=0)
        count = int((period.until - start).total_seconds() // 3600) + 1
        hours = [start + timedelta(hours=i) for i in range(count)]
        return [f"{h:%Y-%m-%d %H}" for h in hours if h < period.until]
    return [d.isoformat() for d in days_between(period.first_day, period.last_day)]


def series(period: Period, usage: OverviewUsage, names: dict[str, dict]) -> Series:
    """The charts' series from the page's grouped usage: spend per feature and requests
    and error rate per time bucket from the timed sets, spend by provider from the
    untimed one."""
    buckets = _buckets(period)
    index = {bucket: i for i, bucket in enumerate(buckets)}
    spend: dict[str, list[Decimal]] = {}
    requests = [0] * len(buckets)
    finished = [0] * len(buckets)
    failed = [0] * len(buckets)
    for key, sums in usage.by_feature.items():
        slot = _slot(index, key[0])
        if slot is None:
            continue
        feature = names["features"].get(key.feature_id, "(no feature)")
        spend.setdefault(feature, [ZERO] * len(buckets))[slot] += sums.cost
    for key, sums in usage.by_status.items():
        slot = _slot(index, key[0])
        if slot is None or key.status not in FINISHED:
            continue
        requests[slot] += sums.requests
        finished[slot] += sums.requests
        if key.status != "success":
            failed[slot] += sums.requests
    by_provider: dict[str, Decimal] = {}
    for key, sums in usage.untimed.items():
        provider = names["providers"].get(key.provider_id, "(no provider)")
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


def _slot(index: dict[str, int], moment: Any) -> int | None:
    """The chart position of a day (a date) or an hour ("YYYY-MM-DD HH") key."""
    return index.get(moment if isinstance(moment, str) else moment.isoformat())


# --- tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCost:
    model_id: uuid.UUID
    name: str
    provider: str
    cost: Decimal
    requests: int
    cost_per_request: Decimal | None
    p95_ms: Decimal | None


def top_models(
    grouped: dict[UsageKey, UsageSums],
    names: dict[str, dict],
    limit: int = 5,
) -> list[ModelCost]:
    """The costliest models: spend counts every request, requests and p95 finished ones
    (the p95 as every page computes it for the period)."""
    cost: dict[uuid.UUID, Decimal] = {}
    finished: dict[uuid.UUID, UsageSums] = {}
    provider_of: dict[uuid.UUID, uuid.UUID | None] = {}
    for key, sums in grouped.items():
        if key.model_id is None or key.model_id not in names["models"]:
            continue
        cost[key.model_id] = cost.get(key.model_id, ZERO) + sums.cost
        provider_of[key.model_id] = key.provider_id
        if key.status in FINISHED:
            finished.setdefault(key.model_id, UsageSums()).add(sums)
    rows = []
    for model_id, spent in cost.items():
        done = finished.get(model_id, UsageSums())
        p95 = p95_of_buckets(done.latency_buckets)
        rows.append(
            ModelCost(
                model_id,
                names["models"][model_id],
                names["providers"].get(provider_of[model_id], "(no provider)"),
                spent,
                done.requests,
                to_micro_dollars(spent / done.requests) if done.requests else None,
                p95,
            )
        )
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
    grouped: dict[UsageKey, UsageSums], health: dict[uuid.UUID, Any]
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
    totals: dict[uuid.UUID, list[int]] = {}  # requests, finished, successes
    for key, sums in grouped.items():
        if key.feature_id is None or key.status not in FINISHED:
            continue
        entry = totals.setdefault(key.feature_id, [0, 0, 0])
        entry[0] += sums.requests
        entry[1] += sums.requests
        entry[2] += sums.requests if key.status == "success" else 0
    table = []
    for feature, model, provider_name in rows:
        requests, finished, successes = totals.get(feature.id, [0, 0, 0])
        table.append(
            FeatureHealth(
                feature,
                model,
                provider_name,
                health[model.provider_id].status if model and model.provider_id in health else None,
                requests,
                (Decimal(successes) * 100 / finished).quantize(PERCENT) if finished else None,
            )
        )
    return table


# --- alerts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """An alert about a resource, named by kind and id (the web layer knows its page)."""

    level: str  # critical | warning | info
    kind: str  # the resource's kind: budget | provider | experiment | feature
    message: str
    resource_id: uuid.UUID
    # The alert rests on failed requests (a provider's error rate): the page links the
    # resource's failing requests beside it.
    about_errors: bool = False


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
                    provider_id,
                    about_errors=True,
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
                ident,
            )
        )
    maintenance = db.session.execute(
        select(Feature.id, Feature.display_name).where(Feature.status == "maintenance")
    ).all()
    for ident, name in maintenance:
        found.append(Alert("info", "feature", f"{name} is in maintenance", ident))
    found.sort(key=lambda alert: LEVEL_ORDER[alert.level])
    return found


# --- activity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    event: AuditLog
    email: str | None
    # The event's resource kind while it exists (the web layer links it to its page);
    # None: nothing to link to (no resource, or deleted since).
    resource_kind: str | None
    # The resource's name as the row kept it; never a user's (their email is not shown
    # on the overview).
    resource_name: str | None = None


RESOURCE_TABLES: dict[str, type[Feature | AIModel | Provider | Prompt | Budget | Experiment]] = {
    "feature": Feature,
    "model": AIModel,
    "provider": Provider,
    "prompt": Prompt,
    "budget": Budget,
    "experiment": Experiment,
}


def recent_activity(limit: int = 10) -> list[Activity]:
    """The last admin changes, each linking to its resource while that still exists (one
    query for the events, one UNION ALL for which resources exist). Sign-in events and
    refused requests (``auth.*``: ``auth.forbidden``, ``auth.login_failed``, …) stay in
    the audit log and out of here: they would push the changes off the list."""
    from webapp.services.audit.log import existing_resources

    rows = db.session.execute(
        select(AuditLog, User.email)
        .outerjoin(User, User.id == AuditLog.user_id)
        .where(AuditLog.action.not_like("auth.%"))
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .limit(limit)
    ).all()
    existing = existing_resources([event for event, _ in rows])
    return [
        Activity(
            event,
            email,
            event.resource_type
            if event.resource_id in existing and event.resource_type in RESOURCE_TABLES
            else None,
            event.resource_name if event.resource_type != "user" else None,
        )
        for event, email in rows
    ]


def names_of(grouped: dict[UsageKey, UsageSums]) -> dict[str, dict]:
    """Display names of the features, models and providers in the rows (one query)."""
    return display_names(
        features={k[-4] for k in grouped},
        models={k[-3] for k in grouped},
        providers={k[-2] for k in grouped},
    )
