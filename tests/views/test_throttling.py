"""Sign-in throttling: checked before any hashing, per account and per address."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, csrf_token, make_user, sign_in
from webapp.models import ROLE_VIEWER, AuditEventWindow, AuditLog
from webapp.services.identity import passwords


def failure_count(db) -> int:
    """How many failed sign-ins the (one) auth.login_failed row stands for."""
    db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.login_failed")).one()
    return db.session.scalar(
        select(AuditEventWindow.event_count).where(AuditEventWindow.action == "auth.login_failed")
    )


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
    # One row for the ten failures from this address, with their count (issue 12 item 4;
    # this used to pin ten rows).
    assert actions.count("auth.login_failed") == 1 and failure_count(db) == 10
    assert actions.count("auth.login_throttled") == 1


def test_throttling_is_per_account_whatever_the_case(client, admin_user, viewer_user):
    for attempt in range(10):
        email = admin_user.email.upper() if attempt % 2 else admin_user.email
        sign_in(client, email, "wrong password!")
    assert sign_in(client, " ADMIN@example.com ", PASSWORD).status_code == 429
    assert sign_in(client, viewer_user.email).status_code == 302  # other account unaffected


def test_successful_sign_ins_do_not_count_towards_a_limit(client, admin_user):
    """Issue 12 item 5 (this test used to pin the opposite: ten sign-ins locked the account)."""
    for _ in range(15):
        assert sign_in(client, admin_user.email).status_code == 302
        client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    for _ in range(9):
        assert sign_in(client, admin_user.email, "wrong password!").status_code == 401
    assert sign_in(client, admin_user.email).status_code == 302


def from_address(app, address: str):
    from tests.conftest import IsolatedClient

    app.test_client_class = IsolatedClient
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_strangers_hammering_an_account_cannot_lock_its_owner_out(app, client, admin_user):
    assert sign_in(client, admin_user.email).status_code == 302  # the owner's browser
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    for number in range(4):  # attackers from several addresses, no device cookie
        attacker = from_address(app, f"203.0.113.{number}")
        for _ in range(8):
            sign_in(attacker, admin_user.email, "wrong password!")
    assert sign_in(from_address(app, "203.0.113.99"), admin_user.email).status_code == 429
    # The owner, from their usual browser, still gets in, with a typo first.
    assert sign_in(client, admin_user.email, "typo typo typo").status_code == 401
    assert sign_in(client, admin_user.email).status_code == 302


def test_brute_force_is_bounded_per_account_and_per_device(app, client, admin_user, hash_calls):
    # Untrusted clients share ten password checks per window, whatever their addresses.
    for number in range(30):
        sign_in(from_address(app, f"198.51.100.{number}"), admin_user.email, f"guess {number}!!")
    assert len(hash_calls) == 10
    # A device cookie earned on one's own account opens no budget on another account.
    make_user("mallory@example.com", ROLE_VIEWER)
    mallory = from_address(app, "192.0.2.7")
    assert sign_in(mallory, "mallory@example.com").status_code == 302
    mallory.post("/logout", data={"csrf_token": csrf_token(mallory, "/")})
    assert sign_in(mallory, admin_user.email, "one more guess").status_code == 429
    # A trusted device has its own ten attempts, then it is throttled too.
    del hash_calls[:]
    for _ in range(12):
        sign_in(mallory, "mallory@example.com", "wrong password!")
    assert len(hash_calls) == 10
    assert sign_in(mallory, "mallory@example.com").status_code == 429


def test_a_forged_device_cookie_is_not_trusted(app, client, admin_user):
    for _ in range(10):
        sign_in(client, admin_user.email, "wrong password!")
    client.set_cookie("device", "eyJuIjoieCIsImEiOltdfQ.forged.signature")
    assert sign_in(client, admin_user.email).status_code == 429


def test_json_sign_ins_count_on_the_same_account(client, admin_user):
    """Issue 12 item 6: the per-account key read the form only, JSON bodies slipped past."""
    for _ in range(10):
        assert sign_in(client, admin_user.email, "wrong password!").status_code == 401
    response = client.post(
        "/login",
        json={"email": admin_user.email.upper(), "password": PASSWORD},
        headers={"X-CSRFToken": csrf_token(client)},
    )
    assert response.status_code == 429


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
    assert actions.count("auth.login_throttled") == 1 and actions.count("auth.login_failed") == 1
    assert failure_count(db) == 10


def test_throttled_sign_ins_with_random_emails_leave_one_counted_row(client, db):
    """Issue 12 item 4: de-duplication keyed on the typed email, so random emails from one
    address wrote a row each."""
    for number in range(60):
        sign_in(client, f"random{number}@example.com", "wrong password!")
    rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.login_throttled"))
    assert len(rows.all()) == 1
    counter = db.session.scalars(
        select(AuditEventWindow).where(AuditEventWindow.action == "auth.login_throttled")
    ).one()  # (the ten failures before have their own counter)
    assert counter.subject == "address:127.0.0.1" and counter.event_count == 10


def test_parallel_throttled_attempts_are_counted_exactly_once_each(app, admin_user, db):
    import threading

    clients = [from_address(app, "192.0.2.50") for _ in range(16)]
    tokens = [csrf_token(c) for c in clients]
    for _ in range(10):
        sign_in(clients[0], "someone@example.com", "wrong password!")
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def attempt(c, token):
        barrier.wait()
        response = c.post(
            "/login",
            data={"email": "someone@example.com", "password": "x" * 12, "csrf_token": token},
        )
        statuses.append(response.status_code)

    threads = [
        threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [429] * 16
    db.session.expire_all()
    throttled = select(AuditEventWindow.event_count).where(
        AuditEventWindow.action == "auth.login_throttled"
    )
    assert db.session.scalars(throttled).one() == 16
    actions = db.session.scalars(select(AuditLog.action)).all()
    assert actions.count("auth.login_throttled") == 1


def test_a_viewer_s_flood_of_refusals_leaves_one_counted_row(viewer_client, viewer_user, db):
    """Issue 12 item 4: every 403 of a viewer wrote a row (200 in 9 s)."""
    token = csrf_token(viewer_client, "/")
    for number in range(25):
        response = viewer_client.post(
            "/users", data={"csrf_token": token, "email": f"u{number}@x.io"}
        )
        assert response.status_code == 403
    rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.forbidden")).all()
    assert len(rows) == 1 and rows[0].user_id == viewer_user.id
    counter = db.session.scalars(select(AuditEventWindow)).one()
    assert counter.subject == f"user:{viewer_user.id}" and counter.event_count == 25


def test_the_audit_page_shows_how_many_refusals_a_row_stands_for(app, viewer_client, db):
    token = csrf_token(viewer_client, "/")
    for number in range(7):
        viewer_client.post("/users", data={"csrf_token": token, "email": f"u{number}@x.io"})
    html = viewer_client.get("/audit").get_data(as_text=True)
    assert "×7</small>" in html
