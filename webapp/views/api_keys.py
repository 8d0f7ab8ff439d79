"""/api-keys: the keys applications use (viewers may look; admins issue and revoke).

A new key's secret is rendered into the answer to the create form and nowhere else: not
in a URL, not in the session or a flash cookie, not in any later page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from webapp import one_time
from webapp.auth import actor_from_request, is_htmx_request
from webapp.models import API_KEY_SCOPES
from webapp.models.apps import REJECTION_CODES
from webapp.models.features import ENVIRONMENTS
from webapp.reauth import requires_reauthentication
from webapp.responses import go_to, render_page
from webapp.services.apps import keys
from webapp.services.catalog import features
from webapp.services.core.errors import Conflict, ValidationFailed
from webapp.services.core.ids import parse_id

bp = Blueprint("api_keys", __name__, url_prefix="/api-keys")

FORM_FIELDS = ("name", "environment", "scopes", "feature_ids", "expires_at")


def _page(status: int = 200, **context: Any) -> tuple[str, int]:
    context.setdefault("form", {"environment": "production", "scopes": list(API_KEY_SCOPES)})
    context.setdefault("errors", {})
    context.setdefault("new_key", None)
    feature_rows = [row.feature for row in features.list_features()]
    html = render_page(
        "api_keys/index.html",
        "page",
        listings=keys.list_api_keys(),
        feature_rows=feature_rows,
        feature_names={str(feature.id): feature.display_name for feature in feature_rows},
        environments=ENVIRONMENTS,
        scopes=API_KEY_SCOPES,
        rejection_codes=REJECTION_CODES,
        ingestion_hours=keys.INGESTION_HOURS,
        **context,
    )
    return html, status


SECRET_HANDOVER = "new API key"  # shown once by the keys page


@bp.get("")
def index() -> tuple[str, int]:
    return _page(new_key=one_time.take(SECRET_HANDOVER))


@bp.post("")
@requires_reauthentication  # a key opens the ingestion API: as sensitive as a password
def create() -> Response | tuple[str, int]:
    form: dict[str, Any] = {
        "name": request.form.get("name", ""),
        "environment": request.form.get("environment", ""),
        "scopes": request.form.getlist("scopes"),
        "feature_ids": [value for value in request.form.getlist("feature_ids") if value],
        "expires_at": request.form.get("expires_at", "").strip(),
    }
    try:
        key, secret = keys.create_api_key(actor_from_request(), form)
    except ValidationFailed as error:
        return _page(400, form=form, errors=error.errors)
    except Conflict as error:
        return _page(409, form=form, errors={error.field or "name": error.message})
    new_key = {"name": key.name, "prefix": key.prefix, "secret": secret}
    if is_htmx_request():  # swapped into /api-keys: the address stays the page's
        return _page(201, new_key=new_key)
    # Post/redirect/get: the keys page shows the secret once (encrypted on its way).
    one_time.hand_over(SECRET_HANDOVER, new_key)
    return redirect(url_for("api_keys.index"))


@bp.post("/<key_id>/revoke")
def revoke(key_id: str) -> Response:
    key = keys.revoke_api_key(actor_from_request(), parse_id(key_id, "API key"))
    flash(f"The key {key.name} ({key.prefix}…) is revoked: its next request is refused.")
    return go_to(url_for("api_keys.index"))
