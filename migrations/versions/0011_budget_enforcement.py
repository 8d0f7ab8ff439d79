"""Budgets that act: enforcement, a model to degrade to, reservations against hard budgets.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

- ai_spending_budgets gains ``enforcement`` (observe | soft | hard; existing budgets:
  observe, today's behaviour) and ``degrade_to_model_id`` (SET NULL when the model goes).
- budget_reservations: what applications set aside before a request under a hard budget,
  open until the usage event carrying its id settles it or it expires.
- budget_holds: the open reservations' amounts per feature and minute of expiry, which
  admission sums (a few rows, however many reservations are open).
- PostgreSQL: row-level security like 0008's tables (admin all, viewer read) and the
  ``application`` role all on reservations and holds (it reads budgets already, since
  0008).

Downgrade drops the reservations and both columns (enforcement settings are lost).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ROLE = "current_setting('app.user_role', true)"
TABLE = "budget_reservations"
HOLDS = "budget_holds"
OPEN = "settled_at IS NULL"


def _exact(precision, scale):
    return sa.Numeric(precision, scale).with_variant(sa.BigInteger(), "sqlite")


def upgrade():
    with op.batch_alter_table("ai_spending_budgets") as batch_op:
        batch_op.add_column(
            sa.Column("enforcement", sa.String(length=10), server_default="observe", nullable=False)
        )
        batch_op.add_column(sa.Column("degrade_to_model_id", sa.Uuid(), nullable=True))
        batch_op.create_check_constraint(
            "enforcement", "enforcement IN ('observe', 'soft', 'hard')"
        )
        batch_op.create_foreign_key(
            op.f("fk_ai_spending_budgets_degrade_to_model_id_ai_models"),
            "ai_models",
            ["degrade_to_model_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            op.f("ix_ai_spending_budgets_degrade_to_model_id"), ["degrade_to_model_id"]
        )

    op.create_table(
        TABLE,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("budget_id", sa.Uuid(), nullable=True),
        sa.Column("feature_id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("reserved_usd", _exact(12, 6), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("usage_event_id", sa.String(length=128), nullable=True),
        sa.Column("settled_cost_usd", _exact(12, 6), nullable=True),
        sa.CheckConstraint(
            "reserved_usd >= 0", name=op.f("ck_budget_reservations_reserved_non_negative")
        ),
        sa.CheckConstraint(
            "settled_cost_usd IS NULL OR settled_cost_usd >= 0",
            name=op.f("ck_budget_reservations_settled_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["ai_spending_budgets.id"],
            name=op.f("fk_budget_reservations_budget_id_ai_spending_budgets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["ai_features.id"],
            name=op.f("fk_budget_reservations_feature_id_ai_features"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_budget_reservations_api_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_reservations")),
    )
    op.create_index(op.f("ix_budget_reservations_budget_id"), TABLE, ["budget_id"])
    op.create_index(op.f("ix_budget_reservations_api_key_id"), TABLE, ["api_key_id"])
    op.create_index(
        "ix_budget_reservations_open",
        TABLE,
        ["feature_id", "expires_at"],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.create_table(
        HOLDS,
        sa.Column("feature_id", sa.Uuid(), nullable=False),
        sa.Column("expires_minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("held_usd", _exact(14, 6), nullable=False),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["ai_features.id"],
            name=op.f("fk_budget_holds_feature_id_ai_features"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("feature_id", "expires_minute", name=op.f("pk_budget_holds")),
    )
    op.create_index("ix_budget_holds_expires_minute", HOLDS, ["expires_minute"])
    if op.get_context().dialect.name == "postgresql":
        _policies(TABLE)
        _policies(HOLDS)


def _policies(table):
    """Admin all, viewer read, the ``application`` role all (it reserves and settles)."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {table}_admin_all ON {table} FOR ALL "
        f"USING ({ROLE} = 'platform_admin') WITH CHECK ({ROLE} = 'platform_admin')"
    )
    op.execute(f"CREATE POLICY {table}_viewer_read ON {table} FOR SELECT USING ({ROLE} = 'viewer')")
    op.execute(
        f"CREATE POLICY {table}_application_all ON {table} FOR ALL "
        f"USING ({ROLE} = 'application') WITH CHECK ({ROLE} = 'application')"
    )


def downgrade():
    op.drop_index("ix_budget_holds_expires_minute", table_name=HOLDS)
    op.drop_table(HOLDS)
    op.drop_index("ix_budget_reservations_open", table_name=TABLE)
    op.drop_index(op.f("ix_budget_reservations_api_key_id"), table_name=TABLE)
    op.drop_index(op.f("ix_budget_reservations_budget_id"), table_name=TABLE)
    op.drop_table(TABLE)
    with op.batch_alter_table("ai_spending_budgets") as batch_op:
        batch_op.drop_index(op.f("ix_ai_spending_budgets_degrade_to_model_id"))
        batch_op.drop_constraint(
            op.f("fk_ai_spending_budgets_degrade_to_model_id_ai_models"), type_="foreignkey"
        )
        batch_op.drop_constraint("enforcement", type_="check")
        batch_op.drop_column("degrade_to_model_id")
        batch_op.drop_column("enforcement")
