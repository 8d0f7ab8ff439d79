"""Provider health: each provider judged from its recent usage and, when configured, an
HTTP health check.

Usage is ``ai_usage_logs`` joined to ``ai_models.provider_id``, over two windows ending
now: the short one (15 minutes) and the long one (60 minutes), both settings. Figures
count *finished* requests only (``pending`` ones have no outcome or latency yet), as in
webapp/services/usage/windows.py, and read through it: the whole UTC hours of a window
from the hourly rollup, its partial hours from raw rows, the p95 from the latency
histogram.

Judging (thresholds are settings in webapp/config.py; a threshold is met *at* its value):
- the judged window is the short one when it holds at least HEALTH_MIN_REQUESTS finished
  requests, else the long one when it does, else none (too little traffic to judge);
- ``down`` when error rate >= HEALTH_DOWN_ERROR_RATE (25 %) or p95 >= HEALTH_DOWN_P95_MS
  (15,000 ms); else ``degraded`` when error rate >= HEALTH_DEGRADED_ERROR_RATE (5 %) or
  p95 >= HEALTH_DEGRADED_P95_MS (5,000 ms); else ``healthy``. The error rate is compared
  exactly, before it is rounded for display;
- requests per minute (finished requests / window minutes) is reported and stored as the
  check's throughput; its role in the judgement is the minimum-traffic rule above, since
  low demand alone says nothing about a provider's health;
- score = 100 − 60 · min(error rate / down error rate, 1) − 40 · min(p95 / down p95, 1),
  rounded half-even to a whole number (100: no errors and instant answers; reaching the
  down error rate alone costs 60 points, the down latency alone 40);
- the HTTP check (when the provider has ``health_check = {"url": …}``, requested through
  the SSRF guard of webapp/services/outbound.py; a 2xx answer is a success, redirects are
  not followed): a success changes nothing, except that a provider without usage to judge
  is ``healthy`` (score 100); a failure (connection error, timeout, a refused address,
  HTTP status 3xx or >= 400) makes a healthy provider ``degraded`` (the applications
  still get answers, only the check fails) and any other
  ``down``, and costs HEALTH_CHECK_FAILURE_PENALTY points (score 0 with no usage);
- with no usage to judge and no HTTP check the status is ``unknown`` with no score —
  shown as such, never as a flattering "healthy". provider_health_logs only allows
  healthy/degraded/down, so such a check is stored as ``healthy`` with a NULL
  health_score, and every reader here turns a NULL score back into ``unknown``.

The current health (pages, API, dashboard) is judged live from usage, with the latest
HTTP check recorded within the short window; ``flask providers check`` probes afresh and
records one row per provider.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from flask import current_app
from sqlalchemy import Select, case, func, select, true
from sqlalchemy.orm import aliased

from webapp.extensions import db
from webapp.models import (
    AIModel,
    Feature,
    FeatureModelAssignment,
    Provider,
    ProviderHealthLog,
)
from webapp.models.types import utc_hour
from webapp.services.catalog.providers import get_provider
from webapp.services.core import outbound
from webapp.services.core.errors import ValidationFailed
from webapp.services.usage.windows import (
    UsageMetrics,
    metrics_for,
    usage_metrics_by_windows,
)

HEALTHY, DEGRADED, DOWN, UNKNOWN = "healthy", "degraded", "down", "unknown"
SEVERITY = {HEALTHY: 0, DEGRADED: 1, DOWN: 2}
PERCENT = Decimal("0.01")
MAX_HISTORY_HOURS = 720
# Up to two days the timeline shows every check; beyond, hourly averages keep it readable.
RAW_HISTORY_HOURS = 48


@dataclass(frozen=True)
class Thresholds:
    short_minutes: int
    long_minutes: int
    min_requests: int
    degraded_error_rate: Decimal
    down_error_rate: Decimal
    degraded_p95_ms: Decimal
    down_p95_ms: Decimal
    check_timeout_seconds: float
    check_failure_penalty: int

    @staticmethod
    def from_config(config: Any = None) -> Thresholds:
        config = config if config is not None else current_app.config
        return Thresholds(
            short_minutes=int(config["HEALTH_SHORT_WINDOW_MINUTES"]),
            long_minutes=int(config["HEALTH_LONG_WINDOW_MINUTES"]),
            min_requests=int(config["HEALTH_MIN_REQUESTS"]),
            degraded_error_rate=Decimal(config["HEALTH_DEGRADED_ERROR_RATE"]),
            down_error_rate=Decimal(config["HEALTH_DOWN_ERROR_RATE"]),
            degraded_p95_ms=Decimal(config["HEALTH_DEGRADED_P95_MS"]),
            down_p95_ms=Decimal(config["HEALTH_DOWN_P95_MS"]),
            check_timeout_seconds=float(config["HEALTH_CHECK_TIMEOUT_SECONDS"]),
            check_failure_penalty=int(config["HEALTH_CHECK_FAILURE_PENALTY"]),
        )


@dataclass(frozen=True)
class WindowUsage:
    """Finished requests of one provider in one window."""

    minutes: int
    requests: int = 0
    failures: int = 0
    p95_ms: Decimal | None = None

    @property
    def error_ratio(self) -> Decimal | None:
        """Exact percentage (compared against thresholds before any rounding)."""
        if not self.requests:
            return None
        return Decimal(self.failures) * 100 / self.requests

    @property
    def error_rate(self) -> Decimal | None:
        ratio = self.error_ratio
        return None if ratio is None else ratio.quantize(PERCENT, rounding=ROUND_HALF_EVEN)

    @property
    def requests_per_minute(self) -> Decimal:
        return (Decimal(self.requests) / self.minutes).quantize(PERCENT, ROUND_HALF_EVEN)

    def as_dict(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "requests": self.requests,
            "failures": self.failures,
            "error_rate": self.error_rate,
            "p95_response_time_ms": self.p95_ms,
            "requests_per_minute": self.requests_per_minute,
        }


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one HTTP GET of a provider's health-check URL."""

    url: str
    ok: bool
    status_code: int | None = None
    response_time_ms: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ok": self.ok,
            "status_code": self.status_code,
            "response_time_ms": self.response_time_ms,
            "error": self.error,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CheckResult:
        return CheckResult(
            url=str(data.get("url", "")),
            ok=bool(data.get("ok")),
            status_code=data.get("status_code"),
            response_time_ms=data.get("response_time_ms"),
            # Rows recorded before the SSRF guard kept the remote side's text: not shown.
            error=outbound.generic_error(data.get("error")),
        )


