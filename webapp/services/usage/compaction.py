"""Folding the rollups' shards of closed periods into shard 0.

Writers spread their rollup deltas over ``ROLLUP_SHARDS`` shards so that they never queue
on each other's row locks (webapp/services/usage/rollup.py). Under live traffic most keys
of an hour or a day end up with a row in most shards: up to 16 rows where one would do,
which every read over a long range sums again. Once a period is closed nobody needs the
shards any more, so ``compact_rollups`` moves them into shard 0: the figures of every key
(the sum over its shards) stay exactly what they were.

A late event (applications may report up to ``USAGE_MAX_AGE_DAYS`` back) can still add a
row in any shard of a closed period; the next run folds it too. On PostgreSQL the move is
one statement per batch — ``DELETE … RETURNING`` feeding ``INSERT … ON CONFLICT DO UPDATE``
— so a concurrent writer's delta is either deleted with its row and re-added in shard 0
(the DELETE re-reads a row it waited for), or lands in a row the DELETE never saw: never
lost. SQLite runs writers one at a time, so there the two statements of a batch are safe.
The hourly outcomes (successes and finished requests per hour and key) are sharded the
same way and folded with the hourly rollup: each day's batch folds the hourly rollup's
rows, then the outcomes' (the writers' lock order), in the same transaction.
Batches are one UTC day of periods each, each its own transaction, so a long history is
compacted without one huge transaction and a run cut short continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import SmallInteger, Table, delete, func, literal, select

from webapp.extensions import db
from webapp.services.core.dates import floor_hour
from webapp.services.usage.rollup import (
    DAILY,
    HOURLY,
    OUTCOME_KEY_COLUMNS,
    OUTCOME_SUM_COLUMNS,
    OUTCOMES,
    SUM_COLUMNS,
    RollupPeriod,
    outcomes_upsert,
    rollup_upsert,
)


@dataclass(frozen=True)
class Compaction:
    daily_rows_folded: int
    hourly_rows_folded: int
    days: int  # batches (UTC days) that had shard rows to fold
    outcome_rows_folded: int = 0  # of the hourly outcomes

    def as_dict(self) -> dict[str, int]:
        return {
            "daily_rows_folded": self.daily_rows_folded,
            "hourly_rows_folded": self.hourly_rows_folded,
            "outcome_rows_folded": self.outcome_rows_folded,
            "days": self.days,
        }


@dataclass(frozen=True)
class _Sharded:
    """A sharded table to fold: its period column, key (with ``shard``), sums, and the
    upsert adding the rows of a query to it (``upsert(dialect name, query)``)."""

    table: Table
    column: str
    key_columns: tuple[str, ...]
    sum_columns: tuple[str, ...]
    upsert: Callable[[str, Any], Any]


def _of_period(period: RollupPeriod) -> _Sharded:
    return _Sharded(
        period.table,
        period.column,
        period.key_columns,
        SUM_COLUMNS,
        lambda dialect_name, query: rollup_upsert(dialect_name, period, query),
    )


OUTCOMES_SHARDED = _Sharded(
    OUTCOMES, "hour", OUTCOME_KEY_COLUMNS, OUTCOME_SUM_COLUMNS, outcomes_upsert
)


def compact_rollups(now: datetime | None = None) -> Compaction:
    """Fold the shards of every closed day (before today, UTC) of the daily rollup and
    of every closed hour (before the current one) of the hourly rollup into shard 0;
    one transaction per UTC day. Figures are unchanged; returns the rows folded."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    folded = {DAILY.column: 0, HOURLY.column: 0}
    outcomes_folded = 0
    days = 0
    batches = (
        (DAILY, (_of_period(DAILY),), now.date()),
        (HOURLY, (_of_period(HOURLY), OUTCOMES_SHARDED), floor_hour(now)),
    )
    for period, tables, before in batches:
        for day in _days_with_shards(tables, before):
            start = period.since(day)
            end = min(period.since(day + timedelta(days=1)), before)
            count = _fold(tables[0], start, end)
            outcomes = sum(_fold(table, start, end) for table in tables[1:])
            db.session.commit()
            folded[period.column] += count
            outcomes_folded += outcomes
            days += 1 if count or outcomes else 0
    return Compaction(folded[DAILY.column], folded[HOURLY.column], days, outcomes_folded)


def _days_with_shards(tables: tuple[_Sharded, ...], before: date | datetime) -> list[date]:
    """The UTC days before ``before`` where one of ``tables`` holds rows outside shard 0,
    oldest first."""
    found: set[date] = set()
    for sharded in tables:
        table = sharded.table
        column = table.c[sharded.column]
        moments = db.session.scalars(
            select(column).where(column < before, table.c.shard != 0).group_by(column)
        ).all()
        found |= {_day_of(moment) for moment in moments}
    return sorted(found)


def _day_of(moment: date | datetime) -> date:
    return moment.astimezone(UTC).date() if isinstance(moment, datetime) else moment


def _fold(sharded: _Sharded, start: date | datetime, end: date | datetime) -> int:
    """Move the rows of shards 1… with their period in [start, end) into shard 0 (added
    to the rows there); returns how many shard rows were folded."""
    table = sharded.table
    column = table.c[sharded.column]
    in_batch = (column >= start) & (column < end) & (table.c.shard != 0)
    key_names = [name for name in sharded.key_columns if name != "shard"]
    sum_names = sharded.sum_columns
    dialect_name = db.session.get_bind().dialect.name
    if dialect_name == "postgresql":
        # One statement: the rows deleted are exactly the rows added (see the docstring).
        moved = (
            delete(table)
            .where(in_batch)
            .returning(*[table.c[name] for name in (*key_names, *sum_names)])
            .cte("moved")
        )
        sums = _summed(moved.c, key_names, sum_names)
        added = sharded.upsert(dialect_name, sums).cte("added")
        return db.session.scalar(select(func.count()).select_from(moved).add_cte(added)) or 0
    folded = db.session.scalar(select(func.count()).select_from(table).where(in_batch)) or 0
    db.session.execute(
        sharded.upsert(dialect_name, _summed(table.c, key_names, sum_names).where(in_batch))
    )
    db.session.execute(delete(table).where(in_batch))
    return folded


def _summed(columns: Any, key_names: list[str], sum_names: tuple[str, ...]) -> Any:
    """SELECT the key (shard 0) and the sums of ``columns`` grouped by the key: the rows
    the upsert adds, in its column order (the shard last of the key, as in every table
    folded here)."""
    keys = [columns[name] for name in key_names]
    return select(
        *keys,
        literal(0, SmallInteger()).label("shard"),
        *[func.sum(columns[name]).label(name) for name in sum_names],
    ).group_by(*keys)
