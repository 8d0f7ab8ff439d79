"""PostgreSQL row-level security: which role (and user) the database sees for this
transaction.

Policies (migrations 0002 and 0003) read ``current_setting('app.user_role', true)`` and
``current_setting('app.user_id', true)``. Both are made with ``set_config(..., true)`` —
local to the transaction — at the start of every transaction, so they never leak to the
next user of a pooled connection. On SQLite this is a no-op: the application's own checks
are the control there.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, SessionTransaction

from webapp.extensions import db

ANONYMOUS = "anonymous"  # may append audit rows; may update only the user signing in
OPERATOR = "platform_admin"  # flask commands run by whoever holds the database credentials
APPLICATION = "application"  # requests authenticated by an API key (/api/v1/)

_identity: ContextVar[tuple[str, str]] = ContextVar("database_identity", default=("", ""))
_SET_IDENTITY = (
    "SELECT set_config('app.user_role', :role, true), set_config('app.user_id', :user_id, true)"
)


def current_database_role() -> str:
    return _identity.get()[0]


def reset_database_role() -> None:
    """Forget the identity (end of a request: threads serve many requests)."""
    _identity.set(("", ""))


def use_database_role(role: str, user_id: uuid.UUID | None = None) -> None:
    """Use ``role`` (and ``user_id``) from now on, including in the open transaction."""
    identity = (role, str(user_id) if user_id else "")
    _identity.set(identity)
    session = db.session()
    if session.in_transaction() and session.get_bind().dialect.name == "postgresql":
        session.execute(text(_SET_IDENTITY), {"role": identity[0], "user_id": identity[1]})


@event.listens_for(Session, "after_begin")
def _set_identity_for_transaction(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    if connection.dialect.name == "postgresql":
        role, user_id = _identity.get()
        connection.execute(text(_SET_IDENTITY), {"role": role, "user_id": user_id})
