"""Prompts per environment: which version is live in development, staging, production.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

- prompt_activations: one row per period during which a version was live for its family
  (feature, name) in an environment; live while deactivated_at is NULL. Partial unique
  indexes allow one live row per (feature, name, environment), with and without a
  feature (NULLs are distinct in a plain unique index).
- Existing active versions (ai_prompts.is_active) become live in production; is_active
  stays, meaning "live in production", kept in step by the application.
- PostgreSQL: row-level security like the other tables (admin all, viewer read) and read
  access for the ``application`` role (applications read their live prompts).

Downgrade drops the table: what was live in development and staging is lost; production
survives in ai_prompts.is_active.
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ROLE = "current_setting('app.user_role', true)"
TABLE = "prompt_activations"
LIVE_WITH_FEATURE = "deactivated_at IS NULL AND feature_id IS NOT NULL"
LIVE_WITHOUT_FEATURE = "deactivated_at IS NULL AND feature_id IS NULL"


def upgrade():
    op.create_table(
        TABLE,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("feature_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=20), nullable=False),
        sa.Column("prompt_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous_prompt_id", sa.Uuid(), nullable=True),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=20), server_default="activate", nullable=False),
        sa.Column(
            "activated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("activated_by", sa.Uuid(), nullable=True),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deactivated_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "environment IN ('development', 'staging', 'production')",
            name=op.f("ck_prompt_activations_environment"),
        ),
        sa.CheckConstraint(
            "action IN ('activate', 'promote', 'rollback')",
            name=op.f("ck_prompt_activations_action"),
        ),
        sa.CheckConstraint(
            "deactivated_at IS NOT NULL OR prompt_id IS NOT NULL",
            name=op.f("ck_prompt_activations_live_has_prompt"),
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["ai_features.id"],
            name=op.f("fk_prompt_activations_feature_id_ai_features"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["ai_prompts.id"],
            name=op.f("fk_prompt_activations_prompt_id_ai_prompts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["previous_prompt_id"],
            ["ai_prompts.id"],
            name=op.f("fk_prompt_activations_previous_prompt_id_ai_prompts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["activated_by"],
            ["users.id"],
            name=op.f("fk_prompt_activations_activated_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deactivated_by"],
            ["users.id"],
            name=op.f("fk_prompt_activations_deactivated_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_activations")),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prompt_activations_prompt_id"), ["prompt_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_prompt_activations_previous_prompt_id"),
            ["previous_prompt_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_prompt_activations_family", ["name", "feature_id", "environment"], unique=False
        )
        batch_op.create_index(
            "uq_prompt_activations_feature_live",
            ["feature_id", "name", "environment"],
            unique=True,
            postgresql_where=sa.text(LIVE_WITH_FEATURE),
            sqlite_where=sa.text(LIVE_WITH_FEATURE),
        )
        batch_op.create_index(
            "uq_prompt_activations_global_live",
            ["name", "environment"],
            unique=True,
            postgresql_where=sa.text(LIVE_WITHOUT_FEATURE),
            sqlite_where=sa.text(LIVE_WITHOUT_FEATURE),
        )
    _live_in_production_from_is_active()
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


def _live_in_production_from_is_active():
    """Every active version becomes live in production, since its last change (the best
    date the seed kept), by nobody known."""
    prompts = sa.table(
        "ai_prompts",
        sa.column("id", sa.Uuid()),
        sa.column("feature_id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("version", sa.Integer()),
        sa.column("is_active", sa.Boolean()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    activations = sa.table(
        TABLE,
        sa.column("id", sa.Uuid()),
        sa.column("feature_id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("environment", sa.String()),
        sa.column("prompt_id", sa.Uuid()),
        sa.column("version", sa.Integer()),
        sa.column("action", sa.String()),
        sa.column("activated_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # ai_prompts has FORCE ROW LEVEL SECURITY: without a role even its owner reads no
        # row, and nothing would be migrated. Local to this migration's transaction.
        bind.execute(sa.text("SELECT set_config('app.user_role', 'platform_admin', true)"))
    rows = bind.execute(
        sa.select(
            prompts.c.id, prompts.c.feature_id, prompts.c.name, prompts.c.version,
            prompts.c.updated_at,
        ).where(prompts.c.is_active)
    ).all()  # fmt: skip
    if rows:
        op.bulk_insert(
            activations,
            [
                {
                    "id": uuid.uuid4(),
                    "feature_id": feature_id,
                    "name": name,
                    "environment": "production",
                    "prompt_id": prompt_id,
                    "version": version,
                    "action": "activate",
                    "activated_at": updated_at,
                }
                for prompt_id, feature_id, name, version, updated_at in rows
            ],
        )


def downgrade():
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index("uq_prompt_activations_global_live")
        batch_op.drop_index("uq_prompt_activations_feature_live")
        batch_op.drop_index("ix_prompt_activations_family")
        batch_op.drop_index(batch_op.f("ix_prompt_activations_previous_prompt_id"))
        batch_op.drop_index(batch_op.f("ix_prompt_activations_prompt_id"))
    op.drop_table(TABLE)  # its policies go with it
