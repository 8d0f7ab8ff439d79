"""/api/v1/ opens only to API keys, and API keys open nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests import factories


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def saved_key(**fields):
    key, secret = factories.api_key(**fields)
    factories.db.session.commit()
    return key, secret


def test_a_valid_key_is_accepted(db, client):
    key, secret = saved_key(environment="staging")
    answer = client.get("/api/v1/whoami", headers=bearer(secret))
    assert answer.status_code == 200
    assert answer.json["data"]["environment"] == "staging"
    assert answer.json["data"]["prefix"] == key.prefix
    assert "Set-Cookie" not in answer.headers


@pytest.mark.parametrize(
    "header",
    [None, "Basic abc", "Bearer ", "Bearer aipm_prd_short", "Bearer aipm_prd_" + "x" * 40],
)
def test_missing_malformed_or_unknown_keys_get_401_with_a_challenge(db, client, header):
    saved_key()
    headers = {"Authorization": header} if header else {}
    answer = client.get("/api/v1/whoami", headers=headers)
    assert answer.status_code == 401
    assert answer.json["success"] is False
    assert answer.json["code"] == "invalid_api_key"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "fields",
    [
        {"revoked_at": datetime(2026, 1, 1, tzinfo=UTC)},
        {"expires_at": datetime.now(UTC) - timedelta(seconds=1)},
    ],
)
def test_revoked_and_expired_keys_get_401(db, client, fields):
    _, secret = saved_key(**fields)
    answer = client.get("/api/v1/whoami", headers=bearer(secret))
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


def test_a_key_without_the_scope_gets_403(db, client):
    _, secret = saved_key(scopes=("config:read",))
    answer = client.post("/api/v1/usage", json={"events": []}, headers=bearer(secret))
    assert answer.status_code == 403
    assert answer.json["code"] == "insufficient_scope"
    assert 'scope="usage:write"' in answer.headers["WWW-Authenticate"]


def test_any_key_may_ask_what_it_is(db, client):
    _, secret = saved_key(scopes=("config:read",))
    answer = client.get("/api/v1/whoami", headers=bearer(secret))
    assert answer.status_code == 200
    assert answer.json["data"]["scopes"] == ["config:read"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_wrong_method_is_405_in_the_envelope_without_reading_a_session(
    app, db, admin_client, method
):
    _, secret = saved_key()
    with_key = app.test_client().open("/api/v1/usage", method=method, headers=bearer(secret))
    assert with_key.status_code == 405
    assert with_key.json["success"] is False
    assert "Set-Cookie" not in with_key.headers
    # A browser session gets the same answer: not a sign-in page, not a 401 "sign in".
    with_session = admin_client.open("/api/v1/usage", method=method)
    assert (with_session.status_code, with_session.json) == (405, with_key.json)


def test_a_browser_session_opens_nothing_under_api_v1(admin_client):
    assert admin_client.get("/api/v1/whoami").status_code == 401


def test_a_key_opens_no_page_and_no_admin_api(db, client):
    _, secret = saved_key()
    assert (
        client.get("/api/platform/ai-management/features", headers=bearer(secret)).status_code
        == 401
    )
    page = client.get("/", headers=bearer(secret))
    assert page.status_code == 302
    assert "/login" in page.headers["Location"]


def test_last_used_is_recorded(db, client):
    key, secret = saved_key()
    assert key.last_used_at is None
    client.get("/api/v1/whoami", headers=bearer(secret))
    db.session.refresh(key)
    assert key.last_used_at is not None
