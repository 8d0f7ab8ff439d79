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

Amount: each period is measured against the amount in force then. Editing the amount
records it from that instant on (``budget_amount_changes``), and ``AmountSchedule.
for_period`` — the one function every figure asks — gives a period the amount in force at
its last instant, or now for the period under way (so a cut applies to the current
period at once and never to a period already over). Before the first recorded change,
and for a budget with none, the amount is the first one it had.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import AIModel, Budget, BudgetAmountChange, Feature, User
from webapp.models.types import utcnow
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
# Amounts


MICROSECOND = timedelta(microseconds=1)


def _period_start(first_day: date) -> datetime:
    return datetime.combine(first_day, time.min, UTC)


def _period_end(last_day: date) -> datetime:
    """The instant a period ends: UTC midnight after its last day."""
    return _period_start(last_day + timedelta(days=1))


@dataclass(frozen=True)
class AmountSchedule:
    """A budget's amounts, each from the instant it took effect, oldest first."""

    changes: tuple[tuple[datetime, Decimal], ...]

    def for_period(self, start: date, end: date, now: datetime) -> Decimal:
        """The amount that applies to the period ``start``–``end`` (UTC days): the one in
        force at its last instant, or at ``now`` while it is under way (never before its
        first instant, for a period still to come). THE rule: every figure asks here."""
        moment = max(min(now, _period_end(end) - MICROSECOND), _period_start(start))
        amount = self.changes[0][1]
        for effective_from, changed_to in self.changes:
            if effective_from > moment:
                break
            amount = changed_to
        return amount


def amount_schedules(budgets: list[Budget]) -> dict[uuid.UUID, AmountSchedule]:
    """Each budget's amount schedule (one query for all). A budget whose amount never
    changed has had it since it was created."""
    ids = [budget.id for budget in budgets]
    found: dict[uuid.UUID, list[tuple[datetime, Decimal]]] = {budget_id: [] for budget_id in ids}
    if ids:
        rows = db.session.execute(
            select(
                BudgetAmountChange.budget_id,
                BudgetAmountChange.effective_from,
                BudgetAmountChange.amount,
            )
            .where(BudgetAmountChange.budget_id.in_(ids))
            .order_by(BudgetAmountChange.budget_id, BudgetAmountChange.effective_from)
        )
        for budget_id, effective_from, amount in rows:
            found[budget_id].append((effective_from, amount))
    return {
        budget.id: AmountSchedule(
            tuple(found[budget.id]) or ((budget.created_at, budget.budget_amount),)
        )
        for budget in budgets
    }


@dataclass(frozen=True)
class AmountChange:
    amount: Decimal
    effective_from: datetime
    changed_by_email: str | None


