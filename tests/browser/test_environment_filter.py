"""The environment filter in a real browser: choosing an environment swaps the figures
(no reload), pushes the URL, and survives a range switch, an htmx swap and a reload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import SETTLED, screenshot
from tests.browser.test_console import sign_in
from tests.usage_rows import insert_usage

pytestmark = pytest.mark.browser


@pytest.fixture
def usage(db):
    feature = factories.feature("chatbot")
    model = factories.model(factories.provider("openai"), "gpt")
    db.session.commit()
    moment = datetime.now(UTC) - timedelta(minutes=30)
    insert_usage(
        {
            "feature_id": feature.id,
            "model_id": model.id,
            "environment": environment,
            "created_at": moment,
            "cost_usd": cost,
            "cost_source": "reported",
        }
        for environment, cost in (("production", "2.50"), ("staging", "0.25"))
    )


def test_spending_environment_select_keeps_its_state(
    live_server, new_page, page_errors, admin_user, usage
):
    page = new_page()
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/spending")
    page.wait_for_selector("#spending-results")
    assert "$2.75" in page.inner_text("#spending-results")
    page.evaluate("() => { window.__same_page = true; }")
    page.select_option("select[name=environment]", "staging")
    page.wait_for_url("**/spending?*environment=staging*")
    expect(page.locator("#spending-results")).to_contain_text("$0.25")
    # a range switch keeps the environment
    page.click(".range-control a:has-text('7 days')")
    page.wait_for_url("**/spending?*range=7d*")
    assert "environment=staging" in page.url
    page.wait_for_selector(".range-control a[aria-current=true]:has-text('7 days')")
    assert page.locator("select[name=environment]").input_value() == "staging"
    assert "$0.25" in page.inner_text("#spending-results")
    assert page.evaluate("window.__same_page === true")  # swapped, not reloaded
    # and choosing another environment keeps the range (once the range swap has settled:
    # a choice made on the control it replaces is lost)
    page.wait_for_function(SETTLED)
    page.select_option("select[name=environment]", "")
    expect(page.locator("#spending-results")).to_contain_text("$2.75")
    assert "range=7d" in page.url
    # The swap that showed $2.75 replaces the control too: choose once it has settled.
    page.wait_for_function(SETTLED)
    page.select_option("select[name=environment]", "production")
    page.wait_for_url("**environment=production*")
    page.reload()
    assert page.locator("select[name=environment]").input_value() == "production"
    assert page.locator(".range-control a[aria-current=true]").inner_text() == "7 days"
    assert "$2.50" in page.inner_text("#spending-results")
    screenshot(page, "spending-environment-1440x900.png")
    assert page_errors == []
