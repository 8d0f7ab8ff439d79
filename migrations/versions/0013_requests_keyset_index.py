"""Usage logs keyset pages: one index on (created_at, id) instead of (created_at).

Revision ID: 0012_requests
Revises: 0012_creds
Create Date: 2026-12-02

The requests page and the usage API page newest first with the ROW comparison
``(created_at, id) < (:t, :id)`` (webapp/services/usage/logs.py ``before``); an index on
both columns serves it as one range scan in index order, and also serves everything the
single-column index on ``created_at`` served (it is its leading column), so that one goes.

Downgrade restores the single-column index.
"""

from alembic import op

revision = "0012_requests"
down_revision = "0012_creds"
branch_labels = None
depends_on = None

TABLE = "ai_usage_logs"


def upgrade():
    op.create_index("ix_ai_usage_logs_created_at_id", TABLE, ["created_at", "id"])
    op.drop_index("ix_ai_usage_logs_created_at", table_name=TABLE)


def downgrade():
    op.create_index("ix_ai_usage_logs_created_at", TABLE, ["created_at"])
    op.drop_index("ix_ai_usage_logs_created_at_id", table_name=TABLE)
