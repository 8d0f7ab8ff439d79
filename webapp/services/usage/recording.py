"""Recording usage events: the one way rows get into ``ai_usage_logs`` (demo data, tests,
and the ingestion API). Each event is validated, priced from its model's structured
prices when it brings no cost, inserted in batches, and added to the daily rollup in the
same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, update

from webapp.extensions import db
from webapp.models import AIModel, Feature, Prompt, UsageLog
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.money import ZERO_COST
from webapp.services.core.validation import check
from webapp.services.usage.cost import request_cost
from webapp.services.usage.rollup import add_to_rollup, pick_shard
from webapp.services.usage.schemas import UsageEvent

BATCH_SIZE = 2_000


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
    store_usage_rows(rows, provider_of)
    return len(rows)


def store_usage_rows(
    rows: Sequence[Mapping[str, Any]],
    provider_of: Mapping[uuid.UUID, uuid.UUID],
    shard: int | None = None,
    completions: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]] = (),
) -> None:
    """Insert usage rows (dicts of ``ai_usage_logs`` columns, every row with the same keys)
    in bulk and add them to the daily rollup, in the caller's transaction: the one write
    path of usage rows (``record_usage``, and ``ingest_events`` for applications).

    ``completions``: (old row, changed columns) of pending rows being made final; each row
    is updated where it is (its id and time) and its rollup contribution moves. The old row
    must hold the columns the rollup reads (``ROLLUP_INPUTS``), and ``provider_of`` the
    provider of its old and new model. All rollup deltas go into one upsert: one lock
    order. ``shard``: the rollup shard of the caller's transaction (picked when None)."""
    if not rows and not completions:
        return
    table = UsageLog.__table__
    for start in range(0, len(rows), BATCH_SIZE):
        db.session.execute(table.insert(), rows[start : start + BATCH_SIZE])
    if completions:
        db.session.execute(
            update(table).where(
                table.c.id == bindparam("completed_id"),
                table.c.created_at == bindparam("completed_at"),
            ),
            [
                {"completed_id": old["id"], "completed_at": old["created_at"], **dict(changes)}
                for old, changes in completions
            ],
        )
    add_to_rollup(
        [*rows, *({**old, **changes} for old, changes in completions)],
        provider_of,
        shard=pick_shard() if shard is None else shard,
        removed=[old for old, _ in completions],
    )


# The columns of a usage row the rollup reads (what a completion must know of the old row).
ROLLUP_INPUTS = (
    "id",
    "created_at",
    "feature_id",
    "model_id",
    "status",
    "environment",
    "input_tokens",
    "output_tokens",
    "tokens_used",
    "cost_usd",
    "response_time_ms",
)


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
    """The log row of one event (``UsageEvent``), or None with its problems in
    ``errors``: every wrong field, and the references that name nothing."""
    checked = check(UsageEvent, event, prefix)
    found = dict(checked.errors)
    values = checked.values
    for key, known in (
        ("feature_id", context.feature_ids),
        ("model_id", context.models),
        ("prompt_id", context.prompt_ids),
    ):
        if values.get(key) is not None and values[key] not in known:
            found[prefix + key] = "does not exist"
    model = context.models.get(values["model_id"]) if values.get("model_id") else None
    shaped = isinstance(event, Mapping)
    if (
        shaped
        and values.get("cost_usd") is None
        and model is None
        and not values.get("model_name")
        and not {
            prefix + "cost_usd",
            prefix + "model_id",
        }
        & set(found)
    ):
        found[prefix + "cost_usd"] = "is required when the event names no model"
    if values.get("model_id") is not None and values.get("model_name"):
        found[prefix + "model_name"] = (
            "is for models the catalog does not know: give model_id or it"
        )
    if checked.model is None or found:
        errors.update(found)
        return None
    event_in = checked.model
    cost = event_in.cost_usd
    if cost is None and model is not None:
        cost = request_cost(
            model, event_in.input_tokens, event_in.output_tokens, images=event_in.images
        )
    return {
        "id": uuid.uuid4(),
        **event_in.model_dump(
            include={
                "feature_id",
                "model_id",
                "prompt_id",
                "user_id",
                "organization_id",
                "request_data",
                "response_data",
                "input_tokens",
                "output_tokens",
                "response_time_ms",
                "status",
                "error_message",
                "environment",
                "model_name",
                "images",
            }
        ),
        "tokens_used": event_in.input_tokens + event_in.output_tokens,
        "cost_usd": cost if cost is not None else ZERO_COST,
        "cost_source": (
            "reported"
            if event_in.cost_usd is not None
            else ("catalog" if model is not None else "unpriced")
        ),
        "created_at": event_in.created_at or now,
    }
