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


@pytest.mark.parametrize("width, height", [(1440, 900), (390, 844)])
def test_the_range_control_on_overview_and_spending(
    live_server, new_page, page_errors, admin_user, demo_with_a_budget_at_risk, width, height
):
    """The one range control: an htmx swap that pushes the URL, the same view on a fresh
    load of that URL, and a wrong range that keeps the page (400) and names the problem."""
    page = new_page(width, height)
    sign_in(page, live_server, admin_user.email)
    for path, target, chart, key in (
        ("/", "#dashboard", "#overview-requests", "30d"),
        ("/spending", "#spending-results", "#spend-per-day", "90d"),
    ):
        page.goto(f"{live_server}{path}")
        page.wait_for_selector(f"{chart} .main-svg")
        page.evaluate("window.__marker = 'same page'")
        page.click(f"{target} .range-control .presets a[href$='range={key}']")
        page.wait_for_url(f"{live_server}{path}?range={key}")
        page.wait_for_selector(f"{target} .presets a[aria-current='true'][href$='range={key}']")
        page.wait_for_selector(f"{chart} .main-svg")
        assert page.evaluate("window.__marker") == "same page"  # swapped, not reloaded
        name = path.strip("/") or "overview"
        screenshot(page, f"range-{name}-{key}-swap-{width}.png")
        page.goto(f"{live_server}{path}?range={key}")
        page.wait_for_selector(f"{chart} .main-svg")
        assert page.locator(f"{target} .presets a[aria-current='true']").inner_text() in (
            "30 days",
            "90 days",
        )
        assert "UTC days, today included" in page.inner_text(f"{target} .range-caption")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        screenshot(page, f"range-{name}-{key}-load-{width}.png")
    response = page.goto(f"{live_server}/?range=1y")
    assert response.status == 400
    assert "Range must be one of 24h, 7d, 30d, custom" in page.inner_text("#query-range-error")
    assert "(range=1y)" in page.inner_text("#query-range-error")
    page.wait_for_selector("#overview-spend .main-svg")  # the rest of the page works
    screenshot(page, f"range-overview-wrong-{width}.png")
    expected = "the server responded with a status of 400"
    assert [e for e in page_errors if expected not in e] == []
