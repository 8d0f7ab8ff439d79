"""/features endpoints of the JSON API (the Features issue completes the set)."""

from __future__ import annotations

from typing import Any, Literal

from flask import Response
from pydantic import BaseModel, ConfigDict, Field

from webapp.api import bp
from webapp.api.envelope import success_response
from webapp.api.parsing import parse_body, parse_uuid
from webapp.auth import actor_from_request
from webapp.models import FEATURE_STATUSES
from webapp.services import catalog
from webapp.services.features import feature_as_dict, update_feature

FeatureStatus = Literal[FEATURE_STATUSES]  # type: ignore[valid-type]


class FeatureUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    status: FeatureStatus | None = None
    config: dict[str, Any] | None = None


@bp.get("/features")
def list_features() -> Response:
    rows = catalog.list_features()
    data = [
        {**feature_as_dict(row.feature), "active_models": row.models_by_environment} for row in rows
    ]
    return success_response(data, metadata={"count": len(data)})


@bp.get("/features/<feature_id>")
def get_feature(feature_id: str) -> Response:
    feature = catalog.get_feature(parse_uuid(feature_id, "feature"))
    return success_response(feature_as_dict(feature))


@bp.put("/features/<feature_id>")
def put_feature(feature_id: str) -> Response:
    target = parse_uuid(feature_id, "feature")
    update = parse_body(FeatureUpdate)
    feature = update_feature(actor_from_request(), target, update.model_dump(exclude_unset=True))
    return success_response(feature_as_dict(feature))
