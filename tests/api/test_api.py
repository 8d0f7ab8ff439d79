"""The JSON API's envelope and its answers to wrong input."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import csrf_token
from webapp.models import AuditLog, Feature

BASE = "/api/platform/ai-management"


@pytest.fixture
def feature(db):
    row = factories.feature("chatbot", display_name="AI Chatbot")
    db.session.commit()
    return row


def put(client, url, **kwargs):
    headers = {"X-CSRFToken": csrf_token(client, "/"), **kwargs.pop("headers", {})}
    return client.put(url, headers=headers, **kwargs)


def audit_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditLog))


def test_list_uses_the_envelope(admin_client, feature):
    model = factories.model(factories.provider(), "gpt-4")
    factories.assignment(feature, model)
    from webapp.extensions import db

    db.session.commit()
    body = admin_client.get(f"{BASE}/features").get_json()
    assert body["success"] is True
    assert body["metadata"] == {"count": 1, "time_range": "24h"}
    [item] = body["data"]
    assert item["name"] == "chatbot" and item["id"] == str(feature.id)
    assert item["active_models"] == {
        "production": {"id": str(model.id), "name": "gpt-4", "display_name": "GPT-4"}
    }


def test_get_one_and_unknown_ids(viewer_client, feature):
    assert (
        viewer_client.get(f"{BASE}/features/{feature.id}").get_json()["data"]["name"] == "chatbot"
    )
    for bad in (uuid.uuid4(), "not-a-uuid"):
        response = viewer_client.get(f"{BASE}/features/{bad}")
        assert response.status_code == 404
        body = response.get_json()
        assert body["success"] is False and body["error"] == "Not found"
        assert "does not exist" in body["details"]


def test_anonymous_gets_401_json_not_a_redirect(client, feature):
    response = client.get(f"{BASE}/features")
    assert response.status_code == 401
    assert response.is_json and response.get_json()["success"] is False


def test_viewer_write_is_403_json_and_changes_nothing(viewer_client, feature, db):
    before = audit_count(db)
    response = put(viewer_client, f"{BASE}/features/{feature.id}", json={"status": "inactive"})
    assert response.status_code == 403
    assert response.get_json()["error"] == "Forbidden"
    db.session.expire_all()
    assert db.session.get(Feature, feature.id).status == "active"
    # Nothing changed; the only new audit row records the refusal itself.
    assert audit_count(db) == before + 1
    refusal = db.session.scalars(select(AuditLog).order_by(AuditLog.created_at.desc())).first()
    assert refusal.action == "auth.forbidden"
    assert refusal.new_values == {"method": "PUT", "path": f"{BASE}/features/{feature.id}"}


def test_admin_update_changes_the_feature_and_audits_only_changed_fields(admin_client, feature, db):
    before = audit_count(db)
    response = put(
        admin_client,
        f"{BASE}/features/{feature.id}",
        json={"status": "maintenance", "display_name": "AI Chatbot"},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["status"] == "maintenance"
    db.session.expire_all()
    assert db.session.get(Feature, feature.id).status == "maintenance"
    assert audit_count(db) == before + 1
    row = db.session.scalars(select(AuditLog).order_by(AuditLog.created_at.desc())).first()
    assert row.action == "feature.update" and row.resource_id == feature.id
    assert row.old_values == {"status": "active"} and row.new_values == {"status": "maintenance"}
    assert row.ip_address is not None


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"data": "{not json", "content_type": "application/json"}, "body"),
        ({"data": "status=inactive", "content_type": "application/x-www-form-urlencoded"}, "body"),
        ({"json": ["status", "inactive"]}, "body"),
        ({"json": {"status": "archived"}}, "status"),
        ({"json": {"display_name": ""}}, "display_name"),
        ({"json": {"config": "not an object"}}, "config"),
        ({"json": {"colour": "blue"}}, "colour"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_changes_nothing(
    admin_client, feature, db, kwargs, field
):
    before = audit_count(db)
    response = put(admin_client, f"{BASE}/features/{feature.id}", **kwargs)
    assert response.status_code == 400
    body = response.get_json()
    assert body["success"] is False
    assert field in body["fields"], body
    assert field in body["details"]
    db.session.expire_all()
    assert db.session.get(Feature, feature.id).status == "active"
    assert audit_count(db) == before


def test_several_wrong_fields_are_all_named(admin_client, feature):
    response = put(
        admin_client, f"{BASE}/features/{feature.id}", json={"status": "x", "display_name": ""}
    )
    assert set(response.get_json()["fields"]) == {"status", "display_name"}


def test_write_without_csrf_token_is_400_json(admin_client, feature, db):
    response = admin_client.put(f"{BASE}/features/{feature.id}", json={"status": "inactive"})
    assert response.status_code == 400
    assert "CSRF" in response.get_json()["error"]
    db.session.expire_all()
    assert db.session.get(Feature, feature.id).status == "active"


def test_unknown_feature_update_is_404(admin_client, db):
    response = put(admin_client, f"{BASE}/features/{uuid.uuid4()}", json={"status": "inactive"})
    assert response.status_code == 404


def test_wrong_method_is_405_json(admin_client, feature):
    response = admin_client.delete(
        f"{BASE}/features", headers={"X-CSRFToken": csrf_token(admin_client, "/")}
    )
    assert response.status_code == 405
    assert response.get_json()["success"] is False


def test_money_and_ids_are_strings_in_json():
    from decimal import Decimal

    from webapp.services.core.serialization import to_jsonable

    value = to_jsonable({"cost": Decimal("0.1") + Decimal("0.2"), "id": uuid.UUID(int=1)})
    assert value == {"cost": "0.3", "id": "00000000-0000-0000-0000-000000000001"}
