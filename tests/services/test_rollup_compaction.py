"""Compacting the rollups: the shards of closed days and hours fold into shard 0 with
every key's figures unchanged; open periods keep their shards; late writes fold on the
next run; on PostgreSQL a writer running during the compaction loses nothing."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from tests import factories
from tests.usage_rows import (
    DEFAULTS,
    assert_hourly_outcomes_equal_raw,
    hourly_outcome_sums,
    hourly_rollup_sums,
    hourly_sums_of_raw_rows,
)
from webapp.extensions import db as _db
from webapp.models import UsageLog
from webapp.rls import OPERATOR, use_database_role
from webapp.services.usage.compaction import compact_rollups
from webapp.services.usage.rollup import (
    DAILY,
    HOURLY_ROLLUP,
    OUTCOMES,
    ROLLUP,
    SUM_COLUMNS,
    add_to_rollup,
)

NOW = datetime(2026, 11, 20, 14, 37, tzinfo=UTC)


def daily_rollup_sums() -> dict[tuple, tuple]:
    c = ROLLUP.c
    keys = [c[k] for k in DAILY.key_columns if k != "shard"]
    rows = _db.session.execute(
        select(*keys, *[func.sum(c[name]) for name in SUM_COLUMNS]).group_by(*keys)
    )
    return {tuple(row[: len(keys)]): tuple(row[len(keys) :]) for row in rows}


def shard_rows(table, column, before, *, closed: bool) -> int:
    moment = table.c[column]
    condition = (moment < before) if closed else (moment >= before)
    return (
        _db.session.scalar(
            select(func.count()).select_from(table).where(condition, table.c.shard != 0)
        )
        or 0
    )


def write(model, feature, created_at: datetime, shard: int, **fields) -> None:
    """One raw row and its rollup deltas in the given shard (what a writer does)."""
    row = DEFAULTS | {
        "id": uuid.uuid4(),
        "created_at": created_at,
        "feature_id": feature.id,
        "model_id": model.id,
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_usd": Decimal("0.001250"),
        "response_time_ms": 300,
    }
    row |= fields
    row["tokens_used"] = row["input_tokens"] + row["output_tokens"]
    _db.session.execute(UsageLog.__table__.insert(), [row])
    add_to_rollup([row], {model.id: model.provider_id}, shard=shard)


@pytest.fixture()
def spread(db):
    """Rows over three days (today included), each in a random shard of 16."""
    use_database_role(OPERATOR)
    rng = random.Random(7)
    model = factories.model(factories.provider("openai"), "gpt")
    features = [factories.feature("chatbot"), factories.feature("search")]
    db.session.commit()
    for _ in range(240):
        at = NOW - timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
        write(
            model,
            rng.choice(features),
            at,
            rng.randrange(16),
            status=rng.choice(["success", "success", "error", "timeout"]),
            response_time_ms=rng.randrange(10, 20_000),
            cost_usd=Decimal(rng.randrange(0, 10_000)) / 1_000_000,
        )
    # The current hour and today in several shards: open periods keep them.
    for shard in (3, 9, 12):
        write(model, features[0], NOW - timedelta(minutes=5), shard)
    db.session.commit()
    return model, features


def test_compaction_keeps_every_figure_and_folds_closed_shards(db, spread):
    daily_before, hourly_before = daily_rollup_sums(), hourly_rollup_sums()
    outcomes_before = hourly_outcome_sums()
    assert hourly_before == hourly_sums_of_raw_rows()
    assert_hourly_outcomes_equal_raw()
    rows_before = db.session.scalar(select(func.count()).select_from(HOURLY_ROLLUP))
    open_hour = NOW.replace(minute=0, second=0, microsecond=0)
    open_hourly = shard_rows(HOURLY_ROLLUP, "hour", open_hour, closed=False)
    open_daily = shard_rows(ROLLUP, "day", NOW.date(), closed=False)
    assert open_hourly >= 3 and open_daily >= 3

    result = compact_rollups(NOW)

    assert result.hourly_rows_folded > 0 and result.daily_rows_folded > 0
    assert daily_rollup_sums() == daily_before
    assert hourly_rollup_sums() == hourly_before == hourly_sums_of_raw_rows()
    assert shard_rows(HOURLY_ROLLUP, "hour", open_hour, closed=True) == 0
    assert shard_rows(ROLLUP, "day", NOW.date(), closed=True) == 0
    # The hourly outcomes fold with the hourly rollup, their figures unchanged too.
    assert result.outcome_rows_folded > 0
    assert hourly_outcome_sums() == outcomes_before
    assert shard_rows(OUTCOMES, "hour", open_hour, closed=True) == 0
    assert shard_rows(OUTCOMES, "hour", open_hour, closed=False) >= 3
    # Open periods are left as they were.
    assert shard_rows(HOURLY_ROLLUP, "hour", open_hour, closed=False) == open_hourly
    assert shard_rows(ROLLUP, "day", NOW.date(), closed=False) == open_daily
    # A closed hour holds one row per key now.
    closed_keys = {key for key in hourly_before if key[0] < open_hour}
    closed_rows = db.session.scalar(
        select(func.count()).select_from(HOURLY_ROLLUP).where(HOURLY_ROLLUP.c.hour < open_hour)
    )
    assert closed_rows == len(closed_keys) < rows_before
    # Nothing left to fold: a second run folds nothing and changes nothing.
    again = compact_rollups(NOW)
    assert again.as_dict() == {
        "daily_rows_folded": 0,
        "hourly_rows_folded": 0,
        "outcome_rows_folded": 0,
        "days": 0,
    }
    assert hourly_rollup_sums() == hourly_before


def test_a_late_write_into_a_closed_hour_is_folded_by_the_next_run(db, spread):
    model, features = spread
    compact_rollups(NOW)
    late = NOW - timedelta(days=1, minutes=13)
    write(model, features[1], late, 11, input_tokens=7, output_tokens=3)
    db.session.commit()
    assert hourly_rollup_sums() == hourly_sums_of_raw_rows()
    result = compact_rollups(NOW)
    assert (result.hourly_rows_folded, result.daily_rows_folded, result.days) == (1, 1, 2)
    assert result.outcome_rows_folded == 3  # the feature's, the model's, the provider's
    assert hourly_rollup_sums() == hourly_sums_of_raw_rows()
    assert_hourly_outcomes_equal_raw()


def test_flask_rollup_compact_prints_what_it_folded(app, db, spread):
    result = CliRunner().invoke(app.cli, ["rollup", "compact"], catch_exceptions=False)
    assert result.exit_code == 0
    assert (
        result.output.startswith("Rollups compacted: ")
        and "hourly shard rows folded" in result.output
    )
    db.session.expire_all()
    assert hourly_rollup_sums() == hourly_sums_of_raw_rows()
    again = CliRunner().invoke(app.cli, ["rollup", "compact"], catch_exceptions=False)
    assert "0 daily and 0 hourly shard rows folded (0 days)" in again.output
    assert "0 hourly outcome shard rows folded" in again.output
    assert "hourly outcome shard rows folded" in result.output


def test_writers_during_a_compaction_lose_nothing(app, db, spread, dialect):
    if dialect != "postgresql":
        pytest.skip("concurrent transactions: PostgreSQL (SQLite runs one writer at a time)")
    model, features = spread
    model_id, provider_id, feature_id = model.id, model.provider_id, features[0].id
    stop = threading.Event()
    failures: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        with app.app_context():
            use_database_role(OPERATOR)
            try:
                while not stop.is_set():
                    # Late events into closed hours, in every shard, as the compaction runs.
                    at = NOW - timedelta(hours=rng.randrange(2, 60), minutes=rng.randrange(60))
                    row = DEFAULTS | {
                        "id": uuid.uuid4(),
                        "created_at": at,
                        "feature_id": feature_id,
                        "model_id": model_id,
                        "input_tokens": rng.randrange(1, 500),
                        "output_tokens": 5,
                        "tokens_used": 0,
                        "cost_usd": Decimal("0.000100"),
                        "response_time_ms": rng.randrange(1, 9000),
                    }
                    row["tokens_used"] = row["input_tokens"] + 5
                    _db.session.execute(UsageLog.__table__.insert(), [row])
                    add_to_rollup([row], {model_id: provider_id}, shard=rng.randrange(16))
                    _db.session.commit()
            except BaseException as error:  # reported by the test
                failures.append(error)
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(6):
            compact_rollups(NOW)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert failures == []
    compact_rollups(NOW)
    db.session.expire_all()
    assert hourly_rollup_sums() == hourly_sums_of_raw_rows()
    assert shard_rows(HOURLY_ROLLUP, "hour", NOW.replace(minute=0), closed=True) == 0
    assert_hourly_outcomes_equal_raw()
    assert shard_rows(OUTCOMES, "hour", NOW.replace(minute=0), closed=True) == 0
