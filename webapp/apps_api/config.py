"""What applications read: ``GET /api/v1/config/<feature>``, ``GET /api/v1/config`` and
``GET /api/v1/prompts/<name>`` (scope ``config:read``; the environment is the key's).

Thin: parse, call webapp.services.apps.runtime_config, answer with the ETag and
``Cache-Control``. A ``304`` is decided before any answer is built.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, current_app, request

from webapp.api.envelope import error_response
from webapp.apps_api import bp
from webapp.apps_api.keys import current_key, requires_key
from webapp.services.apps import runtime_config
from webapp.services.apps.runtime_config import ConfigCache, FeatureNotAllowed, Resolved
from webapp.services.core.errors import NotFound, ValidationFailed

CACHE_CONTROL = "private, max-age=30, stale-if-error=86400"
CACHE_KEY = "aipm.config_cache"


def config_cache(app: Flask) -> ConfigCache:
    """This process's cache (one per application object: each gunicorn worker has its own)."""
    cache = app.extensions.get(CACHE_KEY)
    if cache is None:
        cache = app.extensions.setdefault(
            CACHE_KEY, ConfigCache(budget_seconds=app.config.get("CONFIG_BUDGET_SECONDS", 10.0))
        )
    return cache


def _matches(etag: str) -> bool:
    # If-None-Match compares weakly (RFC 9110 §13.1.2): W/"x" matches "x", and * matches.
    return request.if_none_match.contains_weak(etag.strip('"'))


def _answer(resolved: Resolved) -> Response:
    if resolved.data is None:
        response = Response(status=304)
    else:
        body = json.dumps({"success": True, "data": resolved.data}, ensure_ascii=False)
        response = Response(body, status=200, mimetype="application/json")
    response.headers["ETag"] = resolved.etag
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["Vary"] = "Authorization"
    return response


def _refused(error: Exception) -> Response:
    if isinstance(error, FeatureNotAllowed):
        return error_response(403, "Feature not allowed", str(error), code="feature_not_allowed")
    if isinstance(error, NotFound):
        return error_response(404, "Not found", str(error), code="not_found")
    assert isinstance(error, ValidationFailed)
    return error_response(400, "Validation failed", str(error), error.errors)


def _resolve(call: Any, *args: Any) -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    secret = str(app.config["SECRET_KEY"]).encode()
    try:
        resolved = call(config_cache(app), secret, current_key(), *args)
    except (FeatureNotAllowed, NotFound, ValidationFailed) as error:
        return _refused(error)
    return _answer(resolved)


@bp.get("/config/<name>")
@requires_key("config:read")
def feature_config(name: str) -> Response:
    return _resolve(
        runtime_config.resolve_feature,
        name,
        request.args.get("subject"),
        datetime.now(UTC),
        _matches,
    )


@bp.get("/config")
@requires_key("config:read")
def all_config() -> Response:
    return _resolve(
        runtime_config.resolve_all, request.args.get("subject"), datetime.now(UTC), _matches
    )


@bp.get("/prompts/<name>")
@requires_key("config:read")
def prompt_version(name: str) -> Response:
    raw = request.args.get("version")
    version: int | None = None
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
            return _refused(ValidationFailed({"version": "must be a whole number from 1"}))
        version = int(raw)
    return _resolve(
        runtime_config.resolve_prompt, name, request.args.get("feature"), version, _matches
    )
