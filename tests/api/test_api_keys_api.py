"""The admin API's /api-keys: who may do what, the answers' shape, bad input, and the
per-key rate limit of /api/v1/."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

import webapp.auth
from tests import factories
from tests.conftest import csrf_token
from webapp.models import ApiKey, AuditLog
from webapp.services.apps.secrets import SECRET_PATTERN, secret_hash

API = "/api/platform/ai-management/api-keys"
KEY_FIELDS = {
    "id",
    "name",
    "prefix",
    "environment",
    "scopes",
    "feature_ids",
    "expires_at",
    "created_at",
    "created_by",
    "last_used_at",
    "revoked_at",
    "revoked_by",
    "status",
    "ingestion",
}


def post(client, url, **kwargs):
    return client.post(url, headers={"X-CSRFToken": csrf_token(client, "/")}, **kwargs)


def body(**fields):
    return {
        "name": "photo-tagger",
        "environment": "production",
        "scopes": ["usage:write"],
        **fields,
    }


def key_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(ApiKey)) or 0


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def created(client, **fields):
    answer = post(client, API, json=body(**fields))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["data"]


# --- authorization --------------------------------------------------------------------


def test_anonymous_callers_get_401_everywhere(client, db):
    key, _ = factories.api_key()
    db.session.commit()
    assert client.get(API).status_code == 401
    assert client.post(API, json=body()).status_code == 401
    assert client.post(f"{API}/{key.id}/revoke").status_code == 401
    assert key_count(db) == 1


def test_a_viewer_may_list_but_never_create_or_revoke(viewer_client, db):
    key, _ = factories.api_key(name="existing")
    db.session.commit()
    listed = viewer_client.get(API)
    assert listed.status_code == 200
    assert [item["name"] for item in listed.get_json()["data"]] == ["existing"]
    refused = post(viewer_client, API, json=body())
    assert refused.status_code == 403 and refused.get_json()["success"] is False
    assert post(viewer_client, f"{API}/{key.id}/revoke").status_code == 403
    db.session.expire_all()
    assert key_count(db) == 1 and db.session.get(ApiKey, key.id).revoked_at is None


def test_an_api_key_opens_nothing_here(client, db):
    _, secret = factories.api_key()
    db.session.commit()
    assert client.get(API, headers=bearer(secret)).status_code == 401


def test_writes_need_the_csrf_token(admin_client, db):
    answer = admin_client.post(API, json=body())
    assert answer.status_code == 400
    assert key_count(db) == 0


def test_creating_needs_a_recent_sign_in(monkeypatch, admin_client, db):
    token = csrf_token(admin_client, "/")
    start = webapp.auth.now()
    monkeypatch.setattr(webapp.auth, "now", lambda: start + 11 * 60)
    answer = admin_client.post(API, json=body(), headers={"X-CSRFToken": token})
    assert answer.status_code == 401
    assert answer.get_json()["code"] == "reauthentication_required"
    assert key_count(db) == 0


# --- creating ---------------------------------------------------------------------------


def test_creating_answers_201_with_the_secret_once(admin_client, admin_user, db):
    feature = factories.feature("chatbot")
    db.session.commit()
    expires = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    data = created(
        admin_client,
        environment="development",
        scopes=["usage:write", "config:read"],
        feature_ids=[str(feature.id)],
        expires_at=expires.isoformat(),
    )
    assert set(data) == KEY_FIELDS | {"secret"}
    assert SECRET_PATTERN.fullmatch(data["secret"]) and data["secret"].startswith("aipm_dev_")
    assert data["secret"].startswith(data["prefix"])
    assert data["environment"] == "development"
    assert data["scopes"] == ["usage:write", "config:read"]
    assert data["feature_ids"] == [str(feature.id)]
    assert datetime.fromisoformat(data["expires_at"]) == expires
    assert data["created_by"] == str(admin_user.id)
    assert data["last_used_at"] is None and data["revoked_at"] is None
    assert data["status"] == "active"
    row = db.session.get(ApiKey, uuid.UUID(data["id"]))
    assert row.secret_hash == secret_hash(data["secret"])


def test_the_secret_cannot_be_read_back(admin_client, db):
    secret = created(admin_client)["secret"]
    answers = [admin_client.get(API).get_data(as_text=True)]
    rows = db.session.scalars(select(AuditLog).where(AuditLog.resource_type == "api_key"))
    audit = json.dumps([[row.old_values, row.new_values] for row in rows])
    key_id = json.loads(answers[0])["data"][0]["id"]
    answers.append(post(admin_client, f"{API}/{key_id}/revoke").get_data(as_text=True))
    answers.append(admin_client.get("/api-keys").get_data(as_text=True))
    for text in (*answers, audit):
        assert secret not in text
        assert secret_hash(secret) not in text
    assert '"secret"' not in answers[0] and "secret_hash" not in answers[0]


def test_the_list_holds_every_field_and_the_ingestion_figures(admin_client, db):
    created(admin_client)
    answer = admin_client.get(API).get_json()
    assert answer["success"] is True
    assert answer["metadata"] == {"count": 1, "ingestion_window_hours": 24}
    (item,) = answer["data"]
    assert set(item) == KEY_FIELDS
    assert item["ingestion"] == {
        "accepted": 0,
        "completed": 0,
        "duplicates": 0,
        "rejected": {
            "invalid": 0,
            "unknown_feature": 0,
            "feature_not_allowed": 0,
            "too_old": 0,
            "in_future": 0,
            "too_large": 0,
        },
        "rejected_total": 0,
        "last_event_at": None,
    }


BAD_BODIES = [
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"environment": "live"}, "environment"),
    ({"scopes": []}, "scopes"),
    ({"scopes": ["usage:read"]}, "scopes"),
    ({"scopes": "usage:write"}, "scopes"),
    ({"feature_ids": ["nope"]}, "feature_ids"),
    ({"feature_ids": [str(uuid.UUID(int=5))]}, "feature_ids"),
    ({"feature_ids": {"a": 1}}, "feature_ids"),
    ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ({"expires_at": "2099-01-01T00:00:00"}, "expires_at"),
    ({"expires_at": "soon"}, "expires_at"),
    ({"color": "blue"}, "color"),
]


@pytest.mark.parametrize(("change", "field"), BAD_BODIES)
def test_bad_input_is_400_naming_the_field_and_changes_nothing(admin_client, db, change, field):
    answer = post(admin_client, API, json=body(**change))
    assert answer.status_code == 400
    assert field in answer.get_json()["fields"], answer.get_json()
    assert key_count(db) == 0


@pytest.mark.parametrize("missing", ["name", "environment", "scopes"])
def test_a_missing_required_field_is_named(admin_client, db, missing):
    fields = body()
    del fields[missing]
    answer = post(admin_client, API, json=fields)
    assert answer.status_code == 400
    assert answer.get_json()["fields"] == {missing: "is required"}


@pytest.mark.parametrize("payload", ["[]", '"key"', "not json"])
def test_a_body_that_is_not_an_object_is_400(admin_client, db, payload):
    answer = post(admin_client, API, data=payload, content_type="application/json")
    assert answer.status_code == 400
    assert "body" in answer.get_json()["fields"]


def test_a_name_in_use_is_409_naming_the_field(admin_client, db):
    created(admin_client)
    answer = post(admin_client, API, json=body(environment="staging"))
    assert answer.status_code == 409
    assert "name" in answer.get_json()["fields"]
    assert key_count(db) == 1


# --- revoking ---------------------------------------------------------------------------


def test_revoking_takes_effect_on_the_next_request(admin_client, client, db):
    data = created(admin_client)
    assert client.get("/api/v1/whoami", headers=bearer(data["secret"])).status_code == 200
    answer = post(admin_client, f"{API}/{data['id']}/revoke")
    assert answer.status_code == 200
    revoked = answer.get_json()["data"]
    assert revoked["revoked_at"] is not None and revoked["status"] == "revoked"
    refused = client.get("/api/v1/whoami", headers=bearer(data["secret"]))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoking_twice_answers_the_same_key(admin_client, db):
    data = created(admin_client)
    first = post(admin_client, f"{API}/{data['id']}/revoke").get_json()["data"]
    second = post(admin_client, f"{API}/{data['id']}/revoke")
    assert second.status_code == 200
    assert second.get_json()["data"]["revoked_at"] == first["revoked_at"]


@pytest.mark.parametrize("key_id", [str(uuid.UUID(int=9)), "not-a-uuid"])
def test_revoking_an_unknown_key_is_404(admin_client, db, key_id):
    answer = post(admin_client, f"{API}/{key_id}/revoke")
    assert answer.status_code == 404
    assert answer.get_json()["success"] is False


# --- the per-key rate limit of /api/v1/ ------------------------------------------------


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(app, client, db, monkeypatch):
    monkeypatch.setitem(app.config, "API_KEY_RATE_LIMIT", "2 per minute")
    _, secret = factories.api_key(name="busy")
    _, other = factories.api_key(name="calm")
    db.session.commit()
    for _ in range(2):
        assert client.get("/api/v1/whoami", headers=bearer(secret)).status_code == 200
    limited = client.get("/api/v1/whoami", headers=bearer(secret))
    assert limited.status_code == 429
    assert limited.get_json()["success"] is False
    assert limited.get_json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # The limit is per key: another key is not held back.
    assert client.get("/api/v1/whoami", headers=bearer(other)).status_code == 200


def test_unknown_secrets_are_refused_before_any_counting(app, client, db, monkeypatch):
    monkeypatch.setitem(app.config, "API_KEY_RATE_LIMIT", "1 per minute")
    _, secret = factories.api_key()
    db.session.commit()
    for _ in range(3):
        wrong = client.get("/api/v1/whoami", headers=bearer("aipm_prd_" + "z" * 40))
        assert wrong.status_code == 401
    assert client.get("/api/v1/whoami", headers=bearer(secret)).status_code == 200


def test_the_limit_is_a_setting_checked_at_startup(monkeypatch):
    from webapp.config import ConfigError, settings_from_environment

    monkeypatch.delenv("API_KEY_RATE_LIMIT", raising=False)
    settings = settings_from_environment({"SECRET_KEY": "x"})
    assert settings["API_KEY_RATE_LIMIT"] == "1200 per minute"
    monkeypatch.setenv("API_KEY_RATE_LIMIT", "50 per second")
    assert settings_from_environment({"SECRET_KEY": "x"})["API_KEY_RATE_LIMIT"] == "50 per second"
    monkeypatch.setenv("API_KEY_RATE_LIMIT", "lots")
    with pytest.raises(ConfigError, match="API_KEY_RATE_LIMIT"):
        settings_from_environment({"SECRET_KEY": "x"})