@dataclass(frozen=True)
class ProviderHealth:
    provider_id: uuid.UUID
    status: str  # healthy, degraded, down or unknown
    score: int | None
    short: WindowUsage
    long: WindowUsage
    judged_minutes: int | None  # the window the status rests on; None: too little traffic
    check: CheckResult | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def judged(self) -> WindowUsage | None:
        if self.judged_minutes is None:
            return None
        return self.short if self.judged_minutes == self.short.minutes else self.long

    @property
    def error_rate(self) -> Decimal | None:
        return self.judged.error_rate if self.judged else None

    @property
    def p95_ms(self) -> Decimal | None:
        return self.judged.p95_ms if self.judged else None

    @property
    def requests_per_minute(self) -> Decimal:
        return (self.judged or self.short).requests_per_minute

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider_id": self.provider_id,
            "status": self.status,
            "health_score": self.score,
            "error_rate": self.error_rate,
            "p95_response_time_ms": self.p95_ms,
            "requests_per_minute": self.requests_per_minute,
            "judged_window_minutes": self.judged_minutes,
            "windows": {"short": self.short.as_dict(), "long": self.long.as_dict()},
            "http_check": self.check.as_dict() if self.check else None,
            "checked_at": self.checked_at,
        }


# --- judging (pure) ---------------------------------------------------------------


def usage_status(usage: WindowUsage, limits: Thresholds) -> str:
    """healthy / degraded / down for a window with enough traffic to judge."""
    ratio = usage.error_ratio or Decimal(0)
    p95 = usage.p95_ms if usage.p95_ms is not None else Decimal(0)
    if ratio >= limits.down_error_rate or p95 >= limits.down_p95_ms:
        return DOWN
    if ratio >= limits.degraded_error_rate or p95 >= limits.degraded_p95_ms:
        return DEGRADED
    return HEALTHY


def usage_score(usage: WindowUsage, limits: Thresholds) -> int:
    """100 − 60 · min(error rate / down rate, 1) − 40 · min(p95 / down p95, 1)."""
    ratio = usage.error_ratio or Decimal(0)
    p95 = usage.p95_ms if usage.p95_ms is not None else Decimal(0)
    error_part = min(ratio / limits.down_error_rate, Decimal(1)) * 60
    latency_part = min(p95 / limits.down_p95_ms, Decimal(1)) * 40
    score = (100 - error_part - latency_part).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return max(0, min(100, int(score)))


