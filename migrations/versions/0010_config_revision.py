"""The configuration revision applications' configuration answers carry.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

- config_revision: one row (id = 1) whose ``revision`` every configuration change bumps in
  its own transaction (assignments, prompt activations, experiments, budgets, features,
  models, providers). Starts at 0.
- PostgreSQL: row-level security like the other tables: admins (and operators) do
  everything, viewers and applications read.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ROLE = "current_setting('app.user_role', true)"
TABLE = "config_revision"


def upgrade():
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_config_revision_single_row")),
        sa.CheckConstraint("revision >= 0", name=op.f("ck_config_revision_revision_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_revision")),
    )
    op.execute(f"INSERT INTO {TABLE} (id, revision) VALUES (1, 0)")
    if op.get_context().dialect.name == "postgresql":
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
            f"CREATE POLICY {TABLE}_application_read ON {TABLE} FOR SELECT "
            f"USING ({ROLE} = 'application')"
        )


def downgrade():
    op.drop_table(TABLE)
