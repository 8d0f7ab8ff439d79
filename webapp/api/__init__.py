"""The JSON API under /api/platform/ai-management/ (the seed's URL space and envelope)."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/platform/ai-management")

from webapp.api import (  # noqa: E402,F401  (routes)
    api_keys,
    experiments,
    features,
    models,
    openapi,
    playground,
    prompts,
    providers,
    spending,
)
