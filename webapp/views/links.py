"""Which page shows a resource. Services name resources by kind and id (an alert about a
budget, an audit event about a prompt); only the web layer knows URLs, and this is the
one place that maps a kind to its page. Templates call ``resource_url(kind, id)``."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask, url_for

# kind -> (endpoint of its page, name of the id argument)
RESOURCE_PAGES = {
    "feature": ("features.detail", "feature_id"),
    "model": ("models.detail", "model_id"),
    "provider": ("providers.detail", "provider_id"),
    "prompt": ("prompts.detail", "prompt_id"),
    "budget": ("budgets.detail", "budget_id"),
    "experiment": ("experiments.detail", "experiment_id"),
}


def resource_url(kind: str | None, resource_id: uuid.UUID | str | None) -> str | None:
    """The URL of the resource's page, or None when the kind has no page (users, sign-in
    events) or there is no id."""
    if kind not in RESOURCE_PAGES or resource_id is None:
        return None
    endpoint, argument = RESOURCE_PAGES[kind]
    values: dict[str, Any] = {argument: resource_id}
    return url_for(endpoint, **values)


# kind -> the requests page's filter naming a resource of that kind
REQUEST_FILTERS = {"feature": "feature_id", "model": "model_id", "provider": "provider_id"}


def failing_requests_url(kind: str, resource_id: uuid.UUID | str) -> str | None:
    """The requests page showing the resource's failed requests (error or timeout), or
    None for a kind the page cannot filter by."""
    if kind not in REQUEST_FILTERS:
        return None
    values: dict[str, Any] = {REQUEST_FILTERS[kind]: resource_id, "status": "failed"}
    return url_for("requests.index", **values)


def init_app(app: Flask) -> None:
    app.jinja_env.globals["resource_url"] = resource_url
    app.jinja_env.globals["failing_requests_url"] = failing_requests_url
