"""The features, providers and models API: every endpoint, right and wrong input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests import factories
from tests.conftest import csrf_token
from tests.usage_rows import roll_up
from webapp.models import UsageLog

API = "/api/platform/ai-management"


@pytest.fixture
def data(db):
    openai = factories.provider("openai", display_name="OpenAI")
    gpt4 = factories.model(openai, "gpt-4", display_name="GPT-4")
    mini = factories.model(openai, "gpt-4o-mini", display_name="GPT-4o mini", model_type="llm")
    embed = factories.model(
        openai, "embed", display_name="Embed", model_type="embedding", status="beta"
    )
    chatbot = factories.feature("chatbot", display_name="AI Chatbot")
    search = factories.feature("ai-search", display_name="AI Search", status="maintenance")
    factories.assignment(chatbot, gpt4)
    now = datetime.now(UTC)
    # Ten minutes ago, but never before today's UTC midnight: the per-day test counts
    # these requests as today's whenever the suite runs.
    moment = max(now - timedelta(minutes=10), now.replace(hour=0, minute=0, second=0))
    for ms, status in ((100, "success"), (300, "error")):
        db.session.add(
            UsageLog(
                feature_id=chatbot.id,
                model_id=gpt4.id,
                status=status,
                response_time_ms=ms,
                cost_usd=Decimal("0.010000"),
                created_at=moment,
            )
        )
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups
    return {
        "openai": openai,
        "gpt4": gpt4,
        "mini": mini,
        "embed": embed,
        "chatbot": chatbot,
        "search": search,
    }


def write(client, method, url, **kwargs):
    return client.open(
        url, method=method, headers={"X-CSRFToken": csrf_token(client, "/")}, **kwargs
    )


def body_of(response, status):
    assert response.status_code == status, response.get_json()
    return response.get_json()


# --- features ---------------------------------------------------------------------------


def test_list_features_with_metrics_and_status_filter(viewer_client, data):
    body = body_of(viewer_client.get(f"{API}/features?include_metrics=true&time_range=1h"), 200)
    chatbot = next(f for f in body["data"] if f["name"] == "chatbot")
    assert chatbot["metrics"]["total_requests"] == 2
    assert chatbot["metrics"]["error_rate"] == "50.00"
    assert chatbot["metrics"]["total_cost"] == "0.020000"
    # The latency histogram's p95: 100 in [100, 150), 300 in [300, 400); rank 1.9 → 390.
    assert chatbot["metrics"]["p95_response_time_ms"] == "390.0"
    body = body_of(viewer_client.get(f"{API}/features?status=maintenance"), 200)
    assert [f["name"] for f in body["data"]] == ["ai-search"] and "metrics" not in body["data"][0]


@pytest.mark.parametrize(
    "query, field",
    [
        ("time_range=2d&include_metrics=true", "time_range"),
        ("include_metrics=perhaps", "include_metrics"),
        ("status=sleeping", "status"),
    ],
)
def test_list_features_refuses_bad_parameters(viewer_client, data, query, field):
    body = body_of(viewer_client.get(f"{API}/features?{query}"), 400)
    assert field in body["fields"]


def test_get_feature_has_health_and_active_models(viewer_client, data):
    body = body_of(viewer_client.get(f"{API}/features/{data['chatbot'].id}?time_range=24h"), 200)
    assert body["data"]["active_models"]["production"]["name"] == "gpt-4"
    assert body["data"]["metrics"]["success_rate"] == "50.00"
    assert body_of(viewer_client.get(f"{API}/features/{data['chatbot'].id}?time_range=1y"), 400)[
        "fields"
    ] == {"time_range": "must be one of 1h, 24h, 7d, 30d"}


def test_create_feature_and_conflict(admin_client, data):
    created = body_of(
        write(
            admin_client,
            "POST",
            f"{API}/features",
            json={"name": "summaries", "display_name": "Summaries", "model_type": "llm"},
        ),
        201,
    )
    assert created["data"]["status"] == "active"
    assert created["data"]["model_type"] == "llm"
    conflict = body_of(
        write(
            admin_client,
            "POST",
            f"{API}/features",
            json={"name": "summaries", "display_name": "Again", "model_type": "llm"},
        ),
        409,
    )
    assert conflict["fields"] == {"name": "a feature named summaries already exists"}
    missing = body_of(
        write(admin_client, "POST", f"{API}/features", json={"display_name": "No name"}), 400
    )
    assert missing["fields"] == {"name": "is required"}
    # Clients of the seed's API that send no model type get a language-model feature.
    legacy = body_of(
        write(
            admin_client,
            "POST",
            f"{API}/features",
            json={"name": "legacy-client", "display_name": "Legacy"},
        ),
        201,
    )
    assert legacy["data"]["model_type"] == "llm"


def test_bulk_update_all_or_nothing_over_http(admin_client, data, db):
    chatbot, search = data["chatbot"], data["search"]
    bad = body_of(
        write(
            admin_client,
            "PUT",
            f"{API}/features/bulk",
            json={
                "items": [
                    {"id": str(chatbot.id), "status": "inactive"},
                    {"id": str(search.id), "status": "nope"},
                ]
            },
        ),
        400,
    )
    assert list(bad["fields"]) == ["items.1.status"]
    assert (
        body_of(admin_client.get(f"{API}/features/{chatbot.id}"), 200)["data"]["status"] == "active"
    )
    ok = body_of(
        write(
            admin_client,
            "PUT",
            f"{API}/features/bulk",
            json={
                "items": [
                    {"id": str(chatbot.id), "status": "inactive"},
                    {"id": str(search.id), "status": "active"},
                ]
            },
        ),
        200,
    )
    assert [f["status"] for f in ok["data"]] == ["inactive", "active"]
    assert body_of(write(admin_client, "PUT", f"{API}/features/bulk", json={"items": []}), 400)[
        "fields"
    ]


def test_delete_feature(admin_client, data):
    body_of(write(admin_client, "DELETE", f"{API}/features/{data['search'].id}"), 200)
    body_of(admin_client.get(f"{API}/features/{data['search'].id}"), 404)
    refused = body_of(write(admin_client, "DELETE", f"{API}/features/{data['chatbot'].id}"), 409)
    assert refused["details"] == (
        "AI Chatbot has 1 model assignment, 2 usage records in its history, which deleting "
        "it would erase; set its status to inactive instead"
    )


def test_usage_per_day_zero_filled(viewer_client, data):
    body = body_of(viewer_client.get(f"{API}/features/{data['chatbot'].id}/usage?days=3"), 200)
    assert len(body["data"]) == 3 and body["data"][-1]["requests"] == 2
    assert body["data"][0] == {
        "date": (datetime.now(UTC).date() - timedelta(days=2)).isoformat(),
        "requests": 0,
        "errors": 0,
        "cost": "0.000000",
    }
    assert (
        "days"
        in body_of(viewer_client.get(f"{API}/features/{data['chatbot'].id}/usage?days=0"), 400)[
            "fields"
        ]
    )


def test_assign_noop_history_and_rollback(admin_client, data):
    url = f"{API}/features/{data['chatbot'].id}/assignments"
    assigned = body_of(
        write(
            admin_client,
            "POST",
            url,
            json={
                "model_id": str(data["mini"].id),
                "environment": "production",
                "config_overrides": {"temperature": 0.3},
            },
        ),
        201,
    )
    assert assigned["metadata"]["changed"] is True and assigned["data"]["config_overrides"] == {
        "temperature": 0.3
    }
    again = body_of(write(admin_client, "POST", url, json={"model_id": str(data["mini"].id)}), 200)
    assert again["metadata"] == {
        "changed": False,
        "message": "GPT-4o mini already serves AI Chatbot in production",
    }
    history = body_of(admin_client.get(url), 200)["data"]
    assert [(h["model"]["name"], h["is_active"]) for h in history] == [
        ("gpt-4o-mini", True),
        ("gpt-4", False),
    ]
    rolled = body_of(
        write(admin_client, "POST", f"{url}/rollback", json={"environment": "production"}), 201
    )
    assert rolled["data"]["model_id"] == str(data["gpt4"].id)


@pytest.mark.parametrize(
    "payload, status, field",
    [
        ({"model_id": "not-a-uuid"}, 400, "model_id"),
        ({"model_id": str(uuid.uuid4())}, 400, "model_id"),
        ({"environment": "qa"}, 400, "environment"),
        ({"config_overrides": [1, 2]}, 400, "config_overrides"),
        ({"extra": 1}, 400, "extra"),
    ],
)
def test_assign_refuses_wrong_input(admin_client, data, payload, status, field):
    body = {"model_id": str(data["mini"].id), **payload}
    if "model_id" not in payload and field != "model_id":
        body["model_id"] = str(data["mini"].id)
    result = body_of(
        write(admin_client, "POST", f"{API}/features/{data['chatbot'].id}/assignments", json=body),
        status,
    )
    assert field in result["fields"]


def test_assign_a_deprecated_model_is_a_conflict(admin_client, data, db):
    data["mini"].status = "deprecated"
    db.session.commit()
    result = body_of(
        write(
            admin_client,
            "POST",
            f"{API}/features/{data['chatbot'].id}/assignments",
            json={"model_id": str(data["mini"].id)},
        ),
        409,
    )
    assert result["fields"] == {"model_id": "GPT-4o mini is deprecated and cannot be assigned"}


def test_assigning_a_model_of_another_type_is_a_conflict(admin_client, data):
    """The issue's case: an embedding model assigned to the chatbot (an llm feature)."""
    result = body_of(
        write(
            admin_client,
            "POST",
            f"{API}/features/{data['chatbot'].id}/assignments",
            json={"model_id": str(data["embed"].id), "environment": "staging"},
        ),
        409,
    )
    assert result["fields"] == {
        "model_id": "Embed is an embedding model; AI Chatbot needs an llm model"
    }
    feature = body_of(admin_client.get(f"{API}/features/{data['chatbot'].id}"), 200)["data"]
    assert feature["model_type"] == "llm"


