"""/models endpoints (AI models)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request

from webapp.api import bp
from webapp.api.envelope import success_response
from webapp.api.features import assignment_as_dict
from webapp.api.parsing import json_object_body, parse_uuid, query_environment, query_flag
from webapp.auth import actor_from_request
from webapp.models import AIModel
from webapp.services.catalog import ai_models
from webapp.services.catalog.schemas import flat_model_fields, model_errors
from webapp.services.core.errors import ValidationFailed


@bp.get("/models")
def list_models() -> Response:
    environment = query_environment()
    rows = ai_models.list_models(
        provider=request.args.get("provider") or None,
        model_type=request.args.get("model_type") or None,
        status=request.args.get("status") or None,
    )
    data = [ai_models.model_as_dict(model, provider) for model, provider in rows]
    if query_flag("include_metrics"):
        time_range = request.args.get("time_range", "24h")
        performance = ai_models.model_performance(
            [m.id for m, _ in rows], time_range, environment=environment
        )
        for item, (model, _) in zip(data, rows, strict=True):
            item["metrics"] = performance[model.id].as_dict()
    return success_response(data, metadata={"count": len(data)})


def _saved(save: Callable[[dict[str, Any]], AIModel]) -> AIModel:
    """``save`` the body's fields (its prices spread out of ``pricing``), naming price
    errors as the request does: pricing.<field>."""
    try:
        return save(flat_model_fields(json_object_body()))
    except ValidationFailed as error:
        raise model_errors(error) from None


@bp.post("/models")
def create_model() -> Response:
    created: list[ai_models.CreatedModel] = []

    def save(fields: dict[str, Any]) -> AIModel:
        created.append(ai_models.add_model(actor_from_request(), fields))
        return created[0].model

    model = _saved(save)
    data = ai_models.model_as_dict(model) | {"attached_usage_rows": created[0].attached_usage_rows}
    return success_response(data, status=201)


def _detail(model: AIModel) -> dict:
    data = ai_models.model_as_dict(model)
    time_range = request.args.get("time_range", "24h")
    environment = query_environment()
    performance = ai_models.model_performance([model.id], time_range, environment=environment)
    data["metrics"] = performance[model.id].as_dict()
    return data


@bp.get("/models/<model_id>")
def get_model(model_id: str) -> Response:
    return success_response(_detail(ai_models.get_model(parse_uuid(model_id, "model"))))


@bp.put("/models/<model_id>")
def put_model(model_id: str) -> Response:
    target = parse_uuid(model_id, "model")
    model = _saved(lambda fields: ai_models.update_model(actor_from_request(), target, fields))
    return success_response(ai_models.model_as_dict(model))


@bp.delete("/models/<model_id>")
def delete_model(model_id: str) -> Response:
    ai_models.delete_model(actor_from_request(), parse_uuid(model_id, "model"))
    return success_response(None)


@bp.get("/models/<model_id>/deployments")
def model_deployments(model_id: str) -> Response:
    rows = ai_models.deployment_history(parse_uuid(model_id, "model"))
    data = [
        {**assignment_as_dict(a), "feature_display_name": feature, "assigned_by_email": email}
        for a, feature, email in rows
    ]
    return success_response(data, metadata={"count": len(data)})
