"""Hourly outcomes rollup: successes and finished requests per hour and key.

Revision ID: 0017_outcomes
Revises: 0016_hourly
Create Date: 2026-12-03

- ai_usage_hourly_outcomes: per (hour, kind, key_id, environment, shard) the successes and
  the finished requests (success, error or timeout) of the hour, where ``kind`` names the
  column ``key_id`` stands for (feature, model or provider). Whole-day uptime reads it
  instead of the wide hourly rollup. Primary key with the hour first, so a range of hours
  is one range of the index. Usage without a feature (model, provider) has no row of that
  kind (no nil key).
- Filled from ai_usage_hourly_rollup, which holds the same information: its rows grouped
  by hour, key and environment into shard 0 (one INSERT … SELECT, no raw row read).
- PostgreSQL: row-level security and FORCE as on ai_usage_hourly_rollup (0016), and the
  grants other roles hold on ai_usage_hourly_rollup are given on the new table too, so an
  application role already granted (`flask grant-app-access`) can record usage right after
  the upgrade, before grant-app-access is run again.

Downgrade drops the table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_outcomes"
down_revision = "0016_hourly"
branch_labels = None
depends_on = None

TABLE = "ai_usage_hourly_outcomes"
SOURCE = "ai_usage_hourly_rollup"
ROLE = "current_setting('app.user_role', true)"
NIL = "00000000-0000-0000-0000-000000000000"
KINDS = {"feature": "feature_id", "model": "model_id", "provider": "provider_id"}
KEYS = ("hour", "kind", "key_id", "environment", "shard")


def _count(name):
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def upgrade():
    postgresql = op.get_context().dialect.name == "postgresql"
    if postgresql:
        # The hourly rollup has FORCE ROW LEVEL SECURITY: without a role even its owner
        # reads no row and the fill below would copy nothing. Local to this transaction.
        op.execute("SELECT set_config('app.user_role', 'platform_admin', true)")
    op.create_table(
        TABLE,
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("environment", sa.String(length=20), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        _count("successes"),
        _count("finished"),
        sa.CheckConstraint(
            "kind IN ('feature', 'model', 'provider')", name=op.f(f"ck_{TABLE}_kind")
        ),
        sa.PrimaryKeyConstraint(*KEYS, name=op.f(f"pk_{TABLE}")),
    )
    _fill_from_hourly_rollup(postgresql)
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
        _copy_grants()


def _fill_from_hourly_rollup(postgresql):
    # SQLite keeps sa.Uuid as 32 hex characters; the hour values are copied as they are
    # stored, so the writers' upserts match them on both databases.
    nil = f"'{NIL}'::uuid" if postgresql else f"'{NIL.replace('-', '')}'"
    successes = "SUM(CASE WHEN status = 'success' THEN request_count ELSE 0 END)"
    finished = "SUM(request_count)"
    parts = [
        f"""
        SELECT hour, '{kind}', {column}, environment, 0, {successes}, {finished}
        FROM {SOURCE}
        WHERE {column} <> {nil} AND status IN ('success', 'error', 'timeout')
        GROUP BY hour, {column}, environment
        HAVING {successes} <> 0 OR {finished} <> 0
        """
        for kind, column in KINDS.items()
    ]
    op.execute(
        f"INSERT INTO {TABLE} ({', '.join(KEYS)}, successes, finished) " + " UNION ALL ".join(parts)
    )


def _copy_grants():
    """Grant every role (but the owner) what it holds on the hourly rollup."""
    rows = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT g.grantee, string_agg(g.privilege_type, ', ' ORDER BY g.privilege_type) "
                "FROM information_schema.role_table_grants g JOIN pg_tables t "
                "ON t.schemaname = g.table_schema AND t.tablename = g.table_name "
                "WHERE g.table_name = :source AND g.table_schema = current_schema() "
                "AND g.grantee <> t.tableowner GROUP BY g.grantee ORDER BY g.grantee"
            ),
            {"source": SOURCE},
        )
        .all()
    )
    for grantee, privileges in rows:
        role = "PUBLIC" if grantee == "PUBLIC" else '"' + grantee.replace('"', '""') + '"'
        op.execute(f"GRANT {privileges} ON {TABLE} TO {role}")


def downgrade():
    op.drop_table(TABLE)
