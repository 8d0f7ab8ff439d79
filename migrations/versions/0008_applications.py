"""Applications connect: API keys, reported usage, the idempotency ledger.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

- api_keys: issued to applications; only the SHA-256 of the secret is kept. Names are
  unique among unrevoked keys (partial unique index).
- ai_usage_logs gains what applications report: environment (existing rows:
  production), event_id, api_key_id, the model/provider names as reported, cached and
  reasoning token counts, images, cost_source (existing rows: catalog when they name a
  model, else reported), session_id and metadata.
- ai_models gains optional cache read/write prices.
- usage_event_ids: the idempotency ledger, one row per (environment, event id).
- api_key_ingestion: per key, hour and shard: accepted/completed/duplicate/refused counts.
- ai_usage_daily_rollup gets environment and shard in its key: rebuilt from raw rows.
- PostgreSQL: row-level security for the new tables, and a database role ``application``
  (requests authenticated by an API key): it reads the catalog and the configuration,
  writes usage, the ledger, the rollup and its key's counters, and nothing else.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ROLE = "current_setting('app.user_role', true)"
NIL = "00000000-0000-0000-0000-000000000000"
BOUNDS = (50, 100, 150, 200, 300, 400, 500, 750, 1000, 1500,
          2000, 3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000, 60000)  # fmt: skip
BUCKETS = [f"latency_bucket_{i:02d}" for i in range(21)]
REJECTIONS = (
    "invalid",
    "unknown_feature",
    "feature_not_allowed",
    "too_old",
    "in_future",
    "too_large",
)
# Tables an application's requests read (its key, the catalog, what admins decided).
APPLICATION_READS = (
    "ai_features",
    "ai_providers",
    "ai_models",
    "feature_model_assignments",
    "ai_prompts",
    "ai_spending_budgets",
    "ai_experiments",
)
# Tables an application's requests write.
APPLICATION_WRITES = ("ai_usage_daily_rollup", "usage_event_ids", "api_key_ingestion")


def _exact(precision, scale):
    return sa.Numeric(precision, scale).with_variant(sa.BigInteger(), "sqlite")


def _count(name):
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def _int(name):
    return sa.Column(name, sa.Integer(), server_default="0", nullable=False)


def _as_operator():
    """ai_usage_logs and the rollup have FORCE ROW LEVEL SECURITY: without a role even
    their owner reads (and updates) no row, and the data steps below would do nothing.
    Local to the migration's transaction."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SELECT set_config('app.user_role', 'platform_admin', true)")


