"""Reading the audit trail: filters, newest first, paginated."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, tuple_, union_all

from webapp.extensions import db
from webapp.models import AuditLog, User
from webapp.services.audit.records import NAMED_RESOURCES, repeated_event_counts

PER_PAGE = 50
MAX_PAGE = 100_000
FILTER_KEYS = ("user", "action", "resource_type", "from", "to")


@dataclass(frozen=True)
class AuditFilters:
    user_id: uuid.UUID | None = None
    action: str | None = None
    resource_type: str | None = None
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class FieldChange:
    """One field of an event's diff, each side as JSON text (``null`` for None), or
    None when that side does not have the field (a create's old side)."""

    field: str
    old: str | None
    new: str | None


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def changes(event: AuditLog) -> list[FieldChange]:
    """The fields the event changed: those whose old and new values differ, or that one
    side alone records (a create's new values, a delete's snapshot)."""
    old, new = event.old_values or {}, event.new_values or {}
    keys = list(old) + [key for key in new if key not in old]
    return [
        FieldChange(
            key,
            _shown(old[key]) if key in old else None,
            _shown(new[key]) if key in new else None,
        )
        for key in keys
        if key not in old or key not in new or old[key] != new[key]
    ]


def existing_resources(events: list[AuditLog]) -> set[uuid.UUID]:
    """Which of the events' resources still exist (one UNION ALL over their tables):
    those the pages link to."""
    wanted: dict[str, set[uuid.UUID]] = {}
    for event in events:
        if event.resource_id and event.resource_type in NAMED_RESOURCES:
            wanted.setdefault(event.resource_type, set()).add(event.resource_id)
    parts = [
        select(NAMED_RESOURCES[kind][0].id).where(NAMED_RESOURCES[kind][0].id.in_(ids))
        for kind, ids in wanted.items()
    ]
    if not parts:
        return set()
    return set(db.session.scalars(parts[0] if len(parts) == 1 else union_all(*parts)))


@dataclass(frozen=True)
class AuditPage:
    rows: list[tuple[AuditLog, str | None]]  # (event, who: see user_label)
    page: int
    per_page: int
    total: int
    # Rows that stand for a flood of repeated events (throttled sign-ins, 403s): how many.
    counts: dict[uuid.UUID, int] = field(default_factory=dict)
    # The resources of these rows that still exist (linked); the asked page when it was
    # past the last one (the last page is shown instead).
    existing: set[uuid.UUID] = field(default_factory=set)
    asked_page: int | None = None
    with_emails: bool = False

    def name_of(self, event: AuditLog) -> str | None:
        """The resource's name for this reader: a user is named by their email, which
        only admins see (as on the users page)."""
        if event.resource_type == "user" and not self.with_emails:
            return None
        return event.resource_name

    @property
    def gone(self) -> set[uuid.UUID]:
        """The rows' resources that were deleted since (said so beside their name)."""
        return {
            event.resource_id
            for event, _ in self.rows
            if event.resource_id
            and event.resource_type in NAMED_RESOURCES
            and event.resource_id not in self.existing
        }

    @property
    def changes(self) -> dict[uuid.UUID, list[FieldChange]]:
        return {event.id: changes(event) for event, _ in self.rows}

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def parse_filters(args: dict[str, str]) -> tuple[AuditFilters, int, dict[str, str]]:
    """Filters and page number from query-string values, and what is wrong with the bad
    ones (which are then left out, the others still apply)."""
    errors: dict[str, str] = {}

    def text(name: str) -> str | None:
        value = (args.get(name) or "").strip()
        return value[:100] or None

    def day(name: str) -> date | None:
        value = text(name)
        if value is None:
            return None
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            errors[name] = "must be a date like 2026-11-25"
            return None
        if not 2000 <= parsed.year <= 9000:
            errors[name] = "must be between the years 2000 and 9000"
            return None
        return parsed

    user_id = None
    if text("user"):
        try:
            user_id = uuid.UUID(text("user"))
        except ValueError:
            errors["user"] = "is not a user id"
    page = 1
    page_text = text("page")
    if page_text:
        try:
            page = int(page_text)
            if not 1 <= page <= MAX_PAGE:
                raise ValueError
        except ValueError:
            errors["page"] = f"must be a whole number from 1 to {MAX_PAGE:,}"
            page = 1
    filters = AuditFilters(
        user_id=user_id,
        action=text("action"),
        resource_type=text("resource_type"),
        date_from=day("from"),
        date_to=day("to"),
    )
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        errors["to"] = "must not be before the start date"
        filters = AuditFilters(
            filters.user_id, filters.action, filters.resource_type, filters.date_from
        )
    return filters, page, errors


def user_label(
    user_id: uuid.UUID | None, email: str | None, display_name: str | None, with_emails: bool
) -> str | None:
    """How a user is named to the reader: admins (who manage users) see emails; anyone
    else sees display names, or a short id where there is none (emails are as private as
    the admin-only users page)."""
    if user_id is None:
        return None
    if with_emails:
        return email
    return display_name or f"user {user_id.hex[:8]}"


def search_events(
    filters: AuditFilters,
    page: int = 1,
    per_page: int = PER_PAGE,
    *,
    with_emails: bool = False,
    repeat_window: timedelta | None = None,
) -> AuditPage:
    conditions = filter_conditions(filters)
    total = db.session.scalar(select(func.count()).select_from(AuditLog).where(*conditions)) or 0
    last = max(1, -(-total // per_page))
    asked = page if page > last else None
    page = min(page, last)  # ?page=999 of 1 shows page 1, saying so
    rows = db.session.execute(
        select(AuditLog, User.id, User.email, User.display_name)
        .outerjoin(User, User.id == AuditLog.user_id)
        .where(*conditions)
        .order_by(AuditLog.created_at.desc(), AuditLog.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    labelled = [
        (event, user_label(user_id, email, name, with_emails))
        for event, user_id, email, name in rows
    ]
    counts = {}
    if repeat_window is not None:
        counts = repeated_event_counts([event for event, _ in labelled], repeat_window)
    existing = existing_resources([event for event, _ in labelled])
    return AuditPage(labelled, page, per_page, total, counts, existing, asked, with_emails)


def filter_conditions(filters: AuditFilters) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``filters`` (the page and the export read the same rows)."""
    conditions: list[ColumnElement[bool]] = []
    if filters.user_id:
        conditions.append(AuditLog.user_id == filters.user_id)
    if filters.action:
        conditions.append(AuditLog.action == filters.action)
    if filters.resource_type:
        conditions.append(AuditLog.resource_type == filters.resource_type)
    if filters.date_from:
        conditions.append(AuditLog.created_at >= datetime.combine(filters.date_from, time.min, UTC))
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time.min, UTC)
        conditions.append(AuditLog.created_at < end)
    return conditions


def filter_choices(*, with_emails: bool = False) -> dict[str, list]:
    """Values the filter selects offer: users (named as user_label names them), actions
    and resource types that occur."""
    people = db.session.execute(select(User.id, User.email, User.display_name)).all()
    users = sorted(
        (
            (user_id, user_label(user_id, email, name, with_emails))
            for user_id, email, name in people
        ),
        key=lambda choice: (choice[1] or "").casefold(),
    )
    return {
        "users": users,
        "actions": list(
            db.session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action))
        ),
        "resource_types": list(
            db.session.scalars(
                select(AuditLog.resource_type).distinct().order_by(AuditLog.resource_type)
            )
        ),
    }


EXPORT_CHUNK = 1_000
EXPORT_COLUMNS = (
    "created_at",
    "user",
    "action",
    "resource_type",
    "resource_id",
    "old_values",
    "new_values",
    "ip_address",
)


def shows_values(action: str, resource_type: str, is_admin: bool) -> bool:
    """Whether the reader sees an event's old and new values: sign-in events and changes
    to users are for platform admins (as on the admin-only users page)."""
    return is_admin or not (action.startswith("auth.") or resource_type == "user")


def iter_export_rows(filters: AuditFilters, *, is_admin: bool) -> Iterator[tuple[Any, ...]]:
    """Every event ``filters`` match, newest first, as ``EXPORT_COLUMNS`` values for this
    reader (emails, values of sign-in and user events and client addresses for admins
    only), fetched ``EXPORT_CHUNK`` rows at a time by keyset."""
    conditions = filter_conditions(filters)
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        query = (
            select(
                AuditLog.id,
                AuditLog.created_at,
                AuditLog.user_id,
                User.email,
                User.display_name,
                AuditLog.action,
                AuditLog.resource_type,
                AuditLog.resource_id,
                AuditLog.old_values,
                AuditLog.new_values,
                AuditLog.ip_address,
            )
            .outerjoin(User, User.id == AuditLog.user_id)
            .where(*conditions)
            .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
            .limit(EXPORT_CHUNK)
        )
        if after is not None:
            query = query.where(tuple_(AuditLog.created_at, AuditLog.id) < after)
        rows = db.session.execute(query).all()
        for row in rows:
            values = shows_values(row.action, row.resource_type, is_admin)
            yield (
                row.created_at,
                user_label(row.user_id, row.email, row.display_name, is_admin)
                or ("system" if row.user_id is None else "unknown"),
                row.action,
                row.resource_type,
                row.resource_id,
                json.dumps(row.old_values, sort_keys=True) if values and row.old_values else "",
                json.dumps(row.new_values, sort_keys=True) if values and row.new_values else "",
                row.ip_address if is_admin else "",
            )
        if len(rows) < EXPORT_CHUNK:
            return
        after = (rows[-1].created_at, rows[-1].id)
