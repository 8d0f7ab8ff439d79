"""Read-side listings for the areas whose own issues are still to come (budgets,
experiments). Each returns plain rows for a view (one query, joined for related names)."""

from __future__ import annotations

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import (
    Budget,
    Experiment,
    Feature,
)


def list_budgets() -> list[tuple[Budget, str | None]]:
    rows = db.session.execute(
        select(Budget, Feature.display_name)
        .outerjoin(Feature, Feature.id == Budget.feature_id)
        .order_by(Budget.start_date.desc(), Budget.name)
    )
    return [tuple(row) for row in rows]


def list_experiments() -> list[tuple[Experiment, str]]:
    rows = db.session.execute(
        select(Experiment, Feature.display_name)
        .join(Feature, Feature.id == Experiment.feature_id)
        .order_by(Experiment.created_at.desc())
    )
    return [tuple(row) for row in rows]