def judge(
    provider_id: uuid.UUID,
    short: WindowUsage,
    long: WindowUsage,
    check: CheckResult | None,
    limits: Thresholds,
    now: datetime,
) -> ProviderHealth:
    judged = next((w for w in (short, long) if w.requests >= limits.min_requests), None)
    status = usage_status(judged, limits) if judged else UNKNOWN
    score = usage_score(judged, limits) if judged else None
    if check is not None and check.ok and judged is None:
        status, score = HEALTHY, 100
    elif check is not None and not check.ok:
        status = DEGRADED if status == HEALTHY else DOWN
        score = 0 if score is None else max(0, score - limits.check_failure_penalty)
    return ProviderHealth(
        provider_id=provider_id,
        status=status,
        score=score,
        short=short,
        long=long,
        judged_minutes=judged.minutes if judged else None,
        check=check,
        checked_at=now,
    )


# --- reading usage ------------------------------------------------------------------


def window_usage_by_provider(
    now: datetime, limits: Thresholds
) -> dict[uuid.UUID, tuple[WindowUsage, WindowUsage]]:
    """(short, long) window usage per provider with traffic in either, through the one
    read path (windows.usage_metrics_by_windows: whole hours from the hourly rollup,
    partial hours from raw rows, each row once; p95 from the latency histogram)."""
    short, long = usage_metrics_by_windows(
        AIModel.provider_id,
        now,
        [timedelta(minutes=limits.short_minutes), timedelta(minutes=limits.long_minutes)],
    )

    def usage(minutes: int, metrics: UsageMetrics | None) -> WindowUsage:
        if metrics is None:
            return WindowUsage(minutes)
        return WindowUsage(
            minutes, metrics.total_requests, metrics.failures, metrics.p95_response_ms
        )

    return {
        provider_id: (
            usage(limits.short_minutes, short.get(provider_id)),
            usage(limits.long_minutes, long.get(provider_id)),
        )
        for provider_id in short.keys() | long.keys()
    }


def latest_checks(until: datetime, since: datetime | None = None, *columns: Any) -> Select[Any]:
    """``provider_id`` and ``columns`` of each provider's latest check recorded at or
    before ``until`` (and, given ``since``, not before it): one row per provider that has
    one. Every "latest check" read goes through here.

    One index probe per provider: the newest row is found by ``ORDER BY checked_at DESC
    LIMIT 1`` walking ix_provider_health_logs_provider_checked backwards from ``until`` (a
    few rows per provider), instead of a GROUP BY max() over every check ever recorded
    (400k rows after 90 days of one check a minute per provider). On PostgreSQL the probe
    is a LATERAL subquery, which the planner must run per provider (as a correlated scalar
    subquery it hashed every row of the table instead); SQLite has no LATERAL and runs
    the correlated subquery per provider. Ties on checked_at go to the larger id, so a
    provider never counts twice."""
    check = aliased(ProviderHealthLog)
    conditions = [check.provider_id == Provider.id, check.checked_at <= until]
    if since is not None:
        conditions.append(check.checked_at >= since)
    newest = (
        select(check.id)
        .where(*conditions)
        .order_by(check.checked_at.desc(), check.id.desc())
        .limit(1)
        .correlate(Provider)
    )
    query = select(ProviderHealthLog.provider_id, *columns).select_from(Provider)
    if db.session.get_bind().dialect.name == "postgresql":
        probe = newest.lateral("newest")
        return query.join(probe, true()).join(ProviderHealthLog, ProviderHealthLog.id == probe.c.id)
    return query.join(ProviderHealthLog, ProviderHealthLog.id == newest.scalar_subquery())


def _latest_checks(since: datetime, until: datetime) -> dict[uuid.UUID, CheckResult]:
    """The HTTP check of each provider's latest recorded row since ``since`` (one query)."""
    rows = db.session.execute(latest_checks(until, since, ProviderHealthLog.details)).all()
    return {
        provider_id: CheckResult.from_dict(details["http_check"])
        for provider_id, details in rows
        if isinstance(details, dict) and isinstance(details.get("http_check"), dict)
    }


