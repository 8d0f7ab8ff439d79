"""`flask usage purge`: raw rows before a day go (whole months as partitions on
PostgreSQL, the rest in batches), bodies older than their horizon are emptied, the
rollups — so spending and budget figures — stay exactly what they were, and the purge is
audited with its counts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.usage_rows import insert_usage
from webapp.migrations_engine import migrations_engine
from webapp.models import (
    AuditLog,
    UsageDailyRollup,
    UsageHourlyOutcomes,
    UsageHourlyRollup,
    UsageLog,
)
from webapp.services.core.actor import Actor
from webapp.services.core.errors import ValidationFailed
from webapp.services.spending.budgets import daily_spend
from webapp.services.usage import partitions
from webapp.services.usage.retention import purge_usage

OLD_DAYS = [date(2025, 1, 10), date(2025, 2, 3), date(2025, 2, 27), date(2025, 3, 14)]


@pytest.fixture
def owner(db):
    """The schema owner's engine (partition DDL), as the commands use it."""
    engine = migrations_engine()
    yield engine
    if engine is not db.engine:
        engine.dispose()


@pytest.fixture
def usage(db, owner):
    feature = factories.feature("chatbot")
    model = factories.model(factories.provider("openai"), "gpt-4")
    db.session.commit()
    rows = []
    for index, day in enumerate(OLD_DAYS):
        for hour in (1, 13):
            rows.append(
                {
                    "feature_id": feature.id,
                    "model_id": model.id,
                    "created_at": datetime.combine(day, datetime.min.time(), UTC)
                    + timedelta(hours=hour),
                    "cost_usd": Decimal("0.000100") * (index + 1),
                    "input_tokens": 10,
                    "output_tokens": 5,
                }
            )
    recent = datetime.now(UTC) - timedelta(days=2)
    rows.append({"feature_id": feature.id, "model_id": model.id, "created_at": recent})
    inserted = insert_usage(rows)
    with owner.begin() as connection:
        # The months of the old rows get partitions, as `flask usage partitions` made them.
        partitions.create_partitions(connection, date(2025, 1, 1), date(2025, 3, 1))
    return inserted


def rollup_snapshot(db) -> list[tuple]:
    """Every row of both rollups and of the hourly outcomes (the purge must leave each
    alone)."""
    return [
        sorted(tuple(row) for row in db.session.execute(select(*table.__table__.columns)))
        for table in (UsageDailyRollup, UsageHourlyRollup, UsageHourlyOutcomes)
    ]


def raw_days(db) -> list[date]:
    stamps = db.session.scalars(select(UsageLog.created_at)).all()
    return sorted({stamp.date() for stamp in stamps})


def test_purge_removes_old_rows_and_keeps_every_figure(app, db, usage, dialect):
    rollup = rollup_snapshot(db)
    # Both rollups and the outcomes hold the figures of the rows about to be purged.
    assert all(rollup)
    spend = daily_spend(date(2025, 1, 1), date(2025, 3, 31))
    assert sum(spend.values()) == Decimal("0.002000")
    db.session.commit()

    result = app.test_cli_runner().invoke(args=["usage", "purge", "--before", "2025-02-27"])
    assert result.exit_code == 0, result.output

    db.session.remove()
    assert raw_days(db)[:2] == [date(2025, 2, 27), date(2025, 3, 14)]
    assert len(raw_days(db)) == 3
    assert rollup_snapshot(db) == rollup
    assert daily_spend(date(2025, 1, 1), date(2025, 3, 31)) == spend
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "usage.purge")).one()
    counts = audit.new_values
    assert counts["before"] == "2025-02-27"
    assert counts["rows_dropped"] + counts["rows_deleted"] == 4
    if dialect == "postgresql":
        # January went whole (its partition dropped), February's first days in a batch.
        assert counts["dropped_partitions"] == ["ai_usage_logs_2025_01"]
        assert counts["rows_dropped"] == 2 and counts["rows_deleted"] == 2
        with db.engine.connect() as connection:
            names = [p.name for p in partitions.list_partitions(connection)]
        assert "ai_usage_logs_2025_01" not in names and "ai_usage_logs_2025_02" in names
    else:
        assert counts["dropped_partitions"] == [] and counts["rows_deleted"] == 4
    assert "2 row(s) in 1 dropped partition(s)" in result.output or dialect == "sqlite"


