"""Spending breakdown, trends and recommendations against the fixed dataset of
tests/spending_data.py, whose expected values are computed by hand there."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete

from tests.spending_data import TODAY, at, build_dataset, event
from webapp.extensions import db
from webapp.models import UsageLog
from webapp.services.core.errors import ValidationFailed
from webapp.services.spending.analytics import shares_of, spending_breakdown, spending_trends
from webapp.services.spending.recommendations import cost_recommendations, repriced_cost
from webapp.services.usage.recording import record_usage
from webapp.services.usage.rollup import ROLLUP

D = Decimal


@pytest.fixture
def data(db):
    return build_dataset()


def test_breakdown_totals_by_feature_model_provider_and_day(data):
    result = spending_breakdown(date(2026, 11, 17), TODAY)

    assert result.total_spend == D("5.750000")
    assert result.total_requests == 6
    assert [(f.feature_name, f.amount, f.percentage) for f in result.by_feature] == [
        ("Chatbot", D("3.900000"), D("67.83")),
        ("Search", D("1.750000"), D("30.43")),
        ("(no feature)", D("0.100000"), D("1.74")),
    ]
    assert [
        (m.model_name, m.provider_name, m.amount, m.request_count) for m in result.by_model
    ] == [
        ("Claude", "Anthropic", D("2.550000"), 2),
        ("GPT", "OpenAI", D("2.100000"), 2),
        ("Mini", "OpenAI", D("1.000000"), 1),
        ("(no model)", "(no provider)", D("0.100000"), 1),
    ]
    assert [(p.provider_name, p.amount) for p in result.by_provider] == [
        ("OpenAI", D("3.100000")),
        ("Anthropic", D("2.550000")),
        ("(no provider)", D("0.100000")),
    ]
    assert [(d.date.isoformat(), d.amount) for d in result.by_day] == [
        ("2026-11-17", D("0.000000")),
        ("2026-11-18", D("2.350000")),
        ("2026-11-19", D("0.600000")),
        ("2026-11-20", D("2.800000")),
    ]
    for rows in (result.by_feature, result.by_model, result.by_provider):
        assert sum(r.percentage for r in rows) == D("100.00")
    assert result.by_day_and_feature["Chatbot"] == [
        D("0.000000"), D("1.600000"), D("0.500000"), D("1.800000")
    ]  # fmt: skip


def test_every_whole_day_is_read_from_the_rollup_today_included(data):
    # Without any raw row the answer stays the same: the rollup alone answers.
    db.session.execute(delete(UsageLog))
    db.session.commit()
    assert spending_breakdown(date(2026, 11, 17), TODAY).total_spend == D("5.750000")


def test_raw_from_reads_the_same_answer_from_raw_rows(data):
    from_rollup = spending_breakdown(date(2026, 11, 17), TODAY)
    from_raw = spending_breakdown(date(2026, 11, 17), TODAY, raw_from=date(2026, 11, 17))
    assert from_raw == from_rollup
    db.session.execute(delete(ROLLUP))
    db.session.commit()
    assert spending_breakdown(date(2026, 11, 17), TODAY, raw_from=date(2026, 11, 17)) == from_rollup


def test_range_bounds_are_inclusive_utc_dates_and_datetimes_count_for_their_utc_day(data):
    assert spending_breakdown("2026-11-18", "2026-11-19").total_spend == D("2.950000")
    assert spending_breakdown("2026-11-19", "2026-11-19").total_spend == D("0.600000")
    # 23:30 at UTC-2 is 01:30 UTC the next day.
    result = spending_breakdown("2026-11-18T23:30:00-02:00", "2026-11-19")
    assert result.period_start == date(2026, 11, 19)
    assert result.total_spend == D("0.600000")
    # A timestamp without a time zone is read as UTC.
    assert spending_breakdown("2026-11-19T23:59:00", "2026-11-19").period_start == date(
        2026, 11, 19
    )


def test_an_empty_range_has_every_day_at_zero_and_no_shares(data):
    result = spending_breakdown(date(2026, 10, 1), date(2026, 10, 3))
    assert result.total_spend == D("0")
    assert [d.amount for d in result.by_day] == [D("0")] * 3
    assert result.by_feature == [] and result.by_model == []


@pytest.mark.parametrize(
    ("start", "end", "errors"),
    [
        (None, "2026-11-01", {"start_date": "is required"}),
        ("2026-11-02", "2026-11-01", {"end_date": "must be on or after start_date"}),
        (
            "yesterday",
            "2026-11-01",
            {"start_date": "must be a date (YYYY-MM-DD) or an ISO 8601 timestamp"},
        ),
        ("2000-01-01", "2026-11-01", {"end_date": "the range may span at most 1830 days"}),
    ],
)
def test_breakdown_refuses_wrong_dates(db, start, end, errors):
    with pytest.raises(ValidationFailed) as caught:
        spending_breakdown(start, end)
    assert caught.value.errors == errors


def test_shares_always_add_up_to_100():
    assert shares_of([D(1), D(1), D(1)]) == [D("33.34"), D("33.33"), D("33.33")]
    assert shares_of([D("0.000001"), D(0)]) == [D("100.00"), D("0.00")]
    assert shares_of([D(0), D(0)]) == [D("0.00"), D("0.00")]


def test_money_is_exact_even_where_floats_are_not(db):
    data = build_dataset()
    record_usage(
        [
            {"created_at": at(17, 1), "cost_usd": "0.1", "feature_id": str(data.chatbot.id)},
            {"created_at": at(17, 2), "cost_usd": "0.2", "feature_id": str(data.chatbot.id)},
        ]
    )
    day = spending_breakdown("2026-11-17", "2026-11-17")
    assert day.total_spend == D("0.3") and str(day.total_spend) == "0.300000"


# --- trends ---------------------------------------------------------------------------


def _daily(db, amounts_by_days_ago: dict[int, str], feature=None):
    """One request per day ``n`` days before TODAY with the given cost."""
    record_usage(
        [
            {
                "created_at": datetime.combine(TODAY - timedelta(days=n), datetime.min.time(), UTC)
                + timedelta(hours=6),
                "cost_usd": amount,
                "feature_id": str(feature.id) if feature else None,
            }
            for n, amount in amounts_by_days_ago.items()
        ]
    )


@pytest.mark.parametrize(
    ("recent", "trend", "change"),
    [
        ("1.20", "increasing", D("20.00")),
        ("1.11", "increasing", D("11.00")),
        ("1.10", "stable", D("10.00")),  # exactly +10 % is still stable
        ("0.90", "stable", D("-10.00")),
        ("0.80", "decreasing", D("-20.00")),
    ],
)
def test_trend_compares_the_last_7_complete_days_with_the_7_before(db, recent, trend, change):
    _daily(db, {n: "1.00" for n in range(8, 15)} | {n: recent for n in range(1, 8)})
    _daily(db, {0: "50.00"})  # today is partial: left out of the trend
    result = spending_trends(30, today=TODAY)
    assert result.trend == trend
    assert result.change_percentage == change
    assert result.last_7_days == D(recent) * 7
    assert result.previous_7_days == D("7.00")
    assert len(result.daily_data) == 30
    assert result.daily_data[-1].date == TODAY - timedelta(days=1)
    total = D(recent) * 7 + D("7.00")
    assert result.total_spend == total
    assert result.daily_average == (total / 30).quantize(D("0.000001"))
    assert result.forecast["next_30_days"] == total.quantize(D("0.000001"))


def test_a_short_trend_window_still_counts_the_14_days_it_compares(db):
    _daily(db, {n: "1.00" for n in range(1, 15)})
    result = spending_trends(5, today=TODAY)
    assert result.trend == "stable" and len(result.daily_data) == 5


def test_trend_needs_seven_days_with_data(db):
    _daily(db, {n: "1.00" for n in range(1, 7)})  # six days
    result = spending_trends(30, today=TODAY)
    assert result.trend == "insufficient_data"
    assert result.forecast is None
    assert result.days_with_data == 6
    _daily(db, {7: "1.00"})
    assert spending_trends(30, today=TODAY).trend == "increasing"  # nothing the week before


@pytest.mark.parametrize("days", [0, 366, -1, "7", True])
def test_trend_days_must_be_1_to_365(db, days):
    with pytest.raises(ValidationFailed) as caught:
        spending_trends(days)
    assert caught.value.errors == {"days": "must be a whole number from 1 to 365"}


# --- recommendations --------------------------------------------------------------------


def test_repricing_uses_the_candidate_models_prices(data):
    assert repriced_cost(data.mini, 250_000, 120_000, 3) == D("0.490000")
    assert repriced_cost(data.claude, 250_000, 120_000, 3) == D("2.550000")
    assert repriced_cost(data.vision, 0, 0, 4) == D("0.040000")  # per image, one per request


def test_recommendations_reprice_each_features_usage_and_apply_the_seed_rules(data):
    found = cost_recommendations(today=TODAY)
    assert [
        (
            r["id"].rsplit("-", 1)[0] if r["type"] == "model_switch" else r["id"],
            r["potential_savings"]["amount"],
        )
        for r in found
    ] == [
        (f"model-switch-{data.chatbot.id}", D("3.410000")),
        (f"feature-optimization-{data.chatbot.id}", D("0.780000")),
        (f"model-switch-{data.search.id}", D("0.530000")),
    ]
    chatbot = found[0]
    assert chatbot["title"] == "Serve Chatbot with Mini"
    assert chatbot["potential_savings"] == {
        "amount": D("3.410000"),
        "percentage": D("87.44"),
        "timeframe": "monthly",
    }
    assert chatbot["effort"] == "moderate"  # part of its traffic moves off Anthropic
    assert chatbot["details"]["current_setup"]["monthly_cost"] == D("3.900000")
    alternatives = chatbot["details"]["recommended_setup"]["alternatives"]
    assert [(a["model"], a["monthly_cost"]) for a in alternatives] == [
        ("Mini", D("0.490000")),
        ("Claude", D("2.550000")),
    ]
    assert set(found[0]) == {
        "id", "type", "title", "description", "potential_savings", "impact", "effort", "details"
    }  # fmt: skip
    assert set(found[0]["details"]) == {
        "current_setup",
        "recommended_setup",
        "assumptions",
        "risks",
    }


def test_no_recommendation_when_the_cheapest_model_already_serves_everything(db):
    data = build_dataset()
    db.session.execute(delete(UsageLog))
    db.session.execute(delete(ROLLUP))
    db.session.commit()
    record_usage([event(data.search, data.mini, at(19, 1), 1000, 1000)])
    assert [r["type"] for r in cost_recommendations(today=TODAY)] == ["usage_reduction"]


def test_unavailable_models_and_inactive_providers_are_not_suggested(data):
    data.mini.status = "deprecated"
    db.session.commit()
    found = cost_recommendations(today=TODAY)
    switch = next(r for r in found if r["id"].startswith(f"model-switch-{data.chatbot.id}"))
    assert switch["details"]["recommended_setup"]["model"] == "Claude"
    data.anthropic.status = "inactive"
    db.session.commit()
    assert not [r for r in cost_recommendations(today=TODAY) if r["type"] == "model_switch"]


def test_recommendations_reuse_a_known_breakdown_only_of_their_own_30_days(data):
    """The spending page hands its breakdown over: the same 30 days give the same
    recommendations without a second breakdown; any other range is not taken for them."""

    own = spending_breakdown(TODAY - timedelta(days=29), TODAY)
    assert cost_recommendations(today=TODAY, known=own) == cost_recommendations(today=TODAY)
    wrong = spending_breakdown(TODAY - timedelta(days=29), TODAY - timedelta(days=20))
    assert cost_recommendations(today=TODAY, known=wrong) == cost_recommendations(today=TODAY)
    # A doctored breakdown of the right days is used as given (so the reuse is real).
    emptied = replace(own, by_feature=[], by_model=[], by_provider=[])
    assert cost_recommendations(today=TODAY, known=emptied) != cost_recommendations(today=TODAY)
    # The model-switch rule re-prices the breakdown's (feature, model) sums too.
    assert any(r["type"] == "model_switch" for r in cost_recommendations(today=TODAY, known=own))
    unpriced = replace(own, by_feature_and_model={})
    assert not [
        r for r in cost_recommendations(today=TODAY, known=unpriced) if r["type"] == "model_switch"
    ]


def test_recommendations_read_one_environment(data):
    """The dataset's usage is all in production: staging has nothing to recommend."""
    assert cost_recommendations(today=TODAY, environment="production") == cost_recommendations(
        today=TODAY
    )
    assert cost_recommendations(today=TODAY, environment="staging") == []
    with pytest.raises(ValidationFailed) as caught:
        cost_recommendations(today=TODAY, environment="moon")
    assert "environment" in caught.value.errors
