"""Usage from models the catalog does not know: the overview's alert, and attaching the
rows (priced, rollup moved, audited) when an admin adds the model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import csrf_token
from tests.usage_rows import assert_hourly_rollup_equals_raw, insert_usage
from webapp.extensions import db
from webapp.models import AIModel, AuditLog, UsageLog
from webapp.services.catalog import ai_models
from webapp.services.core.actor import Actor
from webapp.services.spending.analytics import spending_breakdown
from webapp.services.usage.attach import unknown_models
from webapp.services.usage.cost import request_cost
from webapp.services.usage.rollup import KEY_COLUMNS, ROLLUP, SUM_COLUMNS, recompute_rollup

D = Decimal
API = "/api/platform/ai-management"
NOW = datetime.now(UTC)


def rollup_totals() -> dict:
    """Every rollup column summed over the shards, per key; keys whose sums are all zero
    (a contribution taken out again) are left out."""
    c = ROLLUP.c
    keys = [c[k] for k in KEY_COLUMNS if k != "shard"]
    rows = db.session.execute(
        select(*keys, *[func.sum(c[name]) for name in SUM_COLUMNS]).group_by(*keys)
    )
    return {
        tuple(row[: len(keys)]): tuple(row[len(keys) :])
        for row in rows
        if any(value for value in row[len(keys) :])
    }


def assert_rollup_equals_raw() -> None:
    assert_hourly_rollup_equals_raw()
    kept = rollup_totals()
    recompute_rollup()  # the rollup the raw rows give, in this transaction only
    rebuilt = rollup_totals()
    db.session.rollback()
    assert kept == rebuilt


@pytest.fixture
def reported(db):
    """Rows naming gpt-5 in every way an application may, and rows that must stay."""
    openai = factories.provider("openai", display_name="OpenAI")
    anthropic = factories.provider("anthropic", display_name="Anthropic")
    feature = factories.feature("chatbot")
    known = factories.model(openai, "gpt-4")
    db.session.commit()

    def row(**fields):
        return {
            "feature_id": feature.id,
            "model_name": "gpt-5",
            "provider_name": "openai",
            "cost_source": "unpriced",
            "input_tokens": 1000,
            "output_tokens": 500,
            "created_at": NOW - timedelta(hours=1),
            **fields,
        }

    rows = insert_usage(
        [
            row(cache_read_input_tokens=200, cache_write_input_tokens=100, images=2),
            row(
                provider_name=None,
                status="error",
                environment="staging",
                response_time_ms=7000,
                input_tokens=333,
                output_tokens=777,
                created_at=NOW - timedelta(days=3),
            ),
            row(provider_name="OpenAI", cost_source="reported", cost_usd="0.42"),
            row(model_version="2025-01", input_tokens=1, output_tokens=1),
            row(provider_name="anthropic"),  # another provider's gpt-5: never attached
            row(model_name="mystery", provider_name=None),
            {
                "feature_id": feature.id,
                "model_id": known.id,
                "cost_usd": "1.00",
                "input_tokens": 10,
                "output_tokens": 10,
            },
        ]
    )
    return {"openai": openai, "anthropic": anthropic, "feature": feature, "rows": rows}


def new_model_fields(provider, **fields):
    return {
        "name": "gpt-5",
        "display_name": "GPT-5",
        "provider_id": provider.id,
        "model_type": "llm",
        "input_price_per_million": D("10"),
        "output_price_per_million": D("30"),
        "cache_read_price_per_million": D("1"),
        "price_per_request": D("0.001"),
        "price_per_image": D("0.01"),
        **fields,
    }


def test_unknown_models_are_listed_with_their_provider_and_counts(reported):
    found = {(m.model_name, m.provider_name): m.requests for m in unknown_models(NOW)}
    assert found == {
        ("gpt-5", "openai"): 2,
        ("gpt-5", None): 1,
        ("gpt-5", "OpenAI"): 1,
        ("gpt-5", "anthropic"): 1,
        ("mystery", None): 1,
    }
    # older than 30 days: not listed
    assert unknown_models(NOW + timedelta(days=31)) == []


def test_adding_the_model_attaches_prices_and_moves_the_rollup(reported, db):
    assert_rollup_equals_raw()
    created = ai_models.add_model(Actor(None), new_model_fields(reported["openai"]))
    model = created.model
    assert created.attached_usage_rows == 4  # both openai names, no provider, any version
    rows = {
        (r.provider_name, r.model_version, r.cost_source): r
        for r in db.session.scalars(select(UsageLog).where(UsageLog.model_id == model.id))
    }
    assert len(rows) == 4
    for row in rows.values():
        if row.cost_source == "reported":
            assert row.cost_usd == D("0.420000")  # the application's figure is kept
            continue
        assert row.cost_source == "catalog"
        assert row.cost_usd == request_cost(
            model,
            row.input_tokens,
            row.output_tokens,
            row.images,
            cache_read_tokens=row.cache_read_input_tokens,
            cache_write_tokens=row.cache_write_input_tokens,
        )
    cached = rows[("openai", None, "catalog")]
    # 700 × $10 + 200 × $1 + 100 × $10 (no cache write price: input's) + 500 × $30, per 1M,
    # + $0.001 per request + 2 × $0.01 per image
    assert cached.cost_usd == D("0.023200") + D("0.001") + D("0.02")
    left = db.session.execute(
        select(UsageLog.model_name, UsageLog.provider_name).where(UsageLog.model_id.is_(None))
    ).all()
    assert sorted(left, key=str) == [("gpt-5", "anthropic"), ("mystery", None)]
    assert_rollup_equals_raw()
    # the rollup-based reads see the model now
    today = NOW.date()
    spend = spending_breakdown(today - timedelta(days=6), today)
    by_model = {m.model_id: m for m in spend.by_model}
    assert by_model[model.id].request_count == 4
    assert by_model[model.id].amount == sum(r.cost_usd for r in rows.values())
    audit = db.session.scalar(
        select(AuditLog).where(AuditLog.action == "model.create", AuditLog.resource_id == model.id)
    )
    assert audit.new_values["attached_usage_rows"] == 4
    remaining = {(m.model_name, m.provider_name) for m in unknown_models(NOW)}
    assert remaining == {("gpt-5", "anthropic"), ("mystery", None)}


def test_a_model_with_a_version_takes_rows_of_that_version_or_none(reported, db):
    created = ai_models.add_model(
        Actor(None), new_model_fields(reported["openai"], version="2024-06")
    )
    assert created.attached_usage_rows == 3  # not the row that reported 2025-01
    assert (
        db.session.scalar(select(UsageLog.model_id).where(UsageLog.model_version == "2025-01"))
        is None
    )
    assert_rollup_equals_raw()


def test_another_providers_model_of_that_name_takes_only_its_rows(reported, db):
    created = ai_models.add_model(Actor(None), new_model_fields(reported["anthropic"]))
    # the anthropic row and the one without a provider name
    assert created.attached_usage_rows == 2
    assert_rollup_equals_raw()


def test_a_model_nobody_reported_attaches_nothing(reported, db):
    created = ai_models.add_model(Actor(None), new_model_fields(reported["openai"], name="x"))
    assert created.attached_usage_rows == 0
    audit = db.session.scalar(select(AuditLog).where(AuditLog.resource_id == created.model.id))
    assert audit.new_values["attached_usage_rows"] == 0


def test_overview_alerts_and_the_prefilled_form_attach_the_usage(admin_client, reported, db):
    page = admin_client.get("/").get_data(as_text=True)
    assert 'id="unknown-models"' in page and "Usage from models not in the catalog" in page
    assert 'href="/models/new?name=gpt-5&amp;provider=openai"' in page
    assert 'href="/models/new?name=mystery"' in page
    assert "2 requests" in page
    alerts = admin_client.get("/overview/alerts").get_data(as_text=True)
    assert 'id="unknown-models"' in alerts
    form = admin_client.get("/models/new?name=gpt-5&provider=OpenAI").get_data(as_text=True)
    assert 'name="name" type="text" value="gpt-5"' in form
    assert 'name="display_name" type="text" value="gpt-5"' in form
    assert f'<option value="{reported["openai"].id}" selected' in form
    response = admin_client.post(
        "/models",
        data={
            "csrf_token": csrf_token(admin_client, "/models/new"),
            "name": "gpt-5",
            "display_name": "GPT-5",
            "provider_id": str(reported["openai"].id),
            "model_type": "llm",
            "status": "available",
            "input_price_per_million": "10",
            "output_price_per_million": "30",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Model GPT-5 created. 4 earlier usage rows attached to it." in response.get_data(
        as_text=True
    )
    page = admin_client.get("/").get_data(as_text=True)
    assert 'href="/models/new?name=gpt-5&amp;provider=openai"' not in page
    assert 'href="/models/new?name=gpt-5&amp;provider=anthropic"' in page


def test_api_answer_says_how_many_rows_were_attached(admin_client, reported, db):
    response = admin_client.post(
        f"{API}/models",
        json={
            "name": "gpt-5",
            "display_name": "GPT-5",
            "provider_id": str(reported["anthropic"].id),
            "model_type": "llm",
            "pricing": {"input_price_per_million": 3, "output_price_per_million": 15},
        },
        headers={"X-CSRFToken": csrf_token(admin_client, "/models")},
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["attached_usage_rows"] == 2
    assert_rollup_equals_raw()


def test_catalog_prices_of_attached_rows_round_half_even_like_request_cost(db):
    provider = factories.provider("openai")
    db.session.commit()
    tokens = [1, 3, 5, 7, 1_000_001, 2_147_000_000]
    insert_usage(
        [
            {"model_name": "half", "cost_source": "unpriced", "input_tokens": n, "output_tokens": 0}
            for n in tokens
        ]
    )
    created = ai_models.add_model(
        Actor(None),
        {
            "name": "half",
            "display_name": "Half",
            "provider_id": provider.id,
            "model_type": "llm",
            "input_price_per_million": D("2.5"),  # n tokens cost n × 2.5 micro-dollars
            "output_price_per_million": D("0"),
        },
    )
    assert created.attached_usage_rows == len(tokens)
    costs = dict(
        db.session.execute(
            select(UsageLog.input_tokens, UsageLog.cost_usd).where(
                UsageLog.model_id == created.model.id
            )
        ).all()
    )
    for n in tokens:
        assert costs[n] == request_cost(created.model, n, 0), n
    assert costs[1] == D("0.000002") and costs[3] == D("0.000008")  # 2.5 → 2, 7.5 → 8
    assert_rollup_equals_raw()


def test_prefilled_form_proposes_no_provider_it_cannot_match_and_no_price(
    admin_client, reported, db
):
    """A provider name that matches none: an empty choice that must be made (not the
    first provider), the name as reported beside it, and empty required prices, so
    accepting the defaults creates nothing and re-prices nothing at $0."""
    form = admin_client.get("/models/new?name=gemini-2.0-flash&provider=google").get_data(
        as_text=True
    )
    select_html = form[form.index('<select id="model-provider_id"') :]
    select_html = select_html[: select_html.index("</select>")]
    assert '<option value="">Choose a provider…</option>' in select_html
    assert " selected" not in select_html  # the empty choice shows, nothing proposed
    assert "reported as: google" in form
    for price in ("input_price_per_million", "output_price_per_million"):
        assert f'name="{price}" type="text" value="" ' in form and "required" in form
    before = db.session.scalar(select(func.count()).select_from(AIModel))
    accepted = admin_client.post(
        "/models",
        data={
            "csrf_token": csrf_token(admin_client, "/models/new"),
            "name": "gemini-2.0-flash",
            "display_name": "gemini-2.0-flash",
            "provider_id": "",
            "model_type": "llm",
            "status": "available",
            "input_price_per_million": "",
            "output_price_per_million": "",
            "reported_provider": "google",
        },
    )
    html = accepted.get_data(as_text=True)
    assert accepted.status_code == 400
    assert 'id="model-provider_id-error"' in html
    assert 'id="model-input_price_per_million-error"' in html
    assert 'id="model-output_price_per_million-error"' in html
    assert "reported as: google" in html  # still shown beside the choice
    assert db.session.scalar(select(func.count()).select_from(AIModel)) == before
    # a name that matches is still proposed, with the name as reported
    matched = admin_client.get("/models/new?name=gpt-5&provider=OpenAI").get_data(as_text=True)
    assert f'<option value="{reported["openai"].id}" selected' in matched
    assert "reported as: OpenAI" in matched
    # the plain form proposes no provider either
    plain = admin_client.get("/models/new").get_data(as_text=True)
    assert "Choose a provider…" in plain and "reported as" not in plain