def test_batches_delete_everything_before_the_day(db, usage, owner):
    report = purge_usage(owner, Actor.cli(), date(2025, 3, 1), None, date.today(), 30, batch=1)
    assert report.rows_dropped + report.rows_deleted == 6
    db.session.remove()
    assert raw_days(db)[0] == date(2025, 3, 14)


def test_a_day_inside_the_acceptance_window_is_refused(db, usage, owner):
    today = datetime.now(UTC).date()
    with pytest.raises(ValidationFailed) as error:
        purge_usage(owner, Actor.cli(), today - timedelta(days=29), None, today, 30)
    assert "before" in error.value.errors
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(UsageLog)) == 9


def test_bodies_older_than_their_horizon_are_emptied(app, db, usage, monkeypatch):
    db.session.execute(
        UsageLog.__table__.update().values(
            request_data={"prompt": "hello"}, response_data={"text": "hi"}
        )
    )
    db.session.commit()
    monkeypatch.setitem(app.config, "USAGE_CONTENT_RETENTION_DAYS", 7)
    result = app.test_cli_runner().invoke(args=["usage", "purge"])
    assert result.exit_code == 0, result.output
    assert "8 emptied" in result.output
    db.session.remove()
    bodies = db.session.execute(
        select(UsageLog.created_at, UsageLog.request_data, UsageLog.response_data)
    ).all()
    for created_at, request_data, response_data in bodies:
        old = created_at < datetime.now(UTC) - timedelta(days=7)
        assert (request_data, response_data) == (
            ({}, {}) if old else ({"prompt": "hello"}, {"text": "hi"})
        )
    assert db.session.scalar(select(func.count()).select_from(UsageLog)) == 9


def test_nothing_to_do_without_settings_and_rebuild_refuses_purged_days(app, db, usage):
    runner = app.test_cli_runner()
    assert "Nothing to purge" in runner.invoke(args=["usage", "purge"]).output
    assert runner.invoke(args=["usage", "purge", "--before", "2025-02-01"]).exit_code == 0
    refused = runner.invoke(args=["rollup", "rebuild"])
    assert refused.exit_code != 0 and "--from 2025-02-01" in refused.output
    assert runner.invoke(args=["rollup", "rebuild", "--from", "2025-02-01"]).exit_code == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("USAGE_RAW_RETENTION_DAYS", "10", "at least 30 (USAGE_MAX_AGE_DAYS"),
        ("USAGE_RAW_RETENTION_DAYS", "a year", "whole number of days"),
        ("USAGE_CONTENT_RETENTION_DAYS", "0", "at least 1"),
    ],
)
def test_retention_settings_are_checked_at_startup(monkeypatch, name, value, message):
    from webapp import create_app
    from webapp.config import ConfigError

    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(f"{name}={value!r}")) as error:
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "k" * 64})
    assert message in str(error.value)


def test_retention_settings_default_to_keeping_everything(monkeypatch):
    from webapp import create_app

    monkeypatch.delenv("USAGE_RAW_RETENTION_DAYS", raising=False)
    monkeypatch.setenv("USAGE_CONTENT_RETENTION_DAYS", "14")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "k" * 64})
    assert app.config["USAGE_RAW_RETENTION_DAYS"] is None
    assert app.config["USAGE_CONTENT_RETENTION_DAYS"] == 14


def test_the_next_run_reads_bodies_from_the_last_horizon_on(db, usage, owner):
    db.session.execute(UsageLog.__table__.update().values(request_data={"prompt": "x"}))
    db.session.commit()
    today = datetime.now(UTC).date()
    first = purge_usage(owner, Actor.cli(), None, date(2025, 2, 1), today, 30)
    assert first.bodies_cleared == 2  # January's two rows
    # A late row of January with a body: more than USAGE_MAX_AGE_DAYS before the last
    # horizon, so the next run does not look that far back; February's rows it does.
    insert_usage([{"created_at": datetime(2025, 1, 1, 12, tzinfo=UTC), "request_data": {"a": 1}}])
    second = purge_usage(owner, Actor.cli(), None, date(2025, 3, 1), today, 30)
    assert second.bodies_cleared == 4
    third = purge_usage(owner, Actor.cli(), None, date(2025, 3, 1), today, 400)
    assert third.bodies_cleared == 1  # a longer acceptance window reaches the late row
