"""Fixtures: ``app`` → ``client`` → signed-in ``admin_client`` / ``viewer_client``.

The database is SQLite (a temporary file) unless TEST_DATABASE_URL names another one;
`make test` runs the whole suite once on each. The schema is built by the real
migrations, and every test starts from empty tables.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import downgrade, upgrade
from sqlalchemy import event, text

from webapp import create_app
from webapp.apps_api.config import config_cache
from webapp.extensions import db as _db
from webapp.extensions import limiter
from webapp.models import ROLE_ADMIN, ROLE_VIEWER, User
from webapp.rls import OPERATOR, use_database_role
from webapp.services.apps.ingestion_catalog import catalog_cache
from webapp.services.core.actor import Actor
from webapp.services.identity import passwords
from webapp.services.identity.users import create_user
from webapp.services.usage.settled import settled_sums

PASSWORD = "correct horse battery staple"
# A fixed Fernet key for the test apps: every create_app() in the suite (production mode
# included, which refuses to start without one) finds it, and none writes a key file
# under instance/. tests/test_credentials_config.py removes it where it must be absent.
TEST_CREDENTIALS_KEY = "mJ1t0z8m2b5b3kK6m5qgk3p0ZxVv1m2c8c4Tt0rQy7Q="
os.environ.setdefault("CREDENTIALS_KEY", TEST_CREDENTIALS_KEY)

# The seed migration's 11 tables, written out here on purpose (not read from the code):
# the schema and row-level-security tests check the code against this list.
SEED_TABLES = (
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


def _database_url(tmp_dir: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        from webapp.config import normalize_database_url

        return normalize_database_url(url)
    return f"sqlite:///{tmp_dir / 'test.sqlite3'}"


def _reset_schema() -> None:
    """Take down whatever an earlier run left (its own downgrade when it can), then build
    the schema with the migrations."""
    from sqlalchemy import inspect

    if "alembic_version" in inspect(_db.engine).get_table_names():
        # An older, different schema may not downgrade: then it is simply dropped below.
        with contextlib.suppress(Exception):
            downgrade(revision="base")
    _db.drop_all()
    with _db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        if connection.dialect.name == "postgresql":
            for function in ("platform_audit_logs_append_only", "users_privileges_need_admin"):
                connection.execute(text(f"DROP FUNCTION IF EXISTS {function}() CASCADE"))
    upgrade()


def _skip_durable_commits(dbapi_connection: Any, _record: object) -> None:
    """Test databases need not survive a power cut: commits skip the disk flush (SQLite
    ``synchronous=OFF``, PostgreSQL ``synchronous_commit=off``). Locking, isolation and
    constraints are unchanged; the flush was most of an empty test's cost."""
    cursor = dbapi_connection.cursor()
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor.execute("PRAGMA synchronous=OFF")
    else:
        cursor.execute("SET synchronous_commit TO off")
        dbapi_connection.commit()
    cursor.close()


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key-not-for-production",
            "CREDENTIALS_KEY": TEST_CREDENTIALS_KEY,
            "SQLALCHEMY_DATABASE_URI": _database_url(tmp_path_factory.mktemp("db")),
            # The test database is built by its own role, whatever the shell has set.
            "MIGRATIONS_DATABASE_URL": None,
            # Cheap Argon2id parameters keep the suite fast; production uses the defaults.
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST_KIB": 8 * 1024,
            "ARGON2_PARALLELISM": 1,
        }
    )
    with app.app_context():
        event.listen(_db.engine, "connect", _skip_durable_commits)
        _db.engine.dispose()  # no pooled connection without the setting
        _reset_schema()
    yield app


