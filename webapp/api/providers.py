"""/providers endpoints."""

from __future__ import annotations

from flask import Response, request
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from webapp.api import bp
from webapp.api.envelope import success_response
from webapp.api.parsing import json_object_body, parse_uuid, query_int
from webapp.auth import actor_from_request
from webapp.reauth import health_check_url_changes, reauthentication_needed
from webapp.services.catalog import ai_models, providers
from webapp.services.health import provider_health
from webapp.services.usage import windows


@bp.get("/providers")
def list_providers() -> Response:
    hint = current_user.is_admin
    data = [
        providers.provider_as_dict(p, count, with_hint=hint)
        for p, count in providers.list_providers()
    ]
    return success_response(data, metadata={"count": len(data)})


@bp.post("/providers")
def create_provider() -> BaseResponse:
    body = json_object_body()
    # Setting an API key is as sensitive as a health-check URL: a recent sign-in.
    sensitive = health_check_url_changes(None, body) or "credentials" in body
    if sensitive and (answer := reauthentication_needed()):
        return answer
    provider = providers.create_provider(actor_from_request(), body)
    return success_response(providers.provider_as_dict(provider), status=201)


@bp.get("/providers/<provider_id>")
def get_provider(provider_id: str) -> Response:
    target = parse_uuid(provider_id, "provider")
    provider = providers.get_provider(target)
    data = providers.provider_as_dict(provider, with_hint=current_user.is_admin)
    data["models"] = [ai_models.model_as_dict(m) for m in ai_models.models_of_provider(target)]
    return success_response(data)


@bp.put("/providers/<provider_id>")
def put_provider(provider_id: str) -> BaseResponse:
    target = parse_uuid(provider_id, "provider")
    body = json_object_body()
    current = providers.get_provider(target).health_check
    sensitive = health_check_url_changes(current, body) or "credentials" in body
    if sensitive and (answer := reauthentication_needed()):
        return answer
    provider = providers.update_provider(actor_from_request(), target, body)
    return success_response(providers.provider_as_dict(provider))


@bp.delete("/providers/<provider_id>")
def delete_provider(provider_id: str) -> Response:
    providers.delete_provider(actor_from_request(), parse_uuid(provider_id, "provider"))
    return success_response(None)


@bp.get("/providers/<provider_id>/health")
def provider_health_history(provider_id: str) -> Response:
    """Current health, the features it serves (with alternatives) and the recorded checks
    of the last ``hours`` hours (1–720, default 24)."""
    target = parse_uuid(provider_id, "provider")
    providers.get_provider(target)
    hours = query_int("hours", 24, 1, provider_health.MAX_HISTORY_HOURS)
    time_range = windows.checked_range(request.args.get("time_range", "24h"))
    page = provider_health.provider_page(target, hours, time_range)
    data = {
        "current": page.health.as_dict(),
        "usage": page.usage.as_dict() | {"time_range": time_range},
        "affected_features": [item.as_dict() for item in page.affected],
        "history": [point.as_dict() for point in page.history.points],
    }
    return success_response(
        data,
        metadata={
            "hours": hours,
            "resolution": page.history.resolution,
            "count": len(page.history.points),
        },
    )
