"""PostgreSQL row-level security: which role the database sees for this transaction.

Policies (migration 0002) read ``current_setting('app.user_role', true)``. The setting is
made with ``set_config(..., true)`` — local to the transaction — at the start of every
transaction, so it can never leak to the next user of a pooled connection. On SQLite this
is a no-op: the application's own checks are the control there.
"""

from __future__ import annotations

from contextvars import ContextVar

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, SessionTransaction

from webapp.extensions import db

ANONYMOUS = "anonymous"  # may only append audit rows (failed sign-ins)
OPERATOR = "platform_admin"  # flask commands run by whoever holds the database credentials

_database_role: ContextVar[str] = ContextVar("database_role", default="")
_SET_ROLE = "SELECT set_config('app.user_role', :role, true)"


def current_database_role() -> str:
    return _database_role.get()


def reset_database_role() -> None:
    """Forget the role (end of a request: threads serve many requests)."""
    _database_role.set("")


def use_database_role(role: str) -> None:
    """Use ``role`` from now on, including in the transaction already open, if any."""
    _database_role.set(role)
    session = db.session()
    if session.in_transaction() and session.get_bind().dialect.name == "postgresql":
        session.execute(text(_SET_ROLE), {"role": role})


@event.listens_for(Session, "after_begin")
def _set_role_for_transaction(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(_SET_ROLE), {"role": _database_role.get()})
