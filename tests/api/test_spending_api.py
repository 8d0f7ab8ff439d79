"""The seed's /spending contract, /budgets/<id>, /usage and /usage.csv, with wrong input."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import csrf_token
from tests.spending_data import at, build_dataset, event
from webapp.extensions import db
from webapp.models import Budget
from webapp.services.usage.recording import record_usage

API = "/api/platform/ai-management"


@pytest.fixture
def data(db):
    return build_dataset()


def write(client, method, url, body):
    return client.open(
        url, method=method, json=body, headers={"X-CSRFToken": csrf_token(client, "/")}
    )


def test_breakdown_money_is_exact_text(admin_client, data):
    body = admin_client.get(
        f"{API}/spending?action=breakdown&start_date=2026-11-18&end_date=2026-11-20"
    ).get_json()
    assert body["success"] is True
    result = body["data"]
    assert result["total_spend"] == "5.750000"
    assert result["by_feature"][0] == {
        "feature_id": str(data.chatbot.id),
        "feature_name": "Chatbot",
        "amount": "3.900000",
        "percentage": "67.83",
        "request_count": 3,
    }
    assert [d["date"] for d in result["by_day"]] == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert set(result["by_model"][0]) >= {
        "model_id",
        "model_name",
        "provider_name",
        "amount",
        "percentage",
        "request_count",
    }


def test_breakdown_requires_both_dates(admin_client, db):
    response = admin_client.get(f"{API}/spending?action=breakdown&start_date=2026-11-01")
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "start_date and end_date are required for breakdown"
    assert body["fields"] == {"end_date": "is required"}
    # the seed's default action is breakdown
    assert admin_client.get(f"{API}/spending").get_json()["fields"] == {
        "start_date": "is required",
        "end_date": "is required",
    }


def test_breakdown_bad_dates_are_named(admin_client, db):
    response = admin_client.get(
        f"{API}/spending?action=breakdown&start_date=2026-13-01&end_date=2026-11-01"
    )
    assert response.status_code == 400
    assert response.get_json()["fields"] == {
        "start_date": "must be a date (YYYY-MM-DD) or an ISO 8601 timestamp"
    }


def test_unknown_action(admin_client, db):
    response = admin_client.get(f"{API}/spending?action=forecast")
    assert response.status_code == 400
    assert response.get_json()["error"] == "Invalid action parameter"


def test_trends_days_is_checked(admin_client, db):
    assert admin_client.get(f"{API}/spending?action=trends&days=7").get_json()["data"]["days"] == 7
    for days in ("0", "366", "x"):
        response = admin_client.get(f"{API}/spending?action=trends&days={days}")
        assert response.status_code == 400
        assert response.get_json()["fields"] == {"days": "must be a whole number from 1 to 365"}


def test_budgets_and_recommendations_actions(admin_client, data):
    factories.budget(name="All", budget_amount="10.00")
    db.session.commit()
    budgets = admin_client.get(f"{API}/spending?action=budgets").get_json()["data"]
    assert [b["budget"]["name"] for b in budgets] == ["All"]
    assert set(budgets[0]) >= {
        "current_spend",
        "projected_spend",
        "days_remaining",
        "burn_rate",
        "status",
        "alerts",
    }
    recommendations = admin_client.get(f"{API}/spending?action=recommendations").get_json()["data"]
    assert isinstance(recommendations, list)


def test_post_spending_creates_a_budget(admin_client, data):
    response = write(
        admin_client,
        "POST",
        f"{API}/spending",
        {
            "name": "Chat",
            "budget_amount": 250,
            "start_date": "2026-11-01",
            "end_date": "2026-11-30",
            "feature_id": str(data.chatbot.id),
        },
    )
    assert response.status_code == 201
    created = response.get_json()["data"]
    assert created["budget_amount"] == "250.00"
    assert created["period_type"] == "monthly"
    assert created["alert_threshold"] == "0.80"


def test_post_spending_names_missing_and_wrong_fields(admin_client, db):
    response = write(admin_client, "POST", f"{API}/spending", {"name": "x", "budget_amount": 0})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "Missing required fields: start_date, end_date"
    assert body["fields"] == {
        "budget_amount": "must be greater than 0 and at most 99999999.99",
        "start_date": "is required",
        "end_date": "is required",
    }
    response = write(
        admin_client,
        "POST",
        f"{API}/spending",
        {
            "name": "x",
            "budget_amount": "-1",
            "start_date": "2026-11-02",
            "end_date": "2026-11-01",
            "alert_threshold": 2,
        },
    )
    assert response.status_code == 400
    assert response.get_json()["fields"] == {
        "budget_amount": "must be greater than 0 and at most 99999999.99",
        "alert_threshold": "must be greater than 0 and at most 1 (e.g. 0.8 for 80 %)",
        "end_date": "must be on or after start_date",
    }
    response = admin_client.post(
        f"{API}/spending",
        data="[1]",
        content_type="application/json",
        headers={"X-CSRFToken": csrf_token(admin_client, "/")},
    )
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Budget)) == 0


def test_budget_get_put_delete(admin_client, data):
    budget = factories.budget(name="All", budget_amount="10.00")
    db.session.commit()
    url = f"{API}/budgets/{budget.id}"
    got = admin_client.get(url).get_json()["data"]
    assert got["budget"]["name"] == "All"
    assert got["history"][0]["start"] == "2026-11-01"
    assert (
        write(admin_client, "PUT", url, {"budget_amount": "12.5"}).get_json()["data"][
            "budget_amount"
        ]
        == "12.50"
    )
    bad = write(admin_client, "PUT", url, {"budget_amount": "abc"})
    assert bad.status_code == 400 and bad.get_json()["fields"] == {
        "budget_amount": "must be a decimal number"
    }
    assert write(admin_client, "DELETE", url, None).status_code == 200
    assert admin_client.get(url).status_code == 404
    assert admin_client.get(f"{API}/budgets/not-a-uuid").status_code == 404
    assert write(admin_client, "DELETE", f"{API}/budgets/{uuid.uuid4()}", None).status_code == 404


def test_usage_pages_follow_the_cursor(admin_client, data):
    first = admin_client.get(f"{API}/usage?limit=4").get_json()
    assert first["metadata"]["count"] == 4
    assert first["data"][0]["created_at"] == "2026-11-20T09:00:00+00:00"  # newest first
    assert first["data"][0]["cost_usd"] == "1.000000"
    second = admin_client.get(
        f"{API}/usage?limit=4&cursor={first['metadata']['next_cursor']}"
    ).get_json()
    assert second["metadata"]["count"] == 2 and second["metadata"]["next_cursor"] is None
    ids = [r["id"] for r in first["data"] + second["data"]]
    assert len(set(ids)) == 6


def test_usage_filters(admin_client, data):
    def ids(query):
        return len(admin_client.get(f"{API}/usage?{query}").get_json()["data"])

    assert ids(f"feature_id={data.chatbot.id}") == 3
    assert ids(f"model_id={data.gpt.id}") == 2
    assert ids(f"provider_id={data.anthropic.id}") == 2
    assert ids("status=error") == 1
    assert ids("start_date=2026-11-19&end_date=2026-11-19") == 2


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("feature_id=1", {"feature_id": "must be a UUID"}),
        ("status=ok", {"status": "must be one of pending, success, error, timeout, failed"}),
        (
            "start_date=2026-11-20&end_date=2026-11-01",
            {"end_date": "must be on or after start_date"},
        ),
        ("limit=0", {"limit": "must be a whole number from 1 to 500"}),
        ("cursor=abc", {"cursor": "is not a cursor this API returned"}),
    ],
)
def test_usage_wrong_filters(admin_client, db, query, fields):
    response = admin_client.get(f"{API}/usage?{query}")
    assert response.status_code == 400
    assert response.get_json()["fields"] == fields


def test_csv_export_streams_filtered_rows_and_defuses_formulas(admin_client, data):
    record_usage(
        [
            event(
                data.search,
                data.mini,
                at(19, 12),
                1,
                1,
                status="error",
                error_message='=HYPERLINK("x")',
            )
        ]
    )
    response = admin_client.get(f"{API}/usage.csv?start_date=2026-11-19&end_date=2026-11-19")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="usage.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 3
    assert rows[0]["error_message"] == '\'=HYPERLINK("x")'
    assert {r["cost_usd"] for r in rows} >= {"0.500000", "0.100000"}
    assert admin_client.get(f"{API}/usage.csv?status=bad").status_code == 400


def test_csv_export_pages_through_more_rows_than_one_chunk(admin_client, data, monkeypatch):
    from webapp.services.usage import logs as usage_logs

    monkeypatch.setattr(usage_logs, "EXPORT_CHUNK", 4)
    response = admin_client.get(f"{API}/usage.csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 6 and len({r["id"] for r in rows}) == 6


def test_viewer_reads_but_cannot_create_budgets(viewer_client, data):
    assert viewer_client.get(f"{API}/spending?action=budgets").status_code == 200
    response = write(viewer_client, "POST", f"{API}/spending", {"name": "x"})
    assert response.status_code == 403


def test_a_budget_form_and_the_api_name_the_same_problems(admin_client, db):
    """One input model for both: a wrong shape and an unknown feature in one answer."""
    body = {
        "name": "x",
        "budget_amount": "1.005",
        "start_date": "2026-11-01",
        "end_date": "2026-11-30",
        "feature_id": str(uuid.uuid4()),
    }
    expected = {
        "budget_amount": "must have at most 2 decimal places",
        "feature_id": "does not exist",
    }
    api = write(admin_client, "POST", f"{API}/budgets", body)
    assert api.status_code == 400 and api.get_json()["fields"] == expected
    page = admin_client.post(
        "/budgets", data={**body, "csrf_token": csrf_token(admin_client, "/budgets/new")}
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "must have at most 2 decimal places" in html and "does not exist" in html
    assert db.session.scalar(select(func.count()).select_from(Budget)) == 0


def test_csv_export_filters_by_environment_and_tells_reported_and_unpriced_rows(admin_client, db):
    from datetime import UTC, datetime, timedelta

    from tests.usage_rows import insert_usage

    feature = factories.feature("chatbot")
    model = factories.model(factories.provider("openai", display_name="OpenAI"), "gpt")
    db.session.commit()
    moment = datetime.now(UTC) - timedelta(minutes=5)
    insert_usage(
        [
            {"feature_id": feature.id, "model_id": model.id, "created_at": moment,
             "cost_usd": "0.5", "environment": "production"},
            {"feature_id": feature.id, "created_at": moment - timedelta(seconds=1),
             "environment": "staging", "model_name": "=gemini-2.0-flash",
             "provider_name": "google", "cost_source": "unpriced"},
        ]
    )  # fmt: skip
    every = admin_client.get(f"{API}/usage.csv").get_data(as_text=True)
    header = every.splitlines()[0].split(",")
    assert header[:17] == [
        "id", "created_at", "feature_id", "feature_name", "model_id", "model_name",
        "provider_name", "prompt_id", "status", "input_tokens", "output_tokens", "tokens_used",
        "response_time_ms", "cost_usd", "error_message", "user_id", "organization_id",
    ]  # fmt: skip
    assert header[17:] == [
        "environment",
        "cost_source",
        "reported_model_name",
        "reported_provider_name",
    ]
    rows = list(csv.DictReader(io.StringIO(every)))
    assert [(r["environment"], r["cost_source"]) for r in rows] == [
        ("production", "catalog"),
        ("staging", "unpriced"),
    ]
    unknown = rows[1]
    assert unknown["model_id"] == "" and unknown["model_name"] == ""
    assert unknown["reported_model_name"] == "'=gemini-2.0-flash"  # the formula guard holds
    assert unknown["reported_provider_name"] == "google"
    staging = admin_client.get(f"{API}/usage.csv?environment=staging").get_data(as_text=True)
    assert [r["id"] for r in csv.DictReader(io.StringIO(staging))] == [unknown["id"]]
    listed = admin_client.get(f"{API}/usage?environment=production").get_json()["data"]
    assert [r["environment"] for r in listed] == ["production"]
    wrong = admin_client.get(f"{API}/usage.csv?environment=moon")
    assert wrong.status_code == 400 and "environment" in wrong.get_json()["fields"]


def test_each_period_of_the_history_carries_the_amount_applied_to_it(admin_client, db):
    """A daily $10 budget cut to $4 today: the past days keep $10 in the API's history,
    today (and the analysis) has $4."""
    today = datetime.now(UTC).date()
    budget = factories.budget(
        name="Daily",
        period_type="daily",
        budget_amount="10.00",
        start_date=today - timedelta(days=3),
        end_date=today + timedelta(days=10),
    )
    db.session.commit()
    url = f"{API}/budgets/{budget.id}"
    assert write(admin_client, "PUT", url, {"budget_amount": "4"}).status_code == 200
    got = admin_client.get(url).get_json()["data"]
    assert [(p["start"], p["amount"]) for p in got["history"]] == [
        ((today - timedelta(days=3)).isoformat(), "10.00"),
        ((today - timedelta(days=2)).isoformat(), "10.00"),
        ((today - timedelta(days=1)).isoformat(), "10.00"),
        (today.isoformat(), "4.00"),
    ]
    assert all(p["budget_amount"] == p["amount"] for p in got["history"])
    assert got["amount"] == "4.00" and got["budget"]["budget_amount"] == "4.00"
