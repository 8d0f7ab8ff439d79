"""Row-level security on config_revision (PostgreSQL, the application's non-owner role):
admins (and operators) bump it, viewers and applications only read it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.models.test_row_level_security import IS_FORCED, app_engine, as_role  # noqa: F401
from webapp.services.apps.config_revision import bump_config_revision

BUMP = "UPDATE config_revision SET revision = revision + 1 WHERE id = 1"
READ = "SELECT revision FROM config_revision WHERE id = 1"


@pytest.fixture
def bumped(db):
    bump_config_revision()
    db.session.commit()


def test_rls_is_enabled_and_forced(db, app_engine):  # noqa: F811
    rows = db.session.execute(text(IS_FORCED), {"t": ["config_revision"]}).all()
    assert rows == [("config_revision", True, True)]


def test_without_a_role_nothing_is_visible(app_engine, bumped):  # noqa: F811
    with app_engine.connect() as connection:
        assert connection.execute(text(READ)).scalar() is None


@pytest.mark.parametrize("role", ["viewer", "application"])
def test_viewers_and_applications_read_but_cannot_bump(app_engine, bumped, role):  # noqa: F811
    with app_engine.begin() as connection:
        as_role(connection, role)
        assert connection.execute(text(READ)).scalar() == 1
        assert connection.execute(text(BUMP)).rowcount == 0


def test_admins_bump_it(app_engine, bumped):  # noqa: F811
    with app_engine.begin() as connection:
        as_role(connection, "platform_admin")
        assert connection.execute(text(BUMP)).rowcount == 1
        assert connection.execute(text(READ)).scalar() == 2
