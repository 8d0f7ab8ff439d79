"""What a usage event may hold (``record_usage``: demo data, tests, ingestion): one
pydantic model. The service adds what needs the database (the feature, model and prompt
exist; a cost when no model prices the event)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from webapp.models import ENVIRONMENTS, USAGE_STATUSES
from webapp.services.core.validation import Amount, Id, Input, JsonObject, OneOf, Rule, problem

MAX_TOKENS = 2**31 - 1  # the columns are 32-bit integers
MAX_COST = Decimal("9999.999999")  # NUMERIC(10, 6)


@dataclass(frozen=True)
class Count(Rule):
    """A whole number from 0 that fits the 32-bit columns (not a boolean, not text)."""

    def validate(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
            raise problem("must be a whole number from 0")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 0, "maximum": MAX_TOKENS}


@dataclass(frozen=True)
class Timestamp(Rule):
    """An aware timestamp (ISO 8601 text with a time zone), in UTC; None is "now"."""

    def validate(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                value = None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise problem("must be an ISO 8601 timestamp with a time zone")
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise problem("must be a time between the years 1 and 9999 in UTC") from None

    def json_schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}


Reference = Annotated[uuid.UUID | None, Id("must be a UUID", optional=True)]
# What one request cost or may cost, when given: USD, micro-dollar precision, within the
# NUMERIC(10, 6) columns (a reported cost, a reservation's estimate).
OptionalCost = Annotated[
    Decimal | None,
    Amount(
        6,
        minimum=Decimal(0),
        maximum=MAX_COST,
        out_of_range=f"must be from 0 to {MAX_COST}",
        optional=True,
    ),
]
Tokens = Annotated[int, Count()]


class UsageEvent(Input):
    """One AI request as reported. Unknown keys are ignored (events carry more than
    the log keeps)."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    feature_id: Reference = None
    model_id: Reference = None
    prompt_id: Reference = None
    user_id: Reference = None
    organization_id: Reference = None
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    response_time_ms: Tokens = 0
    images: Tokens = 0
    status: Annotated[str, OneOf(USAGE_STATUSES)] = "success"
    environment: Annotated[str, OneOf(ENVIRONMENTS)] = "production"
    # A model the catalog does not know, by the name the application used (no model_id):
    # stored unpriced unless the event brings its cost.
    model_name: Annotated[str | None, Field(max_length=200)] = None
    created_at: Annotated[datetime | None, Timestamp()] = None
    cost_usd: Annotated[
        Decimal | None,
        Amount(
            6, minimum=Decimal(0), maximum=MAX_COST, out_of_range=f"must be from 0 to {MAX_COST}"
        ),
    ] = None
    error_message: str | None = None
    request_data: Annotated[dict[str, Any], JsonObject("must be an object")] = Field(
        default_factory=dict
    )
    response_data: Annotated[dict[str, Any], JsonObject("must be an object")] = Field(
        default_factory=dict
    )
