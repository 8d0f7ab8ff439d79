"""The console's PostgreSQL connections run with jit = off (README "Scaling"), and keep it
after a rolled-back transaction (it is a connection option, not a SET)."""

from __future__ import annotations

import pytest
from sqlalchemy import text


def test_postgresql_connections_run_without_jit(db, dialect):
    if dialect != "postgresql":
        pytest.skip("jit is a PostgreSQL setting")
    assert db.session.scalar(text("SHOW jit")) == "off"
    db.session.rollback()
    assert db.session.scalar(text("SHOW jit")) == "off"
    with db.engine.connect() as connection:
        assert connection.scalar(text("SHOW jit")) == "off"
