"""Budgets that act: ``budget_guard`` (every state and action, several budgets, the default
and the explicit model to degrade to, environments) and the enforcement fields of the
budget's input (validated, audited). November 2026, "now" the 16th at noon: 16 days
elapsed, 14 left, so the projection is spend × 30 / 16."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests import factories
from tests.usage_rows import insert_usage
from webapp.extensions import db
from webapp.models import AuditLog
from webapp.services.core.actor import Actor
from webapp.services.core.errors import ValidationFailed
from webapp.services.spending import budgets
from webapp.services.spending.enforcement import BudgetGuard, budget_guard

D = Decimal
NOW = datetime(2026, 11, 16, 12, tzinfo=UTC)
RESETS = datetime(2026, 12, 1, tzinfo=UTC)
ACTOR = Actor.cli()


@pytest.fixture
def catalog(db):
    openai = factories.provider("openai")
    other = factories.provider("cheapco")
    idle = factories.provider("idle", status="inactive")
    chatbot = factories.feature("chatbot")
    search = factories.feature("search")
    gpt4 = factories.model(openai, "gpt-4")  # 30 / 60 per million
    mini = factories.model(
        other, "mini", input_price_per_million=D(1), output_price_per_million=D(2)
    )
    # Cheaper still, but not eligible: deprecated, an inactive provider, another type.
    factories.model(
        openai,
        "old",
        status="deprecated",
        input_price_per_million=D("0.1"),
        output_price_per_million=D("0.1"),
    )
    factories.model(
        idle, "idle-llm", input_price_per_million=D("0.1"), output_price_per_million=D("0.1")
    )
    factories.model(
        openai,
        "embed",
        model_type="embedding",
        input_price_per_million=D("0.01"),
        output_price_per_million=D(0),
    )
    factories.assignment(chatbot, gpt4, "production")
    db.session.commit()
    return {"chatbot": chatbot, "search": search, "gpt4": gpt4, "mini": mini}


def spend(feature, amount, day=date(2026, 11, 10), environment="production", model=None, **row):
    insert_usage(
        [
            row
            | {
                "feature_id": feature.id,
                "model_id": model.id if model else None,
                "cost_usd": amount,
                "created_at": datetime.combine(day, datetime.min.time(), UTC),
                "environment": environment,
            }
        ]
    )


def budget(feature=None, **fields):
    fields.setdefault("budget_amount", D(100))
    row = factories.budget(feature_id=feature.id if feature else None, **fields)
    db.session.commit()
    return row


def guard(catalog, feature="chatbot", environment="production"):
    return budget_guard(catalog[feature].id, environment, NOW)


def test_no_budget_no_guard(catalog):
    assert guard(catalog) is None


@pytest.mark.parametrize(
    ("enforcement", "spent", "state", "action"),
    [
        ("observe", "10", "ok", "allow"),
        ("observe", "80", "warning", "allow"),  # threshold 0.80 reached
        ("observe", "150", "warning", "allow"),  # over, but observe never acts
        ("soft", "40", "ok", "allow"),  # projection 75
        ("soft", "60", "soft_exceeded", "degrade"),  # projection 112.50 passes 100
        ("soft", "53.33", "ok", "allow"),  # projection 99.99
        ("soft", "101", "soft_exceeded", "degrade"),
        ("hard", "99.99", "warning", "allow"),  # projected over, but not reached
        ("hard", "100", "hard_exceeded", "deny"),  # reached
        ("hard", "250", "hard_exceeded", "deny"),
    ],
)
def test_every_state_and_action(catalog, enforcement, spent, state, action):
    budget(catalog["chatbot"], enforcement=enforcement)
    spend(catalog["chatbot"], D(spent))
    found = guard(catalog)
    assert (found.state, found.action, found.resets_at) == (state, action, RESETS)
    assert (found.degrade_to is not None) == (action == "degrade")


def test_degrade_default_is_the_cheapest_eligible_model_of_the_same_type(catalog):
    budget(catalog["chatbot"], enforcement="soft")
    spend(catalog["chatbot"], D(101), model=catalog["gpt4"], input_tokens=900, output_tokens=50)
    assert guard(catalog).degrade_to == {"name": "mini", "provider": "cheapco"}


def test_degrade_default_without_tokens_compares_list_prices(catalog):
    budget(catalog["chatbot"], enforcement="soft")
    spend(catalog["chatbot"], D(101))
    assert guard(catalog).degrade_to == {"name": "mini", "provider": "cheapco"}


def test_degrade_default_without_assignment_or_cheaper_model_is_none(catalog):
    budget(catalog["search"], enforcement="soft")
    spend(catalog["search"], D(101))
    found = guard(catalog, "search")  # no model assigned to search
    assert (found.action, found.degrade_to) == ("degrade", None)
    # Staging has no assignment for the chatbot either.
    budget(catalog["chatbot"], enforcement="soft", name="chat")
    spend(catalog["chatbot"], D(101))
    assert guard(catalog, environment="staging").degrade_to is None


def test_degrade_to_named_model(catalog):
    budget(catalog["chatbot"], enforcement="soft", degrade_to_model_id=catalog["gpt4"].id)
    spend(catalog["chatbot"], D(101))
    assert guard(catalog).degrade_to == {"name": "gpt-4", "provider": "openai"}


def test_global_budgets_apply_and_the_most_restrictive_wins(catalog):
    budget(catalog["chatbot"], enforcement="soft", name="chat")
    budget(None, enforcement="hard", name="all", budget_amount=D(150))
    spend(catalog["chatbot"], D(101))
    assert guard(catalog).action == "degrade"  # 101 of 150 globally: allowed there
    spend(catalog["search"], D(49))
    found = guard(catalog)
    assert (found.state, found.action, found.degrade_to) == ("hard_exceeded", "deny", None)
    # The search feature sees only the global budget.
    assert guard(catalog, "search").action == "deny"


def test_a_later_reset_wins_between_equal_actions(catalog):
    budget(None, enforcement="hard", name="month")
    budget(
        None,
        enforcement="hard",
        name="year",
        period_type="yearly",
        start_date=date(2026, 1, 1),
        end_date=date(2026, 12, 31),
    )
    spend(catalog["chatbot"], D(100))
    assert guard(catalog) == BudgetGuard(
        "hard_exceeded", "deny", None, datetime(2027, 1, 1, tzinfo=UTC)
    )


def test_budgets_that_do_not_apply(catalog):
    budget(catalog["search"], enforcement="hard", name="other feature")
    budget(catalog["chatbot"], enforcement="hard", name="inactive", is_active=False)
    budget(
        catalog["chatbot"],
        enforcement="hard",
        name="ended",
        start_date=date(2026, 10, 1),
        end_date=date(2026, 10, 31),
    )
    spend(catalog["chatbot"], D(500))
    spend(catalog["search"], D(1), day=date(2026, 11, 11))
    assert guard(catalog) is None


def test_spend_counts_every_environment(catalog):
    budget(catalog["chatbot"], enforcement="hard")
    spend(catalog["chatbot"], D(60), environment="staging")
    spend(catalog["chatbot"], D(40), environment="development")
    assert guard(catalog, environment="production").action == "deny"


# ---------------------------------------------------------------------------------------
# The budget's input

VALID = {
    "name": "November",
    "budget_amount": "100",
    "start_date": "2026-11-01",
    "end_date": "2026-11-30",
}


def test_enforcement_defaults_to_observe_and_is_audited(catalog):
    created = budgets.create_budget(ACTOR, dict(VALID))
    assert (created.enforcement, created.degrade_to_model_id) == ("observe", None)
    budgets.update_budget(
        ACTOR,
        created.id,
        {"enforcement": "soft", "degrade_to_model_id": str(catalog["mini"].id)},
    )
    row = db.session.scalars(select(AuditLog).where(AuditLog.action == "budget.update")).one()
    assert row.new_values == {
        "enforcement": "soft",
        "degrade_to_model_id": str(catalog["mini"].id),
    }
    assert budgets.budget_as_dict(created)["enforcement"] == "soft"


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"enforcement": "strict"}, {"enforcement": "must be one of observe, soft, hard"}),
        ({"enforcement": ""}, {"enforcement": "must be one of observe, soft, hard"}),
        (
            {"degrade_to_model_id": "gpt-4"},
            {
                "degrade_to_model_id": "must be a model id (UUID) or empty for the cheapest "
                "model of the same type"
            },
        ),
        (
            {"degrade_to_model_id": "00000000-0000-0000-0000-000000000001"},
            {"degrade_to_model_id": "is not a model of the catalog"},
        ),
    ],
)
def test_bad_enforcement_fields_are_named_and_change_nothing(catalog, fields, errors):
    with pytest.raises(ValidationFailed) as caught:
        budgets.create_budget(ACTOR, VALID | fields)
    assert caught.value.errors == errors
    created = budgets.create_budget(ACTOR, dict(VALID))
    with pytest.raises(ValidationFailed) as caught:
        budgets.update_budget(ACTOR, created.id, fields)
    assert caught.value.errors == errors
    db.session.refresh(created)
    assert (created.enforcement, created.degrade_to_model_id) == ("observe", None)


def test_a_deleted_model_leaves_the_default(catalog):
    created = budget(catalog["chatbot"], enforcement="soft", degrade_to_model_id=catalog["mini"].id)
    db.session.delete(catalog["mini"])
    db.session.commit()
    db.session.refresh(created)
    assert created.degrade_to_model_id is None
