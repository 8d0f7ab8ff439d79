"""Keeping ``ai_usage_daily_rollup`` in step with ``ai_usage_logs``.

``add_to_rollup`` is called by usage recording in the same transaction as the raw rows:
it sums a batch per key in Python and upserts (INSERT … ON CONFLICT DO UPDATE, on both
databases) into one shard, picked at random per call. Writers in different shards never
wait for each other's row locks; two in the same shard lock their rows in one order. With
``sign=-1`` it takes rows out again (a pending row being completed, rows being attached to
a model): the figures of a key are the sum over its shards, so the minus may land in any
shard. ``rebuild_rollup`` recomputes whole days from the raw rows in SQL (into shard 0).
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import case, delete, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import AIModel, UsageLog
from webapp.models.rollup import (
    BUCKET_COLUMNS,
    LATENCY_BOUNDS_MS,
    NO_REFERENCE,
    ROLLUP_SHARDS,
    UsageDailyRollup,
    latency_bucket,
)
from webapp.models.types import utc_day
from webapp.services.audit.records import add_audit_row
from webapp.services.core.actor import Actor

ROLLUP = UsageDailyRollup.__table__
KEY_COLUMNS = ("day", "feature_id", "model_id", "provider_id", "status", "environment", "shard")
SUM_COLUMNS = (
    "request_count",
    "input_tokens",
    "output_tokens",
    "tokens_used",
    "cost_usd",
    "response_time_ms_sum",
    *BUCKET_COLUMNS,
)


def rollup_key(
    created_at: datetime,
    feature_id: uuid.UUID | None,
    model_id: uuid.UUID | None,
    provider_id: uuid.UUID | None,
    status: str,
    environment: str,
    shard: int,
) -> tuple[date, uuid.UUID, uuid.UUID, uuid.UUID, str, str, int]:
    return (
        created_at.date(),  # created_at is UTC (UTCDateTime), so this is the UTC day
        feature_id or NO_REFERENCE,
        model_id or NO_REFERENCE,
        provider_id or NO_REFERENCE,
        status,
        environment,
        shard,
    )


def pick_shard() -> int:
    """The shard one transaction writes its rollup (and counter) deltas to."""
    return random.randrange(ROLLUP_SHARDS)


def add_to_rollup(
    rows: Iterable[Mapping[str, Any]],
    provider_of: Mapping[uuid.UUID, uuid.UUID],
    *,
    sign: int = 1,
    shard: int | None = None,
    removed: Iterable[Mapping[str, Any]] = (),
) -> None:
    """Add usage rows (dicts as inserted into ai_usage_logs; ``environment`` defaults to
    production) to the rollup, or take them out with ``sign=-1``. ``provider_of`` maps
    each model id to its provider id. ``removed`` rows are taken out in the same upsert
    (a row's old figures when it changes): one statement locks its rollup rows in one
    order, where two calls could deadlock with another writer of the shard."""
    if shard is None:
        shard = pick_shard()
    sums: dict[tuple, dict[str, Any]] = {}
    signed = [(row, sign) for row in rows] + [(row, -sign) for row in removed]
    for row, sign in signed:
        model_id = row.get("model_id")
        key = rollup_key(
            row["created_at"],
            row.get("feature_id"),
            model_id,
            provider_of.get(model_id) if model_id else None,
            row["status"],
            row.get("environment") or "production",
            shard,
        )
        entry = sums.get(key)
        if entry is None:
            entry = sums[key] = dict.fromkeys(SUM_COLUMNS, 0)
            entry["cost_usd"] = Decimal(0)
        entry["request_count"] += sign
        entry["input_tokens"] += sign * row["input_tokens"]
        entry["output_tokens"] += sign * row["output_tokens"]
        entry["tokens_used"] += sign * row["tokens_used"]
        entry["cost_usd"] += sign * row["cost_usd"]
        entry["response_time_ms_sum"] += sign * row["response_time_ms"]
        entry[BUCKET_COLUMNS[latency_bucket(row["response_time_ms"])]] += sign
    if not sums:
        return
    values = [dict(zip(KEY_COLUMNS, key, strict=True)) | entry for key, entry in sums.items()]
    statement = _rollup_upsert(db.session.get_bind().dialect.name)
    # Sorted keys: concurrent batches lock rollup rows in one order (no deadlock).
    db.session.execute(statement, sorted(values, key=lambda v: tuple(map(str, v.values()))))


@functools.cache
def _rollup_upsert(dialect_name: str) -> Any:
    """The upsert of rollup deltas, built once per dialect: building its 27-column SET
    clause took longer than running it for a one-event batch."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(ROLLUP)
    return statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={name: ROLLUP.c[name] + statement.excluded[name] for name in SUM_COLUMNS},
    )


