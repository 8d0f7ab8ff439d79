"""``GET /api/v1/whoami``: what the calling key is and may do (for an application to check
its configuration, and the benchmark's trivial key-authenticated endpoint)."""

from __future__ import annotations

from flask import Response

from webapp.api.envelope import success_response
from webapp.apps_api import bp
from webapp.apps_api.keys import current_key, requires_key


@bp.get("/whoami")
@requires_key(None)  # any key may ask what it is
def whoami() -> Response:
    key = current_key()
    return success_response(
        {
            "prefix": key.prefix,
            "environment": key.environment,
            "scopes": sorted(key.scopes),
            "feature_ids": sorted(str(feature_id) for feature_id in key.feature_ids),
        }
    )
