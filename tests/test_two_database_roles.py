"""The README's two-role steps, followed exactly on a throwaway PostgreSQL database: an
owner and an app role, `flask db upgrade` as the owner (MIGRATIONS_DATABASE_URL) while
DATABASE_URL names the app role, `flask grant-app-access`; then the app role cannot
switch off row-level security, drop the audit log's trigger or delete audit rows, and
production refuses to start as a role that owns the tables.

Needs root (``runuser -u postgres -- psql``) and runs with the PostgreSQL suite only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from tests.processes import environment_without
from webapp.db_roles import app_role_problems

PROJECT = Path(__file__).resolve().parent.parent
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]


def psql(sql: str, database: str = "postgres") -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-d", database],
        input=sql,
        text=True,
        check=True,
        capture_output=True,
    )


@dataclass
class Setup:
    owner_url: str
    app_url: str
    super_url: str
    app_role: str
    env: dict[str, str]


@pytest.fixture
def two_roles(dialect, tmp_path) -> Iterator[Setup]:
    if dialect != "postgresql":
        pytest.skip("database roles are PostgreSQL's")
    if os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs root to create throwaway roles with runuser -u postgres")
    host = os.environ.get("TEST_DATABASE_URL", "").split("@")[-1].split("/")[0]
    suffix = uuid.uuid4().hex[:10]
    owner, app_role, superuser, database = (
        f"aipm_owner_{suffix}",
        f"aipm_app_{suffix}",
        f"aipm_super_{suffix}",
        f"aipm_roles_{suffix}",
    )
    # Step 1 of the README, as a PostgreSQL superuser.
    psql(
        f"CREATE ROLE {owner} LOGIN PASSWORD 'owner-pw';\n"
        f"CREATE ROLE {app_role} LOGIN PASSWORD 'app-pw';\n"
        f"CREATE ROLE {superuser} LOGIN SUPERUSER PASSWORD 'super-pw';\n"
        f"CREATE DATABASE {database} OWNER {owner};\n"
    )
    owner_url = f"postgresql://{owner}:owner-pw@{host}/{database}"
    app_url = f"postgresql://{app_role}:app-pw@{host}/{database}"
    env = environment_without("TEST_", "FLASK_", "MIGRATIONS_", "DATABASE_")
    env.update(
        AIPM_ENV="production",
        SECRET_KEY=uuid.uuid4().hex * 2,
        RATELIMIT_STORAGE_URI="memory://",
        AIPM_INSTANCE_DIR=str(tmp_path),
        # Step 2, each deploy.
        MIGRATIONS_DATABASE_URL=owner_url,
        DATABASE_URL=app_url,
    )
    try:
        yield Setup(
            owner_url,
            app_url,
            f"postgresql://{superuser}:super-pw@{host}/{database}",
            app_role,
            env,
        )
    finally:
        psql(
            f"DROP DATABASE IF EXISTS {database} WITH (FORCE);\n"
            f"DROP ROLE IF EXISTS {app_role};\nDROP ROLE IF EXISTS {owner};\n"
            f"DROP ROLE IF EXISTS {superuser};\n"
        )


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=PROJECT, env=env, text=True, capture_output=True, timeout=300)


def engine_for(url: str):
    from webapp.config import normalize_database_url

    return create_engine(normalize_database_url(url))


def refused(connection, sql: str) -> bool:
    try:
        with connection.begin_nested():
            connection.execute(text(sql))
    except DBAPIError:
        return True
    return False


def test_the_readme_two_role_steps_bind_the_app_role(two_roles):
    upgrade = run([*FLASK, "db", "upgrade"], two_roles.env)
    assert upgrade.returncode == 0, upgrade.stderr
    grant = run([*FLASK, "grant-app-access", two_roles.app_role], two_roles.env)
    assert grant.returncode == 0, grant.stderr

    owner = engine_for(two_roles.owner_url)
    app = engine_for(two_roles.app_url)
    try:
        with owner.connect() as connection:
            owners = connection.execute(
                text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
            assert set(owners) == {two_roles.owner_url.split("//")[1].split(":")[0]}
        assert app_role_problems(app) == []
        assert any("owns tables" in p for p in app_role_problems(owner))
        assert any("superuser" in p for p in app_role_problems(engine_for(two_roles.super_url)))

        with app.connect() as connection, connection.begin():
            connection.execute(text("SELECT set_config('app.user_role', 'platform_admin', true)"))
            connection.execute(
                text(
                    "INSERT INTO platform_audit_logs (id, action, resource_type) "
                    "VALUES (gen_random_uuid(), 'test.row', 'test')"
                )
            )
            for sql in (
                "ALTER TABLE platform_audit_logs DISABLE ROW LEVEL SECURITY",
                "ALTER TABLE platform_audit_logs NO FORCE ROW LEVEL SECURITY",
                "DROP TRIGGER platform_audit_logs_append_only ON platform_audit_logs",
                "ALTER TABLE platform_audit_logs DISABLE TRIGGER ALL",
                "DROP POLICY IF EXISTS platform_audit_logs_read ON platform_audit_logs",
                "DELETE FROM platform_audit_logs",
                "TRUNCATE platform_audit_logs",
                "UPDATE platform_audit_logs SET action = 'rewritten'",
                "DROP TABLE platform_audit_logs CASCADE",
            ):
                assert refused(connection, sql), sql
            count = connection.execute(text("SELECT count(*) FROM platform_audit_logs")).scalar()
            assert count == 1
    finally:
        owner.dispose()
        app.dispose()

    # Production refuses to start as the owner or a superuser, and starts as the app role.
    start = [sys.executable, "-c", "import wsgi"]  # what gunicorn wsgi:app does
    assert run(start, two_roles.env).returncode == 0
    as_owner = run(start, {**two_roles.env, "DATABASE_URL": two_roles.owner_url})
    assert as_owner.returncode != 0
    assert "Refusing to start" in as_owner.stderr and "owns tables" in as_owner.stderr
    as_super = run(start, {**two_roles.env, "DATABASE_URL": two_roles.super_url})
    assert as_super.returncode != 0 and "superuser" in as_super.stderr
