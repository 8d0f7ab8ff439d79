"""Row-level security on users, no privilege change without platform_admin, and the
throttling check's read of its own audit rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

PostgreSQL: every role the application sets may read users (sign-in looks accounts up
before anyone is signed in); only platform_admin may insert or delete them or update any
row; anyone else may update only their own row (app.user_id: last sign-in, password,
session version). A trigger (both databases on PostgreSQL; SQLite relies on the
application) refuses changes of role or active flag unless app.user_role is
platform_admin.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLE = "current_setting('app.user_role', true)"
USER_ID = "current_setting('app.user_id', true)"


def upgrade():
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE users ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE users FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY users_read ON users FOR SELECT "
        f"USING ({ROLE} IN ('platform_admin', 'viewer', 'anonymous'))"
    )
    op.execute(
        "CREATE POLICY users_admin_all ON users FOR ALL "
        f"USING ({ROLE} = 'platform_admin') WITH CHECK ({ROLE} = 'platform_admin')"
    )
    op.execute(
        "CREATE POLICY users_update_own ON users FOR UPDATE "
        f"USING ({ROLE} IN ('viewer', 'anonymous') AND id::text = {USER_ID}) "
        f"WITH CHECK (id::text = {USER_ID})"
    )
    # Sign-in (role anonymous) checks whether it already recorded throttling for an
    # account in this window; it may read those rows and no other audit rows.
    op.execute(
        "CREATE POLICY platform_audit_logs_throttle_read ON platform_audit_logs FOR SELECT "
        f"USING ({ROLE} = 'anonymous' AND action = 'auth.login_throttled')"
    )
    op.execute(
        f"""
        CREATE FUNCTION users_privileges_need_admin() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF (NEW.role IS DISTINCT FROM OLD.role OR NEW.is_active IS DISTINCT FROM OLD.is_active
                OR NEW.email IS DISTINCT FROM OLD.email)
               AND coalesce({ROLE}, '') <> 'platform_admin' THEN
                RAISE EXCEPTION 'only a platform_admin may change role, email or active flag';
            END IF;
            RETURN NEW;
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER users_privileges_need_admin BEFORE UPDATE ON users "
        "FOR EACH ROW EXECUTE FUNCTION users_privileges_need_admin()"
    )


def downgrade():
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP POLICY platform_audit_logs_throttle_read ON platform_audit_logs")
    op.execute("DROP TRIGGER users_privileges_need_admin ON users")
    op.execute("DROP FUNCTION users_privileges_need_admin()")
    for policy in ("users_read", "users_admin_all", "users_update_own"):
        op.execute(f"DROP POLICY {policy} ON users")
    op.execute("ALTER TABLE users NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE users DISABLE ROW LEVEL SECURITY")
