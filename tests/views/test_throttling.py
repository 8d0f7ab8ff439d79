"""Sign-in throttling: checked before any hashing, per account and per address."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, csrf_token, sign_in
from webapp.models import AuditLog
from webapp.services import passwords


@pytest.fixture
def hash_calls(monkeypatch):
    calls = []
    real = passwords.verify_password

    def counting(password_hash, password):
        calls.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return calls


def test_eleventh_failure_is_throttled_even_with_the_right_password(
    client, admin_user, db, hash_calls
):
    for _ in range(10):
        assert sign_in(client, admin_user.email, "wrong password!").status_code == 401
    calls_before = len(hash_calls)
    response = sign_in(client, admin_user.email, PASSWORD)
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    page = response.get_data(as_text=True)
    assert "Too many sign-in attempts for this account or address. Try again in" in page
    assert "minutes" in page
    assert len(hash_calls) == calls_before  # refused before any hash was computed
    assert client.get("/").status_code == 302
    actions = db.session.scalars(select(AuditLog.action)).all()
    assert actions.count("auth.login_failed") == 10
    assert actions.count("auth.login_throttled") == 1


def test_throttling_is_per_account_whatever_the_case(client, admin_user, viewer_user):
    for attempt in range(10):
        email = admin_user.email.upper() if attempt % 2 else admin_user.email
        sign_in(client, email, "wrong password!")
    assert sign_in(client, " ADMIN@example.com ", PASSWORD).status_code == 429
    assert sign_in(client, viewer_user.email).status_code == 302  # other account unaffected


def test_every_attempt_counts_when_it_arrives(client, admin_user):
    """Counting on arrival (not after the answer) is what makes the limit hold under
    parallel requests; successful sign-ins count too."""
    for _ in range(10):
        assert sign_in(client, admin_user.email).status_code == 302
        client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert sign_in(client, admin_user.email).status_code == 429


def test_parallel_attempts_cannot_slip_past_the_limit(app, admin_user):
    import threading

    from tests.conftest import IsolatedClient

    app.test_client_class = IsolatedClient
    clients = [app.test_client() for _ in range(24)]
    tokens = [csrf_token(c) for c in clients]
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []
    email = admin_user.email  # read here: the threads have no app context of their own

    def attempt(c, token):
        barrier.wait()
        response = c.post(
            "/login",
            data={"email": email, "password": "wrong password!", "csrf_token": token},
        )
        statuses.append(response.status_code)

    threads = [
        threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses.count(401) == 10 and statuses.count(429) == 14


def test_password_change_attempts_are_throttled_and_audited(viewer_client, viewer_user, db):
    for _ in range(10):
        response = viewer_client.post(
            "/account/password",
            data={
                "csrf_token": csrf_token(viewer_client, "/"),
                "current_password": "guess guess guess",
                "new_password": "another long passphrase",
                "confirm_password": "another long passphrase",
            },
        )
        assert response.status_code == 400
    response = viewer_client.post(
        "/account/password",
        data={
            "csrf_token": csrf_token(viewer_client, "/"),
            "current_password": PASSWORD,
            "new_password": "another long passphrase",
            "confirm_password": "another long passphrase",
        },
    )
    assert response.status_code == 429
    actions = db.session.scalars(select(AuditLog.action)).all()
    assert actions.count("auth.reauth_failed") == 10


def test_unknown_accounts_are_throttled_too(client, db):
    for _ in range(10):
        assert sign_in(client, "nobody@example.com", "whatever it is").status_code == 401
    assert sign_in(client, "nobody@example.com", "whatever it is").status_code == 429


def test_per_address_limit_stops_spraying_many_accounts(client, app, db, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_FAILURES_PER_ADDRESS", "5 per 15 minutes")
    for number in range(5):
        assert sign_in(client, f"user{number}@example.com", "wrong password!").status_code == 401
    assert sign_in(client, "user99@example.com", "wrong password!").status_code == 429


def test_unknown_email_costs_a_hash_like_a_wrong_password(client, admin_user, monkeypatch):
    burned = []
    monkeypatch.setattr(passwords, "burn_verification_time", lambda password: burned.append(1))
    sign_in(client, "ghost@example.com", "some password!!")
    assert burned == [1]


def test_a_flood_of_throttled_attempts_leaves_one_audit_row(client, admin_user, db):
    for _ in range(15):
        sign_in(client, admin_user.email, "wrong password!")
    actions = db.session.scalars(select(AuditLog.action)).all()
    assert actions.count("auth.login_throttled") == 1 and actions.count("auth.login_failed") == 10
