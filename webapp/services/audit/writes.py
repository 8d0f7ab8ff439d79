"""The two shapes every catalog write takes: insert a row, or change some of its fields —
each with its audit row in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.services.audit.records import add_audit_row, changed_fields
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict

Row = TypeVar("Row")


def insert_row(
    actor: Actor,
    row: Row,
    action: str,
    resource_type: str,
    snapshot: Callable[[Row], dict[str, Any]],
    on_duplicate: Conflict,
) -> Row:
    """Insert and commit ``row`` with an audit row; a unique-constraint race (someone
    inserted the same name since the caller checked) becomes ``on_duplicate``."""
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise on_duplicate from None
    add_audit_row(actor, action, resource_type, row.id, new_values=snapshot(row))  # type: ignore[attr-defined]
    db.session.commit()
    return row


def apply_changes(
    actor: Actor, row: Any, changes: dict[str, Any], action: str, resource_type: str
) -> bool:
    """Set ``changes`` on ``row`` and audit only the fields whose value differs. Does not
    commit (bulk updates commit once). Returns whether anything changed."""
    old_values, new_values = changed_fields({key: getattr(row, key) for key in changes}, changes)
    if not new_values:
        return False
    for key, value in changes.items():
        setattr(row, key, value)
    add_audit_row(actor, action, resource_type, row.id, old_values, new_values)
    return True
