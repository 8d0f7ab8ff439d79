"""CSV exports of the spending breakdown tables and of the audit log: linked from their
pages, the same figures and rows as the page, one formula-injection guard for all."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tests import factories
from tests.usage_rows import insert_usage
from webapp.models import AuditLog


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def link(html: str, pattern: str) -> str:
    found = re.search(rf'href="({pattern}[^"]*)"', html)
    assert found, f"no link to {pattern}"
    return found.group(1).replace("&amp;", "&")


@pytest.fixture
def spending(db):
    openai = factories.provider("openai", display_name="OpenAI")
    gpt = factories.model(openai, "gpt", display_name="GPT")
    chatbot = factories.feature("chatbot", display_name="=HYPERLINK(1)")
    search = factories.feature("search", display_name="Search")
    db.session.commit()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    insert_usage(
        [
            {
                "feature_id": chatbot.id,
                "model_id": gpt.id,
                "created_at": today - timedelta(days=2),
                "cost_usd": "1.234567",
            },
            {
                "feature_id": search.id,
                "model_id": gpt.id,
                "created_at": today - timedelta(days=3),
                "cost_usd": "0.765433",
            },
            {
                "feature_id": search.id,
                "model_id": gpt.id,
                "created_at": today - timedelta(days=3),
                "cost_usd": "5.000000",
                "environment": "staging",
            },
        ]
    )
    return {"chatbot": chatbot, "search": search, "gpt": gpt, "openai": openai}


def test_each_breakdown_table_links_its_csv_with_the_period_shown(admin_client, spending):
    html = admin_client.get("/spending?range=7d&environment=production").get_data(as_text=True)
    for table in ("features", "providers", "models"):
        url = link(html, f"/spending/{table}.csv")
        assert "range=custom" in url and "environment=production" in url
        assert "start_date=" in url and "end_date=" in url


def test_feature_table_csv_has_the_pages_figures_exactly_and_guarded_names(admin_client, spending):
    html = admin_client.get("/spending?range=7d&environment=production").get_data(as_text=True)
    rows = read_csv(admin_client.get(link(html, "/spending/features.csv")))
    by_name = {row["feature"]: row for row in rows}
    # A name a spreadsheet would run as a formula gets the usage CSV's apostrophe.
    assert set(by_name) == {"'=HYPERLINK(1)", "Search"}
    assert by_name["'=HYPERLINK(1)"]["spend_usd"] == "1.234567"
    assert by_name["Search"]["spend_usd"] == "0.765433"  # staging's $5 left out
    assert sum(Decimal(row["share_percent"]) for row in rows) == Decimal("100.00")
    assert by_name["Search"]["requests"] == "1"
    assert by_name["Search"]["feature_id"] == str(spending["search"].id)


def test_provider_and_model_tables(admin_client, spending):
    start = (date.today() - timedelta(days=6)).isoformat()
    end = date.today().isoformat()
    query = {"range": "custom", "start_date": start, "end_date": end}
    providers = read_csv(admin_client.get("/spending/providers.csv", query_string=query))
    assert [(r["provider"], r["spend_usd"], r["requests"]) for r in providers] == [
        ("OpenAI", "7.000000", "3")
    ]
    models = read_csv(admin_client.get("/spending/models.csv", query_string=query))
    assert [(r["model"], r["provider"], r["share_percent"]) for r in models] == [
        ("GPT", "OpenAI", "100.00")
    ]
    response = admin_client.get("/spending/models.csv", query_string=query)
    assert f"spending-by-model-{start}-to-{end}.csv" in response.headers["Content-Disposition"]


def test_wrong_parameters_are_refused_not_exported_as_something_else(admin_client, spending):
    response = admin_client.get("/spending/features.csv?range=1y")
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "range=1y" in text and "must be one of" in text and "instead" not in text
    assert admin_client.get("/spending/budgets.csv").status_code == 404


@pytest.fixture
def events(db, admin_user, viewer_user):
    base = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    rows = [
        AuditLog(
            user_id=admin_user.id,
            action="feature.update",
            resource_type="feature",
            old_values={"status": "active"},
            new_values={"status": "maintenance", "note": "@SUM(A1)"},
            ip_address="10.0.0.7",
            created_at=base,
        ),
        AuditLog(
            user_id=admin_user.id,
            action="user.create",
            resource_type="user",
            new_values={"email": "z@example.com"},
            ip_address="10.0.0.8",
            created_at=base + timedelta(days=1),
        ),
        AuditLog(
            user_id=None,
            action="-cmd|' /C calc'!A0",
            resource_type="feature",
            created_at=base + timedelta(days=2),
        ),
    ]
    db.session.add_all(rows)
    db.session.commit()
    return rows


def test_audit_csv_is_linked_with_the_filters_and_has_every_matching_row(admin_client, events):
    html = admin_client.get("/audit?resource_type=feature").get_data(as_text=True)
    url = link(html, "/audit.csv")
    assert "resource_type=feature" in url
    rows = read_csv(admin_client.get(url))
    assert [row["action"] for row in rows] == ["'-cmd|' /C calc'!A0", "feature.update"]
    assert rows[0]["user"] == "system"
    update = rows[1]
    assert update["old_values"] == '{"status": "active"}'
    assert update["new_values"] == '{"note": "@SUM(A1)", "status": "maintenance"}'
    assert update["ip_address"] == "10.0.0.7"
    assert update["user"] == "admin@example.com"
    assert update["created_at"].startswith("2026-11-20T12:00:00")


def test_audit_csv_for_a_viewer_hides_what_the_page_hides(viewer_client, events):
    rows = read_csv(viewer_client.get("/audit.csv"))
    by_action = {row["action"]: row for row in rows}
    assert by_action["user.create"]["new_values"] == ""
    assert by_action["feature.update"]["new_values"] != ""
    assert all(row["ip_address"] == "" for row in rows)
    assert "admin@example.com" not in viewer_client.get("/audit.csv").get_data(as_text=True)


def test_audit_csv_pages_through_more_rows_than_one_chunk(admin_client, db, monkeypatch):
    from webapp.services.audit import log

    monkeypatch.setattr(log, "EXPORT_CHUNK", 7)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    db.session.add_all(
        AuditLog(action=f"a.{i:02d}", resource_type="feature", created_at=base) for i in range(20)
    )
    db.session.commit()
    rows = read_csv(admin_client.get("/audit.csv?to=2026-11-01"))
    assert len(rows) == 20 and len({row["action"] for row in rows}) == 20


def test_audit_csv_refuses_wrong_filters(admin_client, events):
    response = admin_client.get("/audit.csv?from=yesterday")
    assert response.status_code == 400
    assert "from=yesterday" in response.get_data(as_text=True)
