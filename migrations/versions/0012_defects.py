"""Catalog and budget rules: model types checked by the database, the type each feature
needs.

Revision ID: 0012_defects
Revises: 0011
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

Downgrade drops ai_features.model_type and the CHECK on ai_models.model_type; the model
types keep their normalised spelling (the original case is not kept).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_defects"
down_revision = "0011"
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


def downgrade():
    with op.batch_alter_table("ai_features") as batch_op:
        batch_op.drop_constraint("model_type", type_="check")
        batch_op.drop_column("model_type")
    with op.batch_alter_table("ai_models") as batch_op:
        batch_op.drop_constraint("model_type", type_="check")
