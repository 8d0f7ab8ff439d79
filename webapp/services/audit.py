"""Writing audit rows. Callers add the row to the session of the change they audit, so
the change and its audit row commit or roll back together."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import AuditEventWindow, AuditLog
from webapp.models.types import utcnow
from webapp.serialize import to_jsonable


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where: passed explicitly from the view or CLI to each service."""

    user_id: uuid.UUID | None
    ip_address: str | None = None
    user_agent: str | None = None

    @classmethod
    def cli(cls) -> Actor:
        return cls(user_id=None, ip_address=None, user_agent="flask-cli")


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict, dict]:
    """Only the fields whose value differs, as (old_values, new_values)."""
    keys = [key for key in new if old.get(key) != new[key]]
    return (
        {key: to_jsonable(old.get(key)) for key in keys},
        {key: to_jsonable(new[key]) for key in keys},
    )


def add_audit_row(
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | None = None,
    old_values: dict[str, Any] | None = None,
    new_values: dict[str, Any] | None = None,
) -> AuditLog:
    row = AuditLog(
        user_id=actor.user_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        old_values=to_jsonable(old_values or {}),
        new_values=to_jsonable(new_values or {}),
        ip_address=actor.ip_address,
        user_agent=(actor.user_agent or "")[:1000] or None,
    )
    db.session.add(row)
    return row


def window_start(moment: datetime, window: timedelta) -> datetime:
    """The start of the fixed window (aligned to the Unix epoch) ``moment`` falls in."""
    seconds = max(1, int(window.total_seconds()))
    return datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, UTC)


def add_repeated_event(
    actor: Actor,
    action: str,
    resource_type: str,
    subject: str,
    window: timedelta,
    new_values: dict[str, Any] | None = None,
) -> int:
    """Record an event that may repeat in floods: one audit row per (action, subject,
    window), written by the window's first event, and a counter (``audit_event_windows``)
    every event increments. The audit log stays append-only; the increment is one atomic
    upsert, so parallel events count exactly and exactly one of them writes the row.
    Returns the count so far in this window."""
    moment = utcnow()
    start = window_start(moment, window)
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(AuditEventWindow).values(
        action=action, subject=subject[:100], window_start=start, event_count=1, last_seen_at=moment
    )
    statement = statement.on_conflict_do_update(
        index_elements=["action", "subject", "window_start"],
        set_={
            "event_count": AuditEventWindow.event_count + 1,
            "last_seen_at": statement.excluded.last_seen_at,
        },
    ).returning(AuditEventWindow.event_count)
    count = db.session.scalar(statement) or 0
    if count == 1:
        add_audit_row(actor, action, resource_type, new_values=new_values)
    return count
