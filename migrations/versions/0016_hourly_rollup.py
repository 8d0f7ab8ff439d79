"""Hourly usage rollup.

Revision ID: 0016_hourly
Revises: 0012_forms
Create Date: 2026-12-02

- ai_usage_hourly_rollup: the daily rollup's key, shards, sums and latency histogram with
  the start of the UTC hour (``hour``) in place of the day. Windows that are not whole
  days (the last 24 hours, 1 hour, provider-health windows) read their whole hours from it
  and only their partial hours from ai_usage_logs.
- Filled from the existing usage rows in one INSERT … SELECT … GROUP BY (shard 0), so an
  upgraded database reads the same figures as before.
- PostgreSQL: row-level security as on ai_usage_daily_rollup (0004 and 0008): operators
  read and write, viewers read, applications read and write (they record usage). The app
  role's table grants come from `flask grant-app-access`, which covers every model table.

Downgrade drops the table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_hourly"
down_revision = "0012_forms"
branch_labels = None
depends_on = None

TABLE = "ai_usage_hourly_rollup"
ROLE = "current_setting('app.user_role', true)"
NIL = "00000000-0000-0000-0000-000000000000"
BOUNDS = (50, 100, 150, 200, 300, 400, 500, 750, 1000, 1500,
          2000, 3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000, 60000)  # fmt: skip
BUCKETS = [f"latency_bucket_{i:02d}" for i in range(21)]
KEYS = ("hour", "feature_id", "model_id", "provider_id", "status", "environment", "shard")


def _count(name):
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def upgrade():
    postgresql = op.get_context().dialect.name == "postgresql"
    if postgresql:
        # ai_usage_logs has FORCE ROW LEVEL SECURITY: without a role even its owner reads
        # no row and the fill below would copy nothing. Local to this transaction.
        op.execute("SELECT set_config('app.user_role', 'platform_admin', true)")
    op.create_table(
        TABLE,
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feature_id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("environment", sa.String(length=20), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
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
        sa.PrimaryKeyConstraint(*KEYS, name=op.f("pk_ai_usage_hourly_rollup")),
    )
    _fill_from_usage(postgresql)
    if postgresql:
        op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {TABLE}_admin_all ON {TABLE} FOR ALL "
            f"USING ({ROLE} = 'platform_admin') WITH CHECK ({ROLE} = 'platform_admin')"
        )
        op.execute(
            f"CREATE POLICY {TABLE}_viewer_read ON {TABLE} FOR SELECT USING ({ROLE} = 'viewer')"
        )
        op.execute(
            f"CREATE POLICY {TABLE}_application_all ON {TABLE} FOR ALL "
            f"USING ({ROLE} = 'application') WITH CHECK ({ROLE} = 'application')"
        )


def _fill_from_usage(postgresql):
    if postgresql:
        hour = "date_trunc('hour', u.created_at, 'UTC')"
        nil = f"'{NIL}'::uuid"
    else:
        # SQLite keeps timestamps as naive UTC text in SQLAlchemy's format (UTCDateTime):
        # the hour must be spelled the same way for the writers' upserts to match it.
        hour = "strftime('%Y-%m-%d %H:00:00.000000', u.created_at)"
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
        f"{hour}, COALESCE(u.feature_id, {nil}), COALESCE(u.model_id, {nil}), "
        f"COALESCE(m.provider_id, {nil}), u.status, u.environment"
    )
    op.execute(
        f"""
        INSERT INTO {TABLE} (
            {", ".join(KEYS)}, request_count, input_tokens, output_tokens, tokens_used,
            cost_usd, response_time_ms_sum, {", ".join(BUCKETS)})
        SELECT {keys}, 0, COUNT(*), SUM(u.input_tokens), SUM(u.output_tokens),
               SUM(u.tokens_used), SUM(u.cost_usd), SUM(u.response_time_ms),
               {", ".join(buckets)}
        FROM ai_usage_logs u LEFT JOIN ai_models m ON m.id = u.model_id
        GROUP BY {keys}
        """
    )


def downgrade():
    op.drop_table(TABLE)
