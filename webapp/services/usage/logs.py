"""Reading raw usage logs: filtered, keyset-paginated lists and a constant-memory export.

Pages follow (created_at, id) downwards, newest first, so page 1,000 costs what page 1
costs (an OFFSET would scan every earlier row). The cursor is opaque to clients.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, literal, select, tuple_

from webapp.extensions import db
from webapp.models import USAGE_STATUSES, AIModel, ApiKey, Feature, Prompt, Provider, UsageLog
from webapp.services.core.errors import NotFound, ValidationFailed
from webapp.services.spending.analytics import checked_date_range
from webapp.services.usage.reads import day_bounds
from webapp.services.usage.windows import FAILED, checked_environment

EXPORT_CHUNK = 1_000
# A status filter value beside the stored statuses: every request that did not succeed.
FAILED_STATUS = "failed"
STATUS_CHOICES = (*USAGE_STATUSES, FAILED_STATUS)
MAX_ERROR_TEXT = 200  # characters of the error-message search
COLUMNS = (
    "id",
    "created_at",
    "feature_id",
    "feature_name",
    "model_id",
    "model_name",
    "provider_name",
    "prompt_id",
    "status",
    "input_tokens",
    "output_tokens",
    "tokens_used",
    "response_time_ms",
    "cost_usd",
    "error_message",
    "user_id",
    "organization_id",
    # Appended after issue 14 (existing columns keep their names and order): where the
    # request ran, where its cost came from ("unpriced" is not a real $0), and the names
    # the application reported, which are all a request outside the catalog has.
    "environment",
    "cost_source",
    "reported_model_name",
    "reported_provider_name",
)


@dataclass(frozen=True)
class UsageFilter:
    feature_id: uuid.UUID | None = None
    model_id: uuid.UUID | None = None
    provider_id: uuid.UUID | None = None
    status: str | None = None
    start: datetime | None = None
    until: datetime | None = None
    environment: str | None = None  # None: every environment
    error_text: str | None = None  # a part of the error message, any case


def usage_filter(args: Mapping[str, str]) -> UsageFilter:
    """Filters from query parameters; every wrong one named at once."""
    errors: dict[str, str] = {}
    ids: dict[str, uuid.UUID | None] = {}
    for key in ("feature_id", "model_id", "provider_id"):
        value = args.get(key) or None
        try:
            ids[key] = uuid.UUID(value) if value else None
        except ValueError:
            errors[key] = "must be a UUID"
    status = args.get("status") or None
    if status is not None and status not in STATUS_CHOICES:
        errors["status"] = f"must be one of {', '.join(STATUS_CHOICES)}"
        status = None
    error_text = (args.get("error_text") or "").strip() or None
    if error_text is not None and len(error_text) > MAX_ERROR_TEXT:
        errors["error_text"] = f"must be at most {MAX_ERROR_TEXT} characters"
        error_text = None
    environment = None
    try:
        environment = checked_environment(args.get("environment"))
    except ValidationFailed as error:
        errors.update(error.errors)
    start = until = None
    first, last = args.get("start_date") or None, args.get("end_date") or None
    if first or last:
        try:
            start, until = day_bounds(*checked_date_range(first or last, last or first))
        except ValidationFailed as error:
            errors.update(error.errors)
    if errors:
        raise ValidationFailed(errors)
    return UsageFilter(
        status=status,
        start=start,
        until=until,
        environment=environment,
        error_text=error_text,
        **ids,
    )


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|")
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None:
            raise ValueError
        return created_at, uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed({"cursor": "is not a cursor this API returned"}) from None


def before_keyset(
    stamp_column: Any, id_column: Any, after: tuple[datetime, uuid.UUID]
) -> ColumnElement[bool]:
    """``(stamp, id) < (:stamp, :id)``: the rows after ``after`` in a newest-first keyset.

    A row comparison, not ``stamp < :t OR (stamp = :t AND id < :id)``: PostgreSQL turns it
    into one index range on ``(stamp, id)``, so a page deep in the past starts where the
    index says instead of walking (and filtering) every newer row. SQLite reads row values
    too. Any list ordered by ``stamp DESC, id DESC`` pages with it."""
    stamp, row_id = after
    bound = tuple_(literal(stamp, stamp_column.type), literal(row_id, id_column.type))
    return tuple_(stamp_column, id_column) < bound


def _query(filters: UsageFilter, after: tuple[datetime, uuid.UUID] | None, limit: int) -> Any:
    # Plain columns, not ORM objects: nothing accumulates in the session's identity map.
    query = (
        select(
            UsageLog.id,
            UsageLog.created_at,
            UsageLog.feature_id,
            Feature.display_name.label("feature_name"),
            UsageLog.model_id,
            AIModel.display_name.label("model_name"),
            Provider.display_name.label("provider_name"),
            UsageLog.prompt_id,
            UsageLog.status,
            UsageLog.input_tokens,
            UsageLog.output_tokens,
            UsageLog.tokens_used,
            UsageLog.response_time_ms,
            UsageLog.cost_usd,
            UsageLog.error_message,
            UsageLog.user_id,
            UsageLog.organization_id,
            UsageLog.environment,
            UsageLog.cost_source,
            UsageLog.model_name.label("reported_model_name"),
            UsageLog.provider_name.label("reported_provider_name"),
        )
        .outerjoin(Feature, Feature.id == UsageLog.feature_id)
        .outerjoin(AIModel, AIModel.id == UsageLog.model_id)
        .outerjoin(Provider, Provider.id == AIModel.provider_id)
        .order_by(UsageLog.created_at.desc(), UsageLog.id.desc())
        .limit(limit)
    )
    if filters.feature_id:
        query = query.where(UsageLog.feature_id == filters.feature_id)
    if filters.model_id:
        query = query.where(UsageLog.model_id == filters.model_id)
    if filters.provider_id:
        query = query.where(AIModel.provider_id == filters.provider_id)
    if filters.status == FAILED_STATUS:
        query = query.where(UsageLog.status.in_(FAILED))
    elif filters.status:
        query = query.where(UsageLog.status == filters.status)
    if filters.error_text:
        query = query.where(UsageLog.error_message.icontains(filters.error_text, autoescape=True))
    if filters.environment:
        query = query.where(UsageLog.environment == filters.environment)
    if filters.start:
        query = query.where(UsageLog.created_at >= filters.start)
    if filters.until:
        query = query.where(UsageLog.created_at < filters.until)
    if after:
        query = query.where(before_keyset(UsageLog.created_at, UsageLog.id, after))
    return query


def list_usage(
    filters: UsageFilter, limit: int = 50, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of logs, newest first, and the cursor of the next page (None at the end)."""
    after = decode_cursor(cursor) if cursor else None
    rows = db.session.execute(_query(filters, after, limit + 1)).all()
    page = [dict(row._mapping) for row in rows[:limit]]
    following = None
    if len(rows) > limit:
        last = page[-1]
        following = encode_cursor(last["created_at"], last["id"])
    return page, following


