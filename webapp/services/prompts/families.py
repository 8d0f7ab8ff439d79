"""A prompt *family*: the versions sharing (feature, name). Shared by the version and the
environment use cases, which take the same lock so that they never interleave."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from webapp.extensions import db
from webapp.models import Prompt, PromptActivation


def same_family(name: str, feature_id: uuid.UUID | None) -> list[Any]:
    return [
        Prompt.name == name,
        Prompt.feature_id == feature_id if feature_id else Prompt.feature_id.is_(None),
    ]


def same_family_activations(name: str, feature_id: uuid.UUID | None) -> list[Any]:
    return [
        PromptActivation.name == name,
        (
            PromptActivation.feature_id == feature_id
            if feature_id
            else PromptActivation.feature_id.is_(None)
        ),
    ]


def lock_family(name: str, feature_id: uuid.UUID | None) -> None:
    """PostgreSQL: one writer per family at a time (released at commit). Elsewhere the
    partial unique indexes catch what a lock would have serialised."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:family))"),
            {"family": f"prompt:{feature_id or ''}:{name}"},
        )
