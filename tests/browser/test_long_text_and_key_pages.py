"""Long text and small screens: a 200-character model name in the overview's
unknown-models alert and a new key's secret keep the page as wide as the viewport, the
key table stacks on a phone so Revoke is on screen, the Copy button is a console button
and the empty key list has no box of its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in
from tests.usage_rows import insert_usage

pytestmark = pytest.mark.browser

LONG_NAME = "gemini-" + "x" * 193  # 200 characters, nowhere to break

PAGE_WIDTH = "() => document.documentElement.scrollWidth"


@pytest.fixture
def unknown_model_usage(db):
    feature = factories.feature("chatbot")
    db.session.commit()
    insert_usage(
        [
            {
                "feature_id": feature.id,
                "created_at": datetime.now(UTC) - timedelta(minutes=5),
                "model_name": LONG_NAME,
                "provider_name": "g" * 200,
                "environment": "staging",
                "cost_source": "unpriced",
            }
        ]
    )


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_a_long_unknown_model_name_keeps_the_overview_in_the_viewport(
    live_server, new_page, page_errors, admin_user, unknown_model_usage, width, height
):
    page = new_page(width, height)
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/?environment=production")
    page.wait_for_selector("#unknown-models code")
    assert LONG_NAME in page.inner_text("#unknown-models")
    assert "every environment, not only production" in page.inner_text("#unknown-models")
    assert page.evaluate(PAGE_WIDTH) == width
    screenshot(page, f"overview-unknown-model-{width}x{height}.png")
    assert page_errors == []


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_api_keys_page_at_desktop_and_phone_widths(
    live_server, new_page, page_errors, admin_user, db, width, height
):
    page = new_page(width, height)
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/api-keys")
    empty = page.locator("td.empty")
    assert empty.inner_text() == "No API keys yet."
    assert empty.evaluate("(el) => getComputedStyle(el).borderTopStyle") == "none"
    assert page.evaluate(PAGE_WIDTH) == width

    page.fill("#key-name", "photo-tagger " + "p" * 150)
    page.check("input[name=scopes][value='usage:write']")
    page.click("#api-key-form button[type=submit]")
    page.wait_for_selector("#new-key-secret")
    screenshot(page, f"api-keys-new-key-{width}x{height}.png")
    copy = page.locator("button.copy")
    assert copy.is_visible()
    # styled as the console's buttons, not the browser's default grey button
    assert copy.evaluate("(el) => getComputedStyle(el).backgroundColor") == "rgb(255, 255, 255)"
    assert copy.evaluate("(el) => getComputedStyle(el).borderTopLeftRadius") == "6px"
    assert page.evaluate(PAGE_WIDTH) == width
    revoke = page.locator("button.danger:has-text('Revoke')")
    box = revoke.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    # no sideways scrolling needed to reach it
    assert revoke.evaluate(
        "(el) => { const wrap = el.closest('.table-wrap');"
        " return wrap.scrollWidth <= wrap.clientWidth; }"
    )
    assert page_errors == []