def iter_usage(filters: UsageFilter) -> Iterator[dict[str, Any]]:
    """Every matching log, newest first, fetched ``EXPORT_CHUNK`` rows at a time."""
    after = None
    while True:
        rows = db.session.execute(_query(filters, after, EXPORT_CHUNK)).all()
        for row in rows:
            yield dict(row._mapping)
        if len(rows) < EXPORT_CHUNK:
            return
        after = (rows[-1].created_at, rows[-1].id)


# Where a row's cost came from, in words (the keys are ``COST_SOURCES``).
COST_SOURCE_TEXT = {
    "reported": "reported by the application with the request",
    "catalog": "computed from the model's catalog prices when the request was recorded",
    "unpriced": "not priced: the catalog did not know the model and the application "
    "reported no cost ($0 here is not a real $0)",
}


def usage_detail(row_id: uuid.UUID, with_bodies: bool) -> dict[str, Any]:
    """One request with everything known about it: tokens, cost and its source, latency,
    the prompt version, the end user and session, the API key that reported it and, with
    ``with_bodies``, the request and response data (platform admins only: bodies can hold
    end users' text)."""
    row = db.session.execute(
        select(
            UsageLog,
            Feature.display_name.label("feature_name"),
            AIModel.display_name.label("model_name"),
            Provider.display_name.label("provider_name"),
            Provider.id.label("provider_id"),
            Prompt.name.label("prompt_name"),
            Prompt.version.label("prompt_version"),
            ApiKey.name.label("api_key_name"),
        )
        .outerjoin(Feature, Feature.id == UsageLog.feature_id)
        .outerjoin(AIModel, AIModel.id == UsageLog.model_id)
        .outerjoin(Provider, Provider.id == AIModel.provider_id)
        .outerjoin(Prompt, Prompt.id == UsageLog.prompt_id)
        .outerjoin(ApiKey, ApiKey.id == UsageLog.api_key_id)
        .where(UsageLog.id == row_id)
    ).one_or_none()
    if row is None:
        raise NotFound("No request with that id")
    log: UsageLog = row.UsageLog
    detail: dict[str, Any] = {
        column: getattr(log, column)
        for column in (
            "id",
            "created_at",
            "status",
            "environment",
            "feature_id",
            "model_id",
            "prompt_id",
            "error_message",
            "input_tokens",
            "output_tokens",
            "tokens_used",
            "cache_read_input_tokens",
            "cache_write_input_tokens",
            "reasoning_tokens",
            "images",
            "response_time_ms",
            "cost_usd",
            "cost_source",
            "user_id",
            "session_id",
            "organization_id",
            "event_id",
            "model_version",
        )
    }
    detail.update(
        feature_name=row.feature_name,
        model_name=row.model_name,
        provider_name=row.provider_name,
        provider_id=row.provider_id,
        reported_model_name=log.model_name,
        reported_provider_name=log.provider_name,
        prompt_name=row.prompt_name,
        prompt_version=row.prompt_version,
        api_key_name=row.api_key_name,
        cost_source_text=COST_SOURCE_TEXT[log.cost_source],
        metadata=log.event_metadata if with_bodies else None,
        with_bodies=with_bodies,
        request_data=log.request_data if with_bodies else None,
        response_data=log.response_data if with_bodies else None,
    )
    return detail
