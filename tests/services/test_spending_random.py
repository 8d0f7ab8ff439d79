"""The spending breakdown (grouped by the database, from the rollup) equals a plain
computation over the raw rows, on random usage: many features, models and providers,
rows without a feature or model, every status, every environment, several shards, and a
feature deleted after their usage was recorded."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from tests import factories
from webapp.extensions import db
from webapp.models import ENVIRONMENTS, USAGE_STATUSES, AIModel, Feature, Provider, UsageLog
from webapp.services.spending.analytics import (
    NO_FEATURE,
    NO_MODEL,
    NO_PROVIDER,
    spending_breakdown,
    spending_trends,
)
from webapp.services.usage.reads import usage_by
from webapp.services.usage.recording import record_usage
from webapp.services.usage.settled import settled_sums

FIRST, LAST = date(2026, 10, 1), date(2026, 10, 20)
ZERO = Decimal("0.000000")


@pytest.fixture
def random_usage(db):
    chance = random.Random(1717)
    providers = [factories.provider(f"p{i}", display_name=f"Provider {i}") for i in range(3)]
    models = [
        factories.model(providers[i % 3], f"m{i}", display_name=f"Model {i}") for i in range(5)
    ]
    features = [factories.feature(f"f{i}", display_name=f"Feature {i}") for i in range(6)]
    db.session.commit()
    for _batch in range(8):  # one transaction each: the rollup deltas land in random shards
        events = []
        for _ in range(40):
            feature = chance.choice([*features, None])
            model = chance.choice([*models, None])
            moment = datetime.combine(
                FIRST - timedelta(days=2), datetime.min.time(), UTC
            ) + timedelta(seconds=chance.randrange(24 * 86400))
            events.append(
                {
                    "feature_id": str(feature.id) if feature else None,
                    "model_id": str(model.id) if model else None,
                    "created_at": moment,
                    "status": chance.choice(USAGE_STATUSES),
                    "environment": chance.choice(ENVIRONMENTS),
                    "cost_usd": str(Decimal(chance.randrange(0, 3_000_000)) / 1_000_000),
                    "input_tokens": chance.randrange(0, 2000),
                    "response_time_ms": chance.randrange(1, 5000),
                }
            )
        record_usage(events)
    # Deleted since: its id stays in the rollup and counts as "none", like the raw rows
    # (whose feature_id the foreign key set to NULL). A deleted model is left out: the
    # rollup still knows its provider, the raw rows no longer do.
    db.session.delete(db.session.get(Feature, features[0].id))
    db.session.commit()


def _from_raw_rows(environment: str | None) -> dict:
    """Sums per figure straight from ai_usage_logs, with names joined in."""
    query = (
        select(
            UsageLog.created_at,
            UsageLog.cost_usd,
            Feature.display_name,
            AIModel.display_name,
            Provider.display_name,
        )
        .outerjoin(Feature, Feature.id == UsageLog.feature_id)
        .outerjoin(AIModel, AIModel.id == UsageLog.model_id)
        .outerjoin(Provider, Provider.id == AIModel.provider_id)
        .where(
            UsageLog.created_at >= datetime.combine(FIRST, datetime.min.time(), UTC),
            UsageLog.created_at
            < datetime.combine(LAST + timedelta(days=1), datetime.min.time(), UTC),
        )
    )
    if environment:
        query = query.where(UsageLog.environment == environment)
    figures: dict[str, dict] = {
        name: defaultdict(lambda: [ZERO, 0])
        for name in ("feature", "model", "provider", "day", "day_feature")
    }
    for created_at, cost, feature, model, provider in db.session.execute(query):
        feature, provider = feature or NO_FEATURE, provider or NO_PROVIDER
        for figure, key in (
            ("feature", feature),
            ("model", (model or NO_MODEL, provider)),
            ("provider", provider),
            ("day", created_at.date()),
            ("day_feature", (created_at.date(), feature)),
        ):
            figures[figure][key][0] += cost
            figures[figure][key][1] += 1
    return figures


@pytest.mark.parametrize("environment", [None, "production"])
def test_breakdown_equals_the_raw_rows(random_usage, environment):
    expected = _from_raw_rows(environment)
    result = spending_breakdown(FIRST, LAST, environment=environment)

    assert {f.feature_name: [f.amount, f.request_count] for f in result.by_feature} == dict(
        expected["feature"]
    )
    assert {
        (m.model_name, m.provider_name): [m.amount, m.request_count] for m in result.by_model
    } == dict(expected["model"])
    assert {p.provider_name: [p.amount, p.request_count] for p in result.by_provider} == dict(
        expected["provider"]
    )
    days = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    assert [(d.date, d.amount, d.request_count) for d in result.by_day] == [
        (day, *expected["day"].get(day, [ZERO, 0])) for day in days
    ]
    assert result.total_spend == sum((v[0] for v in expected["day"].values()), ZERO)
    assert result.total_requests == sum(v[1] for v in expected["day"].values())
    assert result.by_day_and_feature == {
        name: [expected["day_feature"].get((day, name), [ZERO])[0] for day in days]
        for name in expected["feature"]
    }
    # The deleted feature really was in the data, and counts as "none".
    assert NO_FEATURE in expected["feature"] and "Feature 0" not in expected["feature"]


@pytest.mark.parametrize("environment", [None, "production"])
def test_the_feature_and_model_sums_equal_their_own_read(random_usage, environment):
    """What the cost recommendations re-price comes from the breakdown's one pass and
    equals the (feature, model) read they made themselves before: tokens included."""
    result = spending_breakdown(FIRST, LAST, environment=environment)
    own = usage_by(FIRST, LAST, ("feature_id", "model_id"), environment=environment)
    assert len(own) > 10
    assert result.by_feature_and_model == own


def test_without_the_chart_the_breakdown_reads_once_less_and_answers_the_same(random_usage):
    def read(with_chart: bool) -> tuple[object, int]:
        db.session.rollback()  # each read opens its own transaction (PostgreSQL: + set_config)
        settled_sums().forget()  # and reads every day from the database
        seen: list[str] = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            result = spending_breakdown(FIRST, LAST, with_chart=with_chart)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return result, len([s for s in seen if "FROM ai_usage_daily_rollup" in s])

    drawn, with_chart = read(True)
    tables_only, without = read(False)
    assert without == with_chart - 1
    assert tables_only.by_day_and_feature == {} and drawn.by_day_and_feature
    assert replace(tables_only, by_day_and_feature=drawn.by_day_and_feature) == drawn


def test_trends_read_the_same_days_as_the_breakdown(random_usage):
    trends = spending_trends(14, today=LAST + timedelta(days=1))
    breakdown = spending_breakdown(LAST - timedelta(days=13), LAST)
    assert trends.daily_data == breakdown.by_day


def test_the_chart_draws_the_largest_features_and_the_rest_as_one(db):
    features = [factories.feature(f"c{i}", display_name=f"Chart {i:02d}") for i in range(11)]
    db.session.commit()
    day = datetime.combine(FIRST, datetime.min.time(), UTC)
    events = [
        # Feature i spends i + 1 dollars on the first day and 1 cent on the second.
        {"feature_id": str(f.id), "created_at": day, "cost_usd": str(i + 1)}
        for i, f in enumerate(features)
    ] + [
        {"feature_id": str(f.id), "created_at": day + timedelta(days=1), "cost_usd": "0.01"}
        for f in features
    ]
    events.append({"feature_id": None, "created_at": day, "cost_usd": "100"})
    record_usage(events)
    db.session.delete(db.session.get(Feature, features[0].id))  # now "(no feature)"
    db.session.commit()

    result = spending_breakdown(FIRST, FIRST + timedelta(days=1))
    series = result.by_day_and_feature
    assert list(series) == [
        NO_FEATURE,  # 100 + 1 (the deleted feature's) + 0.01
        *[f"Chart {i:02d}" for i in range(10, 3, -1)],  # the next seven largest
        "Other features (3)",  # Chart 01, 02, 03
    ]
    assert series[NO_FEATURE] == [Decimal("101.000000"), Decimal("0.010000")]
    assert series["Chart 10"] == [Decimal("11.000000"), Decimal("0.010000")]
    assert series["Other features (3)"] == [Decimal("9.000000"), Decimal("0.030000")]
    per_day = [sum(amounts[i] for amounts in series.values()) for i in range(2)]
    assert per_day == [d.amount for d in result.by_day]
    assert len(result.by_feature) == 11  # the tables keep every feature
