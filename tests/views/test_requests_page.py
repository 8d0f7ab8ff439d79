"""The requests page: individual usage rows newest first in keyset pages, every filter,
each row's details (bodies for admins only), and the links to a resource's failures."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests import factories
from tests.usage_rows import insert_usage
from webapp.extensions import db
from webapp.models import UsageLog
from webapp.services.usage import logs

BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
API = "/api/platform/ai-management"


@pytest.fixture
def catalog(db):
    openai = factories.provider("openai", display_name="OpenAI")
    google = factories.provider("google", display_name="Google")
    gpt = factories.model(openai, "gpt-4", display_name="GPT-4")
    gemini = factories.model(google, "gemini", display_name="Gemini")
    chatbot = factories.feature("chatbot", display_name="AI Chatbot")
    search = factories.feature("search", display_name="AI Search")
    greeting = factories.prompt("greeting", version=3, feature_id=chatbot.id)
    db.session.commit()
    return {
        "openai": openai,
        "google": google,
        "gpt": gpt,
        "gemini": gemini,
        "chatbot": chatbot,
        "search": search,
        "greeting": greeting,
    }


def row(catalog, minutes: int, **fields):
    values = {
        "feature_id": catalog["chatbot"].id,
        "model_id": catalog["gpt"].id,
        "prompt_id": None,
        "created_at": BASE + timedelta(minutes=minutes),
        "status": "success",
        "error_message": None,
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_usd": Decimal("0.001200"),
        "request_data": {"messages": [{"role": "user", "content": "secret question"}]},
        "response_data": {"text": "secret answer"},
        "user_id": None,
        "session_id": None,
    }
    return values | fields


def shown_ids(html: str) -> list[str]:
    return re.findall(r'id="detail-([0-9a-f-]{36})"', html)


def test_newest_first_in_keyset_pages_that_cover_every_row_once(admin_client, catalog):
    # Three rows share one timestamp: the id breaks the tie, so no row is lost or repeated
    # at a page boundary.
    rows = insert_usage(
        [row(catalog, minutes) for minutes in range(118)] + [row(catalog, 200) for _ in range(3)]
    )
    expected = [
        str(r["id"])
        for r in sorted(rows, key=lambda r: (r["created_at"], r["id"].hex), reverse=True)
    ]
    seen: list[str] = []
    url = "/requests"
    pages = 0
    while url:
        response = admin_client.get(url)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        seen += shown_ids(html)
        pages += 1
        found = re.search(r'href="(/requests\?[^"]*cursor=[^"]+)"[^>]*rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert pages == 3
    assert seen == expected


def test_keyset_condition_is_one_row_comparison():
    sql = str(logs.before_keyset(UsageLog.created_at, UsageLog.id, (BASE, uuid.uuid4())).compile())
    assert re.fullmatch(r"\(ai_usage_logs\.created_at, ai_usage_logs\.id\) < \(\S+, \S+\)", sql), (
        sql
    )


def test_index_on_created_at_and_id_serves_the_keyset(db):
    indexes = {index.name: [c.name for c in index.columns] for index in UsageLog.__table__.indexes}
    assert indexes["ix_ai_usage_logs_created_at_id"] == ["created_at", "id"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"feature": "search"}, ["search-ok"]),
        ({"model": "gemini"}, ["gemini-timeout"]),
        ({"provider": "google"}, ["gemini-timeout"]),
        ({"environment": "staging"}, ["staging-error"]),
        ({"status": "error"}, ["staging-error", "rate-limited"]),
        ({"status": "failed"}, ["gemini-timeout", "staging-error", "rate-limited"]),
        ({"error_text": "RATE limit"}, ["rate-limited"]),
        ({"error_text": "50%"}, ["percent"]),
        ({"start_date": "2026-11-21", "end_date": "2026-11-21"}, ["next-day"]),
    ],
)
def test_filters(admin_client, catalog, query, expected):
    made = insert_usage(
        [
            row(catalog, 1, event_id="search-ok", feature_id=catalog["search"].id),
            row(
                catalog,
                2,
                event_id="gemini-timeout",
                model_id=catalog["gemini"].id,
                status="timeout",
                error_message="deadline exceeded",
            ),
            row(
                catalog,
                3,
                event_id="staging-error",
                environment="staging",
                status="error",
                error_message="bad gateway",
            ),
            row(
                catalog,
                4,
                event_id="rate-limited",
                status="error",
                error_message="Rate limit reached",
            ),
            row(catalog, 5, event_id="percent", error_message="50% of quota (warning)"),
            row(catalog, 60 * 24, event_id="next-day"),
        ]
    )
    by_id = {str(r["id"]): r["event_id"] for r in made}
    names = {
        "feature": ("feature_id", {"search": catalog["search"].id}),
        "model": ("model_id", {"gemini": catalog["gemini"].id}),
        "provider": ("provider_id", {"google": catalog["google"].id}),
    }
    params = {}
    for key, value in query.items():
        if key in names:
            params[names[key][0]] = str(names[key][1][value])
        else:
            params[key] = value
    response = admin_client.get("/requests", query_string=params)
    assert response.status_code == 200
    got = [by_id[i] for i in shown_ids(response.get_data(as_text=True))]
    assert sorted(got) == sorted(expected)
    assert got == sorted(got, key=lambda e: -[r["event_id"] for r in made].index(e))


def test_wrong_filters_are_named_and_left_out(admin_client, catalog):
    insert_usage([row(catalog, 1), row(catalog, 2, status="error", error_message="x")])
    response = admin_client.get(
        "/requests",
        query_string={"status": "broken", "feature_id": "nope", "cursor": "zzz"},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "status=broken" in html and "must be one of" in html
    assert "feature_id=nope" in html and "must be a UUID" in html
    assert "cursor=zzz" in html
    assert len(shown_ids(html)) == 2


def test_htmx_swaps_only_the_results(admin_client, catalog):
    insert_usage([row(catalog, 1)])
    response = admin_client.get("/requests?status=success", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="request-results"')
    assert "<html" not in html
    assert "HX-Request" in response.headers["Vary"]


def test_details_for_an_admin_show_bodies_cost_source_prompt_and_user(admin_client, catalog):
    user, session = uuid.uuid4(), uuid.uuid4()
    (made,) = insert_usage(
        [
            row(
                catalog,
                1,
                prompt_id=catalog["greeting"].id,
                user_id=user,
                session_id=session,
                cost_source="reported",
                response_time_ms=734,
            )
        ]
    )
    response = admin_client.get(f"/requests/{made['id']}", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and "<details" in html
    assert "secret question" in html and "secret answer" in html
    assert "reported by the application" in html
    assert "greeting" in html and "version 3" in html
    assert str(user) in html and str(session) in html
    assert "734 ms" in html and "100 in · 20 out · 120 total" in html
    assert "$0.001200" in html
    full = admin_client.get(f"/requests/{made['id']}").get_data(as_text=True)
    assert "<html" in full and "secret answer" in full


def test_viewers_see_details_without_bodies(viewer_client, catalog):
    (made,) = insert_usage([row(catalog, 1, event_metadata={"note": "private"})])
    list_html = viewer_client.get("/requests").get_data(as_text=True)
    assert str(made["id"]) in list_html
    html = viewer_client.get(f"/requests/{made['id']}").get_data(as_text=True)
    assert "secret question" not in html and "secret answer" not in html
    assert "private" not in html
    assert "shown to platform admins only" in html
    assert "100 in · 20 out" in html


def test_unknown_request_is_404(admin_client, catalog):
    assert admin_client.get(f"/requests/{uuid.uuid4()}").status_code == 404
    assert admin_client.get("/requests/not-an-id").status_code == 404


def test_feature_page_links_to_its_failing_requests(admin_client, catalog):
    feature_id = catalog["chatbot"].id
    html = admin_client.get(f"/features/{feature_id}").get_data(as_text=True)
    found = re.search(r'class="failing-requests" href="([^"]+)"', html)
    assert found, "no link to the failing requests"
    link = found.group(1).replace("&amp;", "&")
    assert f"feature_id={feature_id}" in link and "status=failed" in link


def test_provider_error_rate_alert_links_to_its_failing_requests(admin_client, catalog):
    now = datetime.now(UTC)
    insert_usage(
        [
            row(
                catalog,
                0,
                created_at=now - timedelta(minutes=1, seconds=i),
                status="error",
                error_message="upstream 500",
            )
            for i in range(30)
        ]
    )
    html = admin_client.get("/").get_data(as_text=True)
    provider_id = catalog["openai"].id
    found = re.search(r'class="failing-requests" href="([^"]+)"', html)
    assert found, "no failing-requests link beside the provider alert"
    link = found.group(1).replace("&amp;", "&")
    assert link == f"/requests?provider_id={provider_id}&status=failed"
    listed = admin_client.get(link).get_data(as_text=True)
    assert len(shown_ids(listed)) == 30


def test_usage_api_pages_with_the_same_cursor(admin_client, catalog):
    insert_usage([row(catalog, minutes) for minutes in range(5)])
    first = admin_client.get(f"{API}/usage?limit=2").get_json()
    cursor = first["metadata"]["next_cursor"]
    second = admin_client.get(f"{API}/usage?limit=2&cursor={cursor}").get_json()
    ids = [r["id"] for r in first["data"] + second["data"]]
    expected = db.session.scalars(
        select(UsageLog.id).order_by(UsageLog.created_at.desc(), UsageLog.id.desc()).limit(4)
    ).all()
    assert ids == [str(i) for i in expected]
    failed = admin_client.get(f"{API}/usage?status=failed&error_text=x").get_json()
    assert failed["data"] == []


def test_requests_in_the_nav(admin_client, catalog):
    html = admin_client.get("/requests").get_data(as_text=True)
    assert 'href="/requests" aria-current="page">Requests</a>' in html