def test_model_type_is_one_of_three_in_the_models_api(admin_client, data):
    body = body_of(
        write(admin_client, "PUT", f"{API}/models/{data['mini'].id}", json={"model_type": "LLM"}),
        400,
    )
    assert body["fields"] == {"model_type": "must be one of llm, vision, embedding"}
    retyped = body_of(
        write(
            admin_client, "PUT", f"{API}/models/{data['gpt4'].id}", json={"model_type": "vision"}
        ),
        409,
    )
    assert retyped["fields"]["model_type"].startswith("GPT-4 serves AI Chatbot in production")
    assert retyped["in_use"][0]["feature_name"] == "AI Chatbot"


# --- providers --------------------------------------------------------------------------


def test_provider_endpoints(admin_client, data):
    listed = body_of(admin_client.get(f"{API}/providers"), 200)["data"]
    assert listed[0]["name"] == "openai" and listed[0]["model_count"] == 3
    one = body_of(admin_client.get(f"{API}/providers/{data['openai'].id}"), 200)["data"]
    assert sorted(m["name"] for m in one["models"]) == ["embed", "gpt-4", "gpt-4o-mini"]
    created = body_of(
        write(
            admin_client,
            "POST",
            f"{API}/providers",
            json={"name": "anthropic", "display_name": "Anthropic", "provider_type": "anthropic"},
        ),
        201,
    )["data"]
    body_of(
        write(admin_client, "PUT", f"{API}/providers/{created['id']}", json={"status": "inactive"}),
        200,
    )
    body_of(write(admin_client, "DELETE", f"{API}/providers/{created['id']}"), 200)
    in_use = body_of(write(admin_client, "DELETE", f"{API}/providers/{data['openai'].id}"), 409)
    assert "GPT-4 serves AI Chatbot (production)" in in_use["details"]
    bad = body_of(
        write(
            admin_client, "POST", f"{API}/providers", json={"name": "Bad!", "provider_type": "x"}
        ),
        400,
    )
    assert set(bad["fields"]) >= {"display_name"}
    body_of(admin_client.get(f"{API}/providers/{uuid.uuid4()}"), 404)


