"""Signing in and out through the login form."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, csrf_token, sign_in
from webapp.models import AuditLog


def audit_actions(db) -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog.action).order_by(AuditLog.created_at)))


def test_login_page_has_the_form_fields(client):
    page = client.get("/login").get_data(as_text=True)
    for field in ('name="email"', 'name="password"', 'name="csrf_token"'):
        assert field in page


def test_sign_in_redirects_to_the_overview_and_shows_the_user(client, admin_user, db):
    response = sign_in(client, "ADMIN@example.com")  # emails are case-insensitive
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "admin@example.com" in page and "Global Overview" in page
    assert audit_actions(db)[-1] == "auth.login"


@pytest.mark.parametrize(
    "email, password",
    [("admin@example.com", "wrong password!!"), ("nobody@example.com", PASSWORD)],
)
def test_failed_sign_in_says_the_same_for_unknown_email_and_wrong_password(
    client, admin_user, db, email, password
):
    response = sign_in(client, email, password)
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert "Email or password is wrong." in page
    assert client.get("/").status_code == 302  # still signed out
    row = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.login_failed")).one()
    assert row.new_values == {"email": email}


def test_deactivated_user_cannot_sign_in(client, admin_user, db):
    admin_user.is_active_user = False
    db.session.commit()
    assert sign_in(client, admin_user.email).status_code == 401


def test_deactivated_user_is_signed_out_on_next_request(admin_client, admin_user, db):
    assert admin_client.get("/").status_code == 200
    admin_user.is_active_user = False
    db.session.commit()
    assert admin_client.get("/").status_code == 302


def test_sign_in_without_csrf_token_is_refused(client, admin_user):
    client.get("/login")
    response = client.post("/login", data={"email": admin_user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_empty_fields_are_reported(client):
    token = csrf_token(client)
    response = client.post("/login", data={"email": "", "password": "", "csrf_token": token})
    assert response.status_code == 400
    assert "This field is required." in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "next_url, expected",
    [
        ("/budgets", "/budgets"),
        ("/audit?page=2", "/audit?page=2"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_redirect_only_goes_to_paths_on_this_site(client, admin_user, next_url, expected):
    token = csrf_token(client)
    response = client.post(
        "/login",
        query_string={"next": next_url},
        data={"email": admin_user.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_protected_page_sends_anonymous_users_to_login_with_next(client):
    response = client.get("/budgets")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/budgets"


def test_logout_is_a_post_and_ends_the_session(admin_client, db):
    assert admin_client.get("/logout").status_code == 405
    assert admin_client.get("/").status_code == 200  # a GET changed nothing
    token = csrf_token(admin_client, "/")
    response = admin_client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert admin_client.get("/").status_code == 302
    assert audit_actions(db)[-1] == "auth.logout"


def test_logout_without_csrf_token_is_refused(admin_client):
    assert admin_client.post("/logout").status_code == 400
    assert admin_client.get("/").status_code == 200


def test_viewer_may_sign_out(viewer_client):
    token = csrf_token(viewer_client, "/")
    assert viewer_client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert viewer_client.get("/").status_code == 302


def test_session_cookie_is_http_only_and_same_site(client, admin_user):
    response = sign_in(client, admin_user.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
