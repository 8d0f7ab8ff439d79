"""What a new API key's input may hold (the admin API's body and the /api-keys form):
one pydantic model. The service adds what needs the database or the clock (the features
exist, the name is free, the expiry is in the future)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from webapp.models import API_KEY_SCOPES
from webapp.models.features import ENVIRONMENTS
from webapp.services.core.validation import Input, OneOf, Rule, Text, problem

MAX_KEY_NAME = 200
MAX_KEY_FEATURES = 1000


@dataclass(frozen=True)
class Scopes(Rule):
    """A non-empty list of distinct scopes, in the order ``API_KEY_SCOPES`` names them."""

    def validate(self, value: Any) -> list[str]:
        if value is None or value == [] or value == "":
            raise problem(f"must name at least one of {', '.join(API_KEY_SCOPES)}")
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise problem("must be a list of scopes")
        unknown = [item for item in value if item not in API_KEY_SCOPES]
        if unknown:
            raise problem(
                f"may only hold {', '.join(API_KEY_SCOPES)} (not {', '.join(sorted(unknown))})"
            )
        return [scope for scope in API_KEY_SCOPES if scope in value]

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "array",
            "items": {"type": "string", "enum": list(API_KEY_SCOPES)},
            "minItems": 1,
            "uniqueItems": True,
        }


@dataclass(frozen=True)
class FeatureIds(Rule):
    """Feature ids (UUIDs), each once; none (or an empty list) means every feature."""

    def validate(self, value: Any) -> list[uuid.UUID]:
        if value is None or value == "":
            return []
        if not isinstance(value, list):
            raise problem("must be a list of feature ids")
        if len(value) > MAX_KEY_FEATURES:
            raise problem(f"must contain at most {MAX_KEY_FEATURES} items")
        ids: list[uuid.UUID] = []
        for place, item in enumerate(value):
            try:
                feature_id = uuid.UUID(item) if isinstance(item, str) else None
            except ValueError:
                feature_id = None
            if feature_id is None:
                raise problem(f"item {place + 1} is not a feature id (a UUID)")
            if feature_id not in ids:
                ids.append(feature_id)
        return ids

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "array",
            "items": {"type": "string", "format": "uuid"},
            "maxItems": MAX_KEY_FEATURES,
            "description": "Empty or left out: the key may report for every feature.",
        }


@dataclass(frozen=True)
class Expiry(Rule):
    """An optional moment, in UTC. A JSON body must say its time zone (RFC 3339); the
    form's ``datetime-local`` field has none, and its label says the time is UTC."""

    def validate_input(self, value: Any, from_json: bool) -> datetime | None:
        if value is None or value == "":
            return None
        moment = None
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                moment = None
        elif isinstance(value, datetime):
            moment = value
        if moment is None or (moment.tzinfo is None and from_json):
            raise problem("must be a date and time with a time zone (e.g. 2027-01-31T12:00:00Z)")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        try:
            return moment.astimezone(UTC)
        # 9999-12-31T23:00-05:00 is after the last UTC moment, 0001-01-01T00:00+01:00
        # before the first.
        except OverflowError:
            raise problem("is outside the range of dates (years 1 to 9999 in UTC)") from None

    def json_schema(self) -> dict[str, Any]:
        return {
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
            "description": "When the key stops working; in the future. Left out: never.",
        }


class ApiKeyCreate(Input):
    """POST /api-keys and the create form on /api-keys."""

    unknown_field: ClassVar[str] = "is not a field of an API key"

    name: Annotated[str, Text(MAX_KEY_NAME)]
    environment: Annotated[str, OneOf(ENVIRONMENTS)]
    scopes: Annotated[list[str], Scopes()]
    feature_ids: Annotated[list[uuid.UUID], FeatureIds()] = []
    expires_at: Annotated[datetime | None, Expiry()] = None
