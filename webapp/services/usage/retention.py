"""Retention of raw usage rows and of their request/response bodies.

``purge_usage`` removes raw rows created before a day: on PostgreSQL whole months go by
detaching and dropping their partition (no row-by-row delete, no bloat), and the rows of
a partially covered month (and of the default partition) are deleted in batches. Bodies
(``request_data``/``response_data``) older than their own, shorter horizon are emptied in
batches. The rollups (and the hourly outcomes) are left alone, so spending history,
budgets and uptime keep their figures.

Every step commits on its own (a purge of months of rows must not hold one transaction
for minutes), so a purge cut short simply continues when run again; the audit row with
the counts is written in the last transaction. The engine is the schema owner's
(``migrations_engine()``): detaching a partition is DDL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, insert, literal, or_, select, text, tuple_, update
from sqlalchemy.engine import Connection, Engine

from webapp.extensions import db
from webapp.models import AuditLog, UsageLog
from webapp.services.core.actor import Actor
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.serialization import to_jsonable
from webapp.services.usage import partitions

PURGE_BATCH = 10_000
AUDIT_ACTION = "usage.purge"


@dataclass
class PurgeReport:
    before: date | None
    content_before: date | None
    dropped_partitions: list[str] = field(default_factory=list)
    rows_dropped: int = 0  # with their partitions
    rows_deleted: int = 0  # in batches
    bodies_cleared: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.isoformat() if self.before else None,
            "content_before": self.content_before.isoformat() if self.content_before else None,
            "dropped_partitions": self.dropped_partitions,
            "rows_dropped": self.rows_dropped,
            "rows_deleted": self.rows_deleted,
            "bodies_cleared": self.bodies_cleared,
        }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def checked_purge_days(
    before: date | None, content_before: date | None, today: date, max_age_days: int
) -> None:
    """Raw rows stay while applications may still complete them (USAGE_MAX_AGE_DAYS)."""
    errors = {}
    newest_allowed = today - timedelta(days=max_age_days)
    if before is not None and before > newest_allowed:
        errors["before"] = (
            f"must be {newest_allowed.isoformat()} or earlier: events of the last "
            f"{max_age_days} days (USAGE_MAX_AGE_DAYS) may still be reported or completed"
        )
    if content_before is not None and content_before > today:
        errors["content_before"] = "must not be in the future"
    if errors:
        raise ValidationFailed(errors)


def _as_operator(connection: Connection) -> None:
    # ai_usage_logs has FORCE ROW LEVEL SECURITY: its owner too reads through the policies.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT set_config('app.user_role', 'platform_admin', true)"))


def _drop_whole_months(engine: Engine, before: date, report: PurgeReport) -> None:
    with engine.connect() as connection:
        months = [
            p
            for p in partitions.list_partitions(connection)
            if p.month is not None and partitions.next_month(p.month) <= before
        ]
    for partition in months:
        with engine.begin() as connection:
            rows = int(connection.scalar(text(f"SELECT count(*) FROM {partition.name}")) or 0)
            connection.execute(
                text(f"ALTER TABLE {partitions.TABLE} DETACH PARTITION {partition.name}")
            )
            connection.execute(text(f"DROP TABLE {partition.name}"))
        report.dropped_partitions.append(partition.name)
        report.rows_dropped += rows


def _delete_in_batches(engine: Engine, before: date, batch: int, report: PurgeReport) -> None:
    victims = (
        select(UsageLog.id, UsageLog.created_at)
        .where(UsageLog.created_at < _midnight(before))
        .order_by(UsageLog.created_at)
        .limit(batch)
    )
    statement = delete(UsageLog).where(tuple_(UsageLog.id, UsageLog.created_at).in_(victims))
    while True:
        with engine.begin() as connection:
            _as_operator(connection)
            deleted = int(connection.execute(statement).rowcount or 0)
        report.rows_deleted += deleted
        if deleted < batch:
            return


def _key(stamp: datetime, row_id: uuid.UUID) -> Any:
    return tuple_(literal(stamp, UsageLog.created_at.type), literal(row_id, UsageLog.id.type))


def _clear_bodies(
    engine: Engine, since: date | None, before: date, batch: int, report: PurgeReport
) -> None:
    # Walks (created_at, id) upwards from ``since``, so rows already emptied are not read
    # again, neither within this run nor (through ``since``) in the next day's.
    key = tuple_(UsageLog.created_at, UsageLog.id)
    bound = _midnight(before)
    start = _midnight(since) if since else None
    empty = literal({}, UsageLog.request_data.type)
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        with engine.begin() as connection:
            _as_operator(connection)
            query = select(UsageLog.created_at, UsageLog.id).where(UsageLog.created_at < bound)
            if start is not None:
                query = query.where(UsageLog.created_at >= start)
            if after is not None:
                query = query.where(key > _key(*after))
            keys = connection.execute(
                query.order_by(UsageLog.created_at, UsageLog.id).limit(batch)
            ).all()
            if not keys:
                return
            first, last = keys[0], keys[-1]
            result = connection.execute(
                update(UsageLog)
                .where(
                    key >= _key(first.created_at, first.id),
                    key <= _key(last.created_at, last.id),
                    or_(UsageLog.request_data != empty, UsageLog.response_data != empty),
                )
                .values(request_data={}, response_data={})
            )
            report.bodies_cleared += int(result.rowcount or 0)
            after = (last.created_at, last.id)
        if len(keys) < batch:
            return


def purge_usage(
    engine: Engine,
    actor: Actor,
    before: date | None,
    content_before: date | None,
    today: date,
    max_age_days: int,
    batch: int = PURGE_BATCH,
) -> PurgeReport:
    """Remove raw usage rows created before ``before`` and empty the bodies of rows
    created before ``content_before`` (either may be None: that part is skipped)."""
    checked_purge_days(before, content_before, today, max_age_days)
    report = PurgeReport(before, content_before)
    if before is not None:
        _drop_whole_months(engine, before, report)
        _delete_in_batches(engine, before, batch, report)
    if content_before is not None:
        # Bodies before the last run's horizon are empty already, except those of events
        # that arrived late: applications may report up to USAGE_MAX_AGE_DAYS back.
        previous = _latest_audited("content_before", engine)
        since = previous - timedelta(days=max_age_days) if previous else None
        _clear_bodies(engine, since, content_before, batch, report)
    with engine.begin() as connection:
        _as_operator(connection)
        connection.execute(
            insert(AuditLog.__table__).values(
                id=uuid.uuid4(),
                user_id=actor.user_id,
                action=AUDIT_ACTION,
                resource_type="ai_usage_logs",
                old_values={},
                new_values=to_jsonable(report.as_dict()),
                ip_address=actor.ip_address,
                user_agent=(actor.user_agent or "")[:1000] or None,
            )
        )
    return report


def purged_before() -> date | None:
    """The latest day before which raw usage rows were purged (None: never): the rollup
    cannot be rebuilt for earlier days without losing them."""
    return _latest_audited("before")


def _latest_audited(name: str, engine: Engine | None = None) -> date | None:
    query = select(AuditLog.new_values).where(AuditLog.action == AUDIT_ACTION)
    if engine is None:
        values = db.session.scalars(query).all()
    else:
        with engine.connect() as connection:
            _as_operator(connection)
            values = connection.scalars(query).all()
            connection.rollback()
    days = [date.fromisoformat(v[name]) for v in values if isinstance(v, dict) and v.get(name)]
    return max(days, default=None)
