"""Recording usage: validation, pricing, and the rollup kept equal to the raw rows."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.spending_data import at, build_dataset, event
from webapp.extensions import db
from webapp.models import AIModel, UsageLog
from webapp.models.rollup import BUCKET_COLUMNS, NO_REFERENCE, latency_bucket
from webapp.models.types import utc_day
from webapp.services.core.errors import ValidationFailed
from webapp.services.usage.reads import percentile_from_buckets
from webapp.services.usage.recording import record_usage
from webapp.services.usage.rollup import KEY_COLUMNS, ROLLUP, recompute_rollup

D = Decimal


def count(table) -> int:
    return db.session.scalar(select(func.count()).select_from(table))


def test_cost_is_computed_from_prices_and_rounded_half_even(db):
    provider = factories.provider("p")
    odd = factories.model(
        provider, "odd", input_price_per_million=D("1.5"), output_price_per_million=D(0)
    )
    even = factories.model(
        provider, "even", input_price_per_million=D("2.5"), output_price_per_million=D(0)
    )
    db.session.commit()
    record_usage(
        [
            {"model_id": str(odd.id), "input_tokens": 1},  # 0.0000015 → 0.000002
            {"model_id": str(even.id), "input_tokens": 1},  # 0.0000025 → 0.000002
            {"model_id": str(even.id), "input_tokens": 1, "cost_usd": "0.5"},  # given: kept
        ]
    )
    costs = db.session.scalars(select(UsageLog.cost_usd).order_by(UsageLog.cost_usd)).all()
    assert costs == [D("0.000002"), D("0.000002"), D("0.500000")]
    assert db.session.scalars(select(UsageLog.tokens_used)).all() == [1, 1, 1]


def test_a_bad_event_is_named_and_nothing_is_recorded(db):
    data = build_dataset()
    before = (count(UsageLog), count(ROLLUP))
    with pytest.raises(ValidationFailed) as caught:
        record_usage(
            [
                event(data.chatbot, data.gpt, at(19, 1), 10, 10),
                {
                    "feature_id": str(uuid.uuid4()),
                    "model_id": "x",
                    "input_tokens": -1,
                    "output_tokens": 1.5,
                    "status": "done",
                    "created_at": "2026-11-19T10:00:00",
                    "cost_usd": 0.1234567,
                    "request_data": [],
                },
                {"input_tokens": 5},
                "not an event",
            ]
        )
    assert caught.value.errors == {
        "events[1].feature_id": "does not exist",
        "events[1].model_id": "must be a UUID",
        "events[1].input_tokens": "must be a whole number from 0",
        "events[1].output_tokens": "must be a whole number from 0",
        "events[1].status": "must be one of pending, success, error, timeout",
        "events[1].created_at": "must be an ISO 8601 timestamp with a time zone",
        "events[1].cost_usd": "must have at most 6 decimal places",
        "events[1].request_data": "must be an object",
        "events[2].cost_usd": "is required when the event names no model",
        "events[3]": "must be an object",
    }
    assert (count(UsageLog), count(ROLLUP)) == before


def test_rollup_rows_roll_back_with_the_raw_rows(db):
    data = build_dataset()
    before = (count(UsageLog), count(ROLLUP))
    from webapp.services.usage.recording import add_usage

    add_usage([event(data.chatbot, data.gpt, at(1, 1), 10, 10)])
    assert count(ROLLUP) == before[1] + 1
    db.session.rollback()
    assert (count(UsageLog), count(ROLLUP)) == before


def _raw_sums() -> dict:
    nil = NO_REFERENCE
    rows = db.session.execute(
        select(
            utc_day(UsageLog.created_at),
            UsageLog.feature_id,
            UsageLog.model_id,
            AIModel.provider_id,
            UsageLog.status,
            UsageLog.environment,
            func.count(),
            func.sum(UsageLog.tokens_used),
            func.sum(UsageLog.cost_usd),
            func.sum(UsageLog.response_time_ms),
        )
        .outerjoin(AIModel, AIModel.id == UsageLog.model_id)
        .group_by(
            utc_day(UsageLog.created_at),
            UsageLog.feature_id,
            UsageLog.model_id,
            AIModel.provider_id,
            UsageLog.status,
            UsageLog.environment,
        )
    )
    return {
        (day, f or nil, m or nil, p or nil, s, env): (n, tokens, cost, ms)
        for day, f, m, p, s, env, n, tokens, cost, ms in rows
    }


def _rollup_sums() -> dict:
    # A key's figures are the sum over its shards.
    c = ROLLUP.c
    keys = [c[k] for k in KEY_COLUMNS if k != "shard"]
    rows = db.session.execute(
        select(
            *keys,
            func.sum(c.request_count),
            func.sum(c.tokens_used),
            func.sum(c.cost_usd),
            func.sum(c.response_time_ms_sum),
        ).group_by(*keys)
    )
    return {tuple(row[:6]): tuple(row[6:]) for row in rows}


def test_reconciliation_rollup_equals_raw_to_the_micro_dollar_after_random_inserts(db):
    data = build_dataset()
    rng = random.Random(20261126)
    features = [data.chatbot, data.search, None]
    models = [data.gpt, data.mini, data.claude, data.vision, None]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for _ in range(5):  # several transactions, so rows for one key meet in the upsert
        events = []
        for _ in range(rng.randint(50, 400)):
            model = rng.choice(models)
            item = event(
                rng.choice(features),
                model,
                start + timedelta(seconds=rng.randint(0, 20 * 86_400)),
                rng.randint(0, 5_000),
                rng.randint(0, 5_000),
                status=rng.choice(["success", "success", "error", "timeout", "pending"]),
                response_time_ms=rng.choice([0, 49, 50, 999, 1000, 59_999, 60_000, 250_000]),
            )
            if model is None or rng.random() < 0.3:
                item["cost_usd"] = str(D(rng.randint(0, 9_999_999)).scaleb(-6))
            events.append(item)
        record_usage(events)

    raw = _raw_sums()
    assert _rollup_sums() == raw
    total_raw = db.session.scalar(select(func.sum(UsageLog.cost_usd)))
    total_rollup = db.session.scalar(select(func.sum(ROLLUP.c.cost_usd)))
    assert total_rollup == total_raw
    buckets = db.session.execute(select(*[func.sum(ROLLUP.c[n]) for n in BUCKET_COLUMNS])).one()
    assert sum(buckets) == count(UsageLog)

    # A rebuild from raw rows reproduces the same rollup, entirely or from a day on.
    recompute_rollup(date(2026, 11, 10))
    assert _rollup_sums() == raw
    recompute_rollup()
    db.session.commit()
    assert _rollup_sums() == raw


def test_latency_buckets_and_percentiles():
    assert latency_bucket(0) == 0
    assert latency_bucket(49) == 0
    assert latency_bucket(50) == 1
    assert latency_bucket(60_000) == len(BUCKET_COLUMNS) - 1
    buckets = [0] * len(BUCKET_COLUMNS)
    buckets[latency_bucket(120)] = 100  # all in [100, 150)
    assert percentile_from_buckets(buckets, 0.95) == 148  # 100 + 50 × 0.95 → 147.5 → 148
    assert percentile_from_buckets([0] * len(BUCKET_COLUMNS), 0.95) is None


def test_recorded_rows_say_where_their_cost_came_from(db):
    provider = factories.provider("p")
    model = factories.model(provider, "m")
    db.session.commit()
    record_usage(
        [
            {"model_id": str(model.id), "input_tokens": 10},
            {"model_id": str(model.id), "input_tokens": 10, "cost_usd": "0.5"},
            {"cost_usd": "0.25"},
        ]
    )
    sources = db.session.execute(
        select(UsageLog.cost_usd, UsageLog.cost_source).order_by(UsageLog.cost_usd)
    ).all()
    assert [tuple(s) for s in sources] == [
        (D("0.000300"), "catalog"),
        (D("0.25"), "reported"),
        (D("0.5"), "reported"),
    ]
