"""/experiments endpoints: definition, lifecycle, assignment, results, analysis and
promotion of the winner. Unknown or malformed ids are 404, refused transitions 409."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from webapp.api import bp
from webapp.api.envelope import success_response
from webapp.api.parsing import json_object_body, parse_uuid, query_list
from webapp.api.schemas import ResultBatch
from webapp.auth import actor_from_request
from webapp.json_input import JSONRefused, request_json
from webapp.services.core.errors import NotFound, ValidationFailed
from webapp.services.core.validation import JsonInput, validated
from webapp.services.experiments import lifecycle as experiments


def _id(experiment_id: str):
    return parse_uuid(experiment_id, "experiment")


@bp.get("/experiments")
def list_experiments() -> Response:
    feature_id = request.args.get("feature_id")
    rows = experiments.list_experiments(
        statuses=query_list("status"),
        feature_id=_feature_filter(feature_id) if feature_id else None,
    )
    data = [{**experiments.experiment_as_dict(e), "feature_name": name} for e, name in rows]
    return success_response(data, metadata={"count": len(data)})


def _feature_filter(value: str):
    try:
        return parse_uuid(value, "feature")
    except NotFound:  # a filter, not an address: a malformed one is a 400
        raise ValidationFailed({"feature_id": "must be a feature id"}) from None


@bp.post("/experiments")
def create_experiment() -> Response:
    experiment = experiments.create_experiment(actor_from_request(), json_object_body())
    return success_response(experiments.experiment_as_dict(experiment), status=201)


@bp.get("/experiments/<experiment_id>")
def get_experiment(experiment_id: str) -> Response:
    return success_response(
        experiments.experiment_as_dict(experiments.get_experiment(_id(experiment_id)))
    )


@bp.put("/experiments/<experiment_id>")
def put_experiment(experiment_id: str) -> Response:
    target = _id(experiment_id)
    experiment = experiments.update_experiment(actor_from_request(), target, json_object_body())
    return success_response(experiments.experiment_as_dict(experiment))


@bp.delete("/experiments/<experiment_id>")
def delete_experiment(experiment_id: str) -> Response:
    experiments.delete_experiment(actor_from_request(), _id(experiment_id))
    return success_response(None)


def _transition(experiment_id: str, action: str) -> Response:
    experiment = experiments.transition(actor_from_request(), _id(experiment_id), action)
    return success_response(experiments.experiment_as_dict(experiment))


# One endpoint per action (not one route with a variable): each is named in the access
# policy and each write has its own audit case.
@bp.post("/experiments/<experiment_id>/start")
def start_experiment(experiment_id: str) -> Response:
    return _transition(experiment_id, "start")


@bp.post("/experiments/<experiment_id>/pause")
def pause_experiment(experiment_id: str) -> Response:
    return _transition(experiment_id, "pause")


@bp.post("/experiments/<experiment_id>/resume")
def resume_experiment(experiment_id: str) -> Response:
    return _transition(experiment_id, "resume")


@bp.post("/experiments/<experiment_id>/complete")
def complete_experiment(experiment_id: str) -> Response:
    return _transition(experiment_id, "complete")


@bp.post("/experiments/<experiment_id>/cancel")
def cancel_experiment(experiment_id: str) -> Response:
    return _transition(experiment_id, "cancel")


@bp.get("/experiments/<experiment_id>/assignment")
def experiment_assignment(experiment_id: str) -> Response:
    target = _id(experiment_id)
    return success_response(experiments.assign(target, request.args.get("subject", "")).as_dict())


def _results_body() -> Any:
    """A JSON array of results, or an object ``{"results": [...]}``."""
    try:
        body = request_json()
    except JSONRefused as refused:
        raise ValidationFailed({refused.path: refused.problem}, "Malformed JSON") from None
    except ValueError:
        body = None
    if isinstance(body, dict):
        return validated(ResultBatch, JsonInput({"results": None, **body})).results
    if isinstance(body, list):
        return body
    raise ValidationFailed(
        {"results": "must be a JSON array of results sent with Content-Type: application/json"}
    )


@bp.post("/experiments/<experiment_id>/results")
def record_experiment_results(experiment_id: str) -> Response:
    target = _id(experiment_id)
    batch = experiments.record_results(actor_from_request(), target, _results_body())
    return success_response(
        {"accepted": batch.accepted, "refused": batch.refused},
        status=201,
        metadata={"accepted": batch.accepted, "refused": len(batch.refused)},
    )


@bp.get("/experiments/<experiment_id>/analysis")
def experiment_analysis(experiment_id: str) -> Response:
    return success_response(experiments.analyze(_id(experiment_id)).as_dict())


@bp.post("/experiments/<experiment_id>/promote")
def promote_experiment(experiment_id: str) -> Response:
    promotion = experiments.promote(actor_from_request(), _id(experiment_id))
    return success_response(
        experiments.experiment_as_dict(promotion.experiment),
        metadata={"message": promotion.message, "promoted_variant": promotion.variant},
    )
