"""Catalog and budget rules: model types checked by the database, the type each feature
needs, the history of budget amounts.

Revision ID: 0012_defects
Revises: 0012_creds
Create Date: 2026-12-02

- ai_models.model_type becomes one of llm | vision | embedding (CHECK). Existing values
  are normalised: case and spaces ("LLM", " Vision ") and the usual synonyms (chat, text,
  completion → llm; image → vision; embeddings, embed → embedding). Any other value stops
  the upgrade with a message naming the models and their values: the migration does not
  guess what a model does (a wrong guess would let it serve features it cannot serve).
  Correct those rows (``UPDATE ai_models SET model_type = 'llm' WHERE …``) and run it again.
- ai_features.model_type (required, same three values, CHECK): the type of model the
  feature needs. Existing features: the seed's by name (photo-tagging vision, chatbot
  llm, ai-search embedding), others the type of the model serving them in production,
  else of any model serving them, else llm.

- budget_amount_changes: a budget's amount from an instant on (editing the amount adds
  a row; past periods keep theirs). Existing budgets get no row: a budget without one has
  had its amount since it was created, which is what they show today. PostgreSQL:
  row-level security (admin all, viewer and the ``application`` role read: reservations
  and the budget guard compute with the amounts).

Downgrade drops budget_amount_changes (budgets keep their latest amount), ai_features.
model_type and the CHECK on ai_models.model_type; the model types keep their normalised
spelling (the original case is not kept).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_defects"
down_revision = "0012_creds"
branch_labels = None
depends_on = None

MODEL_TYPES = ("llm", "vision", "embedding")
SYNONYMS = {
    "llm": "llm",
    "chat": "llm",
    "text": "llm",
    "completion": "llm",
    "vision": "vision",
    "image": "vision",
    "embedding": "embedding",
    "embeddings": "embedding",
    "embed": "embedding",
}
SEED_FEATURE_TYPES = {"photo-tagging": "vision", "chatbot": "llm", "ai-search": "embedding"}
TYPES_SQL = "model_type IN ('llm', 'vision', 'embedding')"
AMOUNTS = "budget_amount_changes"
ROLE = "current_setting('app.user_role', true)"


def _exact(precision, scale):
    return sa.Numeric(precision, scale).with_variant(sa.BigInteger(), "sqlite")


def _normalise_model_types(bind) -> None:
    rows = bind.execute(sa.text("SELECT id, name, model_type FROM ai_models")).all()
    unknown = []
    for model_id, name, model_type in rows:
        normal = SYNONYMS.get((model_type or "").strip().lower())
        if normal is None:
            unknown.append(f"{name} ({model_id}): {model_type!r}")
        elif normal != model_type:
            bind.execute(
                sa.text("UPDATE ai_models SET model_type = :type WHERE id = :id"),
                {"type": normal, "id": model_id},
            )
    if unknown:
        raise RuntimeError(
            "ai_models.model_type must be one of llm, vision, embedding; these models have "
            "a type this migration does not recognise (set each one's type, then upgrade "
            "again): " + "; ".join(unknown)
        )


def _feature_types(bind) -> None:
    for name, model_type in SEED_FEATURE_TYPES.items():
        bind.execute(
            sa.text("UPDATE ai_features SET model_type = :type WHERE name = :name"),
            {"type": model_type, "name": name},
        )
    # The serving model's type: production first, then any environment (by name for a
    # stable choice).
    for where in ("a.environment = 'production' AND ", ""):
        bind.execute(
            sa.text(
                "UPDATE ai_features SET model_type = ("
                " SELECT m.model_type FROM feature_model_assignments a"
                " JOIN ai_models m ON m.id = a.model_id"
                f" WHERE {where}a.is_active AND a.feature_id = ai_features.id"
                " ORDER BY a.environment LIMIT 1)"
                " WHERE model_type IS NULL"
            )
        )
    bind.execute(sa.text("UPDATE ai_features SET model_type = 'llm' WHERE model_type IS NULL"))


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # ai_models and ai_features have FORCE ROW LEVEL SECURITY: without a role even
        # their owner reads and updates no row. Local to this migration's transaction.
        bind.execute(sa.text("SELECT set_config('app.user_role', 'platform_admin', true)"))
    _normalise_model_types(bind)
    with op.batch_alter_table("ai_models") as batch_op:
        batch_op.create_check_constraint("model_type", TYPES_SQL)
    with op.batch_alter_table("ai_features") as batch_op:
        batch_op.add_column(sa.Column("model_type", sa.String(length=20), nullable=True))
    _feature_types(bind)
    with op.batch_alter_table("ai_features") as batch_op:
        batch_op.alter_column("model_type", existing_type=sa.String(length=20), nullable=False)
        batch_op.create_check_constraint("model_type", TYPES_SQL)
    _amounts_table(bind)


def _amounts_table(bind) -> None:
    op.create_table(
        AMOUNTS,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("budget_id", sa.Uuid(), nullable=False),
        sa.Column("amount", _exact(10, 2), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_budget_amount_changes_amount_positive")),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["ai_spending_budgets.id"],
            name=op.f("fk_budget_amount_changes_budget_id_ai_spending_budgets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["changed_by"],
            ["users.id"],
            name=op.f("fk_budget_amount_changes_changed_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_amount_changes")),
        sa.UniqueConstraint(
            "budget_id",
            "effective_from",
            name=op.f("uq_budget_amount_changes_budget_id_effective_from"),
        ),
    )
    op.create_index(op.f("ix_budget_amount_changes_budget_id"), AMOUNTS, ["budget_id"])
    op.create_index(op.f("ix_budget_amount_changes_changed_by"), AMOUNTS, ["changed_by"])
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {AMOUNTS} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {AMOUNTS} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {AMOUNTS}_admin_all ON {AMOUNTS} FOR ALL "
            f"USING ({ROLE} = 'platform_admin') WITH CHECK ({ROLE} = 'platform_admin')"
        )
        op.execute(
            f"CREATE POLICY {AMOUNTS}_viewer_read ON {AMOUNTS} FOR SELECT USING ({ROLE} = 'viewer')"
        )
        op.execute(
            f"CREATE POLICY {AMOUNTS}_application_read ON {AMOUNTS} FOR SELECT "
            f"USING ({ROLE} = 'application')"
        )


def downgrade():
    op.drop_index(op.f("ix_budget_amount_changes_changed_by"), table_name=AMOUNTS)
    op.drop_index(op.f("ix_budget_amount_changes_budget_id"), table_name=AMOUNTS)
    op.drop_table(AMOUNTS)
    with op.batch_alter_table("ai_features") as batch_op:
        batch_op.drop_constraint("model_type", type_="check")
        batch_op.drop_column("model_type")
    with op.batch_alter_table("ai_models") as batch_op:
        batch_op.drop_constraint("model_type", type_="check")
