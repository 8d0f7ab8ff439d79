"""/features endpoints: features, their health, usage and model assignments."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from webapp.api import bp
from webapp.api.envelope import success_response
from webapp.api.parsing import (
    json_object_body,
    parse_body,
    parse_uuid,
    query_environment,
    query_flag,
    query_int,
    query_list,
    with_environment,
)
from webapp.api.schemas import AssignModel, FeatureBulkUpdate, Rollback
from webapp.auth import actor_from_request
from webapp.models import FeatureModelAssignment
from webapp.services.catalog import assignments, features
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.validation import check
from webapp.services.usage import windows


def _row_as_dict(row: features.FeatureRow) -> dict[str, Any]:
    data = features.feature_as_dict(row.feature)
    data["active_models"] = {
        env: {"id": model.id, "name": model.name, "display_name": model.display_name}
        for env, model in row.models_by_environment.items()
    }
    if row.metrics is not None:
        data["metrics"] = row.metrics.as_dict()
    return data


def assignment_as_dict(assignment: FeatureModelAssignment) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "feature_id": assignment.feature_id,
        "model_id": assignment.model_id,
        "environment": assignment.environment,
        "is_active": assignment.is_active,
        "config_overrides": assignment.config_overrides,
        "assigned_at": assignment.assigned_at,
        "assigned_by": assignment.assigned_by,
        "deactivated_at": assignment.deactivated_at,
    }


@bp.get("/features")
def list_features() -> Response:
    time_range = request.args.get("time_range", "24h")
    windows.checked_range(time_range)  # an unknown range is a 400 even without metrics
    environment = query_environment()
    rows = features.list_features(
        statuses=query_list("status"),
        include_metrics=query_flag("include_metrics"),
        time_range=time_range,
        environment=environment,
    )
    data = [_row_as_dict(row) for row in rows]
    return success_response(
        data,
        metadata=with_environment({"count": len(data), "time_range": time_range}, environment),
    )


@bp.post("/features")
def create_feature() -> Response:
    feature = features.create_feature(actor_from_request(), json_object_body())
    return success_response(features.feature_as_dict(feature), status=201)


@bp.put("/features/bulk")
def bulk_update_features() -> Response:
    body = json_object_body()
    # The envelope here; the items in the service, which names every item's problems
    # (and every unknown feature) at once.
    envelope = check(FeatureBulkUpdate, body).errors
    if not isinstance(body.get("items"), list) or set(envelope) - {
        key for key in envelope if key.startswith("items.")
    }:
        raise ValidationFailed(envelope)
    updated = features.bulk_update_features(actor_from_request(), body["items"])
    data = [features.feature_as_dict(f) for f in updated]
    return success_response(data, metadata={"count": len(data)})


@bp.get("/features/<feature_id>")
def get_feature(feature_id: str) -> Response:
    target = parse_uuid(feature_id, "feature")
    time_range = request.args.get("time_range", "24h")
    environment = query_environment()
    feature = features.get_feature(target)
    models = features.active_models([target]).get(target, {})
    health = features.feature_health(target, time_range, environment=environment)
    row = features.FeatureRow(feature, models, health)
    return success_response(
        _row_as_dict(row), metadata=with_environment({"time_range": time_range}, environment)
    )


@bp.put("/features/<feature_id>")
def put_feature(feature_id: str) -> Response:
    target = parse_uuid(feature_id, "feature")
    feature = features.update_feature(actor_from_request(), target, json_object_body())
    return success_response(features.feature_as_dict(feature))


@bp.delete("/features/<feature_id>")
def delete_feature(feature_id: str) -> Response:
    features.delete_feature(actor_from_request(), parse_uuid(feature_id, "feature"))
    return success_response(None)


@bp.get("/features/<feature_id>/usage")
def feature_usage(feature_id: str) -> Response:
    days = query_int("days", 30, 1, 366)
    environment = query_environment()
    series = features.usage_by_day(parse_uuid(feature_id, "feature"), days, environment=environment)
    data = [
        {"date": d.day, "requests": d.requests, "errors": d.errors, "cost": d.cost} for d in series
    ]
    return success_response(data, metadata=with_environment({"days": days}, environment))


@bp.get("/features/<feature_id>/assignments")
def feature_assignments(feature_id: str) -> Response:
    rows = assignments.history(parse_uuid(feature_id, "feature"))
    data = [
        {
            **assignment_as_dict(a),
            "model": {"id": m.id, "name": m.name, "display_name": m.display_name},
            "assigned_by_email": email,
        }
        for a, m, email in rows
    ]
    return success_response(data, metadata={"count": len(data)})


@bp.post("/features/<feature_id>/assignments")
def assign_model(feature_id: str) -> Response:
    target = parse_uuid(feature_id, "feature")
    body = parse_body(AssignModel)
    result = assignments.assign_model(
        actor_from_request(), target, body.model_id, body.environment, body.config_overrides
    )
    return success_response(
        assignment_as_dict(result.assignment),
        status=201 if result.changed else 200,
        metadata={"changed": result.changed, "message": result.message},
    )


@bp.post("/features/<feature_id>/assignments/rollback")
def rollback_assignment(feature_id: str) -> Response:
    body = parse_body(Rollback)
    result = assignments.rollback(
        actor_from_request(), parse_uuid(feature_id, "feature"), body.environment
    )
    return success_response(
        assignment_as_dict(result.assignment),
        status=201,
        metadata={"changed": result.changed, "message": result.message},
    )
