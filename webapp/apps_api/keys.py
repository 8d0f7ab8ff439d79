"""``@requires_key(scope)``: the only way into ``/api/v1/``."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, g
from limits import RateLimitItem, parse

from webapp.api.envelope import error_response
from webapp.extensions import limiter
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


@functools.lru_cache(maxsize=8)
def _rate_limit(value: str) -> RateLimitItem:
    return parse(value)


def seconds_until_allowed(key_id: str) -> int | None:
    """Count this request against the key's ``API_KEY_RATE_LIMIT`` (Flask-Limiter's
    storage and strategy, so several workers share the count with a redis:// storage).
    None when it is within the limit, else the whole seconds until the window has room
    again (at least 1)."""
    if not limiter.enabled:
        return None
    item = _rate_limit(current_app.config["API_KEY_RATE_LIMIT"])
    if limiter.limiter.hit(item, "api-key", key_id):
        return None
    reset_at = limiter.limiter.get_window_stats(item, "api-key", key_id).reset_time
    return max(1, math.ceil(reset_at - time.time()))


def describe_limit(item: RateLimitItem) -> str:
    """``1200 requests per minute``, ``5 requests per 10 seconds``."""
    unit = item.GRANULARITY.name
    window = f"{item.multiples} {unit}s" if item.multiples != 1 else unit
    return f"{item.amount} requests per {window}"


def rate_limited(retry_after: int) -> Response:
    limit = describe_limit(_rate_limit(current_app.config["API_KEY_RATE_LIMIT"]))
    response = error_response(
        429,
        "Too many requests",
        f"This API key may make {limit}. Retry in {retry_after} seconds.",
        code="rate_limited",
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def requires_key(
    scope: str | None, refusal: Callable[[Response], Response] | None = None
) -> Callable[[View], View]:
    """The request must carry an unrevoked, unexpired key with ``scope`` (None: any
    scope); the key is then ``current_key()`` and the database sees the role
    ``application``. ``refusal`` may re-encode the 401/403/429 answers (the OTLP endpoint
    answers in OTLP's own error format); status and headers stay."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            answer = _admit(scope)
            if answer is not None:
                return refusal(answer) if refusal else answer
            return view(*args, **kwargs)

        wrapper.application_api = True  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _admit(scope: str | None) -> Response | None:
    """None when the request's key may go on (then it is ``current_key()``), else the
    refusal."""
    from flask import request

    use_database_role(APPLICATION)
    try:
        key = authenticate_secret(bearer_token(request.headers.get("Authorization")))
    except KeyRefused as refused:
        return unauthorized(refused.reason)
    # Counted per key once it is known (an unknown secret has no key to count on).
    retry_after = seconds_until_allowed(str(key.id))
    if retry_after is not None:
        return rate_limited(retry_after)
    if scope is not None and scope not in key.scopes:
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
    return None


def current_key() -> AuthenticatedKey:
    key: AuthenticatedKey = g.api_key
    return key
