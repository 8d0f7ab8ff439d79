"""Server-side session records: starting, finding, refreshing and ending sessions.

The session cookie (signed by Flask) carries the user id, their session version and a
random token; the row stores only the token's SHA-256. Ending a session deletes its row,
so the cookie — and every copy of it — stops working on its next request."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select

from webapp.extensions import db
from webapp.models import User, UserSession
from webapp.services.audit.records import add_audit_row
from webapp.services.core.actor import Actor
from webapp.services.core.errors import NotFound

# A request refreshes "last seen" at most this often (one write a minute, not per request).
TOUCH_INTERVAL = timedelta(seconds=60)
USER_AGENT_LENGTH = 500


@dataclass(frozen=True)
class SessionLimits:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class SessionTimes:
    started_at: datetime
    authenticated_at: datetime

    @classmethod
    def of(cls, record: UserSession) -> SessionTimes:
        return cls(record.started_at, record.authenticated_at)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    user: User,
    at: datetime,
    ip_address: str | None,
    user_agent: str | None,
    *,
    continues: SessionTimes | None = None,
) -> tuple[UserSession, str]:
    """A new session for ``user`` (just signed in); the token goes into the cookie.

    ``continues``: the times of the session this one replaces under a new token (after a
    password change). Its start (the absolute lifetime) and its last authentication carry
    over: a password form is no second factor, so it must not count as re-authentication.
    """
    token = secrets.token_urlsafe(32)
    record = UserSession(
        user_id=user.id,
        token_hash=hash_token(token),
        started_at=continues.started_at if continues else at,
        last_seen_at=at,
        authenticated_at=continues.authenticated_at if continues else at,
        ip_address=ip_address,
        user_agent=(user_agent or "")[:USER_AGENT_LENGTH] or None,
    )
    db.session.add(record)
    db.session.commit()
    return record, token


def find_session(user_id: uuid.UUID, token: str) -> UserSession | None:
    if not token:
        return None
    return db.session.scalar(
        select(UserSession).where(
            UserSession.user_id == user_id, UserSession.token_hash == hash_token(token)
        )
    )


def is_expired(record: UserSession, at: datetime, limits: SessionLimits) -> bool:
    return at - record.last_seen_at > limits.idle or at - record.started_at > limits.absolute


def touch(
    record: UserSession, at: datetime, ip_address: str | None, user_agent: str | None
) -> None:
    """The user did something: refresh "last seen" (and the address it came from)."""
    agent = (user_agent or "")[:USER_AGENT_LENGTH] or None
    if (
        at - record.last_seen_at < TOUCH_INTERVAL
        and record.ip_address == ip_address
        and record.user_agent == agent
    ):
        return
    record.last_seen_at = at
    record.ip_address = ip_address
    record.user_agent = agent
    db.session.commit()


def mark_authenticated(actor: Actor, record: UserSession, at: datetime) -> None:
    """The user proved again who they are (password, and second factor when enrolled)."""
    record.authenticated_at = at
    add_audit_row(actor, "auth.reauthenticate", "session", record.user_id)
    db.session.commit()


def end_expired(record: UserSession) -> None:
    db.session.delete(record)
    db.session.commit()


def active_sessions(user_id: uuid.UUID, at: datetime, limits: SessionLimits) -> list[UserSession]:
    """The user's sessions that have not timed out, most recently used first."""
    rows = db.session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user_id)
        .order_by(UserSession.last_seen_at.desc(), UserSession.started_at.desc())
    )
    return [row for row in rows if not is_expired(row, at, limits)]


def delete_sessions_of(user_id: uuid.UUID, keep: uuid.UUID | None = None) -> int:
    """Part of a caller's transaction (sign-out everywhere, password change, deactivation)."""
    statement = delete(UserSession).where(UserSession.user_id == user_id)
    if keep is not None:
        statement = statement.where(UserSession.id != keep)
    # A DELETE without RETURNING answers a CursorResult (Session.execute is typed Result).
    return cast("CursorResult[Any]", db.session.execute(statement)).rowcount or 0


def end_session(actor: Actor, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """End one of the user's own sessions (another device, or this one)."""
    record = db.session.get(UserSession, session_id)
    if record is None or record.user_id != user_id:
        raise NotFound("this session does not exist or has already ended")
    db.session.delete(record)
    add_audit_row(actor, "session.end", "session", user_id, new_values={"session": str(session_id)})
    db.session.commit()


def end_other_sessions(actor: Actor, user_id: uuid.UUID, keep: uuid.UUID) -> int:
    ended = delete_sessions_of(user_id, keep=keep)
    add_audit_row(actor, "session.end_others", "session", user_id, new_values={"ended": ended})
    db.session.commit()
    return ended


def end_sessions_of_user(actor: Actor, user_id: uuid.UUID) -> int:
    """A platform admin ends every session of a user (the user may sign in again)."""
    if db.session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} does not exist")
    ended = delete_sessions_of(user_id)
    add_audit_row(actor, "user.end_sessions", "user", user_id, new_values={"ended": ended})
    db.session.commit()
    return ended
