"""Budgets in a real browser: create one, see the inline error for a negative amount
(nothing saved), then the budget page with its drawn burn chart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in
from webapp.cli.demo_data import load_demo_data
from webapp.cli.seed import seed_defaults
from webapp.models import Budget
from webapp.services.core.actor import Actor

pytestmark = pytest.mark.browser

# The browser reports the form's 400 answer itself; that one is expected.
EXPECTED_400 = "Failed to load resource: the server responded with a status of 400"


def test_create_a_budget_with_an_inline_error_then_its_chart(
    live_server, new_page, page_errors, admin_user, db
):
    seed_defaults(Actor.cli(), datetime.now(UTC).date())
    load_demo_data(Actor.cli(), datetime.now(UTC), days=30, requests=1500)
    budgets_before = db.session.scalar(select(func.count()).select_from(Budget))
    page = new_page()
    sign_in(page, live_server, admin_user.email)
    page.click("text=New budget")
    page.fill("#budget-name", "Chatbot guard rail")
    page.select_option("#budget-feature_id", label="AI Chatbot")
    page.fill("#budget-budget_amount", "-25")
    page.click("button:has-text('Create budget')")
    page.wait_for_selector("#budget-budget_amount-error")
    assert "must be greater than 0" in page.inner_text("#budget-budget_amount-error")
    assert page.input_value("#budget-name") == "Chatbot guard rail"
    screenshot(page, "budget-form-error.png")
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Budget)) == budgets_before

    page.fill("#budget-budget_amount", "25")
    page.click("button:has-text('Create budget')")
    page.wait_for_url(f"{live_server}/budgets/*")
    page.wait_for_selector("#budget-chart .main-svg")  # Plotly drew the burn chart
    assert "Chatbot guard rail" in page.inner_text("h1")
    screenshot(page, "budget-page.png")

    page.click("nav >> text=Spending")
    page.wait_for_selector("#spend-per-day .main-svg")
    page.click("#spending-results .presets a:text-is('7 days')")  # issue 13: one range control
    page.wait_for_url(f"{live_server}/spending?range=7d")
    page.wait_for_selector("#spend-by-provider .main-svg")
    screenshot(page, "spending-7d.png")
    assert [e for e in page_errors if EXPECTED_400 not in e] == []
