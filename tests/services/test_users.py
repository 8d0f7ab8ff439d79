"""Creating users and checking credentials, without HTTP."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from webapp.models import AuditLog, User
from webapp.services.audit.records import repeated_event_counts
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, ValidationFailed
from webapp.services.identity import users

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
    users.create_user(ACTOR, "twelve@example.com", "xy" * 6, "viewer")  # not one repeated character
    users.create_user(ACTOR, "long@example.com", "xy" * 64, "viewer")


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
    # Issue 12 item 4: failures from one address are one row per window, with a count
    # (this used to pin a row per failure).
    assert actions == ["user.create", "auth.login", "auth.login_failed"]
    assert failed_count(db) == 2


def failed_count(db) -> int:
    row = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.login_failed")).one()
    return repeated_event_counts([row], users.DEFAULT_REPEAT_WINDOW)[row.id]


def test_failed_sign_ins_are_aggregated_per_ipv6_64(db):
    users.create_user(ACTOR, "u@example.com", GOOD, "viewer")
    for host in range(1, 6):  # one client hopping between addresses of its /64
        actor = Actor(user_id=None, ip_address=f"2001:db8:1:2::{host:x}", user_agent="pytest")
        assert users.authenticate(actor, f"guess{host}@example.com", GOOD) is None
    other = Actor(user_id=None, ip_address="2001:db8:1:3::1", user_agent="pytest")
    users.authenticate(other, "u@example.com", "wrong password!")
    rows = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "auth.login_failed").order_by(AuditLog.created_at)
    ).all()
    assert len(rows) == 2  # one per /64 and window
    assert rows[0].new_values == {"email": "guess1@example.com"}  # the first one typed
    counts = repeated_event_counts(rows, users.DEFAULT_REPEAT_WINDOW)
    assert [counts[row.id] for row in rows] == [5, 1]


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


# --- Password policy and hash upgrades -------------------------------------------------


@pytest.mark.parametrize("password", ["1q2w3e4r5t6y", "QWERTY123456", "qazwsxedcrfv"])
def test_common_passwords_are_refused_whatever_the_case(db, password):
    with pytest.raises(ValidationFailed) as error:
        users.create_user(ACTOR, "c@example.com", password, "viewer")
    assert "most common passwords" in error.value.errors["password"]


def test_the_common_list_ships_ten_thousand_passwords():
    from webapp.services.identity.passwords import common_passwords

    assert 9_000 < len(common_passwords()) <= 10_000
    assert "password" in common_passwords()


def test_werkzeug_hashes_are_upgraded_to_argon2id_on_sign_in(db):
    from werkzeug.security import generate_password_hash

    user = users.create_user(ACTOR, "legacy@example.com", GOOD, "viewer")
    user.password_hash = generate_password_hash(GOOD, method="pbkdf2:sha256:1000")
    db.session.commit()
    assert users.authenticate(ACTOR, "legacy@example.com", "wrong " + GOOD) is None
    assert users.authenticate(ACTOR, "legacy@example.com", GOOD) is not None
    db.session.expire_all()
    assert db.session.get(User, user.id).password_hash.startswith("$argon2id$")


# --- User management rules --------------------------------------------------------------


@pytest.fixture
def admins(db):
    first = users.create_user(ACTOR, "first@example.com", GOOD, "platform_admin")
    second = users.create_user(ACTOR, "second@example.com", GOOD, "platform_admin")
    return first, second


def test_admin_cannot_remove_their_own_admin_role(admins):
    first, _ = admins
    with pytest.raises(Conflict, match="your own admin role"):
        users.change_role(Actor(first.id), first.id, "viewer")


def test_admin_can_demote_another_admin(admins, db):
    first, second = admins
    users.change_role(Actor(first.id), second.id, "viewer")
    assert db.session.get(User, second.id).role == "viewer"


def test_last_active_admin_cannot_be_deactivated_or_demoted(admins, db):
    first, second = admins
    users.set_active(Actor(first.id), second.id, False)
    other = users.create_user(ACTOR, "third@example.com", GOOD, "viewer")
    with pytest.raises(Conflict, match="yourself"):
        users.set_active(Actor(first.id), first.id, False)
    # Acting through another account (e.g. a script) still cannot remove the last admin.
    with pytest.raises(Conflict, match="last active admin"):
        users.set_active(Actor(other.id), first.id, False)
    with pytest.raises(Conflict, match="last active admin"):
        users.change_role(Actor(other.id), first.id, "viewer")
    assert db.session.get(User, first.id).is_active_user


def test_unknown_role_and_unknown_user_are_refused(admins):
    first, _ = admins
    import uuid as _uuid

    from webapp.services.core.errors import NotFound

    with pytest.raises(ValidationFailed):
        users.change_role(Actor(first.id), first.id, "owner")
    with pytest.raises(NotFound):
        users.set_active(Actor(first.id), _uuid.uuid4(), False)


def test_reset_password_returns_a_working_password_and_audits_without_it(admins, db):
    first, second = admins
    _, password = users.reset_password(Actor(first.id), second.id)
    assert len(password) >= 12
    assert users.authenticate(ACTOR, second.email, password) is not None
    row = db.session.scalars(select(AuditLog).where(AuditLog.action == "user.reset_password")).one()
    assert password not in str(row.old_values) + str(row.new_values)


def test_change_own_password_rules(db):
    user = users.create_user(ACTOR, "me@example.com", GOOD, "viewer")
    with pytest.raises(ValidationFailed) as error:
        users.change_own_password(
            ACTOR, user, "wrong", "another long secret", "another long secret"
        )
    assert set(error.value.errors) == {"current_password"}
    with pytest.raises(ValidationFailed) as error:
        users.change_own_password(ACTOR, user, GOOD, "another long secret", "typo long secret")
    assert set(error.value.errors) == {"confirm_password"}
    with pytest.raises(ValidationFailed) as error:
        users.change_own_password(ACTOR, user, GOOD, GOOD, GOOD)
    assert set(error.value.errors) == {"new_password"}
    version = user.session_version
    users.change_own_password(ACTOR, user, GOOD, "another long secret", "another long secret")
    assert user.session_version == version + 1


@pytest.mark.parametrize(
    "password",
    [
        "Jane.Doe@Example.com",  # the email itself, any case
        "my jane.doe@example.com!",  # contained
        "JANE.DOE-secret-2026",  # its local part, contained
        "aaaaaaaaaaaaaa",  # one character repeated
        "AaAaAaAaAaAaAa",  # the same, whatever the case
    ],
)
def test_passwords_refuse_the_account_email_and_single_character_repeats(db, password):
    """Issue 12 item 11."""
    with pytest.raises(ValidationFailed) as error:
        users.create_user(ACTOR, "jane.doe@example.com", password, "viewer")
    assert set(error.value.errors) == {"password"}
    user = users.create_user(ACTOR, "other.person@example.com", GOOD, "viewer")
    with pytest.raises(ValidationFailed) as error:
        users.change_own_password(ACTOR, user, GOOD, "Other.Person 2026!", "Other.Person 2026!")
    assert set(error.value.errors) == {"new_password"}


def test_a_short_local_part_alone_does_not_refuse_a_password(db):
    users.create_user(ACTOR, "al@example.com", "totally alright passphrase", "viewer")


def test_generated_passwords_must_be_changed_and_chosen_ones_need_not(db, admin_user):
    chosen = users.create_user(ACTOR, "chose@example.com", GOOD, "viewer")
    assert chosen.must_change_password is False
    generated = users.create_user(
        ACTOR, "given@example.com", users.generate_password(), "viewer", must_change_password=True
    )
    assert generated.must_change_password is True
    _, given = users.reset_password(Actor(admin_user.id), chosen.id)
    assert chosen.must_change_password is True
    new = "my very own passphrase"
    users.change_own_password(ACTOR, chosen, given, new, new)
    assert chosen.must_change_password is False


@pytest.mark.parametrize(
    "email",
    [
        "<script>alert(1)</script>@x.com",  # issue 16 item 6: markup around an address
        "a" * 300 + "@example.com",  # a 300-character local part
        "a" * 65 + "@example.com",  # one past the 64 of RFC 5321
        "Ann <ann@example.com>",  # a display name is not an address
        "ann@example..com",
        "ann@corp.local",  # a special-use domain
        "ann@-example.com",
    ],
)
def test_email_validator_refuses_what_is_not_an_address(db, email):
    with pytest.raises(ValidationFailed) as error:
        users.create_user(ACTOR, email, GOOD, "viewer")
    assert list(error.value.errors) == ["email"]
    assert error.value.errors["email"].startswith("is not a valid email address: ")
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_emails_are_stored_in_one_form_and_found_in_any_case(db):
    user = users.create_user(ACTOR, "Jürgen.Weiß@Bücher.Example", GOOD, "viewer")
    assert user.email == "jürgen.weiß@bücher.example"
    assert users.authenticate(ACTOR, "JÜRGEN.WEISS@bücher.example", GOOD) is None  # ß ≠ ss
    assert users.authenticate(ACTOR, " JÜRGEN.Weiß@BÜCHER.example ", GOOD).id == user.id
    with pytest.raises(Conflict):
        users.create_user(ACTOR, "jürgen.weiß@xn--bcher-kva.example", GOOD, "viewer")


def test_an_account_stored_before_the_validator_is_still_found(db):
    """Accounts made before email-validator kept a punycode domain as typed."""
    old = users.create_user(ACTOR, "old@example.com", GOOD, "viewer")
    old.email = "old@xn--bcher-kva.example"
    db.session.commit()
    assert users.authenticate(ACTOR, "OLD@xn--bcher-kva.example", GOOD).id == old.id
