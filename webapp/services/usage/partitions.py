"""Monthly partitions of ``ai_usage_logs`` (PostgreSQL; SQLite keeps a plain table).

The table is partitioned by range on ``created_at`` (migration 0012_scale): one partition
per UTC month, ``ai_usage_logs_YYYY_MM``, and ``ai_usage_logs_default`` for rows of a month
that has none yet, so an insert is never refused. ``create_partitions`` makes the missing
months (``flask usage partitions``, run from cron, makes this month and the next
``MONTHS_AHEAD``); rows of a new month already waiting in the default partition move into
it in the same transaction. Indexes are declared on the parent, so every partition gets
its own copy. Partitions carry row-level security enabled without policies: only their
owner (these maintenance commands) reads them directly; the application role has no
grant on them and reads through the parent, whose policies apply.

DDL needs the schema owner: callers pass a connection of ``migrations_engine()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection

TABLE = "ai_usage_logs"
DEFAULT_PARTITION = f"{TABLE}_default"
MONTHS_AHEAD = 3
_MONTHLY = re.compile(rf"{TABLE}_(\d{{4}})_(\d{{2}})")


def is_partition_name(name: str) -> bool:
    """A partition of ai_usage_logs (not a model's table: schema comparisons skip it)."""
    return name == DEFAULT_PARTITION or _MONTHLY.fullmatch(name) is not None


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months(first: date, last: date) -> Iterator[date]:
    """The first day of every month from ``first``'s to ``last``'s, both included."""
    month = month_of(first)
    while month <= last:
        yield month
        month = next_month(month)


def partition_name(month: date) -> str:
    return f"{TABLE}_{month:%Y_%m}"


def month_start(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Partition:
    name: str
    month: date | None  # None: the default partition
    rows: int | None = None


def is_partitioned(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.scalar(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:table)"), {"table": TABLE}
    )
    return bool(kind == "p")


def list_partitions(connection: Connection) -> list[Partition]:
    """The partitions attached to ai_usage_logs, months in order, the default last."""
    if not is_partitioned(connection):
        return []
    names = connection.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:table)"
        ),
        {"table": TABLE},
    ).all()
    result = []
    for name in names:
        match = _MONTHLY.fullmatch(name)
        month = date(int(match.group(1)), int(match.group(2)), 1) if match else None
        result.append(Partition(name, month))
    return sorted(result, key=lambda p: (p.month is None, p.month or date.min))


def _bounds(month: date) -> str:
    start, end = month_start(month), month_start(next_month(month))
    return f"FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"


def create_partitions(connection: Connection, first: date, last: date) -> list[str]:
    """Create the missing monthly partitions from ``first``'s month to ``last``'s (in the
    caller's transaction); returns the names created. Idempotent."""
    if not is_partitioned(connection):
        return []
    # Moving rows (and attaching checks their foreign keys) reads tables under FORCE ROW
    # LEVEL SECURITY, which binds their owner too: act as the operator.
    connection.execute(text("SELECT set_config('app.user_role', 'platform_admin', true)"))
    existing = {p.name for p in list_partitions(connection)}
    created = []
    for month in months(first, last):
        name = partition_name(month)
        if name in existing:
            continue
        window = {"start": month_start(month), "end": month_start(next_month(month))}
        waiting = DEFAULT_PARTITION in existing and connection.scalar(
            text(
                f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} "
                "WHERE created_at >= :start AND created_at < :end)"
            ),
            window,
        )
        if waiting:
            # A new partition may not overlap rows of the default one: build it beside the
            # table, move the month's rows over, then attach it (one transaction).
            connection.execute(
                text(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            )
            connection.execute(
                text(
                    f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
                    "WHERE created_at >= :start AND created_at < :end RETURNING *) "
                    f"INSERT INTO {name} SELECT * FROM moved"
                ),
                window,
            )
            connection.execute(
                text(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES {_bounds(month)}")
            )
        else:
            connection.execute(
                text(f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES {_bounds(month)}")
            )
        connection.execute(text(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY"))
        created.append(name)
    return created


def create_default_partition(connection: Connection) -> None:
    connection.execute(text(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT"))
    connection.execute(text(f"ALTER TABLE {DEFAULT_PARTITION} ENABLE ROW LEVEL SECURITY"))


def ensure_partitions(
    connection: Connection, today: date, max_age_days: int, months_ahead: int = MONTHS_AHEAD
) -> list[str]:
    """The partitions of every month usage may still be reported for (``max_age_days``
    back: USAGE_MAX_AGE_DAYS) up to ``months_ahead`` months ahead (``flask usage
    partitions``)."""
    last = month_of(today)
    for _ in range(months_ahead):
        last = next_month(last)
    return create_partitions(connection, today - timedelta(days=max_age_days), last)
