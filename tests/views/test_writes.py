"""Every write route: exactly one audit row when it succeeds, none (beside its own
failure record) when it fails, and nothing at all without a valid CSRF token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import PASSWORD, csrf_token, make_user
from tests.views.test_access import ROUTES
from webapp.models import AuditLog, Feature, User

NEW_PASSWORD = "a brand new passphrase"
API = "/api/platform/ai-management"


@dataclass
class World:
    admin: User
    viewer: User
    feature: Feature


@pytest.fixture
def world(db, admin_user) -> World:
    viewer = make_user("viewer@example.com", "viewer")
    feature = factories.feature("chatbot")
    db.session.commit()
    return World(admin_user, viewer, feature)


# endpoint -> (valid request, expected action), (failing request, failure record or None)
# A request is (method, url, kwargs) built from the world.
CASES = {
    "auth.login": (
        lambda w: ("POST", "/login", {"data": {"email": w.admin.email, "password": PASSWORD}}),
        "auth.login",
        lambda w: ("POST", "/login", {"data": {"email": w.admin.email, "password": "wrong!"}}),
        "auth.login_failed",
    ),
    "auth.logout": (
        lambda w: ("POST", "/logout", {}),
        "auth.logout",
        None,  # nothing to get wrong but the CSRF token (tested below)
        None,
    ),
    "auth.change_password": (
        lambda w: (
            "POST",
            "/account/password",
            {
                "data": {
                    "current_password": PASSWORD,
                    "new_password": NEW_PASSWORD,
                    "confirm_password": NEW_PASSWORD,
                }
            },
        ),
        "user.change_password",
        lambda w: (
            "POST",
            "/account/password",
            {
                "data": {
                    "current_password": "not it",
                    "new_password": NEW_PASSWORD,
                    "confirm_password": NEW_PASSWORD,
                }
            },
        ),
        None,
    ),
    "api.put_feature": (
        lambda w: ("PUT", f"{API}/features/{w.feature.id}", {"json": {"status": "maintenance"}}),
        "feature.update",
        lambda w: ("PUT", f"{API}/features/{w.feature.id}", {"json": {"status": "gone"}}),
        None,
    ),
    "users.create": (
        lambda w: ("POST", "/users", {"data": {"email": "new@example.com", "role": "viewer"}}),
        "user.create",
        lambda w: ("POST", "/users", {"data": {"email": "not an email", "role": "viewer"}}),
        None,
    ),
    "users.change_role": (
        lambda w: ("POST", f"/users/{w.viewer.id}/role", {"data": {"role": "platform_admin"}}),
        "user.change_role",
        lambda w: ("POST", f"/users/{w.admin.id}/role", {"data": {"role": "viewer"}}),
        None,
    ),
    "users.deactivate": (
        lambda w: ("POST", f"/users/{w.viewer.id}/deactivate", {}),
        "user.deactivate",
        lambda w: ("POST", f"/users/{w.admin.id}/deactivate", {}),
        None,
    ),
    "users.activate": (
        lambda w: ("POST", f"/users/{w.viewer.id}/activate", {}),
        "user.activate",
        lambda w: ("POST", f"/users/{uuid.uuid4()}/activate", {}),
        None,
    ),
    "users.reset_password": (
        lambda w: ("POST", f"/users/{w.viewer.id}/reset-password", {}),
        "user.reset_password",
        lambda w: ("POST", f"/users/{uuid.uuid4()}/reset-password", {}),
        None,
    ),
}

WRITE_ENDPOINTS = sorted({e for e, m, _ in ROUTES if m not in ("GET",) and e != "static"})


def test_every_write_route_has_a_case():
    assert sorted(CASES) == WRITE_ENDPOINTS


def new_audit_actions(db, since: int) -> list[str]:
    db.session.expire_all()
    actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.created_at)).all()
    return list(actions[since:])


def audit_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditLog))


def prepare(endpoint: str, client, world: World):
    """Sign in (except for sign-in itself) and set the stage the endpoint needs."""
    from tests.conftest import sign_in

    if endpoint == "users.activate":
        world.viewer.is_active_user = False
        from webapp.extensions import db

        db.session.commit()
    if endpoint != "auth.login":
        assert sign_in(client, world.admin.email).status_code == 302


def send(client, request, with_token: bool = True):
    method, url, kwargs = request
    kwargs = {
        key: dict(value) if isinstance(value, dict) else value for key, value in kwargs.items()
    }
    token = csrf_token(client, "/login" if url == "/login" else "/")
    if with_token:
        if "json" in kwargs:
            kwargs["headers"] = {"X-CSRFToken": token}
        else:
            kwargs.setdefault("data", {})["csrf_token"] = token
    return client.open(url, method=method, **kwargs)


@pytest.mark.parametrize("endpoint", sorted(CASES))
def test_a_successful_write_leaves_exactly_one_audit_row(client, db, world, endpoint):
    make_request, action, _, _ = CASES[endpoint]
    prepare(endpoint, client, world)
    before = audit_count(db)
    response = send(client, make_request(world))
    assert response.status_code < 400, (endpoint, response.status_code)
    assert new_audit_actions(db, before) == [action]


@pytest.mark.parametrize("endpoint", [e for e in sorted(CASES) if CASES[e][2]])
def test_a_failed_write_leaves_only_its_failure_record(client, db, world, endpoint):
    _, _, make_request, failure_action = CASES[endpoint]
    prepare(endpoint, client, world)
    before = audit_count(db)
    response = send(client, make_request(world))
    assert response.status_code >= 400, (endpoint, response.status_code)
    assert new_audit_actions(db, before) == ([failure_action] if failure_action else [])


@pytest.mark.parametrize("endpoint", sorted(CASES))
def test_a_write_without_csrf_token_is_400_and_changes_nothing(client, db, world, endpoint):
    make_request, _, _, _ = CASES[endpoint]
    prepare(endpoint, client, world)
    before = audit_count(db)
    snapshot = db.session.execute(
        select(
            User.email, User.role, User.is_active_user, User.password_hash, User.session_version
        ).order_by(User.email)
    ).all()
    response = send(client, make_request(world), with_token=False)
    assert response.status_code == 400
    assert audit_count(db) == before
    db.session.expire_all()
    assert db.session.get(Feature, world.feature.id).status == "active"
    assert (
        db.session.execute(
            select(
                User.email, User.role, User.is_active_user, User.password_hash, User.session_version
            ).order_by(User.email)
        ).all()
        == snapshot
    )


def test_a_write_with_a_forged_csrf_token_is_refused(client, db, world):
    prepare("users.create", client, world)
    response = client.post(
        "/users", data={"email": "x@example.com", "role": "viewer", "csrf_token": "forged"}
    )
    assert response.status_code == 400
    assert db.session.scalar(select(User).where(User.email == "x@example.com")) is None
