"""Migration 0017_outcomes: the hourly outcomes are created filled from the hourly rollup
(the usage recorded before them), equal to the raw rows; the downgrade drops them and
leaves the rollups and the raw rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from types import SimpleNamespace

from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select

from tests.services.test_hourly_outcomes import complete_some_pending
from tests.services.test_hourly_rollup import random_usage
from tests.spending_data import build_dataset
from tests.usage_rows import (
    assert_hourly_outcomes_equal_raw,
    assert_hourly_rollup_equals_raw,
    hourly_outcome_sums,
    hourly_rollup_sums,
)
from webapp.models import UsageLog
from webapp.services.usage.rollup import OUTCOMES


def test_the_hourly_outcomes_are_filled_from_the_hourly_rollup_and_dropped_again(app, db):
    data = build_dataset()
    rng = random.Random(17)
    random_usage(data, rng, datetime(2026, 11, 20, 9, 30, tzinfo=UTC), 30)
    # Completed pending rows leave keys summing to zero in the hourly rollup (minus in one
    # shard, plus in another): the fill must not turn them into outcomes.
    assert complete_some_pending(data, rng, 0.7) > 10
    rows = db.session.scalar(select(func.count()).select_from(UsageLog))
    rollup = hourly_rollup_sums()
    db.session.commit()
    db.session.remove()
    downgrade(revision="0016_hourly")
    try:
        assert "ai_usage_hourly_outcomes" not in inspect(db.engine).get_table_names()
        assert hourly_rollup_sums() == rollup  # the rollup stays
    finally:
        upgrade()
    assert db.session.scalar(select(func.count()).select_from(UsageLog)) == rows
    filled = hourly_outcome_sums()
    assert len(filled) > 100  # many hours and keys, all of them filled
    assert {kind for _, kind, _, _ in filled} == {"feature", "model", "provider"}
    assert (
        db.session.scalar(select(func.count()).select_from(OUTCOMES).where(OUTCOMES.c.shard != 0))
        == 0
    )
    assert_hourly_outcomes_equal_raw()
    # The filled table takes the writers' upserts (same hour values, same key).
    names = ("chatbot", "search", "gpt", "mini", "claude", "vision")
    again = SimpleNamespace(**{name: db.session.merge(getattr(data, name)) for name in names})
    random_usage(again, random.Random(18), datetime(2026, 11, 21, 2, 0, tzinfo=UTC), 2)
    random_usage(again, random.Random(19), datetime(2026, 11, 20, 9, 30, tzinfo=UTC), 30)
    assert_hourly_outcomes_equal_raw()
    assert_hourly_rollup_equals_raw()
