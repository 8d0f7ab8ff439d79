"""Rollup sums of settled periods, remembered per process.

The rollup rows of an hour that has ended change only through a *late write*: a report
that arrives after its hour, a pending request completed in a later hour, attaching rows
to a new model, a rebuild. Every writer of the rollups counts its late writes in
``ai_usage_rollup_revisions`` (``note_late_writes``: per day and the writer's shard, one
more for each transaction, in that transaction). Compacting shards changes no sum and
counts nothing.

A read of a rollup over a *settled* span (one that ended at least ``SETTLE_MARGIN``
before the current hour began) first reads the sum of those counts over the span's days,
then the sums, and files them under that revision. The order matters under READ
COMMITTED: sums read after the revision are never older than it (at worst newer, which
only costs a later reload), and any late write committed later makes the revision
larger. The next read with the same revision answers from memory, without touching the
rollup; the last 30 days of the overview read in a millisecond what took ~30 ms.

Why the margin: a writer decides whether its rows are late by its own clock when it
writes, a reader whether a span is settled by its clock when it reads. A write to the
current hour counts nothing; before a reader treats that hour as settled, the hour and
the margin must both have passed, so only a transaction open for more than an hour
(or clocks further apart than that) could commit rows a remembered sum misses.

Memory: each worker process keeps at most ``USAGE_SETTLED_CACHE_GROUPS`` groups (0: none),
dropping the least recently used reads first. Nothing here is shared across processes:
each worker fills its own on first use.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from webapp.extensions import db
from webapp.models import UsageRollupRevision
from webapp.services.core.dates import floor_hour

SETTLE_MARGIN = timedelta(hours=1)
CACHE_KEY = "aipm.settled_sums"
COUNTED_LATE_WRITES = "aipm.counted_late_writes"
DEFAULT_MAX_GROUPS = 200_000
REVISIONS = UsageRollupRevision.__table__

# What a cached read answers: per grouping set, {group key: sums} (reads.UsageSums).
Found = list[dict[Any, Any]]
DaySpan = tuple[date, date]  # both inclusive
HourSpan = tuple[datetime, datetime]  # [since, until), whole hours


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def settled_before(now: datetime | None = None) -> datetime:
    """Periods that ended at or before this moment are settled."""
    return floor_hour(_utc(now or datetime.now(UTC))) - SETTLE_MARGIN


def split_days(
    start: date, end: date, now: datetime | None = None
) -> tuple[DaySpan | None, DaySpan | None]:
    """Days ``start`` … ``end`` as (the settled ones, the others); either may be None."""
    last_settled = settled_before(now).date() - timedelta(days=1)
    settled = (start, min(end, last_settled)) if start <= last_settled else None
    first_open = max(start, last_settled + timedelta(days=1))
    return settled, ((first_open, end) if first_open <= end else None)


def split_hours(
    since: datetime, until: datetime, now: datetime | None = None
) -> tuple[HourSpan | None, HourSpan | None]:
    """Whole hours [since, until) as (the settled ones, the others); either may be None."""
    boundary = settled_before(now)
    settled = (since, min(until, boundary)) if since < boundary else None
    first_open = max(since, boundary)
    return settled, ((first_open, until) if first_open < until else None)


def hour_days(hours: HourSpan) -> DaySpan:
    """The UTC days the whole hours [since, until) fall on."""
    return _utc(hours[0]).date(), (_utc(hours[1]) - timedelta(microseconds=1)).date()


# --- writers ----------------------------------------------------------------------------


def late_days(moments: Iterable[datetime], now: datetime | None = None) -> set[date]:
    """The days of the ``moments`` (usage rows' created_at) whose hour has ended."""
    current_hour = floor_hour(_utc(now or datetime.now(UTC)))
    return {hour.date() for hour in (floor_hour(_utc(m)) for m in moments) if hour < current_hour}


def _upsert() -> Any:
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(REVISIONS)


def note_late_writes(days: Iterable[date], shard: int) -> None:
    """Count one late write on each of ``days`` in ``shard``, in the open transaction.
    Called after the writer's rollup upserts: its row locks come last, in day order."""
    ordered = sorted(set(days))
    if not ordered:
        return
    statement = _upsert()
    statement = statement.on_conflict_do_update(
        index_elements=["day", "shard"], set_={"revision": REVISIONS.c.revision + 1}
    )
    db.session.execute(statement, [{"day": d, "shard": shard, "revision": 1} for d in ordered])
    # This transaction now sees counts no other one does until it commits: its reads
    # bypass the remembered sums (they could hold its rows, and a rollback takes them back).
    db.session.info[COUNTED_LATE_WRITES] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _transaction_ended(session: Session, *_args: Any) -> None:
    session.info.pop(COUNTED_LATE_WRITES, None)


# --- readers ----------------------------------------------------------------------------


def revision_of(days: DaySpan) -> int:
    """The late writes counted so far on ``days``."""
    found = db.session.scalar(
        select(func.coalesce(func.sum(REVISIONS.c.revision), 0)).where(
            REVISIONS.c.day >= days[0], REVISIONS.c.day <= days[1]
        )
    )
    return int(found or 0)


def _copied(found: Found) -> Found:
    return [{key: sums.copy() for key, sums in part.items()} for part in found]


class SettledSums:
    """One process's remembered reads (one per application object), shared by its
    threads, least recently used first out once more than ``max_groups`` groups are held."""

    def __init__(self, max_groups: int) -> None:
        self.max_groups = max_groups
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[Found, int]] = OrderedDict()
        self._groups = 0
        self._generation = 0  # bumped by forget(): a read begun before is not kept

    def read(self, key: tuple, days: DaySpan, compute: Callable[[], Found]) -> Found:
        """``compute()`` (a rollup read over settled ``days``), or what it answered
        before under the same revision. The caller may change what it gets."""
        if self.max_groups <= 0 or db.session.info.get(COUNTED_LATE_WRITES):
            return compute()
        generation = self._generation
        filed = (key, days, revision_of(days))
        with self._lock:
            entry = self._entries.get(filed)
            if entry is not None:
                self._entries.move_to_end(filed)
        if entry is not None:
            return _copied(entry[0])
        found = compute()
        groups = sum(len(part) for part in found)
        if groups <= self.max_groups:
            kept = _copied(found)
            with self._lock:
                if self._generation == generation and filed not in self._entries:
                    self._entries[filed] = (kept, groups)
                    self._groups += groups
                    while self._groups > self.max_groups:
                        _, (_, dropped) = self._entries.popitem(last=False)
                        self._groups -= dropped
        return found

    @property
    def groups(self) -> int:
        return self._groups

    def __len__(self) -> int:
        return len(self._entries)

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._groups = 0


def settled_sums(app: Flask | None = None) -> SettledSums:
    app = app or current_app
    cache = app.extensions.get(CACHE_KEY)
    if cache is None:
        limit = int(app.config.get("USAGE_SETTLED_CACHE_GROUPS", DEFAULT_MAX_GROUPS))
        cache = app.extensions.setdefault(CACHE_KEY, SettledSums(limit))
    return cache
