"""Budgets: validation, windows, every status, the boundaries of windows, history. Spend
comes from the fixed dataset (tests/spending_data.py): 5.75 in November, of which
2.35 on the 18th, 0.60 on the 19th and 2.80 today (the 20th); the chatbot's share 3.90."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.spending_data import NOW, build_dataset
from webapp.extensions import db
from webapp.models import AuditLog, Budget
from webapp.services.core.actor import Actor
from webapp.services.core.errors import NotFound, ValidationFailed
from webapp.services.spending import budgets

D = Decimal
ACTOR = Actor.cli()


@pytest.fixture
def data(db):
    return build_dataset()


def analysis(**fields):
    budget = factories.budget(**fields)
    db.session.commit()
    return budgets.analyse_budget(budget.id, NOW)


@pytest.mark.parametrize(
    ("period", "day", "window"),
    [
        ("daily", date(2026, 11, 20), (date(2026, 11, 20), date(2026, 11, 20))),
        ("weekly", date(2026, 11, 20), (date(2026, 11, 16), date(2026, 11, 22))),
        ("weekly", date(2026, 11, 16), (date(2026, 11, 16), date(2026, 11, 22))),
        ("monthly", date(2026, 12, 31), (date(2026, 12, 1), date(2026, 12, 31))),
        ("monthly", date(2028, 2, 10), (date(2028, 2, 1), date(2028, 2, 29))),
        ("quarterly", date(2026, 11, 20), (date(2026, 10, 1), date(2026, 12, 31))),
        ("quarterly", date(2026, 1, 1), (date(2026, 1, 1), date(2026, 3, 31))),
        ("yearly", date(2026, 11, 20), (date(2026, 1, 1), date(2026, 12, 31))),
    ],
)
def test_period_containing_a_day(period, day, window):
    assert budgets.period_containing(day, period) == window


def test_on_track_with_burn_rate_and_projection_to_the_window_end(data):
    result = analysis(budget_amount=D("10.00"), end_date=date(2026, 12, 31))
    assert (result.window_start, result.window_end, result.phase) == (
        date(2026, 11, 1),
        date(2026, 11, 30),
        "current",
    )
    assert result.current_spend == D("5.750000")
    assert (result.days_elapsed, result.days_remaining) == (20, 10)
    assert result.burn_rate == D("0.287500")
    assert result.projected_spend == D("8.625000")
    assert result.utilization == D("57.50")
    assert result.days_until_exhaustion == D("14.8")  # (10 − 5.75) / 0.2875
    assert result.status == "on_track"
    assert result.alerts == []


@pytest.mark.parametrize(
    ("amount", "threshold", "status"),
    [
        ("5.00", "0.80", "over_budget"),  # spend 5.75 > 5
        ("5.75", "0.80", "critical"),  # spent exactly the amount: not over, projected over
        ("8.00", "0.80", "critical"),  # projected 8.625 > 8
        ("9.00", "0.60", "warning"),  # 5.75 ≥ 5.40, projection 8.625 ≤ 9
        ("9.00", "0.70", "on_track"),  # 5.75 < 6.30
    ],
)
def test_status_precedence(data, amount, threshold, status):
    result = analysis(budget_amount=D(amount), alert_threshold=D(threshold))
    assert result.status == status
    assert bool(result.alerts) == (status != "on_track")  # every other status explains itself


def test_threshold_is_crossed_at_exactly_the_threshold(data):
    # 5.75 is exactly 0.5 × 11.50; projection 8.625 stays under 11.50.
    assert analysis(budget_amount=D("11.50"), alert_threshold=D("0.50")).status == "warning"
    assert analysis(budget_amount=D("11.50"), alert_threshold=D("0.51")).status == "on_track"


def test_alert_messages(data):
    assert analysis(budget_amount=D("5.00")).alerts[0] == "Over budget: $5.75 spent of $5.00"
    critical = analysis(budget_amount=D("8.00"))
    assert critical.alerts[0] == "Projected to reach $8.63 by 2026-11-30, over the $8.00 budget"
    assert "Exhausted in 7.8 days at the current burn rate" in critical.alerts
    warning = analysis(budget_amount=D("9.00"), alert_threshold=D("0.60"))
    assert warning.alerts == ["60% alert threshold crossed: 63.9% used"]


def test_feature_budget_counts_only_its_feature(data):
    result = analysis(feature_id=data.chatbot.id, budget_amount=D("100.00"))
    assert result.current_spend == D("3.900000")
    assert result.feature_name == "Chatbot"


def test_weekly_and_daily_windows_roll_over(data):
    weekly = analysis(period_type="weekly", budget_amount=D("100.00"))
    assert (weekly.window_start, weekly.window_end) == (date(2026, 11, 16), date(2026, 11, 22))
    assert (weekly.days_elapsed, weekly.days_remaining) == (5, 2)
    assert weekly.current_spend == D("5.750000")
    daily = analysis(period_type="daily", budget_amount=D("100.00"))
    assert (daily.window_start, daily.window_end) == (date(2026, 11, 20), date(2026, 11, 20))
    assert daily.current_spend == D("2.800000")
    assert (daily.days_elapsed, daily.days_remaining) == (1, 0)
    assert daily.projected_spend == D("2.800000")


def test_a_future_budget_is_upcoming_with_nothing_spent(data):
    result = analysis(start_date=date(2026, 12, 1), end_date=date(2027, 3, 31))
    assert result.phase == "upcoming"
    assert (result.window_start, result.window_end) == (date(2026, 12, 1), date(2026, 12, 31))
    assert result.current_spend == D("0")
    assert (result.days_elapsed, result.days_remaining) == (0, 31)
    assert result.burn_rate == D("0")
    assert result.days_until_exhaustion is None
    assert result.status == "on_track"


def test_a_past_budget_reports_its_last_window(data):
    result = analysis(
        start_date=date(2026, 10, 1), end_date=date(2026, 11, 18), budget_amount=D("2.00")
    )
    assert result.phase == "ended"
    assert (result.window_start, result.window_end) == (date(2026, 11, 1), date(2026, 11, 18))
    assert result.current_spend == D("2.350000")
    assert (result.days_elapsed, result.days_remaining) == (18, 0)
    assert result.projected_spend == result.current_spend
    assert result.status == "over_budget"


def test_window_boundaries_first_and_last_day(data):
    last_day = analysis(end_date=date(2026, 11, 20), budget_amount=D("100.00"))
    assert (last_day.window_end, last_day.days_remaining) == (date(2026, 11, 20), 0)
    assert last_day.projected_spend == last_day.current_spend == D("5.750000")
    first_day = analysis(start_date=date(2026, 11, 20), budget_amount=D("100.00"))
    assert (first_day.window_start, first_day.days_elapsed) == (date(2026, 11, 20), 1)
    assert first_day.current_spend == D("2.800000")  # today only
    assert first_day.projected_spend == D("2.800000") * 11  # 10 more days at 2.80


def test_only_active_budgets_are_analysed_with_one_spend_query(data):
    factories.budget(name="On", budget_amount=D("10.00"))
    factories.budget(name="Off", budget_amount=D("10.00"), is_active=False)
    db.session.commit()
    assert [a.budget.name for a in budgets.analyse_budgets(NOW)] == ["On"]


def test_history_of_a_long_daily_budget_is_one_pass(data):
    budget = factories.budget(
        period_type="daily", start_date=date(2000, 1, 1), end_date=date(2099, 12, 31)
    )
    db.session.commit()
    history = budgets.budget_history(budget, NOW)
    assert len(history) == (date(2026, 11, 20) - date(2000, 1, 1)).days + 1
    assert [p.spend for p in history[-3:]] == [D("2.350000"), D("0.600000"), D("2.800000")]
    assert sum(p.spend for p in history) == D("5.750000")


def test_history_per_period(data):
    budget = factories.budget(
        period_type="weekly", start_date=date(2026, 11, 2), end_date=date(2027, 1, 31)
    )
    db.session.commit()
    history = budgets.budget_history(budget, NOW)
    assert [(p.start, p.end, p.spend) for p in history] == [
        (date(2026, 11, 2), date(2026, 11, 8), D("0")),
        (date(2026, 11, 9), date(2026, 11, 15), D("0")),
        (date(2026, 11, 16), date(2026, 11, 22), D("5.750000")),
    ]
    assert history[-1].utilization == D("5.75")


# --- writing ----------------------------------------------------------------------------

VALID = {
    "name": "November",
    "budget_amount": "250.00",
    "start_date": "2026-11-01",
    "end_date": "2026-11-30",
}


def audit_actions() -> list[str]:
    return list(db.session.scalars(select(AuditLog.action).order_by(AuditLog.created_at)))


def test_create_with_defaults_and_audit(db):
    budget = budgets.create_budget(ACTOR, dict(VALID))
    assert budget.period_type == "monthly"
    assert budget.alert_threshold == D("0.80")
    assert budget.budget_amount == D("250.00")
    assert budget.feature_id is None
    assert audit_actions() == ["budget.create"]


def test_json_numbers_become_the_decimal_the_client_wrote(db):
    budget = budgets.create_budget(ACTOR, VALID | {"budget_amount": 0.3, "alert_threshold": 0.9})
    assert budget.budget_amount == D("0.30")
    assert budget.alert_threshold == D("0.90")


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"budget_amount": "-5"},
            {"budget_amount": "must be greater than 0 and at most 99999999.99"},
        ),
        (
            {"budget_amount": "0"},
            {"budget_amount": "must be greater than 0 and at most 99999999.99"},
        ),
        ({"budget_amount": "1.005"}, {"budget_amount": "must have at most 2 decimal places"}),
        ({"budget_amount": "lots"}, {"budget_amount": "must be a decimal number"}),
        ({"budget_amount": "NaN"}, {"budget_amount": "must be a decimal number"}),
        (
            {"budget_amount": "1e30"},
            {"budget_amount": "must be greater than 0 and at most 99999999.99"},
        ),
        (
            {"budget_amount": 1e30},
            {"budget_amount": "must be greater than 0 and at most 99999999.99"},
        ),
        (
            {"alert_threshold": "1e40"},
            {"alert_threshold": "must be greater than 0 and at most 1 (e.g. 0.8 for 80 %)"},
        ),
        ({"start_date": "0001-01-01"}, {"start_date": "must be between 1970-01-01 and 2999-12-31"}),
        (
            {"alert_threshold": "0"},
            {"alert_threshold": "must be greater than 0 and at most 1 (e.g. 0.8 for 80 %)"},
        ),
        (
            {"alert_threshold": "1.01"},
            {"alert_threshold": "must be greater than 0 and at most 1 (e.g. 0.8 for 80 %)"},
        ),
        ({"end_date": "2026-10-31"}, {"end_date": "must be on or after start_date"}),
        (
            {"start_date": "soon"},
            {"start_date": "must be a date (YYYY-MM-DD) or an ISO 8601 timestamp"},
        ),
        (
            {"period_type": "hourly"},
            {"period_type": "must be one of daily, weekly, monthly, quarterly, yearly"},
        ),
        (
            {"feature_id": "nope"},
            {"feature_id": "must be a feature id (UUID) or empty for a global budget"},
        ),
        ({"feature_id": "00000000-0000-0000-0000-000000000001"}, {"feature_id": "does not exist"}),
        ({"is_active": "yes"}, {"is_active": "must be true or false"}),
        ({"spent_amount": "1"}, {"spent_amount": "is not a field of a budget"}),
        ({"name": "  "}, {"name": "is required"}),
    ],
)
def test_create_refuses_bad_input_and_saves_nothing(db, changes, errors):
    with pytest.raises(ValidationFailed) as caught:
        budgets.create_budget(ACTOR, VALID | changes)
    assert caught.value.errors == errors
    assert db.session.scalar(select(func.count()).select_from(Budget)) == 0
    assert audit_actions() == []


def test_create_names_every_missing_field(db):
    with pytest.raises(ValidationFailed) as caught:
        budgets.create_budget(ACTOR, {})
    assert set(caught.value.errors) == {"name", "budget_amount", "start_date", "end_date"}


def test_update_audits_changed_fields_and_checks_dates_against_stored_ones(db):
    budget = budgets.create_budget(ACTOR, dict(VALID))
    budgets.update_budget(ACTOR, budget.id, {"budget_amount": "300", "name": "November"})
    row = db.session.scalars(select(AuditLog).where(AuditLog.action == "budget.update")).one()
    assert row.new_values == {"budget_amount": "300.00"}
    with pytest.raises(ValidationFailed) as caught:
        budgets.update_budget(ACTOR, budget.id, {"end_date": "2026-10-01"})
    assert caught.value.errors == {"end_date": "must be on or after start_date"}
    db.session.refresh(budget)
    assert budget.end_date == date(2026, 11, 30)


def test_delete_and_unknown_ids(db):
    budget = budgets.create_budget(ACTOR, dict(VALID))
    budgets.delete_budget(ACTOR, budget.id)
    assert audit_actions() == ["budget.create", "budget.delete"]
    with pytest.raises(NotFound):
        budgets.delete_budget(ACTOR, budget.id)
    with pytest.raises(NotFound):
        budgets.update_budget(ACTOR, budget.id, {"name": "x"})


# --- the amount's history ---------------------------------------------------------------


def test_editing_the_amount_keeps_the_past_periods_amounts(data, db):
    """A daily $2.00 budget cut to $0.50 at noon on the 20th: the 18th and 19th keep
    $2.00 (the 19th, 0.60 spent, is not "over $0.50"), the 20th is measured against $0.50;
    the analysis, the overview's "as of" analysis and the guard agree."""
    budget = factories.budget(period_type="daily", budget_amount=D("2.00"))
    db.session.commit()
    budgets.update_budget(ACTOR, budget.id, {"budget_amount": "0.50"}, now=NOW)
    history = {p.start.day: p for p in budgets.budget_history(budget, NOW)}
    assert [(history[d].amount, history[d].over) for d in (18, 19, 20)] == [
        (D("2.00"), True),
        (D("2.00"), False),
        (D("0.50"), True),
    ]
    assert history[19].utilization == D("30.00")
    assert history[1].amount == D("2.00")  # before the budget existed in the database
    current = budgets.analyse_budget(budget.id, NOW)
    assert (current.amount, current.status) == (D("0.50"), "over_budget")
    (before,) = budgets.analyse_budgets(NOW, as_of=date(2026, 11, 19))
    assert (before.amount, before.status) == (D("2.00"), "on_track")
    assert current.as_dict()["amount"] == D("0.50")
    assert current.as_dict()["budget"]["budget_amount"] == D("0.50")
    changes = budgets.amount_history(budget)
    assert (changes[0].amount, changes[0].effective_from) == (D("0.50"), NOW)
    assert [c.amount for c in changes] == [D("0.50"), D("2.00")]


