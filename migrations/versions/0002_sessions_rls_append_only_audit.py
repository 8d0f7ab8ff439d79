"""Session versions, PostgreSQL row-level security, append-only audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

- users.session_version: bumped to end every session of a user at once.
- PostgreSQL: ENABLE and FORCE row-level security on the seed's 11 tables. Policies read
  current_setting('app.user_role', true), set per transaction by the application:
  platform_admin may do everything, viewer may SELECT, nobody else sees a row. The audit
  log is readable by both roles and appendable by them and by 'anonymous' (failed
  sign-ins); no policy allows UPDATE or DELETE on it.
- Both databases: triggers refuse UPDATE and DELETE of audit rows outright.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = (
    "ai_features",
    "ai_providers",
    "ai_models",
    "feature_model_assignments",
    "ai_prompts",
    "ai_usage_logs",
    "ai_spending_budgets",
    "ai_experiments",
    "experiment_results",
    "provider_health_logs",
    "platform_audit_logs",
)
ROLE = "current_setting('app.user_role', true)"


def upgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), server_default="1", nullable=False)
        )

    if op.get_context().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            if table == "platform_audit_logs":
                continue
            op.execute(
                f"CREATE POLICY {table}_admin_all ON {table} FOR ALL "
                f"USING ({ROLE} = 'platform_admin') WITH CHECK ({ROLE} = 'platform_admin')"
            )
            op.execute(
                f"CREATE POLICY {table}_viewer_read ON {table} FOR SELECT USING ({ROLE} = 'viewer')"
            )
        op.execute(
            "CREATE POLICY platform_audit_logs_read ON platform_audit_logs FOR SELECT "
            f"USING ({ROLE} IN ('platform_admin', 'viewer'))"
        )
        op.execute(
            "CREATE POLICY platform_audit_logs_append ON platform_audit_logs FOR INSERT "
            f"WITH CHECK ({ROLE} IN ('platform_admin', 'viewer', 'anonymous'))"
        )
        op.execute(
            """
            CREATE FUNCTION platform_audit_logs_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit rows are append-only: % refused', TG_OP;
            END;
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER platform_audit_logs_append_only "
            "BEFORE UPDATE OR DELETE ON platform_audit_logs "
            "FOR EACH ROW EXECUTE FUNCTION platform_audit_logs_append_only()"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER platform_audit_logs_no_{operation.lower()} "
                f"BEFORE {operation} ON platform_audit_logs "
                f"BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: {operation} refused'); END"
            )


def downgrade():
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER platform_audit_logs_append_only ON platform_audit_logs")
        op.execute("DROP FUNCTION platform_audit_logs_append_only()")
        op.execute("DROP POLICY platform_audit_logs_read ON platform_audit_logs")
        op.execute("DROP POLICY platform_audit_logs_append ON platform_audit_logs")
        for table in TABLES:
            if table != "platform_audit_logs":
                op.execute(f"DROP POLICY {table}_admin_all ON {table}")
                op.execute(f"DROP POLICY {table}_viewer_read ON {table}")
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    else:
        op.execute("DROP TRIGGER platform_audit_logs_no_update")
        op.execute("DROP TRIGGER platform_audit_logs_no_delete")

    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("session_version")