def upgrade():
    postgresql = op.get_context().dialect.name == "postgresql"
    _as_operator()
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=20), nullable=False),
        sa.Column("scopes", _json(), nullable=False),
        sa.Column("feature_ids", _json(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "environment IN ('development', 'staging', 'production')",
            name=op.f("ck_api_keys_environment"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_api_keys_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"],
            ["users.id"],
            name=op.f("fk_api_keys_revoked_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_keys_secret_hash")),
    )
    op.create_index(
        "uq_api_keys_name_unrevoked",
        "api_keys",
        ["name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
        sqlite_where=sa.text("revoked_at IS NULL"),
    )

    with op.batch_alter_table("ai_usage_logs") as batch_op:
        batch_op.add_column(
            sa.Column(
                "environment", sa.String(length=20), server_default="production", nullable=False
            )
        )
        batch_op.add_column(sa.Column("event_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("api_key_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("model_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("provider_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("model_version", sa.String(length=100), nullable=True))
        batch_op.add_column(_int("cache_read_input_tokens"))
        batch_op.add_column(_int("cache_write_input_tokens"))
        batch_op.add_column(_int("reasoning_tokens"))
        batch_op.add_column(_int("images"))
        batch_op.add_column(
            sa.Column("cost_source", sa.String(length=20), server_default="catalog", nullable=False)
        )
        batch_op.add_column(sa.Column("session_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("metadata", _json(), server_default=sa.text("'{}'"), nullable=False)
        )
        batch_op.create_foreign_key(
            op.f("fk_ai_usage_logs_api_key_id_api_keys"),
            "api_keys",
            ["api_key_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_check_constraint(
            "environment", "environment IN ('development', 'staging', 'production')"
        )
        batch_op.create_check_constraint(
            "cost_source", "cost_source IN ('reported', 'catalog', 'unpriced')"
        )
        batch_op.create_check_constraint(
            "detail_counts_non_negative",
            "cache_read_input_tokens >= 0 AND cache_write_input_tokens >= 0 "
            "AND reasoning_tokens >= 0 AND images >= 0",
        )
        batch_op.create_check_constraint(
            "cached_within_input",
            "cache_read_input_tokens + cache_write_input_tokens <= input_tokens",
        )
        batch_op.create_check_constraint(
            "reasoning_within_output", "reasoning_tokens <= output_tokens"
        )
    op.execute("UPDATE ai_usage_logs SET cost_source = 'reported' WHERE model_id IS NULL")
    op.create_index(
        "ix_ai_usage_logs_unknown_model_name",
        "ai_usage_logs",
        ["model_name"],
        postgresql_where=sa.text("model_id IS NULL AND model_name IS NOT NULL"),
        sqlite_where=sa.text("model_id IS NULL AND model_name IS NOT NULL"),
    )

    with op.batch_alter_table("ai_models") as batch_op:
        batch_op.add_column(sa.Column("cache_read_price_per_million", _exact(12, 6)))
        batch_op.add_column(sa.Column("cache_write_price_per_million", _exact(12, 6)))
        batch_op.create_check_constraint(
            "cache_read_price_non_negative",
            "cache_read_price_per_million IS NULL OR cache_read_price_per_million >= 0",
        )
        batch_op.create_check_constraint(
            "cache_write_price_non_negative",
            "cache_write_price_per_million IS NULL OR cache_write_price_per_million >= 0",
        )

    op.create_table(
        "usage_event_ids",
        sa.Column("environment", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("usage_log_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_final", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("environment", "event_id", name=op.f("pk_usage_event_ids")),
    )
    op.create_index(op.f("ix_usage_event_ids_created_at"), "usage_event_ids", ["created_at"])

    op.create_table(
        "api_key_ingestion",
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        _count("accepted"),
        _count("completed"),
        _count("duplicates"),
        *[_count(f"rejected_{code}") for code in REJECTIONS],
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_api_key_ingestion_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "hour", "shard", name=op.f("pk_api_key_ingestion")),
    )

    op.drop_table("ai_usage_daily_rollup")
    _create_rollup(with_environment=True)
    _fill_rollup(with_environment=True)

    if postgresql:
        for table in ("api_keys", "usage_event_ids", "api_key_ingestion"):
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY {table}_admin_all ON {table} FOR ALL "
                f"USING ({ROLE} = 'platform_admin') WITH CHECK ({ROLE} = 'platform_admin')"
            )
        for table in ("api_keys", "api_key_ingestion"):
            op.execute(
                f"CREATE POLICY {table}_viewer_read ON {table} FOR SELECT USING ({ROLE} = 'viewer')"
            )
        _rollup_policies()
        # An application finds its key and marks it used; nothing else on the table.
        op.execute(
            "CREATE POLICY api_keys_application_read ON api_keys FOR SELECT "
            f"USING ({ROLE} = 'application')"
        )
        op.execute(
            "CREATE POLICY api_keys_application_touch ON api_keys FOR UPDATE "
            f"USING ({ROLE} = 'application') WITH CHECK ({ROLE} = 'application')"
        )
        for table in APPLICATION_READS:
            op.execute(
                f"CREATE POLICY {table}_application_read ON {table} FOR SELECT "
                f"USING ({ROLE} = 'application')"
            )
        for table in APPLICATION_WRITES:
            op.execute(
                f"CREATE POLICY {table}_application_all ON {table} FOR ALL "
                f"USING ({ROLE} = 'application') WITH CHECK ({ROLE} = 'application')"
            )
        # Usage rows: applications add rows and complete their pending ones; no delete.
        op.execute(
            "CREATE POLICY ai_usage_logs_application_read ON ai_usage_logs FOR SELECT "
            f"USING ({ROLE} = 'application')"
        )
        op.execute(
            "CREATE POLICY ai_usage_logs_application_insert ON ai_usage_logs FOR INSERT "
            f"WITH CHECK ({ROLE} = 'application')"
        )
        op.execute(
            "CREATE POLICY ai_usage_logs_application_complete ON ai_usage_logs FOR UPDATE "
            f"USING ({ROLE} = 'application' AND status = 'pending') "
            f"WITH CHECK ({ROLE} = 'application')"
        )


def _json():
    from sqlalchemy.dialects import postgresql

    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _create_rollup(with_environment):
    keys = ["day", "feature_id", "model_id", "provider_id", "status"]
    extra = []
    if with_environment:
        keys += ["environment", "shard"]
        extra = [
            sa.Column("environment", sa.String(length=20), nullable=False),
            sa.Column("shard", sa.SmallInteger(), nullable=False),
        ]
    op.create_table(
        "ai_usage_daily_rollup",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("feature_id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        *extra,
        _count("request_count"),
        _count("input_tokens"),
        _count("output_tokens"),
        _count("tokens_used"),
        sa.Column("cost_usd", _exact(18, 6), server_default="0", nullable=False),
        _count("response_time_ms_sum"),
        *[_count(name) for name in BUCKETS],
        sa.PrimaryKeyConstraint(*keys, name=op.f("pk_ai_usage_daily_rollup")),
    )


def _rollup_policies():
    table = "ai_usage_daily_rollup"
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {table}_admin_all ON {table} FOR ALL "
        f"USING ({ROLE} = 'platform_admin') WITH CHECK ({ROLE} = 'platform_admin')"
    )
    op.execute(f"CREATE POLICY {table}_viewer_read ON {table} FOR SELECT USING ({ROLE} = 'viewer')")


def _fill_rollup(with_environment):
    postgresql = op.get_context().dialect.name == "postgresql"
    if postgresql:
        day = "CAST(timezone('UTC', u.created_at) AS DATE)"
        nil = f"'{NIL}'::uuid"
    else:
        day = "date(u.created_at)"
        nil = f"'{NIL.replace('-', '')}'"  # sa.Uuid is 32 hex characters on SQLite
    lower = [0, *BOUNDS]
    buckets = []
    for index in range(len(BUCKETS)):
        if index == len(BUCKETS) - 1:
            condition = f"u.response_time_ms >= {lower[index]}"
        else:
            condition = (
                f"u.response_time_ms >= {lower[index]} AND u.response_time_ms < {BOUNDS[index]}"
            )
        buckets.append(f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)")
    keys = (
        f"{day}, COALESCE(u.feature_id, {nil}), COALESCE(u.model_id, {nil}), "
        f"COALESCE(m.provider_id, {nil}), u.status"
    )
    key_columns = "day, feature_id, model_id, provider_id, status"
    selected = keys
    if with_environment:
        key_columns += ", environment, shard"
        selected = keys + ", u.environment, 0"
        keys += ", u.environment"
    op.execute(
        f"""
        INSERT INTO ai_usage_daily_rollup (
            {key_columns}, request_count, input_tokens,
            output_tokens, tokens_used, cost_usd, response_time_ms_sum, {", ".join(BUCKETS)})
        SELECT {selected}, COUNT(*), SUM(u.input_tokens),
               SUM(u.output_tokens), SUM(u.tokens_used), SUM(u.cost_usd),
               SUM(u.response_time_ms), {", ".join(buckets)}
        FROM ai_usage_logs u LEFT JOIN ai_models m ON m.id = u.model_id
        GROUP BY {keys}
        """
    )


def downgrade():
    postgresql = op.get_context().dialect.name == "postgresql"
    _as_operator()
    if postgresql:
        for table in APPLICATION_READS:
            op.execute(f"DROP POLICY IF EXISTS {table}_application_read ON {table}")
        for policy in ("read", "insert", "complete"):
            op.execute(f"DROP POLICY IF EXISTS ai_usage_logs_application_{policy} ON ai_usage_logs")
    op.drop_table("ai_usage_daily_rollup")
    _create_rollup(with_environment=False)
    _fill_rollup(with_environment=False)
    if postgresql:
        _rollup_policies()
    op.drop_table("api_key_ingestion")
    op.drop_index(op.f("ix_usage_event_ids_created_at"), table_name="usage_event_ids")
    op.drop_table("usage_event_ids")
    with op.batch_alter_table("ai_models") as batch_op:
        batch_op.drop_constraint("cache_write_price_non_negative", type_="check")
        batch_op.drop_constraint("cache_read_price_non_negative", type_="check")
        batch_op.drop_column("cache_write_price_per_million")
        batch_op.drop_column("cache_read_price_per_million")
    op.drop_index("ix_ai_usage_logs_unknown_model_name", table_name="ai_usage_logs")
    with op.batch_alter_table("ai_usage_logs") as batch_op:
        for name in (
            "reasoning_within_output",
            "cached_within_input",
            "detail_counts_non_negative",
            "cost_source",
            "environment",
        ):
            batch_op.drop_constraint(name, type_="check")
        batch_op.drop_constraint(op.f("fk_ai_usage_logs_api_key_id_api_keys"), type_="foreignkey")
        for column in (
            "metadata",
            "session_id",
            "cost_source",
            "images",
            "reasoning_tokens",
            "cache_write_input_tokens",
            "cache_read_input_tokens",
            "model_version",
            "provider_name",
            "model_name",
            "api_key_id",
            "event_id",
            "environment",
        ):
            batch_op.drop_column(column)
    op.drop_index("uq_api_keys_name_unrevoked", table_name="api_keys")
    op.drop_table("api_keys")