def current_health_by_provider(now: datetime | None = None) -> dict[uuid.UUID, ProviderHealth]:
    """Every provider's health now, judged from usage and the latest recorded HTTP check
    of the short window. Five queries whatever the number of providers."""
    now = now or datetime.now(UTC)
    limits = Thresholds.from_config()
    provider_ids = db.session.scalars(select(Provider.id)).all()
    usage = window_usage_by_provider(now, limits)
    checks = _latest_checks(now - timedelta(minutes=limits.short_minutes), now)
    empty = (WindowUsage(limits.short_minutes), WindowUsage(limits.long_minutes))
    return {
        provider_id: judge(
            provider_id, *usage.get(provider_id, empty), checks.get(provider_id), limits, now
        )
        for provider_id in provider_ids
    }


@dataclass(frozen=True)
class ProviderPage:
    """What a provider's page and its API answer show: the judged health now, the usage
    of a named range (the same figures as every other page), the recorded checks of the
    last ``hours`` and the features it serves."""

    health: ProviderHealth
    time_range: str
    usage: UsageMetrics
    history: HealthHistory
    affected: list[AffectedFeature]


def provider_page(
    provider_id: uuid.UUID, hours: int, time_range: str = "24h", now: datetime | None = None
) -> ProviderPage:
    """The provider's health page (NotFound for an unknown provider). Every provider's
    health is judged once: the alternatives need to know which others are healthy."""
    get_provider(provider_id)
    checked_hours(hours)
    now = now or datetime.now(UTC)
    everyone = current_health_by_provider(now)
    usage = metrics_for("provider_id", time_range, now, only=[provider_id])
    return ProviderPage(
        health=everyone[provider_id],
        time_range=time_range,
        usage=usage.get(provider_id) or UsageMetrics.empty(),
        history=health_history(provider_id, hours, now),
        affected=affected_features(provider_id, everyone),
    )


# --- the HTTP check and recording ---------------------------------------------------


def run_http_check(
    url: str,
    timeout_seconds: float,
    allow_private: bool = False,
    extra_ports: frozenset[int] = frozenset(),
) -> CheckResult:
    """GET ``url`` through the SSRF guard of webapp/services/outbound.py (the host is
    resolved and checked now, redirects are not followed); a 2xx answer within the timeout
    is a success. A failure records a generic class, never the remote side's text."""
    try:
        status_code, elapsed = outbound.get_status(url, timeout_seconds, allow_private, extra_ports)
    except (outbound.OutboundRefused, outbound.OutboundFailed) as error:
        return CheckResult(url, False, None, None, error.error)
    if 300 <= status_code < 400:
        return CheckResult(
            url, False, status_code, elapsed, f"HTTP {status_code} (redirect not followed)"
        )
    if status_code >= 400 or status_code < 200:
        return CheckResult(url, False, status_code, elapsed, f"HTTP {status_code}")
    return CheckResult(url, True, status_code, elapsed, None)


def _check_targets(providers: Iterable[Provider], limits: Thresholds) -> dict[Any, Any]:
    targets = {}
    for provider in providers:
        config = provider.health_check or {}
        if config.get("url"):
            timeout = float(config.get("timeout_seconds") or limits.check_timeout_seconds)
            targets[provider.id] = (str(config["url"]), timeout)
    return targets


def record_health_checks(
    now: datetime | None = None, http_checks: bool = True
) -> list[tuple[Provider, ProviderHealth]]:
    """Judge every provider, run the configured HTTP checks (in parallel, each with its own
    short timeout) and store one provider_health_logs row per provider, in one commit."""
    now = now or datetime.now(UTC)
    limits = Thresholds.from_config()
    providers = db.session.scalars(select(Provider).order_by(Provider.name)).all()
    usage = window_usage_by_provider(now, limits)
    targets = _check_targets(providers, limits) if http_checks else {}
    checks: dict[uuid.UUID, CheckResult] = {}
    allow_private = bool(current_app.config.get("ALLOW_PRIVATE_PROVIDER_URLS"))
    extra_ports = frozenset(current_app.config.get("PROVIDER_URL_PORTS") or ())
    if targets:
        with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
            futures = {
                pid: pool.submit(run_http_check, url, timeout, allow_private, extra_ports)
                for pid, (url, timeout) in targets.items()
            }
            checks = {pid: future.result() for pid, future in futures.items()}
    empty = (WindowUsage(limits.short_minutes), WindowUsage(limits.long_minutes))
    results = []
    for provider in providers:
        health = judge(
            provider.id, *usage.get(provider.id, empty), checks.get(provider.id), limits, now
        )
        db.session.add(_log_row(health))
        results.append((provider, health))
    db.session.commit()
    return results


