"""The prompt API contract, including wrong input."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests import factories
from tests.conftest import csrf_token

API = "/api/platform/ai-management/prompts"


def send(client, method, url, **kwargs):
    return client.open(
        url, method=method, headers={"X-CSRFToken": csrf_token(client, "/")}, **kwargs
    )


def ok(response, status=200):
    assert response.status_code == status, response.get_json()
    return response.get_json()


@pytest.fixture
def chatbot(db):
    feature = factories.feature("chatbot")
    model = factories.model(factories.provider(), "gpt-4", input_price_per_million=Decimal("30"))
    factories.assignment(feature, model)
    db.session.commit()
    return feature


@pytest.fixture
def greeting(admin_client, chatbot):
    body = ok(
        send(
            admin_client,
            "POST",
            API,
            json={
                "name": "greeting",
                "content": "Hello {{name}}, welcome to {{ product }}!",
                "feature_id": str(chatbot.id),
                "tags": ["chat", "onboarding"],
                "variables": {"product": {"type": "string", "default": "Minerva"}},
                "is_active": True,
            },
        ),
        201,
    )
    return body["data"]


def test_create_and_get(admin_client, greeting):
    assert greeting["version"] == 1 and greeting["is_active"] is True
    assert greeting["detected_variables"] == ["name", "product"]
    assert ok(admin_client.get(f"{API}/{greeting['id']}"))["data"]["content"].startswith("Hello")


@pytest.mark.parametrize(
    "body, field", [({"content": "x"}, "name"), ({"name": "x"}, "content"), ({}, "name")]
)
def test_create_names_the_missing_field(admin_client, body, field):
    result = ok(send(admin_client, "POST", API, json=body), 400)
    assert field in result["fields"] and field in result["details"]


def test_list_with_filters_and_metadata(admin_client, greeting, chatbot):
    send(
        admin_client,
        "POST",
        API,
        json={"name": "promo", "content": "Save 50%_now", "tags": ["sales"]},
    )
    body = ok(admin_client.get(f"{API}?tags=sales,onboarding&limit=1&offset=0"))
    assert body["metadata"] == {"count": 1, "limit": 1, "offset": 0, "total": 2}
    assert [p["name"] for p in ok(admin_client.get(f"{API}?search=50%25_"))["data"]] == ["promo"]
    assert [
        p["name"]
        for p in ok(admin_client.get(f"{API}?feature_id={chatbot.id}&is_active=true"))["data"]
    ] == ["greeting"]
    assert ok(admin_client.get(f"{API}?is_active=false"))["metadata"]["total"] == 1


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("is_active=maybe", "is_active"),
        ("feature_id=nope", "feature_id"),
        ("created_by=1", "created_by"),
    ],
)
def test_list_refuses_bad_parameters_with_400(viewer_client, query, field):
    result = ok(viewer_client.get(f"{API}?{query}"), 400)
    assert field in result["fields"]


def test_put_new_content_answers_the_new_version(admin_client, greeting):
    body = ok(send(admin_client, "PUT", f"{API}/{greeting['id']}", json={"content": "Hi {{name}}"}))
    assert body["data"]["version"] == 2 and body["data"]["id"] != greeting["id"]
    assert body["metadata"] == {"new_version": True, "previous_version": 1}
    versions = ok(admin_client.get(f"{API}/{greeting['id']}/versions"))["data"]
    assert [v["version"] for v in versions] == [2, 1]
    in_place = ok(send(admin_client, "PUT", f"{API}/{greeting['id']}", json={"description": "d"}))
    assert in_place["metadata"]["new_version"] is False


def test_activate_deactivate_delete_rules(admin_client, greeting):
    v2 = ok(send(admin_client, "PUT", f"{API}/{greeting['id']}", json={"content": "v2"}))["data"]
    refused = ok(send(admin_client, "DELETE", f"{API}/{greeting['id']}"), 409)
    assert "activate another version" in refused["details"]
    ok(send(admin_client, "POST", f"{API}/{v2['id']}/activate"))
    assert ok(admin_client.get(f"{API}/{greeting['id']}"))["data"]["is_active"] is False
    ok(send(admin_client, "DELETE", f"{API}/{greeting['id']}"))
    ok(admin_client.get(f"{API}/{greeting['id']}"), 404)
    assert (
        ok(send(admin_client, "POST", f"{API}/{v2['id']}/deactivate"))["data"]["is_active"] is False
    )


def test_duplicate_tags_diff_and_test(admin_client, greeting):
    copy = ok(
        send(
            admin_client, "POST", f"{API}/{greeting['id']}/duplicate", json={"name": "greeting-b"}
        ),
        201,
    )
    assert copy["data"]["name"] == "greeting-b" and copy["data"]["version"] == 1
    assert ok(admin_client.get(f"{API}/tags"))["data"] == ["chat", "onboarding"]
    v2 = ok(
        send(admin_client, "PUT", f"{API}/{greeting['id']}", json={"content": "Hello {{name}}!"})
    )["data"]
    diff = ok(admin_client.get(f"{API}/{v2['id']}/diff?against={greeting['id']}"))["data"]
    assert diff["old"]["version"] == 1 and "+Hello {{name}}!" in diff["unified_diff"]
    trial = ok(
        send(
            admin_client,
            "POST",
            f"{API}/{greeting['id']}/test",
            json={"variables": {"name": "Ada", "x": 1}},
        )
    )["data"]
    assert trial["rendered"] == "Hello Ada, welcome to Minerva!"
    assert trial["warnings"] == ["x: not used by this prompt"] and trial["valid"] is True
    assert trial["estimates"]["tokens"] == 8 and trial["estimates"]["cost_usd"] == "0.000240"
    missing = ok(
        send(admin_client, "POST", f"{API}/{greeting['id']}/test", json={"variables": {}})
    )["data"]
    assert missing["missing_variables"] == ["name"] and missing["valid"] is False


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/not-a-uuid", 400),
        ("GET", f"/{uuid.uuid4()}", 404),
        ("POST", f"/{uuid.uuid4()}/test", 404),
        ("GET", f"/{uuid.uuid4()}/diff", 400),
        ("GET", f"/{uuid.uuid4()}/diff?against=bad", 400),
        ("POST", "/not-a-uuid/activate", 400),
    ],
)
def test_bad_and_unknown_ids(admin_client, method, path, status):
    kwargs = {"json": {}} if method == "POST" else {}
    assert send(admin_client, method, f"{API}{path}", **kwargs).status_code == status


def test_put_refuses_unknown_fields_and_wrong_types(admin_client, greeting):
    result = ok(
        send(admin_client, "PUT", f"{API}/{greeting['id']}", json={"name": "x", "tags": "a"}), 400
    )
    assert {"name", "tags"} <= set(result["fields"])


def test_is_active_accepts_the_usual_spellings(admin_client, greeting):
    assert ok(admin_client.get(f"{API}?is_active=TRUE"))["metadata"]["total"] == 1
    assert ok(admin_client.get(f"{API}?is_active=0"))["metadata"]["total"] == 0


def test_api_test_treats_an_empty_string_as_a_value(admin_client, greeting):
    trial = ok(
        send(admin_client, "POST", f"{API}/{greeting['id']}/test", json={"variables": {"name": ""}})
    )["data"]
    assert trial["rendered"] == "Hello , welcome to Minerva!" and trial["valid"] is True


def test_huge_number_default_is_refused(admin_client):
    result = ok(
        send(
            admin_client,
            "POST",
            API,
            json={
                "name": "n",
                "content": "{{n}}",
                "variables": {"n": {"type": "number", "default": "1e999999999"}},
            },
        ),
        400,
    )
    assert "variables.n" in result["fields"]