def _bucket_sums() -> list[Any]:
    lower = (0, *LATENCY_BOUNDS_MS)
    sums = []
    for index, name in enumerate(BUCKET_COLUMNS):
        condition = UsageLog.response_time_ms >= lower[index]
        if index < len(LATENCY_BOUNDS_MS):
            condition = condition & (UsageLog.response_time_ms < LATENCY_BOUNDS_MS[index])
        sums.append(func.sum(case((condition, 1), else_=0)).label(name))
    return sums


def raw_row_sums() -> list[Any]:
    """The rollup's SUM_COLUMNS computed from raw usage rows, in that order: what a GROUP
    BY over ``ai_usage_logs`` selects to fill (or move) rollup rows. Shared by the rebuild
    and by attaching rows to a model (webapp/services/usage/attach.py)."""
    return [
        func.count(),
        func.sum(UsageLog.input_tokens),
        func.sum(UsageLog.output_tokens),
        func.sum(UsageLog.tokens_used),
        func.sum(UsageLog.cost_usd),
        func.sum(UsageLog.response_time_ms),
        *_bucket_sums(),
    ]


def rebuild_rollup(actor: Actor, since: date | None = None) -> int:
    """Recompute the rollup from raw rows for every day from ``since`` (all days when
    None), as one audited transaction. Returns the number of rollup rows written."""
    written = recompute_rollup(since)
    add_audit_row(
        actor,
        "rollup.rebuild",
        "usage_rollup",
        new_values={"from": since.isoformat() if since else None, "rows": written},
    )
    db.session.commit()
    return written


def recompute_rollup(since: date | None = None) -> int:
    """``rebuild_rollup`` in the caller's transaction, without audit or commit."""
    removal = delete(ROLLUP)
    if since is not None:
        removal = removal.where(ROLLUP.c.day >= since)
    db.session.execute(removal)

    nil = literal(NO_REFERENCE, UsageDailyRollup.feature_id.type)
    day = utc_day(UsageLog.created_at)
    feature = func.coalesce(UsageLog.feature_id, nil)
    model = func.coalesce(UsageLog.model_id, nil)
    provider = func.coalesce(AIModel.provider_id, nil)
    query = (
        select(
            day,
            feature,
            model,
            provider,
            UsageLog.status,
            UsageLog.environment,
            literal(0, UsageDailyRollup.shard.type),
            *raw_row_sums(),
        )
        .outerjoin(AIModel, AIModel.id == UsageLog.model_id)
        .group_by(day, feature, model, provider, UsageLog.status, UsageLog.environment)
    )
    if since is not None:
        query = query.where(UsageLog.created_at >= datetime.combine(since, time.min, tzinfo=UTC))
    db.session.execute(insert(ROLLUP).from_select([*KEY_COLUMNS, *SUM_COLUMNS], query))
    # rowcount of INSERT … SELECT is not reported by every driver: count what is there.
    counted = select(func.count()).select_from(ROLLUP)
    if since is not None:
        counted = counted.where(ROLLUP.c.day >= since)
    return db.session.scalar(counted) or 0
