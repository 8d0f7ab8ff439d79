"""Keeping the usage rollups (``ai_usage_daily_rollup``, ``ai_usage_hourly_rollup``) in step
with ``ai_usage_logs``.

``add_to_rollup`` is called by usage recording in the same transaction as the raw rows:
it sums a batch per key in Python and upserts (INSERT … ON CONFLICT DO UPDATE, on both
databases) into one shard of each rollup, picked at random per call. Writers in different
shards never wait for each other's row locks; two in the same shard lock their rows in one
order (the daily rollup's first, then the hourly one's, each sorted by key). With
``sign=-1`` it takes rows out again (a pending row being completed, rows being attached to
a model): the figures of a key are the sum over its shards, so the minus may land in any
shard. ``recompute_rollup`` recomputes both from the raw rows in SQL (into shard 0).

The two rollups differ only in their period column (``PERIODS``): every writer loops over
``PERIODS``, so neither can be forgotten.

The hourly outcomes (``ai_usage_hourly_outcomes``: successes and finished requests per
hour, kind, key and environment, the one thing whole-day uptime reads) are written by the
same functions, right after the hourly rollup, in the same shard: ``add_to_rollup`` (its
upsert comes last, sorted by key, so the lock order stays one), ``recompute_rollup``
(from the hourly rollup it has just recomputed from raw rows), attaching rows to a model
(attach.py) and the compaction (compaction.py).
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, case, delete, func, insert, literal, select, union, union_all
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import AIModel, UsageLog
from webapp.models.rollup import (
    BUCKET_COLUMNS,
    LATENCY_BOUNDS_MS,
    NO_REFERENCE,
    OUTCOME_KINDS,
    ROLLUP_SHARDS,
    UsageDailyRollup,
    UsageHourlyOutcomes,
    UsageHourlyRollup,
    latency_bucket,
)
from webapp.models.types import utc_day, utc_hour_start
from webapp.services.audit.records import add_audit_row
from webapp.services.core.actor import Actor
from webapp.services.core.dates import floor_hour
from webapp.services.usage.settled import late_days, note_late_writes

ROLLUP = UsageDailyRollup.__table__
HOURLY_ROLLUP = UsageHourlyRollup.__table__
OUTCOMES = UsageHourlyOutcomes.__table__
OUTCOME_KEY_COLUMNS = ("hour", "kind", "key_id", "environment", "shard")
OUTCOME_SUM_COLUMNS = ("successes", "finished")
# Statuses of finished requests (pending ones have no outcome yet).
FINISHED = ("success", "error", "timeout")
# The key after the period column, the same in both rollups.
GROUP_COLUMNS = ("feature_id", "model_id", "provider_id", "status", "environment", "shard")
KEY_COLUMNS = ("day", *GROUP_COLUMNS)
SUM_COLUMNS = (
    "request_count",
    "input_tokens",
    "output_tokens",
    "tokens_used",
    "cost_usd",
    "response_time_ms_sum",
    *BUCKET_COLUMNS,
)


@dataclass(frozen=True)
class RollupPeriod:
    """One rollup: its table, its period column, and the period of a timestamp in Python
    (``of``) and in SQL (``sql``); both give the same value for the same timestamp."""

    table: Table
    column: str
    of: Callable[[datetime], Any]
    sql: Callable[[Any], Any]

    @property
    def key_columns(self) -> tuple[str, ...]:
        return (self.column, *GROUP_COLUMNS)

    def since(self, day: date) -> Any:
        """The period value where ``day`` begins."""
        if self.column == "day":
            return day
        return datetime.combine(day, time.min, tzinfo=UTC)


# created_at is UTC (UTCDateTime), so .date() is the UTC day.
DAILY = RollupPeriod(ROLLUP, "day", lambda created_at: created_at.date(), utc_day)
HOURLY = RollupPeriod(HOURLY_ROLLUP, "hour", floor_hour, utc_hour_start)
PERIODS = (DAILY, HOURLY)


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
    production) to both rollups, or take them out with ``sign=-1``. ``provider_of`` maps
    each model id to its provider id. ``removed`` rows are taken out in the same upsert
    (a row's old figures when it changes): one statement per rollup locks its rows in one
    order, where two calls could deadlock with another writer of the shard."""
    if shard is None:
        shard = pick_shard()
    signed = [(row, sign) for row in rows] + [(row, -sign) for row in removed]
    if not signed:
        return
    dialect_name = db.session.get_bind().dialect.name
    for period in PERIODS:
        sums: dict[tuple, dict[str, Any]] = {}
        for row, row_sign in signed:
            model_id = row.get("model_id")
            key = (
                period.of(row["created_at"]),
                row.get("feature_id") or NO_REFERENCE,
                model_id or NO_REFERENCE,
                (provider_of.get(model_id) if model_id else None) or NO_REFERENCE,
                row["status"],
                row.get("environment") or "production",
                shard,
            )
            entry = sums.get(key)
            if entry is None:
                entry = sums[key] = dict.fromkeys(SUM_COLUMNS, 0)
                entry["cost_usd"] = Decimal(0)
            entry["request_count"] += row_sign
            entry["input_tokens"] += row_sign * row["input_tokens"]
            entry["output_tokens"] += row_sign * row["output_tokens"]
            entry["tokens_used"] += row_sign * row["tokens_used"]
            entry["cost_usd"] += row_sign * row["cost_usd"]
            entry["response_time_ms_sum"] += row_sign * row["response_time_ms"]
            entry[BUCKET_COLUMNS[latency_bucket(row["response_time_ms"])]] += row_sign
        columns = period.key_columns
        values = [dict(zip(columns, key, strict=True)) | entry for key, entry in sums.items()]
        # Sorted keys: concurrent batches lock rollup rows in one order (no deadlock).
        db.session.execute(
            _rollup_upsert(dialect_name, period),
            sorted(values, key=lambda v: tuple(map(str, v.values()))),
        )
    _add_outcomes(signed, provider_of, shard, dialect_name)
    # Last, after every rollup row lock: rows of an hour that has ended are a late write.
    note_late_writes(late_days(row["created_at"] for row, _ in signed), shard)


