"""PostgreSQL row-level security, seen by the application's own non-owner role.

`make test` creates that role and passes it as TEST_APP_DATABASE_URL; these tests are
skipped on SQLite (where the application's checks are the control)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from tests import factories
from tests.conftest import SEED_TABLES
from webapp.models import AuditLog

INSERT_FEATURE = (
    "INSERT INTO ai_features (id, name, display_name, model_type) "
    "VALUES (gen_random_uuid(), 'x', 'X', 'llm')"
)
INSERT_AUDIT = (
    "INSERT INTO platform_audit_logs (id, action, resource_type) "
    "VALUES (gen_random_uuid(), 'auth.login_failed', 'session')"
)
IS_FORCED = (
    "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(:t)"
)

RLS_TABLES = [
    *SEED_TABLES,
    "ai_usage_daily_rollup",
    "ai_usage_hourly_rollup",
    "ai_usage_hourly_outcomes",
    "ai_usage_rollup_revisions",
    "audit_event_windows",
    "user_sessions",
    "user_recovery_codes",
]  # and users: see test_users_rows_are_protected_too


@pytest.fixture
def app_engine(app, db, dialect):
    if dialect != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")
    url = os.environ.get("TEST_APP_DATABASE_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("TEST_APP_DATABASE_URL is not set: scripts/test.sh creates the app role")
        pytest.skip("TEST_APP_DATABASE_URL not set")
    from webapp.config import normalize_database_url

    result = app.test_cli_runner().invoke(
        args=["grant-app-access", url.split("://")[1].split(":")[0]]
    )
    assert result.exit_code == 0, result.output
    engine = create_engine(normalize_database_url(url), pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def some_rows(db):
    feature = factories.feature()
    provider = factories.provider()
    model = factories.model(provider)
    factories.assignment(feature, model)
    factories.prompt(feature_id=feature.id)
    factories.budget(feature_id=feature.id)
    db.session.add(AuditLog(action="seed", resource_type="test"))
    db.session.commit()
    return feature


def as_role(connection, role: str | None) -> None:
    if role is not None:
        connection.execute(text("SELECT set_config('app.user_role', :r, true)"), {"r": role})


def test_the_app_role_is_neither_owner_nor_superuser(app_engine):
    with app_engine.connect() as connection:
        (superuser,) = connection.execute(
            text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        ).one()
        owners = connection.execute(
            text("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")
        ).scalar()
    assert superuser is False and owners == 0


def test_rls_is_enabled_and_forced_on_every_protected_table(db, app_engine):
    rows = db.session.execute(
        text(IS_FORCED),
        {"t": RLS_TABLES},
    ).all()
    assert sorted(rows) == sorted((t, True, True) for t in RLS_TABLES)


def test_the_hourly_rollup_outcomes_and_revisions_are_protected_and_granted_like_the_daily_rollup(
    db, app_engine
):
    def treatment(table: str) -> tuple[list, list]:
        policies = db.session.execute(
            text(
                "SELECT replace(policyname, :t, ''), permissive, roles::text, cmd, qual, "
                "with_check FROM pg_policies WHERE tablename = :t ORDER BY 1"
            ),
            {"t": table},
        ).all()
        grants = db.session.execute(
            text(
                "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
                "WHERE table_name = :t ORDER BY 1, 2"
            ),
            {"t": table},
        ).all()
        return policies, grants

    daily = treatment("ai_usage_daily_rollup")
    assert daily[0] and daily[1]  # policies for operators, viewers, applications; grants
    assert treatment("ai_usage_hourly_rollup") == daily
    assert treatment("ai_usage_hourly_outcomes") == daily
    assert treatment("ai_usage_rollup_revisions") == daily


def test_without_a_role_setting_nothing_is_visible_or_writable(app_engine, some_rows):
    with app_engine.connect() as connection:
        for table in RLS_TABLES:
            assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
        with pytest.raises(DBAPIError, match="row-level security"):
            connection.execute(text(INSERT_FEATURE))


def test_viewer_reads_but_cannot_write(app_engine, some_rows):
    with app_engine.begin() as connection:
        as_role(connection, "viewer")
        for table in (
            "ai_features",
            "ai_models",
            "ai_prompts",
            "ai_spending_budgets",
            "platform_audit_logs",
        ):
            assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar() >= 1, table
        updated = connection.execute(text("UPDATE ai_features SET status = 'inactive'")).rowcount
        assert updated == 0  # no row is visible for update
    with app_engine.begin() as connection:
        as_role(connection, "viewer")
        with pytest.raises(DBAPIError, match="row-level security"):
            connection.execute(text(INSERT_FEATURE))


def test_admin_can_do_everything_but_rewrite_the_audit_log(app_engine, some_rows):
    with app_engine.begin() as connection:
        as_role(connection, "platform_admin")
        assert (
            connection.execute(text("UPDATE ai_features SET status = 'maintenance'")).rowcount == 1
        )
        connection.execute(text(INSERT_FEATURE))
        assert connection.execute(text("DELETE FROM ai_features WHERE name = 'x'")).rowcount == 1
        connection.execute(text(INSERT_AUDIT))
    with app_engine.begin() as connection:
        as_role(connection, "platform_admin")
        with pytest.raises(DBAPIError):
            connection.execute(text("DELETE FROM platform_audit_logs"))


def test_anonymous_may_only_append_audit_rows(app_engine, some_rows):
    with app_engine.begin() as connection:
        as_role(connection, "anonymous")
        assert connection.execute(text("SELECT count(*) FROM ai_features")).scalar() == 0
        connection.execute(text(INSERT_AUDIT))
        assert connection.execute(text("SELECT count(*) FROM platform_audit_logs")).scalar() == 0


def test_the_setting_does_not_survive_into_the_next_transaction(app_engine, some_rows):
    with app_engine.connect() as connection:  # pool_size=1: the same connection throughout
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        connection.commit()
        with connection.begin():
            as_role(connection, "platform_admin")
            assert connection.execute(text("SELECT count(*) FROM ai_features")).scalar() == 1
        with connection.begin():
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar() == pid
            assert connection.execute(
                text("SELECT current_setting('app.user_role', true)")
            ).scalar() in ("", None)
            assert connection.execute(text("SELECT count(*) FROM ai_features")).scalar() == 0


def test_the_application_sets_the_role_per_transaction(app, app_engine, some_rows, admin_user):
    """The whole app running as the non-owner role: pages work for a signed-in admin."""
    from tests.conftest import IsolatedClient, sign_in
    from webapp import create_app

    as_app_role = create_app(
        {
            **{
                k: app.config[k]
                for k in (
                    "SECRET_KEY",
                    "ARGON2_TIME_COST",
                    "ARGON2_MEMORY_COST_KIB",
                    "ARGON2_PARALLELISM",
                )
            },
            "SQLALCHEMY_DATABASE_URI": str(app_engine.url.render_as_string(hide_password=False)),
        }
    )
    as_app_role.test_client_class = IsolatedClient
    client = as_app_role.test_client()
    assert sign_in(client, admin_user.email).status_code == 302
    page = client.get("/features").get_data(as_text=True)
    assert "Chatbot" in page
    assert client.get("/audit").status_code == 200


def test_users_rows_are_protected_too(app_engine, db, admin_user, viewer_user):
    def as_user(connection, role, user_id):
        connection.execute(
            text(
                "SELECT set_config('app.user_role', :r, true), set_config('app.user_id', :u, true)"
            ),
            {"r": role, "u": str(user_id)},
        )

    with app_engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 0  # no setting
    with app_engine.begin() as connection:
        as_user(connection, "viewer", viewer_user.id)
        assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 2
        # Someone else's row: invisible to UPDATE.
        assert (
            connection.execute(
                text("UPDATE users SET display_name = 'x' WHERE id = :i"), {"i": admin_user.id}
            ).rowcount
            == 0
        )
        # One's own row: yes, but never one's own role.
        assert (
            connection.execute(
                text("UPDATE users SET display_name = 'me' WHERE id = :i"), {"i": viewer_user.id}
            ).rowcount
            == 1
        )
    with app_engine.begin() as connection:
        as_user(connection, "viewer", viewer_user.id)
        with pytest.raises(DBAPIError, match="only a platform_admin"):
            connection.execute(
                text("UPDATE users SET role = 'platform_admin' WHERE id = :i"),
                {"i": viewer_user.id},
            )
    with app_engine.begin() as connection:
        as_user(connection, "viewer", viewer_user.id)
        with pytest.raises(DBAPIError, match="row-level security"):
            connection.execute(
                text(
                    "INSERT INTO users (id, email, password_hash) "
                    "VALUES (gen_random_uuid(), 'n@e.x', 'h')"
                )
            )


COUNT_EVENT = (
    "INSERT INTO audit_event_windows (action, subject, window_start) "
    "VALUES (:action, 'address:192.0.2.1', now()) "
    "ON CONFLICT (action, subject, window_start) "
    "DO UPDATE SET event_count = audit_event_windows.event_count + 1 RETURNING event_count"
)


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        ("anonymous", "auth.login_throttled", True),
        ("anonymous", "auth.login_failed", True),  # failed sign-ins are counted too (0007)
        ("anonymous", "auth.forbidden", False),
        ("viewer", "auth.forbidden", True),
        ("platform_admin", "auth.forbidden", True),
        (None, "auth.login_throttled", False),
    ],
)
def test_event_counters_are_counted_by_whom_they_concern(app_engine, role, action, allowed):
    with app_engine.connect() as connection:
        as_role(connection, role)
        try:
            count = connection.execute(text(COUNT_EVENT), {"action": action}).scalar()
        except DBAPIError:
            assert not allowed
        else:
            assert allowed and count == 1
        connection.rollback()


def test_event_counters_cannot_be_deleted(app_engine, db):
    with app_engine.connect() as connection:
        as_role(connection, "platform_admin")
        connection.execute(text(COUNT_EVENT), {"action": "auth.forbidden"})
        deleted = connection.execute(text("DELETE FROM audit_event_windows")).rowcount
        assert deleted == 0
        connection.rollback()
