"""What an application may report about one AI request (``POST /api/v1/usage``, and the
OpenTelemetry endpoint once it has turned a span into the same dict): one pydantic model,
``ReportedEvent``, which also describes the event in the OpenAPI document of /api/v1.

The model checks shapes, types, lengths and ranges and reports every wrong field at once.
What needs the clock or the database (the timestamp window, the feature, the model, the
prompt) is checked by ``webapp.services.apps.ingestion``; the rules across fields (cached
tokens within input tokens, reasoning within output) are ``cross_field_problems`` here, so
that they are reported beside the other wrong fields.

End users, sessions and organisations: applications name them with their own ids (emails,
numbers, slugs). Stored values are UUIDs, so distinct counts, joins and experiment
subjects work: a UUID is kept as it is, any other text becomes
``uuid5(SUBJECT_NAMESPACE, text)`` — stable across requests, keys and installations of
this console, and the same text maps to the same UUID in each of the three fields.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import Field

from webapp.models import USAGE_STATUSES
from webapp.services.core.validation import (
    Id,
    Input,
    JsonObject,
    OneOf,
    Rule,
    Text,
    problem,
)
from webapp.services.usage.schemas import MAX_TOKENS, Count, OptionalCost

# The namespace of the UUIDs that non-UUID user, session and organisation ids map to.
# Fixed for ever: changing it would split every subject's history in two.
SUBJECT_NAMESPACE = uuid.UUID("2ef64725-38d2-46a7-8f81-69c54756c752")

MAX_EVENTS = 1_000
MAX_DATA_BYTES = 16 * 1024  # request_data, response_data (serialized as JSON, UTF-8)
MAX_METADATA_BYTES = 4 * 1024
# The fields whose size alone refuses an event as ``too_large`` (not ``invalid``).
SIZE_LIMITS = {
    "request_data": MAX_DATA_BYTES,
    "response_data": MAX_DATA_BYTES,
    "metadata": MAX_METADATA_BYTES,
}

EVENT_ID_BODY = r"[A-Za-z0-9._:-]{1,128}"
EVENT_ID_PATTERN = re.compile(EVENT_ID_BODY + r"\Z")
# RFC 3339 date-time: a date, a time and a zone (Z or ±hh:mm), fractional seconds optional.
RFC_3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})\Z"
)


def subject_uuid(value: str) -> uuid.UUID:
    """The UUID a user, session or organisation id is stored as."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.uuid5(SUBJECT_NAMESPACE, value)


@dataclass(frozen=True)
class EventId(Rule):
    """The application's idempotency id, exactly as sent (not stripped: it is compared)."""

    def validate(self, value: Any) -> str:
        if value is None or value == "":
            raise problem("is required")
        if not isinstance(value, str) or not EVENT_ID_PATTERN.match(value):
            raise problem("must be a UUID or 1 to 128 characters of A-Z a-z 0-9 . _ : -")
        return canonical_event_id(value)

    def json_schema(self) -> dict[str, Any]:
        # Anchored: a JSON Schema pattern matches anywhere in the string.
        return {"type": "string", "pattern": f"^{EVENT_ID_BODY}$", "maxLength": 128}


def canonical_event_id(value: str) -> str:
    """A UUID in its one canonical spelling (lower case, hyphenated), so ``ABC…`` and
    ``abc…`` are the same event; any other id exactly as sent."""
    if len(value) in (32, 36, 38):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    return value


@dataclass(frozen=True)
class Rfc3339(Rule):
    """An RFC 3339 timestamp with its zone, in UTC. An aware ``datetime`` is taken as it
    is (the OpenTelemetry endpoint converts span times itself)."""

    def validate(self, value: Any) -> datetime:
        if value is None or value == "":
            raise problem("is required")
        if isinstance(value, datetime) and value.tzinfo is not None:
            try:
                return value.astimezone(UTC)
            except OverflowError:
                raise problem("must be a time between the years 1 and 9999 in UTC") from None
        match = RFC_3339.match(value) if isinstance(value, str) else None
        if match is None:
            raise problem("must be RFC 3339 with a time zone")
        day, clock, fraction, zone = match.groups()
        # Python parses at most microseconds: nanoseconds (OpenTelemetry) are cut.
        fraction = f".{fraction[:6]}" if fraction else ""
        zone = "+00:00" if zone in ("Z", "z") else zone
        try:
            return datetime.fromisoformat(f"{day}T{clock}{fraction}{zone}").astimezone(UTC)
        except ValueError:  # 2026-02-30, 25:00:00
            raise problem("must be RFC 3339 with a time zone") from None
        except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise problem("must be a time between the years 1 and 9999 in UTC") from None

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


@dataclass(frozen=True)
class SubjectId(Rule):
    """An end user's, session's or organisation's id: a UUID, or text mapped to one."""

    def validate(self, value: Any) -> uuid.UUID | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise problem("must be text")
        if len(value) > 200:
            raise problem("must be at most 200 characters")
        return subject_uuid(value)

    def json_schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}]}


@dataclass(frozen=True)
class PromptVersionNumber(Rule):
    def validate(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
            raise problem("must be a whole number from 1")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 1}


class PromptReference(Input):
    """A prompt version of the event's feature, by name and version number."""

    name: Annotated[str, Text(200)] = Field(description="The prompt's name.")
    version: Annotated[int, PromptVersionNumber()] = Field(
        description="The version number (from 1)."
    )


Tokens = Annotated[int, Count()]


