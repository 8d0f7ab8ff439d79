"""/spending (the seed's contract), /budgets/<id>, /usage and /usage.csv."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from webapp.api import bp
from webapp.api.envelope import error_response, success_response
from webapp.api.parsing import (
    json_object_body,
    parse_uuid,
    query_environment,
    query_int,
    with_environment,
)
from webapp.auth import actor_from_request
from webapp.csv_export import csv_download, guard_columns
from webapp.services.core.errors import ValidationFailed
from webapp.services.spending import budgets
from webapp.services.spending.analytics import spending_breakdown, spending_trends
from webapp.services.spending.recommendations import cost_recommendations
from webapp.services.spending.schemas import REQUIRED
from webapp.services.usage import logs
from webapp.services.usage.windows import checked_environment

ACTIONS = ("breakdown", "budgets", "recommendations", "trends")


def breakdown_as_dict(result: Any) -> dict[str, Any]:
    return {
        "total_spend": result.total_spend,
        "total_requests": result.total_requests,
        "period_start": result.period_start,
        "period_end": result.period_end,
        "by_feature": [vars(row) for row in result.by_feature],
        "by_model": [vars(row) for row in result.by_model],
        "by_provider": [vars(row) for row in result.by_provider],
        "by_day": [vars(row) for row in result.by_day],
    }


@bp.get("/spending")
def get_spending() -> Response:
    action = request.args.get("action") or "breakdown"
    if action == "breakdown":
        missing = [name for name in ("start_date", "end_date") if not request.args.get(name)]
        environment = request.args.get("environment")
        if missing:
            fields = dict.fromkeys(missing, "is required")
            try:
                checked_environment(environment)
            except ValidationFailed as error:
                fields |= error.errors
            return error_response(
                400, "start_date and end_date are required for breakdown", fields=fields
            )
        result = spending_breakdown(
            request.args["start_date"],
            request.args["end_date"],
            environment=environment,
            with_chart=False,
        )
        metadata = with_environment({}, environment) or None
        return success_response(breakdown_as_dict(result), metadata=metadata)
    if action == "budgets":
        return success_response([a.as_dict() for a in budgets.analyse_budgets()])
    if action == "recommendations":
        return success_response(cost_recommendations())
    if action == "trends":
        environment = query_environment()
        trends = spending_trends(query_int("days", 30, 1, 365), environment=environment)
        data = vars(trends) | {"daily_data": [vars(d) for d in trends.daily_data]}
        return success_response(data, metadata=with_environment({}, environment) or None)
    return error_response(
        400, "Invalid action parameter", fields={"action": f"must be one of {', '.join(ACTIONS)}"}
    )


def _create_budget() -> Response:
    body = json_object_body()
    missing = [name for name in REQUIRED if body.get(name) in (None, "")]
    try:
        budget = budgets.create_budget(actor_from_request(), body)
    except ValidationFailed as error:
        if not missing:
            raise
        # The seed's message, with every wrong field (missing or not) in "fields".
        return error_response(
            400, f"Missing required fields: {', '.join(missing)}", fields=error.errors
        )
    return success_response(budgets.budget_as_dict(budget), status=201)


@bp.post("/spending")
def create_budget() -> Response:
    return _create_budget()


@bp.post("/budgets")
def create_budget_alias() -> Response:
    return _create_budget()


@bp.get("/budgets")
def list_budgets() -> Response:
    data = [a.as_dict() for a in budgets.analyse_budgets(rows=budgets.list_budgets())]
    return success_response(data, metadata={"count": len(data)})


@bp.get("/budgets/<budget_id>")
def get_budget(budget_id: str) -> Response:
    target = parse_uuid(budget_id, "budget")
    analysis = budgets.analyse_budget(target)
    data = analysis.as_dict()
    data["history"] = [p.as_dict() for p in budgets.budget_history(analysis.budget)]
    return success_response(data)


@bp.put("/budgets/<budget_id>")
def put_budget(budget_id: str) -> Response:
    target = parse_uuid(budget_id, "budget")
    budget = budgets.update_budget(actor_from_request(), target, json_object_body())
    return success_response(budgets.budget_as_dict(budget))


@bp.delete("/budgets/<budget_id>")
def delete_budget(budget_id: str) -> Response:
    budgets.delete_budget(actor_from_request(), parse_uuid(budget_id, "budget"))
    return success_response(None)


@bp.get("/usage")
def list_usage() -> Response:
    filters = logs.usage_filter(request.args)
    limit = query_int("limit", 50, 1, 500)
    page, following = logs.list_usage(filters, limit, request.args.get("cursor") or None)
    return success_response(
        page, metadata={"count": len(page), "limit": limit, "next_cursor": following}
    )


@bp.get("/usage.csv")
def export_usage() -> Response:
    filters = logs.usage_filter(request.args)  # wrong filters: 400 before streaming
    return csv_download(
        "usage.csv",
        logs.COLUMNS,
        lambda: logs.usage_csv_rows(filters),
        cells=guard_columns(logs.TEXT_COLUMNS),
    )
