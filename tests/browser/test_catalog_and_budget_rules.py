"""Issue 16 items 2, 3, 4 and 14 in a real browser: a serving model refused offline with
links to its features, the assign form offering only models of the feature's type, a
feature edited and deleted from its page (Delete disabled with the reason while it has
history), and a budget page listing its amount changes, each period with its own amount.
At 1440 px and on a phone (390 px: nothing wider than the viewport)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in
from webapp.cli.seed import seed_defaults
from webapp.models import AIModel, Budget, Feature
from webapp.services.core.actor import Actor

pytestmark = pytest.mark.browser

# The browser reports the refused form's 409 answer itself; that one is expected.
EXPECTED_409 = "Failed to load resource: the server responded with a status of 409"


def _page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("width", [1440, 390])
def test_catalog_rules_as_an_admin_sees_them(
    live_server, new_page, page_errors, admin_user, db, width
):
    seed_defaults(Actor.cli(), datetime.now(UTC).date())
    gpt4 = db.session.scalar(select(AIModel).where(AIModel.name == "gpt-4"))
    chatbot = db.session.scalar(select(Feature).where(Feature.name == "chatbot"))
    page = new_page(width=width)
    sign_in(page, live_server, admin_user.email)

    # Item 2: GPT-4 serves the chatbot in production; offline is refused, with a link.
    page.goto(f"{live_server}/models/{gpt4.id}/edit")
    page.select_option("#model-status", "offline")
    page.click("button:has-text('Save')")
    page.wait_for_selector("#model-status-error")
    assert "GPT-4 serves AI Chatbot in production" in page.inner_text("#model-status-error")
    link = page.locator("#model-form .alert a", has_text="AI Chatbot")
    assert link.is_visible()
    assert _page_width(page) <= width
    screenshot(page, f"model-offline-refused-{width}.png")
    link.click()
    page.wait_for_url(f"{live_server}/features/{chatbot.id}#env-production")
    db.session.expire_all()
    assert db.session.get(AIModel, gpt4.id).status == "available"

    # Item 3: only llm models are offered to the chatbot (the vision model is not).
    options = page.locator("#assign-staging option").all_inner_texts()
    assert any("GPT-4" in o for o in options)
    assert not any("Vision API" in o for o in options)
    # Item 14: Delete is shown disabled with the reason (the chatbot has history).
    assert page.locator("button.danger[disabled]", has_text="Delete").is_visible()
    assert "Delete is not available" in page.inner_text("#feature-delete-reason")
    assert _page_width(page) <= width
    screenshot(page, f"feature-page-{width}.png")

    # Item 14: a new feature (with its model type) is edited, then deleted.
    page.goto(f"{live_server}/features")
    page.fill("#feature-name", "summaries")
    page.fill("#feature-display", "Summaries")
    page.select_option("#feature-model_type", "llm")
    page.click("button:has-text('Add feature')")
    page.wait_for_url(f"{live_server}/features/*")
    page.click("a.button:has-text('Edit')")
    page.wait_for_selector("#feature-form")
    assert _page_width(page) <= width
    screenshot(page, f"feature-edit-{width}.png")
    page.fill("#feature-display_name", "")
    page.click("#feature-form button:has-text('Save')")
    page.wait_for_selector("#feature-display_name-error")  # swapped in, nothing saved
    page.fill("#feature-display_name", "Meeting summaries")
    page.select_option("#feature-model_type", "embedding")
    page.click("#feature-form button:has-text('Save')")
    page.wait_for_selector("h1:has-text('Meeting summaries')")
    assert "needs embedding models" in page.inner_text("main")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button.danger:has-text('Delete')")
    page.wait_for_url(f"{live_server}/features")
    assert "Feature Meeting summaries deleted." in page.inner_text("main")
    db.session.expire_all()
    assert db.session.scalar(select(Feature).where(Feature.name == "summaries")) is None
    assert [e for e in page_errors if EXPECTED_409 not in e and "400" not in e] == []


@pytest.mark.parametrize("width", [1440, 390])
def test_budget_page_lists_the_amount_changes(
    live_server, new_page, page_errors, admin_user, db, width
):
    seed_defaults(Actor.cli(), datetime.now(UTC).date())
    budget = db.session.scalar(select(Budget).order_by(Budget.name).limit(1))
    page = new_page(width=width)
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/budgets/{budget.id}/edit")
    page.fill("#budget-budget_amount", "250")
    page.click("#budget-form button[type=submit]")
    page.wait_for_url(f"{live_server}/budgets/{budget.id}")
    rows = page.locator("#amount-history tbody tr").all_inner_texts()
    assert len(rows) == 2
    assert "$250.00" in rows[0] and admin_user.email in rows[0]
    assert "$1,000.00" in rows[1] and "(and before)" in rows[1]
    assert page.locator("#amount-history").is_visible()
    assert _page_width(page) <= width
    screenshot(page, f"budget-amount-history-{width}.png")
    assert page_errors == []
