"""The migrations build exactly the models' schema, and take it down again, on both
databases."""

from __future__ import annotations

import re

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from tests.conftest import SEED_TABLES
from webapp.services.usage.partitions import is_partition_name

EXPECTED_TABLES = {
    *SEED_TABLES,
    "users",
    "ai_usage_daily_rollup",
    "ai_usage_hourly_rollup",
    "ai_usage_hourly_outcomes",
    "ai_usage_rollup_revisions",
    "user_sessions",
    "user_recovery_codes",
    "audit_event_windows",
    "api_keys",
    "usage_event_ids",
    "api_key_ingestion",
    "prompt_activations",
    "config_revision",
    "budget_reservations",
    "budget_holds",
    "prompt_runs",
    "budget_amount_changes",
}


def table_names(db) -> set[str]:
    names = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    return {name for name in names if not is_partition_name(name)}


def test_upgrade_downgrade_upgrade_round_trip(app, db):
    assert table_names(db) == EXPECTED_TABLES
    downgrade(revision="base")
    assert table_names(db) == set()
    upgrade()
    assert table_names(db) == EXPECTED_TABLES


def test_models_and_migrations_agree(app, db):
    # `flask db check` exits non-zero when autogenerate finds any difference.
    result = app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    # The same comparison through Alembic's API, so a failure lists the differences.
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _not_a_partition}
        )
        assert compare_metadata(context, db.metadata) == []


def _not_a_partition(name, kind, _parent) -> bool:
    return not (kind == "table" and is_partition_name(name))


def test_a_model_change_without_migration_would_be_detected(db):
    import sqlalchemy as sa

    extra = sa.MetaData()
    for table in db.metadata.sorted_tables:
        table.to_metadata(extra)
    extra.tables["ai_features"].append_column(sa.Column("owner", sa.String(50)))
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _not_a_partition}
        )
        diffs = compare_metadata(context, extra)
    assert [diff[0] for diff in diffs] == ["add_column"]


def test_partial_unique_indexes_exist(db):
    indexes = {ix["name"] for ix in inspect(db.engine).get_indexes("feature_model_assignments")}
    assert "uq_feature_model_assignments_one_active" in indexes
    prompt_indexes = {ix["name"] for ix in inspect(db.engine).get_indexes("ai_prompts")}
    assert {
        "uq_ai_prompts_feature_name_version",
        "uq_ai_prompts_global_name_version",
        "uq_ai_prompts_feature_name_active",
        "uq_ai_prompts_global_name_active",
    } <= prompt_indexes


# --- The migrated schema is the models' schema, constraint by constraint ---------------
# Alembic's comparison (above) does not look at CHECK constraints, partial-index WHERE
# clauses or server defaults, so the schema built by the migrations is also compared with
# one built by metadata.create_all(), item by item.


def _postgresql_schema(connection, schema: str) -> dict[str, set]:
    def rows(sql: str) -> set:
        result = connection.execute(text(sql), {"schema": schema}).all()
        return {tuple(str(v).replace(f"{schema}.", "") for v in row) for row in result}

    return {
        "columns": rows(
            "SELECT table_name, column_name, data_type, is_nullable, "
            "coalesce(numeric_precision, 0), coalesce(numeric_scale, 0), "
            "coalesce(character_maximum_length, 0), coalesce(column_default, '') "
            "FROM information_schema.columns WHERE table_schema = :schema "
            "AND table_name <> 'alembic_version' AND table_name NOT IN "
            "(SELECT relname FROM pg_class WHERE relispartition)"
        ),
        "constraints": rows(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = :schema AND conrelid::regclass::text NOT LIKE '%alembic_version' "
            "AND NOT EXISTS (SELECT 1 FROM pg_class r WHERE r.oid = c.conrelid "
            "AND r.relispartition)"
        ),
        "indexes": rows(
            "SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = :schema AND tablename <> 'alembic_version' AND tablename NOT IN "
            "(SELECT relname FROM pg_class WHERE relispartition)"
        ),
    }


def _sqlite_schema(connection) -> dict[str, set]:
    tables = [
        name
        for (name,) in connection.execute(
            text(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'alembic_version'"
            )
        )
    ]
    columns, constraints = set(), set()
    for table in tables:
        for _, name, kind, notnull, default, pk in connection.execute(
            text(f"PRAGMA table_info({table})")
        ):
            columns.add((table, name, kind, notnull, str(default), pk))
        sql = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table}
        ).scalar()
        for clause in re.findall(r"CONSTRAINT (\w+) ([^\n]*?),?\s*$", sql, re.MULTILINE):
            constraints.add((table, clause[0], " ".join(clause[1].split())))
    indexes = {
        (table, name, " ".join((sql or "").split()))
        for name, table, sql in connection.execute(
            text(
                "SELECT name, tbl_name, sql FROM sqlite_master "
                "WHERE type = 'index' AND tbl_name <> 'alembic_version'"
            )
        )
    }
    return {"columns": columns, "constraints": constraints, "indexes": indexes}


def test_migrated_schema_matches_create_all_item_by_item(db, dialect, tmp_path):
    if dialect == "postgresql":
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS ddl_check CASCADE"))
            connection.execute(text("CREATE SCHEMA ddl_check"))
            db.metadata.create_all(
                connection.execution_options(schema_translate_map={None: "ddl_check"})
            )
            migrated = _postgresql_schema(connection, "public")
            created = _postgresql_schema(connection, "ddl_check")
            connection.execute(text("DROP SCHEMA ddl_check CASCADE"))
    else:
        fresh = create_engine(f"sqlite:///{tmp_path / 'create_all.sqlite3'}")
        db.metadata.create_all(fresh)
        with db.engine.connect() as connection:
            migrated = _sqlite_schema(connection)
        with fresh.connect() as connection:
            created = _sqlite_schema(connection)
        fresh.dispose()
    for kind in ("columns", "constraints", "indexes"):
        assert migrated[kind] - created[kind] == set(), f"{kind} only in the migrations"
        assert created[kind] - migrated[kind] == set(), f"{kind} only in the models"
    assert len(migrated["constraints"]) > 50 and len(migrated["indexes"]) > 20
