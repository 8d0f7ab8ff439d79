"""Issue 16 item 18: the pages tell a field's problem with the form's label, not the
API's field name, as a sentence that starts with a capital; no "(optional)" inside a
sentence; numbers with thousands separators. The JSON APIs keep their field names."""

from __future__ import annotations

import pytest

from tests import factories
from tests.conftest import csrf_token
from webapp.services.core.errors import ValidationFailed
from webapp.views.messages import field_sentence, label_of, refusal, separated

HX = {"HX-Request": "true"}


SENTENCES = [
    ("end_date", "the range may span at most 1830 days"),
    "End date: the range may span at most 1,830 days",
    ("Per request (optional)", "must not be negative"),
    "Per request must not be negative",
    ("display_name", "is required"),
    "Display name is required",
    ("Health-check timeout, seconds (optional)", "must be a number"),
    "Health-check timeout, seconds must be a number",
    ("end_date", "must be on or after start_date"),
    "End date must be on or after the start date",
    ("page", "must be a whole number from 1 to 100000"),
    "Page must be a whole number from 1 to 100,000",
]


PAIRS = list(zip(SENTENCES[::2], SENTENCES[1::2], strict=True))


@pytest.mark.parametrize(("given", "sentence"), PAIRS)
def test_a_problem_reads_as_a_sentence_with_the_label(given, sentence):
    assert field_sentence(*given) == sentence


def test_numbers_in_dates_times_and_decimals_keep_their_digits():
    text = "on or after 2026-11-01 at 12:30, 0.0001 or 1.5000, id ab12345, 10000 or 99999999.99"
    assert separated(text) == (
        "on or after 2026-11-01 at 12:30, 0.0001 or 1.5000, id ab12345, 10,000 or 99,999,999.99"
    )


def test_the_numbers_of_standards_keep_their_digits(viewer_client, db):
    assert separated("an ISO 8601 timestamp, RFC 3339, 8601 days") == (
        "an ISO 8601 timestamp, RFC 3339, 8,601 days"
    )
    html = viewer_client.get("/spending?range=custom&start_date=2026-13-01&end_date=x")
    text = html.get_data(as_text=True)
    assert "Start date must be a date (YYYY-MM-DD) or an ISO 8601 timestamp" in text
    assert "8,601" not in text


def test_a_refusal_names_every_field_by_its_label():
    error = ValidationFailed({"model_id": "is not a known model", "environment": "must be one"})
    assert refusal(error, {"model_id": "Model"}) == (
        "Model is not a known model; Environment must be one"
    )
    assert label_of("health_check.url") == "Health check url"


def test_the_spending_range_problem_speaks_the_labels(viewer_client, db):
    html = viewer_client.get("/spending?range=custom&start_date=2020-01-01&end_date=2026-11-01")
    text = html.get_data(as_text=True)
    assert html.status_code == 400
    assert "End date: the range may span at most 1,830 days" in text
    assert "end_date the range" not in text


def test_the_model_form_names_an_optional_field_without_optional(admin_client, db):
    openai = factories.provider("openai")
    db.session.commit()
    response = admin_client.post(
        "/models",
        headers=HX,
        data={
            "csrf_token": csrf_token(admin_client, "/"),
            "name": "claude",
            "display_name": "Claude",
            "provider_id": str(openai.id),
            "model_type": "llm",
            "status": "available",
            "input_price_per_million": "3",
            "output_price_per_million": "15",
            "price_per_request": "-1",
        },
    )
    fragment = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Per request must not be negative" in fragment
    assert "(optional) must" not in fragment


def test_a_budget_form_problem_of_a_field_it_does_not_show_gets_words(admin_client, db):
    """The summary above a form names the fields it has no place for in words too."""
    from flask import render_template_string

    html = render_template_string(
        '{% import "_forms.html" as forms %}{{ forms.error_summary(errors, shown=("name",)) }}',
        errors={"name": "is required", "period_type": "must be one of daily, monthly"},
    )
    assert "Period type must be one of daily, monthly" in html
    assert "period_type" not in html


def test_the_api_keeps_its_field_names(admin_client, db):
    response = admin_client.post(
        "/api/platform/ai-management/features",
        json={"name": "Bad Name", "display_name": "X"},
        headers={"X-CSRFToken": csrf_token(admin_client, "/")},
    )
    assert response.status_code == 400
    assert response.get_json()["fields"] == {
        "name": "must be 1-100 lower-case letters, digits and dashes (e.g. photo-tagging)"
    }


def test_an_error_page_and_a_role_message_read_as_sentences(admin_client, db):
    import uuid

    missing = admin_client.get(f"/features/{uuid.UUID(int=7)}")
    assert missing.status_code == 404
    assert f"Feature {uuid.UUID(int=7)} does not exist" in missing.get_data(as_text=True)
    added = admin_client.post(
        "/users",
        data={
            "csrf_token": csrf_token(admin_client, "/"),
            "email": "v@example.com",
            "role": "viewer",
        },
    )
    assert added.status_code == 302
    page = admin_client.get(added.headers["Location"]).get_data(as_text=True)
    assert "v@example.com added as a viewer." in page