def _add_outcomes(
    signed: list[tuple[Mapping[str, Any], int]],
    provider_of: Mapping[uuid.UUID, uuid.UUID],
    shard: int,
    dialect_name: str,
) -> None:
    """The hourly outcomes part of ``add_to_rollup``: one upsert, after the rollups'."""
    sums: dict[tuple, list[int]] = {}
    for row, row_sign in signed:
        status = row["status"]
        if status not in FINISHED:
            continue
        model_id = row.get("model_id")
        ids = (
            row.get("feature_id"),
            model_id,
            provider_of.get(model_id) if model_id else None,
        )
        hour = floor_hour(row["created_at"])
        environment = row.get("environment") or "production"
        for kind, key_id in zip(OUTCOME_KINDS, ids, strict=True):
            if key_id is None or key_id == NO_REFERENCE:
                continue  # no row of this kind for usage without that reference
            entry = sums.setdefault((hour, kind, key_id, environment, shard), [0, 0])
            entry[0] += row_sign if status == "success" else 0
            entry[1] += row_sign
    values = [
        dict(zip(OUTCOME_KEY_COLUMNS, key, strict=True))
        | {"successes": successes, "finished": finished}
        for key, (successes, finished) in sums.items()
        if successes or finished  # a row moved within its key (pending → final) adds nothing
    ]
    if values:
        # Sorted keys, after the rollups: one lock order for every writer.
        db.session.execute(
            _outcomes_upsert(dialect_name),
            sorted(values, key=lambda v: tuple(map(str, v.values()))),
        )


@functools.cache
def _outcomes_upsert(dialect_name: str) -> Any:
    return outcomes_upsert(dialect_name, None)


