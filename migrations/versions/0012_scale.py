"""Usage at scale: keyset index.

Revision ID: 0012_scale
Revises: 0011
Create Date: 2026-12-02

- ai_usage_logs: the index on created_at becomes (created_at, id), so the usage lists'
  row comparison ``(created_at, id) < (:t, :id)`` is one index range, and ties on
  created_at come out in order without a sort.
"""

from alembic import op

revision = "0012_scale"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_ai_usage_logs_created_at_id", "ai_usage_logs", ["created_at", "id"])
    op.drop_index("ix_ai_usage_logs_created_at", table_name="ai_usage_logs")


def downgrade():
    op.create_index("ix_ai_usage_logs_created_at", "ai_usage_logs", ["created_at"])
    op.drop_index("ix_ai_usage_logs_created_at_id", table_name="ai_usage_logs")
