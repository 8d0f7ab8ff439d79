"""Provider credentials (encrypted) and the playground's run history.

Revision ID: 0012_creds
Revises: 0011
Create Date: 2026-12-02

- ai_providers gains ``credentials_ciphertext`` (a Fernet token holding the API key and
  extra headers; never clear text) and ``credentials_hint`` (the key's last 4 characters).
- prompt_runs: each run of a prompt version on a model from the prompt page (issue 18),
  with the usage row that counts it.
- PostgreSQL: row-level security like 0011's tables (admin all, viewer read).

Downgrade drops the history and both columns (stored credentials are lost).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012_creds"
down_revision = "0011"
branch_labels = None
depends_on = None

ROLE = "current_setting('app.user_role', true)"
TABLE = "prompt_runs"


def _exact(precision, scale):
    return sa.Numeric(precision, scale).with_variant(sa.BigInteger(), "sqlite")


def upgrade():
    with op.batch_alter_table("ai_providers") as batch_op:
        batch_op.add_column(sa.Column("credentials_ciphertext", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("credentials_hint", sa.String(length=4), nullable=True))

    op.create_table(
        TABLE,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prompt_id", sa.Uuid(), nullable=True),
        sa.Column("feature_id", sa.Uuid(), nullable=True),
        sa.Column("prompt_name", sa.String(length=200), nullable=False),
        sa.Column("prompt_version", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=True),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("compare_group", sa.Uuid(), nullable=True),
        sa.Column(
            "variables",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("output", sa.Text(), server_default="", nullable=False),
        sa.Column("error_status", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("latency_ms", sa.Integer(), server_default="0", nullable=False),
        sa.Column("time_to_first_token_ms", sa.Integer(), nullable=True),
        sa.Column("cost_usd", _exact(10, 6), server_default="0", nullable=False),
        sa.Column("usage_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("status IN ('success', 'error')", name=op.f("ck_prompt_runs_status")),
        sa.CheckConstraint(
            "environment IN ('development', 'staging', 'production')",
            name=op.f("ck_prompt_runs_environment"),
        ),
        sa.CheckConstraint(
            "input_tokens >= 0 AND output_tokens >= 0 AND latency_ms >= 0",
            name=op.f("ck_prompt_runs_counts_non_negative"),
        ),
        sa.CheckConstraint("cost_usd >= 0", name=op.f("ck_prompt_runs_cost_non_negative")),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["ai_prompts.id"],
            name=op.f("fk_prompt_runs_prompt_id_ai_prompts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["ai_features.id"],
            name=op.f("fk_prompt_runs_feature_id_ai_features"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["ai_models.id"],
            name=op.f("fk_prompt_runs_model_id_ai_models"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_prompt_runs_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_runs")),
    )
    op.create_index(op.f("ix_prompt_runs_prompt_id"), TABLE, ["prompt_id"])
    op.create_index(op.f("ix_prompt_runs_model_id"), TABLE, ["model_id"])
    op.create_index(op.f("ix_prompt_runs_user_id"), TABLE, ["user_id"])
    op.create_index(
        "ix_prompt_runs_family_created", TABLE, ["feature_id", "prompt_name", "created_at"]
    )
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


def downgrade():
    op.drop_index("ix_prompt_runs_family_created", table_name=TABLE)
    op.drop_index(op.f("ix_prompt_runs_user_id"), table_name=TABLE)
    op.drop_index(op.f("ix_prompt_runs_model_id"), table_name=TABLE)
    op.drop_index(op.f("ix_prompt_runs_prompt_id"), table_name=TABLE)
    op.drop_table(TABLE)
    with op.batch_alter_table("ai_providers") as batch_op:
        batch_op.drop_column("credentials_hint")
        batch_op.drop_column("credentials_ciphertext")
