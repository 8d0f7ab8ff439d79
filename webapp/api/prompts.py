"""/prompts endpoints — the seed's contract: list, create, get, update, delete, plus
activate, deactivate, versions, duplicate, test, diff and tags; and per environment
(issue 15): activate/deactivate with an optional ``{"environment": …}`` (none: production,
as the seed meant), promote, rollback, the live version of each environment, history.

Malformed ids and parameters are 400 here (as the seed's contract says), unknown ids 404.
"""

from __future__ import annotations

import uuid

from flask import Response, request

from webapp.api import bp
from webapp.api.envelope import success_response
from webapp.api.parsing import json_object_body, parse_body, query_flag, query_int
from webapp.auth import actor_from_request
from webapp.services.core.errors import ValidationFailed
from webapp.services.prompts import environments
from webapp.services.prompts import versions as prompts
from webapp.services.prompts.schemas import (
    PromptDuplicate,
    PromptEnvironment,
    PromptPromote,
    PromptTest,
)


def _id(value: str, field: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed({field: "must be a UUID"}) from None


def _bool(name: str) -> bool | None:
    """Absent: no filter; otherwise true/false (also 1/0, yes/no, any case) or a 400."""
    if not request.args.get(name):
        return None
    return query_flag(name)


@bp.get("/prompts")
def list_prompts() -> Response:
    feature_id = request.args.get("feature_id")
    created_by = request.args.get("created_by")
    tags = [t.strip() for t in request.args.get("tags", "").split(",") if t.strip()]
    page = prompts.list_prompts(
        feature_id=_id(feature_id, "feature_id") if feature_id else None,
        tags=tags or None,
        is_active=_bool("is_active"),
        created_by=_id(created_by, "created_by") if created_by else None,
        search=request.args.get("search"),
        limit=query_int("limit", 50, 1, prompts.MAX_LIMIT),
        offset=query_int("offset", 0, 0, 10**9),
    )
    data = [prompts.prompt_as_dict(p) for p in page.prompts]
    return success_response(
        data,
        metadata={
            "count": len(data),
            "limit": page.limit,
            "offset": page.offset,
            "total": page.total,
        },
    )


@bp.post("/prompts")
def create_prompt() -> Response:
    prompt = prompts.create_prompt(actor_from_request(), json_object_body())
    return success_response(prompts.prompt_as_dict(prompt), status=201)


@bp.get("/prompts/tags")
def prompt_tags() -> Response:
    tags = prompts.all_tags()
    return success_response(tags, metadata={"count": len(tags)})


@bp.get("/prompts/<prompt_id>")
def get_prompt(prompt_id: str) -> Response:
    return success_response(prompts.prompt_as_dict(prompts.get_prompt(_id(prompt_id))))


@bp.put("/prompts/<prompt_id>")
def put_prompt(prompt_id: str) -> Response:
    target = _id(prompt_id)
    body = json_object_body()
    before = prompts.get_prompt(target).version
    prompt = prompts.update_prompt(actor_from_request(), target, body)
    return success_response(
        prompts.prompt_as_dict(prompt),
        metadata={"new_version": prompt.id != target, "previous_version": before},
    )


@bp.delete("/prompts/<prompt_id>")
def delete_prompt(prompt_id: str) -> Response:
    prompts.delete_prompt(actor_from_request(), _id(prompt_id))
    return success_response(None)


def _environment() -> str:
    """The body's environment; no body at all (the seed's call) means production."""
    if not request.get_data(cache=True):
        return environments.PRODUCTION
    return parse_body(PromptEnvironment).environment


def _result_response(result: environments.ActivationResult, **extra: object) -> Response:
    return success_response(
        prompts.prompt_as_dict(result.prompt),
        metadata={
            "environment": result.environment,
            "changed": result.changed,
            "message": result.message,
            "live_in": environments.live_environments(result.prompt.id),
            **extra,
        },
    )


@bp.post("/prompts/<prompt_id>/activate")
def activate_prompt(prompt_id: str) -> Response:
    target = _id(prompt_id)
    environment = _environment()
    return _result_response(environments.activate_prompt(actor_from_request(), target, environment))


@bp.post("/prompts/<prompt_id>/deactivate")
def deactivate_prompt(prompt_id: str) -> Response:
    target = _id(prompt_id)
    environment = _environment()
    return _result_response(
        environments.deactivate_prompt(actor_from_request(), target, environment)
    )


@bp.post("/prompts/<prompt_id>/promote")
def promote_prompt(prompt_id: str) -> Response:
    target = _id(prompt_id)
    body = parse_body(PromptPromote)
    result = environments.promote_prompt(actor_from_request(), target, body.to_environment)
    return _result_response(
        result, from_environment=environments.PROMOTES_FROM[body.to_environment]
    )


@bp.post("/prompts/<prompt_id>/rollback")
def rollback_prompt(prompt_id: str) -> Response:
    """Roll back the family of this version in one environment."""
    target = _id(prompt_id)
    environment = parse_body(PromptEnvironment).environment
    family = prompts.get_prompt(target)
    result = environments.rollback_prompt(
        actor_from_request(), family.feature_id, family.name, environment
    )
    return _result_response(result)


@bp.get("/prompts/<prompt_id>/environments")
def prompt_environments(prompt_id: str) -> Response:
    live = environments.live_by_environment(_id(prompt_id))
    return success_response(
        {
            environment: environments.activation_as_dict(entry) if entry else None
            for environment, entry in live.items()
        }
    )


@bp.get("/prompts/<prompt_id>/activations")
def prompt_activations(prompt_id: str) -> Response:
    target = _id(prompt_id)
    environment = request.args.get("environment") or None
    if environment is not None:
        environments.check_environment(environment)
    family = prompts.get_prompt(target)
    rows = environments.history(family.feature_id, family.name, environment)
    data = [environments.activation_as_dict(entry) for entry in rows]
    return success_response(data, metadata={"count": len(data)})


@bp.get("/prompts/<prompt_id>/versions")
def prompt_versions(prompt_id: str) -> Response:
    data = [prompts.prompt_as_dict(p) for p in prompts.versions(_id(prompt_id))]
    return success_response(data, metadata={"count": len(data)})


@bp.post("/prompts/<prompt_id>/duplicate")
def duplicate_prompt(prompt_id: str) -> Response:
    body = parse_body(PromptDuplicate)
    copy = prompts.duplicate(actor_from_request(), _id(prompt_id), body.name)
    return success_response(prompts.prompt_as_dict(copy), status=201)


@bp.post("/prompts/<prompt_id>/test")
def test_prompt(prompt_id: str) -> Response:
    body = parse_body(PromptTest)
    trial = prompts.try_render(_id(prompt_id), body.variables)
    result = trial.result
    return success_response(
        {
            "rendered": result.rendered,
            "variables_used": result.variables_used,
            "missing_variables": result.missing,
            "extra_variables": result.extra,
            "type_errors": result.type_errors,
            "errors": result.errors,
            "warnings": result.warnings,
            "valid": result.ok,
            "estimates": {
                "tokens": trial.tokens,
                "token_method": "characters / 4, rounded up",
                "model": trial.model.name if trial.model else None,
                "cost_usd": trial.cost,
            },
        }
    )


@bp.get("/prompts/<prompt_id>/diff")
def diff_prompt(prompt_id: str) -> Response:
    against = request.args.get("against")
    if not against:
        raise ValidationFailed({"against": "is required (the id of another version)"})
    result = prompts.diff(_id(prompt_id), _id(against, "against"))
    return success_response(
        {
            "old": {"id": result.old.id, "version": result.old.version},
            "new": {"id": result.new.id, "version": result.new.version},
            "unified_diff": result.unified,
            "lines": [{"change": kind, "old": old, "new": new} for kind, old, new in result.rows],
        }
    )
