"""The provider page's health section, the badges on the providers list and the
health-check fields of the provider form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests import factories
from tests.conftest import csrf_token
from tests.usage_rows import roll_up
from webapp.extensions import db as _db
from webapp.models import Provider, ProviderHealthLog, UsageLog

HX = {"HX-Request": "true"}


@pytest.fixture
def data(db):
    anthropic = factories.provider("anthropic", display_name="Anthropic")
    openai = factories.provider("openai", display_name="OpenAI")
    quiet = factories.provider("quiet", display_name="Quiet")
    claude = factories.model(anthropic, "claude", display_name="Claude")
    mini = factories.model(
        openai,
        "gpt-4o-mini",
        display_name="GPT-4o mini",
        input_price_per_million=Decimal("0.15"),
        output_price_per_million=Decimal("0.60"),
    )
    chatbot = factories.feature("chatbot", display_name="chatbot")
    factories.assignment(chatbot, claude, "production")
    now = datetime.now(UTC)
    # Anthropic: 1 failure in 10 (10 %) → degraded; OpenAI: all fine → healthy.
    for model, failures in ((claude, 1), (mini, 0)):
        for index in range(10):
            db.session.add(
                UsageLog(
                    model_id=model.id,
                    status="error" if index < failures else "success",
                    response_time_ms=300,
                    created_at=now - timedelta(minutes=3),
                )
            )
    db.session.add(
        ProviderHealthLog(
            provider_id=anthropic.id,
            status="degraded",
            health_score=70,
            response_time_ms=300,
            error_rate=Decimal("10.00"),
            throughput=1,
            checked_at=now - timedelta(hours=2),
        )
    )
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups
    return {"anthropic": anthropic, "openai": openai, "quiet": quiet}


def test_provider_page_shows_status_score_timeline_and_affected_features(viewer_client, data):
    page = viewer_client.get(f"/providers/{data['anthropic'].id}").get_data(as_text=True)
    assert "Anthropic is degraded: chatbot (production) is affected." in page
    assert '<span class="status status-degraded">degraded</span>' in page
    assert "data-plotly-figure" in page and "plotly-strict" in page
    assert "GPT-4o mini</a> (OpenAI, $0.7500 in + out per 1M)" in page
    assert "<script>" not in page  # the chart is drawn by static/js/charts.js (CSP)


def test_hours_switch_returns_the_health_fragment(viewer_client, data):
    response = viewer_client.get(f"/providers/{data['anthropic'].id}?hours=6", headers=HX)
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200
    assert fragment.lstrip().startswith('<section id="health">')
    assert "Timeline, last 6 hours" in fragment and '<nav class="nav"' not in fragment
    long = viewer_client.get(f"/providers/{data['anthropic'].id}?hours=720").get_data(as_text=True)
    assert "(hourly averages)" in long


@pytest.mark.parametrize("hours", ["0", "721", "x"])
def test_wrong_hours_on_the_page_are_400(viewer_client, data, hours):
    response = viewer_client.get(f"/providers/{data['anthropic'].id}?hours={hours}")
    assert response.status_code == 400


def test_healthy_and_unknown_providers(viewer_client, data):
    healthy = viewer_client.get(f"/providers/{data['openai'].id}").get_data(as_text=True)
    assert "status-healthy" in healthy and "is healthy:" not in healthy
    assert "No feature runs on a model of this provider." in healthy
    quiet = viewer_client.get(f"/providers/{data['quiet'].id}").get_data(as_text=True)
    assert '<span class="status status-unknown">unknown</span>' in quiet
    assert "No health checks recorded in this period." in quiet


def test_providers_list_shows_a_health_badge_per_provider(viewer_client, data):
    page = viewer_client.get("/providers").get_data(as_text=True)
    for status in ("degraded", "healthy", "unknown"):
        assert f'<span class="status status-{status}">{status}</span>' in page


def post(client, url, **form):
    return client.post(url, data={"csrf_token": csrf_token(client, "/"), **form})


def form_of(provider, **changes):
    form = {
        "name": provider.name,
        "display_name": provider.display_name,
        "provider_type": provider.provider_type,
        "status": provider.status,
        "api_endpoint": "",
        "health_check_url": "",
        "health_check_timeout": "",
    }
    return {**form, **changes}


def test_health_check_fields_of_the_provider_form(admin_client, data):
    target = f"/providers/{data['openai'].id}"
    saved = post(
        admin_client,
        target,
        **form_of(
            data["openai"], health_check_url="https://status.example.com", health_check_timeout="2"
        ),
    )
    assert saved.status_code == 302
    provider = _db.session.get(Provider, data["openai"].id)
    _db.session.refresh(provider)
    assert provider.health_check == {"url": "https://status.example.com", "timeout_seconds": 2.0}
    page = admin_client.get(target).get_data(as_text=True)
    assert 'value="https://status.example.com"' in page
    refused = post(
        admin_client,
        target,
        **form_of(data["openai"], health_check_url="file:///etc/passwd", health_check_timeout="99"),
    )
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "Health-check URL must be an http(s) URL" in text
    assert "must be a number of seconds above 0 and at most 30" in text
    _db.session.refresh(provider)
    assert provider.health_check["url"] == "https://status.example.com"  # nothing changed
    timeout_only = post(admin_client, target, **form_of(data["openai"], health_check_timeout="3"))
    assert timeout_only.status_code == 400
