"""TOTP second factor (RFC 6238) and one-time recovery codes.

- The TOTP secret is stored encrypted (Fernet, key derived from SECRET_KEY): a copy of the
  database alone does not give the codes. Changing SECRET_KEY therefore makes enrolled
  secrets unreadable: every user must then be reset and enrol again.
- A code is accepted for the current 30-second step and one step either side (clock
  drift), and never twice: the accepted step is stored, and a later code must be for a
  later step (a conditional UPDATE, so two parallel requests cannot both use one code).
- Ten recovery codes, 64 random bits each, stored as SHA-256; each works once (again a
  conditional UPDATE).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from typing import Any, cast

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from sqlalchemy import CursorResult, delete, func, select, update

from webapp.extensions import db
from webapp.models import RecoveryCode, User
from webapp.models.types import utcnow
from webapp.services.audit.records import add_audit_row
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.identity import sessions

ISSUER = "AI Platform"
RECOVERY_CODE_COUNT = 10
VALID_WINDOW = 1  # steps either side of the current one


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"aipm mfa secret v1\0" + current_app.config["SECRET_KEY"].encode())
    return Fernet(base64.urlsafe_b64encode(digest.digest()))


def encrypt_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token: str, ttl: int | None = None) -> str | None:
    try:
        return _fernet().decrypt(token.encode(), ttl=ttl).decode()
    except InvalidToken:  # SECRET_KEY changed since enrolment (or older than ``ttl``)
        return None


# A secret offered for enrolment but not yet confirmed waits in the session cookie, which
# Flask signs but does not encrypt: it is kept there encrypted like the stored secrets, and
# an offer older than an hour is replaced by a new one.
PENDING_SECRET_SECONDS = 3600


def seal_pending_secret(secret: str) -> str:
    return encrypt_secret(secret)


def open_pending_secret(sealed: object) -> str | None:
    """The secret of an enrolment offer, or None (none, forged, stale, or another key)."""
    if not isinstance(sealed, str) or not sealed:
        return None
    return decrypt_secret(sealed, ttl=PENDING_SECRET_SECONDS)


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters, 160 bits (RFC 4226's advice)


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_code_svg(uri: str) -> str:
    """The otpauth:// URI as an inline SVG QR code (rendered here: no JavaScript, no CDN)."""
    return segno.make(uri, error="m").svg_inline(scale=4, border=2, dark="#111", light="#fff")


def normalize_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def hash_recovery_code(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def _new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(8)
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def matching_step(secret: str, code: str, at: float) -> int | None:
    """The time step (within ±VALID_WINDOW) whose code is ``code``, if any."""
    code = normalize_code(code)
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = int(at // totp.interval)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _claim_step(user: User, step: int) -> bool:
    """Record ``step`` as used unless it (or a later one) already was: no replays."""
    result = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            (User.mfa_last_step.is_(None)) | (User.mfa_last_step < step),
        )
        .values(mfa_last_step=step)
        .execution_options(synchronize_session=False)
    )
    # An UPDATE without RETURNING answers a CursorResult (Session.execute is typed Result).
    return cast("CursorResult[Any]", result).rowcount == 1


def _replace_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = _new_recovery_codes()
    for code in codes:
        db.session.add(RecoveryCode(user_id=user.id, code_hash=hash_recovery_code(code)))
    return codes


def enable(actor: Actor, user: User, secret: str, code: str, at: float | None = None) -> list[str]:
    """Enrol ``user`` with ``secret`` once they prove their app shows its codes; returns the
    ten recovery codes (shown once, stored hashed)."""
    if user.has_mfa:
        raise Conflict("two-factor authentication is already on; remove it first", "code")
    step = matching_step(secret, code, time.time() if at is None else at)
    if step is None:
        raise ValidationFailed({"code": "is not the code your app shows now"})
    user.mfa_secret = encrypt_secret(secret)
    user.mfa_enabled_at = utcnow()
    user.mfa_last_step = step
    codes = _replace_recovery_codes(user)
    add_audit_row(actor, "mfa.enable", "user", user.id)
    db.session.commit()
    return codes


def verify(actor: Actor, user: User, code: str, at: float | None = None) -> bool:
    """Check a second-factor code (TOTP or a recovery code) for ``user``. A used recovery
    code is spent and audited; a wrong code is audited."""
    moment = time.time() if at is None else at
    secret = decrypt_secret(user.mfa_secret) if user.mfa_secret else None
    ok = False
    if secret is not None:
        step = matching_step(secret, code, moment)
        ok = step is not None and _claim_step(user, step)
    if not ok and len(normalize_code(code)) == 16:
        spent = db.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == hash_recovery_code(code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=func.now())
            .execution_options(synchronize_session=False)
        )
        ok = cast("CursorResult[Any]", spent).rowcount == 1
        if ok:
            left = remaining_recovery_codes(user.id)
            add_audit_row(
                actor, "mfa.recovery_code_used", "user", user.id, new_values={"left": left}
            )
    if not ok:
        add_audit_row(actor, "auth.mfa_failed", "user", user.id)
    db.session.commit()
    return ok


def remaining_recovery_codes(user_id: uuid.UUID) -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def regenerate_recovery_codes(actor: Actor, user: User) -> list[str]:
    if not user.has_mfa:
        raise Conflict("two-factor authentication is off", "code")
    codes = _replace_recovery_codes(user)
    add_audit_row(actor, "mfa.recovery_codes_regenerated", "user", user.id)
    db.session.commit()
    return codes


def _clear(user: User) -> None:
    user.mfa_secret = None
    user.mfa_enabled_at = None
    user.mfa_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def disable(actor: Actor, user: User, *, required: bool) -> None:
    """The user removes their own second factor (not when their role requires one)."""
    if required:
        raise Conflict("your role requires two-factor authentication", "code")
    if not user.has_mfa:
        return
    _clear(user)
    add_audit_row(actor, "mfa.disable", "user", user.id)
    db.session.commit()


def reset_for_user(actor: Actor, user_id: uuid.UUID) -> User:
    """A platform admin removes a user's second factor (lost phone and recovery codes);
    the user enrols again at their next sign-in when their role requires it. The user's
    sessions end: whoever holds one (perhaps with the lost phone) signs in again."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    was_on = user.has_mfa
    _clear(user)
    ended = sessions.delete_sessions_of(user.id)
    add_audit_row(
        actor,
        "user.reset_mfa",
        "user",
        user.id,
        {"mfa": was_on},
        {"mfa": False, "sessions_ended": ended},
    )
    db.session.commit()
    return user
