"""``@requires_key(scope)``: the only way into ``/api/v1/``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, g

from webapp.api.envelope import error_response
from webapp.rls import APPLICATION, use_database_role
from webapp.services.apps.authentication import (
    AuthenticatedKey,
    KeyRefused,
    authenticate_secret,
    mark_used,
)

View = TypeVar("View", bound=Callable[..., Any])

REFUSALS = {
    "missing": "Send the API key as 'Authorization: Bearer aipm_…'.",
    "malformed": "This is not an API key of this console.",
    "unknown": "No API key has this secret.",
    "revoked": "This API key was revoked.",
    "expired": "This API key has expired.",
}


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def unauthorized(reason: str) -> Response:
    response = error_response(401, "Invalid API key", REFUSALS[reason], code="invalid_api_key")
    challenge = 'Bearer realm="aipm"'
    if reason != "missing":
        challenge += ', error="invalid_token"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def requires_key(scope: str) -> Callable[[View], View]:
    """The request must carry an unrevoked, unexpired key with ``scope``; the key is then
    ``current_key()`` and the database sees the role ``application``."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from flask import request

            use_database_role(APPLICATION)
            try:
                key = authenticate_secret(bearer_token(request.headers.get("Authorization")))
            except KeyRefused as refused:
                return unauthorized(refused.reason)
            if scope not in key.scopes:
                response = error_response(
                    403,
                    "Missing scope",
                    f"This API key does not have the scope '{scope}'.",
                    code="insufficient_scope",
                )
                response.headers["WWW-Authenticate"] = (
                    f'Bearer realm="aipm", error="insufficient_scope", scope="{scope}"'
                )
                return response
            g.api_key = key
            mark_used(key.id)
            return view(*args, **kwargs)

        wrapper.application_api = True  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def current_key() -> AuthenticatedKey:
    key: AuthenticatedKey = g.api_key
    return key
