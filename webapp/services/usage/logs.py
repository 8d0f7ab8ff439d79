"""Reading raw usage logs: filtered, keyset-paginated lists and a constant-memory export.

Pages follow (created_at, id) downwards, newest first, so page 1,000 costs what page 1
costs (an OFFSET would scan every earlier row). The cursor is opaque to clients.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, Text, cast, func, literal, select, tuple_

from webapp.extensions import db
from webapp.models import USAGE_STATUSES, AIModel, ApiKey, Feature, Prompt, Provider, UsageLog
from webapp.services.core.errors import NotFound, ValidationFailed
from webapp.services.spending.analytics import checked_date_range
from webapp.services.usage.reads import day_bounds
from webapp.services.usage.windows import FAILED, checked_environment

EXPORT_CHUNK = 5_000  # rows per fetch from the export's server-side cursor
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


def _query(
    filters: UsageFilter, after: tuple[datetime, uuid.UUID] | None, limit: int | None
) -> Any:
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
    return query.where(*_conditions(filters, after))


def _conditions(
    filters: UsageFilter, after: tuple[datetime, uuid.UUID] | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.feature_id:
        conditions.append(UsageLog.feature_id == filters.feature_id)
    if filters.model_id:
        conditions.append(UsageLog.model_id == filters.model_id)
    if filters.provider_id:
        # A subquery rather than the joined model's column: the export joins nothing.
        models = select(AIModel.id).where(AIModel.provider_id == filters.provider_id)
        conditions.append(UsageLog.model_id.in_(models.scalar_subquery()))
    if filters.status == FAILED_STATUS:
        conditions.append(UsageLog.status.in_(FAILED))
    elif filters.status:
        conditions.append(UsageLog.status == filters.status)
    if filters.error_text:
        conditions.append(UsageLog.error_message.icontains(filters.error_text, autoescape=True))
    if filters.environment:
        conditions.append(UsageLog.environment == filters.environment)
    if filters.start:
        conditions.append(UsageLog.created_at >= filters.start)
    if filters.until:
        conditions.append(UsageLog.created_at < filters.until)
    if after:
        conditions.append(before_keyset(UsageLog.created_at, UsageLog.id, after))
    return conditions


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


# The columns of COLUMNS that hold free text (names, messages, words): the only ones that
# can start like a formula. The others are ids, counts, an amount and a timestamp.
TEXT_COLUMNS = tuple(
    COLUMNS.index(name)
    for name in (
        "feature_name",
        "model_name",
        "provider_name",
        "status",
        "error_message",
        "environment",
        "cost_source",
        "reported_model_name",
        "reported_provider_name",
    )
)


def usage_csv_rows(filters: UsageFilter) -> Iterator[Sequence[Any]]:
    """Every matching log as a tuple of ``COLUMNS``, newest first, for the CSV export:
    every column but ``TEXT_COLUMNS`` as the text ``csv_safe`` makes of it (ids, counts,
    the amount, the timestamp as ISO 8601 UTC like ``datetime.isoformat``), the text
    columns as they are. On PostgreSQL the database's own text output of each value, so
    no UUID, Decimal or datetime object is built per cell only to be written back."""
    as_text = db.session.get_bind().dialect.name == "postgresql"
    if as_text:
        yield from _export_rows(filters, as_text=True)
        return
    for row in _export_rows(filters, as_text=False):
        yield (row[0], row[1].isoformat(), *row[2:])


def iter_usage(filters: UsageFilter) -> Iterator[dict[str, Any]]:
    """Every matching log as a dict of ``COLUMNS`` (typed values), newest first."""
    for row in _export_rows(filters, as_text=False):
        yield dict(zip(COLUMNS, row, strict=True))


def _export_rows(filters: UsageFilter, as_text: bool) -> Iterator[tuple[Any, ...]]:
    """One statement over the whole range in the (created_at, id) index's order, read
    through a server-side cursor ``EXPORT_CHUNK`` rows at a time (PostgreSQL; SQLite
    steps its cursor the same way): memory stays flat, and a row deep in the range costs
    what the first one costs (no page restarts an index walk). Core rows, no ORM object
    per row; the names come from the catalog read once (dozens of rows) instead of three
    joins evaluated for every usage row."""
    key = str if as_text else _same
    features = {
        key(ident): name
        for ident, name in db.session.execute(select(Feature.id, Feature.display_name))
    }
    models = {
        key(ident): (name, provider)
        for ident, name, provider in db.session.execute(
            select(AIModel.id, AIModel.display_name, Provider.display_name).outerjoin(
                Provider, Provider.id == AIModel.provider_id
            )
        )
    }
    c = UsageLog.__table__.c
    columns: list[Any] = [
        c.id,
        c.created_at,
        c.feature_id,
        c.model_id,
        c.prompt_id,
        c.status,
        c.input_tokens,
        c.output_tokens,
        c.tokens_used,
        c.response_time_ms,
        c.cost_usd,
        c.error_message,
        c.user_id,
        c.organization_id,
        c.environment,
        c.cost_source,
        c.model_name,
        c.provider_name,
    ]
    if as_text:
        columns = [
            cast(func.timezone("UTC", column), Text)
            if column is c.created_at
            else column
            if isinstance(column.type, String)
            else cast(column, Text)
            for column in columns
        ]
    query = (
        select(*columns)
        .where(*_conditions(filters, None))
        .order_by(c.created_at.desc(), c.id.desc())
    )
    no_model = (None, None)
    stamp = _iso_utc if as_text else _same
    for batch in _batches(query, as_text):
        for row in batch:
            model_name, provider_name = models.get(row[3], no_model)
            yield (
                row[0],
                stamp(row[1]),
                row[2],
                features.get(row[2]),
                row[3],
                model_name,
                provider_name,
                *row[4:],
            )


def _batches(query: Any, driver_cursor: bool) -> Iterator[Sequence[Sequence[Any]]]:
    """The rows of ``query``, ``EXPORT_CHUNK`` at a time from a server-side cursor in the
    session's transaction (so under its row-level security identity). ``driver_cursor``
    (PostgreSQL, text columns only, so no type needs SQLAlchemy's processing): psycopg's
    own named cursor, since building SQLAlchemy's Row for each record cost more than the
    database's whole work."""
    connection = db.session.connection()  # begins the transaction: RLS identity set
    if not driver_cursor:
        result = connection.execution_options(yield_per=EXPORT_CHUNK).execute(query)
        yield from result.partitions()
        return
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    driver = connection.connection.dbapi_connection
    assert driver is not None
    cursor = driver.cursor(name=f"usage_export_{uuid.uuid4().hex}")
    try:
        cursor.execute(str(compiled), compiled.params)
        while batch := cursor.fetchmany(EXPORT_CHUNK):
            yield batch
    finally:
        cursor.close()  # also when the client goes away mid-download


def _same(value: Any) -> Any:
    return value


def _iso_utc(text: str) -> str:
    """PostgreSQL's text of a UTC ``timestamp`` ("2026-11-19 08:30:01.12") as
    ``datetime.isoformat`` writes the aware UTC value ("2026-11-19T08:30:01.120000+00:00":
    microseconds in full, or none when zero)."""
    if len(text) == 19:
        return f"{text[:10]}T{text[11:]}+00:00"
    return f"{text[:10]}T{text[11:20]}{text[20:]:0<6}+00:00"


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
