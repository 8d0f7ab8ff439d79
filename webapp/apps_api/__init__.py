"""The application API under ``/api/v1/``: bearer API keys, no cookies, no CSRF.

Its views never look at the browser session (``auth.guard_request`` skips them) and the
console's pages and admin API never look at API keys: one credential per audience.
"""

from flask import Blueprint

from webapp.extensions import csrf

bp = Blueprint("apps_api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

from webapp.apps_api import budgets, config, identity, openapi, otel, usage  # noqa: E402,F401  (registers the routes)
