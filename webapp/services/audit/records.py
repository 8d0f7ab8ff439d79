"""Writing audit rows. Callers add the row to the session of the change they audit, so
the change and its audit row commit or roll back together."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import AuditEventWindow, AuditLog
from webapp.models.types import utcnow
from webapp.services.core.actor import Actor
from webapp.services.core.addresses import client_key
from webapp.services.core.serialization import to_jsonable


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
        row = add_audit_row(actor, action, resource_type, new_values=new_values)
        row.created_at = moment  # in the counter's window, even at its very end
    return count


def repeated_event_subject(action: str, event: AuditLog) -> str | None:
    """The counter subject of an audit row written by add_repeated_event, or None."""
    if action in ("auth.login_throttled", "auth.login_failed"):
        return f"address:{client_key(event.ip_address)}"
    if action == "auth.forbidden":
        return f"user:{event.user_id}"
    return None


def repeated_event_counts(events: list[AuditLog], window: timedelta) -> dict[uuid.UUID, int]:
    """How many events each audit row written by add_repeated_event stands for."""
    keys = {}
    for event in events:
        subject = repeated_event_subject(event.action, event)
        if subject is not None:
            keys[(event.action, subject[:100], window_start(event.created_at, window))] = event.id
    if not keys:
        return {}
    rows = db.session.execute(
        select(
            AuditEventWindow.action,
            AuditEventWindow.subject,
            AuditEventWindow.window_start,
            AuditEventWindow.event_count,
        ).where(
            or_(
                *(
                    and_(
                        AuditEventWindow.action == action,
                        AuditEventWindow.subject == subject,
                        AuditEventWindow.window_start == start,
                    )
                    for action, subject, start in keys
                )
            )
        )
    ).all()
    counts = {}
    for action, subject, start, count in rows:
        event_id = keys.get((action, subject, start))
        if event_id is not None:
            counts[event_id] = count
    return counts