# --- models ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, names",
    [
        ("provider=openai", ["embed", "gpt-4", "gpt-4o-mini"]),
        ("provider=google", []),
        ("model_type=embedding", ["embed"]),
        ("status=beta", ["embed"]),
        ("provider=openai&status=available", ["gpt-4", "gpt-4o-mini"]),
    ],
)
def test_list_models_filters(viewer_client, data, query, names):
    body = body_of(viewer_client.get(f"{API}/models?{query}"), 200)
    assert sorted(m["name"] for m in body["data"]) == names


def test_list_models_with_metrics_and_bad_status(viewer_client, data):
    body = body_of(viewer_client.get(f"{API}/models?include_metrics=true&time_range=1h"), 200)
    gpt4 = next(m for m in body["data"] if m["name"] == "gpt-4")
    assert gpt4["metrics"]["total_requests"] == 2 and gpt4["provider"]["name"] == "openai"
    assert gpt4["pricing"]["input_price_per_million"] == "30.000000"
    assert "status" in body_of(viewer_client.get(f"{API}/models?status=gone"), 400)["fields"]


def test_model_create_update_delete_and_deployments(admin_client, data):
    created = body_of(
        write(
            admin_client,
            "POST",
            f"{API}/models",
            json={
                "name": "claude-haiku",
                "display_name": "Claude Haiku",
                "provider_id": str(data["openai"].id),
                "model_type": "llm",
                "capabilities": ["chat"],
                "pricing": {
                    "input_price_per_million": "0.80",
                    "output_price_per_million": 4,
                    "price_per_image": None,
                },
            },
        ),
        201,
    )["data"]
    assert created["pricing"] == {
        "input_price_per_million": "0.800000",
        "output_price_per_million": "4.000000",
        "price_per_request": None,
        "price_per_image": None,
        "cache_read_price_per_million": None,
        "cache_write_price_per_million": None,
    }
    updated = body_of(
        write(
            admin_client,
            "PUT",
            f"{API}/models/{created['id']}",
            json={"pricing": {"price_per_request": "0.0001"}, "status": "beta"},
        ),
        200,
    )["data"]
    assert updated["pricing"]["price_per_request"] == "0.000100" and updated["status"] == "beta"
    detail = body_of(admin_client.get(f"{API}/models/{created['id']}"), 200)["data"]
    assert detail["metrics"]["total_requests"] == 0
    deployments = body_of(admin_client.get(f"{API}/models/{data['gpt4'].id}/deployments"), 200)[
        "data"
    ]
    assert deployments[0]["feature_display_name"] == "AI Chatbot" and deployments[0]["is_active"]
    body_of(write(admin_client, "DELETE", f"{API}/models/{created['id']}"), 200)
    assert (
        "set its status to deprecated instead"
        in body_of(write(admin_client, "DELETE", f"{API}/models/{data['gpt4'].id}"), 409)["details"]
    )


