"""The console in a real browser: sign in, see the overview with a drawn Plotly chart,
walk the navigation, sign out — with no console error and no CSP violation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD
from webapp.cli.demo_data import load_demo_data
from webapp.cli.seed import seed_defaults
from webapp.services.core.actor import Actor

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(db):
    seed_defaults(Actor.cli(), datetime.now(UTC).date())
    load_demo_data(Actor.cli(), datetime.now(UTC), days=30, requests=2000)


def sign_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/budgets")
    assert "/login" in page.url
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/budgets")


def test_sign_in_overview_navigation_and_sign_out(
    live_server, new_page, page_errors, admin_user, demo
):
    page = new_page()
    sign_in(page, live_server, admin_user.email)
    assert page.locator("h1").inner_text() == "Budgets"

    page.click("nav >> text=Overview")
    page.wait_for_selector(".chart .main-svg")  # plotly-strict drew the chart
    assert page.locator(".tile").count() == 9
    screenshot(page, "overview-1440x900.png")

    for label, heading in [
        ("Features", "Features"),
        ("Models", "Models"),
        ("Prompts", "Prompts"),
        ("Spending", "Spending"),
        ("Experiments", "Experiments"),
        ("Providers", "Providers"),
        ("Audit log", "Audit log"),
    ]:
        page.click(f"nav >> text={label}")
        assert page.locator("h1").inner_text() == heading

    page.click("text=Sign out")
    page.wait_for_url(f"{live_server}/login")
    page.goto(f"{live_server}/")
    assert "/login" in page.url
    assert page_errors == []


def test_overview_is_readable_on_a_phone(live_server, new_page, page_errors, viewer_user, demo):
    page = new_page(390, 844)
    sign_in(page, live_server, viewer_user.email)
    page.goto(f"{live_server}/")
    page.wait_for_selector(".chart .main-svg")
    # The page itself never scrolls sideways; wide tables scroll inside their card.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "overview-390x844.png")
    assert page_errors == []


def test_wrong_password_shows_the_generic_message(live_server, new_page, admin_user):
    page = new_page()
    page.goto(f"{live_server}/login")
    page.fill("#email", admin_user.email)
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert page.locator(".field-error").inner_text() == "Email or password is wrong."


def test_audit_filters_swap_the_results_and_keep_the_url(
    live_server, new_page, page_errors, admin_user, demo
):
    page = new_page()
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/audit")
    page.wait_for_selector("#audit-results")
    marker = page.evaluate("() => { window.__same_page = true; return true; }")
    assert marker
    page.select_option("select[name=action]", "auth.login")
    page.wait_for_url("**/audit?*action=auth.login*")
    page.wait_for_function("document.querySelectorAll('#audit-results tbody tr').length >= 1")
    actions = page.locator("#audit-results tbody code").all_inner_texts()
    assert actions and set(actions) == {"auth.login"}
    assert page.evaluate("window.__same_page === true")  # swapped, not reloaded
    page.reload()
    assert page.locator("select[name=action]").input_value() == "auth.login"
    screenshot(page, "audit-filtered-1440x900.png")
    assert page_errors == []


def test_user_management_page_creates_a_user(live_server, new_page, page_errors, admin_user, demo):
    page = new_page()
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/users")
    page.fill("#new-email", "analyst@example.com")
    page.select_option("#new-role", "viewer")
    page.click("text=Add user")
    assert "Password for analyst@example.com" in page.locator(".notice").inner_text()
    screenshot(page, "users-1440x900.png")
    assert page_errors == []


def test_assigning_a_model_updates_the_matrix_without_a_reload(
    live_server, new_page, page_errors, admin_user, demo
):
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import Feature

    chatbot = db.session.scalar(select(Feature).where(Feature.name == "chatbot"))
    page = new_page()
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/features/{chatbot.id}")
    page.wait_for_selector(".chart .main-svg")
    page.evaluate("() => { window.__same_page = true; }")
    row = page.locator("#env-staging")
    assert "Claude 3.5 Haiku" in row.locator(".active-model").inner_text()
    row.locator("select").select_option(label="GPT-4o mini (OpenAI)")
    row.locator("button", has_text="Assign").click()
    page.wait_for_selector("text=GPT-4o mini now serves AI Chatbot in staging")
    assert "GPT-4o mini" in page.locator("#env-staging .active-model").inner_text()
    assert page.evaluate("window.__same_page === true")  # swapped in place, no reload
    history = page.locator("#deployments table").nth(1).inner_text()
    assert "GPT-4o mini" in history and "Claude 3.5 Haiku" in history
    screenshot(page, "feature-assign-1440x900.png")
    assert page_errors == []


def test_status_change_asks_first_and_cancel_changes_nothing(
    live_server, new_page, page_errors, admin_user, demo
):
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import Feature

    chatbot = db.session.scalar(select(Feature).where(Feature.name == "chatbot"))
    page = new_page()
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/features/{chatbot.id}")
    page.select_option("#feature-status", "maintenance")
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.click("text=Change status")
    assert questions and "Change the status of AI Chatbot?" in questions[0]
    assert "active" in page.locator("h1 .status").inner_text()  # cancelled: nothing sent
    page.evaluate("() => { window.__same_page = true; }")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Change status")
    page.wait_for_selector("#feature-status-card >> text=AI Chatbot is now in maintenance.")
    assert page.locator("h1 .status").inner_text() == "maintenance"  # swapped out of band
    # Ends like assign and rollback: the section swapped in place, no reload.
    assert page.evaluate("window.__same_page === true")
    row = page.locator("#env-staging")
    row.locator("select").select_option(label="GPT-4o mini (OpenAI)")
    row.locator("button", has_text="Assign").click()
    page.wait_for_selector("text=GPT-4o mini now serves AI Chatbot in staging")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("text=Roll back staging")
    page.wait_for_selector("#deployments [role=status] >> text=Rolled back: Claude 3.5 Haiku")
    assert "Claude 3.5 Haiku" in page.locator("#env-staging .active-model").inner_text()
    assert asked and page.evaluate("window.__same_page === true")
    assert page_errors == []


def test_prompt_editor_versions_and_inline_test(
    live_server, new_page, page_errors, admin_user, demo
):
    page = new_page()
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/prompts/new")
    page.fill("#prompt-name", "welcome-mail")
    page.fill("#prompt-content", "Dear {{name}}, welcome aboard.")
    page.click("text=Save version")
    page.wait_for_selector("h1 >> text=welcome-mail")
    assert "v1" in page.locator("h1").inner_text()
    page.fill("#prompt-editor", "Dear {{ name }}, welcome to {{team}}!")
    page.click("text=Save as new version")
    page.wait_for_selector("text=Saved as version 2.")
    assert "v2" in page.locator("h1").inner_text()
    questions = []  # production asks first (issue 15)
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.locator("tr", has_text="v1").locator("button", has_text="Activate in production").click()
    page.wait_for_selector("text=Version 1 is now the active one.")
    assert "live in production" in questions[0]
    assert "active" in page.locator("h1").inner_text() and "v1" in page.locator("h1").inner_text()
    page.evaluate("() => { window.__same_page = true; }")
    page.fill("#var-name", "Ada")
    page.click("#test-form button[type=submit]")
    page.wait_for_selector("#test-result pre")
    assert page.locator("#test-result pre").inner_text() == "Dear Ada, welcome aboard."
    page.locator("tr", has_text="v2").locator("a", has_text="Compare").click()
    page.wait_for_selector("table.side-by-side")
    assert "welcome to {{team}}!" in page.locator("table.side-by-side").inner_text()
    assert page.evaluate("window.__same_page === true")  # test and diff swapped in place
    screenshot(page, "prompt-editor-1440x900.png")
    assert page_errors == []
