"""The MFA enrolment page and the sessions page render at desktop and phone widths
without console errors or CSP violations (screenshots in test-artifacts/)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1440, 390])
def test_mfa_enrolment_and_sessions_pages(browser, live_server, admin_user, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live_server}/login")
    page.fill("#email", admin_user.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/account/mfa")
    assert page.locator(".qr svg").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"mfa-enrolment-{width}.png"), full_page=True)
    page.goto(f"{live_server}/account/sessions")
    assert page.locator("text=this session").is_visible()
    page.screenshot(path=str(ARTIFACTS / f"sessions-{width}.png"), full_page=True)
    context.close()
    assert errors == []
