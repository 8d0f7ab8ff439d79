"""The user management page, as an admin uses it."""

from __future__ import annotations

import contextlib

from sqlalchemy import select

from tests.conftest import PASSWORD, csrf_token, sign_in
from webapp.models import User


def post(client, url, **data):
    return client.post(url, data={"csrf_token": csrf_token(client, "/"), **data})


def test_admin_sees_users_and_the_nav_link(admin_client, viewer_user):
    page = admin_client.get("/users").get_data(as_text=True)
    assert "viewer@example.com" in page and "admin@example.com" in page
    assert 'href="/users"' in admin_client.get("/").get_data(as_text=True)


def test_viewer_has_no_user_management(viewer_client):
    assert viewer_client.get("/users").status_code == 403
    assert 'href="/users"' not in viewer_client.get("/").get_data(as_text=True)


def shown_password(client, response) -> str:
    """Post/redirect/get: the POST redirects to /users, which shows the password once."""
    assert response.status_code == 302 and response.location == "/users"
    page = client.get("/users").get_data(as_text=True)
    return page.split('<code class="secret">')[1].split("</code>")[0]


def test_creating_a_user_shows_the_password_once_and_it_works(app, admin_client, db):
    response = post(admin_client, "/users", email="New@Example.com", role="viewer")
    assert response.status_code == 302 and response.location == "/users"
    cookie = response.headers.get("Set-Cookie", "")
    page = admin_client.get("/users").get_data(as_text=True)
    assert "Password for new@example.com" in page
    password = page.split('<code class="secret">')[1].split("</code>")[0]
    assert password not in cookie  # encrypted on its way to the next page
    import base64
    import zlib

    payload = cookie.split("session=", 1)[1].split(";")[0].lstrip(".").split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    with contextlib.suppress(zlib.error):
        decoded = zlib.decompress(decoded)
    assert password.encode() not in decoded
    assert password not in admin_client.get("/users").get_data(as_text=True)  # only once
    other = app.test_client()
    assert sign_in(other, "new@example.com", password).status_code == 302


def test_invalid_new_user_shows_the_field_error_and_saves_nothing(admin_client, db):
    response = post(admin_client, "/users", email="nope", role="viewer")
    assert response.status_code == 400
    assert "Email is not a valid email address" in response.get_data(as_text=True)
    assert db.session.scalar(select(User).where(User.email == "nope")) is None


def test_duplicate_user_is_a_conflict(admin_client, viewer_user):
    response = post(admin_client, "/users", email="viewer@example.com", role="viewer")
    assert response.status_code == 409
    assert "Email is already used by another user" in response.get_data(as_text=True)


def test_role_change_deactivate_and_activate(admin_client, viewer_user, db):
    response = post(admin_client, f"/users/{viewer_user.id}/role", role="platform_admin")
    assert response.status_code == 302
    assert "viewer@example.com is now a platform admin" in admin_client.get("/users").get_data(
        as_text=True
    )
    assert post(admin_client, f"/users/{viewer_user.id}/deactivate").status_code == 302
    db.session.expire_all()
    assert not db.session.get(User, viewer_user.id).is_active_user
    assert post(admin_client, f"/users/{viewer_user.id}/activate").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, viewer_user.id).is_active_user


def test_admin_cannot_demote_or_deactivate_themself_through_the_page(admin_client, admin_user, db):
    response = post(admin_client, f"/users/{admin_user.id}/role", role="viewer")
    assert response.status_code == 302 and response.location == "/users"  # a reload repeats nothing
    assert "your own admin role" in admin_client.get("/users").get_data(as_text=True)
    response = post(admin_client, f"/users/{admin_user.id}/deactivate")
    assert response.status_code == 302 and response.location == "/users"
    assert "Not deactivated: " in admin_client.get("/users").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, admin_user.id).role == "platform_admin"


def test_reset_password_shows_a_new_password_and_the_old_one_stops_working(
    app, admin_client, viewer_user
):
    response = post(admin_client, f"/users/{viewer_user.id}/reset-password")
    assert response.status_code == 302 and response.location == "/users"
    page = admin_client.get("/users").get_data(as_text=True)
    assert "Password for viewer@example.com" in page
    assert "The password of viewer@example.com is reset" in page
    assert "Password for" not in admin_client.get("/users").get_data(as_text=True)  # once
    other = app.test_client()
    assert sign_in(other, viewer_user.email, PASSWORD).status_code == 401


