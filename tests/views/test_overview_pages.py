"""The overview's HTMX targets: the dashboard (range switch), the tiles and the alerts
panel (each refreshing every minute), and the empty state."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tests import factories
from webapp.cli.demo_data import load_demo_data
from webapp.cli.seed import seed_defaults
from webapp.services.core.actor import Actor


@pytest.fixture
def demo(db):
    today = datetime.now(UTC).date()
    seed_defaults(Actor.cli(), today)
    load_demo_data(Actor.cli(), datetime.now(UTC), days=10, requests=400)
    factories.budget(
        name="Tiny",
        budget_amount=Decimal("0.01"),
        start_date=date(2000, 1, 1),
        end_date=date(2100, 1, 1),
    )
    db.session.commit()


def test_full_page_has_every_target_with_its_refresh(viewer_client, demo):
    html = viewer_client.get("/?range=30d").get_data(as_text=True)
    assert '<div id="dashboard">' in html
    assert 'id="kpi-tiles" hx-get="/overview/tiles?range=30d" hx-trigger="every 60s"' in html
    assert 'id="alerts" hx-get="/overview/alerts" hx-trigger="every 60s"' in html
    for chart in ("overview-spend", "overview-requests", "overview-providers"):
        assert f'id="{chart}"' in html
    assert "Top models by cost" in html and "Recent activity" in html
    assert "Budget Tiny: Over budget" in html


def test_range_switch_answers_the_dashboard_partial(viewer_client, demo):
    response = viewer_client.get("/?range=24h", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="dashboard">') and "<nav" not in html
    assert "Spend per hour by feature" in html
    assert (
        'href="/?range=24h" hx-get="/?range=24h"' in html and 'aria-current="true">24 hours' in html
    )


def test_tiles_partial(viewer_client, demo):
    html = viewer_client.get("/overview/tiles?range=7d").get_data(as_text=True)
    assert html.lstrip().startswith('<section class="tiles" id="kpi-tiles"')
    assert html.count('class="tile ') == 9
    assert "<nav" not in html
    custom = viewer_client.get(
        "/overview/tiles?range=custom&start_date=2026-01-01&end_date=2026-01-31"
    )
    assert (
        'hx-get="/overview/tiles?range=custom&amp;start_date=2026-01-01&amp;end_date=2026-01-31"'
        in custom.get_data(as_text=True)
    )


def test_alerts_partial(viewer_client, demo):
    html = viewer_client.get("/overview/alerts").get_data(as_text=True)
    assert html.lstrip().startswith('<section class="card alerts-panel" id="alerts"')
    assert "Budget Tiny: Over budget" in html


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("range=1y", "Range must be one of 24h, 7d, 30d, custom"),
        ("range=custom&start_date=x&end_date=2026-01-01", "Start date must be a date"),
    ],
)
def test_bad_range_is_named(viewer_client, demo, query, field):
    assert viewer_client.get(f"/overview/tiles?{query}").status_code == 400
    page = viewer_client.get(f"/?{query}")
    # Issue 13: one policy for wrong query parameters: 400, and the page still renders.
    assert page.status_code == 400
    assert field in page.get_data(as_text=True)
    assert "(showing the last 7 days instead)" in page.get_data(as_text=True)


def test_empty_state_on_a_fresh_database(admin_client):
    html = admin_client.get("/").get_data(as_text=True)
    assert 'id="empty-state"' in html and "flask demo-data" in html
    assert "data-plotly-figure" not in html  # never a broken chart


def test_anonymous_partials_send_htmx_to_sign_in(client, db):
    response = client.get("/overview/tiles", headers={"HX-Request": "true"})
    assert response.status_code == 401 and response.headers["HX-Redirect"].startswith("/login")


def test_an_expired_session_on_a_refreshing_tile_returns_to_the_page_not_the_fragment(client, db):
    response = client.get(
        "/overview/tiles?range=30d",
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/?range=30d"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/?range%3D30d"
    foreign = client.get(
        "/overview/tiles",
        headers={"HX-Request": "true", "HX-Current-URL": "http://evil.example/steal"},
    )
    assert foreign.headers["HX-Redirect"] == "/login"
