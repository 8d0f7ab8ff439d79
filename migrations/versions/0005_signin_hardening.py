"""Sign-in hardening: forced password change, counted audit events.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

- users.must_change_password: set for passwords the console generated; the user must
  choose their own at the next sign-in.
- audit_event_windows: one counter per (action, subject, window) for events that repeat
  in floods (throttled sign-ins per address, refused requests per user). The audit log
  stays append-only: the window's first event writes the audit row, later ones only
  increment this counter.
- PostgreSQL: row-level security on the counters like the audit log (both roles read and
  count; 'anonymous' only throttled sign-ins, the one event it records). Sign-in no longer
  reads the audit log, so 0003's platform_audit_logs_throttle_read policy is dropped.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ROLE = "current_setting('app.user_role', true)"
MAY_COUNT = (
    f"({ROLE} IN ('platform_admin', 'viewer') "
    f"OR ({ROLE} = 'anonymous' AND action = 'auth.login_throttled'))"
)


def upgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    op.create_table(
        "audit_event_windows",
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_count", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "event_count >= 1", name=op.f("ck_audit_event_windows_event_count_positive")
        ),
        sa.PrimaryKeyConstraint(
            "action", "subject", "window_start", name=op.f("pk_audit_event_windows")
        ),
    )
    if op.get_context().dialect.name == "postgresql":
        table = "audit_event_windows"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        # INSERT … ON CONFLICT DO UPDATE … RETURNING needs SELECT, INSERT and UPDATE.
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING {MAY_COUNT}")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK {MAY_COUNT}")
        op.execute(
            f"CREATE POLICY {table}_update ON {table} FOR UPDATE "
            f"USING {MAY_COUNT} WITH CHECK {MAY_COUNT}"
        )
        op.execute("DROP POLICY platform_audit_logs_throttle_read ON platform_audit_logs")


def downgrade():
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE POLICY platform_audit_logs_throttle_read ON platform_audit_logs FOR SELECT "
            f"USING ({ROLE} = 'anonymous' AND action = 'auth.login_throttled')"
        )
    op.drop_table("audit_event_windows")  # its policies go with it
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("must_change_password")
