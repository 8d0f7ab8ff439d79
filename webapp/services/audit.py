"""Writing audit rows. Callers add the row to the session of the change they audit, so
the change and its audit row commit or roll back together."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from webapp.extensions import db
from webapp.models import AuditLog
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
