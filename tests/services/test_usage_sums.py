"""Whole-day aggregates read from the rollup (the former usage_stats checks, now against
the services that replaced it), against hand-computed values."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tests import factories
from webapp.services.overview.dashboard import build_overview
from webapp.services.spending.analytics import spending_breakdown
from webapp.services.usage.reads import usage_by
from webapp.services.usage.recording import record_usage


def _record(rows):
    record_usage(
        [
            {
                "feature_id": str(feature.id) if feature else None,
                "created_at": when,
                "status": status,
                "cost_usd": cost,
                "input_tokens": tokens,
                "response_time_ms": ms,
            }
            for feature, when, status, cost, tokens, ms in rows
        ]
    )


@pytest.fixture
def dataset(db):
    chatbot = factories.feature("chatbot", display_name="AI Chatbot")
    search = factories.feature("ai-search", display_name="AI Search")
    db.session.commit()
    _record(
        [
            # feature, when, status, cost, tokens, ms
            (chatbot, datetime(2026, 11, 1, 0, 0, tzinfo=UTC), "success", "0.100000", 100, 100),
            (chatbot, datetime(2026, 11, 1, 23, 59, 59, tzinfo=UTC), "error", "0.200000", 50, 300),
            (search, datetime(2026, 11, 3, 12, 0, tzinfo=UTC), "success", "0.000001", 10, 20),
            (None, datetime(2026, 11, 3, 13, 0, tzinfo=UTC), "timeout", "0", 0, 30000),
            # Outside the range on both sides: must not count.
            (chatbot, datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), "success", "5", 1, 1),
            (chatbot, datetime(2026, 11, 4, 0, 0, tzinfo=UTC), "success", "7", 1, 1),
        ]
    )


def test_totals_for_a_range_of_whole_days(dataset):
    (totals,) = usage_by(date(2026, 11, 1), date(2026, 11, 3), ()).values()
    assert totals.requests == 4
    assert totals.cost == Decimal("0.300001")
    assert totals.tokens == 160
    kpis = {
        t.key: t.value
        for t in build_overview(
            "custom", "2026-11-01", "2026-11-03", now=datetime(2026, 11, 5, tzinfo=UTC)
        ).kpis.tiles
    }
    assert kpis["requests"] == 4
    assert kpis["spend"] == Decimal("0.300001")
    assert kpis["avg_latency"] == 7605  # (100 + 300 + 20 + 30000) / 4
    assert kpis["success_rate"] == Decimal("50.00")


def test_totals_of_an_empty_range(dataset):
    assert sum(s.requests for s in usage_by(date(2025, 1, 1), date(2025, 1, 2), ()).values()) == 0
    result = spending_breakdown(date(2025, 1, 1), date(2025, 1, 2))
    assert (result.total_requests, result.total_spend) == (0, Decimal("0.000000"))
    kpis = {
        t.key: t.value
        for t in build_overview(
            "custom", "2025-01-01", "2025-01-02", now=datetime(2026, 11, 5, tzinfo=UTC)
        ).kpis.tiles
    }
    assert (kpis["requests"], kpis["success_rate"]) == (0, None)


def test_spend_per_day_is_zero_filled_per_feature(dataset):
    series = spending_breakdown(date(2026, 11, 1), date(2026, 11, 3)).by_day_and_feature
    zero = Decimal("0.000000")
    assert series == {
        "AI Chatbot": [Decimal("0.300000"), zero, zero],
        "AI Search": [zero, zero, Decimal("0.000001")],
        "(no feature)": [zero, zero, zero],
    }


def test_features_sharing_a_display_name_stay_apart(db):
    first = factories.feature("search-a", display_name="Search")
    second = factories.feature("search-b", display_name="Search")
    db.session.commit()
    when = datetime(2026, 11, 1, 12, tzinfo=UTC)
    _record(
        [(first, when, "success", "1.000000", 0, 0), (second, when, "success", "2.000000", 0, 0)]
    )
    series = spending_breakdown(date(2026, 11, 1), date(2026, 11, 1)).by_day_and_feature
    assert sorted(v[0] for v in series.values()) == [Decimal("1"), Decimal("2")]
    assert all(name.startswith("Search (") for name in series)


def _daily_from_raw(column, key, start, days, environment=None):
    """(day, requests, successes, errors, cost, response ms) straight from raw rows: what
    the per-day series must equal whichever table it reads."""
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import UsageLog

    rows = db.session.scalars(select(UsageLog).where(column == key)).all()
    series = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        done = [
            r
            for r in rows
            if r.created_at.astimezone(UTC).date() == day
            and r.status != "pending"
            and environment in (None, r.environment)
        ]
        series.append(
            (
                day,
                len(done),
                sum(r.status == "success" for r in done),
                sum(r.status in ("error", "timeout") for r in done),
                sum((r.cost_usd for r in done), Decimal("0")),
                sum(r.response_time_ms or 0 for r in done),
            )
        )
    return series


@pytest.mark.parametrize("environment", [None, "staging"])
def test_per_day_series_of_a_feature_and_a_prompt_equal_their_raw_rows(db, environment):
    """The feature's series reads the daily rollup, the prompt's raw rows (the rollups do
    not hold prompts): both equal the raw rows, pending rows left out, on random data."""
    from webapp.models import UsageLog
    from webapp.services.catalog.features import usage_by_day
    from webapp.services.usage.windows import daily_usage

    chatbot = factories.feature("chatbot")
    other = factories.feature("ai-search")
    prompt = factories.prompt(name="greeting")
    db.session.commit()
    rng = random.Random(7)
    today = date(2026, 11, 20)
    events = []
    for _ in range(400):
        when = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(21 * 86400))
        events.append(
            {
                "feature_id": str(rng.choice([chatbot, other]).id),
                "prompt_id": str(prompt.id) if rng.random() < 0.5 else None,
                "created_at": when,
                "status": rng.choice(["success", "success", "error", "timeout", "pending"]),
                "environment": rng.choice(["production", "staging"]),
                "cost_usd": f"{rng.randrange(0, 10**6) / 10**6:.6f}",
                "input_tokens": rng.randrange(1, 500),
                "response_time_ms": rng.randrange(1, 5000),
            }
        )
    record_usage(events, now=datetime(2026, 11, 23, tzinfo=UTC))
    start = today - timedelta(days=13)

    def plain(series):
        return [
            (d.day, d.requests, d.successes, d.errors, d.cost, d.response_ms_sum) for d in series
        ]

    feature_series = plain(usage_by_day(chatbot.id, 14, today, environment))
    assert feature_series == _daily_from_raw(
        UsageLog.feature_id, chatbot.id, start, 14, environment
    )
    assert sum(day[1] for day in feature_series) > 0
    prompt_series = plain(daily_usage(UsageLog.prompt_id, prompt.id, 14, today, environment))
    assert prompt_series == _daily_from_raw(UsageLog.prompt_id, prompt.id, start, 14, environment)
