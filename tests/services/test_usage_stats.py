"""Aggregates computed by the database, against hand-computed values."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tests import factories
from webapp.models import UsageLog
from webapp.services import usage_stats


@pytest.fixture
def dataset(db):
    chatbot = factories.feature("chatbot", display_name="AI Chatbot")
    search = factories.feature("ai-search", display_name="AI Search")
    rows = [
        # feature, when, status, cost, tokens, ms
        (chatbot, datetime(2026, 11, 1, 0, 0, tzinfo=UTC), "success", "0.100000", 100, 100),
        (chatbot, datetime(2026, 11, 1, 23, 59, 59, tzinfo=UTC), "error", "0.200000", 50, 300),
        (search, datetime(2026, 11, 3, 12, 0, tzinfo=UTC), "success", "0.000001", 10, 20),
        (None, datetime(2026, 11, 3, 13, 0, tzinfo=UTC), "timeout", "0", 0, 30000),
        # Outside the range on both sides: must not count.
        (chatbot, datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), "success", "5", 1, 1),
        (chatbot, datetime(2026, 11, 4, 0, 0, tzinfo=UTC), "success", "7", 1, 1),
    ]
    for feature, when, status, cost, tokens, ms in rows:
        db.session.add(
            UsageLog(
                feature_id=feature.id if feature else None,
                created_at=when,
                status=status,
                cost_usd=Decimal(cost),
                tokens_used=tokens,
                response_time_ms=ms,
            )
        )
    db.session.commit()


def test_totals_for_a_range_of_whole_days(dataset):
    totals = usage_stats.usage_totals(date(2026, 11, 1), date(2026, 11, 3))
    assert totals.requests == 4
    assert totals.successes == 2
    assert totals.spend == Decimal("0.300001")
    assert totals.tokens == 160
    assert totals.avg_response_ms == 7605  # (100 + 300 + 20 + 30000) / 4
    assert totals.success_rate == Decimal("50.0")


def test_totals_of_an_empty_range(dataset):
    totals = usage_stats.usage_totals(date(2025, 1, 1), date(2025, 1, 2))
    assert (totals.requests, totals.spend, totals.success_rate) == (0, Decimal("0.000000"), None)


def test_spend_per_day_is_zero_filled_per_feature(dataset):
    series = usage_stats.spend_by_day_and_feature(date(2026, 11, 1), date(2026, 11, 3))
    zero = Decimal("0.000000")
    assert series == {
        "(no feature)": {date(2026, 11, 1): zero, date(2026, 11, 2): zero, date(2026, 11, 3): zero},
        "AI Chatbot": {
            date(2026, 11, 1): Decimal("0.300000"),
            date(2026, 11, 2): zero,
            date(2026, 11, 3): zero,
        },
        "AI Search": {
            date(2026, 11, 1): zero,
            date(2026, 11, 2): zero,
            date(2026, 11, 3): Decimal("0.000001"),
        },
    }


def test_features_sharing_a_display_name_stay_apart(db):
    first = factories.feature("search-a", display_name="Search")
    second = factories.feature("search-b", display_name="Search")
    when = datetime(2026, 11, 1, 12, tzinfo=UTC)
    for feature, cost in ((first, "1.000000"), (second, "2.000000")):
        db.session.add(
            UsageLog(
                feature_id=feature.id, created_at=when, status="success", cost_usd=Decimal(cost)
            )
        )
    db.session.commit()
    series = usage_stats.spend_by_day_and_feature(date(2026, 11, 1), date(2026, 11, 1))
    assert sorted(v[date(2026, 11, 1)] for v in series.values()) == [Decimal("1"), Decimal("2")]
    assert all(name.startswith("Search (") for name in series)