def test_unknown_user_is_404(admin_client):
    assert post(admin_client, "/users/not-a-uuid/activate").status_code == 404


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, db, monkeypatch):
    """Issue 12 item 8: on SQLite both demotions went through (no admin left); on
    PostgreSQL the loser deadlocked into a 500. Now one wins and the other answers 409."""
    import threading
    import time

    from tests.conftest import IsolatedClient, make_user
    from webapp.models import ROLE_ADMIN
    from webapp.services.identity import users

    first, second = make_user("a1@example.com", ROLE_ADMIN), make_user("a2@example.com", ROLE_ADMIN)
    targets = {"a1@example.com": second.id, "a2@example.com": first.id}
    real_count = users._other_active_admins

    def slow_count(user_id):  # widen the window between the check and the commit
        count = real_count(user_id)
        time.sleep(0.5)
        return count

    monkeypatch.setattr(users, "_other_active_admins", slow_count)
    app.test_client_class = IsolatedClient
    clients = {}
    for email in targets:
        clients[email] = app.test_client()
        assert sign_in(clients[email], email).status_code == 302
    tokens = {email: csrf_token(c, "/") for email, c in clients.items()}
    barrier = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def demote(email):
        barrier.wait()
        response = clients[email].post(
            f"/users/{targets[email]}/role", data={"role": "viewer", "csrf_token": tokens[email]}
        )
        statuses[email] = response.status_code

    threads = [threading.Thread(target=demote, args=(email,)) for email in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses.values()) == [302, 302]  # the loser is told on the next page
    db.session.expire_all()
    roles = db.session.scalars(select(User.role).where(User.id.in_(targets.values()))).all()
    assert sorted(roles) == ["platform_admin", "viewer"]


def test_a_generated_password_must_be_changed_before_anything_else(app, admin_client, db):
    """Issue 12 item 11: pages redirect, htmx gets HX-Redirect, the API a 403 with a code."""
    from tests.conftest import IsolatedClient

    password = shown_password(
        admin_client, post(admin_client, "/users", email="new@example.com", role="viewer")
    )
    app.test_client_class = IsolatedClient
    user = app.test_client()
    assert sign_in(user, "new@example.com", password).status_code == 302
    for path in ("/", "/features", "/audit"):
        response = user.get(path)
        assert response.status_code == 302 and response.location == "/account/password"
    response = user.get("/", headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"] == "/account/password"
    response = user.get("/api/platform/ai-management/features")
    assert response.status_code == 403
    assert response.get_json()["code"] == "password_change_required"
    form = user.get("/account/password")
    assert form.status_code == 200 and "generated for you" in form.get_data(as_text=True)
    new = "a passphrase of my own"
    response = user.post(
        "/account/password",
        data={
            "csrf_token": csrf_token(user, "/account/password"),
            "current_password": password,
            "new_password": new,
            "confirm_password": new,
        },
    )
    assert response.status_code == 302
    assert user.get("/").status_code == 200
    assert user.get("/api/platform/ai-management/features").status_code == 200


def test_a_reset_password_must_be_changed_too(app, admin_client, viewer_user, db):
    password = shown_password(
        admin_client, post(admin_client, f"/users/{viewer_user.id}/reset-password")
    )
    other = app.test_client()
    assert sign_in(other, viewer_user.email, password).status_code == 302
    assert other.get("/").location == "/account/password"


def test_a_marked_up_email_is_refused_with_the_reason(admin_client, db):
    response = post(admin_client, "/users", email="<script>alert(1)</script>@x.com", role="viewer")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Email is not a valid email address: " in page
    assert "<script>alert(1)" not in page
    assert db.session.scalar(select(User).where(User.email.like("%script%"))) is None


def test_a_handed_over_password_waits_for_its_own_page(admin_client, viewer_user):
    """The encrypted handover names the page it is for: another page does not take it."""
    post(admin_client, f"/users/{viewer_user.id}/reset-password")
    assert 'id="new-key-secret"' not in admin_client.get("/api-keys").get_data(as_text=True)
    assert "Password for viewer@example.com" in admin_client.get("/users").get_data(as_text=True)
