"""Every page at phone width: no page is wider than the viewport (tables scroll inside
their card, long unbroken names wrap), and the main menu folds behind one button that
opens and closes it. The list of pages comes from the URL map, so a new page is checked
without anyone remembering to add it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in
from webapp.cli.demo_data import load_demo_data
from webapp.cli.seed import seed_defaults
from webapp.extensions import db as _db
from webapp.models import AIModel, Budget, Experiment, Feature, Prompt, Provider
from webapp.rls import OPERATOR, use_database_role
from webapp.services.core.actor import Actor

pytestmark = pytest.mark.browser

PHONE = (390, 844)
# The innermost elements reaching past the viewport: what to fix when a page is too wide.
WIDEST = """() => [...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > innerWidth + 2
    && ![...e.children].some((c) => c.getBoundingClientRect().right > innerWidth + 2))
  .slice(0, 5)
  .map((e) => e.tagName + '.' + e.className + ': ' + (e.textContent || '').trim().slice(0, 50))"""
UNBROKEN = "x" * 300  # a description with nowhere to break
# Path arguments of the console's pages and the table whose first row fills them.
ROWS_FOR = {
    "feature_id": Feature,
    "model_id": AIModel,
    "provider_id": Provider,
    "prompt_id": Prompt,
    "budget_id": Budget,
    "experiment_id": Experiment,
}
# Pages that need a state of their own (a half-finished sign-in, a fresh password) and the
# htmx fragments (parts of the pages already visited).
NOT_PAGES = {
    "auth.login",
    "auth.change_password",
    "account.mfa_login",
    "account.reauthenticate",
    "static",
}


@pytest.fixture
def demo(db):
    seed_defaults(Actor.cli(), datetime.now(UTC).date())
    load_demo_data(Actor.cli(), datetime.now(UTC), days=10, requests=800)
    factories.feature("long_words", display_name="Long " + "y" * 120, description=UNBROKEN)
    _db.session.commit()


def _page_urls(app) -> list[str]:
    use_database_role(OPERATOR)  # the test reads the rows as the operator (PostgreSQL RLS)
    pages = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in NOT_PAGES:
            continue
        if rule.rule.startswith(("/api/", "/static")) or "partial" in rule.endpoint:
            continue
        if rule.endpoint.endswith((".tiles", ".alerts", ".test")):
            continue  # htmx fragments of pages in this list
        arguments = {}
        for name in rule.arguments:
            table = ROWS_FOR.get(name)
            if table is None:
                break
            # The long-named feature where there is one: the hardest page to fit.
            order = (table.name != "long_words", table.id) if table is Feature else (table.id,)
            row_id = _db.session.scalar(select(table.id).order_by(*order).limit(1))
            assert row_id is not None, f"the demo data has no {table.__name__} for {rule.rule}"
            arguments[name] = row_id
        else:
            pages.append((rule.endpoint, arguments))
    # One request context, after the queries: its teardown ends the database identity.
    with app.test_request_context():
        from flask import url_for

        return sorted({url_for(endpoint, **arguments) for endpoint, arguments in pages})


@pytest.mark.parametrize("width", [PHONE[0], 1440])
def test_no_page_is_wider_than_the_viewport(
    app, live_server, new_page, page_errors, admin_user, demo, width
):
    urls = _page_urls(app)
    assert "/" in urls and "/features" in urls and len(urls) >= 20, urls
    page = new_page(width, PHONE[1])
    failed = []
    page.on(
        "response",
        lambda answer: (
            failed.append(f"{answer.status} {answer.url}") if answer.status >= 400 else None
        ),
    )
    sign_in(page, live_server, admin_user.email)
    too_wide = {}
    for url in urls:
        if "<html" not in page.request.get(f"{live_server}{url}").text():
            continue  # an htmx fragment (a part of a page in this list), not a page
        page.goto(f"{live_server}{url}")
        page.wait_for_load_state("networkidle")
        page_width = page.evaluate("() => document.documentElement.scrollWidth")
        if page_width > width:
            too_wide[url] = f"{page_width} px, widened by {page.evaluate(WIDEST)}"
            screenshot(page, f"too-wide-{width}{url.replace('/', '_')}.png")
    listed = "; ".join(f"{url} ({why})" for url, why in too_wide.items())
    assert not too_wide, f"wider than {width} px: {listed}"
    assert failed == []
    assert page_errors == []


def test_the_menu_folds_on_a_phone_and_stays_open_on_a_desktop(
    live_server, new_page, page_errors, admin_user
):
    page = new_page(*PHONE)
    sign_in(page, live_server, admin_user.email)
    toggle = page.locator(".menu-toggle")
    assert toggle.is_visible()
    assert not page.locator("#main-nav").is_visible()
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert page.locator("#main-nav").is_visible()
    assert page.get_by_role("link", name="Spending").is_visible()
    assert toggle.get_attribute("aria-expanded") == "true"
    page.get_by_role("link", name="Spending").click()
    page.wait_for_url(f"{live_server}/spending*")
    assert not page.locator("#main-nav").is_visible()  # a new page starts folded

    desktop = new_page(1440, 900)
    sign_in(desktop, live_server, admin_user.email)
    assert not desktop.locator(".menu-toggle").is_visible()
    assert desktop.locator("#main-nav").is_visible()
    assert page_errors == []
