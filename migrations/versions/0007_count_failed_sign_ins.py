"""Failed sign-ins are counted like throttled ones.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

auth.login_failed is now one audit row per (client address — IPv6: its /64 —, window)
with a count in audit_event_windows, as auth.login_throttled already was. A failed
sign-in runs as 'anonymous' (the role is not known), so on PostgreSQL the counters'
row-level security policies let 'anonymous' count that action too, and still no other.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ROLE = "current_setting('app.user_role', true)"
TABLE = "audit_event_windows"


def _may_count(anonymous_actions: str) -> str:
    return (
        f"({ROLE} IN ('platform_admin', 'viewer') "
        f"OR ({ROLE} = 'anonymous' AND action IN ({anonymous_actions})))"
    )


def _replace_policies(may_count: str) -> None:
    for policy in ("read", "insert", "update"):
        op.execute(f"DROP POLICY {TABLE}_{policy} ON {TABLE}")
    # INSERT … ON CONFLICT DO UPDATE … RETURNING needs SELECT, INSERT and UPDATE.
    op.execute(f"CREATE POLICY {TABLE}_read ON {TABLE} FOR SELECT USING {may_count}")
    op.execute(f"CREATE POLICY {TABLE}_insert ON {TABLE} FOR INSERT WITH CHECK {may_count}")
    op.execute(
        f"CREATE POLICY {TABLE}_update ON {TABLE} FOR UPDATE "
        f"USING {may_count} WITH CHECK {may_count}"
    )


def upgrade():
    if op.get_context().dialect.name == "postgresql":
        _replace_policies(_may_count("'auth.login_throttled', 'auth.login_failed'"))


def downgrade():
    if op.get_context().dialect.name == "postgresql":
        _replace_policies(_may_count("'auth.login_throttled'"))
