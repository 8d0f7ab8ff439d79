"""Usage rollups: rows per (period, feature, model, provider, status, environment) where
the period is a UTC day (``ai_usage_daily_rollup``) or a UTC hour (``ai_usage_hourly_rollup``,
for windows that are not whole days: the last 24 hours, 1 hour, provider-health windows),
split over ``ROLLUP_SHARDS`` shards so writers do not serialize (a key's figures are the
sum of its shards; a pending row completed later moves between keys with a negative and a
positive delta, in any shard).

Derived data, rebuildable from ``ai_usage_logs`` (`flask rollup rebuild`). Both are updated
in the same transaction as the raw rows they summarise (one function writes both), so sums
over whole days or hours read a few hundred rows instead of millions.

The key columns hold ``NO_REFERENCE`` (the nil UUID) where a usage row has no feature or
model: key columns must be NOT NULL for the upsert's conflict target to match on both
databases (NULLs never conflict). They carry no foreign keys: a row keeps the id it was
recorded with, and readers treat ids that no longer exist like "none".

``ai_usage_hourly_outcomes`` is a narrow companion of the hourly rollup for whole-day
uptime: per (hour, kind, key, environment, shard) only the successes and the finished
requests, where ``kind`` says which column the key is (a feature, a model or a provider).
Uptime over 30 days needs nothing else, and reading these rows is a fraction of reading
the wide rollup rows (21 latency buckets, one row per status and key combination). A usage
row without a feature (model, provider) has no row of that kind: there is no NO_REFERENCE
key here. Written by the same functions, in the same transaction and shard, as the rollups.

``ai_usage_rollup_revisions`` counts, per (day, shard), the transactions that wrote the
rollups for an hour that had already ended (a late write: a delayed report, a pending
request completed in a later hour, a rebuild, rows attached to a new model). Sums over
periods no late write can still reach are remembered per process and filed under these
counts (webapp/services/usage/settled.py).

Latency is kept as a histogram over fixed buckets (``LATENCY_BOUNDS_MS``); a percentile
read from it is exact to the bucket and interpolated linearly inside it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Model, check_in
from webapp.models.types import ExactNumeric, UTCDateTime

NO_REFERENCE = uuid.UUID(int=0)

# Upper bounds (exclusive) of the latency buckets, in ms; the last bucket is open-ended.
LATENCY_BOUNDS_MS = (
    50, 100, 150, 200, 300, 400, 500, 750, 1000, 1500,
    2000, 3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000, 60000,
)  # fmt: skip
LATENCY_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
BUCKET_COLUMNS = tuple(f"latency_bucket_{i:02d}" for i in range(LATENCY_BUCKETS))

ROLLUP_COST = ExactNumeric(18, 6)
ROLLUP_SHARDS = 16


def latency_bucket(response_time_ms: int) -> int:
    """Index of the bucket a latency falls in."""
    for index, bound in enumerate(LATENCY_BOUNDS_MS):
        if response_time_ms < bound:
            return index
    return LATENCY_BUCKETS - 1


class latency_bucket_of(sa.sql.functions.FunctionElement):  # noqa: N801 (a SQL function)
    """``latency_bucket`` computed by the database: the bucket index of a latency column."""

    type = sa.Integer()
    inherit_cache = True


@compiles(latency_bucket_of, "postgresql")
def _latency_bucket_postgresql(element: latency_bucket_of, compiler: Any, **kw: Any) -> str:
    # width_bucket(x, thresholds) counts the thresholds <= x: the index the CASE below
    # gives, found by one binary search instead of up to 20 comparisons per row (the
    # provider-health read of 13,500 raw rows in psql: 13.4 -> 9.9 ms). The bounds are constants
    # of this module, written inline so the expression's text is the same in SELECT and
    # GROUP BY.
    column = compiler.process(element.clauses, **kw)
    bounds = ", ".join(str(bound) for bound in LATENCY_BOUNDS_MS)
    return f"width_bucket({column}, ARRAY[{bounds}])"


@compiles(latency_bucket_of)
def _latency_bucket_default(element: latency_bucket_of, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    whens = " ".join(
        f"WHEN {column} < {bound} THEN {index}" for index, bound in enumerate(LATENCY_BOUNDS_MS)
    )
    return f"CASE {whens} ELSE {len(LATENCY_BOUNDS_MS)} END"


def _count_column() -> Mapped[int]:
    return mapped_column(sa.BigInteger, nullable=False, default=0, server_default="0")


class _RollupColumns:
    """The key (after the period) and sum columns both rollups share."""

    feature_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    model_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    environment: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    # Writers add to one of ROLLUP_SHARDS rows per key, picked per transaction, so
    # concurrent writers of today's keys do not queue on one row lock; readers sum shards.
    shard: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    request_count: Mapped[int] = _count_column()
    input_tokens: Mapped[int] = _count_column()
    output_tokens: Mapped[int] = _count_column()
    tokens_used: Mapped[int] = _count_column()
    cost_usd: Mapped[Decimal] = mapped_column(
        ROLLUP_COST, nullable=False, default=Decimal(0), server_default="0"
    )
    response_time_ms_sum: Mapped[int] = _count_column()


class UsageDailyRollup(_RollupColumns, Model):
    __tablename__ = "ai_usage_daily_rollup"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True, sort_order=-1)


class UsageHourlyRollup(_RollupColumns, Model):
    __tablename__ = "ai_usage_hourly_rollup"

    # The start of the UTC hour (minutes, seconds and microseconds zero).
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True, sort_order=-1)


# The key columns the outcomes' ``key_id`` may stand for, by ``kind``.
OUTCOME_KINDS = {"feature": "feature_id", "model": "model_id", "provider": "provider_id"}


class UsageHourlyOutcomes(Model):
    __tablename__ = "ai_usage_hourly_outcomes"
    __table_args__ = (sa.CheckConstraint(check_in("kind", tuple(OUTCOME_KINDS)), name="kind"),)

    # Key in this order (the hour first): a range of hours is one range of the index.
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    environment: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    shard: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    successes: Mapped[int] = _count_column()  # status success
    finished: Mapped[int] = _count_column()  # status success, error or timeout


class UsageRollupRevision(Model):
    __tablename__ = "ai_usage_rollup_revisions"

    # A UTC day whose rollup rows a late write changed, and the writer's shard: writers in
    # different shards never wait for each other's row lock here either.
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    shard: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    # How many late-writing transactions committed for (day, shard): it only grows.
    revision: Mapped[int] = _count_column()


# One integer column per latency bucket, added to the mapped tables after the class body
# (21 near-identical attributes spelled out would hide the shape).
for _rollup in (UsageDailyRollup, UsageHourlyRollup):
    for _name in BUCKET_COLUMNS:
        _rollup.__table__.append_column(
            sa.Column(_name, sa.BigInteger, nullable=False, default=0, server_default="0")
        )
