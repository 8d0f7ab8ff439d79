"""Console users: creating them and checking credentials."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import ROLE_ADMIN, ROLES, User, UserSession
from webapp.models.types import utcnow
from webapp.rls import ANONYMOUS, current_database_role, use_database_role
from webapp.services.audit.records import add_audit_row, add_repeated_event
from webapp.services.core.actor import Actor
from webapp.services.core.addresses import client_key
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.sorting import Page, Sort, order_by, page_of_query
from webapp.services.core.validation import validated
from webapp.services.identity import passwords, sessions
from webapp.services.identity.schemas import NewUser, normalize_email


def create_user(
    actor: Actor,
    email: str,
    password: str,
    role: str,
    display_name: str | None = None,
    *,
    must_change_password: bool = False,
) -> User:
    """``must_change_password``: the console generated ``password`` (it was shown to
    someone other than the user, or printed); the user must choose their own at first
    sign-in. A password the person chose themselves needs no change."""
    new = validated(
        NewUser,
        {"email": email, "password": password, "role": role, "display_name": display_name},
    )
    email, role, display_name = new.email, new.role, new.display_name
    if find_user_by_email(email) is not None:
        raise Conflict(f"a user with email {email} already exists", field="email")

    user = User(
        email=email,
        password_hash=passwords.hash_password(password),
        role=role,
        display_name=display_name,
        must_change_password=must_change_password,
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # created by someone else since the check above
        db.session.rollback()
        raise Conflict(f"a user with email {email} already exists", field="email") from None
    add_audit_row(actor, "user.create", "user", user.id, new_values={"email": email, "role": role})
    db.session.commit()
    return user


def count_users() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def find_user_by_email(email: str) -> User | None:
    """The account of a typed address: its stored form, or the address only stripped and
    lower-cased as accounts made before email-validator were stored (an internationalised
    domain stayed in its ``xn--`` form there)."""
    forms = {normalize_email(email), email.strip().lower()}
    return db.session.scalar(select(User).where(User.email.in_(forms)).order_by(User.created_at))


# The audit aggregation window when the caller names none (the console passes its
# AUDIT_REPEAT_WINDOW_MINUTES).
DEFAULT_REPEAT_WINDOW = timedelta(minutes=15)


def authenticate(
    actor: Actor,
    email: str,
    password: str,
    *,
    failure_window: timedelta = DEFAULT_REPEAT_WINDOW,
) -> User | None:
    """The active user with these credentials, or None. Records the attempt in the audit
    trail; an unknown email costs the same hashing time as a wrong password. Failures are
    aggregated: one row per client address (IPv6: its /64) and ``failure_window``, naming
    the first email typed, with a count of the failures (``audit_event_windows``), so
    guessing from one place cannot flood the log."""
    user = find_user_by_email(email)
    if user is None:
        passwords.burn_verification_time(password)
        ok = False
    else:
        ok = passwords.verify_password(user.password_hash, password) and user.is_active_user

    if not ok or user is None:
        add_repeated_event(  # no resource id: the row must not tell whether the account exists
            actor,
            "auth.login_failed",
            "session",
            f"address:{client_key(actor.ip_address)}",
            failure_window,
            new_values={"email": normalize_email(email)[:320]},
        )
        db.session.commit()
        return None

    # From here the database may let this request update this one user's row (RLS).
    use_database_role(current_database_role() or ANONYMOUS, user.id)
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


def record_logout(actor: Actor, user: User, session_id: uuid.UUID | None) -> None:
    """Sign-out ends this session (its record is deleted: copies of the cookie stop working
    too); the user's other devices stay signed in (the sessions page ends those)."""
    if session_id is not None:
        db.session.execute(
            delete(UserSession).where(UserSession.id == session_id, UserSession.user_id == user.id)
        )
    add_audit_row(actor, "auth.logout", "session", user.id)
    db.session.commit()


def record_throttled_login(actor: Actor, email: str, window: timedelta) -> None:
    """One audit row per client address (IPv6: its /64) and window, with a count of the
    throttled attempts (``audit_event_windows``): a flood of 429s, whatever emails it
    types, cannot flood the audit log."""
    add_repeated_event(
        actor,
        "auth.login_throttled",
        "session",
        f"address:{client_key(actor.ip_address)}",
        window,
        new_values={"email": normalize_email(email)[:320]},
    )
    db.session.commit()


def record_refusal(actor: Actor, method: str, path: str, window: timedelta) -> None:
    """A signed-in user tried something their role does not allow (answered 403): one
    audit row per user and window (the first refusal's method and path), with a count."""
    add_repeated_event(
        actor,
        "auth.forbidden",
        "request",
        f"user:{actor.user_id}",
        window,
        new_values={"method": method, "path": path[:500]},
    )
    db.session.commit()


# --- User management (platform admins) ------------------------------------------------


def list_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.email)))


USER_SORTS = {
    "email": User.email,
    "role": User.role,
    "status": User.is_active_user,
    "last_sign_in": User.last_login_at,
}


def users_page(sort: Sort, page: int) -> Page[User]:
    """One page of users ordered in SQL by one of ``USER_SORTS``."""
    found = page_of_query(select(User).order_by(*order_by(sort, USER_SORTS, User.id)), page)
    return Page([user for (user,) in found.items], found.page, found.pages, found.total)


def get_user(user_id: uuid.UUID) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def generate_password() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 bits


