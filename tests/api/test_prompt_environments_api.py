"""The admin API of prompts per environment: activate/deactivate with an environment (none:
production, as before), promote, rollback, the live version of each environment, history;
bad input named, viewers refused."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import csrf_token
from webapp.models import AuditLog, PromptActivation

API = "/api/platform/ai-management/prompts"


def send(client, method, url, **kwargs):
    return client.open(
        url, method=method, headers={"X-CSRFToken": csrf_token(client, "/")}, **kwargs
    )


def answer(response, status=200):
    assert response.status_code == status, response.get_json()
    return response.get_json()


@pytest.fixture
def versions(db):
    feature = factories.feature("chatbot")
    rows = [factories.prompt("greeting", n, feature_id=feature.id) for n in (1, 2)]
    db.session.commit()
    return [str(row.id) for row in rows]


def live(client, prompt_id):
    data = answer(client.get(f"{API}/{prompt_id}/environments"))["data"]
    return {env: (entry["version"] if entry else None) for env, entry in data.items()}


def audit_actions(db):
    db.session.expire_all()
    actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.created_at))
    return [action for action in actions if action.startswith("prompt.")]


def test_activate_without_a_body_or_with_an_empty_one_means_production(admin_client, versions):
    v1, v2 = versions
    body = answer(send(admin_client, "POST", f"{API}/{v1}/activate"))
    assert body["data"]["is_active"] is True  # the seed's answer, unchanged
    assert body["metadata"]["environment"] == "production"
    assert body["metadata"]["live_in"] == ["production"]
    answer(send(admin_client, "POST", f"{API}/{v2}/activate", json={}))
    assert live(admin_client, v1) == {"development": None, "staging": None, "production": 2}
    assert answer(admin_client.get(f"{API}/{v1}"))["data"]["is_active"] is False


def test_activate_in_an_environment_leaves_is_active_alone(admin_client, versions):
    v1, _ = versions
    body = answer(
        send(admin_client, "POST", f"{API}/{v1}/activate", json={"environment": "staging"})
    )
    assert body["data"]["is_active"] is False
    assert body["metadata"] == {
        "environment": "staging",
        "changed": True,
        "message": "greeting v1 is now live in staging",
        "live_in": ["staging"],
    }
    again = answer(
        send(admin_client, "POST", f"{API}/{v1}/activate", json={"environment": "staging"})
    )
    assert again["metadata"]["changed"] is False


@pytest.mark.parametrize(
    "body, field, problem",
    [
        ({"environment": "qa"}, "environment", "must be one of development, staging, production"),
        ({"environment": 3}, "environment", "must be one of"),
        ({"env": "staging"}, "env", ""),
    ],
)
def test_activate_names_bad_input_and_changes_nothing(
    db, admin_client, versions, body, field, problem
):
    v1, _ = versions
    refused = answer(send(admin_client, "POST", f"{API}/{v1}/activate", json=body), 400)
    assert problem in refused["fields"][field]
    assert db.session.scalar(select(func.count()).select_from(PromptActivation)) == 0


def test_a_body_that_is_not_json_is_refused(admin_client, versions):
    v1, _ = versions
    response = send(
        admin_client, "POST", f"{API}/{v1}/activate", data="staging", content_type="text/plain"
    )
    assert response.status_code == 400


def test_promote_along_the_pipeline(db, admin_client, versions):
    v1, _ = versions
    answer(send(admin_client, "POST", f"{API}/{v1}/activate", json={"environment": "development"}))
    refused = answer(
        send(admin_client, "POST", f"{API}/{v1}/promote", json={"to_environment": "production"}),
        409,
    )
    assert "only while it is live in staging" in refused["details"]
    body = answer(
        send(admin_client, "POST", f"{API}/{v1}/promote", json={"to_environment": "staging"})
    )
    assert body["metadata"]["from_environment"] == "development"
    body = answer(
        send(admin_client, "POST", f"{API}/{v1}/promote", json={"to_environment": "production"})
    )
    assert body["data"]["is_active"] is True
    assert body["metadata"]["live_in"] == ["development", "staging", "production"]
    assert audit_actions(db) == ["prompt.activate", "prompt.promote", "prompt.promote"]


@pytest.mark.parametrize(
    "body, problem",
    [
        ({}, "required"),
        ({"to_environment": "development"}, "must be one of staging, production"),
        ({"to_environment": "qa"}, "must be one of staging, production"),
    ],
)
def test_promote_names_bad_input(admin_client, versions, body, problem):
    v1, _ = versions
    refused = answer(send(admin_client, "POST", f"{API}/{v1}/promote", json=body), 400)
    assert problem in refused["fields"]["to_environment"].lower()


def test_rollback_and_history(db, admin_client, admin_user, versions):
    v1, v2 = versions
    for version in (v1, v2):
        answer(
            send(admin_client, "POST", f"{API}/{version}/activate", json={"environment": "staging"})
        )
    body = answer(
        send(admin_client, "POST", f"{API}/{v2}/rollback", json={"environment": "staging"})
    )
    assert body["data"]["id"] == v1 and body["metadata"]["live_in"] == ["staging"]
    history = answer(admin_client.get(f"{API}/{v2}/activations"))
    assert history["metadata"]["count"] == 3
    newest = history["data"][0]
    assert (newest["version"], newest["action"], newest["previous_version"]) == (1, "rollback", 2)
    assert newest["activated_by_email"] == admin_user.email and newest["is_live"] is True
    assert history["data"][1]["deactivated_by_email"] == admin_user.email
    assert answer(admin_client.get(f"{API}/{v1}/activations?environment=production"))["data"] == []
    assert audit_actions(db)[-1] == "prompt.rollback"


def test_rollback_refusals(admin_client, versions):
    v1, _ = versions
    refused = answer(
        send(admin_client, "POST", f"{API}/{v1}/rollback", json={"environment": "staging"}), 409
    )
    assert "no earlier version" in refused["details"]
    bad = answer(send(admin_client, "POST", f"{API}/{v1}/rollback", json={"environment": "x"}), 400)
    assert "environment" in bad["fields"]
    answer(
        send(
            admin_client, "POST", f"{API}/{uuid.uuid4()}/rollback", json={"environment": "staging"}
        ),
        404,
    )


def test_deactivate_in_an_environment(admin_client, versions):
    v1, _ = versions
    for environment in ("development", "production"):
        answer(
            send(admin_client, "POST", f"{API}/{v1}/activate", json={"environment": environment})
        )
    body = answer(
        send(admin_client, "POST", f"{API}/{v1}/deactivate", json={"environment": "development"})
    )
    assert body["metadata"]["live_in"] == ["production"] and body["data"]["is_active"] is True
    body = answer(send(admin_client, "POST", f"{API}/{v1}/deactivate"))  # the seed's: production
    assert body["data"]["is_active"] is False and body["metadata"]["live_in"] == []


def test_reads_refuse_bad_input(admin_client, versions):
    v1, _ = versions
    bad = answer(admin_client.get(f"{API}/{v1}/activations?environment=qa"), 400)
    assert "environment" in bad["fields"]
    answer(admin_client.get(f"{API}/not-an-id/environments"), 400)
    answer(admin_client.get(f"{API}/{uuid.uuid4()}/environments"), 404)


@pytest.mark.parametrize(
    "path, body",
    [
        ("activate", {"environment": "staging"}),
        ("deactivate", {"environment": "staging"}),
        ("promote", {"to_environment": "staging"}),
        ("rollback", {"environment": "staging"}),
    ],
)
def test_viewers_read_but_are_refused_every_write(db, viewer_client, versions, path, body):
    v1, _ = versions
    answer(viewer_client.get(f"{API}/{v1}/environments"))
    answer(viewer_client.get(f"{API}/{v1}/activations"))
    refused = answer(send(viewer_client, "POST", f"{API}/{v1}/{path}", json=body), 403)
    assert refused["error"] == "Forbidden"
    assert db.session.scalar(select(func.count()).select_from(PromptActivation)) == 0


def test_the_openapi_document_lists_the_new_operations(admin_client):
    document = answer(admin_client.get("/api/platform/ai-management/openapi.json"), 200)
    paths = document["paths"] if "paths" in document else document["data"]["paths"]
    activate = paths["/api/platform/ai-management/prompts/{prompt_id}/activate"]["post"]
    assert activate["requestBody"]["required"] is False
    for suffix in ("promote", "rollback"):
        assert paths[f"/api/platform/ai-management/prompts/{{prompt_id}}/{suffix}"]["post"][
            "requestBody"
        ]["required"]
    assert "get" in paths["/api/platform/ai-management/prompts/{prompt_id}/environments"]
    assert "get" in paths["/api/platform/ai-management/prompts/{prompt_id}/activations"]
