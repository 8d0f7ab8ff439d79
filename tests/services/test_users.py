"""Creating users and checking credentials, without HTTP."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from webapp.models import AuditLog, User
from webapp.services import users
from webapp.services.audit import Actor
from webapp.services.errors import Conflict, ValidationFailed

ACTOR = Actor(user_id=None, ip_address="192.0.2.1", user_agent="pytest")
GOOD = "a long enough password"


def test_create_user_stores_an_argon2id_hash_and_audits(db):
    user = users.create_user(ACTOR, " New@Example.COM ", GOOD, "viewer")
    assert user.email == "new@example.com"
    assert user.password_hash.startswith("$argon2id$") and GOOD not in user.password_hash
    row = db.session.scalars(select(AuditLog)).one()
    assert (row.action, row.resource_id, row.new_values) == (
        "user.create",
        user.id,
        {"email": "new@example.com", "role": "viewer"},
    )
    assert str(row.ip_address) == "192.0.2.1"


@pytest.mark.parametrize(
    "email, password, role, field",
    [
        ("no-at-sign", GOOD, "viewer", "email"),
        ("a@b", GOOD, "viewer", "email"),
        ("a b@example.com", GOOD, "viewer", "email"),
        ("ok@example.com", "elevenchars", "viewer", "password"),
        ("ok@example.com", "x" * 129, "viewer", "password"),
        ("ok@example.com", GOOD, "owner", "role"),
    ],
)
def test_create_user_names_the_wrong_field_and_saves_nothing(db, email, password, role, field):
    with pytest.raises(ValidationFailed) as error:
        users.create_user(ACTOR, email, password, role)
    assert list(error.value.errors) == [field]
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditLog)) == 0


def test_password_length_limits_are_inclusive(db):
    users.create_user(ACTOR, "twelve@example.com", "x" * 12, "viewer")
    users.create_user(ACTOR, "long@example.com", "x" * 128, "viewer")


def test_duplicate_email_is_a_conflict_whatever_the_case(db):
    users.create_user(ACTOR, "dup@example.com", GOOD, "viewer")
    with pytest.raises(Conflict) as error:
        users.create_user(ACTOR, "DUP@example.com", GOOD, "platform_admin")
    assert error.value.field == "email"


def test_authenticate_accepts_right_and_refuses_wrong_credentials(db):
    users.create_user(ACTOR, "u@example.com", GOOD, "viewer")
    assert users.authenticate(ACTOR, "U@example.com", GOOD).email == "u@example.com"
    assert users.authenticate(ACTOR, "u@example.com", GOOD + "!") is None
    assert users.authenticate(ACTOR, "ghost@example.com", GOOD) is None
    actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.created_at)).all()
    assert actions == ["user.create", "auth.login", "auth.login_failed", "auth.login_failed"]


def test_authenticate_records_last_login(db):
    user = users.create_user(ACTOR, "u@example.com", GOOD, "viewer")
    assert user.last_login_at is None
    users.authenticate(ACTOR, "u@example.com", GOOD)
    db.session.expire_all()
    assert db.session.get(User, user.id).last_login_at is not None


def test_hash_with_weaker_parameters_is_upgraded_on_login(db):
    user = users.create_user(ACTOR, "old@example.com", GOOD, "viewer")
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(GOOD)
    user.password_hash = weak
    db.session.commit()
    assert users.authenticate(ACTOR, "old@example.com", GOOD) is not None
    db.session.expire_all()
    upgraded = db.session.get(User, user.id).password_hash
    assert upgraded != weak and "m=8192" in upgraded


def test_inactive_user_is_refused_even_with_the_right_password(db):
    user = users.create_user(ACTOR, "gone@example.com", GOOD, "viewer")
    user.is_active_user = False
    db.session.commit()
    assert users.authenticate(ACTOR, "gone@example.com", GOOD) is None
