"""Usage rows written straight into ai_usage_logs and the rollup, for tests that need
columns ``record_usage`` does not take (environment, reported model names, cost source)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import AIModel, UsageLog
from webapp.models.rollup import LATENCY_BOUNDS_MS as LATENCY_BOUNDS
from webapp.models.rollup import LATENCY_BUCKETS
from webapp.models.rollup import NO_REFERENCE as NIL
from webapp.services.usage.rollup import (
    HOURLY,
    HOURLY_ROLLUP,
    OUTCOMES,
    SUM_COLUMNS,
    add_to_rollup,
    recompute_rollup,
)

DEFAULTS: dict[str, Any] = {
    "feature_id": None,
    "model_id": None,
    "prompt_id": None,
    "status": "success",
    "input_tokens": 0,
    "output_tokens": 0,
    "response_time_ms": 100,
    "cost_usd": Decimal("0"),
    "environment": "production",
    "model_name": None,
    "provider_name": None,
    "model_version": None,
    "cache_read_input_tokens": 0,
    "cache_write_input_tokens": 0,
    "images": 0,
    "cost_source": "catalog",
}


def earlier_today() -> datetime:
    """A moment of today (UTC) in the last 24 hours, whenever a test runs: halfway between
    midnight and now. "30 minutes ago" is yesterday between 00:00 and 00:30 UTC, and a
    test of today's figures then finds none."""
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + (now - midnight) / 2


def insert_usage(rows: Iterable[Mapping[str, Any]], commit: bool = True) -> list[dict[str, Any]]:
    """Insert ``rows`` (DEFAULTS fill what they leave out; ``created_at`` defaults to now)
    with one executemany, add them to the rollup, commit; the rows as inserted."""
    now = datetime.now(UTC)
    full = []
    for row in rows:
        values = DEFAULTS | {"id": uuid.uuid4(), "created_at": now} | dict(row)
        values["cost_usd"] = Decimal(str(values["cost_usd"]))
        values["tokens_used"] = values["input_tokens"] + values["output_tokens"]
        full.append(values)
    if not full:
        return full
    db.session.execute(UsageLog.__table__.insert(), full)
    model_ids = {row["model_id"] for row in full if row["model_id"]}
    provider_of = dict(
        db.session.execute(
            select(AIModel.id, AIModel.provider_id).where(AIModel.id.in_(model_ids))
        ).all()
    )
    add_to_rollup(full, provider_of)
    if commit:
        db.session.commit()
    return full


def roll_up() -> None:
    """Rebuild both rollups from the raw rows and commit: for tests that add ``UsageLog``
    objects straight to the session, past the write path that keeps the rollups."""
    recompute_rollup()
    db.session.commit()


def hourly_rollup_sums() -> dict[tuple, tuple]:
    """The hourly rollup per key (hour, feature, model, provider, status, environment),
    summed over shards; keys whose sums are all zero (taken out again) are left out."""
    c = HOURLY_ROLLUP.c
    keys = [c[k] for k in HOURLY.key_columns if k != "shard"]
    rows = db.session.execute(
        select(*keys, *[func.sum(c[name]) for name in SUM_COLUMNS]).group_by(*keys)
    )
    return {
        tuple(row[: len(keys)]): tuple(int(v) if i != 4 else v for i, v in enumerate(row[6:]))
        for row in rows
        if any(row[len(keys) :])
    }


def hourly_sums_of_raw_rows() -> dict[tuple, tuple]:
    """What the hourly rollup must hold, computed in Python from every raw row (the test's
    own grouping by hour and latency bucket, not the application's SQL)."""
    rows = db.session.execute(
        select(
            UsageLog.created_at,
            UsageLog.feature_id,
            UsageLog.model_id,
            AIModel.provider_id,
            UsageLog.status,
            UsageLog.environment,
            UsageLog.input_tokens,
            UsageLog.output_tokens,
            UsageLog.tokens_used,
            UsageLog.cost_usd,
            UsageLog.response_time_ms,
        ).outerjoin(AIModel, AIModel.id == UsageLog.model_id)
    )
    sums: dict[tuple, list] = {}
    for at, feature, model, provider, status, environment, *figures in rows:
        hour = at.replace(minute=0, second=0, microsecond=0)
        key = (hour, feature or NIL, model or NIL, provider or NIL, status, environment)
        entry = sums.setdefault(key, [0, 0, 0, 0, Decimal(0), 0] + [0] * LATENCY_BUCKETS)
        entry[0] += 1
        for index, value in enumerate(figures, start=1):
            entry[index] += value
        ms = figures[-1]
        entry[6 + sum(1 for bound in LATENCY_BOUNDS if ms >= bound)] += 1
    return {key: tuple(entry) for key, entry in sums.items()}


def assert_hourly_rollup_equals_raw() -> None:
    assert hourly_rollup_sums() == hourly_sums_of_raw_rows()


def hourly_outcome_sums() -> dict[tuple, tuple[int, int]]:
    """The hourly outcomes per key (hour, kind, key id, environment), summed over shards:
    (successes, finished); keys whose sums are both zero (taken out again) are left out."""
    c = OUTCOMES.c
    keys = [c.hour, c.kind, c.key_id, c.environment]
    rows = db.session.execute(
        select(*keys, func.sum(c.successes), func.sum(c.finished)).group_by(*keys)
    )
    return {
        (hour, kind, key_id, environment): (int(ok), int(finished))
        for hour, kind, key_id, environment, ok, finished in rows
        if ok or finished
    }


def hourly_outcomes_of_raw_rows() -> dict[tuple, tuple[int, int]]:
    """What the hourly outcomes must hold, computed in Python from every raw row: per
    hour, kind (feature, model, provider), id and environment, the successes and the
    finished (success, error, timeout) requests; no row for a missing id."""
    rows = db.session.execute(
        select(
            UsageLog.created_at,
            UsageLog.feature_id,
            UsageLog.model_id,
            AIModel.provider_id,
            UsageLog.status,
            UsageLog.environment,
        ).outerjoin(AIModel, AIModel.id == UsageLog.model_id)
    )
    sums: dict[tuple, list[int]] = {}
    for at, feature, model, provider, status, environment in rows:
        if status == "pending":
            continue
        hour = at.replace(minute=0, second=0, microsecond=0)
        for kind, key_id in (("feature", feature), ("model", model), ("provider", provider)):
            if key_id is None:
                continue
            entry = sums.setdefault((hour, kind, key_id, environment), [0, 0])
            entry[0] += status == "success"
            entry[1] += 1
    return {key: (ok, finished) for key, (ok, finished) in sums.items()}


def assert_hourly_outcomes_equal_raw() -> None:
    assert hourly_outcome_sums() == hourly_outcomes_of_raw_rows()
