"""The audit log page: newest first, filters in the URL, htmx partial, pages, old → new."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from webapp.models import AuditLog


@pytest.fixture
def events(db, admin_user, viewer_user):
    base = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    rows = [
        AuditLog(
            user_id=admin_user.id,
            action="feature.update",
            resource_type="feature",
            old_values={"status": "active"},
            new_values={"status": "maintenance"},
            created_at=base,
        ),
        AuditLog(
            user_id=viewer_user.id,
            action="auth.forbidden",
            resource_type="request",
            new_values={"method": "PUT", "path": "/x"},
            created_at=base + timedelta(days=1),
        ),
        AuditLog(
            user_id=admin_user.id,
            action="user.create",
            resource_type="user",
            new_values={"email": "z@example.com"},
            created_at=base + timedelta(days=2),
        ),
    ]
    db.session.add_all(rows)
    db.session.commit()
    return rows


def row_actions(html: str) -> list[str]:
    import re

    return re.findall(r"<code>([a-z0-9_.]+)</code>", html)


def test_newest_first_with_old_and_new_values(admin_client, events):
    html = admin_client.get(
        "/audit", query_string={"from": "2026-11-20", "to": "2026-11-22"}
    ).get_data(as_text=True)
    assert row_actions(html) == ["user.create", "auth.forbidden", "feature.update"]
    assert (
        '<span class="old">active</span>' in html and '<span class="new">maintenance</span>' in html
    )


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"action": "feature.update"}, ["feature.update"]),
        ({"resource_type": "user", "from": "2026-11-01", "to": "2026-11-22"}, ["user.create"]),
        ({"from": "2026-11-21", "to": "2026-11-21"}, ["auth.forbidden"]),
    ],
)
def test_filters(viewer_client, events, query, expected):
    html = viewer_client.get("/audit", query_string=query).get_data(as_text=True)
    assert row_actions(html) == expected


def test_filter_by_user(viewer_client, events, viewer_user):
    html = viewer_client.get(
        "/audit", query_string={"user": str(viewer_user.id), "to": "2026-11-22"}
    ).get_data(as_text=True)
    assert row_actions(html) == ["auth.forbidden"]


def test_htmx_gets_only_the_results(viewer_client, events):
    response = viewer_client.get(
        "/audit",
        query_string={"action": "user.create", "to": "2026-11-22"},
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="audit-results"')
    assert "<form" not in html and row_actions(html) == ["user.create"]


@pytest.mark.parametrize(
    "query, field",
    [
        ({"from": "yesterday"}, "from"),
        ({"user": "bob"}, "user"),
        ({"page": "0"}, "page"),
        ({"from": "2026-11-22", "to": "2026-11-20"}, "to"),
    ],
)
def test_bad_filters_are_named(viewer_client, events, query, field):
    response = viewer_client.get("/audit", query_string=query)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f"{field.title()} " in html and f"<code>{field}={query[field]}</code>" in html


def test_pagination(viewer_client, db, admin_user):
    base = datetime(2026, 1, 1, tzinfo=UTC)
    db.session.add_all(
        AuditLog(
            user_id=admin_user.id,
            action=f"test.{i:03d}",
            resource_type="t",
            created_at=base + timedelta(minutes=i),
        )
        for i in range(60)
    )
    db.session.commit()
    first = viewer_client.get("/audit", query_string={"resource_type": "t"}).get_data(as_text=True)
    assert "60 events · page 1 of 2" in first
    assert row_actions(first)[0] == "test.059" and len(row_actions(first)) == 50
    assert "page=2" in first and "resource_type=t" in first  # the link keeps the filters
    second = viewer_client.get("/audit", query_string={"resource_type": "t", "page": 2}).get_data(
        as_text=True
    )
    assert row_actions(second) == [f"test.{i:03d}" for i in range(9, -1, -1)]


def test_audit_rows_cannot_be_edited_or_deleted(db, events):
    """SQLite's triggers raise; on PostgreSQL row-level security shows no row to UPDATE
    or DELETE at all (and the trigger would raise behind it). Either way nothing moves."""
    from sqlalchemy import delete, select, update
    from sqlalchemy.exc import DBAPIError

    before = db.session.execute(select(AuditLog.id, AuditLog.action).order_by(AuditLog.id)).all()
    for statement in (update(AuditLog).values(action="forged"), delete(AuditLog)):
        try:
            with db.session.begin_nested():
                assert db.session.execute(statement).rowcount == 0
        except DBAPIError as error:
            assert "append-only" in str(error)
    db.session.expire_all()
    after = db.session.execute(select(AuditLog.id, AuditLog.action).order_by(AuditLog.id)).all()
    assert after == before and len(after) == 5  # 3 events + 2 user.create rows


def test_a_bad_date_range_keeps_the_other_filters(viewer_client, events, admin_user):
    response = viewer_client.get(
        "/audit",
        query_string={"action": "feature.update", "from": "2026-11-22", "to": "2026-11-01"},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "To must not be before the start date; that filter is left out." in html
    assert row_actions(html) == []  # action and from still apply: nothing after 11-22
    assert "events" in html


def test_structured_values_are_shown_as_json(admin_client, db):
    from datetime import UTC, datetime

    db.session.add(
        AuditLog(
            action="model.delete",
            resource_type="model",
            old_values={"pricing": {"input_price_per_million": "30.000000"}, "tags": ["a"]},
            created_at=datetime(2026, 11, 21, tzinfo=UTC),
        )
    )
    db.session.commit()
    html = admin_client.get("/audit", query_string={"action": "model.delete"}).get_data(
        as_text=True
    )
    assert (
        "{&#34;input_price_per_million&#34;: &#34;30.000000&#34;}" in html
        or '{"input_price_per_million": "30.000000"}' in html
    )
    assert "{'input_price_per_million'" not in html


def test_viewers_see_names_not_emails(viewer_client, events, admin_user, db):
    """Issue 12 item 12: the user filter listed every account's email to viewers, while
    /users is admin-only."""
    from tests.conftest import make_user
    from webapp.models import ROLE_VIEWER

    named = make_user("named.person@example.com", ROLE_VIEWER)
    named.display_name = "Named Person"
    db.session.commit()
    html = viewer_client.get("/audit").get_data(as_text=True)
    for email in ("admin@example.com", "named.person@example.com", "z@example.com"):
        assert email not in html
    assert ">Named Person</option>" in html
    assert f">user {admin_user.id.hex[:8]}</option>" in html
    assert f"<td>user {admin_user.id.hex[:8]}</td>" in html  # who did it, in the rows


def test_admins_see_emails(admin_client, events):
    html = admin_client.get("/audit").get_data(as_text=True)
    assert ">viewer@example.com</option>" in html and "<td>admin@example.com</td>" in html
    assert "z@example.com" in html  # the new user's email in user.create's values


def test_rows_name_their_resource_and_link_while_it_exists(admin_client, admin_user, db):
    """Issue 16 item 11: names kept at write time, so a deleted resource still reads
    well; a link only while it exists; the diff shows only what changed, JSON-style."""
    from webapp.services.catalog.features import create_feature, update_feature
    from webapp.services.core.actor import Actor
    from webapp.services.spending.budgets import create_budget, delete_budget

    actor = Actor(admin_user.id)
    feature = create_feature(actor, {"name": "chatbot", "display_name": "AI Chatbot"})
    update_feature(actor, feature.id, {"description": "Answers", "status": "maintenance"})
    budget = create_budget(
        actor,
        {
            "name": "Gone budget",
            "budget_amount": "5",
            "start_date": "2026-11-01",
            "end_date": "2026-11-30",
        },
    )
    delete_budget(actor, budget.id)
    rows = {row.action: row for row in db.session.scalars(select(AuditLog))}
    assert rows["feature.update"].resource_name == "AI Chatbot"
    assert rows["budget.delete"].resource_name == "Gone budget"

    page = admin_client.get("/audit").get_data(as_text=True)
    assert f'<a href="/features/{feature.id}">AI Chatbot</a>' in page
    assert 'Gone budget <small class="muted">(deleted)</small>' in page
    assert f"/budgets/{budget.id}" not in page
    assert "None" not in page.split("<tbody>")[1]
    assert "<span>description</span>" in page and "<span>status</span>" in page
    update = page.split("<summary><code>feature.update</code></summary>")[1].split("</details>")[0]
    assert "<span>status</span>" in update and "<span>name</span>" not in update  # only changes
    assert '<span class="old">null</span>' in update  # the old description was None


def test_a_page_past_the_last_shows_the_last(admin_client, events):
    response = admin_client.get("/audit?page=999")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "There is no page 999: showing page 1, the last." in page
    assert "page 1 of 1" in page and "user.create" in page


def test_the_overview_lists_admin_changes_not_sign_in_noise(admin_client, admin_user, db):
    from webapp.services.catalog.features import create_feature
    from webapp.services.core.actor import Actor

    create_feature(Actor(admin_user.id), {"name": "chatbot", "display_name": "AI Chatbot"})
    for _ in range(12):
        db.session.add(
            AuditLog(user_id=admin_user.id, action="auth.forbidden", resource_type="request")
        )
        db.session.add(AuditLog(action="auth.login_failed", resource_type="session"))
    db.session.commit()
    page = admin_client.get("/").get_data(as_text=True)
    activity = page.split("Recent activity")[1].split("Full audit log")[0]
    assert "feature.create" in activity and "AI Chatbot</a>" in activity
    assert "auth." not in activity
    assert "auth.forbidden" in admin_client.get("/audit").get_data(as_text=True)  # kept there
