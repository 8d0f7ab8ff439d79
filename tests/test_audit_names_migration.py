"""Migration 0012_forms: audit rows written before it get their resource's name — from
the resource while it exists, else from the row's own values — without lifting the
append-only rule for anything else."""

from __future__ import annotations

import json
import uuid

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from tests import factories
from webapp.models import AuditLog


def test_old_audit_rows_are_named_by_the_upgrade(app, db):
    chatbot = factories.feature("chatbot", display_name="AI Chatbot")
    db.session.commit()
    feature_id = chatbot.id
    db.session.remove()
    downgrade(revision="0012_scale")  # the revision before this one
    postgres = db.engine.dialect.name == "postgresql"
    gone, plain = uuid.uuid4(), uuid.uuid4()
    rows = [
        (feature_id, "feature", "feature.update", {"status": "active"}, {}),
        (gone, "budget", "budget.delete", {"name": "Old budget", "budget_amount": "5"}, {}),
        (plain, "prompt", "prompt.delete", {"name": "greeting", "version": 3}, {}),
        (None, "session", "auth.login_failed", {}, {"email": "x@example.com"}),
    ]
    try:
        with db.engine.begin() as connection:
            if postgres:  # row-level security: as an operator
                connection.execute(
                    text("SELECT set_config('app.user_role', 'platform_admin', true)")
                )
            cast = "CAST({} AS jsonb)" if postgres else "{}"
            for resource_id, kind, action, old, new in rows:
                connection.execute(
                    text(
                        "INSERT INTO platform_audit_logs (id, action, resource_type, "
                        f"resource_id, old_values, new_values) VALUES (:id, :action, :kind, "
                        f":rid, {cast.format(':old')}, {cast.format(':new')})"
                    ),
                    {
                        "id": uuid.uuid4() if postgres else uuid.uuid4().hex,
                        "action": action,
                        "kind": kind,
                        "rid": (resource_id if postgres else resource_id.hex)
                        if resource_id
                        else None,
                        "old": json.dumps(old),
                        "new": json.dumps(new),
                    },
                )
    finally:
        upgrade()
    names = dict(db.session.execute(select(AuditLog.action, AuditLog.resource_name)).all())
    assert names == {
        "feature.update": "AI Chatbot",  # the resource's current name
        "budget.delete": "Old budget",  # from the delete's snapshot
        "prompt.delete": "greeting v3",
        "auth.login_failed": None,
    }
    # Append-only again after the backfill.
    if postgres:
        with db.engine.connect() as connection:
            enabled = connection.scalar(
                text(
                    "SELECT tgenabled FROM pg_trigger "
                    "WHERE tgname = 'platform_audit_logs_append_only'"
                )
            )
            forced = connection.scalar(
                text(
                    "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'platform_audit_logs'"
                )
            )
        assert (enabled, forced) == ("O", True)
    else:
        with pytest.raises(DBAPIError), db.engine.begin() as connection:
            connection.execute(text("UPDATE platform_audit_logs SET resource_name = 'x'"))
