"""Spending and budget pages: ranges in the URL, partials, forms with inline errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import csrf_token
from webapp.extensions import db
from webapp.models import Budget
from webapp.services.usage.recording import record_usage


@pytest.fixture
def usage(db):
    feature = factories.feature("chatbot")
    model = factories.model(factories.provider("openai", display_name="OpenAI"), "gpt")
    db.session.commit()
    now = datetime.now(UTC)
    record_usage(
        [
            {
                "feature_id": str(feature.id),
                "model_id": str(model.id),
                "input_tokens": 1000,
                "output_tokens": 1000,
                "created_at": now - timedelta(days=n),
            }
            for n in range(10)
        ]
    )
    return feature


def test_spending_page_shows_charts_tables_and_export(admin_client, usage):
    page = admin_client.get("/spending").get_data(as_text=True)
    assert 'id="spend-per-day"' in page and 'id="spend-by-provider"' in page
    assert "$0.90" in page  # 10 requests × (1000 × $30 + 1000 × $60) / 1M
    assert "/api/platform/ai-management/usage.csv?start_date=" in page
    assert 'aria-current="true">30 days' in page  # issue 13: one label per range on every page


def test_spending_range_is_a_partial_for_htmx(admin_client, usage):
    response = admin_client.get("/spending?preset=7d", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="spending-results">')
    assert "<html" not in html
    assert "$0.63" in html  # 7 days
    custom = admin_client.get("/spending?start_date=2000-01-01&end_date=2000-01-02").get_data(
        as_text=True
    )
    assert "No usage in this range" in custom


def test_spending_bad_range_is_named_and_falls_back(admin_client, usage):
    html = admin_client.get("/spending?start_date=2026-11-05&end_date=2026-11-01").get_data(
        as_text=True
    )
    assert "End date must be on or after the start date (showing the last 30 days instead)" in html
    html = admin_client.get("/spending?preset=1y").get_data(as_text=True)
    assert "Preset must be one of 7d, 30d, 90d, month" in html


def test_budget_list_and_page(admin_client, usage):
    today = datetime.now(UTC).date()
    budget = factories.budget(
        name="Chat budget",
        feature_id=usage.id,
        budget_amount=Decimal("0.50"),
        start_date=today - timedelta(days=60),
        end_date=today + timedelta(days=60),
        period_type="monthly",
    )
    db.session.commit()
    listing = admin_client.get("/budgets").get_data(as_text=True)
    assert "Chat budget" in listing and 'class="meter' in listing
    page = admin_client.get(f"/budgets/{budget.id}").get_data(as_text=True)
    assert 'id="budget-chart"' in page
    assert "History per period" in page
    assert admin_client.get("/budgets/not-a-uuid").status_code == 404


def test_budget_form_shows_errors_inline_and_saves_nothing(admin_client, db):
    token = csrf_token(admin_client, "/budgets/new")
    response = admin_client.post(
        "/budgets",
        data={
            "csrf_token": token,
            "name": "Bad",
            "budget_amount": "-10",
            "alert_threshold": "0.8",
            "period_type": "monthly",
            "start_date": "2026-11-01",
            "end_date": "2026-11-30",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<form id="budget-form"')
    assert "Amount must be greater than 0" in html
    assert 'value="Bad"' in html  # what was typed stays
    assert db.session.scalar(select(func.count()).select_from(Budget)) == 0


def test_budget_form_success_redirects_to_the_budget(admin_client, db):
    token = csrf_token(admin_client, "/budgets/new")
    response = admin_client.post(
        "/budgets",
        data={
            "csrf_token": token,
            "name": "Good",
            "budget_amount": "10",
            "alert_threshold": "0.8",
            "period_type": "weekly",
            "start_date": "2026-11-01",
            "end_date": "2026-12-31",
            "is_active": "on",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 204
    budget = db.session.scalars(select(Budget)).one()
    assert response.headers["HX-Redirect"] == f"/budgets/{budget.id}"
    assert budget.period_type == "weekly" and budget.is_active


def test_viewer_sees_no_budget_buttons(viewer_client, db):
    budget = factories.budget()
    db.session.commit()
    assert "New budget" not in viewer_client.get("/budgets").get_data(as_text=True)
    assert "Delete" not in viewer_client.get(f"/budgets/{budget.id}").get_data(as_text=True)


def test_budget_page_shows_the_amount_changes_and_each_periods_amount(admin_client, db):
    today = datetime.now(UTC).date()
    budget = factories.budget(
        name="Daily",
        period_type="daily",
        budget_amount=Decimal("120.00"),
        start_date=today - timedelta(days=2),
        end_date=today + timedelta(days=10),
    )
    db.session.commit()
    token = csrf_token(admin_client, f"/budgets/{budget.id}/edit")
    form = {
        "csrf_token": token,
        "name": "Daily",
        "period_type": "daily",
        "budget_amount": "20",
        "alert_threshold": "0.80",
        "start_date": (today - timedelta(days=2)).isoformat(),
        "end_date": (today + timedelta(days=10)).isoformat(),
        "is_active": "on",
        "enforcement": "observe",
    }
    assert admin_client.post(f"/budgets/{budget.id}", data=form).status_code in (204, 302)
    page = admin_client.get(f"/budgets/{budget.id}").get_data(as_text=True)
    history = page.split("History per period")[1].split("Amount changes")[0]
    assert history.count("$120.00") == 2 and history.count("$20.00") == 1
    changes = page.split("Amount changes")[1]
    assert "$20.00" in changes and "admin@example.com" in changes and "$120.00" in changes
    assert "of $20.00" in page
