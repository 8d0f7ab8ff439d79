"""Spending budgets: CRUD with validation, their current window, analysis and history.

A budget is active from ``start_date`` to ``end_date`` (UTC calendar dates, inclusive).
Its ``period_type`` makes it recurring: the amount applies to each daily, weekly (ISO,
Monday to Sunday), monthly, quarterly or yearly period, clipped to the budget's dates.
Spend is always computed from usage (rollup for past days, raw rows for today), never
stored.

Analysis, for the window containing today (the first window before the budget starts,
the last one after it ended), with whole UTC days and today counted as elapsed:
- burn rate = spend / elapsed days; projection = spend + burn rate × days after today;
- days until exhaustion = (amount − spend) / burn rate (None when nothing is burning);
- status, first match wins: ``over_budget`` (spend > amount), ``critical`` (projection >
  amount), ``warning`` (spend ≥ threshold × amount), ``on_track``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import AIModel, Budget, Feature
from webapp.services.apps.config_revision import bump_config_revision
from webapp.services.audit.records import add_audit_row
from webapp.services.audit.writes import apply_changes, insert_row
from webapp.services.catalog import features
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.money import MICRO_DOLLAR, usd
from webapp.services.core.validation import check
from webapp.services.spending.analytics import HUNDRED, days_between
from webapp.services.spending.schemas import BudgetCreate, BudgetUpdate
from webapp.services.usage.reads import ZERO_COST, usage_by

FIELDS = tuple(BudgetCreate.model_fields)


# ---------------------------------------------------------------------------------------
# Windows


def period_containing(day: date, period_type: str) -> tuple[date, date]:
    """The calendar period of ``period_type`` that contains ``day`` (inclusive bounds)."""
    if period_type == "daily":
        return day, day
    if period_type == "weekly":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    if period_type == "monthly":
        first = day.replace(day=1)
    elif period_type == "quarterly":
        first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    elif period_type == "yearly":
        first = date(day.year, 1, 1)
    else:
        raise ValueError(f"unknown period type {period_type!r}")
    months = {"monthly": 1, "quarterly": 3, "yearly": 12}[period_type]
    month_index = first.month - 1 + months
    following = date(first.year + month_index // 12, month_index % 12 + 1, 1)
    return first, following - timedelta(days=1)


@dataclass(frozen=True)
class Window:
    start: date
    end: date
    phase: str  # upcoming | current | ended

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def window_for(budget: Budget, today: date) -> Window:
    """The budget's period containing today, clipped to its dates; before it starts, its
    first period; after it ends, its last."""
    if today < budget.start_date:
        reference, phase = budget.start_date, "upcoming"
    elif today > budget.end_date:
        reference, phase = budget.end_date, "ended"
    else:
        reference, phase = today, "current"
    first, last = period_containing(reference, budget.period_type)
    return Window(max(first, budget.start_date), min(last, budget.end_date), phase)


def periods_of(budget: Budget, until: date) -> list[tuple[date, date]]:
    """Every period of the budget from its start to the one containing ``until``."""
    found = []
    day = budget.start_date
    last_day = min(budget.end_date, until)
    while day <= last_day:
        first, last = period_containing(day, budget.period_type)
        found.append((max(first, budget.start_date), min(last, budget.end_date)))
        day = last + timedelta(days=1)
    return found


# ---------------------------------------------------------------------------------------
# Reading


def get_budget(budget_id: uuid.UUID) -> Budget:
    budget = db.session.get(Budget, budget_id)
    if budget is None:
        raise NotFound(f"budget {budget_id} does not exist")
    return budget


def budget_as_dict(budget: Budget, feature_name: str | None = None) -> dict[str, Any]:
    return {
        "id": budget.id,
        "name": budget.name,
        "description": budget.description,
        "feature_id": budget.feature_id,
        "feature_name": feature_name,
        "period_type": budget.period_type,
        "budget_amount": budget.budget_amount,
        "alert_threshold": budget.alert_threshold,
        "is_active": budget.is_active,
        "start_date": budget.start_date,
        "end_date": budget.end_date,
        "enforcement": budget.enforcement,
        "degrade_to_model_id": budget.degrade_to_model_id,
        "created_at": budget.created_at,
        "updated_at": budget.updated_at,
    }


def list_budgets(active_only: bool = False) -> list[tuple[Budget, str | None]]:
    """Budgets with their feature's display name (one query), newest start first."""
    query = (
        select(Budget, Feature.display_name)
        .outerjoin(Feature, Feature.id == Budget.feature_id)
        .order_by(Budget.start_date.desc(), Budget.name)
    )
    if active_only:
        query = query.where(Budget.is_active.is_(True))
    return [(budget, name) for budget, name in db.session.execute(query)]


