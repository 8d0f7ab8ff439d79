"""The CSV links on the spending and audit pages in a real browser: present after a fresh
load and after an htmx swap, following the range shown, and the page fits a phone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in
from tests.usage_rows import insert_usage

pytestmark = pytest.mark.browser


@pytest.fixture
def usage(db):
    feature = factories.feature("chatbot", display_name="AI Chatbot")
    model = factories.model(factories.provider("openai", display_name="OpenAI"), "gpt")
    db.session.commit()
    now = datetime.now(UTC)
    insert_usage(
        {"feature_id": feature.id, "model_id": model.id, "created_at": now - timedelta(days=n)}
        | {"cost_usd": "1.50"}
        for n in range(20)
    )


@pytest.mark.parametrize("width", [1440, 390])
def test_spending_csv_links_follow_the_range(
    live_server, new_page, page_errors, admin_user, usage, width
):
    page = new_page(width=width)
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/spending?range=30d")
    links = page.locator("#spending-results a.csv-export")
    expect(links).to_have_count(3)
    screenshot(page, f"spending-csv-{width}-fresh.png")
    first = links.first.get_attribute("href")
    page.click(".range-control a:has-text('7 days')")
    page.wait_for_url("**/spending?*range=7d*")
    expect(links).to_have_count(3)
    expect(links.first).not_to_have_attribute("href", first or "")
    screenshot(page, f"spending-csv-{width}-swapped.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    response = page.request.get(f"{live_server}{links.first.get_attribute('href')}")
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    assert "AI Chatbot" in response.text()

    page.goto(f"{live_server}/audit")
    expect(page.locator("a.csv-export")).to_have_count(1)
    page.select_option("select[name=resource_type]", "user")
    page.wait_for_url("**/audit?*resource_type=user*")
    expect(page.locator("a.csv-export")).to_have_attribute("href", re.compile("resource_type=user"))
    screenshot(page, f"audit-csv-{width}.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page_errors == []
