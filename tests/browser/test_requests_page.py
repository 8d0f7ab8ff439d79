"""The requests page in a real browser: a filter swaps the results and pushes the URL, a
row opens its details in place, the older page follows the cursor, and neither the page
nor a swapped-in detail is wider than a phone's viewport."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

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
    model = factories.model(factories.provider("openai", display_name="OpenAI"), "gpt-4o")
    db.session.commit()
    now = datetime.now(UTC)
    rows = []
    for i in range(60):
        failed = i % 7 == 0
        rows.append(
            {
                "feature_id": feature.id,
                "model_id": model.id,
                "created_at": now - timedelta(minutes=i),
                "status": "error" if failed else "success",
                "error_message": ("Upstream 503: " + "service unavailable " * 8)
                if failed
                else None,
                "input_tokens": 1200 + i,
                "output_tokens": 300,
                "cost_usd": Decimal("0.004512"),
                "request_data": {"messages": [{"role": "user", "content": "x" * 400}]},
                "response_data": {"text": "an answer"},
            }
        )
    insert_usage(rows)


@pytest.mark.parametrize("width", [1440, 390])
def test_filter_expand_and_page(live_server, new_page, page_errors, admin_user, usage, width):
    page = new_page(width=width)
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/requests")
    expect(page.locator("#request-results tbody tr:not(.request-detail)")).to_have_count(50)
    screenshot(page, f"requests-{width}-fresh.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.evaluate("() => { window.__same_page = true; }")

    page.select_option("select[name=status]", "failed")
    page.wait_for_url("**/requests?*status=failed*")
    expect(page.locator("#request-results tbody tr:not(.request-detail)")).to_have_count(9)
    assert page.evaluate("window.__same_page === true")

    page.locator("#request-results tbody tr:not(.request-detail) td a").first.click()
    detail = page.locator(".request-facts").first
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("Upstream 503")
    expect(detail).to_contain_text("catalog: computed from the model's catalog prices")
    expect(detail).to_contain_text("Request data")
    screenshot(page, f"requests-{width}-detail.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    page.select_option("select[name=status]", "")
    page.wait_for_url(lambda url: "status=failed" not in url)
    expect(page.locator("a[rel=next]")).to_be_visible()
    page.click("a[rel=next]")
    page.wait_for_url("**/requests?*cursor=*")
    expect(page.locator("#request-results tbody tr:not(.request-detail)")).to_have_count(10)
    screenshot(page, f"requests-{width}-older.png")
    assert page.evaluate("window.__same_page === true")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.reload()
    expect(page.locator("#request-results tbody tr:not(.request-detail)")).to_have_count(10)
    assert page_errors == []
