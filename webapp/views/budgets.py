"""Budgets: a list with utilization, status, burn rate and projection; a page per budget
with its burn chart and history; a create/edit form with inline validation errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from flask import Blueprint, flash, request, url_for
from werkzeug.wrappers import Response

from webapp.auth import actor_from_request, admin_only
from webapp.charts import budget_burn_chart
from webapp.models import ENFORCEMENTS, PERIOD_TYPES
from webapp.responses import go_to, render_page
from webapp.services.catalog import ai_models, features
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.ids import parse_id
from webapp.services.core.sorting import Sort, page_of, sorted_rows
from webapp.services.spending import budgets
from webapp.views.query import PageQuery
from webapp.views.sorting import Sorting, read_sort

bp = Blueprint("budgets", __name__, url_prefix="/budgets")

FORM_FIELDS = (
    "name",
    "description",
    "feature_id",
    "period_type",
    "budget_amount",
    "alert_threshold",
    "start_date",
    "end_date",
    "enforcement",
    "degrade_to_model_id",
)


@bp.get("")
def index() -> tuple[str, int]:
    query = PageQuery()
    order = read_sort(query, BUDGET_SORTS, BY_NAME)
    analyses = budgets.analyse_budgets(rows=budgets.list_budgets())
    page = page_of(
        sorted_rows(analyses, order, BUDGET_SORTS),
        query.whole_number("page", 1, 100_000, 1, " (showing page 1 instead)"),
    )
    sorting = Sorting("budgets.index", order, descending_first=FIGURES, default=BY_NAME)
    html = render_page(
        "budgets/index.html",
        "content",
        analyses=page.items,
        page=page,
        sorting=sorting,
        query=query,
    )
    return html, query.status


# Most severe last, so that a descending sort puts over-budget first.
SEVERITY = {"on_track": 0, "warning": 1, "critical": 2, "over_budget": 3}
# The table's columns by sort key: spend, burn and projection are computed per budget
# after the query (its window's usage), so the list is ordered here.
BUDGET_SORTS: dict[str, Callable[[budgets.BudgetAnalysis], Any]] = {
    "name": lambda a: a.budget.name,
    "scope": lambda a: a.feature_name or "",
    "window": lambda a: a.window_end,
    "used": lambda a: a.utilization,
    "status": lambda a: SEVERITY.get(a.status),
    "spent": lambda a: a.current_spend,
    "amount": lambda a: a.budget.budget_amount,
    "burn": lambda a: a.burn_rate,
    "projected": lambda a: a.projected_spend,
    "days_left": lambda a: a.days_remaining,
}
FIGURES = frozenset({"used", "status", "spent", "amount", "burn", "projected"})
BY_NAME = Sort("name")


def _form_page(form: dict[str, Any], errors: dict[str, str], budget=None, status: int = 200):
    html = render_page(
        "budgets/form.html",
        "form",
        form=form,
        errors=errors,
        budget=budget,
        features=[row.feature for row in features.list_features()],
        period_types=PERIOD_TYPES,
        enforcements=ENFORCEMENTS,
        models=[
            (model.id, f"{model.display_name} ({provider.display_name}, {model.model_type})")
            for model, provider in ai_models.list_models()
        ],
    )
    return html, status


def _submitted() -> dict[str, Any]:
    return {key: request.form.get(key, "").strip() for key in FORM_FIELDS}


def _service_fields(form: dict[str, Any]) -> dict[str, Any]:
    fields = dict(form)
    fields["is_active"] = request.form.get("is_active") == "on"
    if not fields.get("description"):
        fields["description"] = None
    if not fields.get("degrade_to_model_id"):
        fields["degrade_to_model_id"] = None
    if not fields.get("enforcement"):
        del fields["enforcement"]  # a form without the field: the default, or unchanged
    return fields


def _saved(budget) -> Response:
    return go_to(url_for("budgets.detail", budget_id=budget.id))


@bp.get("/new")
@admin_only
def new() -> tuple[str, int]:
    today = datetime.now(UTC).date()
    first = today.replace(day=1)
    return _form_page(
        {
            "period_type": "monthly",
            "alert_threshold": "0.80",
            "enforcement": "observe",
            "start_date": first.isoformat(),
            "end_date": (first.replace(year=first.year + 1) - timedelta(days=1)).isoformat(),
            "is_active": True,
        },
        {},
    )


@bp.post("")
def create() -> Response | tuple[str, int]:
    form = _submitted()
    try:
        budget = budgets.create_budget(actor_from_request(), _service_fields(form))
    except ValidationFailed as error:
        return _form_page(form | {"is_active": True}, error.errors, status=400)
    flash(f"Budget {budget.name} created.")
    return _saved(budget)


@bp.get("/<budget_id>")
def detail(budget_id: str) -> str:
    analysis = budgets.analyse_budget(parse_id(budget_id, "budget"))
    today = datetime.now(UTC).date()
    chart = None
    if analysis.phase != "upcoming":
        last = min(analysis.window_end, today)
        per_day = budgets.daily_spend(analysis.window_start, last, analysis.budget.feature_id)
        chart = budget_burn_chart(
            list(per_day),
            list(accumulate(per_day.values())),
            analysis.amount,
            analysis.window_end,
            analysis.projected_spend,
        )
    history = budgets.budget_history(analysis.budget)
    degrade_to = analysis.budget.degrade_to_model_id
    degrade_to_label = ai_models.get_model(degrade_to).display_name if degrade_to else None
    return render_page(
        "budgets/detail.html",
        "content",
        analysis=analysis,
        budget=analysis.budget,
        chart=chart,
        history=list(reversed(history)),
        amounts=budgets.amount_history(analysis.budget),
        degrade_to_label=degrade_to_label,
    )


@bp.get("/<budget_id>/edit")
@admin_only
def edit(budget_id: str) -> tuple[str, int]:
    budget = budgets.get_budget(parse_id(budget_id, "budget"))
    form = {key: getattr(budget, key) for key in FORM_FIELDS}
    form = {key: "" if value is None else str(value) for key, value in form.items()}
    form["is_active"] = budget.is_active
    return _form_page(form, {}, budget)


@bp.post("/<budget_id>")
def update(budget_id: str) -> Response | tuple[str, int]:
    budget = budgets.get_budget(parse_id(budget_id, "budget"))
    form = _submitted()
    try:
        budgets.update_budget(actor_from_request(), budget.id, _service_fields(form))
    except ValidationFailed as error:
        form["is_active"] = request.form.get("is_active") == "on"
        return _form_page(form, error.errors, budget, status=400)
    flash(f"Budget {budget.name} saved.")
    return _saved(budget)


@bp.post("/<budget_id>/delete")
def delete(budget_id: str) -> Response:
    target = parse_id(budget_id, "budget")
    name = budgets.get_budget(target).name
    budgets.delete_budget(actor_from_request(), target)
    flash(f"Budget {name} deleted.")
    return go_to(url_for("budgets.index"))
