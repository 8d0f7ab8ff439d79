"""Recording usage events: the one way rows get into ``ai_usage_logs`` (demo data, tests,
and the ingestion API). Each event is validated, priced from its model's structured
prices when it brings no cost, inserted in batches, and added to the daily rollup in the
same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import USAGE_STATUSES, AIModel, Feature, Prompt, UsageLog
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.validation import as_decimal
from webapp.services.usage.cost import request_cost
from webapp.services.usage.rollup import add_to_rollup

BATCH_SIZE = 2_000
MAX_TOKENS = 2**31 - 1  # the columns are 32-bit integers
MAX_COST = Decimal("9999.999999")  # NUMERIC(10, 6)


@dataclass(frozen=True)
class _Context:
    models: dict[uuid.UUID, AIModel]
    feature_ids: set[uuid.UUID]
    prompt_ids: set[uuid.UUID]


def record_usage(events: Iterable[Mapping[str, Any]], now: datetime | None = None) -> int:
    """Validate, price and store usage events as one transaction: all or none. A wrong
    event is refused with its index and field (``events[3].status``). Returns the count."""
    count = add_usage(events, now)
    db.session.commit()
    return count


def add_usage(events: Iterable[Mapping[str, Any]], now: datetime | None = None) -> int:
    """``record_usage`` without the commit, for a use case that records usage as part of a
    larger transaction (demo data)."""
    events = list(events)
    context = _load_context(events)
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    stamp = now or datetime.now(UTC)
    for index, event in enumerate(events):
        row = _usage_row(event, context, stamp, errors, f"events[{index}].")
        if row is not None:
            rows.append(row)
    if errors:
        raise ValidationFailed(errors, "Some usage events are invalid: nothing was recorded")
    provider_of = {model_id: model.provider_id for model_id, model in context.models.items()}
    table = UsageLog.__table__
    for start in range(0, len(rows), BATCH_SIZE):
        batch = rows[start : start + BATCH_SIZE]
        db.session.execute(table.insert(), batch)
        add_to_rollup(batch, provider_of)
    return len(rows)


def _load_context(events: list[Mapping[str, Any]]) -> _Context:
    """The models, features and prompts the events name, in at most three queries."""

    def named(key: str) -> set[uuid.UUID]:
        ids = {_as_uuid(e.get(key)) for e in events if isinstance(e, Mapping)}
        ids.discard(None)
        return ids  # type: ignore[return-value]

    def existing(column: Any, ids: set[uuid.UUID]) -> set[uuid.UUID]:
        return set(db.session.scalars(select(column).where(column.in_(ids)))) if ids else set()

    model_ids = named("model_id")
    models = (
        {m.id: m for m in db.session.scalars(select(AIModel).where(AIModel.id.in_(model_ids)))}
        if model_ids
        else {}
    )
    return _Context(
        models, existing(Feature.id, named("feature_id")), existing(Prompt.id, named("prompt_id"))
    )


def _as_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


def _usage_row(
    event: Any, context: _Context, now: datetime, errors: dict[str, str], prefix: str
) -> dict[str, Any] | None:
    if not isinstance(event, Mapping):
        errors[prefix.rstrip(".")] = "must be an object"
        return None
    found: dict[str, str] = {}

    def reference(key: str, known: Any) -> uuid.UUID | None:
        value = event.get(key)
        if value is None or value == "":
            return None
        ident = _as_uuid(value)
        if ident is None:
            found[key] = "must be a UUID"
        elif known is not None and ident not in known:
            found[key] = "does not exist"
        return ident

    def count(key: str) -> int:
        value = event.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
            found[key] = "must be a whole number from 0"
            return 0
        return value

    feature_id = reference("feature_id", context.feature_ids)
    model_id = reference("model_id", context.models)
    prompt_id = reference("prompt_id", context.prompt_ids)
    user_id = reference("user_id", None)
    organization_id = reference("organization_id", None)
    input_tokens = count("input_tokens")
    output_tokens = count("output_tokens")
    response_time_ms = count("response_time_ms")
    status = event.get("status", "success")
    if status not in USAGE_STATUSES:
        found["status"] = f"must be one of {', '.join(USAGE_STATUSES)}"
    created_at = _timestamp(event.get("created_at"), now, found)
    cost = _cost(event.get("cost_usd"), found)
    if cost is None and "cost_usd" not in found:
        model = context.models.get(model_id) if model_id else None
        if model is None:
            if "model_id" not in found:
                found["cost_usd"] = "is required when the event names no model"
        else:
            cost = request_cost(model, input_tokens, output_tokens, images=count("images"))
    error_message = event.get("error_message")
    if error_message is not None and not isinstance(error_message, str):
        found["error_message"] = "must be text"
    for key in ("request_data", "response_data"):
        if not isinstance(event.get(key, {}), dict):
            found[key] = "must be an object"
    if found:
        errors.update({prefix + key: problem for key, problem in found.items()})
        return None
    return {
        "id": uuid.uuid4(),
        "feature_id": feature_id,
        "model_id": model_id,
        "prompt_id": prompt_id,
        "user_id": user_id,
        "organization_id": organization_id,
        "request_data": event.get("request_data") or {},
        "response_data": event.get("response_data") or {},
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "tokens_used": input_tokens + output_tokens,
        "response_time_ms": response_time_ms,
        "cost_usd": cost,
        "status": status,
        "error_message": error_message,
        "created_at": created_at,
    }


def _timestamp(value: Any, now: datetime, found: dict[str, str]) -> datetime:
    if value is None:
        return now
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            found["created_at"] = "must be an ISO 8601 timestamp with a time zone"
            return now
    if not isinstance(value, datetime) or value.tzinfo is None:
        found["created_at"] = "must be an ISO 8601 timestamp with a time zone"
        return now
    return value.astimezone(UTC)


def _cost(value: Any, found: dict[str, str]) -> Decimal | None:
    if value is None or value == "":
        return None
    amount = as_decimal(value)
    if amount is None:
        found["cost_usd"] = "must be a decimal number"
        return None
    if amount < 0 or amount > MAX_COST:
        found["cost_usd"] = f"must be from 0 to {MAX_COST}"
        return None
    if amount != amount.quantize(Decimal("0.000001")):
        found["cost_usd"] = "must have at most 6 decimal places"
        return None
    return amount