def _log_row(health: ProviderHealth) -> ProviderHealthLog:
    p95 = health.p95_ms
    details: dict[str, Any] = {
        "status": health.status,
        "judged_window_minutes": health.judged_minutes,
        "requests_per_minute": str(health.requests_per_minute),
        "windows": {
            "short": _jsonable(health.short.as_dict()),
            "long": _jsonable(health.long.as_dict()),
        },
    }
    if health.check is not None:
        details["http_check"] = health.check.as_dict()
    return ProviderHealthLog(
        provider_id=health.provider_id,
        # "unknown" is not a storable status: stored as healthy with a NULL score.
        status=HEALTHY if health.status == UNKNOWN else health.status,
        health_score=health.score,
        response_time_ms=None if p95 is None else int(p95.to_integral_value(ROUND_HALF_EVEN)),
        error_rate=health.error_rate,
        throughput=int(health.requests_per_minute.to_integral_value(ROUND_HALF_EVEN)),
        details=details,
        checked_at=health.checked_at,
    )


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in data.items()}


# --- the timeline -------------------------------------------------------------------


@dataclass(frozen=True)
class HealthPoint:
    at: datetime
    status: str
    health_score: Decimal | None
    response_time_ms: Decimal | None
    error_rate: Decimal | None
    throughput: Decimal | None
    checks: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.at,
            "status": self.status,
            "health_score": self.health_score,
            "response_time_ms": self.response_time_ms,
            "error_rate": self.error_rate,
            "throughput": self.throughput,
            "checks": self.checks,
        }


@dataclass(frozen=True)
class HealthHistory:
    hours: int
    resolution: str  # "check": every recorded check; "hour": hourly averages
    points: list[HealthPoint]


def checked_hours(value: int) -> int:
    if not 1 <= value <= MAX_HISTORY_HOURS:
        raise ValidationFailed({"hours": f"must be a whole number from 1 to {MAX_HISTORY_HOURS}"})
    return value


def health_history(
    provider_id: uuid.UUID, hours: int, now: datetime | None = None
) -> HealthHistory:
    """The recorded checks of the last ``hours`` hours, oldest first: each check up to
    RAW_HISTORY_HOURS, hourly averages (worst status of the hour) beyond."""
    checked_hours(hours)
    get_provider(provider_id)
    now = now or datetime.now(UTC)
    conditions = (
        ProviderHealthLog.provider_id == provider_id,
        ProviderHealthLog.checked_at >= now - timedelta(hours=hours),
        ProviderHealthLog.checked_at <= now,
    )
    if hours <= RAW_HISTORY_HOURS:
        rows = db.session.execute(
            select(
                ProviderHealthLog.checked_at,
                ProviderHealthLog.status,
                ProviderHealthLog.health_score,
                ProviderHealthLog.response_time_ms,
                ProviderHealthLog.error_rate,
                ProviderHealthLog.throughput,
            )
            .where(*conditions)
            .order_by(ProviderHealthLog.checked_at)
        ).all()
        points = [
            HealthPoint(
                at=at,
                status=UNKNOWN if score is None else status,
                health_score=None if score is None else Decimal(score),
                response_time_ms=None if ms is None else Decimal(ms),
                error_rate=rate,
                throughput=None if throughput is None else Decimal(throughput),
            )
            for at, status, score, ms, rate, throughput in rows
        ]
        return HealthHistory(hours, "check", points)
    hour = utc_hour(ProviderHealthLog.checked_at)
    severity = case(
        (ProviderHealthLog.status == DOWN, 2),
        (ProviderHealthLog.status == DEGRADED, 1),
        else_=0,
    )
    hourly = db.session.execute(
        select(
            hour,
            func.max(severity),
            func.count(ProviderHealthLog.health_score),
            func.avg(ProviderHealthLog.health_score),
            func.avg(ProviderHealthLog.response_time_ms),
            # ExactNumeric averages need the column's type (micro-units on SQLite).
            func.avg(ProviderHealthLog.error_rate, type_=ProviderHealthLog.error_rate.type),
            func.avg(ProviderHealthLog.throughput),
            func.count(),
        )
        .where(*conditions)
        .group_by(hour)
        .order_by(hour)
    ).all()
    by_severity = {value: name for name, value in SEVERITY.items()}
    points = [
        HealthPoint(
            at=datetime.strptime(key, "%Y-%m-%d %H").replace(tzinfo=UTC),
            status=UNKNOWN if not scored and worst == 0 else by_severity[int(worst)],
            health_score=_tenth(score),
            response_time_ms=_tenth(ms),
            error_rate=rate,
            throughput=_tenth(throughput),
            checks=int(checks),
        )
        for key, worst, scored, score, ms, rate, throughput, checks in hourly
    ]
    return HealthHistory(hours, "hour", points)