# Any number of admins may be demoted or deactivated at the same moment; row locks alone
# let two admins demote each other (SQLite has no FOR UPDATE) or deadlock (PostgreSQL,
# rows locked in opposite orders). So every change that can remove an admin first takes
# one lock for all of them, held until commit, and only then reads the rows it decides on.
ADMIN_CHANGES_LOCK = 0x6169706D  # "aipm": pg_advisory_xact_lock key


def _serialize_admin_changes(user_id: uuid.UUID) -> User:
    """Wait for any other admin-removing change to commit, then read ``user_id`` afresh."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(ADMIN_CHANGES_LOCK)))
    else:
        # SQLite: a write takes the database's one RESERVED lock until commit (reads run
        # outside any transaction here), so later writers wait for this one to finish.
        db.session.execute(
            update(User).where(User.id == user_id).values(role=User.role),
            execution_options={"synchronize_session": False},
        )
    user = db.session.get(User, user_id, populate_existing=True)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def _other_active_admins(user_id: uuid.UUID) -> int:
    """Active admins other than ``user_id`` (call under _serialize_admin_changes)."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == ROLE_ADMIN, User.is_active_user, User.id != user_id)
        )
        or 0
    )


def role_change_refusal(actor_id: uuid.UUID | None, user: User) -> str | None:
    """Why ``actor_id`` may never change ``user``'s role, or None: an admin keeps their
    own admin role (another admin can take it). The users page shows the control
    disabled with this reason; ``change_role`` refuses with it."""
    if user.role == ROLE_ADMIN and user.id == actor_id:
        return "you cannot remove your own admin role; ask another admin"
    return None


def deactivate_refusal(actor_id: uuid.UUID | None, user: User) -> str | None:
    """Why ``actor_id`` may never deactivate ``user``, or None: nobody deactivates
    themself (the users page shows it disabled; ``set_active`` refuses with it)."""
    if user.id == actor_id:
        return "you cannot deactivate yourself; ask another admin"
    return None


def change_role(actor: Actor, user_id: uuid.UUID, role: str) -> User:
    if role not in ROLES:
        raise ValidationFailed({"role": f"must be one of {', '.join(ROLES)}"})
    user = get_user(user_id)
    if user.role == role:
        return user
    if user.role == ROLE_ADMIN:
        user = _serialize_admin_changes(user_id)
        if user.role != ROLE_ADMIN:  # changed by someone else meanwhile
            raise Conflict("this user's role was changed meanwhile; reload the page", "role")
        if refusal := role_change_refusal(actor.user_id, user):
            raise Conflict(refusal, "role")
        if user.is_active_user and _other_active_admins(user.id) == 0:
            raise Conflict("this is the last active admin; make someone else admin first", "role")
    old = user.role
    user.role = role
    add_audit_row(actor, "user.change_role", "user", user.id, {"role": old}, {"role": role})
    db.session.commit()
    return user


def set_active(actor: Actor, user_id: uuid.UUID, active: bool) -> User:
    """Deactivate (ending the user's sessions) or reactivate a user."""
    user = get_user(user_id)
    if user.is_active_user == active:
        return user
    if not active:
        if refusal := deactivate_refusal(actor.user_id, user):
            raise Conflict(refusal, "is_active")
        if user.role == ROLE_ADMIN:
            user = _serialize_admin_changes(user_id)
            if not user.is_active_user:
                raise Conflict("this user was deactivated meanwhile; reload the page", "is_active")
        if user.role == ROLE_ADMIN and _other_active_admins(user.id) == 0:
            raise Conflict("this is the last active admin and cannot be deactivated", "is_active")
        user.session_version += 1
        sessions.delete_sessions_of(user.id)
    user.is_active_user = active
    add_audit_row(
        actor,
        "user.activate" if active else "user.deactivate",
        "user",
        user.id,
        {"is_active": not active},
        {"is_active": active},
    )
    db.session.commit()
    return user


def reset_password(actor: Actor, user_id: uuid.UUID) -> tuple[User, str]:
    """Give the user a new generated password (shown once to the admin) and end their
    sessions. The audit row records that it happened, never the password."""
    user = get_user(user_id)
    password = generate_password()
    user.password_hash = passwords.hash_password(password)
    user.must_change_password = True
    user.session_version += 1
    sessions.delete_sessions_of(user.id)
    add_audit_row(actor, "user.reset_password", "user", user.id)
    db.session.commit()
    return user, password


def change_own_password(actor: Actor, user: User, current: str, new: str, confirm: str) -> User:
    """Changing one's password ends every other session (the caller signs this one in
    again with the new session version)."""
    errors: dict[str, str] = {}
    if not current:
        errors["current_password"] = "is required"
    elif not passwords.verify_password(user.password_hash, current):
        # A wrong current password may be someone guessing with a stolen session: record it.
        add_audit_row(actor, "auth.reauth_failed", "user", user.id)
        db.session.commit()
        errors["current_password"] = "is wrong"
    # Every problem at once: the new password is checked whatever the current one was.
    problem = "is required" if not new else passwords.password_problem(new, user.email)
    if problem:
        errors["new_password"] = problem
    elif new == current:
        errors["new_password"] = "must differ from the current password"
    if not confirm:
        errors["confirm_password"] = "is required"
    elif new and confirm != new:
        errors["confirm_password"] = "does not match the new password"
    if errors:
        raise ValidationFailed(errors)
    user.password_hash = passwords.hash_password(new)
    user.must_change_password = False
    user.session_version += 1
    sessions.delete_sessions_of(user.id)
    add_audit_row(actor, "user.change_password", "user", user.id)
    db.session.commit()
    return user
