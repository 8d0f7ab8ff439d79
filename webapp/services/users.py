"""Console users: creating them and checking credentials."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import ROLES, User
from webapp.models.types import utcnow
from webapp.services import passwords
from webapp.services.audit import Actor, add_audit_row
from webapp.services.errors import Conflict, ValidationFailed

# Deliberately simple: one @, something on each side, a dot in the domain, no spaces.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    actor: Actor,
    email: str,
    password: str,
    role: str,
    display_name: str | None = None,
) -> User:
    email = normalize_email(email)
    errors: dict[str, str] = {}
    if not EMAIL_PATTERN.match(email) or len(email) > 320:
        errors["email"] = "is not a valid email address"
    if role not in ROLES:
        errors["role"] = f"must be one of {', '.join(ROLES)}"
    problem = passwords.password_problem(password)
    if problem:
        errors["password"] = problem
    if errors:
        raise ValidationFailed(errors)
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user with email {email} already exists", field="email")

    user = User(
        email=email,
        password_hash=passwords.hash_password(password),
        role=role,
        display_name=display_name,
    )
    db.session.add(user)
    db.session.flush()
    add_audit_row(actor, "user.create", "user", user.id, new_values={"email": email, "role": role})
    db.session.commit()
    return user


def count_users() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def authenticate(actor: Actor, email: str, password: str) -> User | None:
    """The active user with these credentials, or None. Records the attempt in the audit
    trail; an unknown email costs the same hashing time as a wrong password."""
    user = find_user_by_email(email)
    if user is None:
        passwords.burn_verification_time(password)
        ok = False
    else:
        ok = passwords.verify_password(user.password_hash, password) and user.is_active_user

    if not ok:
        add_audit_row(
            actor,
            "auth.login_failed",
            "session",
            user.id if user else None,
            new_values={"email": normalize_email(email)[:320]},
        )
        db.session.commit()
        return None

    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = utcnow()
    add_audit_row(
        Actor(user.id, actor.ip_address, actor.user_agent),
        "auth.login",
        "session",
        user.id,
    )
    db.session.commit()
    return user


def record_logout(actor: Actor) -> None:
    add_audit_row(actor, "auth.logout", "session", actor.user_id)
    db.session.commit()
