"""A refused form, filled in a real browser (htmx on), shows the field and its limit
where the form was, at desktop and phone widths (issue 16 item 5)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(page, live_server, user):
    page.goto(f"{live_server}/login")
    page.fill("#email", user.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


@pytest.mark.parametrize("width", [1440, 390])
def test_too_long_fields_are_named_with_their_limit(new_page, live_server, admin_user, width):
    page = new_page(width)
    _sign_in(page, live_server, admin_user)
    page.goto(f"{live_server}/features")
    page.fill("#feature-name", "long-description")
    page.fill("#feature-display", "Long description")
    page.fill("#feature-description", "a" * 10_001)
    page.click("#feature-create button[type=submit]")
    error = page.locator("#feature-description-error")
    error.wait_for()
    assert error.inner_text() == "Description must be text of at most 10,000 characters"
    screenshot(page, f"feature-description-refused-{width}.png")

    page.goto(f"{live_server}/users")
    page.fill("#new-email", "long-name@example.com")
    page.fill("#new-name", "b" * 500)
    page.click("text=Add user")
    error = page.locator("#new-name-error")
    error.wait_for()
    assert error.inner_text() == "Display name must be at most 200 characters"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"user-display-name-refused-{width}.png")


@pytest.mark.parametrize("width", [1440, 390])
def test_refused_actions_are_drawn_disabled_with_their_reason(
    new_page, live_server, admin_user, db, width
):
    """Issue 16 item 8: the admin's own role change and deactivation, and the delete of a
    model with history, are disabled buttons with the reason beside them."""
    from tests import factories

    openai = factories.provider("openai", display_name="OpenAI")
    gpt = factories.model(openai, "gpt-4", display_name="GPT-4")
    factories.assignment(factories.feature("chatbot", display_name="AI Chatbot"), gpt)
    db.session.commit()
    page = new_page(width)
    _sign_in(page, live_server, admin_user)
    page.goto(f"{live_server}/users")
    own = page.locator("tr", has_text=admin_user.email)
    assert own.locator("button:disabled", has_text="Change").count() == 1
    assert own.locator("button:disabled", has_text="Deactivate").count() == 1
    assert "You cannot deactivate yourself" in own.inner_text()
    screenshot(page, f"users-refused-actions-{width}.png")
    page.goto(f"{live_server}/models/{gpt.id}")
    delete = page.locator("button", has_text="Delete model")
    assert delete.is_disabled()
    assert "deployment(s) in its history" in page.locator(".refused-action").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"model-delete-refused-{width}.png")
