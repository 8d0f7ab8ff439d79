"""Row-level security on prompt_activations (PostgreSQL, the application's non-owner
role): admins do everything, viewers and applications read, nobody else sees a row."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests import factories
from tests.models.test_row_level_security import IS_FORCED, app_engine, as_role  # noqa: F401

CLOSE_ALL = "UPDATE prompt_activations SET deactivated_at = now()"


@pytest.fixture
def live_prompt(db):
    feature = factories.feature()
    prompt = factories.prompt(feature_id=feature.id, is_active=True, live_in=("staging",))
    db.session.commit()
    return prompt


def count(connection) -> int:
    return connection.execute(text("SELECT count(*) FROM prompt_activations")).scalar()


def test_rls_is_enabled_and_forced(db, app_engine):  # noqa: F811
    rows = db.session.execute(text(IS_FORCED), {"t": ["prompt_activations"]}).all()
    assert rows == [("prompt_activations", True, True)]


def test_without_a_role_nothing_is_visible(app_engine, live_prompt):  # noqa: F811
    with app_engine.connect() as connection:
        assert count(connection) == 0


@pytest.mark.parametrize("role", ["viewer", "application"])
def test_viewers_and_applications_read_but_cannot_write(app_engine, live_prompt, role):  # noqa: F811
    with app_engine.begin() as connection:
        as_role(connection, role)
        assert count(connection) == 2
        assert connection.execute(text(CLOSE_ALL)).rowcount == 0  # no row visible to update
    with app_engine.begin() as connection:
        as_role(connection, role)
        with pytest.raises(DBAPIError, match="row-level security"):
            connection.execute(
                text(
                    "INSERT INTO prompt_activations (id, name, environment, version, "
                    "deactivated_at) VALUES (gen_random_uuid(), 'x', 'staging', 1, now())"
                )
            )


def test_admins_change_rows(app_engine, live_prompt):  # noqa: F811
    with app_engine.begin() as connection:
        as_role(connection, "platform_admin")
        assert connection.execute(text(CLOSE_ALL)).rowcount == 2


def test_anonymous_sees_nothing(app_engine, live_prompt):  # noqa: F811
    with app_engine.begin() as connection:
        as_role(connection, "anonymous")
        assert count(connection) == 0
