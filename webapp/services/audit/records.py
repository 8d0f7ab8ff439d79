"""Writing audit rows. Callers add the row to the session of the change they audit, so
the change and its audit row commit or roll back together."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import (
    AIModel,
    ApiKey,
    AuditEventWindow,
    AuditLog,
    Budget,
    Experiment,
    Feature,
    Prompt,
    Provider,
    User,
)
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


# The kinds of resource an audit row can name, and how each is named to a reader.
NAMED_RESOURCES: dict[str, tuple[type[Any], Any]] = {
    "feature": (Feature, lambda r: r.display_name),
    "model": (AIModel, lambda r: r.display_name),
    "provider": (Provider, lambda r: r.display_name),
    "prompt": (Prompt, lambda r: f"{r.name} v{r.version}"),
    "budget": (Budget, lambda r: r.name),
    "experiment": (Experiment, lambda r: r.name),
    "user": (User, lambda r: r.email),
    "api_key": (ApiKey, lambda r: r.name),
}
NAME_KEYS = ("display_name", "name", "email")  # what names a resource in its values
MAX_RESOURCE_NAME = 300


def resource_name(
    resource_type: str,
    resource_id: uuid.UUID | None,
    old_values: dict[str, Any] | None,
    new_values: dict[str, Any] | None,
) -> str | None:
    """The resource's name as the audit row keeps it: read from the resource (usually in
    the session already), else from the values the row records (a delete's snapshot)."""
    if resource_id is None or resource_type not in NAMED_RESOURCES:
        return None
    table, name_of = NAMED_RESOURCES[resource_type]
    found = None
    with db.session.no_autoflush:
        resource = db.session.get(table, resource_id)
        if resource is not None and resource not in db.session.deleted:
            found = name_of(resource)
    for values in (new_values or {}, old_values or {}):
        if found:
            break
        named = next((values[key] for key in NAME_KEYS if values.get(key)), None)
        if isinstance(named, str):
            found = named
            if resource_type == "prompt" and values.get("version") is not None:
                found = f"{named} v{values['version']}"
    return str(found)[:MAX_RESOURCE_NAME] if found else None


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
        resource_name=resource_name(resource_type, resource_id, old_values, new_values),
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
