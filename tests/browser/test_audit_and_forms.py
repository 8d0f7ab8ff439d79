"""The audit log names resources and shows only changed fields; the prompt editor warns
about malformed placeholders; the password form names every problem — at desktop and
phone widths, no wider than the viewport (issue 16 items 11 and 22)."""

from __future__ import annotations

import pytest

from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in
from webapp.services.catalog.features import create_feature, update_feature
from webapp.services.core.actor import Actor
from webapp.services.spending.budgets import create_budget, delete_budget

pytestmark = pytest.mark.browser


@pytest.fixture
def history(db, admin_user):
    actor = Actor(admin_user.id)
    feature = create_feature(actor, {"name": "chatbot", "display_name": "AI Chatbot"})
    update_feature(actor, feature.id, {"status": "maintenance", "description": "Answers"})
    budget = create_budget(
        actor,
        {
            "name": "Quarterly research budget",
            "budget_amount": "5",
            "start_date": "2026-11-01",
            "end_date": "2026-11-30",
        },
    )
    delete_budget(actor, budget.id)
    prompt = factories.prompt("greeting", feature_id=feature.id, content="Hi {{ user name }}")
    db.session.commit()
    return feature, prompt


@pytest.mark.parametrize("width", [1440, 390])
def test_audit_names_prompt_warnings_and_password_errors(
    live_server, new_page, page_errors, admin_user, history, width
):
    feature, prompt = history
    page = new_page(width)
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/audit")
    link = page.locator("#audit-results a", has_text="AI Chatbot").first
    assert link.get_attribute("href") == f"/features/{feature.id}"
    assert page.locator("#audit-results", has_text="Quarterly research budget (deleted)").count()
    page.locator("summary", has_text="feature.update").click()
    diff = page.locator("details[open] .diff").inner_text()
    assert "status" in diff and "maintenance" in diff and "null" in diff and "None" not in diff
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"audit-names-{width}.png")

    page.goto(f"{live_server}/audit?page=999")
    assert "There is no page 999" in page.locator("#audit-results").inner_text()

    page.goto(f"{live_server}/prompts/{prompt.id}")
    warnings = page.locator(".placeholder-warnings")
    assert "did you mean {{user_name}}?" in warnings.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"prompt-placeholder-warnings-{width}.png")

    page.goto(f"{live_server}/account/password")
    page.fill("#current_password", "not it")
    page.fill("#new_password", "short")
    page.fill("#confirm_password", "other")
    page.locator("form button[type=submit]").last.click()
    page.wait_for_selector(".field-error")
    assert page.locator(".field-error").count() == 3
    screenshot(page, f"password-errors-{width}.png")
    # The refused form answers 400 on purpose; nothing else went wrong.
    assert [e for e in page_errors if "status of 400" not in e] == []
