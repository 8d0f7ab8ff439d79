"""What budgets tell applications to do for one feature: ``budget_guard``.

The budgets that apply to a feature are the active ones in their current window (today
between their dates) that are its own or global. Each gives a state and an action from its
current period's spend and projection — the figures of ``budgets.analyse_budgets``, the
same the budget pages show (one figure, one computation):

- ``hard``: spend ≥ amount → ``hard_exceeded`` / ``deny``;
- ``soft``: spend > amount or projection > amount → ``soft_exceeded`` / ``degrade``, with
  ``degrade_to`` the budget's model or by default the cheapest one (below);
- otherwise spend ≥ threshold × amount → ``warning`` / ``allow`` (an ``observe`` budget past
  its amount is also only a warning: it never acts), else ``ok`` / ``allow``.

Several budgets: the most restrictive wins — ``deny`` over ``degrade`` over ``allow``, then
the worse state, then the later ``resets_at`` (a client waits until the last one resets).
``resets_at`` is the end of the winning budget's current period (UTC midnight after it).

Environments: spend counts every environment. Budgets are not per environment (money is
money: a staging run spends the same dollars), so a budget exhausted by staging also
stops production. ``environment`` only chooses the feature's model whose type the default
``degrade_to`` must match.

Default ``degrade_to``: the feature's model in that environment (its active assignment)
gives the type; the feature's last 30 days of usage on models of that type are re-priced
on every *available* model of the type from an *active* provider exactly as the
re-pricing recommendation does (``recommendations.cheapest_alternatives``), and the
cheapest that costs less than the current model wins. Without usage the list prices of
1M input + 1M output tokens and one request compare them. No assignment, or nothing
cheaper: ``degrade_to`` is None (the application keeps its model but knows it should
spend less).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select

from webapp.extensions import db
from webapp.models import AIModel, Budget, Feature, FeatureModelAssignment, Provider
from webapp.services.spending.budgets import BudgetAnalysis, analyse_budgets, window_for
from webapp.services.spending.recommendations import (
    WINDOW_DAYS,
    catalog_models,
    cheapest_alternatives,
    repriced_cost,
)
from webapp.services.usage.reads import usage_by

STATES = ("ok", "warning", "soft_exceeded", "hard_exceeded")  # least to most restrictive
ACTIONS = ("allow", "degrade", "deny")
# The workload that compares models when a feature has no recent usage of the type.
REFERENCE_TOKENS = 1_000_000


@dataclass(frozen=True)
class BudgetGuard:
    state: str  # one of STATES
    action: str  # one of ACTIONS
    degrade_to: dict[str, str] | None  # {"name", "provider"} with action "degrade"
    resets_at: datetime  # end of the current period (UTC)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "action": self.action,
            "degrade_to": self.degrade_to,
            "resets_at": self.resets_at,
        }


def period_end(window_end: date) -> datetime:
    """The instant a window ends: UTC midnight after its last day."""
    return datetime.combine(window_end + timedelta(days=1), time.min, UTC)


def budgets_covering(
    feature_id: uuid.UUID, today: date, *, enforcement: str | None = None
) -> list[tuple[Budget, str | None]]:
    """Active budgets of the feature or global, in their current window today (one
    query), ``enforcement`` alone when given."""
    query = (
        select(Budget, Feature.display_name)
        .outerjoin(Feature, Feature.id == Budget.feature_id)
        .where(
            Budget.is_active.is_(True),
            Budget.start_date <= today,
            Budget.end_date >= today,
            or_(Budget.feature_id.is_(None), Budget.feature_id == feature_id),
        )
        .order_by(Budget.id)
    )
    if enforcement is not None:
        query = query.where(Budget.enforcement == enforcement)
    return [
        (budget, name)
        for budget, name in db.session.execute(query)
        if window_for(budget, today).phase == "current"
    ]


def state_of(analysis: BudgetAnalysis) -> tuple[str, str]:
    """(state, action) of one budget from its analysis."""
    budget = analysis.budget
    amount = analysis.amount  # the amount of the current period
    spend, projected = analysis.current_spend, analysis.projected_spend
    if budget.enforcement == "hard" and spend >= amount:
        return "hard_exceeded", "deny"
    if budget.enforcement == "soft" and (spend > amount or projected > amount):
        return "soft_exceeded", "degrade"
    if spend >= budget.alert_threshold * amount or spend > amount or projected > amount:
        return "warning", "allow"
    return "ok", "allow"


def _restrictiveness(guard: BudgetGuard) -> tuple[int, int, datetime]:
    return ACTIONS.index(guard.action), STATES.index(guard.state), guard.resets_at


def budget_guard(feature_id: uuid.UUID, environment: str, now: datetime) -> BudgetGuard | None:
    """What the budgets covering the feature tell an application in ``environment`` to do
    now; None when no budget applies."""
    today = now.astimezone(UTC).date()
    rows = budgets_covering(feature_id, today)
    if not rows:
        return None
    guards = []
    for analysis in analyse_budgets(now, rows):
        state, action = state_of(analysis)
        guards.append(
            (BudgetGuard(state, action, None, period_end(analysis.window_end)), analysis.budget)
        )
    guard, budget = max(guards, key=lambda pair: _restrictiveness(pair[0]))
    if guard.action != "degrade":
        return guard
    return BudgetGuard(
        guard.state,
        guard.action,
        degrade_target(budget, feature_id, environment, today),
        guard.resets_at,
    )


def degrade_target(
    budget: Budget, feature_id: uuid.UUID, environment: str, today: date
) -> dict[str, str] | None:
    """{"name", "provider"} of the model a soft budget tells the feature to use."""
    if budget.degrade_to_model_id is not None:
        row = db.session.execute(
            select(AIModel.name, Provider.name)
            .join(Provider, Provider.id == AIModel.provider_id)
            .where(AIModel.id == budget.degrade_to_model_id)
        ).first()
        return {"name": row[0], "provider": row[1]} if row else None
    return default_degrade_target(feature_id, environment, today)


def default_degrade_target(
    feature_id: uuid.UUID, environment: str, today: date
) -> dict[str, str] | None:
    current_id = db.session.scalar(
        select(FeatureModelAssignment.model_id).where(
            FeatureModelAssignment.feature_id == feature_id,
            FeatureModelAssignment.environment == environment,
            FeatureModelAssignment.is_active.is_(True),
        )
    )
    models = catalog_models()
    if current_id not in models:
        return None
    current = models[current_id][0]
    first = today - timedelta(days=WINDOW_DAYS - 1)
    tokens_in = tokens_out = requests = 0
    for (model_id,), sums in usage_by(first, today, ("model_id",), feature_id=feature_id).items():
        if model_id in models and models[model_id][0].model_type == current.model_type:
            tokens_in += sums.input_tokens
            tokens_out += sums.output_tokens
            requests += sums.requests
    if not (tokens_in or tokens_out):
        tokens_in = tokens_out = REFERENCE_TOKENS
        requests = 1
    candidates = cheapest_alternatives(
        (pair for model_id, pair in models.items() if model_id != current_id),
        current.model_type,
        tokens_in,
        tokens_out,
        requests,
        below=repriced_cost(current, tokens_in, tokens_out, requests),
    )
    if not candidates:
        return None
    return {"name": candidates[0].model.name, "provider": candidates[0].provider.name}
