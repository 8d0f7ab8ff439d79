"""Changing a feature (the Features issue adds create, delete and assignments)."""

from __future__ import annotations

import uuid
from typing import Any

from webapp.extensions import db
from webapp.models import FEATURE_STATUSES, Feature
from webapp.services.audit import Actor, add_audit_row, changed_fields
from webapp.services.catalog import get_feature
from webapp.services.errors import ValidationFailed

EDITABLE_FIELDS = ("display_name", "description", "status", "config")


def feature_as_dict(feature: Feature) -> dict[str, Any]:
    return {
        "id": feature.id,
        "name": feature.name,
        "display_name": feature.display_name,
        "description": feature.description,
        "status": feature.status,
        "config": feature.config,
        "created_at": feature.created_at,
        "updated_at": feature.updated_at,
    }


def update_feature(actor: Actor, feature_id: uuid.UUID, changes: dict[str, Any]) -> Feature:
    """Apply ``changes`` (a subset of EDITABLE_FIELDS); audit only the fields that changed."""
    errors: dict[str, str] = {}
    for key in changes:
        if key not in EDITABLE_FIELDS:
            errors[key] = "is not a field that can be changed"
    if "display_name" in changes:
        name = (changes["display_name"] or "").strip()
        if not name or len(name) > 200:
            errors["display_name"] = "must be 1 to 200 characters"
        changes["display_name"] = name
    if "status" in changes and changes["status"] not in FEATURE_STATUSES:
        errors["status"] = f"must be one of {', '.join(FEATURE_STATUSES)}"
    if "config" in changes and not isinstance(changes["config"], dict):
        errors["config"] = "must be a JSON object"
    if errors:
        raise ValidationFailed(errors)

    feature = get_feature(feature_id)
    before = {key: getattr(feature, key) for key in changes}
    old_values, new_values = changed_fields(before, changes)
    if not new_values:
        return feature
    for key, value in changes.items():
        setattr(feature, key, value)
    add_audit_row(actor, "feature.update", "feature", feature.id, old_values, new_values)
    db.session.commit()
    return feature
