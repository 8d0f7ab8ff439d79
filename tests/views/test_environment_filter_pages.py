"""The environment filter on pages (a select beside the range control, kept in the URL)
and on the admin API (an ``environment`` query parameter)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests import factories
from tests.usage_rows import earlier_today, insert_usage

API = "/api/platform/ai-management"


@pytest.fixture
def usage(db):
    feature = factories.feature("chatbot")
    model = factories.model(factories.provider("openai"), "gpt")
    db.session.commit()
    now = earlier_today()
    insert_usage(
        [
            {
                "feature_id": feature.id,
                "model_id": model.id,
                "environment": environment,
                "created_at": now,
                "cost_usd": cost,
                "cost_source": "reported",
            }
            for environment, cost in (
                ("production", "2.00"),
                ("production", "0.50"),
                ("staging", "0.25"),
                ("development", "0.75"),
            )
        ]
    )
    return feature, model


def _selected(html: str) -> str:
    """The selected option of the environment select."""
    select = re.search(r'<select name="environment".*?</select>', html, re.S)
    assert select, "no environment select"
    chosen = re.search(r'<option value="([^"]*)" selected>', select.group(0))
    assert chosen
    return chosen.group(1)


def test_spending_page_filters_by_environment_and_keeps_it(admin_client, usage):
    every = admin_client.get("/spending?range=7d").get_data(as_text=True)
    assert "total <strong>$3.50</strong>" in every and _selected(every) == ""
    response = admin_client.get("/spending?range=7d&environment=staging")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "total <strong>$0.25</strong>" in html and _selected(html) == "staging"
    # the range links keep the environment, the environment form keeps the range
    assert 'href="/spending?environment=staging&amp;range=30d"' in html
    form = re.search(r'<form class="environment-control.*?</form>', html, re.S).group(0)
    assert 'hx-push-url="true"' in form and 'hx-target="#spending-results"' in form
    assert '<input type="hidden" name="range" value="7d">' in form
    # an htmx swap answers the partial with the control in the same state
    partial = admin_client.get(
        "/spending?range=30d&environment=development", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert partial.lstrip().startswith('<div id="spending-results">')
    assert "total <strong>$0.75</strong>" in partial and _selected(partial) == "development"
    assert '<input type="hidden" name="range" value="30d">' in partial


def test_a_wrong_environment_is_a_400_page_that_names_it(admin_client, usage):
    for path in ("/spending", "/", "/features", "/models"):
        response = admin_client.get(f"{path}?environment=moon")
        html = response.get_data(as_text=True)
        assert response.status_code == 400, path
        assert "Environment must be one of development, " in html
        assert "(<code>environment=moon</code>)" in html
        assert "(showing all environments instead)" in html
        assert _selected(html) == ""


def test_overview_filters_by_environment_and_its_tiles_keep_it(admin_client, usage):
    html = admin_client.get("/?range=7d&environment=production").get_data(as_text=True)
    assert _selected(html) == "production"
    assert 'hx-get="/overview/tiles?range=7d&amp;environment=production"' in html
    tiles = admin_client.get("/overview/tiles?range=7d&environment=production").get_data(
        as_text=True
    )
    assert "$2.50" in tiles and "$3.50" not in tiles
    assert "$3.50" in admin_client.get("/overview/tiles?range=7d").get_data(as_text=True)
    wrong = admin_client.get("/overview/tiles?range=7d&environment=moon")
    assert wrong.status_code == 400


def test_catalog_pages_filter_by_environment(admin_client, usage):
    feature, model = usage
    for path in (
        "/features?range=7d",
        f"/features/{feature.id}?range=7d",
        "/models?range=7d",
        f"/models/{model.id}?range=7d",
    ):
        staging = admin_client.get(path + "&environment=staging").get_data(as_text=True)
        every = admin_client.get(path).get_data(as_text=True)
        assert _selected(staging) == "staging" and _selected(every) == ""
        assert "$0.25" in staging and "$3.50" not in staging, path
        assert "$3.50" in every, path


def test_api_takes_an_environment(admin_client, usage):
    feature, model = usage
    today = datetime.now(UTC).date().isoformat()
    answer = admin_client.get(
        f"{API}/spending?start_date={today}&end_date={today}&environment=development"
    ).get_json()
    assert answer["data"]["total_spend"] == "0.750000"
    assert answer["metadata"]["environment"] == "development"
    every = admin_client.get(f"{API}/spending?start_date={today}&end_date={today}").get_json()
    assert every["data"]["total_spend"] == "3.500000"
    listed = admin_client.get(
        f"{API}/features?include_metrics=true&time_range=24h&environment=production"
    ).get_json()
    assert listed["data"][0]["metrics"]["total_requests"] == 2
    one = admin_client.get(f"{API}/models/{model.id}?environment=staging").get_json()
    assert one["data"]["metrics"]["total_cost"] == "0.250000"
    daily = admin_client.get(f"{API}/features/{feature.id}/usage?days=1&environment=staging")
    assert daily.get_json()["data"][0]["cost"] == "0.250000"


@pytest.mark.parametrize(
    "path",
    [
        "/spending?start_date=2026-11-01&end_date=2026-11-02&environment=moon",
        "/spending?action=trends&environment=moon",
        "/features?environment=moon",
        "/features/{feature}?environment=moon",
        "/features/{feature}/usage?environment=moon",
        "/models?environment=moon",
        "/models/{model}?environment=moon",
    ],
)
def test_api_refuses_a_wrong_environment(admin_client, usage, path):
    feature, model = usage
    response = admin_client.get(API + path.format(feature=feature.id, model=model.id))
    assert response.status_code == 400
    fields = response.get_json()["fields"]
    assert fields == {"environment": "must be one of development, staging, production"}


@pytest.fixture
def two_weeks(db):
    """Ten days of usage: production mostly on "chatbot", staging mostly on "search"."""
    chatbot = factories.feature("chatbot")
    search = factories.feature("search")
    model = factories.model(factories.provider("openai"), "gpt")
    db.session.commit()
    now = datetime.now(UTC)
    rows = []
    for n in range(1, 11):
        moment = now - timedelta(days=n)
        for environment, feature, cost in (
            ("production", chatbot, "3.00"),
            ("production", search, "1.00"),
            ("staging", search, "0.40"),
            ("staging", chatbot, "0.10"),
        ):
            rows.append(
                {
                    "feature_id": feature.id,
                    "model_id": model.id,
                    "environment": environment,
                    "created_at": moment,
                    "cost_usd": cost,
                    "cost_source": "reported",
                }
            )
    insert_usage(rows)


def _section(html: str, ident: str) -> str:
    found = re.search(rf'<section class="card" id="{ident}">.*?</section>', html, re.S)
    assert found, f"no #{ident}"
    return re.sub(r"\s+", " ", found.group(0))


def test_spending_trends_and_recommendations_follow_the_environment(admin_client, two_weeks):
    every = admin_client.get("/spending?range=30d").get_data(as_text=True)
    assert "daily average $1.50" in _section(every, "spending-trends")
    assert "Chatbot represents" in _section(every, "recommendations")
    # the htmx swap of an environment switch carries them, with the fresh load's figures
    partial = admin_client.get(
        "/spending?range=30d&environment=staging", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    fresh = admin_client.get("/spending?range=30d&environment=staging").get_data(as_text=True)
    for ident in ("spending-trends", "recommendations"):
        assert _section(partial, ident) == _section(fresh, ident)
    assert "daily average $0.17" in _section(partial, "spending-trends")
    recommendations = _section(partial, "recommendations")
    assert "Search represents" in recommendations and "Chatbot represents" not in recommendations


def test_spending_export_link_carries_the_environment(admin_client, usage):
    html = admin_client.get("/spending?range=7d&environment=staging").get_data(as_text=True)
    link = re.search(r'<a class="button" href="([^"]*)" download>Export CSV</a>', html)
    assert link and "environment=staging" in link.group(1), link
    exported = admin_client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert len(exported.strip().splitlines()) == 2  # the header and staging's one row
    every = admin_client.get("/spending?range=7d").get_data(as_text=True)
    link = re.search(r'<a class="button" href="([^"]*)" download>Export CSV</a>', every)
    assert link and "environment" not in link.group(1)


def test_spending_by_model_links_usage_outside_the_catalog_to_the_alert(admin_client, db):
    feature = factories.feature("chatbot")
    db.session.commit()
    insert_usage(
        [
            {
                "feature_id": feature.id,
                "created_at": datetime.now(UTC) - timedelta(minutes=5),
                "model_name": "gemini-2.0-flash",
                "provider_name": "google",
                "cost_source": "unpriced",
            }
        ]
    )
    html = admin_client.get("/spending?range=7d").get_data(as_text=True)
    by_model = re.search(r"<h2>By model</h2>.*?</table>", html, re.S).group(0)
    assert '(no model) <a class="muted" href="/#unknown-models">' in by_model
    overview = admin_client.get("/").get_data(as_text=True)
    assert 'id="unknown-models"' in overview and "gemini-2.0-flash" in overview


def test_unknown_models_alert_says_it_covers_every_environment(admin_client, db):
    insert_usage(
        [
            {
                "created_at": datetime.now(UTC) - timedelta(minutes=5),
                "model_name": "gemini-2.0-flash",
                "environment": "staging",
                "cost_source": "unpriced",
            }
        ]
    )
    filtered = admin_client.get("/?environment=production").get_data(as_text=True)
    alert = re.search(
        r'<div class="alert alert-warning" id="unknown-models">.*?</div>', filtered, re.S
    )
    assert alert and "<strong>every environment</strong>, not only production" in alert.group(0)
    assert 'hx-get="/overview/alerts?environment=production"' in filtered
    polled = admin_client.get(
        "/overview/alerts?environment=production", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "<strong>every environment</strong>, not only production" in polled
    every = admin_client.get("/").get_data(as_text=True)
    assert "not only" not in every and "last 30 days, every environment;" in every
    assert 'hx-get="/overview/alerts"' in every
