"""Charts after an htmx swap look like charts after a fresh load of the same URL.

htmx's settle step puts the server's ``class``/``style`` back on every element of the new
content that has an id, after ``htmx:afterSwap``; a chart drawn on afterSwap lost
Plotly's ``js-plotly-plot`` class (grey modebars, legends spilling over the next card).
For every page with charts and every swap it offers (range, environment, hours), each
chart is compared with the same chart after a fresh load: the class, its size (±2 px),
and its legend inside its box."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.browser.conftest import SETTLED, screenshot
from tests.browser.test_console import sign_in
from webapp.cli.demo_data import load_demo_data
from webapp.cli.seed import seed_defaults
from webapp.extensions import db as _db
from webapp.models import Feature, Provider
from webapp.services.core.actor import Actor

pytestmark = pytest.mark.browser

# What each chart of the page looks like, in document order.
MEASURE = """() => Array.from(document.querySelectorAll('[data-plotly-figure]')).map((el) => {
  const box = el.getBoundingClientRect();
  const legend = el.querySelector('.legend');
  const lbox = legend ? legend.getBoundingClientRect() : null;
  return {
    key: el.id || el.closest('[id]').id,
    plotly: el.classList.contains('js-plotly-plot'),
    box: [box.left + window.scrollX, box.top + window.scrollY, box.width, box.height],
    legend: lbox && [lbox.left + window.scrollX, lbox.top + window.scrollY,
             lbox.width, lbox.height],
  };
})"""


@pytest.fixture
def demo(db):
    seed_defaults(Actor.cli(), datetime.now(UTC).date())
    load_demo_data(Actor.cli(), datetime.now(UTC), days=10, requests=1500)
    chatbot = _db.session.scalar(select(Feature).where(Feature.name == "chatbot"))
    anthropic = _db.session.scalar(select(Provider).where(Provider.name == "anthropic"))
    return {"feature": chatbot.id, "provider": anthropic.id}


def _charts(page) -> list[dict]:
    page.wait_for_function(SETTLED)
    page.wait_for_timeout(400)  # settle delay (20 ms) and Plotly's responsive relayout
    page.wait_for_function(SETTLED)
    return page.evaluate(MEASURE)


def _assert_like_a_fresh_load(swapped: list[dict], fresh: list[dict], what: str) -> None:
    assert swapped, f"{what}: no chart"
    assert [c["key"] for c in swapped] == [c["key"] for c in fresh], what
    for after_swap, loaded in zip(swapped, fresh, strict=True):
        name = f"{what}: chart in #{after_swap['key']}"
        assert after_swap["plotly"], f"{name} lost its js-plotly-plot class"
        assert loaded["plotly"], f"{name}: not drawn on a fresh load"
        for i in (2, 3):  # width, height
            assert abs(after_swap["box"][i] - loaded["box"][i]) <= 2, (name, after_swap, loaded)
        if loaded["legend"] is not None:
            assert after_swap["legend"] is not None, f"{name} lost its legend"
            left, top, width, height = after_swap["box"]
            lleft, ltop, lwidth, lheight = after_swap["legend"]
            assert lleft >= left - 2 and ltop >= top - 2, f"{name}: legend outside {after_swap}"
            assert lleft + lwidth <= left + width + 2, f"{name}: legend outside {after_swap}"
            assert ltop + lheight <= top + height + 2, f"{name}: legend outside {after_swap}"


# (page, swaps): each swap is (description, action, glob the URL then matches)
def _pages(ids: dict) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    feature = f"/features/{ids['feature']}"
    provider = f"/providers/{ids['provider']}"
    return [
        (
            "/",
            [
                ("range", "click", "#dashboard .presets a:has-text('30 days')", "**/?*range=30d*"),
                ("environment", "select", "staging", "**environment=staging*"),
            ],
        ),
        (
            "/spending",
            [
                ("range", "click", ".presets a:has-text('7 days')", "**/spending?*range=7d*"),
                ("environment", "select", "production", "**environment=production*"),
            ],
        ),
        (
            feature,
            [
                ("range", "click", "#health .presets a:has-text('7 days')", "**range=7d*"),
                ("environment", "select", "staging", "**environment=staging*"),
            ],
        ),
        (
            provider,
            [
                ("range", "click", "#health .presets a:has-text('7 days')", "**range=7d*"),
                ("hours", "click", "#health .range-switch a:has-text('168h')", "**hours=168*"),
            ],
        ),
    ]


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_charts_after_a_swap_match_a_fresh_load(
    live_server, new_page, page_errors, admin_user, demo, width, height
):
    page = new_page(width, height)
    sign_in(page, live_server, admin_user.email)
    fresh_page = new_page(width, height)  # a second session, for the fresh loads
    sign_in(fresh_page, live_server, admin_user.email)
    for path, swaps in _pages(demo):
        page.goto(f"{live_server}{path}")
        _charts(page)
        page.evaluate("window.__same_page = true")
        for what, action, target, url in swaps:
            if action == "click":
                page.click(target)
            else:
                page.select_option("select[name=environment]", target)
            page.wait_for_url(url)
            swapped = _charts(page)
            assert page.evaluate("window.__same_page === true"), f"{path} {what}: reloaded"
            slug = path.strip("/").split("/")[0] or "overview"
            screenshot(page, f"charts-after-{what}-swap-{slug}-{width}x{height}.png")
            fresh_page.goto(page.url)
            fresh = _charts(fresh_page)
            _assert_like_a_fresh_load(swapped, fresh, f"{path} after the {what} swap")
    assert page_errors == []
