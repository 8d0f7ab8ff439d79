"""Initial schema: the seed's 11 tables plus users, made correct.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Reviewed by hand. Types are spelled out here (not imported from webapp.models) so this
revision keeps meaning what it meant when the models change later:
- timestamps are TIMESTAMPTZ on PostgreSQL (UTC text on SQLite);
- exact decimals are NUMERIC(p, s) on PostgreSQL and scaled integers on SQLite, matching
  webapp.models.types.ExactNumeric;
- JSON is JSONB on PostgreSQL.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def exact_numeric(precision, scale):
    return sa.Numeric(precision, scale).with_variant(sa.BigInteger(), "sqlite")


def decimal_range_check(name, template, **bounds):
    """A CHECK on exact-numeric columns: bounds as written on PostgreSQL, in micro-units
    (x 10**6) on SQLite, where those columns hold integers of micro-units."""
    plain = template.format(**bounds)
    scaled = template.format(**{key: value * 10**6 for key, value in bounds.items()})
    return (
        sa.CheckConstraint(plain, name=op.f(name)).ddl_if(dialect="postgresql"),
        sa.CheckConstraint(scaled, name=op.f(name)).ddl_if(dialect="sqlite"),
    )


def upgrade():
    op.create_table(
        "ai_features",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="active", nullable=False),
        sa.Column("config", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('active', 'inactive', 'maintenance')", name=op.f("ck_ai_features_status")
        ),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_ai_features_name_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_features")),
        sa.UniqueConstraint("name", name=op.f("uq_ai_features_name")),
    )
    op.create_table(
        "ai_providers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("provider_type", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="active", nullable=False),
        sa.Column("config", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("api_endpoint", sa.Text(), nullable=True),
        sa.Column("health_check", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('active', 'inactive', 'error')", name=op.f("ck_ai_providers_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_providers")),
        sa.UniqueConstraint("name", name=op.f("uq_ai_providers_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=20), server_default="viewer", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("role IN ('platform_admin', 'viewer')", name=op.f("ck_users_role")),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lowercase")),
        sa.CheckConstraint("length(email) >= 3", name=op.f("ck_users_email_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "ai_experiments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("feature_id", sa.Uuid(), nullable=False),
        sa.Column("experiment_type", sa.String(length=50), nullable=False),
        sa.Column("config", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("variants", JSON_TYPE, server_default=sa.text("'[]'"), nullable=False),
        sa.Column("traffic_allocation", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="draft", nullable=False),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("results", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("statistical_significance", exact_numeric(5, 4), nullable=True),
        sa.Column("winner_variant", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "experiment_type IN ('model_comparison', 'prompt_testing', 'parameter_tuning', 'a_b_test')",
            name=op.f("ck_ai_experiments_type"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'running', 'paused', 'completed', 'cancelled')",
            name=op.f("ck_ai_experiments_status"),
        ),
        sa.CheckConstraint(
            "start_date IS NULL OR end_date IS NULL OR end_date >= start_date",
            name=op.f("ck_ai_experiments_dates_ordered"),
        ),
        *decimal_range_check(
            "ck_ai_experiments_p_value_range",
            "statistical_significance IS NULL OR (statistical_significance >= 0 AND statistical_significance <= {one})",
            one=1,
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_ai_experiments_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["ai_features.id"],
            name=op.f("fk_ai_experiments_feature_id_ai_features"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_experiments")),
    )
    with op.batch_alter_table("ai_experiments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ai_experiments_created_by"), ["created_by"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ai_experiments_feature_id"), ["feature_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ai_experiments_status"), ["status"], unique=False)

    op.create_table(
        "ai_models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("model_type", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=True),
        sa.Column("config", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("performance_metrics", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column(
            "input_price_per_million", exact_numeric(12, 6), server_default="0", nullable=False
        ),
        sa.Column(
            "output_price_per_million", exact_numeric(12, 6), server_default="0", nullable=False
        ),
        sa.Column("price_per_request", exact_numeric(12, 6), nullable=True),
        sa.Column("price_per_image", exact_numeric(12, 6), nullable=True),
        sa.Column("capabilities", JSON_TYPE, server_default=sa.text("'[]'"), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="available", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('available', 'deprecated', 'beta', 'offline')",
            name=op.f("ck_ai_models_status"),
        ),
        sa.CheckConstraint(
            "input_price_per_million >= 0", name=op.f("ck_ai_models_input_price_non_negative")
        ),
        sa.CheckConstraint(
            "output_price_per_million >= 0", name=op.f("ck_ai_models_output_price_non_negative")
        ),
        sa.CheckConstraint(
            "price_per_image IS NULL OR price_per_image >= 0",
            name=op.f("ck_ai_models_image_price_non_negative"),
        ),
        sa.CheckConstraint(
            "price_per_request IS NULL OR price_per_request >= 0",
            name=op.f("ck_ai_models_request_price_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["ai_providers.id"],
            name=op.f("fk_ai_models_provider_id_ai_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_models")),
    )
    with op.batch_alter_table("ai_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ai_models_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(
            "uq_ai_models_provider_name_unversioned",
            ["provider_id", "name"],
            unique=True,
            postgresql_where=sa.text("version IS NULL"),
            sqlite_where=sa.text("version IS NULL"),
        )
        batch_op.create_index(
            "uq_ai_models_provider_name_version",
            ["provider_id", "name", "version"],
            unique=True,
            postgresql_where=sa.text("version IS NOT NULL"),
            sqlite_where=sa.text("version IS NOT NULL"),
        )

    op.create_table(
        "ai_prompts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("feature_id", sa.Uuid(), nullable=True),
        sa.Column("tags", JSON_TYPE, server_default=sa.text("'[]'"), nullable=False),
        sa.Column("variables", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_ai_prompts_name_not_empty")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_ai_prompts_version_positive")),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_ai_prompts_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["ai_features.id"],
            name=op.f("fk_ai_prompts_feature_id_ai_features"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_prompts")),
    )
    with op.batch_alter_table("ai_prompts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ai_prompts_created_by"), ["created_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_ai_prompts_feature_id"), ["feature_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ai_prompts_is_active"), ["is_active"], unique=False)
        batch_op.create_index(
            "uq_ai_prompts_feature_name_active",
            ["feature_id", "name"],
            unique=True,
            postgresql_where=sa.text("is_active AND feature_id IS NOT NULL"),
            sqlite_where=sa.text("is_active AND feature_id IS NOT NULL"),
        )
        batch_op.create_index(
            "uq_ai_prompts_feature_name_version",
            ["feature_id", "name", "version"],
            unique=True,
            postgresql_where=sa.text("feature_id IS NOT NULL"),
            sqlite_where=sa.text("feature_id IS NOT NULL"),
        )
        batch_op.create_index(
            "uq_ai_prompts_global_name_active",
            ["name"],
            unique=True,
            postgresql_where=sa.text("is_active AND feature_id IS NULL"),
            sqlite_where=sa.text("is_active AND feature_id IS NULL"),
        )
        batch_op.create_index(
            "uq_ai_prompts_global_name_version",
            ["name", "version"],
            unique=True,
            postgresql_where=sa.text("feature_id IS NULL"),
            sqlite_where=sa.text("feature_id IS NULL"),
        )

    op.create_table(
        "ai_spending_budgets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("feature_id", sa.Uuid(), nullable=True),
        sa.Column("period_type", sa.String(length=20), nullable=False),
        sa.Column("budget_amount", exact_numeric(10, 2), nullable=False),
        sa.Column("alert_threshold", exact_numeric(3, 2), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "period_type IN ('daily', 'weekly', 'monthly', 'quarterly', 'yearly')",
            name=op.f("ck_ai_spending_budgets_period_type"),
        ),
        *decimal_range_check(
            "ck_ai_spending_budgets_alert_threshold_range",
            "alert_threshold > 0 AND alert_threshold <= {one}",
            one=1,
        ),
        sa.CheckConstraint(
            "budget_amount > 0", name=op.f("ck_ai_spending_budgets_amount_positive")
        ),
        sa.CheckConstraint(
            "end_date >= start_date", name=op.f("ck_ai_spending_budgets_dates_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["ai_features.id"],
            name=op.f("fk_ai_spending_budgets_feature_id_ai_features"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_spending_budgets")),
    )
    with op.batch_alter_table("ai_spending_budgets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ai_spending_budgets_feature_id"), ["feature_id"], unique=False
        )

    op.create_table(
        "platform_audit_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("resource_type", sa.String(length=50), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=True),
        sa.Column("old_values", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("new_values", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column(
            "ip_address",
            sa.String(length=45).with_variant(postgresql.INET(), "postgresql"),
            nullable=True,
        ),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_platform_audit_logs_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_audit_logs")),
    )
    with op.batch_alter_table("platform_audit_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_platform_audit_logs_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_platform_audit_logs_resource_type"), ["resource_type"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_platform_audit_logs_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "provider_health_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("response_time_ms", sa.Integer(), nullable=True),
        sa.Column("error_rate", exact_numeric(5, 2), nullable=True),
        sa.Column("throughput", sa.Integer(), nullable=True),
        sa.Column("health_score", sa.Integer(), nullable=True),
        sa.Column("details", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column(
            "checked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('healthy', 'degraded', 'down')", name=op.f("ck_provider_health_logs_status")
        ),
        *decimal_range_check(
            "ck_provider_health_logs_error_rate_percent",
            "error_rate IS NULL OR (error_rate >= 0 AND error_rate <= {hundred})",
            hundred=100,
        ),
        sa.CheckConstraint(
            "health_score BETWEEN 0 AND 100",
            name=op.f("ck_provider_health_logs_health_score_range"),
        ),
        sa.CheckConstraint(
            "response_time_ms >= 0", name=op.f("ck_provider_health_logs_response_time_non_negative")
        ),
        sa.CheckConstraint(
            "throughput >= 0", name=op.f("ck_provider_health_logs_throughput_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["ai_providers.id"],
            name=op.f("fk_provider_health_logs_provider_id_ai_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_health_logs")),
    )
    with op.batch_alter_table("provider_health_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provider_health_logs_checked_at"), ["checked_at"], unique=False
        )
        batch_op.create_index(
            "ix_provider_health_logs_provider_checked", ["provider_id", "checked_at"], unique=False
        )

    op.create_table(
        "ai_usage_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("feature_id", sa.Uuid(), nullable=True),
        sa.Column("model_id", sa.Uuid(), nullable=True),
        sa.Column("prompt_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("request_data", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("response_data", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("input_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("tokens_used", sa.Integer(), server_default="0", nullable=False),
        sa.Column("response_time_ms", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cost_usd", exact_numeric(10, 6), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'success', 'error', 'timeout')",
            name=op.f("ck_ai_usage_logs_status"),
        ),
        sa.CheckConstraint("cost_usd >= 0", name=op.f("ck_ai_usage_logs_cost_non_negative")),
        sa.CheckConstraint(
            "input_tokens >= 0 AND output_tokens >= 0 AND tokens_used >= 0",
            name=op.f("ck_ai_usage_logs_tokens_non_negative"),
        ),
        sa.CheckConstraint(
            "response_time_ms >= 0", name=op.f("ck_ai_usage_logs_response_time_non_negative")
        ),
        sa.CheckConstraint(
            "tokens_used = input_tokens + output_tokens OR (input_tokens = 0 AND output_tokens = 0)",
            name=op.f("ck_ai_usage_logs_tokens_total"),
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["ai_features.id"],
            name=op.f("fk_ai_usage_logs_feature_id_ai_features"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["ai_models.id"],
            name=op.f("fk_ai_usage_logs_model_id_ai_models"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["ai_prompts.id"],
            name=op.f("fk_ai_usage_logs_prompt_id_ai_prompts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_usage_logs")),
    )
    with op.batch_alter_table("ai_usage_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ai_usage_logs_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ai_usage_logs_feature_id"), ["feature_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ai_usage_logs_model_id"), ["model_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ai_usage_logs_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ai_usage_logs_status"), ["status"], unique=False)

    op.create_table(
        "experiment_results",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("experiment_id", sa.Uuid(), nullable=False),
        sa.Column("variant_id", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("metric_name", sa.String(length=100), nullable=False),
        sa.Column("metric_value", exact_numeric(12, 4), nullable=False),
        sa.Column("metadata", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["ai_experiments.id"],
            name=op.f("fk_experiment_results_experiment_id_ai_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_results")),
    )
    with op.batch_alter_table("experiment_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_experiment_results_experiment_id"), ["experiment_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_experiment_results_recorded_at"), ["recorded_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_experiment_results_variant_id"), ["variant_id"], unique=False
        )

    op.create_table(
        "feature_model_assignments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("feature_id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("environment", sa.String(length=20), server_default="production", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("config_overrides", JSON_TYPE, server_default=sa.text("'{}'"), nullable=False),
        sa.Column(
            "assigned_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("assigned_by", sa.Uuid(), nullable=True),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "environment IN ('development', 'staging', 'production')",
            name=op.f("ck_feature_model_assignments_environment"),
        ),
        sa.CheckConstraint(
            "NOT is_active OR deactivated_at IS NULL",
            name=op.f("ck_feature_model_assignments_active_not_deactivated"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_by"],
            ["users.id"],
            name=op.f("fk_feature_model_assignments_assigned_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["ai_features.id"],
            name=op.f("fk_feature_model_assignments_feature_id_ai_features"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["ai_models.id"],
            name=op.f("fk_feature_model_assignments_model_id_ai_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_model_assignments")),
    )
    with op.batch_alter_table("feature_model_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feature_model_assignments_feature_id"), ["feature_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_feature_model_assignments_is_active"), ["is_active"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_feature_model_assignments_model_id"), ["model_id"], unique=False
        )
        batch_op.create_index(
            "uq_feature_model_assignments_one_active",
            ["feature_id", "environment"],
            unique=True,
            postgresql_where=sa.text("is_active"),
            sqlite_where=sa.text("is_active"),
        )


def downgrade():
    # Dropping a table drops its indexes and constraints; children before parents.
    for table in (
        "feature_model_assignments",
        "experiment_results",
        "ai_usage_logs",
        "provider_health_logs",
        "platform_audit_logs",
        "ai_spending_budgets",
        "ai_prompts",
        "ai_models",
        "ai_experiments",
        "users",
        "ai_providers",
        "ai_features",
    ):
        op.drop_table(table)
