"""The Global Overview: KPIs with their change against the previous period of the same
length, chart series, alerts, top models, features and recent activity.

Usage figures come from ``usage.reads``: the daily rollup for whole days, or, for the
24-hour range, the hourly rollup and the partial hours' raw rows. ``kpis.grouped_usage``
has the database group them down to the groups the page shows, no finer: (feature,
model, provider, status) with latency for the KPIs, tables and spend by provider (the
tiles partial and the previous period: ``kpis.KPI_KEYS``, feature and status), and
(time bucket, feature) and (time bucket, status) in one GROUPING SETS pass for the
charts, so neither the number of queries nor the rows merged in Python grow with days
times features times models.

Definitions:
- requests, success and error rates, latencies: finished requests only (pending left
  out), spend: every request — as on every page (webapp.services.usage.windows);
- p95 latency: for 7d/30d/custom (whole UTC days) the rollup's latency histogram; for
  24h (rolling) the exact percentile of the raw rows — the definitions of usage.windows;
- active features: status ``active``; features with traffic: those that served a request
  in the period (this one has a previous-period value);
- budgets at risk: active budgets whose status is warning, critical or over_budget, now
  and as they stood at the end of the previous period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import UsageLog
from webapp.services.core.errors import ValidationFailed
from webapp.services.health import provider_health
from webapp.services.overview.kpis import (
    Kpis,
    Period,
    grouped_usage,
    kpi_usage,
    kpis,
    periods_for,
)
from webapp.services.overview.panels import (
    Activity,
    Alert,
    FeatureHealth,
    ModelCost,
    Series,
    alerts,
    features_table,
    names_of,
    recent_activity,
    series,
    top_models,
)
from webapp.services.spending import budgets as budget_service
from webapp.services.usage.attach import UnknownModel, unknown_models
from webapp.services.usage.windows import checked_environment

__all__ = ["build_alerts", "build_overview", "build_tiles", "build_unknown_models", "periods_for"]

# --- the whole page ---------------------------------------------------------------------


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
    # Usage of the last 30 days from model names the catalog does not know (every
    # environment: it is about the catalog, not about the figures shown).
    unknown_models: list[UnknownModel]
    empty: bool  # no usage recorded at all: the page says what to do first


def any_usage() -> bool:
    return db.session.scalar(select(UsageLog.id).limit(1)) is not None


def build_overview(
    range_name: str = "7d",
    start: Any = None,
    end: Any = None,
    now: datetime | None = None,
    environment: str | None = None,
) -> Overview:
    """Everything the page shows, in a bounded number of queries. Usage figures are of
    one ``environment`` or all (None)."""
    now = now or datetime.now(UTC)
    range_name, period, previous, environment = _checked(range_name, start, end, now, environment)
    usage = grouped_usage(period, True, environment)
    untimed = usage.untimed
    names = names_of(untimed)
    health = provider_health.current_health_by_provider(now)
    analyses = budget_service.analyse_budgets(now)
    figures = kpis(period, previous, untimed, health, analyses, now, environment)
    return Overview(
        range_name=range_name,
        period=period,
        previous=previous,
        kpis=figures,
        series=series(period, usage, names),
        alerts=alerts(analyses, health),
        top_models=top_models(untimed, names),
        features=features_table(untimed, health),
        activity=recent_activity(),
        unknown_models=unknown_models(now),
        empty=figures.current.requests == 0 and not any_usage(),
    )


def build_tiles(
    range_name: str = "7d",
    start: Any = None,
    end: Any = None,
    now: datetime | None = None,
    environment: str | None = None,
) -> Kpis:
    """The KPI tiles alone (their partial refreshes every minute)."""
    now = now or datetime.now(UTC)
    _, period, previous, environment = _checked(range_name, start, end, now, environment)
    untimed = kpi_usage(period, environment)
    health = provider_health.current_health_by_provider(now)
    analyses = budget_service.analyse_budgets(now)
    return kpis(period, previous, untimed, health, analyses, now, environment)


def _checked(
    range_name: str, start: Any, end: Any, now: datetime, environment: str | None
) -> tuple[str, Period, Period, str | None]:
    """The periods and the environment, every wrong one named at once."""
    errors: dict[str, str] = {}
    found: tuple[str, Period, Period] | None = None
    try:
        found = periods_for(range_name, start, end, now)
    except ValidationFailed as error:
        errors.update(error.errors)
    try:
        environment = checked_environment(environment)
    except ValidationFailed as error:
        errors.update(error.errors)
    if errors or found is None:
        raise ValidationFailed(errors)
    return (*found, environment)


def build_unknown_models(now: datetime | None = None) -> list[UnknownModel]:
    """The alert on usage from models not in the catalog (refreshed with the alerts)."""
    return unknown_models(now or datetime.now(UTC))


def build_alerts(now: datetime | None = None) -> list[Alert]:
    """The alerts panel alone (its partial refreshes every minute)."""
    now = now or datetime.now(UTC)
    health = provider_health.current_health_by_provider(now)
    return alerts(budget_service.analyse_budgets(now), health)
