"""Pages show real data from the database, carry the security headers and the CSRF meta
tag, and the overview serves its content block alone to htmx."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from webapp.cli.demo_data import load_demo_data
from webapp.cli.seed import seed_defaults
from webapp.services.core.actor import Actor


@pytest.fixture
def seeded(db):
    seed_defaults(Actor.cli(), datetime.now(UTC).date())


@pytest.fixture
def demo(seeded):
    load_demo_data(Actor.cli(), datetime.now(UTC), days=3, requests=300)


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/", ["Global Overview", "AI Chatbot", "GPT-4", "Vision API v2"]),
        ("/features", ["Photo Tagging", "AI Search", "GPT-4"]),
        ("/models", ["GPT-4", "$30.0000", "$60.0000", "Vision API v2"]),
        ("/providers", ["OpenAI", "Google Cloud AI", "Anthropic"]),
        ("/budgets", ["AI Chatbot Monthly Budget", "$1,000.00", "80 %"]),
        ("/audit", ["seed.apply"]),
    ],
)
def test_pages_show_seeded_data(admin_client, seeded, path, expected):
    page = admin_client.get(path).get_data(as_text=True)
    for text in expected:
        assert text in page, (path, text)


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/", ["Spend per day by feature", "data-plotly-figure"]),
        ("/spending", ["Spend per day by feature", "AI Chatbot"]),
        ("/prompts", ["chatbot-greeting", "v2", "photo-tag-instructions"]),
        ("/experiments", ["Greeting v2", "running", "Current (50 %)"]),
        ("/audit", ["demo_data.load"]),
    ],
)
def test_pages_show_demo_data(viewer_client, demo, path, expected):
    page = viewer_client.get(path).get_data(as_text=True)
    for text in expected:
        assert text in page, (path, text)


def test_empty_database_overview_says_what_to_do(admin_client):
    page = admin_client.get("/").get_data(as_text=True)
    assert "No usage recorded yet" in page
    assert "flask demo-data" in page
    assert "data-plotly-figure" not in page  # no broken chart


def test_layout_has_navigation_user_and_csrf_meta(viewer_client):
    page = viewer_client.get("/").get_data(as_text=True)
    for label in (
        "Overview",
        "Features",
        "Models",
        "Prompts",
        "Spending",
        "Budgets",
        "Experiments",
        "Providers",
        "Audit log",
        "Sign out",
        "viewer@example.com",
    ):
        assert label in page
    assert '<meta name="csrf-token" content="' in page
    assert 'hx-headers=\'{"X-CSRFToken": "' in page


def test_assets_are_served_locally(viewer_client, demo):
    page = viewer_client.get("/").get_data(as_text=True)
    assert "/static/vendor/htmx-2.0.11.min.js" in page
    assert "/static/vendor/plotly-strict-4.1.1.min.js" in page
    assert "http://" not in page.split("<body")[0] and "https://" not in page.split("<body")[0]
    for asset in (
        "vendor/htmx-2.0.11.min.js",
        "vendor/plotly-strict-4.1.1.min.js",
        "js/charts.js",
        "css/app.css",
    ):
        assert viewer_client.get(f"/static/{asset}").status_code == 200


def test_no_inline_scripts_in_pages(viewer_client, demo):
    import re

    for path in ("/", "/spending", "/login"):
        page = viewer_client.get(path).get_data(as_text=True)
        for tag in re.findall(r"<script[^>]*>", page):
            assert "src=" in tag, (path, tag)
        assert " onclick=" not in page and " onload=" not in page


def test_security_headers_on_pages_and_api(viewer_client):
    for path in ("/", "/api/platform/ai-management/features", "/login"):
        response = viewer_client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "object-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
        script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
        assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_overview_serves_only_its_block_to_htmx(viewer_client, seeded):
    full = viewer_client.get("/")
    fragment = viewer_client.get("/", headers={"HX-Request": "true"})
    assert "HX-Request" in full.headers["Vary"] and "HX-Request" in fragment.headers["Vary"]
    assert "<html" in full.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and "<nav" not in body
    assert body.lstrip().startswith('<div id="dashboard">') and "AI Chatbot" in body


def test_not_found_page_for_signed_in_user(viewer_client):
    response = viewer_client.get("/nothing-here")
    assert response.status_code == 404
    assert "There is nothing at this address" in response.get_data(as_text=True)
