"""Findings of the review of issue 12's security work: the password and enrolment gates
together, re-authentication gaps, MFA enrolment, IPv6 prefixes, one budget for second
factor codes."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import func, select

import webapp.auth
from tests.conftest import PASSWORD, IsolatedClient, csrf_token, enrol_mfa, sign_in, totp_code
from webapp.extensions import db as _db
from webapp.models import AuditLog, User, UserSession
from webapp.services.audit.records import repeated_event_counts
from webapp.services.identity import mfa

API = "/api/platform/ai-management"
NEW_PASSWORD = "my own long passphrase"


def new_client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


def at_minutes(monkeypatch, minutes: float, start: float) -> None:
    monkeypatch.setattr(webapp.auth, "now", lambda: start + minutes * 60)


def pending_secret(client) -> str:
    """The enrolment secret the MFA page showed (kept encrypted in the session)."""
    with client.session_transaction() as session:
        sealed = session["mfa_enrolment_secret"]
    secret = mfa.open_pending_secret(sealed)
    assert secret is not None
    return secret


def change_password(client, current: str = PASSWORD, new: str = NEW_PASSWORD):
    return client.post(
        "/account/password",
        data={
            "csrf_token": csrf_token(client, "/account/password"),
            "current_password": current,
            "new_password": new,
            "confirm_password": new,
        },
    )


# --- 1: a new admin with a generated password and MFA required ----------------------


def test_new_admin_changes_the_password_first_then_enrols(app, admin_user, db, monkeypatch):
    monkeypatch.setitem(app.config, "MFA_REQUIRED_FOR_ADMINS", True)
    admin_user.must_change_password = True  # as the users page creates them
    _db.session.commit()
    client = new_client(app)
    assert sign_in(client, admin_user.email).status_code == 302

    # Password first: every page, htmx and the API point at the password form ...
    page = client.get("/features")
    assert page.status_code == 302 and page.headers["Location"] == "/account/password"
    htmx = client.get("/features", headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"] == "/account/password"
    api = client.get(f"{API}/features")
    assert api.status_code == 403 and api.get_json()["code"] == "password_change_required"
    # ... which answers, instead of sending on to enrolment (that was a redirect loop).
    assert client.get("/account/password").status_code == 200
    mfa_page = client.get("/account/mfa")
    assert mfa_page.status_code == 302 and mfa_page.headers["Location"] == "/account/password"
    assert change_password(client).status_code == 302

    # Then enrolment.
    page = client.get("/features")
    assert page.status_code == 302 and page.headers["Location"] == "/account/mfa"
    api = client.get(f"{API}/features")
    assert api.status_code == 403 and api.get_json()["code"] == "mfa_enrolment_required"
    assert client.get("/account/mfa").status_code == 200
    secret = pending_secret(client)
    enrolled = client.post(
        "/account/mfa/enable",
        data={"csrf_token": csrf_token(client, "/account/mfa"), "code": totp_code(secret)},
    )
    assert enrolled.status_code == 201
    assert client.get("/features").status_code == 200
    assert client.get(f"{API}/features").status_code == 200


# --- 4: MFA enrolment -------------------------------------------------------------------


def shown_secret(page: str) -> str:
    match = re.search(r"by hand: <code class=\"secret\">([A-Z2-7]+)</code>", page)
    assert match, "the MFA page shows no key to type by hand"
    return match.group(1)


def test_the_offered_secret_is_not_readable_in_the_session_cookie(app, viewer_client):
    secret = shown_secret(viewer_client.get("/account/mfa").get_data(as_text=True))
    cookie = viewer_client.get_cookie("session").value
    content = app.session_interface.get_signing_serializer(app).loads(cookie)
    assert secret not in json.dumps(content)  # Flask signs the cookie but does not encrypt
    assert pending_secret(viewer_client) == secret
    # The same offer stays on the page until it is used (or an hour old).
    assert shown_secret(viewer_client.get("/account/mfa").get_data(as_text=True)) == secret


def test_enrolling_needs_a_recent_sign_in(app, viewer_client, viewer_user, db, monkeypatch):
    start = webapp.auth.now()
    viewer_client.get("/account/mfa")
    secret = pending_secret(viewer_client)
    at_minutes(monkeypatch, 11, start)
    token = csrf_token(viewer_client, "/account/mfa")
    stale = viewer_client.post(
        "/account/mfa/enable",
        data={"csrf_token": token, "code": totp_code(secret)},
        headers={"Referer": "http://localhost/account/mfa"},
    )
    assert stale.status_code == 303
    assert stale.headers["Location"] == "/account/reauthenticate?next=/account/mfa"
    db.session.expire_all()
    assert not db.session.get(User, viewer_user.id).has_mfa
    confirmed = viewer_client.post(
        "/account/reauthenticate?next=/account/mfa",
        data={"password": PASSWORD, "csrf_token": token},
    )
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/account/mfa"
    enrolled = viewer_client.post(
        "/account/mfa/enable", data={"csrf_token": token, "code": totp_code(secret)}
    )
    assert enrolled.status_code == 201


def test_forced_enrolment_late_after_sign_in_goes_through_reauthentication(
    app, admin_client, admin_user, db, monkeypatch
):
    """The enrolment gate lets the re-authentication form through (else: a loop)."""
    monkeypatch.setitem(app.config, "MFA_REQUIRED_FOR_ADMINS", True)
    start = webapp.auth.now()
    at_minutes(monkeypatch, 11, start)
    assert admin_client.get("/features").headers["Location"] == "/account/mfa"
    assert admin_client.get("/account/mfa").status_code == 200
    secret = pending_secret(admin_client)
    token = csrf_token(admin_client, "/account/mfa")
    stale = admin_client.post("/account/mfa/enable", data={"csrf_token": token, "code": "1"})
    assert stale.status_code == 303
    assert stale.headers["Location"].startswith("/account/reauthenticate")
    assert admin_client.get("/account/reauthenticate").status_code == 200
    confirmed = admin_client.post(
        "/account/reauthenticate", data={"password": PASSWORD, "csrf_token": token}
    )
    assert confirmed.status_code == 302
    enrolled = admin_client.post(
        "/account/mfa/enable", data={"csrf_token": token, "code": totp_code(secret)}
    )
    assert enrolled.status_code == 201
    assert admin_client.get("/features").status_code == 200


def test_regenerating_recovery_codes_and_removing_mfa_need_a_recent_sign_in(
    app, viewer_user, db, monkeypatch
):
    secret = enrol_mfa(viewer_user)
    client = new_client(app)
    sign_in(client, viewer_user.email)
    token = csrf_token(client, "/login")
    client.post("/login/mfa", data={"code": totp_code(secret), "csrf_token": token})
    at_minutes(monkeypatch, 11, webapp.auth.now())
    token = csrf_token(client, "/account/mfa")
    for url in ("/account/mfa/recovery-codes", "/account/mfa/disable"):
        response = client.post(url, data={"csrf_token": token})
        assert response.status_code == 303, url
        assert response.headers["Location"].startswith("/account/reauthenticate")
    db.session.expire_all()
    assert db.session.get(User, viewer_user.id).has_mfa


def test_an_admins_mfa_reset_ends_the_users_sessions(app, admin_client, viewer_user, db):
    secret = enrol_mfa(viewer_user)
    viewer = new_client(app)
    sign_in(viewer, viewer_user.email)
    token = csrf_token(viewer, "/login")
    viewer.post("/login/mfa", data={"code": totp_code(secret), "csrf_token": token})
    assert viewer.get("/").status_code == 200
    admin_client.post(
        f"/users/{viewer_user.id}/reset-mfa", data={"csrf_token": csrf_token(admin_client, "/")}
    )
    assert viewer.get("/").status_code == 302  # signed out
    assert admin_client.get("/").status_code == 200
    db.session.expire_all()
    count = db.session.scalar(
        select(func.count()).select_from(UserSession).where(UserSession.user_id == viewer_user.id)
    )
    assert count == 0


# --- 2: creating an admin and activating a user need re-authentication ------------------


def test_creating_an_admin_needs_a_recent_sign_in(admin_client, db, monkeypatch):
    at_minutes(monkeypatch, 11, webapp.auth.now())
    token = csrf_token(admin_client, "/users")
    form = {"email": "new-admin@example.com", "role": "platform_admin", "csrf_token": token}
    stale = admin_client.post("/users", data=form, headers={"Referer": "http://localhost/users"})
    assert stale.status_code == 303
    assert stale.headers["Location"] == "/account/reauthenticate?next=/users"
    htmx = admin_client.post(
        "/users",
        data=form,
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/users"},
    )
    assert htmx.status_code == 401
    assert htmx.headers["HX-Redirect"] == "/account/reauthenticate?next=/users"
    assert db.session.scalar(select(User).where(User.email == form["email"])) is None
    # A viewer account needs none; an admin one does after confirming.
    viewer = {**form, "email": "new-viewer@example.com", "role": "viewer"}
    assert admin_client.post("/users", data=viewer).status_code == 302
    admin_client.post("/account/reauthenticate", data={"password": PASSWORD, "csrf_token": token})
    assert admin_client.post("/users", data=form).status_code == 302


def test_activating_a_user_needs_a_recent_sign_in(admin_client, viewer_user, db, monkeypatch):
    viewer_user.is_active_user = False
    _db.session.commit()
    at_minutes(monkeypatch, 11, webapp.auth.now())
    token = csrf_token(admin_client, "/users")
    url = f"/users/{viewer_user.id}/activate"
    stale = admin_client.post(
        url, data={"csrf_token": token}, headers={"Referer": "http://localhost/users"}
    )
    assert stale.status_code == 303
    assert stale.headers["Location"] == "/account/reauthenticate?next=/users"
    db.session.expire_all()
    assert not db.session.get(User, viewer_user.id).is_active_user
    admin_client.post("/account/reauthenticate", data={"password": PASSWORD, "csrf_token": token})
    assert admin_client.post(url, data={"csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, viewer_user.id).is_active_user


# --- 3: a password change is no re-authentication -------------------------------------


def test_changing_the_password_does_not_count_as_reauthentication(
    app, admin_user, viewer_user, db, monkeypatch
):
    secret = enrol_mfa(admin_user)
    enrol_mfa(viewer_user)
    client = new_client(app)
    sign_in(client, admin_user.email)
    token = csrf_token(client, "/login")
    assert client.post("/login/mfa", data={"code": totp_code(secret), "csrf_token": token})
    db.session.expire_all()
    started = db.session.scalars(select(UserSession)).one().started_at
    at_minutes(monkeypatch, 11, webapp.auth.now())
    assert change_password(client).status_code == 302  # password only, no second factor
    response = client.post(
        f"/users/{viewer_user.id}/reset-mfa",
        data={"csrf_token": csrf_token(client, "/")},
        headers={"Referer": "http://localhost/users"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/account/reauthenticate?next=/users"
    db.session.expire_all()
    assert db.session.get(User, viewer_user.id).has_mfa
    # The session goes on under a new token, with its start (absolute lifetime) kept.
    record = db.session.scalars(select(UserSession)).one()
    assert record.started_at == started


# --- 7: one budget for second-factor codes ---------------------------------------------


def test_sign_in_codes_and_reauthentication_codes_share_one_budget(app, admin_user, db):
    secret = enrol_mfa(admin_user)
    client = new_client(app)
    sign_in(client, admin_user.email)
    token = csrf_token(client, "/login")
    client.post("/login/mfa", data={"code": totp_code(secret), "csrf_token": token})  # 1
    token = csrf_token(client, "/")
    for _ in range(9):  # 2..10: right password, wrong code
        wrong = {"password": PASSWORD, "code": "000000", "csrf_token": token}
        assert client.post("/account/reauthenticate", data=wrong).status_code == 401
    other = new_client(app)
    sign_in(other, admin_user.email)
    token = csrf_token(other, "/login")
    response = other.post("/login/mfa", data={"code": "000000", "csrf_token": token})
    assert response.status_code == 429 and "Retry-After" in response.headers
    # And the other way round: re-authentication is over the same budget now.
    token = csrf_token(client, "/")
    again = client.post(
        "/account/reauthenticate",
        data={"password": PASSWORD, "code": totp_code(secret), "csrf_token": token},
    )
    assert again.status_code == 429


# --- 5: IPv6 clients count by their /64 ------------------------------------------------


def from_address(app, address: str):
    client = new_client(app)
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_per_address_sign_in_limit_counts_an_ipv6_client_by_its_64(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_FAILURES_PER_ADDRESS", "5 per 15 minutes")
    for host in range(1, 6):  # a new address of the same /64 for every guess
        client = from_address(app, f"2001:db8:aa:bb::{host:x}")
        assert sign_in(client, f"user{host}@example.com", "wrong password!").status_code == 401
    hopping = from_address(app, "2001:db8:aa:bb:ffff::9")
    response = sign_in(hopping, "user9@example.com", "wrong password!")
    assert response.status_code == 429
    neighbour = from_address(app, "2001:db8:aa:bc::1")  # another /64
    assert sign_in(neighbour, "user9@example.com", "wrong password!").status_code == 401
    # The audit log: one failure row per /64 and window, and one throttled row, counted.
    rows = db.session.scalars(select(AuditLog).order_by(AuditLog.created_at)).all()
    failed = [row for row in rows if row.action == "auth.login_failed"]
    throttled = [row for row in rows if row.action == "auth.login_throttled"]
    assert len(failed) == 2 and len(throttled) == 1
    counts = repeated_event_counts(
        rows, timedelta(minutes=app.config["AUDIT_REPEAT_WINDOW_MINUTES"])
    )
    assert [counts[row.id] for row in failed] == [5, 1]


def test_the_code_step_s_address_limit_counts_an_ipv6_client_by_its_64(
    app, viewer_user, db, monkeypatch
):
    monkeypatch.setitem(app.config, "LOGIN_FAILURES_PER_ADDRESS", "3 per 15 minutes")
    enrol_mfa(viewer_user)
    statuses = []
    for host in range(1, 5):
        client = from_address(app, f"2001:db8:{host:x}::1")  # passwords from other /64s
        assert sign_in(client, viewer_user.email).status_code == 302
        token = csrf_token(client, "/login")
        client.environ_base["REMOTE_ADDR"] = f"2001:db8:cc:dd::{host:x}"  # codes from one
        statuses.append(
            client.post("/login/mfa", data={"code": "000000", "csrf_token": token}).status_code
        )
    assert statuses == [401, 401, 401, 429]


def test_the_audit_page_shows_how_many_failed_sign_ins_a_row_stands_for(client, admin_user, db):
    for number in range(4):
        sign_in(client, f"guess{number}@example.com", "wrong password!")
    sign_in(client, admin_user.email)
    html = client.get("/audit").get_data(as_text=True)
    assert "×4</small>" in html
