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
    assert error.inner_text() == "Display name (optional) must be at most 200 characters"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"user-display-name-refused-{width}.png")
