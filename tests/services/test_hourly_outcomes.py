"""The hourly outcomes (successes and finished requests per hour, kind, key and
environment): every writer keeps them equal to what the raw rows give (random inserts,
pending → final, unknown-model rows attached to a new model, compaction, rebuilds), and
whole-day uptime read from them equals the raw rows' count (both databases)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from tests import factories
from tests.services.test_hourly_rollup import random_usage
from tests.spending_data import build_dataset
from tests.usage_rows import (
    assert_hourly_outcomes_equal_raw,
    assert_hourly_rollup_equals_raw,
    hourly_outcome_sums,
    insert_usage,
)
from webapp.extensions import db
from webapp.models import AIModel, UsageLog
from webapp.services.core.actor import Actor
from webapp.services.usage import windows
from webapp.services.usage.attach import attach_unknown_usage
from webapp.services.usage.compaction import compact_rollups
from webapp.services.usage.recording import ROLLUP_INPUTS, store_usage_rows
from webapp.services.usage.rollup import (
    OUTCOMES,
    add_to_rollup,
    rebuild_rollup,
    recompute_rollup,
)

NOW = datetime(2026, 11, 20, 14, 37, 12, tzinfo=UTC)


def provider_of() -> dict:
    return dict(db.session.execute(select(AIModel.id, AIModel.provider_id)).all())


def complete_some_pending(data, rng: random.Random, share: float) -> int:
    """Make pending rows final the way ingestion does (store_usage_rows' completions):
    a status, and sometimes another model (an event completed with a versioned model)."""
    pending = db.session.execute(
        select(*[UsageLog.__table__.c[name] for name in ROLLUP_INPUTS]).where(
            UsageLog.status == "pending"
        )
    ).all()
    completions = []
    for row in pending:
        if rng.random() >= share:
            continue
        old = row._asdict()
        model_id = rng.choice([data.gpt, data.claude]).id if rng.random() < 0.3 else None
        changes = {
            "status": rng.choice(["success", "success", "error", "timeout"]),
            "model_id": model_id or old["model_id"],  # every completion sets both columns
        }
        completions.append((old, changes))
    store_usage_rows([], provider_of(), completions=completions)
    db.session.commit()
    return len(completions)


def unknown_model_rows(feature, rng: random.Random, start: datetime, hours: int) -> None:
    """Rows naming a model the catalog does not know yet (model_id NULL)."""
    insert_usage(
        [
            {
                "feature_id": rng.choice([feature.id, None]),
                "model_name": "gpt-9",
                "provider_name": rng.choice(["openai", None]),
                "cost_source": "unpriced",
                "status": rng.choice(["success", "error", "timeout", "pending"]),
                "environment": rng.choice(["production", "staging"]),
                "created_at": start + timedelta(seconds=rng.randint(0, hours * 3600 - 1)),
            }
            for _ in range(80)
        ]
    )


def outcome_shard_rows(before: datetime) -> int:
    c = OUTCOMES.c
    counted = select(func.count()).select_from(OUTCOMES).where(c.hour < before, c.shard != 0)
    return db.session.scalar(counted) or 0


def assert_uptime_equals_raw_count(environments=(None, "staging")) -> None:
    since = datetime.combine(NOW.date() - timedelta(days=6), datetime.min.time(), tzinfo=UTC)
    until = since + timedelta(days=7)
    for group in ("feature_id", "model_id", "provider_id"):
        column = windows.GROUP_COLUMNS[group]
        for environment in environments:
            found = windows.usage_metrics_by(
                column, since, until, whole_days=True, environment=environment
            )
            raw = windows._uptime_by(
                column, windows.finished_conditions(column, since, until, None, environment)
            )
            assert raw
            assert {
                key: (m.hours_with_traffic, m.hours_up)
                for key, m in found.items()
                if m.total_requests
            } == raw


def test_every_writer_keeps_the_hourly_outcomes_equal_to_raw_rows(db):
    data = build_dataset()
    rng = random.Random(20261203)
    random_usage(data, rng, NOW - timedelta(hours=50), 52)
    sums = hourly_outcome_sums()
    # Not trivially equal: every kind, both environments, hours that were down.
    assert {kind for _, kind, _, _ in sums} == {"feature", "model", "provider"}
    assert {environment for *_, environment in sums} == {"production", "staging"}
    assert any(ok * 2 < finished for ok, finished in sums.values())
    assert_hourly_outcomes_equal_raw()

    # Pending → final: the row moves from no outcome to an outcome (maybe of another model).
    assert complete_some_pending(data, rng, 0.6) > 20
    assert_hourly_outcomes_equal_raw()
    assert_hourly_rollup_equals_raw()

    # Unknown-model rows attached to the model an admin adds: model and provider rows are
    # added, the feature rows stay.
    unknown_model_rows(data.chatbot, rng, NOW - timedelta(hours=30), 31)
    feature_rows_before = {k: v for k, v in hourly_outcome_sums().items() if k[1] == "feature"}
    assert_hourly_outcomes_equal_raw()
    model = factories.model(data.openai, "gpt-9")
    assert attach_unknown_usage(model) == 80
    db.session.commit()
    after = hourly_outcome_sums()
    assert {k: v for k, v in after.items() if k[1] == "feature"} == feature_rows_before
    assert any(kind == "model" and key == model.id for _, kind, key, _ in after)
    assert_hourly_outcomes_equal_raw()
    assert_hourly_rollup_equals_raw()

    # Compaction folds the closed hours' shards; the figures stay.
    closed = NOW.replace(minute=0, second=0, microsecond=0)
    assert outcome_shard_rows(closed) > 0
    result = compact_rollups(NOW)
    assert result.outcome_rows_folded > 0
    assert outcome_shard_rows(closed) == 0
    assert hourly_outcome_sums() == after
    assert_hourly_outcomes_equal_raw()
    assert_uptime_equals_raw_count()

    # Rebuilds from a day on and of everything recompute them from the raw rows.
    random_usage(data, rng, NOW - timedelta(hours=3), 4)
    db.session.execute(
        OUTCOMES.delete().where(OUTCOMES.c.hour >= datetime(2026, 11, 19, tzinfo=UTC))
    )
    recompute_rollup(date(2026, 11, 19))
    assert_hourly_outcomes_equal_raw()
    db.session.execute(OUTCOMES.update().values(finished=OUTCOMES.c.finished + 1))
    rebuild_rollup(Actor.cli())
    assert_hourly_outcomes_equal_raw()
    assert (
        db.session.scalar(select(func.count()).select_from(OUTCOMES).where(OUTCOMES.c.shard != 0))
        == 0
    )
    assert_uptime_equals_raw_count()


def test_rows_taken_out_again_leave_no_outcome_and_no_hour_of_traffic(db):
    """``add_to_rollup(sign=-1)`` in another shard than the one the rows went into: the
    outcomes of their keys sum to zero, and an hour whose requests were all taken out
    again is no hour with traffic."""
    data = build_dataset()
    quiet_hour = NOW.replace(hour=3, minute=0, second=0, microsecond=0)
    rows = insert_usage(
        [
            {
                "feature_id": data.search.id,
                "model_id": data.claude.id,
                "status": status,
                "created_at": quiet_hour + timedelta(minutes=minute),
            }
            for minute, status in ((5, "success"), (9, "success"), (20, "error"))
        ]
    )
    assert_hourly_outcomes_equal_raw()
    add_to_rollup(rows, provider_of(), sign=-1, shard=7)
    db.session.execute(UsageLog.__table__.delete().where(UsageLog.id.in_([r["id"] for r in rows])))
    db.session.commit()
    assert_hourly_outcomes_equal_raw()
    c = OUTCOMES.c
    zero_rows = db.session.scalar(
        select(func.count()).select_from(OUTCOMES).where(c.hour == quiet_hour, c.shard == 7)
    )
    assert zero_rows == 3  # feature, model and provider: minus in shard 7
    since = datetime.combine(NOW.date(), datetime.min.time(), tzinfo=UTC)
    found = windows.usage_metrics_by(
        windows.UsageLog.feature_id, since, since + timedelta(days=1), whole_days=True
    )
    assert found[data.search.id].hours_with_traffic == 1  # 11-20 09:00 (the dataset)
    assert_uptime_equals_raw_count(environments=(None,))