def _tenth(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


# --- features affected and alternatives --------------------------------------------


@dataclass(frozen=True)
class Alternative:
    model_id: uuid.UUID
    model_name: str
    model_display_name: str
    provider_id: uuid.UUID
    provider_display_name: str
    # The ranking rule: input + output price per million tokens.
    price_per_million: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "model_name": self.model_name,
            "model_display_name": self.model_display_name,
            "provider_id": self.provider_id,
            "provider_display_name": self.provider_display_name,
            "input_plus_output_price_per_million": self.price_per_million,
        }


@dataclass(frozen=True)
class AffectedFeature:
    feature_id: uuid.UUID
    feature_name: str
    feature_display_name: str
    environment: str
    model_id: uuid.UUID
    model_display_name: str
    model_type: str
    alternative: Alternative | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature_id": self.feature_id,
            "feature_name": self.feature_name,
            "feature_display_name": self.feature_display_name,
            "environment": self.environment,
            "model_id": self.model_id,
            "model_display_name": self.model_display_name,
            "model_type": self.model_type,
            "alternative": self.alternative.as_dict() if self.alternative else None,
        }


ENVIRONMENT_ORDER = {"production": 0, "staging": 1, "development": 2}


def affected_features_by_provider(
    health: dict[uuid.UUID, ProviderHealth] | None = None,
) -> dict[uuid.UUID, list[AffectedFeature]]:
    """Per provider, the features whose active model (in any environment) it serves, each
    with the cheapest alternative: an ``available`` model of the same type from another
    ``active`` provider that is ``healthy`` now, cheapest by input + output price per
    million tokens (ties: display name). Two queries plus ``health`` when not given."""
    health = health if health is not None else current_health_by_provider()
    rows = db.session.execute(
        select(
            AIModel.provider_id,
            Feature.id,
            Feature.name,
            Feature.display_name,
            FeatureModelAssignment.environment,
            AIModel.id,
            AIModel.display_name,
            AIModel.model_type,
        )
        .join(FeatureModelAssignment, FeatureModelAssignment.feature_id == Feature.id)
        .join(AIModel, AIModel.id == FeatureModelAssignment.model_id)
        .where(FeatureModelAssignment.is_active)
    ).all()
    if not rows:
        return {}
    price = AIModel.input_price_per_million + AIModel.output_price_per_million
    candidates = db.session.execute(
        select(
            AIModel.id,
            AIModel.name,
            AIModel.display_name,
            AIModel.model_type,
            Provider.id,
            Provider.display_name,
            AIModel.input_price_per_million,
            AIModel.output_price_per_million,
        )
        .join(Provider, Provider.id == AIModel.provider_id)
        .where(
            AIModel.status == "available",
            Provider.status == "active",
            AIModel.model_type.in_({row.model_type for row in rows}),
        )
        .order_by(price, AIModel.display_name, AIModel.id)
    ).all()
    healthy = {pid for pid, h in health.items() if h.status == HEALTHY}

    def cheapest(model_type: str, other_than: uuid.UUID) -> Alternative | None:
        for mid, mname, mdisplay, mtype, pid, pdisplay, in_price, out_price in candidates:
            if mtype == model_type and pid != other_than and pid in healthy:
                return Alternative(mid, mname, mdisplay, pid, pdisplay, in_price + out_price)
        return None

    result: dict[uuid.UUID, list[AffectedFeature]] = {}
    for provider_id, fid, fname, fdisplay, env, mid, mdisplay, mtype in rows:
        result.setdefault(provider_id, []).append(
            AffectedFeature(
                fid, fname, fdisplay, env, mid, mdisplay, mtype, cheapest(mtype, provider_id)
            )
        )
    for features in result.values():
        features.sort(
            key=lambda a: (a.feature_display_name, ENVIRONMENT_ORDER.get(a.environment, 9))
        )
    return result


def affected_features(
    provider_id: uuid.UUID, health: dict[uuid.UUID, ProviderHealth] | None = None
) -> list[AffectedFeature]:
    """The features one provider serves now, with alternatives (see above)."""
    return affected_features_by_provider(health).get(provider_id, [])