def empty_all_tables() -> None:
    """Test-only cleanup. The audit log refuses DELETE (triggers, and RLS on PostgreSQL),
    so PostgreSQL gets TRUNCATE (which neither applies to) and SQLite has its audit
    triggers dropped and re-created around the DELETE. SQLite empties only the tables that
    have rows (one query finds them), so a test that wrote nothing pays almost nothing;
    PostgreSQL truncates every table, since row-level security could hide rows from such
    a check."""
    tables = list(reversed(_db.metadata.sorted_tables))
    with _db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(t.name for t in tables)} CASCADE"))
            return
        has_rows = connection.execute(
            text(
                "SELECT "
                + ", ".join(
                    f"EXISTS (SELECT 1 FROM {table.name}) AS t{index}"
                    for index, table in enumerate(tables)
                )
            )
        ).one()
        tables = [table for table, filled in zip(tables, has_rows, strict=True) if filled]
        if not tables:
            return
        triggers = connection.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        ).all()
        for name, _ in triggers:
            connection.execute(text(f"DROP TRIGGER {name}"))
        for table in tables:
            connection.execute(table.delete())
        for _, sql in triggers:
            connection.execute(text(sql))


@pytest.fixture
def db(app: Flask) -> Iterator:
    """The database in an app context, used as an operator would (full access under
    row-level security); every table is emptied and sign-in throttling reset after."""
    with app.app_context():
        use_database_role(OPERATOR)
        yield _db
        _db.session.rollback()
        _db.session.remove()
        empty_all_tables()
        limiter.reset()
        # Emptied tables restart the configuration revision at 0: answers cached under
        # the previous test's revisions must go with them.
        config_cache(app).forget()
        catalog_cache(app).forget()  # ingestion's snapshot of the catalog, likewise
        settled_sums(app).forget()  # and the settled rollup sums filed under late writes


@pytest.fixture
def dialect(db) -> str:
    return db.engine.dialect.name


class IsolatedClient(FlaskClient):
    """Runs each request in an empty context, so it gets its own app context, ``g`` and
    database session, as in production, even while the test holds an app context."""

    def open(self, *args, **kwargs):
        context = contextvars.Context()
        response = context.run(super().open, *args, **kwargs)
        if response.is_streamed:
            # A streamed body runs inside the request's context (stream_with_context):
            # read and close it there, as the server would.
            context.run(response.get_data)
            context.run(response.close)
        return response


@pytest.fixture
def client(app: Flask, db) -> FlaskClient:
    app.test_client_class = IsolatedClient
    return app.test_client()


@functools.cache
def _password_hash(password: str, time_cost: int, memory_cost: int, parallelism: int) -> str:
    return passwords.password_hasher().hash(password)


def _hash_once_per_session(password: str) -> str:
    """The app's own hash (same Argon2 parameters), computed once per password and
    parameters for the whole session: fixture users need a valid hash, not a fresh salt."""
    hasher = passwords.password_hasher()
    return _password_hash(password, hasher.time_cost, hasher.memory_cost, hasher.parallelism)


def make_user(email: str, role: str) -> User:
    """A user made by the real service, whose password hash is computed once per session."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "hash_password", _hash_once_per_session)
        return create_user(Actor.cli(), email, PASSWORD, role)


@pytest.fixture
def admin_user(db) -> User:
    return make_user("admin@example.com", ROLE_ADMIN)


@pytest.fixture
def viewer_user(db) -> User:
    return make_user("viewer@example.com", ROLE_VIEWER)


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The token a browser would read from the page's meta tag."""
    page = client.get(path).get_data(as_text=True)
    match = CSRF_META.search(page)
    assert match, f"no csrf-token meta tag on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD):
    token = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def admin_client(client: FlaskClient, admin_user: User) -> FlaskClient:
    response = sign_in(client, admin_user.email)
    assert response.status_code == 302
    return client


@pytest.fixture
def viewer_client(client: FlaskClient, viewer_user: User) -> FlaskClient:
    response = sign_in(client, viewer_user.email)
    assert response.status_code == 302
    return client


def totp_code(secret: str, at: float | None = None) -> str:
    """The code an authenticator app shows for ``secret`` at ``at`` (default now)."""
    import time

    import pyotp

    return pyotp.TOTP(secret).at(int(time.time() if at is None else at))


def enrol_mfa(user: User) -> str:
    """Turn on TOTP for ``user`` with a code of the previous 30-second step, so the
    current step's code is still unused; returns the secret."""
    import time

    from webapp.services.identity import mfa

    secret = mfa.new_secret()
    mfa.enable(Actor.cli(), user, secret, totp_code(secret, time.time() - 30))
    return secret
