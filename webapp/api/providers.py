"""/providers endpoints."""

from __future__ import annotations

from flask import Response

from webapp.api import bp
from webapp.api.envelope import success_response
from webapp.api.parsing import parse_body, parse_uuid
from webapp.api.schemas import ProviderCreate, ProviderUpdate
from webapp.auth import actor_from_request
from webapp.services import ai_models, providers


@bp.get("/providers")
def list_providers() -> Response:
    data = [providers.provider_as_dict(p, count) for p, count in providers.list_providers()]
    return success_response(data, metadata={"count": len(data)})


@bp.post("/providers")
def create_provider() -> Response:
    body = parse_body(ProviderCreate).model_dump(exclude_unset=True)
    provider = providers.create_provider(actor_from_request(), body)
    return success_response(providers.provider_as_dict(provider), status=201)


@bp.get("/providers/<provider_id>")
def get_provider(provider_id: str) -> Response:
    target = parse_uuid(provider_id, "provider")
    provider = providers.get_provider(target)
    data = providers.provider_as_dict(provider)
    data["models"] = [ai_models.model_as_dict(m) for m in ai_models.models_of_provider(target)]
    return success_response(data)


@bp.put("/providers/<provider_id>")
def put_provider(provider_id: str) -> Response:
    target = parse_uuid(provider_id, "provider")
    body = parse_body(ProviderUpdate).model_dump(exclude_unset=True)
    provider = providers.update_provider(actor_from_request(), target, body)
    return success_response(providers.provider_as_dict(provider))


@bp.delete("/providers/<provider_id>")
def delete_provider(provider_id: str) -> Response:
    providers.delete_provider(actor_from_request(), parse_uuid(provider_id, "provider"))
    return success_response(None)
