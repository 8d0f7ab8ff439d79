"""Features, models and providers pages: content, HTMX fragments and form errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests import factories
from tests.conftest import csrf_token
from tests.usage_rows import roll_up
from webapp.models import AIModel, AuditLog, Feature, FeatureModelAssignment, UsageLog

HX = {"HX-Request": "true"}


@pytest.fixture
def data(db):
    openai = factories.provider("openai", display_name="OpenAI")
    gpt4 = factories.model(openai, "gpt-4", display_name="GPT-4", price_per_image=Decimal("0.0015"))
    mini = factories.model(openai, "gpt-4o-mini", display_name="GPT-4o mini")
    old = factories.model(openai, "davinci", display_name="Davinci", status="deprecated")
    chatbot = factories.feature("chatbot", display_name="AI Chatbot")
    factories.assignment(chatbot, gpt4)
    db.session.add(
        UsageLog(
            feature_id=chatbot.id,
            model_id=gpt4.id,
            status="success",
            response_time_ms=250,
            cost_usd=Decimal("0.5"),
            created_at=datetime.now(UTC) - timedelta(hours=3),
        )
    )
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups
    return {"openai": openai, "gpt4": gpt4, "mini": mini, "old": old, "chatbot": chatbot}


def post(client, url, headers=None, **form):
    return client.post(
        url, data={"csrf_token": csrf_token(client, "/"), **form}, headers=headers or {}
    )


def test_features_table_shows_models_and_health_per_range(viewer_client, data):
    page = viewer_client.get("/features?range=24h").get_data(as_text=True)
    # p95 of one 250 ms request: bucket [200, 300) → 200 + 100 × 0.95.
    assert "AI Chatbot" in page and "GPT-4" in page and "$0.50" in page and "295 ms" in page
    hour = viewer_client.get("/features?range=1h", headers=HX)
    fragment = hour.get_data(as_text=True)
    assert (
        fragment.lstrip().startswith('<section id="features-table"')
        and '<nav class="nav"' not in fragment
    )
    assert "Health over the last 1h" in fragment and "$0.00" in fragment  # the request was 3 h ago
    assert "HX-Request" in hour.headers["Vary"]


def test_feature_page_tiles_chart_matrix_and_history(viewer_client, data):
    page = viewer_client.get(f"/features/{data['chatbot'].id}").get_data(as_text=True)
    for text in (
        "Uptime",
        "100.00 %",
        # uptime and error rate say what they count, so 100 % uptime beside errors reads right
        "hours with traffic in which at least half the requests succeeded",
        "of all finished requests",
        "data-plotly-figure",
        'id="env-production"',
        "Assignment history",
    ):
        assert text in page
    assert "Assign</button>" not in page  # viewers see no assign form
    fragment = viewer_client.get(f"/features/{data['chatbot'].id}?range=7d", headers=HX).get_data(
        as_text=True
    )
    assert (
        fragment.lstrip().startswith('<section id="health">')
        and "Health over the last 7d" in fragment
    )


def test_assigning_through_htmx_returns_the_updated_matrix(admin_client, data, db):
    response = post(
        admin_client,
        f"/features/{data['chatbot'].id}/assign",
        headers=HX,
        environment="production",
        model_id=str(data["mini"].id),
    )
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="deployments">')
    assert "GPT-4o mini now serves AI Chatbot in production" in fragment
    active = db.session.scalars(
        select(FeatureModelAssignment).where(FeatureModelAssignment.is_active)
    ).one()
    assert active.model_id == data["mini"].id


def test_the_assign_form_offers_only_models_of_the_features_type(admin_client, data, db):
    embed = factories.model(data["openai"], "embed", display_name="Embed", model_type="embedding")
    search = factories.feature("ai-search", display_name="AI Search")
    db.session.commit()
    chatbot_page = admin_client.get(f"/features/{data['chatbot'].id}").get_data(as_text=True)
    assert f'value="{data["mini"].id}"' in chatbot_page
    assert f'value="{embed.id}"' not in chatbot_page
    search_page = admin_client.get(f"/features/{search.id}").get_data(as_text=True)
    assert f'value="{embed.id}"' in search_page
    assert f'value="{data["mini"].id}"' not in search_page
    assert "needs embedding models" in search_page
    # Posted anyway (an old page, a crafted form): the service refuses, the row says why.
    refused = post(
        admin_client,
        f"/features/{data['chatbot'].id}/assign",
        headers=HX,
        environment="staging",
        model_id=str(embed.id),
    )
    assert refused.status_code == 409
    assert "Embed is an embedding model; AI Chatbot needs an llm model" in refused.get_data(
        as_text=True
    )


def test_assigning_a_deprecated_model_shows_the_reason_in_the_row(admin_client, data):
    response = post(
        admin_client,
        f"/features/{data['chatbot'].id}/assign",
        headers=HX,
        environment="staging",
        model_id=str(data["old"].id),
    )
    assert response.status_code == 409
    assert "Davinci is deprecated and cannot be assigned" in response.get_data(as_text=True)


def test_assign_without_javascript_redirects_back_with_a_message(admin_client, data):
    response = post(
        admin_client,
        f"/features/{data['chatbot'].id}/assign",
        environment="staging",
        model_id=str(data["mini"].id),
    )
    assert response.status_code == 302
    assert "now serves AI Chatbot in staging" in admin_client.get(
        response.headers["Location"]
    ).get_data(as_text=True)


def _active_model(db):
    db.session.expire_all()
    return db.session.scalars(
        select(FeatureModelAssignment.model_id).where(FeatureModelAssignment.is_active)
    ).one()


def test_every_write_on_the_feature_page_swaps_its_section_with_a_message(admin_client, data, db):
    """Issue 16 item 17: assign, roll back and change status end the same way with htmx:
    the section they changed comes back (200) with a status message; a refusal comes back
    in the same section (400/409) with an alert that names the field by its label."""
    url = f"/features/{data['chatbot'].id}"
    assigned = post(
        admin_client, f"{url}/assign", HX, environment="production", model_id=str(data["mini"].id)
    )
    rolled = post(admin_client, f"{url}/rollback", HX, environment="production")
    assert _active_model(db) == data["gpt4"].id
    status = post(admin_client, f"{url}/status", HX, status="maintenance")
    for response, section, message in (
        (assigned, '<section id="deployments">', "GPT-4o mini now serves AI Chatbot in production"),
        (
            rolled,
            '<section id="deployments">',
            "Rolled back: GPT-4 now serves AI Chatbot in production.",
        ),
        (
            status,
            '<section class="card" id="feature-status-card">',
            "AI Chatbot is now in maintenance.",
        ),
    ):
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and "<html" not in html
        assert section in html and f'<p class="flash" role="status">{message}' in html
    # The heading's status pill is swapped out of band with the status card.
    pill = 'id="feature-status-pill" class="status status-maintenance" hx-swap-oob="true"'
    assert html.lstrip().startswith(f"<span {pill}")
    db.session.expire_all()
    assert db.session.get(Feature, data["chatbot"].id).status == "maintenance"

    refused = post(admin_client, f"{url}/status", HX, status="asleep")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and 'id="feature-status-card"' in html
    assert (
        '<p class="flash flash-error" role="alert">Status not changed: Status must be one' in html
    )
    nothing = post(admin_client, f"{url}/rollback", HX, environment="staging")
    html = nothing.get_data(as_text=True)
    assert nothing.status_code in (400, 409) and html.lstrip().startswith(
        '<section id="deployments">'
    )
    assert '<p class="flash flash-error" role="alert">Nothing rolled back: ' in html


def test_without_javascript_every_write_on_the_feature_page_redirects_with_a_message(
    admin_client, data, db
):
    """The same three writes as plain forms: post/redirect/get, the message flashed."""
    url = f"/features/{data['chatbot'].id}"
    for path, form, message in (
        (
            "assign",
            {"environment": "production", "model_id": str(data["mini"].id)},
            "GPT-4o mini now serves AI Chatbot in production",
        ),
        (
            "rollback",
            {"environment": "production"},
            "Rolled back: GPT-4 now serves AI Chatbot in production.",
        ),
        ("status", {"status": "maintenance"}, "AI Chatbot is now in maintenance."),
        ("status", {"status": "asleep"}, "Status not changed: Status must be one of"),
    ):
        response = post(admin_client, f"{url}/{path}", **form)
        assert response.status_code == 302 and response.headers["Location"] == url, path
        assert message in admin_client.get(url).get_data(as_text=True), path
    assert _active_model(db) == data["gpt4"].id


def test_create_feature_form_errors_come_back_inline(admin_client, data):
    response = post(admin_client, "/features", headers=HX, name="Bad Name", display_name="")
    assert response.status_code == 400
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="feature-create"')
    assert (
        "Name must be 1-100 lower-case letters" in fragment
        and "Display name is required" in fragment
    )
    assert "Model type is required" not in fragment  # optional: a feature needs an llm by default
    ok = post(
        admin_client,
        "/features",
        headers=HX,
        name="summaries",
        display_name="Summaries",
        model_type="llm",
    )
    assert ok.status_code == 204 and ok.headers["HX-Redirect"].startswith("/features/")


def test_models_filter_returns_the_table_fragment(viewer_client, data):
    fragment = viewer_client.get("/models?status=deprecated", headers=HX).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="models-table"')
    assert "Davinci" in fragment and "GPT-4o mini" not in fragment
    page = viewer_client.get("/models?provider=openai&model_type=llm").get_data(as_text=True)
    assert "GPT-4o mini" in page and 'value="openai" selected' in page


def test_model_page_shows_pricing_metrics_and_deployments(viewer_client, data):
    page = viewer_client.get(f"/models/{data['gpt4'].id}?range=24h").get_data(as_text=True)
    for text in ("$30.000000", "$60.000000", "$0.001500", "AI Chatbot", "production", "250 ms"):
        assert text in page, text


def test_model_form_shows_inline_errors_and_saves_nothing(admin_client, data, db):
    response = post(
        admin_client,
        "/models",
        headers=HX,
        name="claude",
        display_name="Claude",
        provider_id=str(data["openai"].id),
        model_type="llm",
        status="available",
        input_price_per_million="-3",
        output_price_per_million="abc",
    )
    assert response.status_code == 400
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<form id="model-form"')
    assert "Input, per 1M tokens must not be negative" in fragment
    assert "Output, per 1M tokens must be a number in USD" in fragment
    assert 'value="claude"' in fragment  # what the admin typed is kept
    assert db.session.scalar(select(AIModel).where(AIModel.name == "claude")) is None


def test_model_edit_and_create(admin_client, data, db):
    assert admin_client.get(f"/models/{data['mini'].id}/edit").status_code == 200
    response = post(
        admin_client,
        f"/models/{data['mini'].id}",
        name="gpt-4o-mini",
        display_name="GPT-4o mini",
        provider_id=str(data["openai"].id),
        model_type="llm",
        status="beta",
        input_price_per_million="0.15",
        output_price_per_million="0.60",
        capabilities="chat, vision",
    )
    assert response.status_code == 302
    db.session.expire_all()
    model = db.session.get(AIModel, data["mini"].id)
    assert model.status == "beta" and model.capabilities == ["chat", "vision"]
    assert model.output_price_per_million == Decimal("0.600000")


def test_viewer_cannot_open_model_forms(viewer_client, data):
    assert viewer_client.get("/models/new").status_code == 403
    assert viewer_client.get(f"/models/{data['gpt4'].id}/edit").status_code == 403


def test_providers_pages(admin_client, data):
    page = admin_client.get("/providers").get_data(as_text=True)
    assert "OpenAI" in page and "GPT-4o mini" in page
    response = post(
        admin_client,
        "/providers",
        name="",
        display_name="",
        provider_type="x",
        status="active",
        api_endpoint="",
    )
    assert response.status_code == 400 and "Name is required" in response.get_data(as_text=True)
    refused = post(admin_client, f"/providers/{data['openai'].id}/delete")
    # Post/redirect/get: the provider's page says why; a reload repeats nothing.
    assert refused.status_code == 302 and refused.location == f"/providers/{data['openai'].id}"
    page = admin_client.get(refused.location).get_data(as_text=True)
    assert "GPT-4 serves AI Chatbot" in page and "flash-error" in page


def test_a_refused_model_delete_redirects_to_the_model_saying_why(admin_client, data):
    target = f"/models/{data['gpt4'].id}"
    refused = post(admin_client, f"{target}/delete")
    assert refused.status_code == 302 and refused.location == target
    page = admin_client.get(target).get_data(as_text=True)
    assert "Not deleted: " in page and 'class="flash flash-error" role="alert"' in page
    htmx = post(admin_client, f"{target}/delete", headers=HX)
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"] == target


def test_model_form_takes_cache_prices_and_the_page_shows_them(admin_client, data, db):
    fields = {
        "name": "cached",
        "display_name": "Cached",
        "provider_id": str(data["openai"].id),
        "model_type": "llm",
        "status": "available",
        "input_price_per_million": "3",
        "output_price_per_million": "15",
        "cache_read_price_per_million": "0.30",
        "cache_write_price_per_million": "",
    }
    form = admin_client.get("/models/new").get_data(as_text=True)
    assert 'name="cache_read_price_per_million"' in form
    assert 'name="cache_write_price_per_million"' in form
    refused = post(
        admin_client, "/models", headers=HX, **(fields | {"cache_write_price_per_million": "-1"})
    )
    assert refused.status_code == 400
    assert "must not be negative" in refused.get_data(as_text=True)
    assert db.session.scalar(select(AIModel).where(AIModel.name == "cached")) is None
    assert post(admin_client, "/models", **fields).status_code == 302
    model = db.session.scalar(select(AIModel).where(AIModel.name == "cached"))
    assert model.cache_read_price_per_million == Decimal("0.300000")
    assert model.cache_write_price_per_million is None  # empty: the input price
    page = admin_client.get(f"/models/{model.id}").get_data(as_text=True)
    assert "Cache read, per 1M tokens</dt><dd>$0.300000" in page
    assert 'Cache write, per 1M tokens</dt><dd><span class="muted">input price</span>' in page
    edit = admin_client.get(f"/models/{model.id}/edit").get_data(as_text=True)
    assert 'value="0.300000"' in edit


def test_model_form_refuses_offline_while_serving_and_links_the_feature(admin_client, data, db):
    """The form says why (the service's message under Status) and links each feature."""
    response = post(
        admin_client,
        f"/models/{data['gpt4'].id}",
        name="gpt-4",
        display_name="GPT-4",
        provider_id=str(data["openai"].id),
        model_type="llm",
        status="offline",
        input_price_per_million="30",
        output_price_per_million="60",
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert (
        "GPT-4 serves AI Chatbot in production; assign another model there first, then set "
        "it offline" in page
    )
    assert f'href="/features/{data["chatbot"].id}#env-production">AI Chatbot</a>' in page
    db.session.expire_all()
    assert db.session.get(AIModel, data["gpt4"].id).status == "available"


def test_feature_edit_form_saves_audits_and_shows_errors_inline(admin_client, data, db):
    chatbot = data["chatbot"]
    page = admin_client.get(f"/features/{chatbot.id}/edit").get_data(as_text=True)
    assert 'value="AI Chatbot"' in page and "<code>chatbot</code>" in page
    # Served by GPT-4: the type is shown fixed, with the reason.
    assert 'id="feature-model_type" disabled' in page
    assert "served by GPT-4 in production: its model type can change only" in page
    bad = post(admin_client, f"/features/{chatbot.id}", headers=HX, display_name="")
    assert bad.status_code == 400
    assert "Display name is required" in bad.get_data(as_text=True)
    ok = post(
        admin_client,
        f"/features/{chatbot.id}",
        headers=HX,
        display_name="Support bot",
        description="  Answers questions  ",
    )
    assert ok.status_code == 204 and ok.headers["HX-Redirect"] == f"/features/{chatbot.id}"
    db.session.expire_all()
    feature = db.session.get(Feature, chatbot.id)
    assert (feature.display_name, feature.description, feature.name) == (
        "Support bot",
        "Answers questions",
        "chatbot",
    )
    (row,) = db.session.scalars(select(AuditLog).where(AuditLog.action == "feature.update"))
    assert row.new_values == {"display_name": "Support bot", "description": "Answers questions"}


def test_feature_delete_is_disabled_with_the_reason_while_it_has_history(admin_client, data, db):
    chatbot = data["chatbot"]
    page = admin_client.get(f"/features/{chatbot.id}").get_data(as_text=True)
    assert 'class="danger" disabled aria-describedby="feature-delete-reason"' in page
    assert (
        "Delete is not available: AI Chatbot has 1 model assignment, 1 usage record in its "
        "history" in page
    )
    assert f'action="/features/{chatbot.id}/delete"' not in page
    # Posted anyway (an old page): refused, back on the feature's page (a safe reload).
    refused = post(admin_client, f"/features/{chatbot.id}/delete")
    assert refused.status_code == 302 and refused.headers["Location"] == f"/features/{chatbot.id}"
    assert db.session.get(Feature, chatbot.id) is not None
    spare = factories.feature("spare", display_name="Spare")
    db.session.commit()
    spare_id = spare.id
    page = admin_client.get(f"/features/{spare.id}").get_data(as_text=True)
    assert f'action="/features/{spare.id}/delete"' in page and "Delete is not available" not in page
    edit = admin_client.get(f"/features/{spare.id}/edit").get_data(as_text=True)
    assert 'id="feature-model_type" name="model_type"' in edit  # not served: can change
    gone = post(admin_client, f"/features/{spare.id}/delete")
    assert gone.status_code == 302 and gone.headers["Location"] == "/features"
    assert "Feature Spare deleted." in admin_client.get("/features").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Feature, spare_id) is None


def test_viewer_sees_no_feature_edit_or_delete(viewer_client, data):
    page = viewer_client.get(f"/features/{data['chatbot'].id}").get_data(as_text=True)
    assert "/edit" not in page and "Delete" not in page
    assert viewer_client.get(f"/features/{data['chatbot'].id}/edit").status_code == 403