@pytest.mark.parametrize(
    "payload, field",
    [
        (
            {"pricing": {"input_price_per_million": "-1", "output_price_per_million": 1}},
            "pricing.input_price_per_million",
        ),
        (
            {"pricing": {"input_price_per_million": 1, "output_price_per_million": "lots"}},
            "pricing.output_price_per_million",
        ),
        ({"pricing": {"bogus": 1}}, "pricing.bogus"),
        (
            {
                "pricing": {
                    "input_price_per_million": 1,
                    "output_price_per_million": 1,
                    "cache_read_price_per_million": "-0.1",
                }
            },
            "pricing.cache_read_price_per_million",
        ),
        (
            {
                "pricing": {
                    "input_price_per_million": 1,
                    "output_price_per_million": 1,
                    "cache_write_price_per_million": "0.0000001",
                }
            },
            "pricing.cache_write_price_per_million",
        ),
        ({"provider_id": str(uuid.uuid4())}, "provider_id"),
        ({"capabilities": "chat"}, "capabilities"),
        ({"status": "retired"}, "status"),
    ],
)
def test_model_create_names_each_wrong_field(admin_client, data, payload, field):
    base = {
        "name": "m",
        "display_name": "M",
        "provider_id": str(data["openai"].id),
        "model_type": "llm",
        "pricing": {"input_price_per_million": 1, "output_price_per_million": 1},
    }
    result = body_of(write(admin_client, "POST", f"{API}/models", json={**base, **payload}), 400)
    assert list(result["fields"]) == [field], result  # exactly the wrong field


def test_duplicate_model_is_409_naming_the_field(admin_client, data):
    result = body_of(
        write(
            admin_client,
            "POST",
            f"{API}/models",
            json={
                "name": "gpt-4",
                "display_name": "Again",
                "provider_id": str(data["openai"].id),
                "model_type": "llm",
                "pricing": {"input_price_per_million": 1, "output_price_per_million": 1},
            },
        ),
        409,
    )
    assert result["fields"] == {
        "name": "this provider already has a model with that name and version"
    }