# ---------------------------------------------------------------------------------------
# Analysis


@dataclass
class BudgetAnalysis:
    budget: Budget
    feature_name: str | None
    window_start: date
    window_end: date
    phase: str
    current_spend: Decimal
    utilization: Decimal  # percent of the amount spent
    burn_rate: Decimal  # per day
    projected_spend: Decimal
    days_elapsed: int
    days_remaining: int
    days_until_exhaustion: Decimal | None
    status: str
    alerts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget": budget_as_dict(self.budget, self.feature_name),
            "window_start": self.window_start,
            "window_end": self.window_end,
            "phase": self.phase,
            "current_spend": self.current_spend,
            "utilization": self.utilization,
            "burn_rate": self.burn_rate,
            "projected_spend": self.projected_spend,
            "days_elapsed": self.days_elapsed,
            "days_remaining": self.days_remaining,
            "days_until_exhaustion": self.days_until_exhaustion,
            "status": self.status,
            "alerts": self.alerts,
        }


def _money(amount: Decimal) -> Decimal:
    return amount.quantize(MICRO_DOLLAR, rounding=ROUND_HALF_EVEN)


def analyse(
    budget: Budget, window: Window, spend: Decimal, today: date, feature_name: str | None = None
) -> BudgetAnalysis:
    """The analysis of one budget from its window's spend (pure: no database)."""
    amount = budget.budget_amount
    if window.phase == "upcoming":
        elapsed, remaining = 0, window.days
    elif window.phase == "ended":
        elapsed, remaining = window.days, 0
    else:
        elapsed = (today - window.start).days + 1
        remaining = (window.end - today).days
    burn = spend / elapsed if elapsed else Decimal(0)
    projected = spend + burn * remaining
    if spend >= amount:
        exhaustion: Decimal | None = Decimal("0.0")
    elif burn > 0:
        exhaustion = ((amount - spend) / burn).quantize(Decimal("0.1"))
    else:
        exhaustion = None
    threshold_amount = budget.alert_threshold * amount
    alerts: list[str] = []
    if spend > amount:
        status = "over_budget"
        alerts.append(f"Over budget: {usd(spend)} spent of {usd(amount)}")
    elif projected > amount:
        status = "critical"
        alerts.append(
            f"Projected to reach {usd(projected)} by {window.end.isoformat()}, "
            f"over the {usd(amount)} budget"
        )
    elif spend >= threshold_amount:
        status = "warning"
        alerts.append(
            f"{budget.alert_threshold * 100:.0f}% alert threshold crossed: "
            f"{spend * HUNDRED / amount:.1f}% used"
        )
    else:
        status = "on_track"
    if status == "critical" and spend >= threshold_amount:
        alerts.append(f"{budget.alert_threshold * 100:.0f}% alert threshold crossed")
    if exhaustion is not None and 0 < exhaustion < remaining:
        alerts.append(f"Exhausted in {exhaustion} days at the current burn rate")
    return BudgetAnalysis(
        budget=budget,
        feature_name=feature_name,
        window_start=window.start,
        window_end=window.end,
        phase=window.phase,
        current_spend=_money(spend),
        utilization=(spend * HUNDRED / amount).quantize(Decimal("0.01")),
        burn_rate=_money(burn),
        projected_spend=_money(projected),
        days_elapsed=elapsed,
        days_remaining=remaining,
        days_until_exhaustion=exhaustion,
        status=status,
        alerts=alerts,
    )


def daily_spend(start: date, end: date, feature_id: uuid.UUID | None = None) -> dict[date, Decimal]:
    """Spend per day (every day present) for one feature, or all usage when None."""
    per_day = dict.fromkeys(days_between(start, end), ZERO_COST)
    for (day,), sums in usage_by(start, end, ("day",), feature_id=feature_id).items():
        per_day[day] += sums.cost
    return per_day