def amount_history(budget: Budget) -> list[AmountChange]:
    """The budget's amounts, newest first, with who set them (for its page)."""
    rows = db.session.execute(
        select(BudgetAmountChange.amount, BudgetAmountChange.effective_from, User.email)
        .outerjoin(User, User.id == BudgetAmountChange.changed_by)
        .where(BudgetAmountChange.budget_id == budget.id)
        .order_by(BudgetAmountChange.effective_from.desc())
    ).all()
    if not rows:
        return [AmountChange(budget.budget_amount, budget.created_at, None)]
    return [AmountChange(amount, since, email) for amount, since, email in rows]


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
    amount: Decimal  # the amount that applies to this window (AmountSchedule.for_period)
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
            "amount": self.amount,
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
    budget: Budget,
    window: Window,
    spend: Decimal,
    today: date,
    amount: Decimal,
    feature_name: str | None = None,
) -> BudgetAnalysis:
    """The analysis of one budget from its window's spend and the amount that applies to
    the window (pure: no database)."""
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
        amount=amount,
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
    days read from the rollup like any past day, and the amounts then in force."""
    moment = now or datetime.now(UTC)
    today = as_of or moment.date()
    if as_of is not None:
        moment = min(moment, _period_end(as_of) - MICROSECOND)
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
    schedules = amount_schedules([budget for budget, _ in rows])
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
        amount = schedules[budget.id].for_period(window.start, window.end, moment)
        analyses.append(analyse(budget, window, total, today, amount, feature_name))
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
    amount: Decimal  # the amount that applied to this period
    utilization: Decimal
    over: bool

    def as_dict(self) -> dict[str, Any]:
        """The API's period; ``budget_amount`` is the same figure as ``amount``, under
        the name the API has always used."""
        return {
            "start": self.start,
            "end": self.end,
            "spend": self.spend,
            "amount": self.amount,
            "budget_amount": self.amount,
            "utilization": self.utilization,
            "over": self.over,
        }


def budget_history(budget: Budget, now: datetime | None = None) -> list[PeriodSpend]:
    """Spend in each of the budget's periods so far (newest last), each against the
    amount that applied to it."""
    moment = now or datetime.now(UTC)
    today = moment.date()
    schedule = amount_schedules([budget])[budget.id]
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
        amount = schedule.for_period(first, last, moment)
        history.append(
            PeriodSpend(
                first,
                last,
                spend,
                amount,
                (spend * HUNDRED / amount).quantize(Decimal("0.01")),
                spend > amount,
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
    budget = Budget(id=uuid.uuid4(), **_checked(BudgetCreate, fields, None))
    db.session.add(budget)
    db.session.add(
        BudgetAmountChange(
            budget_id=budget.id,
            amount=budget.budget_amount,
            effective_from=utcnow(),
            changed_by=actor.user_id,
        )
    )
    bump_config_revision()
    return insert_row(
        actor,
        budget,
        "budget.create",
        "budget",
        budget_as_dict,
        Conflict("a budget like this exists already"),
    )


def _record_amount(actor: Actor, budget: Budget, amount: Decimal, since: datetime) -> None:
    """The budget's amount from ``since`` on (a change at the same instant replaces it)."""
    same_instant = db.session.scalar(
        select(BudgetAmountChange).where(
            BudgetAmountChange.budget_id == budget.id, BudgetAmountChange.effective_from == since
        )
    )
    if same_instant is not None:
        same_instant.amount, same_instant.changed_by = amount, actor.user_id
        return
    db.session.add(
        BudgetAmountChange(
            budget_id=budget.id, amount=amount, effective_from=since, changed_by=actor.user_id
        )
    )


def update_budget(
    actor: Actor,
    budget_id: uuid.UUID,
    fields: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> Budget:
    """Apply the changes; a new amount applies from ``now`` (the moment of the edit) on,
    and the periods before keep theirs (``budget_amount_changes``)."""
    budget = get_budget(budget_id)
    changes = _checked(BudgetUpdate, fields, budget)
    amount = changes.get("budget_amount")
    if amount is not None and amount != budget.budget_amount:
        if (
            db.session.scalar(
                select(BudgetAmountChange.id)
                .where(BudgetAmountChange.budget_id == budget.id)
                .limit(1)
            )
            is None
        ):
            # Never changed before: its first amount (the rule's default until now)
            # becomes a row, from before its first period, so that it stays the amount
            # of the periods before this change.
            first = min(budget.created_at, _period_start(budget.start_date))
            db.session.add(
                BudgetAmountChange(
                    budget_id=budget.id, amount=budget.budget_amount, effective_from=first
                )
            )
        _record_amount(actor, budget, amount, now or utcnow())
    apply_changes(actor, budget, changes, "budget.update", "budget")
    bump_config_revision()
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("someone changed this budget's amount at the same moment; reload") from None
    db.session.commit()
    return budget


def delete_budget(actor: Actor, budget_id: uuid.UUID) -> None:
    budget = get_budget(budget_id)
    add_audit_row(actor, "budget.delete", "budget", budget.id, old_values=budget_as_dict(budget))
    db.session.delete(budget)
    bump_config_revision()
    db.session.commit()
