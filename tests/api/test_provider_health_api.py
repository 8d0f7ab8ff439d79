"""GET /providers/<id>/health and the health_check field of the providers API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests import factories
from tests.conftest import csrf_token
from tests.usage_rows import roll_up
from webapp.models import ProviderHealthLog, UsageLog

API = "/api/platform/ai-management"


@pytest.fixture
def data(db):
    anthropic = factories.provider("anthropic", display_name="Anthropic")
    openai = factories.provider("openai", display_name="OpenAI")
    claude = factories.model(anthropic, "claude", display_name="Claude")
    mini = factories.model(
        openai,
        "gpt-4o-mini",
        display_name="GPT-4o mini",
        input_price_per_million=Decimal("0.15"),
        output_price_per_million=Decimal("0.60"),
    )
    chatbot = factories.feature("chatbot", display_name="Chatbot")
    factories.assignment(chatbot, claude)
    now = datetime.now(UTC)
    for model, status in ((claude, "error"), (mini, "success")):
        for _ in range(10):
            db.session.add(
                UsageLog(
                    model_id=model.id,
                    status=status,
                    response_time_ms=200,
                    created_at=now - timedelta(minutes=2),
                )
            )
    for hours_ago, score in ((30, 40), (2, 55), (1, 20)):
        db.session.add(
            ProviderHealthLog(
                provider_id=anthropic.id,
                status="down" if score < 50 else "degraded",
                health_score=score,
                response_time_ms=900,
                error_rate=Decimal("30.00"),
                throughput=5,
                checked_at=now - timedelta(hours=hours_ago),
            )
        )
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups
    return {"anthropic": anthropic, "openai": openai, "chatbot": chatbot}


def test_health_of_a_provider(viewer_client, data):
    response = viewer_client.get(f"{API}/providers/{data['anthropic'].id}/health?hours=24")
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True
    assert body["metadata"] == {"hours": 24, "resolution": "check", "count": 2}
    current = body["data"]["current"]
    assert current["status"] == "down" and current["health_score"] == 39  # 100 − 60 − 0.53
    assert current["error_rate"] == "100.00" and current["judged_window_minutes"] == 15
    assert current["windows"]["short"]["requests"] == 10
    [affected] = body["data"]["affected_features"]
    assert (affected["feature_name"], affected["environment"]) == ("chatbot", "production")
    assert affected["alternative"]["model_name"] == "gpt-4o-mini"
    assert affected["alternative"]["input_plus_output_price_per_million"] == "0.750000"
    history = body["data"]["history"]
    assert [point["health_score"] for point in history] == ["55", "20"]
    assert history[0]["status"] == "degraded"


def test_default_hours_and_hourly_resolution(viewer_client, data):
    default = viewer_client.get(f"{API}/providers/{data['anthropic'].id}/health").get_json()
    assert default["metadata"]["hours"] == 24
    long = viewer_client.get(f"{API}/providers/{data['anthropic'].id}/health?hours=720")
    body = long.get_json()
    assert body["metadata"]["resolution"] == "hour" and body["metadata"]["count"] == 3


@pytest.mark.parametrize("hours", ["0", "721", "-3", "abc", "1.5", "24h"])
def test_wrong_hours_are_400_naming_hours(viewer_client, data, hours):
    response = viewer_client.get(f"{API}/providers/{data['anthropic'].id}/health?hours={hours}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["success"] is False and "hours" in body["fields"]


@pytest.mark.parametrize("provider_id", ["not-a-uuid", str(uuid.uuid4())])
def test_malformed_or_unknown_provider_is_404(viewer_client, data, provider_id):
    response = viewer_client.get(f"{API}/providers/{provider_id}/health?hours=24")
    assert response.status_code == 404 and response.get_json()["success"] is False


def test_unknown_status_for_a_provider_without_traffic(viewer_client, db):
    quiet = factories.provider("quiet")
    db.session.commit()
    body = viewer_client.get(f"{API}/providers/{quiet.id}/health").get_json()
    assert body["data"]["current"]["status"] == "unknown"
    assert body["data"]["current"]["health_score"] is None
    assert body["data"]["history"] == [] and body["data"]["affected_features"] == []


def write(client, method, url, body):
    return client.open(
        url, method=method, json=body, headers={"X-CSRFToken": csrf_token(client, "/")}
    )


def test_health_check_setting_is_saved_and_validated(admin_client, data):
    url = f"{API}/providers/{data['openai'].id}"
    ok = write(
        admin_client,
        "PUT",
        url,
        {"health_check": {"url": "https://status.example.com/ping", "timeout_seconds": 3}},
    )
    assert ok.status_code == 200
    assert ok.get_json()["data"]["health_check"] == {
        "url": "https://status.example.com/ping",
        "timeout_seconds": 3,
    }
    bad = write(
        admin_client,
        "PUT",
        url,
        {"health_check": {"url": "ftp://x", "timeout_seconds": 60, "method": "POST"}},
    )
    assert bad.status_code == 400
    assert set(bad.get_json()["fields"]) == {
        "health_check.url",
        "health_check.timeout_seconds",
        "health_check.method",
    }
    not_object = write(admin_client, "PUT", url, {"health_check": "https://x"})
    assert not_object.status_code == 400 and "health_check" in not_object.get_json()["fields"]
    # Nothing changed by the refused requests; {} turns the check off.
    current = admin_client.get(url).get_json()["data"]["health_check"]
    assert current["url"] == "https://status.example.com/ping"
    assert write(admin_client, "PUT", url, {"health_check": {}}).status_code == 200
    assert admin_client.get(url).get_json()["data"]["health_check"] == {}
