"""/api-keys endpoints: list keys (viewers too), issue one (admins, after a recent
sign-in or re-authentication: a key opens the ingestion API), revoke one."""

from __future__ import annotations

from flask import Response

from webapp.api import bp
from webapp.api.envelope import success_response
from webapp.api.parsing import json_object_body
from webapp.auth import actor_from_request
from webapp.reauth import requires_reauthentication
from webapp.services.apps import keys
from webapp.services.core.ids import parse_id


@bp.get("/api-keys")
def list_api_keys() -> Response:
    data = [keys.listing_as_dict(listing) for listing in keys.list_api_keys()]
    return success_response(
        data, metadata={"count": len(data), "ingestion_window_hours": keys.INGESTION_HOURS}
    )


@bp.post("/api-keys")
@requires_reauthentication
def create_api_key() -> Response:
    key, secret = keys.create_api_key(actor_from_request(), json_object_body())
    # The only answer that ever holds the secret.
    return success_response({**keys.key_as_dict(key), "secret": secret}, status=201)


@bp.post("/api-keys/<key_id>/revoke")
def revoke_api_key(key_id: str) -> Response:
    key = keys.revoke_api_key(actor_from_request(), parse_id(key_id, "API key"))
    return success_response(keys.key_as_dict(key))
