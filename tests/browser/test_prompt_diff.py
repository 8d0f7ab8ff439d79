"""The prompt diff in a real browser: only added, removed and changed lines are
coloured, unchanged runs are folded, and activation asks first (issue 16 item 9)."""

from __future__ import annotations

import pytest

from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in

pytestmark = pytest.mark.browser

OLD = "\n".join(
    ["You are a helpful assistant for {{product}}."]
    + [f"Rule {n}: be kind." for n in range(1, 9)]
    + ["Never share secrets.", "Sign as {{team}}."]
)
NEW = "\n".join(
    ["You are a concise assistant for {{product}}."]
    + [f"Rule {n}: be kind." for n in range(1, 9)]
    + ["Answer in the user's language.", "Sign as {{team}}."]
)


@pytest.fixture
def versions(db):
    feature = factories.feature("chatbot", display_name="AI Chatbot")
    v1 = factories.prompt("greeting", 1, feature_id=feature.id, is_active=True, content=OLD)
    v2 = factories.prompt("greeting", 2, feature_id=feature.id, content=NEW)
    db.session.commit()
    return v1, v2


@pytest.mark.parametrize("width", [1440, 390])
def test_the_diff_marks_only_the_changes(
    live_server, new_page, page_errors, admin_user, versions, width
):
    _v1, v2 = versions
    page = new_page(width)
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/prompts/{v2.id}")
    page.locator("tr", has_text="v1").locator("a", has_text="Compare").click()
    page.wait_for_selector("table.side-by-side")
    table = page.locator("table.side-by-side")
    assert table.locator("tr.diff-changed").count() == 1
    assert table.locator("tr.diff-removed").count() == 1
    assert table.locator("tr.diff-added").count() == 1
    assert "unchanged lines" in table.locator("tr.diff-folded").inner_text()
    assert table.locator("tr.diff-changed del").inner_text() == "helpful"
    assert table.locator("tr.diff-changed ins").inner_text() == "concise"
    same = table.locator("tr.diff-same td.diff-new").first
    assert same.evaluate("e => getComputedStyle(e).backgroundColor") in (
        "rgba(0, 0, 0, 0)",
        "rgb(255, 255, 255)",
    )
    changed = table.locator("tr.diff-changed td.diff-new")
    assert changed.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(230, 244, 234)"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"prompt-diff-{width}.png")

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator("tr", has_text="v2").locator("button", has_text="Activate in production").click()
    assert asked and "live in production now" in asked[0]
    assert page_errors == []
