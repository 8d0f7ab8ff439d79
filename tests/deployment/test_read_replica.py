"""Dashboards and the admin API's reads come from a real PostgreSQL streaming replica
(``DATABASE_READ_URL``); writes, sign-in and the application API stay on the primary.

scripts/test.sh starts the replica with ``pg_basebackup`` from the same PostgreSQL
installation and exports ``TEST_READ_DATABASE_URL``. The test pauses the replica's replay
to tell the two databases apart: what the replica serves is then visibly older."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests import factories
from tests.conftest import sign_in
from tests.usage_rows import insert_usage
from webapp import create_app
from webapp.models import Feature, UsageLog
from webapp.rls import OPERATOR, use_database_role
from webapp.services.apps.config_revision import bump_config_revision

USAGE = "/api/platform/ai-management/usage?limit=500"
REPLICA_CATCH_UP_SECONDS = 180


@pytest.fixture
def replica_url(db) -> str:
    url = os.environ.get("TEST_READ_DATABASE_URL")
    if db.engine.dialect.name != "postgresql":
        pytest.skip("a streaming replica is PostgreSQL's")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("TEST_READ_DATABASE_URL is not set: scripts/test.sh starts a replica")
        pytest.skip("no replica (scripts/test.sh starts one with the local cluster)")
    return url


@pytest.fixture
def replica_engine(replica_url) -> Iterator[sa.Engine]:
    engine = sa.create_engine(replica_url.replace("postgresql://", "postgresql+psycopg://", 1))
    yield engine
    with engine.connect() as connection:  # never leave the replica paused
        connection.execute(sa.text("SELECT pg_wal_replay_resume()"))
    engine.dispose()


@pytest.fixture
def replica_app(app, replica_url):
    return create_app(
        {
            key: app.config[key]
            for key in (
                "TESTING",
                "SECRET_KEY",
                "SQLALCHEMY_DATABASE_URI",
                "MIGRATIONS_DATABASE_URL",
                "ARGON2_TIME_COST",
                "ARGON2_MEMORY_COST_KIB",
                "ARGON2_PARALLELISM",
            )
        }
        | {"DATABASE_READ_URL": replica_url}
    )


def _caught_up(db, replica_engine: sa.Engine) -> None:
    """Wait until the replica has replayed everything the primary has written.

    The whole suite writes a lot of WAL (every test empties the tables) and the replica
    replays it on the same two cores, so it may be well behind when this file's turn
    comes: the wait is generous, and a timeout says where the replica stood."""
    target = db.session.scalar(sa.text("SELECT pg_current_wal_lsn()"))
    db.session.commit()
    deadline = time.monotonic() + REPLICA_CATCH_UP_SECONDS
    with replica_engine.connect() as connection:
        while True:
            behind = connection.scalar(
                sa.text(
                    "SELECT pg_wal_lsn_diff(CAST(:target AS pg_lsn), pg_last_wal_replay_lsn())"
                ),
                {"target": target},
            )
            connection.commit()
            if behind <= 0:
                return
            if time.monotonic() > deadline:
                state = connection.execute(
                    sa.text(
                        "SELECT pg_is_wal_replay_paused() AS paused,"
                        " pg_last_wal_receive_lsn() AS received,"
                        " pg_last_wal_replay_lsn() AS replayed,"
                        " now() - pg_last_xact_replay_timestamp() AS last_replay_age"
                    )
                ).one()
                pytest.fail(
                    f"the replica did not reach {target} in {REPLICA_CATCH_UP_SECONDS} s: "
                    f"{behind:,.0f} bytes behind, {dict(state._mapping)}"
                )
            time.sleep(0.05)


def _usage_rows(client) -> int:
    answer = client.get(USAGE)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["metadata"]["count"]


def _rows_on_primary(db) -> int:
    count = db.session.scalar(sa.select(sa.func.count()).select_from(UsageLog))
    db.session.commit()
    return count


def test_dashboards_read_from_the_replica_and_writes_go_to_the_primary(
    db, replica_app, replica_engine, admin_user
):
    feature = factories.feature("chatbot")
    db.session.commit()
    feature_id = feature.id
    now = datetime.now(UTC)
    row = {"feature_id": feature_id, "model_name": "gpt-4", "provider_name": "openai"}
    insert_usage([row | {"created_at": now - timedelta(minutes=5)}])
    _caught_up(db, replica_engine)

    on_replica = replica_app.test_client()
    assert sign_in(on_replica, admin_user.email).status_code == 302  # sessions: the primary
    assert _usage_rows(on_replica) == _rows_on_primary(db) == 1

    with replica_engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_wal_replay_pause()"))
    use_database_role(OPERATOR)  # a request ended the test's own database identity
    insert_usage([row | {"created_at": now - timedelta(minutes=1)}])

    # The replica is behind now: the dashboards' reads show it, the primary has both rows.
    assert _rows_on_primary(db) == 2
    assert _usage_rows(on_replica) == 1
    spending = on_replica.get("/spending")
    assert spending.status_code == 200
    # A write through the console that reads from the replica lands on the primary.
    page = on_replica.get("/features")
    assert page.status_code == 200
    token = on_replica.get("/").get_data(as_text=True).split('name="csrf-token" content="')[1]
    changed = on_replica.put(
        f"/api/platform/ai-management/features/{feature_id}",
        json={"status": "maintenance"},
        headers={"X-CSRFToken": token.split('"')[0]},
    )
    assert changed.status_code == 200, changed.get_json()
    use_database_role(OPERATOR)
    db.session.expire_all()
    assert db.session.get(Feature, feature_id).status == "maintenance"

    with replica_engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_wal_replay_resume()"))
    _caught_up(db, replica_engine)
    assert _usage_rows(on_replica) == 2


def test_the_application_api_reads_the_primary_even_with_a_replica(db, replica_app, replica_engine):
    feature = factories.feature("chatbot")
    _, secret = factories.api_key(name="reader", scopes=("config:read",))
    db.session.commit()
    _caught_up(db, replica_engine)
    with replica_engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_wal_replay_pause()"))
    use_database_role(OPERATOR)
    feature.status = "maintenance"
    bump_config_revision()
    db.session.commit()
    answer = replica_app.test_client().get(
        "/api/v1/config/chatbot", headers={"Authorization": f"Bearer {secret}"}
    )
    assert answer.status_code == 200
    assert answer.get_json()["data"]["feature"]["status"] == "maintenance"
