"""Promoting a prompt version development → staging → production in a real browser:
production asks first (cancel sends nothing), and the page shows what is live where."""

from __future__ import annotations

import pytest

from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def greeting(db):
    feature = factories.feature("chatbot", display_name="AI Chatbot")
    factories.prompt("greeting", 1, feature_id=feature.id, is_active=True)
    v2 = factories.prompt("greeting", 2, feature_id=feature.id, content="Hi {{name}}!")
    db.session.commit()
    return v2


def test_promote_a_version_to_production(live_server, new_page, page_errors, admin_user, greeting):
    page = new_page()
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/prompts/{greeting.id}")
    assert "v1" in page.locator("#live-production").inner_text()
    v2 = page.locator("tr", has_text="v2").filter(has=page.locator("button"))
    asked = []  # every activation asks first (issue 16 item 9)
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    v2.locator("button", has_text="Activate in development").click()
    page.wait_for_selector("text=Version 2 is now live in development.")
    assert asked == [
        "Make v2 of greeting live in development? Applications in development get it right away."
    ]
    v2.locator("button", has_text="Promote to staging").click()
    page.wait_for_selector("text=greeting v2 promoted from development to staging.")
    assert "v2" in page.locator("#live-staging").inner_text()

    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    v2.locator("button", has_text="Promote to production").click()
    assert questions and "from staging to production?" in questions[0]
    assert "v1" in page.locator("#live-production").inner_text()  # cancelled: nothing sent

    page.once("dialog", lambda dialog: dialog.accept())
    v2.locator("button", has_text="Promote to production").click()
    page.wait_for_selector("text=greeting v2 promoted from staging to production.")
    assert "v2" in page.locator("#live-production").inner_text()
    assert "active" in page.locator("h1").inner_text()  # is_active = live in production
    screenshot(page, "prompt-environments-1440x900.png")
    assert page_errors == []
