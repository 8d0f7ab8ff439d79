"""One policy for wrong query parameters on every page and htmx partial (issue 13): the
page still renders (the rest of it works), answers 400, and says next to the control
which parameter was wrong, the value given and the values it takes. Also: one range
control (same labels and markup everywhere) and one map from a resource to its page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests import factories
from webapp.cli.seed import seed_defaults
from webapp.models import AIModel, Budget, Feature, Provider
from webapp.services.core.actor import Actor
from webapp.services.usage import windows
from webapp.views import links, ranges
from webapp.views.messages import label_of
from webapp.views.query import PageQuery

HX = {"HX-Request": "true"}


@pytest.fixture
def ids(db):
    seed_defaults(Actor.cli(), datetime.now(UTC).date())
    feature = db.session.scalars(select(Feature.id).order_by(Feature.name)).first()
    first = {
        "feature": feature,
        "model": db.session.scalars(select(AIModel.id).order_by(AIModel.name)).first(),
        "provider": db.session.scalars(select(Provider.id).order_by(Provider.name)).first(),
        "budget": db.session.scalars(select(Budget.id)).first(),
        "prompt": factories.prompt(content="Hello {{name}}").id,
    }
    db.session.commit()
    return first


# (URL, the parameter, its value as the page repeats it, what the message says it takes,
#  a mark of the rest of the page still rendered — in the htmx fragment too)
WRONG = [
    ("/?range=1y", "range", "1y", "must be one of 24h, 7d, 30d, custom", 'id="kpi-tiles"'),
    (
        "/?range=custom&start_date=2026-02-30&end_date=2026-03-01",
        "start_date",
        "2026-02-30",
        "must be",
        'id="kpi-tiles"',
    ),
    ("/overview/tiles?range=1y", "range", "1y", None, 'class="tile '),
    ("/features?range=1y", "range", "1y", "must be one of 1h, 24h, 7d, 30d", "<table>"),
    ("/features/{feature}?range=1y", "range", "1y", "must be one of 1h, 24h", "Uptime"),
    ("/models?range=1y", "range", "1y", "must be one of 1h, 24h, 7d, 30d", "<table>"),
    ("/models?status=asleep", "status", "asleep", "must be one of available", "<table>"),
    ("/models/{model}?range=week", "range", "week", "must be one of 1h", "Success rate"),
    ("/providers/{provider}?range=1y", "range", "1y", "must be one of 1h", "Timeline"),
    ("/providers/{provider}?hours=x", "hours", "x", "must be a whole number from 1", "Usage"),
    ("/spending?range=1y", "range", "1y", "must be one of 7d, 30d, 90d, month, custom", "By model"),
    ("/spending?preset=1y", "preset", "1y", "must be one of 7d, 30d, 90d, month", "By model"),
    (
        "/spending?start_date=2026-11-05&end_date=2026-11-01",
        "end_date",
        "2026-11-01",
        "must be on or after the start date",
        "By model",
    ),
    ("/audit?from=nope", "from", "nope", "must be a date like 2026-11-25", "<table>"),
    ("/audit?page=0", "page", "0", "must be a whole number from 1", "<table>"),
    ("/prompts?feature=nope", "feature", "nope", "is not a feature", "<table>"),
    ("/prompts?active=maybe", "active", "maybe", "must be one of yes, no", "<table>"),
    ("/prompts?page=0", "page", "0", "must be a whole number from 1 to 10,000", "<table>"),
    ("/prompts/{prompt}?against=nope", "against", "nope", "is not a prompt", 'id="diff"'),
    ("/experiments?status=asleep", "status", "asleep", "must be one of draft", "<table>"),
]


@pytest.mark.parametrize(("url", "name", "value", "takes", "rest"), WRONG)
def test_a_wrong_query_parameter_is_a_400_page_that_names_it(
    viewer_client, ids, url, name, value, takes, rest
):
    url = url.format(**ids)
    for headers in ({}, HX):
        response = viewer_client.get(url, headers=headers)
        html = response.get_data(as_text=True)
        assert response.status_code == 400, (url, headers)
        assert rest in html, (url, headers)  # the rest of the page still works
        assert ("<html" in html) == (not headers and "/tiles" not in url), url
        if takes is None:  # a partial without a control: the page that polls it says why
            continue
        # The problem with the parameter's name in words, then what was asked for.
        message = f"{label_of(name)} {takes}"
        assert message in html, (url, headers)
        message = f"(<code>{name}={value}</code>)"
        assert message in html, (url, headers)
        assert f'id="query-{name}-error" role="alert"' in html
        assert "Something went wrong" not in html and "Bad request" not in html


def test_the_other_parameters_still_apply_and_the_default_is_said(viewer_client, ids):
    html = viewer_client.get("/models?status=asleep&range=7d").get_data(as_text=True)
    assert 'aria-current="true">7 days' in html  # the good range is kept
    assert "; that filter is left out." in html
    spending = viewer_client.get("/spending?range=1y").get_data(as_text=True)
    assert "(showing the last 30 days instead)" in spending
    assert 'aria-current="true">30 days' in spending  # the control shows what is shown
    hours = viewer_client.get(f"/providers/{ids['provider']}?hours=9999&range=7d")
    assert hours.status_code == 400
    text = hours.get_data(as_text=True)
    assert "Timeline, last 24 hours" in text and 'aria-current="true">7 days' in text


def test_wrong_dates_stay_in_their_inputs_marked_invalid(viewer_client, ids):
    html = viewer_client.get("/spending?start_date=2026-11-05&end_date=2026-11-01").get_data(
        as_text=True
    )
    assert (
        'name="end_date" value="2026-11-01" aria-invalid="true" '
        'aria-describedby="query-end_date-error"' in html
    )


@pytest.mark.parametrize(
    "url", ["/budgets?range=1y", "/budgets/{budget}?x=1", "/providers?range=1y", "/users?range=1y"]
)
def test_pages_that_read_no_query_parameter_ignore_them(admin_client, ids, url):
    assert admin_client.get(url.format(**ids)).status_code == 200


def test_a_wrong_value_is_shown_escaped_and_short(viewer_client, ids):
    html = viewer_client.get("/experiments", query_string={"status": "<b>" + "x" * 80}).get_data(
        as_text=True
    )
    assert "<code>status=&lt;b&gt;" + "x" * 37 + "…</code>" in html and "<b>" not in html


# --- one range control ------------------------------------------------------------------

CONTROLS = [
    ("/", ("24h", "7d", "30d"), "7d", "#dashboard"),
    ("/features", ("1h", "24h", "7d", "30d"), "24h", "#features-table"),
    ("/features/{feature}", ("1h", "24h", "7d", "30d"), "24h", "#health"),
    ("/models", ("1h", "24h", "7d", "30d"), "24h", "#models-table"),
    ("/models/{model}", ("1h", "24h", "7d", "30d"), "24h", "#model-performance"),
    ("/providers/{provider}", ("1h", "24h", "7d", "30d"), "24h", "#health"),
    ("/spending", ("7d", "30d", "90d", "month"), "30d", "#spending-results"),
]


@pytest.mark.parametrize(("url", "offered", "default", "target"), CONTROLS)
def test_every_page_uses_the_one_range_control(viewer_client, ids, url, offered, default, target):
    path = url.format(**ids)
    html = viewer_client.get(path).get_data(as_text=True)
    assert html.count('<form class="range-control filters"') == 1
    assert f'hx-target="{target}" hx-swap="outerHTML" hx-push-url="true"' in html
    for name in offered:
        assert f"?range={name}" in html, (url, name)
        assert f">{ranges.LABELS[name]}</a>" in html
    assert f'aria-current="true">{ranges.LABELS[default]}</a>' in html
    # What the range means, said every time (UTC stays upper-case).
    assert 'class="muted range-caption">Last ' in html and "utc" not in html
    # Switching: the fragment the control targets, with the new range current.
    other = offered[-1]
    separator = "&" if "?" in path else "?"
    fragment = viewer_client.get(f"{path}{separator}range={other}", headers=HX)
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in text
    element = "div" if target in ("#dashboard", "#spending-results") else "section"
    assert text.lstrip().startswith(f'<{element} id="{target[1:]}"'), url
    assert f'aria-current="true">{ranges.LABELS[other]}</a>' in text


def test_the_range_links_keep_the_pages_other_parameters(viewer_client, ids):
    html = viewer_client.get("/models?status=deprecated&provider=openai").get_data(as_text=True)
    assert 'href="/models?provider=openai&amp;status=deprecated&amp;range=7d"' in html
    page = viewer_client.get(f"/providers/{ids['provider']}?hours=168").get_data(as_text=True)
    assert f'href="/providers/{ids["provider"]}?hours=168&amp;range=7d"' in page
    assert f'href="/providers/{ids["provider"]}?range=7d&amp;hours=6"' not in page
    switched = viewer_client.get(f"/providers/{ids['provider']}?range=7d").get_data(as_text=True)
    assert f'href="/providers/{ids["provider"]}?range=7d&amp;hours=168"' in switched


def test_old_spending_links_and_dates_alone_still_work(viewer_client, ids):
    old = viewer_client.get("/spending?preset=7d").get_data(as_text=True)
    assert 'aria-current="true">7 days</a>' in old
    custom = viewer_client.get("/?start_date=2026-01-01&end_date=2026-01-31")
    assert custom.status_code == 200
    assert "2026-01-01 – 2026-01-31 (UTC)" in custom.get_data(as_text=True)


def test_read_range_and_the_offers(app):
    with app.test_request_context():
        query = PageQuery({"range": "custom", "start_date": "2026-01-05"})
        assert ranges.read_range(query, ranges.OVERVIEW) == ranges.TimeRange(
            "custom", "2026-01-05", "2026-01-05"
        )
        wrong = PageQuery({"range": "1h"})
        assert ranges.read_range(wrong, ranges.SPENDING).name == "30d"
        assert wrong.status == 400 and wrong.given == {"range": "1h"}
        assert wrong.problems["range"].endswith(" (showing the last 30 days instead)")
        metrics = PageQuery({"start_date": "2026-01-05"})  # no custom range there
        assert ranges.read_range(metrics, ranges.METRICS).name == "24h"
        assert metrics.status == 200
    # Every range a page offers has one label and, but for custom, says what it means.
    for offer in (ranges.METRICS, ranges.OVERVIEW, ranges.SPENDING):
        for name in offer.ranges:
            assert name in ranges.LABELS
            assert name == "custom" or name in windows.RANGE_CAPTIONS


# --- a resource's page ------------------------------------------------------------------


def test_resource_url_maps_a_kind_and_id_to_its_page(app, ids):
    with app.test_request_context():
        assert links.resource_url("budget", ids["budget"]) == f"/budgets/{ids['budget']}"
        assert links.resource_url("prompt", ids["prompt"]) == f"/prompts/{ids['prompt']}"
        assert links.resource_url("user", ids["budget"]) is None  # no page for that kind
        assert links.resource_url("feature", None) is None
        for kind, (endpoint, _) in links.RESOURCE_PAGES.items():
            assert endpoint in app.view_functions, kind


def test_alerts_and_activity_link_through_the_web_layer(admin_client, ids, db):
    from webapp.services.catalog import features

    features.update_feature(Actor.cli(), ids["feature"], {"status": "maintenance"})
    db.session.commit()
    html = admin_client.get("/").get_data(as_text=True)
    assert f'<a href="/features/{ids["feature"]}">' in html  # the alert and the activity
    alerts = admin_client.get("/overview/alerts").get_data(as_text=True)
    assert f'href="/features/{ids["feature"]}"' in alerts and "is in maintenance" in alerts
