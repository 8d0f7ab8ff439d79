"""Ids in URLs: a malformed id cannot name anything, so it answers 404 like an unknown one."""

from __future__ import annotations

import uuid

from webapp.services.core.errors import NotFound


def parse_id(value: str, resource: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"{resource} {value} does not exist") from None
