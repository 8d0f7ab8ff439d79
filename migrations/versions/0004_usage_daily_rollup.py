"""Daily usage rollup table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

One row per (UTC day, feature, model, provider, status) with request count, token sums,
cost sum, response-time sum and a 21-bucket latency histogram. Key columns are NOT NULL
(the nil UUID stands for "no feature/model") so the upsert's conflict target matches on
both databases. Filled from the existing usage rows here, so an upgraded database reads
the same totals as before. PostgreSQL: row-level security like ai_usage_logs.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ROLE = "current_setting('app.user_role', true)"
NIL = "00000000-0000-0000-0000-000000000000"
# Upper bounds (exclusive) of latency buckets 0..19 in ms; bucket 20 is open-ended.
BOUNDS = (50, 100, 150, 200, 300, 400, 500, 750, 1000, 1500,
          2000, 3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000, 60000)  # fmt: skip
BUCKETS = [f"latency_bucket_{i:02d}" for i in range(21)]


def _count(name):
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def upgrade():
    op.create_table(
        "ai_usage_daily_rollup",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("feature_id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        _count("request_count"),
        _count("input_tokens"),
        _count("output_tokens"),
        _count("tokens_used"),
        sa.Column(
            "cost_usd",
            sa.Numeric(18, 6).with_variant(sa.BigInteger(), "sqlite"),
            server_default="0",
            nullable=False,
        ),
        _count("response_time_ms_sum"),
        *[_count(name) for name in BUCKETS],
        sa.PrimaryKeyConstraint(
            "day",
            "feature_id",
            "model_id",
            "provider_id",
            "status",
            name=op.f("pk_ai_usage_daily_rollup"),
        ),
    )
    _fill_from_usage()
    if op.get_context().dialect.name == "postgresql":
        table = "ai_usage_daily_rollup"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_admin_all ON {table} FOR ALL "
            f"USING ({ROLE} = 'platform_admin') WITH CHECK ({ROLE} = 'platform_admin')"
        )
        op.execute(
            f"CREATE POLICY {table}_viewer_read ON {table} FOR SELECT USING ({ROLE} = 'viewer')"
        )


def _fill_from_usage():
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
    op.execute(
        f"""
        INSERT INTO ai_usage_daily_rollup (
            day, feature_id, model_id, provider_id, status, request_count, input_tokens,
            output_tokens, tokens_used, cost_usd, response_time_ms_sum, {", ".join(BUCKETS)})
        SELECT {day}, COALESCE(u.feature_id, {nil}), COALESCE(u.model_id, {nil}),
               COALESCE(m.provider_id, {nil}), u.status, COUNT(*), SUM(u.input_tokens),
               SUM(u.output_tokens), SUM(u.tokens_used), SUM(u.cost_usd),
               SUM(u.response_time_ms), {", ".join(buckets)}
        FROM ai_usage_logs u LEFT JOIN ai_models m ON m.id = u.model_id
        GROUP BY {day}, COALESCE(u.feature_id, {nil}), COALESCE(u.model_id, {nil}),
                 COALESCE(m.provider_id, {nil}), u.status
        """
    )


def downgrade():
    op.drop_table("ai_usage_daily_rollup")
