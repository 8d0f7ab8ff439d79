"""A provider's page in a real browser: the health timeline is drawn (three panels) and
the hours switch swaps the section in place, with no console error or CSP violation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in
from webapp.cli.demo_data import load_demo_data
from webapp.cli.seed import seed_defaults
from webapp.extensions import db as _db
from webapp.models import Provider
from webapp.services.core.actor import Actor

pytestmark = pytest.mark.browser


def test_provider_page_draws_the_health_timeline(
    live_server, new_page, page_errors, viewer_user, db
):
    seed_defaults(Actor.cli(), datetime.now(UTC).date())
    load_demo_data(Actor.cli(), datetime.now(UTC), days=3, requests=500)
    anthropic = _db.session.scalar(select(Provider).where(Provider.name == "anthropic"))
    page = new_page()
    sign_in(page, live_server, viewer_user.email)
    page.goto(f"{live_server}/providers/{anthropic.id}")
    page.wait_for_selector("#health .chart .main-svg")
    assert page.locator("#health .chart .subplot").count() == 3
    screenshot(page, "provider-health-1440x900.png")
    page.click("#health .range-switch >> text=168h")
    page.wait_for_selector("text=Timeline, last 168 hours (hourly averages)")
    page.wait_for_selector("#health .chart .main-svg")
    assert page.url.endswith("hours=168")
    assert page_errors == []
