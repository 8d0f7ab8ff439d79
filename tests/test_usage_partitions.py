"""Migration 0012_scale moves ai_usage_logs into monthly partitions without losing a row,
and back; `flask usage partitions` creates months ahead, and rows waiting in the default
partition move into their month's new partition. Partition tests are PostgreSQL's."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, text

from tests.usage_rows import insert_usage
from webapp.models import UsageLog
from webapp.services.usage import partitions


@pytest.fixture
def postgresql(dialect):
    if dialect != "postgresql":
        pytest.skip("SQLite keeps a plain ai_usage_logs table")


def attached(db) -> list[str]:
    with db.engine.connect() as connection:
        return [p.name for p in partitions.list_partitions(connection)]


def test_sqlite_keeps_a_plain_table(db, dialect):
    if dialect != "sqlite":
        pytest.skip("SQLite only")
    insert_usage([{"created_at": datetime(2025, 1, 5, tzinfo=UTC)}])
    with db.engine.connect() as connection:
        assert not partitions.is_partitioned(connection)
        assert partitions.create_partitions(connection, date(2025, 1, 1), date(2025, 3, 1)) == []
    assert db.session.scalar(select(func.count()).select_from(UsageLog)) == 1


def _snapshot(db) -> list[tuple]:
    return sorted(
        db.session.execute(
            select(UsageLog.id, UsageLog.created_at, UsageLog.cost_usd, UsageLog.status)
        ).all()
    )


def test_the_migration_moves_every_row_down_and_up_again(app, db, postgresql):
    now = datetime.now(UTC)
    stamps = [datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)]
    stamps += [now - timedelta(days=d) for d in range(0, 400, 37)]
    insert_usage(
        {"created_at": at, "cost_usd": Decimal("0.000123") * (i + 1)} for i, at in enumerate(stamps)
    )
    rows = _snapshot(db)
    assert len(rows) == len(stamps)
    db.session.commit()
    db.session.remove()

    downgrade(revision="0012_defects")  # the revision before the partitioning one
    try:
        with db.engine.connect() as connection:
            assert not partitions.is_partitioned(connection)
            kind = connection.scalar(
                text("SELECT relkind FROM pg_class WHERE relname = 'ai_usage_logs'")
            )
            assert kind == "r"
        assert _snapshot(db) == rows
        db.session.remove()
    finally:
        upgrade()
    assert _snapshot(db) == rows
    names = attached(db)
    assert "ai_usage_logs_2025_03" in names and "ai_usage_logs_2025_04" in names
    assert names[-1] == partitions.DEFAULT_PARTITION
    ahead = partitions.partition_name(partitions.next_month(partitions.month_of(now.date())))
    assert ahead in names
    # Each row sits in its month's partition (the boundary second included).
    placed = dict(
        db.session.execute(
            text("SELECT id, tableoid::regclass::text FROM ai_usage_logs WHERE created_at < :t"),
            {"t": datetime(2025, 4, 2, tzinfo=UTC)},
        ).all()
    )
    assert sorted(placed.values()) == ["ai_usage_logs_2025_03", "ai_usage_logs_2025_04"]


def test_rows_are_never_refused_and_move_out_of_the_default_partition(app, db, postgresql):
    month = partitions.month_of(datetime.now(UTC).date())
    for _ in range(5):  # beyond the three months the migration made ahead
        month = partitions.next_month(month)
    name = partitions.partition_name(month)
    row = insert_usage([{"created_at": partitions.month_start(month) + timedelta(days=14)}])[0]
    where = "SELECT tableoid::regclass::text FROM ai_usage_logs WHERE id = :id"
    assert db.session.scalar(text(where), {"id": row["id"]}) == partitions.DEFAULT_PARTITION
    db.session.commit()

    through = ["usage", "partitions", "--through", month.isoformat()]
    result = app.test_cli_runner().invoke(args=through)
    assert result.exit_code == 0, result.output
    assert f"Created {name}." in result.output
    assert db.session.scalar(text(where), {"id": row["id"]}) == name
    assert db.session.scalar(select(func.count()).select_from(UsageLog)) == 1
    # Idempotent: a second run creates nothing.
    again = app.test_cli_runner().invoke(args=through)
    assert again.exit_code == 0 and "0 partition(s) created" in again.output
    # The default run covers USAGE_MAX_AGE_DAYS back to three months ahead.
    plain = app.test_cli_runner().invoke(args=["usage", "partitions"])
    assert plain.exit_code == 0 and "0 partition(s) created" in plain.output


def test_partitions_have_the_parents_indexes_and_no_direct_reader(db, postgresql):
    names = attached(db)
    month = names[0]
    indexes = set(
        db.session.scalars(
            text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": month}
        )
    )
    assert any("(id, created_at)" in index and "UNIQUE" in index for index in indexes)
    assert any("(created_at, id)" in index for index in indexes)
    assert len(indexes) == 7  # primary key + six indexes, as on the parent
    secured = db.session.scalar(
        text("SELECT relrowsecurity FROM pg_class WHERE relname = :t"), {"t": month}
    )
    assert secured is True


def test_ids_stay_unique_for_ingestion_through_the_ledger(db, postgresql):
    # The primary key (id, created_at) alone would accept one id twice at two times; the
    # ledger's (environment, event_id) key is what ingestion relies on, and ids are UUIDs.
    ledger_key = db.session.scalar(
        text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'pk_usage_event_ids'"
        )
    )
    assert ledger_key == "PRIMARY KEY (environment, event_id)"
    referencing = db.session.scalar(
        text("SELECT count(*) FROM pg_constraint WHERE confrelid = 'ai_usage_logs'::regclass")
    )
    assert referencing == 0
    assert uuid.UUID(str(insert_usage([{}])[0]["id"]))
