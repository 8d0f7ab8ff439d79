"""The migrations build exactly the models' schema, and take it down again, on both
databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

EXPECTED_TABLES = {
    "ai_features",
    "ai_providers",
    "ai_models",
    "feature_model_assignments",
    "ai_prompts",
    "ai_usage_logs",
    "ai_spending_budgets",
    "ai_experiments",
    "experiment_results",
    "provider_health_logs",
    "platform_audit_logs",
    "users",
}


def table_names(db) -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


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
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_a_model_change_without_migration_would_be_detected(db):
    import sqlalchemy as sa

    extra = sa.MetaData()
    for table in db.metadata.sorted_tables:
        table.to_metadata(extra)
    extra.tables["ai_features"].append_column(sa.Column("owner", sa.String(50)))
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
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
