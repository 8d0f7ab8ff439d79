"""What applications are told about the budgets that apply to a feature (the ``budget``
part of GET /api/v1/config).

A minimal stand-in, written by the runtime-configuration part of issue 15 until the
budget-enforcement part lands (that one adds ``enforcement`` observe/soft/hard and
replaces this module; the configuration code depends only on ``BudgetGuard``'s four
fields and ``budget_guard``'s signature). Today every budget only observes, so the action
is always ``allow`` and nothing degrades; the state comes from the budgets' existing
analysis (spend and projection of the current window, ``analyse_budgets``):

- ``ok``: on track; ``warning``: the alert threshold crossed or the projection passes the
  amount; ``soft_exceeded``: spend passed the amount (an observing budget never denies,
  so it is never ``hard_exceeded``).
- The worst state among the feature's budgets and the global ones in effect today wins;
  ``resets_at`` is when that budget's current window ends (UTC midnight after its last day).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select

from webapp.extensions import db
from webapp.models import Budget
from webapp.services.spending.budgets import BudgetAnalysis, analyse_budgets

STATES = ("ok", "warning", "soft_exceeded", "hard_exceeded")
ACTIONS = ("allow", "degrade", "deny")
_STATE_OF_STATUS = {
    "on_track": "ok",
    "warning": "warning",
    "critical": "warning",
    "over_budget": "soft_exceeded",
}


@dataclass(frozen=True)
class BudgetGuard:
    state: str  # one of STATES
    action: str  # one of ACTIONS
    degrade_to: dict[str, Any] | None  # {"name", "provider"} of the model to use instead
    resets_at: datetime | None  # when the deciding budget's window ends


def budget_guard(feature_id: uuid.UUID, environment: str, now: datetime) -> BudgetGuard | None:
    """The guard for one feature, or None when no active budget is in effect for it today.
    ``environment`` is accepted for the enforcing version; budgets are not per environment
    today, so spend counts every environment."""
    rows: list[tuple[Budget, str | None]] = [
        (budget, None)
        for budget in db.session.scalars(
            select(Budget).where(
                Budget.is_active.is_(True),
                or_(Budget.feature_id == feature_id, Budget.feature_id.is_(None)),
                Budget.start_date <= now.date(),
                Budget.end_date >= now.date(),
            )
        )
    ]
    if not rows:
        return None
    analyses = analyse_budgets(now, rows)
    worst = max(analyses, key=_severity)
    reset = datetime.combine(worst.window_end + timedelta(days=1), time.min, tzinfo=UTC)
    return BudgetGuard(_STATE_OF_STATUS[worst.status], "allow", None, reset)


def _severity(analysis: BudgetAnalysis) -> tuple[int, float]:
    # Worst state first; between equals, the window that resets last decides.
    state = STATES.index(_STATE_OF_STATUS[analysis.status])
    return state, analysis.window_end.toordinal()
