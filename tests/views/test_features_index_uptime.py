"""The features index shows no uptime, so it does not count it: no statement of its reads
the hourly outcomes (whole days) and no per-hour grouping is asked for (rolling windows),
while the admin API's list of features keeps its uptime (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from tests import factories
from tests.usage_rows import insert_usage
from webapp.extensions import db
from webapp.services.usage import windows
from webapp.services.usage.settled import settled_sums

API = "/api/platform/ai-management"


@pytest.fixture
def usage(db):
    model = factories.model(factories.provider("openai"), "gpt-4")
    feature = factories.feature("chatbot", display_name="AI Chatbot")
    factories.assignment(feature, model)
    db.session.commit()
    at = datetime.now(UTC) - timedelta(minutes=10)  # in every range, rolling or whole days
    insert_usage(
        [
            {"feature_id": feature.id, "model_id": model.id, "status": status, "created_at": at}
            for status in ("success", "success", "error")
        ]
    )
    return feature


def statements_of(client, url: str) -> list[str]:
    seen: list[str] = []

    def listener(_conn, _cursor, statement, *_args):
        seen.append(statement)

    settled_sums(client.application).forget()  # both cold: every read reaches the database
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        response = client.get(url)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert response.status_code == 200, url
    return seen


def test_the_features_page_runs_no_uptime_statement_and_the_api_still_does(viewer_client, usage):
    page = statements_of(viewer_client, "/features?range=30d")
    api = statements_of(viewer_client, f"{API}/features?include_metrics=true&time_range=30d")
    assert not [s for s in page if "ai_usage_hourly_outcomes" in s]
    assert len([s for s in api if "ai_usage_hourly_outcomes" in s]) == 1
    assert len(page) == len(api) - 1  # the same reads but that one
    body = viewer_client.get(f"{API}/features?include_metrics=true&time_range=30d").get_json()
    (chatbot,) = [f for f in body["data"] if f["name"] == "chatbot"]
    assert chatbot["metrics"]["uptime"] == "100.00" and chatbot["metrics"]["total_requests"] == 3


@pytest.mark.parametrize("time_range", ["1h", "24h", "7d", "30d"])
def test_no_range_of_the_features_page_counts_uptime(viewer_client, usage, monkeypatch, time_range):
    counted: list[str] = []
    for name in ("_hourly_uptime", "_rollup_uptime_by", "_uptime_by"):
        real = getattr(windows, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            counted.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(windows, name, spy)
    page = viewer_client.get(f"/features?range={time_range}").get_data(as_text=True)
    assert "AI Chatbot" in page and counted == []
    body = viewer_client.get(f"{API}/features?include_metrics=true&time_range={time_range}")
    assert counted  # the API's list counts it: the spies see a count
    (chatbot,) = [f for f in body.get_json()["data"] if f["name"] == "chatbot"]
    assert chatbot["metrics"]["uptime"] == "100.00"
