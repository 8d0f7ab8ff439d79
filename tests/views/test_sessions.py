"""Sessions end when they should: sign-out, password change, deactivation, idle and
absolute timeouts — and a cookie copied before cannot bring them back."""

from __future__ import annotations

import pytest

import webapp.auth
from tests.conftest import PASSWORD, IsolatedClient, csrf_token, sign_in
from webapp.services.core.actor import Actor
from webapp.services.identity.users import reset_password, set_active


def session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def client_with_cookie(app, value: str):
    app.test_client_class = IsolatedClient
    other = app.test_client()
    other.set_cookie("session", value)
    return other


def test_a_cookie_copied_before_sign_out_is_refused_after(app, admin_client):
    stolen = session_cookie(admin_client)
    assert client_with_cookie(app, stolen).get("/").status_code == 200
    admin_client.post("/logout", data={"csrf_token": csrf_token(admin_client, "/")})
    assert client_with_cookie(app, stolen).get("/").status_code == 302


def test_sign_in_starts_a_new_session(client, admin_user):
    client.get("/login")
    before = session_cookie(client)
    sign_in(client, admin_user.email)
    after = session_cookie(client)
    assert after != before
    with client.session_transaction() as session:
        assert "_user_id" in session and "signed_in_at" in session


def test_password_reset_by_an_admin_ends_the_users_sessions(app, viewer_client, viewer_user, db):
    assert viewer_client.get("/").status_code == 200
    reset_password(Actor.cli(), viewer_user.id)
    assert viewer_client.get("/").status_code == 302


def test_changing_ones_password_keeps_this_session_and_ends_the_others(
    app, viewer_client, viewer_user
):
    other_device = client_with_cookie(app, session_cookie(viewer_client))
    response = viewer_client.post(
        "/account/password",
        data={
            "csrf_token": csrf_token(viewer_client, "/"),
            "current_password": PASSWORD,
            "new_password": "my new long passphrase",
            "confirm_password": "my new long passphrase",
        },
    )
    assert response.status_code == 302
    assert viewer_client.get("/").status_code == 200
    assert other_device.get("/").status_code == 302
    fresh = client_with_cookie(app, "")
    assert sign_in(fresh, viewer_user.email, "my new long passphrase").status_code == 302


def test_deactivation_ends_the_users_sessions(viewer_client, viewer_user, admin_user):
    set_active(Actor(admin_user.id), viewer_user.id, False)
    assert viewer_client.get("/").status_code == 302


@pytest.mark.parametrize(
    "minutes_later, still_signed_in",
    [(29, True), (31, False)],
)
def test_idle_timeout(monkeypatch, admin_client, minutes_later, still_signed_in):
    start = webapp.auth.now()
    monkeypatch.setattr(webapp.auth, "now", lambda: start + minutes_later * 60)
    expected = 200 if still_signed_in else 302
    assert admin_client.get("/").status_code == expected


def test_absolute_timeout_even_when_active(monkeypatch, admin_client):
    start = webapp.auth.now()
    for step in range(1, 36):  # a request every 20 minutes keeps the idle clock fresh
        monkeypatch.setattr(webapp.auth, "now", lambda s=step: start + s * 20 * 60)
        assert admin_client.get("/").status_code == 200
    monkeypatch.setattr(webapp.auth, "now", lambda: start + 12 * 3600 + 60)
    assert admin_client.get("/").status_code == 302


def test_expired_session_answers_htmx_with_a_client_redirect(monkeypatch, admin_client):
    start = webapp.auth.now()
    monkeypatch.setattr(webapp.auth, "now", lambda: start + 31 * 60)
    response = admin_client.get("/audit", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/audit"


def test_timeouts_are_configurable(app):
    assert app.config["SESSION_IDLE_MINUTES"] == 30
    assert app.config["SESSION_ABSOLUTE_HOURS"] == 12