def outcomes_upsert(dialect_name: str, query: Any) -> Any:
    """INSERT of hourly outcome deltas (VALUES, or ``query`` selecting the key and sum
    columns in ``OUTCOME_KEY_COLUMNS``, ``OUTCOME_SUM_COLUMNS`` order) that adds them to
    the rows already there."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(OUTCOMES)
    if query is not None:
        statement = statement.from_select([*OUTCOME_KEY_COLUMNS, *OUTCOME_SUM_COLUMNS], query)
    return statement.on_conflict_do_update(
        index_elements=list(OUTCOME_KEY_COLUMNS),
        set_={name: OUTCOMES.c[name] + statement.excluded[name] for name in OUTCOME_SUM_COLUMNS},
    )


def outcomes_of_hourly_rollup(*conditions: Any) -> Any:
    """SELECT of hourly outcome rows (shard 0) from the hourly rollup's rows that meet
    ``conditions``: per hour, kind, key and environment its successes and finished
    requests, summed over statuses and shards; keys whose sums are zero are left out."""
    c = HOURLY_ROLLUP.c
    successes = func.sum(case((c.status == "success", c.request_count), else_=0))
    finished = func.sum(c.request_count)
    parts = [
        select(
            c.hour,
            literal(kind, OUTCOMES.c.kind.type),
            c[column],
            c.environment,
            literal(0, OUTCOMES.c.shard.type),
            successes,
            finished,
        )
        .where(c[column] != NO_REFERENCE, c.status.in_(FINISHED), *conditions)
        .group_by(c.hour, c[column], c.environment)
        .having((successes != 0) | (finished != 0))
        for kind, column in OUTCOME_KINDS.items()
    ]
    return union_all(*parts)


@functools.cache
def _rollup_upsert(dialect_name: str, period: RollupPeriod) -> Any:
    """The upsert of rollup deltas, built once per dialect and rollup: building its
    27-column SET clause took longer than running it for a one-event batch."""
    return rollup_upsert(dialect_name, period, None)


def rollup_upsert(dialect_name: str, period: RollupPeriod, query: Any) -> Any:
    """INSERT of rollup deltas (VALUES, or ``query`` selecting the key and sum columns)
    that adds them to the rows already there."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    table = period.table
    statement = dialect.insert(table)
    if query is not None:
        statement = statement.from_select([*period.key_columns, *SUM_COLUMNS], query)
    return statement.on_conflict_do_update(
        index_elements=list(period.key_columns),
        set_={name: table.c[name] + statement.excluded[name] for name in SUM_COLUMNS},
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
    """Recompute both rollups (daily and hourly) from raw rows for every day from ``since``
    (all days when None), as one audited transaction. Returns the number of daily rollup
    rows written."""
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
    """``rebuild_rollup`` in the caller's transaction, without audit or commit: both
    rollups and the hourly outcomes from ``since`` (a UTC day; all when None). Returns
    the daily rollup's rows."""
    # Every day rebuilt is a late write: the days it had, and (below) the days it has,
    # counted last, after every rollup row lock, like add_to_rollup does.
    days = set(db.session.scalars(_rollup_days(since)))
    for period in PERIODS:
        table = period.table
        removal = delete(table)
        if since is not None:
            removal = removal.where(table.c[period.column] >= period.since(since))
        db.session.execute(removal)

        nil = literal(NO_REFERENCE, UsageDailyRollup.feature_id.type)
        moment = period.sql(UsageLog.created_at)
        feature = func.coalesce(UsageLog.feature_id, nil)
        model = func.coalesce(UsageLog.model_id, nil)
        provider = func.coalesce(AIModel.provider_id, nil)
        query = (
            select(
                moment,
                feature,
                model,
                provider,
                UsageLog.status,
                UsageLog.environment,
                literal(0, UsageDailyRollup.shard.type),
                *raw_row_sums(),
            )
            .outerjoin(AIModel, AIModel.id == UsageLog.model_id)
            .group_by(moment, feature, model, provider, UsageLog.status, UsageLog.environment)
        )
        if since is not None:
            query = query.where(
                UsageLog.created_at >= datetime.combine(since, time.min, tzinfo=UTC)
            )
        db.session.execute(insert(table).from_select([*period.key_columns, *SUM_COLUMNS], query))
    # The outcomes from the hourly rollup just recomputed from the raw rows: the same
    # figures as a pass over the raw rows, at the cost of reading the rollup's rows.
    outcomes_removal = delete(OUTCOMES)
    hours: list[Any] = []
    if since is not None:
        outcomes_removal = outcomes_removal.where(OUTCOMES.c.hour >= HOURLY.since(since))
        hours.append(HOURLY_ROLLUP.c.hour >= HOURLY.since(since))
    db.session.execute(outcomes_removal)
    db.session.execute(
        insert(OUTCOMES).from_select(
            [*OUTCOME_KEY_COLUMNS, *OUTCOME_SUM_COLUMNS], outcomes_of_hourly_rollup(*hours)
        )
    )
    note_late_writes(days | set(db.session.scalars(_rollup_days(since))), 0)
    # rowcount of INSERT … SELECT is not reported by every driver: count what is there.
    counted = select(func.count()).select_from(ROLLUP)
    if since is not None:
        counted = counted.where(ROLLUP.c.day >= since)
    return db.session.scalar(counted) or 0


def _rollup_days(since: date | None) -> Any:
    """The days either rollup has rows on, from ``since`` (all when None)."""
    daily = select(ROLLUP.c.day)
    hourly = select(utc_day(HOURLY_ROLLUP.c.hour))
    if since is not None:
        daily = daily.where(ROLLUP.c.day >= since)
        hourly = hourly.where(HOURLY_ROLLUP.c.hour >= HOURLY.since(since))
    return union(daily, hourly)
