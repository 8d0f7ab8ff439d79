"""Reading request input for the API: a JSON object body and pydantic schemas, turning
every problem into a ValidationFailed that names each wrong field."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from webapp.services.errors import NotFound, ValidationFailed

Schema = TypeVar("Schema", bound=BaseModel)


def json_object_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None:
        raise ValidationFailed(
            {"body": "must be valid JSON sent with Content-Type: application/json"},
            "Malformed JSON",
        )
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "must be a JSON object"}, "Malformed JSON")
    return body


def parse_body(schema: type[Schema]) -> Schema:
    try:
        return schema.model_validate(json_object_body())
    except ValidationError as error:
        raise ValidationFailed(
            {
                ".".join(str(part) for part in item["loc"]) or "body": item["msg"]
                for item in error.errors()
            }
        ) from None


def parse_uuid(value: str, resource: str) -> uuid.UUID:
    """A malformed id cannot name anything: answer 404 like an unknown one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"{resource} {value} does not exist") from None
