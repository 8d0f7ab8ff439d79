"""Wrong input answers 400 (never 500), secrets stay out of logs and charts, and viewers
see less of the audit trail than admins."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from tests import factories
from tests.conftest import csrf_token
from webapp.models import AuditLog


@pytest.mark.parametrize(
    "method, url, kwargs",
    [
        ("GET", "/audit?action=%00x", {}),
        ("POST", "/login", {"data": {"email": "x\x00@example.com", "password": "whatever it is"}}),
        ("PUT", "/api/platform/ai-management/features/bulk", {"json": {"items": [{"id": "\x00"}]}}),
    ],
)
def test_nul_characters_are_refused_with_400(admin_client, method, url, kwargs):
    if "data" in kwargs:
        kwargs["data"]["csrf_token"] = csrf_token(admin_client, "/")
    if "json" in kwargs:
        kwargs["headers"] = {"X-CSRFToken": csrf_token(admin_client, "/")}
    assert admin_client.open(url, method=method, **kwargs).status_code == 400


@pytest.mark.parametrize(
    "query, field",
    [
        ({"page": "99999999999999999999"}, "page"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "0001-01-01"}, "from"),
    ],
)
def test_audit_filters_out_of_range_are_400(viewer_client, query, field):
    response = viewer_client.get("/audit", query_string=query)
    # The parameter named in words ("From must be …"), with what was asked for.
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and f"{field.title()} " in html
    assert f"<code>{field}={query[field]}</code>" in html


def test_audit_links_carry_only_known_filters(viewer_client, db, admin_user):
    from datetime import UTC, datetime, timedelta

    db.session.add_all(
        AuditLog(
            action="x.y",
            resource_type="t",
            created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i),
        )
        for i in range(60)
    )
    db.session.commit()
    html = viewer_client.get(
        "/audit", query_string={"resource_type": "t", "_method": "POST", "_external": "1"}
    ).get_data(as_text=True)
    assert (
        "page=2" in html
        and "_method" not in html
        and "_external" not in html
        and "http://" not in html
    )


def test_viewers_do_not_see_client_addresses_or_attempted_emails(
    client, viewer_user, admin_user, db
):
    from tests.conftest import sign_in

    sign_in(client, "someone-else@example.com", "not the password")
    sign_in(client, viewer_user.email)
    page = client.get("/audit").get_data(as_text=True)
    assert "someone-else@example.com" not in page
    assert "127.0.0.1" not in page and "hidden" in page
    failed = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "auth.login_failed")
    ).one()
    assert failed.resource_id is None  # never tells whether the account exists


def test_admins_see_addresses_and_attempted_emails(client, admin_user, db):
    from tests.conftest import sign_in

    sign_in(client, "someone-else@example.com", "not the password")
    sign_in(client, admin_user.email)
    page = client.get("/audit").get_data(as_text=True)
    assert "someone-else@example.com" in page and "127.0.0.1" in page


def test_feature_names_are_escaped_in_chart_json(db):
    from decimal import Decimal

    from webapp.charts import stacked_spend_chart

    name = '<a href="https://evil.example">Click</a>'
    figure = json.loads(stacked_spend_chart(["2026-11-01"], {name: [Decimal("1")]}))
    assert (
        figure["data"][0]["name"]
        == "&lt;a href=&quot;https://evil.example&quot;&gt;Click&lt;/a&gt;"
    )


def test_sql_errors_never_log_parameter_values(app, db, caplog):
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["hide_parameters"] is True
    from sqlalchemy.exc import IntegrityError

    factories.feature("chatbot")
    db.session.commit()
    with pytest.raises(IntegrityError) as error, caplog.at_level(logging.ERROR):
        factories.feature("chatbot", description="secret-value-123")
    assert "secret-value-123" not in str(error.value)
    db.session.rollback()


def test_long_display_name_is_a_validation_error_not_a_500(admin_client, db):
    response = admin_client.post(
        "/users",
        data={
            "csrf_token": csrf_token(admin_client, "/"),
            "email": "long@example.com",
            "role": "viewer",
            "display_name": "x" * 5000,
        },
    )
    assert response.status_code == 400
