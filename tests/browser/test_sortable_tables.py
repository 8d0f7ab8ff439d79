"""Sortable headers in a real browser: a click swaps the table (no reload), pushes the
order to the URL and turns round on a second click; a reload shows the same order; the
range control keeps it; and the tables fit a phone's width."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in
from tests.usage_rows import insert_usage
from webapp.extensions import db as database

pytestmark = pytest.mark.browser


@pytest.fixture
def catalog(db):
    provider = factories.provider("openai", display_name="OpenAI")
    model = factories.model(provider, "gpt", display_name="GPT")
    features = [
        factories.feature(name, display_name=name.title()) for name in ("alpha", "beta", "gamma")
    ]
    database.session.commit()
    now = datetime.now(UTC) - timedelta(minutes=5)
    insert_usage(
        {"feature_id": feature.id, "model_id": model.id, "cost_usd": cost, "created_at": now}
        for feature, cost in zip(features, ("0.50", "3.00", "1.25"), strict=True)
    )


def names(page) -> list[str]:
    return page.locator("#features-table tbody td:first-child strong").all_inner_texts()


@pytest.mark.parametrize("width", [1440, 390])
def test_feature_table_sorts_by_clicking_headers(
    live_server, new_page, page_errors, admin_user, catalog, width
):
    page = new_page(width=width)
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/features")
    assert names(page) == ["Alpha", "Beta", "Gamma"]
    screenshot(page, f"features-sort-{width}-fresh.png")
    page.evaluate("() => { window.__same_page = true; }")
    page.click("#features-table th a.sort:has-text('Cost')")
    page.wait_for_url("**/features?*sort=-cost*")
    expect(page.locator("#features-table th[aria-sort=descending]")).to_contain_text("Cost")
    assert names(page) == ["Beta", "Gamma", "Alpha"]
    page.click("#features-table th a.sort:has-text('Cost')")
    page.wait_for_url("**/features?*sort=cost*")
    assert names(page) == ["Alpha", "Gamma", "Beta"]
    screenshot(page, f"features-sort-{width}-swapped.png")
    assert page.evaluate("window.__same_page === true")
    page.click(".range-control a:has-text('7 days')")
    page.wait_for_url("**/features?*range=7d*")
    assert "sort=cost" in page.url
    assert names(page) == ["Alpha", "Gamma", "Beta"]
    page.reload()
    assert names(page) == ["Alpha", "Gamma", "Beta"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page_errors == []