def analyse_budgets(
    now: datetime | None = None,
    rows: list[tuple[Budget, str | None]] | None = None,
    *,
    as_of: date | None = None,
) -> list[BudgetAnalysis]:
    """Analysis of every active budget (or of ``rows``), from one spend query for all.

    ``as_of``: the analysis as it stood at the end of that (past) UTC day, with its whole
    days read from the rollup like any past day."""
    real_today = (now or datetime.now(UTC)).date()
    today = as_of or real_today
    if rows is None:
        rows = list_budgets(active_only=True)
    if not rows:
        return []
    windows = [window_for(budget, today) for budget, _ in rows]
    first = min(w.start for w in windows)
    last = min(max(w.end for w in windows), today)
    spend: dict[tuple[date, uuid.UUID | None], Decimal] = {}
    if first <= last:
        for (day, feature_id), sums in usage_by(first, last, ("day", "feature_id")).items():
            spend[(day, feature_id)] = sums.cost
    analyses = []
    for (budget, feature_name), window in zip(rows, windows, strict=True):
        total = sum(
            (
                amount
                for (day, feature_id), amount in spend.items()
                if window.start <= day <= window.end
                and (budget.feature_id is None or feature_id == budget.feature_id)
            ),
            ZERO_COST,
        )
        analyses.append(analyse(budget, window, total, today, feature_name))
    return analyses


def analyse_budget(budget_id: uuid.UUID, now: datetime | None = None) -> BudgetAnalysis:
    budget = get_budget(budget_id)
    feature = db.session.get(Feature, budget.feature_id) if budget.feature_id else None
    name = feature.display_name if feature else None
    return analyse_budgets(now, [(budget, name)])[0]


@dataclass(frozen=True)
class PeriodSpend:
    start: date
    end: date
    spend: Decimal
    budget_amount: Decimal
    utilization: Decimal
    over: bool


def budget_history(budget: Budget, now: datetime | None = None) -> list[PeriodSpend]:
    """Spend in each of the budget's periods so far (newest last)."""
    today = (now or datetime.now(UTC)).date()
    periods = periods_of(budget, today)
    if not periods:
        return []
    per_day = daily_spend(periods[0][0], min(periods[-1][1], today), budget.feature_id)
    history = []
    days = iter(sorted(per_day.items()))
    pending = next(days, None)
    for first, last in periods:
        # One pass over the days: periods and days are both in order.
        spend = ZERO_COST
        while pending is not None and pending[0] <= last:
            if pending[0] >= first:
                spend += pending[1]
            pending = next(days, None)
        history.append(
            PeriodSpend(
                first,
                last,
                spend,
                budget.budget_amount,
                (spend * HUNDRED / budget.budget_amount).quantize(Decimal("0.01")),
                spend > budget.budget_amount,
            )
        )
    return history


# ---------------------------------------------------------------------------------------
# Writing


def _checked(
    schema: type[BudgetUpdate], fields: Mapping[str, Any], budget: Budget | None
) -> dict[str, Any]:
    """The budget's fields as validated, with the checks that need the database or the
    stored budget: the feature and the model to degrade to exist, the end is not before
    the start."""
    checked = check(schema, fields)
    errors, values = checked.errors, checked.values
    feature_id = values.get("feature_id")
    if feature_id is not None and not features.feature_exists(feature_id):
        errors["feature_id"] = "does not exist"
    model_id = values.get("degrade_to_model_id")
    if model_id is not None and db.session.get(AIModel, model_id) is None:
        errors["degrade_to_model_id"] = "is not a model of the catalog"
    start = values.get("start_date", budget.start_date if budget else None)
    end = values.get("end_date", budget.end_date if budget else None)
    if start is not None and end is not None and end < start:
        errors["end_date"] = "must be on or after start_date"
    if errors:
        raise ValidationFailed(errors)
    return checked.valid().model_dump() if budget is None else values


def create_budget(actor: Actor, fields: Mapping[str, Any]) -> Budget:
    budget = Budget(**_checked(BudgetCreate, fields, None))
    bump_config_revision()
    return insert_row(
        actor,
        budget,
        "budget.create",
        "budget",
        budget_as_dict,
        Conflict("a budget like this exists already"),
    )


def update_budget(actor: Actor, budget_id: uuid.UUID, fields: Mapping[str, Any]) -> Budget:
    budget = get_budget(budget_id)
    apply_changes(actor, budget, _checked(BudgetUpdate, fields, budget), "budget.update", "budget")
    bump_config_revision()
    db.session.commit()
    return budget


def delete_budget(actor: Actor, budget_id: uuid.UUID) -> None:
    budget = get_budget(budget_id)
    add_audit_row(actor, "budget.delete", "budget", budget.id, old_values=budget_as_dict(budget))
    db.session.delete(budget)
    bump_config_revision()
    db.session.commit()
