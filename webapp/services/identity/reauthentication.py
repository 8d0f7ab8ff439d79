"""A signed-in user proves again who they are before a sensitive action."""

from __future__ import annotations

from datetime import datetime

from webapp.extensions import db
from webapp.models import User, UserSession
from webapp.services.audit.records import add_audit_row
from webapp.services.core.actor import Actor
from webapp.services.core.errors import ValidationFailed
from webapp.services.identity import mfa, passwords, sessions


def confirm_identity(
    actor: Actor,
    user: User,
    record: UserSession,
    password: str,
    code: str | None,
    at: datetime,
) -> None:
    """Password, and the second factor when enrolled; on success the session counts as
    freshly authenticated. Each failure is audited (someone may hold a stolen session)."""
    if not passwords.verify_password(user.password_hash, password):
        add_audit_row(actor, "auth.reauth_failed", "user", user.id)
        db.session.commit()
        raise ValidationFailed({"password": "is wrong"})
    if user.has_mfa and not mfa.verify(actor, user, code or ""):
        raise ValidationFailed({"code": "is wrong or was already used"})
    sessions.mark_authenticated(actor, record, at)
