"""The Global Overview in a real browser, on demo data: ranges switch without a reload,
an alert leads to its budget, the layout holds on a phone; no console error, no CSP
violation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in
from webapp.cli.demo_data import load_demo_data
from webapp.cli.seed import seed_defaults
from webapp.models import Feature
from webapp.services.core.actor import Actor

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_with_a_budget_at_risk(db):
    today = datetime.now(UTC).date()
    seed_defaults(Actor.cli(), today)
    load_demo_data(Actor.cli(), datetime.now(UTC), days=30, requests=3000)
    chatbot = db.session.scalars(select(Feature).where(Feature.name == "chatbot")).one()
    factories.budget(
        name="Chatbot tight budget",
        feature_id=chatbot.id,
        budget_amount=Decimal("1.00"),
        start_date=today - timedelta(days=40),
        end_date=today + timedelta(days=40),
    )
    db.session.commit()


def test_overview_ranges_alert_to_budget_and_phone_layout(
    live_server, new_page, page_errors, admin_user, demo_with_a_budget_at_risk
):
    page = new_page(1440, 900)
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/")
    page.wait_for_selector("#overview-spend .main-svg")
    assert page.locator("#kpi-tiles .tile").count() == 9
    screenshot(page, "overview-1440x900.png")

    page.evaluate("window.__marker = 'same page'")  # survives only if no full reload
    for key in ("30d", "24h", "7d"):
        page.click(f"#dashboard .presets a[href='/?range={key}']")
        page.wait_for_url(f"{live_server}/?range={key}")
        page.wait_for_selector("#overview-requests .main-svg")
        assert page.locator(f".presets a[aria-current][href='/?range={key}']").count() == 1
    assert page.evaluate("window.__marker") == "same page"

    page.click("#alerts a:has-text('Chatbot tight budget')")
    page.wait_for_url(f"{live_server}/budgets/*")
    assert "Chatbot tight budget" in page.inner_text("h1")

    phone = new_page(390, 844)
    sign_in(phone, live_server, admin_user.email)
    phone.goto(f"{live_server}/")
    phone.wait_for_selector("#overview-spend .main-svg")
    # The page never scrolls sideways; tiles wrap and tables scroll inside their cards.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "overview-390x844.png")
    assert page_errors == []