def test_an_amount_set_again_at_the_same_instant_replaces_it_and_is_audited(data, db):
    budget = factories.budget(period_type="daily", budget_amount=D("2.00"))
    db.session.commit()
    budgets.update_budget(ACTOR, budget.id, {"budget_amount": "0.50"}, now=NOW)
    budgets.update_budget(ACTOR, budget.id, {"budget_amount": "3.00"}, now=NOW)
    budgets.update_budget(ACTOR, budget.id, {"name": "Renamed", "budget_amount": "3.00"}, now=NOW)
    assert [c.amount for c in budgets.amount_history(budget)] == [D("3.00"), D("2.00")]
    assert budgets.analyse_budget(budget.id, NOW).amount == D("3.00")
    audited = db.session.scalars(
        select(AuditLog.new_values).where(AuditLog.action == "budget.update")
    ).all()
    assert [row.get("budget_amount") for row in audited] == ["0.50", "3.00", None]


def test_a_new_budget_records_its_first_amount(db):
    budget = budgets.create_budget(
        ACTOR,
        {
            "name": "Weekly",
            "period_type": "weekly",
            "budget_amount": "120",
            "start_date": "2026-11-02",
            "end_date": "2026-12-27",
        },
    )
    (first,) = budgets.amount_history(budget)
    assert first.amount == D("120.00") and first.changed_by_email is None
