"""The template kit: filters for figures and dates, and the form macros (labels, error
messages tied to their field, selects, the error summary and the pager)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from webapp.views import filters


@pytest.mark.parametrize(
    ("value", "args", "text"),
    [
        (1234567, {}, "1,234,567"),
        (0, {}, "0"),
        (None, {}, "—"),
        (1234.5, {"places": 3}, "1,234.500"),
        (Decimal("0.04321"), {"places": 4}, "0.0432"),
    ],
)
def test_number(value, args, text):
    assert filters.number(value, **args) == text


def test_ms_pct_and_money():
    assert filters.ms(1250.4) == "1,250 ms" and filters.ms(None) == "—" and filters.ms(0) == "0 ms"
    assert filters.pct(12.5) == "12.5 %" and filters.pct(Decimal("100.00")) == "100.00 %"
    assert filters.pct(None) == "—" and filters.pct(0) == "0 %"
    assert filters.pct(3, places=1, signed=True) == "+3.0 %"
    assert filters.pct(-1.25, places=1, signed=True) == "-1.2 %"
    assert filters.pct(2.345, places=2) == "2.35 %"
    assert filters.FILTERS["money"](Decimal("8.625")) == "$8.63"


def test_dates_are_written_in_utc():
    moment = datetime(2026, 11, 20, 23, 30, 5, tzinfo=timezone(timedelta(hours=-2)))
    assert filters.when(moment) == "2026-11-21 01:30"
    assert filters.when(moment, seconds=True) == "2026-11-21 01:30:05"
    assert filters.when(None) == "—" and filters.when(None, empty="never") == "never"
    assert filters.day(date(2026, 1, 2)) == "2026-01-02"
    assert filters.day(moment) == "2026-11-21"
    assert filters.day(datetime(2026, 1, 2, 3, tzinfo=UTC)) == "2026-01-02"


def test_filters_are_registered(app):
    for name in ("number", "ms", "pct", "money", "when", "day"):
        assert app.jinja_env.filters[name] is filters.FILTERS[name]


def _render(app, source: str, **context) -> str:
    with app.test_request_context():
        return app.jinja_env.from_string('{% import "_forms.html" as forms %}' + source).render(
            **context
        )


def test_field_ties_its_error_and_help_to_the_input(app):
    html = _render(
        app,
        '{{ forms.field("b-name", "name", "Name", "x<y", "is required", help="the label") }}',
    )
    assert '<label for="b-name">Name</label>' in html
    assert 'value="x&lt;y"' in html
    assert 'aria-describedby="b-name-help b-name-error" aria-invalid="true"' in html
    assert '<small class="muted" id="b-name-help">the label</small>' in html
    assert '<p class="field-error" id="b-name-error" role="alert">Name is required</p>' in html
    clean = _render(app, '{{ forms.field("b-name", "name", "Name", none) }}')
    assert 'value=""' in clean and "aria-invalid" not in clean and "field-error" not in clean


def test_select_marks_the_chosen_option(app):
    class Row:
        def __init__(self, id, display_name):
            self.id, self.display_name = id, display_name

    html = _render(
        app,
        '{{ forms.select("s", "feature_id", "Scope", rows, "2", "must exist", '
        'blank="All", value="id", text="display_name", error_label="Feature") }}'
        '{{ forms.select("t", "status", "Status", ["active", "beta"], "beta") }}',
        rows=[Row(1, "One"), Row(2, "Two")],
    )
    assert '<option value="">All</option><option value="1">One</option>' in html
    assert '<option value="2" selected>Two</option>' in html
    assert 'id="s-error" role="alert">Feature must exist</p>' in html
    assert "<option>active</option><option selected>beta</option>" in html


def test_error_summary_lists_the_fields_the_form_does_not_show(app):
    html = _render(
        app,
        '{{ forms.error_summary(errors, shown=("name",)) }}',
        errors={"name": "is required", "is_active": "must be a boolean"},
    )
    assert "Nothing was saved" in html and "Is active must be a boolean" in html
    assert "name is required" not in html
    assert _render(app, "{{ forms.error_summary({}) }}").strip() == ""


def test_pager_keeps_the_filters(app):
    html = _render(
        app,
        '{{ forms.pager("audit.index", 2, 3, {"action": "auth.login", "page": "2"}, "#r") }}',
    )
    assert 'href="/audit?action=auth.login&amp;page=1"' in html
    assert 'href="/audit?action=auth.login&amp;page=3"' in html
    assert 'hx-target="#r"' in html and 'rel="prev"' in html and 'rel="next"' in html
    first = _render(app, '{{ forms.pager("audit.index", 1, 1, {}, "#r") }}')
    assert "<a " not in first


@pytest.fixture
def demo(db):
    from sqlalchemy import select

    from webapp.cli.demo_data import load_demo_data
    from webapp.cli.seed import seed_defaults
    from webapp.models import AIModel, Budget, Experiment, Feature, Prompt, Provider
    from webapp.services.core.actor import Actor

    now = datetime.now(UTC)
    seed_defaults(Actor.cli(), now.date())
    load_demo_data(Actor.cli(), now, days=3, requests=200)
    db.session.commit()
    first = {
        kind: db.session.scalars(select(model.id).limit(1)).first()
        for kind, model in {
            "feature": Feature,
            "model": AIModel,
            "provider": Provider,
            "prompt": Prompt,
            "experiment": Experiment,
            "budget": Budget,
        }.items()
    }
    return first


# Every page whose template the kit changed, with a fragment it renders alone for htmx.
KIT_PAGES = [
    ("/", 'id="dashboard"'),
    ("/features", 'id="features-table"'),
    ("/features/{feature}", 'id="health"'),
    ("/models", 'id="models-table"'),
    ("/models/new", 'id="model-form"'),
    ("/models/{model}/edit", 'id="model-form"'),
    ("/prompts", 'id="prompt-results"'),
    ("/prompts/new", 'id="prompt-form"'),
    ("/prompts/{prompt}", 'id="prompt-page"'),
    ("/experiments", 'id="experiment-results"'),
    ("/experiments/new", 'id="experiment-form"'),
    ("/experiments/{experiment}", 'id="experiment-page"'),
    ("/spending", 'id="spending-results"'),
    ("/budgets/new", 'id="budget-form"'),
    ("/budgets/{budget}/edit", 'id="budget-form"'),
    ("/audit", 'id="audit-results"'),
]


def test_kit_pages_render_whole_and_as_htmx_fragments(admin_client, demo):
    for template, marker in KIT_PAGES:
        url = template.format(**demo)
        page = admin_client.get(url)
        assert page.status_code == 200, url
        assert "<html" in page.get_data(as_text=True), url
        fragment = admin_client.get(url, headers={"HX-Request": "true"})
        html = fragment.get_data(as_text=True)
        assert fragment.status_code == 200, url
        assert "<html" not in html and marker in html, url
    # Pages rendered whole for htmx too.
    whole = ("/users", "/providers", "/budgets", f"/budgets/{demo['budget']}")
    for url in (*whole, f"/providers/{demo['provider']}"):
        assert admin_client.get(url).status_code == 200, url