class ReportedEvent(Input):
    """One AI request an application made, as it reports it."""

    unknown_field: ClassVar[str] = "is not a field of a usage event"
    messages: ClassVar[dict[str, str]] = {
        "prompt.*": "is not a field of a prompt reference (name, version)"
    }

    id: Annotated[str, EventId()] = Field(
        description="The application's idempotency id: the same id from the same "
        "environment is stored once. A UUID or 1-128 characters of A-Za-z0-9._:-."
    )
    timestamp: Annotated[datetime, Rfc3339()] = Field(
        description="When the request started: RFC 3339 with a time zone, at most 10 "
        "minutes in the future and at most USAGE_MAX_AGE_DAYS (30) days in the past."
    )
    feature: Annotated[str, Text(100)] = Field(
        description="The name of the feature the request served; the key must be allowed "
        "to report for it."
    )
    model: Annotated[str, Text(200)] = Field(
        description="The model's name as the application called it. A name the catalog "
        "does not know is kept (unpriced unless cost_usd is given)."
    )
    provider: Annotated[str | None, Text(200, required=False)] = Field(
        default=None, description="The provider's name, to tell two providers' models apart."
    )
    model_version: Annotated[str | None, Text(100, required=False)] = Field(
        default=None, description="The model's version, when the catalog lists several."
    )
    status: Annotated[str, OneOf(USAGE_STATUSES)] = Field(
        default="success",
        description="pending: the request is still running; an event with the same id and "
        "a final status completes it later.",
    )
    input_tokens: Tokens = Field(default=0, description="Every input token, cached ones included.")
    output_tokens: Tokens = Field(
        default=0, description="Every output token, reasoning ones included."
    )
    cache_read_input_tokens: Tokens = Field(
        default=0, description="Input tokens read from the provider's prompt cache."
    )
    cache_write_input_tokens: Tokens = Field(
        default=0, description="Input tokens written to the provider's prompt cache."
    )
    reasoning_tokens: Tokens = Field(default=0, description="Output tokens spent reasoning.")
    images: Tokens = Field(default=0, description="Images generated or analysed.")
    latency_ms: Tokens = Field(default=0, description="How long the request took, in ms.")
    cost_usd: OptionalCost = Field(
        default=None,
        description="The application's own figure (decimal text or number, at most 6 "
        "decimals). Without it the cost is computed from the catalog's prices.",
    )
    prompt: PromptReference | None = Field(
        default=None, description="The prompt version of the feature the request used."
    )
    user_id: Annotated[uuid.UUID | None, SubjectId()] = Field(
        default=None,
        description="The application's end user (at most 200 characters); text that is "
        "not a UUID is stored as a stable UUID (v5).",
    )
    session_id: Annotated[uuid.UUID | None, SubjectId()] = Field(
        default=None, description="The end user's session; stored like user_id."
    )
    organization_id: Annotated[uuid.UUID | None, SubjectId()] = Field(
        default=None, description="The end user's organisation; stored like user_id."
    )
    error_message: Annotated[str | None, Text(2_000, required=False)] = Field(
        default=None, description="What went wrong (status error or timeout)."
    )
    request_data: Annotated[
        dict[str, Any] | None, JsonObject("must be an object", MAX_DATA_BYTES, optional=True)
    ] = Field(default=None, description="A JSON object of at most 16 KiB.")
    response_data: Annotated[
        dict[str, Any] | None, JsonObject("must be an object", MAX_DATA_BYTES, optional=True)
    ] = Field(default=None, description="A JSON object of at most 16 KiB.")
    metadata: Annotated[
        dict[str, Any] | None, JsonObject("must be an object", MAX_METADATA_BYTES, optional=True)
    ] = Field(default=None, description="A JSON object of at most 4 KiB.")
    reservation_id: Annotated[
        uuid.UUID | None,
        Id("must be a reservation id (UUID) from POST /api/v1/budgets/reserve", optional=True),
    ] = Field(
        default=None,
        description="The reservation this request was admitted under (POST "
        "/api/v1/budgets/reserve), made by the same API key for the same feature. A final "
        "event settles it with its actual cost; a pending one does not.",
    )


class UsageBatch(Input):
    """The body of ``POST /api/v1/usage`` (for the OpenAPI document: the endpoint checks
    the envelope by hand and each event on its own, so one bad event refuses only itself)."""

    events: list[ReportedEvent] = Field(
        min_length=1, max_length=MAX_EVENTS, description="1 to 1,000 events."
    )


def cross_field_problems(values: dict[str, Any]) -> dict[str, str]:
    """The rules across fields, over the validated values (a field left out is its
    default). The caller keeps a field's own error when it has one."""
    found: dict[str, str] = {}
    cached = values.get("cache_read_input_tokens", 0) + values.get("cache_write_input_tokens", 0)
    if cached > values.get("input_tokens", 0):
        found["input_tokens"] = (
            "must include the cached tokens: cache_read_input_tokens + "
            f"cache_write_input_tokens is {cached}"
        )
    reasoning = values.get("reasoning_tokens", 0)
    if reasoning > values.get("output_tokens", 0):
        found["output_tokens"] = f"must include the reasoning tokens ({reasoning})"
    total = values.get("input_tokens", 0) + values.get("output_tokens", 0)
    if total > MAX_TOKENS and "input_tokens" not in found:
        # tokens_used (their sum) is a 32-bit column too.
        found["input_tokens"] = f"plus output_tokens must be at most {MAX_TOKENS:,}"
    return found


def oversized_fields(raw: Any) -> set[str]:
    """The JSON fields of a raw event that are refused for their size alone."""
    if not isinstance(raw, dict):
        return set()
    found = set()
    for name, limit in SIZE_LIMITS.items():
        value = raw.get(name)
        if isinstance(value, dict):
            try:
                size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
            except (TypeError, ValueError, UnicodeEncodeError):
                continue  # not storable as JSON at all: invalid, not too large
            if size > limit:
                found.add(name)
    return found
