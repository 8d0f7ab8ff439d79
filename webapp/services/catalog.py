"""Read-side listings for the areas whose own issues are still to come (budgets).
Each returns plain rows for a view (one query, joined for related names)."""

from __future__ import annotations

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Budget, Feature


def list_budgets() -> list[tuple[Budget, str | None]]:
    rows = db.session.execute(
        select(Budget, Feature.display_name)
        .outerjoin(Feature, Feature.id == Budget.feature_id)
        .order_by(Budget.start_date.desc(), Budget.name)
    )
    return [tuple(row) for row in rows]