@pytest.mark.parametrize(
    "url",
    [
        f"{API}/models/not-an-id",
        f"{API}/models/{uuid.uuid4()}/deployments",
        f"{API}/features/{uuid.uuid4()}/assignments",
        f"{API}/features/{uuid.uuid4()}/usage",
    ],
)
def test_unknown_ids_are_404(viewer_client, url):
    assert body_of(viewer_client.get(url), 404)["success"] is False


def test_every_wrong_field_is_named_at_once(admin_client, data):
    features = body_of(
        write(
            admin_client,
            "POST",
            f"{API}/features",
            json={"name": "Bad Name", "display_name": 5, "status": "zzz", "model_type": "x"},
        ),
        400,
    )
    assert set(features["fields"]) == {"name", "display_name", "status", "model_type"}
    models = body_of(
        write(
            admin_client,
            "POST",
            f"{API}/models",
            json={
                "name": "m",
                "display_name": "M",
                "provider_id": str(data["openai"].id),
                "model_type": "llm",
                "status": "zzz",
                "pricing": {"input_price_per_million": -1, "output_price_per_million": "x"},
            },
        ),
        400,
    )
    assert set(models["fields"]) == {
        "status",
        "pricing.input_price_per_million",
        "pricing.output_price_per_million",
    }


def test_prices_are_required_when_creating_a_model(admin_client, data):
    result = body_of(
        write(
            admin_client,
            "POST",
            f"{API}/models",
            json={
                "name": "m",
                "display_name": "M",
                "provider_id": str(data["openai"].id),
                "model_type": "llm",
            },
        ),
        400,
    )
    assert set(result["fields"]) == {
        "pricing.input_price_per_million",
        "pricing.output_price_per_million",
    }


def test_unknown_time_range_is_400_even_without_metrics(viewer_client, data):
    assert (
        "time_range" in body_of(viewer_client.get(f"{API}/features?time_range=5y"), 400)["fields"]
    )


def test_model_cache_prices_are_set_changed_and_cleared_through_the_api(admin_client, data):
    created = body_of(
        write(
            admin_client,
            "POST",
            f"{API}/models",
            json={
                "name": "cached",
                "display_name": "Cached",
                "provider_id": str(data["openai"].id),
                "model_type": "llm",
                "pricing": {
                    "input_price_per_million": 3,
                    "output_price_per_million": 15,
                    "cache_read_price_per_million": "0.3",
                    "cache_write_price_per_million": "3.75",
                },
            },
        ),
        201,
    )["data"]
    assert created["pricing"]["cache_read_price_per_million"] == "0.300000"
    assert created["pricing"]["cache_write_price_per_million"] == "3.750000"
    updated = body_of(
        write(
            admin_client,
            "PUT",
            f"{API}/models/{created['id']}",
            json={"pricing": {"cache_read_price_per_million": None}},
        ),
        200,
    )["data"]
    assert updated["pricing"]["cache_read_price_per_million"] is None  # the input price again
    assert updated["pricing"]["cache_write_price_per_million"] == "3.750000"
    schema = admin_client.get(f"{API}/openapi.json").get_json()["components"]["schemas"]
    assert {"cache_read_price_per_million", "cache_write_price_per_million"} <= set(
        schema["Pricing"]["properties"]
    )


def test_setting_a_serving_model_offline_is_409_naming_its_assignments(admin_client, data):
    """The API applies the service's rule with the same message, and lists the uses."""
    body = body_of(
        write(admin_client, "PUT", f"{API}/models/{data['gpt4'].id}", json={"status": "offline"}),
        409,
    )
    message = (
        "GPT-4 serves AI Chatbot in production; assign another model there first, then set "
        "it offline"
    )
    assert body["details"] == message
    assert body["fields"] == {"status": message}
    assert body["in_use"] == [
        {
            "feature_id": str(data["chatbot"].id),
            "feature_name": "AI Chatbot",
            "environment": "production",
        }
    ]
    again = body_of(admin_client.get(f"{API}/models/{data['gpt4'].id}"), 200)["data"]
    assert again["status"] == "available"
