"""Migration 0008 keeps what was recorded before it: the rollup rebuilt with the new key
equals the raw rows, old rows are production, and rows without a model are "reported"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, text

from tests import factories
from webapp.models import UsageDailyRollup, UsageLog


def test_usage_recorded_before_0008_is_kept_and_rolled_up(app, db):
    gpt = factories.model(factories.provider("openai"), "gpt-4")
    model_id = gpt.id
    db.session.commit()
    db.session.remove()
    downgrade(revision="0007")
    sqlite = db.engine.dialect.name == "sqlite"
    try:
        with db.engine.begin() as connection:
            if not sqlite:  # row-level security: as an operator
                connection.execute(
                    text("SELECT set_config('app.user_role', 'platform_admin', true)")
                )
            for index, with_model in enumerate((True, True, False)):
                connection.execute(
                    text(
                        "INSERT INTO ai_usage_logs (id, model_id, input_tokens, output_tokens, "
                        "tokens_used, response_time_ms, cost_usd, status, created_at) "
                        "VALUES (:id, :model, 10, 5, 15, 120, :cost, 'success', :at)"
                    ),
                    {
                        "id": uuid.uuid4().hex if sqlite else uuid.uuid4(),
                        "model": (model_id.hex if sqlite else model_id) if with_model else None,
                        # SQLite keeps exact money as micro-units (ExactNumeric).
                        "cost": 1_000 if sqlite else "0.001000",
                        "at": datetime(2026, 11, 20, 10, index, tzinfo=UTC),
                    },
                )
    finally:
        upgrade()
    rows = db.session.execute(select(UsageLog.environment, UsageLog.cost_source)).all()
    assert sorted(rows) == [
        ("production", "catalog"),
        ("production", "catalog"),
        ("production", "reported"),
    ]
    requests, environment = db.session.execute(
        select(func.sum(UsageDailyRollup.request_count), func.min(UsageDailyRollup.environment))
    ).one()
    assert (requests, environment) == (3, "production")
