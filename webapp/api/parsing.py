"""Reading request input for the API: JSON object bodies through pydantic schemas, and
query-string values, turning every problem into a ValidationFailed that names the field."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request

from webapp.json_input import JSONRefused, request_json
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.ids import parse_id
from webapp.services.core.validation import Input, JsonInput, validated
from webapp.services.usage.windows import checked_environment

Schema = TypeVar("Schema", bound=Input)


def json_body() -> Any:
    """The parsed JSON body; a ValidationFailed naming the place of a refused value (NaN,
    lone surrogates, too deep: see webapp/json_input.py) or saying it is not JSON."""
    try:
        return request_json()
    except JSONRefused as refused:
        raise ValidationFailed({refused.path: refused.problem}, "Malformed JSON") from None
    except ValueError:
        raise ValidationFailed(
            {"body": "must be valid JSON sent with Content-Type: application/json"},
            "Malformed JSON",
        ) from None


def json_object_body() -> JsonInput:
    """The JSON object body, marked as JSON for the input models (see ``JsonInput``)."""
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "must be a JSON object"}, "Malformed JSON")
    return JsonInput(body)


def parse_body(schema: type[Schema]) -> Schema:
    """The JSON object body as ``schema`` (an input model), or ``ValidationFailed``
    naming every wrong field."""
    return validated(schema, json_object_body())


parse_uuid = parse_id  # the API's name for it


def query_flag(name: str, default: bool = False) -> bool:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ValidationFailed({name: "must be true or false"})


def query_list(name: str) -> list[str] | None:
    value = request.args.get(name)
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def query_int(name: str, default: int, low: int, high: int) -> int:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValidationFailed({name: f"must be a whole number from {low} to {high}"}) from None
    if not low <= number <= high:
        raise ValidationFailed({name: f"must be a whole number from {low} to {high}"})
    return number


def query_environment() -> str | None:
    """The ``environment`` query parameter: one of the environments, or None (absent or
    empty: every environment); another value is a 400 naming ``environment``."""
    return checked_environment(request.args.get("environment"))


def with_environment(metadata: dict[str, Any], environment: str | None) -> dict[str, Any]:
    """``metadata`` saying which environment the figures are of, when one was asked for
    (without one the answer stays exactly the seed's)."""
    return metadata | {"environment": environment} if environment else metadata
