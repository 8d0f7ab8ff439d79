"""Issue 12, items 7, 13, 15, 16, 17: background polling, session records, the sessions
page, TOTP second factor and re-authentication."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

import webapp.auth
from tests.conftest import (
    PASSWORD,
    IsolatedClient,
    csrf_token,
    enrol_mfa,
    sign_in,
    totp_code,
)
from webapp.extensions import login_manager
from webapp.models import AuditLog, RecoveryCode, User, UserSession
from webapp.services.core.actor import Actor
from webapp.services.identity import mfa

API = "/api/platform/ai-management"
POLL = {"HX-Request": "true", "X-Background-Poll": "1"}


def new_client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


def actions(db) -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog.action).order_by(AuditLog.created_at)))


def at_minutes(monkeypatch, minutes: float, start: float) -> None:
    monkeypatch.setattr(webapp.auth, "now", lambda: start + minutes * 60)


# --- 7: background polling is no activity ---------------------------------------------


def test_background_polling_does_not_keep_the_session_alive(monkeypatch, admin_client):
    start = webapp.auth.now()
    for minute in range(1, 30):  # the overview polls tiles and alerts every minute
        at_minutes(monkeypatch, minute, start)
        assert admin_client.get("/overview/tiles", headers=POLL).status_code == 200
        assert admin_client.get("/overview/alerts", headers=POLL).status_code == 200
    at_minutes(monkeypatch, 31, start)
    response = admin_client.get("/overview/tiles", headers=POLL)
    assert response.status_code == 401 and response.headers["HX-Redirect"].startswith("/login")
    assert admin_client.get("/").status_code == 302


def test_a_person_clicking_keeps_the_session_alive(monkeypatch, admin_client):
    start = webapp.auth.now()
    at_minutes(monkeypatch, 20, start)
    assert admin_client.get("/features", headers={"HX-Request": "true"}).status_code == 200
    at_minutes(monkeypatch, 45, start)
    assert admin_client.get("/").status_code == 200


def test_the_polling_elements_mark_themselves_as_background(admin_client):
    page = admin_client.get("/").get_data(as_text=True)
    assert page.count("""hx-headers='{"X-Background-Poll": "1"}'""") == 2


# --- 13 and 16: session records -------------------------------------------------------


def test_session_protection_promise_is_replaced_by_session_records(app, admin_client, db):
    assert login_manager.session_protection is None
    assert "strong" not in (webapp.auth.__doc__ or "")
    # A copied cookie used from elsewhere shows up in its session's record (the sessions
    # page) with that address and user agent, where it can be ended.
    stolen = new_client(app)
    stolen.set_cookie("session", admin_client.get_cookie("session").value)
    stolen.get("/", headers={"User-Agent": "curl/8"}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    db.session.expire_all()
    record = db.session.scalars(select(UserSession)).one()
    assert (str(record.ip_address), record.user_agent) == ("203.0.113.9", "curl/8")


def test_the_cookie_carries_a_token_and_the_table_only_its_hash(admin_client, db):
    with admin_client.session_transaction() as session:
        token = session["session_token"]
    stored = db.session.scalars(select(UserSession.token_hash)).all()
    assert len(stored) == 1 and token not in stored and len(stored[0]) == 64


def test_sessions_page_lists_sessions_and_ends_one(app, admin_user, db):
    laptop, phone = new_client(app), new_client(app)
    sign_in(laptop, admin_user.email)
    phone.get("/login", headers={"User-Agent": "Phone/1"})
    token = csrf_token(phone)
    phone.post(
        "/login",
        data={"email": admin_user.email, "password": PASSWORD, "csrf_token": token},
        headers={"User-Agent": "Phone/1"},
    )
    page = laptop.get("/account/sessions").get_data(as_text=True)
    assert "Phone/1" in page and "this session" in page
    phone_id = db.session.scalar(select(UserSession.id).where(UserSession.user_agent == "Phone/1"))
    response = laptop.post(
        f"/account/sessions/{phone_id}/end", data={"csrf_token": csrf_token(laptop, "/")}
    )
    assert response.status_code == 302
    assert phone.get("/").status_code == 302  # ended on its next request
    assert laptop.get("/").status_code == 200
    assert "session.end" in actions(db)


def test_end_all_other_sessions(app, viewer_user, db):
    clients = [new_client(app) for _ in range(3)]
    for client in clients:
        assert sign_in(client, viewer_user.email).status_code == 302
    keep = clients[0]
    keep.post("/account/sessions/end-others", data={"csrf_token": csrf_token(keep, "/")})
    assert keep.get("/").status_code == 200
    assert [c.get("/").status_code for c in clients[1:]] == [302, 302]


def test_a_user_cannot_end_someone_elses_session(app, viewer_client, admin_user, db):
    other = new_client(app)
    sign_in(other, admin_user.email)
    admin_session = db.session.scalar(
        select(UserSession.id).where(UserSession.user_id == admin_user.id)
    )
    response = viewer_client.post(
        f"/account/sessions/{admin_session}/end",
        data={"csrf_token": csrf_token(viewer_client, "/")},
    )
    assert response.status_code == 404
    assert other.get("/").status_code == 200


def test_an_admin_ends_a_users_sessions_from_the_users_page(app, admin_client, viewer_user, db):
    viewer = new_client(app)
    sign_in(viewer, viewer_user.email)
    assert "End sessions" in admin_client.get("/users").get_data(as_text=True)
    admin_client.post(
        f"/users/{viewer_user.id}/end-sessions", data={"csrf_token": csrf_token(admin_client, "/")}
    )
    assert viewer.get("/").status_code == 302
    assert admin_client.get("/").status_code == 200
    assert "user.end_sessions" in actions(db)


def test_sign_out_ends_this_session_only(app, viewer_user, db):
    one, two = new_client(app), new_client(app)
    sign_in(one, viewer_user.email)
    sign_in(two, viewer_user.email)
    one.post("/logout", data={"csrf_token": csrf_token(one, "/")})
    assert one.get("/").status_code == 302
    assert two.get("/").status_code == 200


def test_password_change_deletes_the_other_session_records(app, viewer_client, viewer_user, db):
    other = new_client(app)
    sign_in(other, viewer_user.email)
    viewer_client.post(
        "/account/password",
        data={
            "csrf_token": csrf_token(viewer_client, "/"),
            "current_password": PASSWORD,
            "new_password": "my new long passphrase",
            "confirm_password": "my new long passphrase",
        },
    )
    db.session.expire_all()
    count = db.session.scalar(
        select(func.count()).select_from(UserSession).where(UserSession.user_id == viewer_user.id)
    )
    assert count == 1


# --- 15: TOTP ----------------------------------------------------------------------------


def test_enrolment_shows_a_local_svg_qr_code_and_gives_ten_recovery_codes(viewer_client, db):
    page = viewer_client.get("/account/mfa").get_data(as_text=True)
    assert "<svg" in page and "<script" not in page.split("</head>")[1]
    with viewer_client.session_transaction() as session:
        secret = mfa.open_pending_secret(session["mfa_enrolment_secret"])  # kept encrypted
    response = viewer_client.post(
        "/account/mfa/enable",
        data={"csrf_token": csrf_token(viewer_client, "/"), "code": totp_code(secret)},
    )
    assert response.status_code == 201
    user = db.session.scalar(select(User).where(User.email == "viewer@example.com"))
    db.session.refresh(user)
    assert user.has_mfa and secret not in (user.mfa_secret or "")  # encrypted at rest
    assert mfa.decrypt_secret(user.mfa_secret) == secret
    codes = db.session.scalars(select(RecoveryCode.code_hash)).all()
    assert len(codes) == 10
    assert "mfa.enable" in actions(db)


def _password_step(client, email):
    response = sign_in(client, email)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login/mfa")
    return csrf_token(client, "/login")


def test_sign_in_with_mfa_needs_the_code_and_refuses_its_replay(app, viewer_user, db):
    secret = enrol_mfa(viewer_user)
    client = new_client(app)
    token = _password_step(client, viewer_user.email)
    assert client.get("/").status_code == 302  # not signed in yet
    code = totp_code(secret)
    response = client.post("/login/mfa", data={"code": code, "csrf_token": token})
    assert response.status_code == 302 and client.get("/").status_code == 200
    thief = new_client(app)
    token = _password_step(thief, viewer_user.email)
    assert thief.post("/login/mfa", data={"code": code, "csrf_token": token}).status_code == 401
    assert "auth.mfa_failed" in actions(db)


def test_a_recovery_code_works_once(app, viewer_user, db):
    enrol_mfa(viewer_user)
    codes = mfa.regenerate_recovery_codes(Actor.cli(), viewer_user)
    first, second = new_client(app), new_client(app)
    token = _password_step(first, viewer_user.email)
    assert first.post("/login/mfa", data={"code": codes[0], "csrf_token": token}).status_code == 302
    token = _password_step(second, viewer_user.email)
    assert (
        second.post("/login/mfa", data={"code": codes[0], "csrf_token": token}).status_code == 401
    )
    assert "mfa.recovery_code_used" in actions(db)


def test_one_code_used_in_parallel_signs_in_only_once(app, viewer_user, db):
    secret = enrol_mfa(viewer_user)
    clients = [new_client(app) for _ in range(6)]
    tokens = [_password_step(c, viewer_user.email) for c in clients]
    code = totp_code(secret)
    barrier = threading.Barrier(len(clients))
    results: list[int] = []

    def attempt(client, token):
        barrier.wait()
        results.append(
            client.post("/login/mfa", data={"code": code, "csrf_token": token}).status_code
        )

    threads = [
        threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [302] + [401] * 5


def test_codes_of_the_neighbouring_steps_are_accepted_others_not(db, viewer_user):
    secret = mfa.new_secret()
    now = time.time()
    assert mfa.matching_step(secret, totp_code(secret, now - 30), now) is not None
    assert mfa.matching_step(secret, totp_code(secret, now + 30), now) is not None
    assert mfa.matching_step(secret, totp_code(secret, now - 95), now) is None


def test_code_attempts_are_throttled_like_passwords(app, viewer_user, db):
    enrol_mfa(viewer_user)
    client = new_client(app)
    token = _password_step(client, viewer_user.email)
    statuses = [
        client.post("/login/mfa", data={"code": "000000", "csrf_token": token}).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429


def test_admins_without_mfa_are_sent_to_enrolment_when_required(app, admin_client, monkeypatch):
    monkeypatch.setitem(app.config, "MFA_REQUIRED_FOR_ADMINS", True)
    response = admin_client.get("/features")
    assert response.status_code == 302 and response.headers["Location"] == "/account/mfa"
    assert admin_client.get("/account/mfa").status_code == 200
    api = admin_client.get(f"{API}/features")
    assert api.status_code == 403 and api.get_json()["code"] == "mfa_enrolment_required"


def test_viewers_may_go_without_mfa_when_required_for_admins(app, viewer_client, monkeypatch):
    monkeypatch.setitem(app.config, "MFA_REQUIRED_FOR_ADMINS", True)
    assert viewer_client.get("/features").status_code == 200


def test_mfa_required_for_admins_defaults_on_in_production_only(monkeypatch):
    from webapp.config import settings_from_environment

    monkeypatch.delenv("MFA_REQUIRED_FOR_ADMINS", raising=False)
    monkeypatch.setenv("AIPM_ENV", "development")
    assert settings_from_environment({"SECRET_KEY": "x"})["MFA_REQUIRED_FOR_ADMINS"] is False
    monkeypatch.setenv("AIPM_ENV", "production")
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    settings = settings_from_environment({"SECRET_KEY": "x" * 40})
    assert settings["MFA_REQUIRED_FOR_ADMINS"] is True


def test_an_admin_resets_a_users_mfa(admin_client, viewer_user, db):
    enrol_mfa(viewer_user)
    response = admin_client.post(
        f"/users/{viewer_user.id}/reset-mfa", data={"csrf_token": csrf_token(admin_client, "/")}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert not db.session.get(User, viewer_user.id).has_mfa
    assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    assert "user.reset_mfa" in actions(db)


def test_removing_ones_own_mfa_is_audited(app, viewer_user, db):
    secret = enrol_mfa(viewer_user)
    client = new_client(app)
    token = _password_step(client, viewer_user.email)
    client.post("/login/mfa", data={"code": totp_code(secret), "csrf_token": token})
    client.post("/account/mfa/disable", data={"csrf_token": csrf_token(client, "/")})
    db.session.expire_all()
    assert not db.session.get(User, viewer_user.id).has_mfa
    assert "mfa.disable" in actions(db)


# --- 17: re-authentication ------------------------------------------------------------


SENSITIVE = [
    ("users.change_role", lambda v: (f"/users/{v.id}/role", {"role": "platform_admin"})),
    ("users.reset_password", lambda v: (f"/users/{v.id}/reset-password", {})),
    ("users.reset_mfa", lambda v: (f"/users/{v.id}/reset-mfa", {})),
    ("users.deactivate", lambda v: (f"/users/{v.id}/deactivate", {})),
]


@pytest.mark.parametrize("name, build", SENSITIVE, ids=[s[0] for s in SENSITIVE])
def test_sensitive_actions_need_a_recent_sign_in(
    monkeypatch, admin_client, viewer_user, db, name, build
):
    start = webapp.auth.now()
    at_minutes(monkeypatch, 11, start)
    url, data = build(viewer_user)
    before = len(actions(db))
    response = admin_client.post(
        url,
        data={**data, "csrf_token": csrf_token(admin_client, "/")},
        headers={"Referer": "http://localhost/users"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/account/reauthenticate?next=/users"
    assert len(actions(db)) == before  # nothing happened
    htmx = admin_client.post(
        url,
        data={**data, "csrf_token": csrf_token(admin_client, "/")},
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/users"},
    )
    assert htmx.status_code == 401
    assert htmx.headers["HX-Redirect"] == "/account/reauthenticate?next=/users"
    # Confirming the password makes the action possible again for ten minutes.
    confirmed = admin_client.post(
        "/account/reauthenticate?next=/users",
        data={"password": PASSWORD, "csrf_token": csrf_token(admin_client, "/")},
    )
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/users"
    again = admin_client.post(url, data={**data, "csrf_token": csrf_token(admin_client, "/")})
    assert again.status_code in (200, 302)
    assert actions(db)[-1].startswith("user.")


def test_within_ten_minutes_of_sign_in_no_reauthentication(monkeypatch, admin_client, viewer_user):
    start = webapp.auth.now()
    at_minutes(monkeypatch, 9, start)
    response = admin_client.post(
        f"/users/{viewer_user.id}/reset-password",
        data={"csrf_token": csrf_token(admin_client, "/")},
    )
    assert response.status_code == 302 and response.location == "/users"


def test_reauthentication_needs_the_second_factor_when_enrolled(monkeypatch, app, admin_user, db):
    secret = enrol_mfa(admin_user)
    client = new_client(app)
    token = _password_step(client, admin_user.email)
    client.post("/login/mfa", data={"code": totp_code(secret), "csrf_token": token})
    start = webapp.auth.now()
    at_minutes(monkeypatch, 11, start)
    token = csrf_token(client, "/")
    assert (
        client.post(
            "/account/reauthenticate", data={"password": PASSWORD, "csrf_token": token}
        ).status_code
        == 401
    )
    code = totp_code(secret, start + 11 * 60)
    monkeypatch.setattr(time, "time", lambda: start + 11 * 60)
    ok = client.post(
        "/account/reauthenticate", data={"password": PASSWORD, "code": code, "csrf_token": token}
    )
    assert ok.status_code == 302


def test_the_api_answers_401_with_a_code(monkeypatch, admin_client, db):
    from tests import factories

    provider = factories.provider("openai")
    db.session.commit()
    token = csrf_token(admin_client, "/")
    start = webapp.auth.now()
    at_minutes(monkeypatch, 11, start)
    headers = {"X-CSRFToken": token}
    response = admin_client.put(
        f"{API}/providers/{provider.id}",
        json={"health_check": {"url": "https://status.example.com/health"}},
        headers=headers,
    )
    assert response.status_code == 401
    assert response.get_json()["code"] == "reauthentication_required"
    # Other changes of the provider need no re-authentication.
    unrelated = admin_client.put(
        f"{API}/providers/{provider.id}", json={"display_name": "Open AI"}, headers=headers
    )
    assert unrelated.status_code == 200


def test_the_provider_page_needs_reauthentication_only_when_the_url_changes(
    monkeypatch, admin_client, db
):
    from tests import factories

    provider = factories.provider("openai")
    db.session.commit()
    page = admin_client.get(f"/providers/{provider.id}").get_data(as_text=True)
    assert page
    start = webapp.auth.now()
    at_minutes(monkeypatch, 11, start)
    form = {
        "csrf_token": csrf_token(admin_client, "/"),
        "name": provider.name,
        "display_name": provider.display_name,
        "status": provider.status,
        "api_endpoint": provider.api_endpoint or "",
        "health_check_url": "https://status.example.com/health",
        "health_check_timeout": "",
    }
    response = admin_client.post(f"/providers/{provider.id}", data=form)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/account/reauthenticate")
