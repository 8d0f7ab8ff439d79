"""Migration 0016_hourly: the hourly rollup is created filled from the usage recorded
before it, equal to the raw rows; the downgrade drops it and leaves the raw rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from types import SimpleNamespace

from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select

from tests.services.test_hourly_rollup import random_usage
from tests.spending_data import build_dataset
from tests.usage_rows import assert_hourly_rollup_equals_raw, hourly_rollup_sums
from webapp.models import UsageLog


def test_the_hourly_rollup_is_filled_from_earlier_usage_and_dropped_again(app, db):
    data = build_dataset()
    random_usage(data, random.Random(16), datetime(2026, 11, 20, 9, 30, tzinfo=UTC), 30)
    rows = db.session.scalar(select(func.count()).select_from(UsageLog))
    db.session.commit()
    db.session.remove()
    downgrade(revision="0012_forms")
    try:
        assert "ai_usage_hourly_rollup" not in inspect(db.engine).get_table_names()
    finally:
        upgrade()
    assert db.session.scalar(select(func.count()).select_from(UsageLog)) == rows
    assert len(hourly_rollup_sums()) > 30  # many hours and keys, all of them filled
    assert_hourly_rollup_equals_raw()
    # The filled rollup takes the writers' upserts (same hour values, same key).
    names = ("chatbot", "search", "gpt", "mini", "claude", "vision")
    again = SimpleNamespace(**{name: db.session.merge(getattr(data, name)) for name in names})
    random_usage(again, random.Random(17), datetime(2026, 11, 21, 2, 0, tzinfo=UTC), 2)
    assert_hourly_rollup_equals_raw()
