"""Rollup revisions: per day and shard, how many late writes changed the rollups.

Revision ID: 0018_revisions
Revises: 0017_outcomes
Create Date: 2026-12-03

- ai_usage_rollup_revisions: per (day, shard) a count of the transactions that wrote the
  rollups for an hour that had already ended. Readers file the sums of settled periods
  under these counts (webapp/services/usage/settled.py). Starts empty: a process that
  remembers nothing yet has nothing to invalidate.
- PostgreSQL: row-level security and FORCE as on the rollups, and the grants other roles
  hold on ai_usage_daily_rollup are given on the new table too (as 0017 did), so an
  application role already granted can keep recording usage right after the upgrade.

Downgrade drops the table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_revisions"
down_revision = "0017_outcomes"
branch_labels = None
depends_on = None

TABLE = "ai_usage_rollup_revisions"
SOURCE = "ai_usage_daily_rollup"
ROLE = "current_setting('app.user_role', true)"


def upgrade():
    op.create_table(
        TABLE,
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("day", "shard", name=op.f(f"pk_{TABLE}")),
    )
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {TABLE}_admin_all ON {TABLE} FOR ALL "
        f"USING ({ROLE} = 'platform_admin') WITH CHECK ({ROLE} = 'platform_admin')"
    )
    op.execute(f"CREATE POLICY {TABLE}_viewer_read ON {TABLE} FOR SELECT USING ({ROLE} = 'viewer')")
    op.execute(
        f"CREATE POLICY {TABLE}_application_all ON {TABLE} FOR ALL "
        f"USING ({ROLE} = 'application') WITH CHECK ({ROLE} = 'application')"
    )
    _copy_grants()


def _copy_grants():
    """Grant every role (but the owner) what it holds on the daily rollup."""
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
