"""Ingesting the usage events applications report (``POST /api/v1/usage``, and the
OpenTelemetry endpoint once it has turned spans into the same dicts): ``ingest_events``.

One batch is one transaction, whatever it holds (``ingest_batches`` stores several
requests' batches in one, for the group commit of ingestion_groups.py): every event is
checked on its own (a refused event never blocks the good ones), then

1. **Idempotency.** The ledger ``usage_event_ids`` (primary key environment + event id)
   gets one row per id of the batch: ``INSERT … ON CONFLICT DO NOTHING RETURNING`` tells
   new ids (stored) from ids seen before, also when a retry of the same batch runs at the
   same moment in another worker (the second insert waits for the first to commit, then
   conflicts). Rows are inserted sorted by id, so two such batches wait in one order.
2. **Pending → final.** An event with a final status whose id is pending completes it:
   ``UPDATE usage_event_ids SET is_final = true WHERE … AND is_final = false RETURNING``;
   the row lock lets one of two concurrent finals win, the other finds ``is_final`` true
   and is a duplicate. The usage row then takes the final figures (everything it reports
   except its timestamp, which stays the pending row's: the row, and its day in the
   rollup, keep their place) and its rollup contribution moves (minus old, plus new).
   A final row never changes again; any later copy is a duplicate. Inside one batch the
   same id twice is one event and a duplicate; pending then final is stored final and
   counts as accepted and completed.
3. **Rows and rollup** go through ``store_usage_rows`` (the one write path, shared with
   ``record_usage``); one rollup shard per transaction (``pick_shard``) for the rollup and
   the key's counters, so concurrent writers do not queue on the same rows.
4. **Counters.** One row of ``api_key_ingestion`` (key, hour, shard) gets the batch's
   accepted, completed, duplicate and refused-by-reason counts, also when every event was
   refused.

The model is looked up in the catalog (this process's snapshot of it, filed under the
configuration revision: webapp/services/apps/ingestion_catalog.py) by name, narrowed by
provider name (case-insensitive) when given. With ``model_version`` the model of that
version is taken, else the catalog's unversioned entry; without it the unversioned entry
first. When several remain (two providers offer the name and no provider was given), the
first by (unversioned first, provider name, version, id) is taken: deterministic, and the
same for every event. A name the catalog does not know is kept with ``model_id`` NULL and
the names as reported.

A refused event gets the first of ``REJECTION_CODES`` that applies to it (``invalid``
before ``unknown_feature`` … before ``too_large``), and ``errors`` names every wrong field.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import case, exists, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import (
    AIModel,
    ApiKeyIngestion,
    Prompt,
    UsageEventId,
    UsageLog,
)
from webapp.models.apps import REJECTION_CODES, rejection_column
from webapp.services.apps.authentication import AuthenticatedKey
from webapp.services.apps.ingestion_catalog import CatalogModel, catalog_cache
from webapp.services.apps.reported_events import (
    ReportedEvent,
    cross_field_problems,
    oversized_fields,
)
from webapp.services.core.json_values import MAX_JSON_FIELD_DEPTH, json_value_problem
from webapp.services.core.validation import check
from webapp.services.spending.reservations import reservation_owners, settle_reservations
from webapp.services.usage.cost import request_cost
from webapp.services.usage.recording import ROLLUP_INPUTS, store_usage_rows
from webapp.services.usage.rollup import pick_shard
from webapp.services.usage.schemas import MAX_COST

FUTURE_TOLERANCE = timedelta(minutes=10)
DEFAULT_MAX_AGE_DAYS = 30

LEDGER = UsageEventId.__table__
USAGE = UsageLog.__table__
COUNTERS = ApiKeyIngestion.__table__
COUNTER_COLUMNS = (
    "accepted",
    "completed",
    "duplicates",
    *(rejection_column(code) for code in REJECTION_CODES),
)
# What a completion leaves as the pending row had it: identity, place in time, reporter.
KEPT_ON_COMPLETION = frozenset({"id", "created_at", "environment", "event_id", "api_key_id"})


@dataclass(frozen=True)
class Rejection:
    """A refused event (a dataclass: a NamedTuple's ``index`` would shadow tuple.index)."""

    index: int  # the event's place in the batch
    id: str | None  # its id as sent, when that is text
    code: str  # one of REJECTION_CODES
    errors: dict[str, str]  # every wrong field and what is wrong with it


@dataclass
class IngestionResult:
    accepted: int = 0  # new events stored
    completed: int = 0  # pending events made final
    duplicates: int = 0  # ids already stored (or already final), nothing changed
    rejected: list[Rejection] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The ``data`` of the API's answer."""
        return {
            "accepted": self.accepted,
            "completed": self.completed,
            "duplicates": self.duplicates,
            "rejected": [asdict(rejection) for rejection in self.rejected],
        }


@dataclass(frozen=True)
class _Catalog:
    feature_ids: dict[str, uuid.UUID]  # by name
    models: dict[str, tuple[tuple[CatalogModel, str], ...]]  # by name: (model, provider)
    provider_of: dict[uuid.UUID, uuid.UUID]  # model id → provider id
    prompts: dict[tuple[uuid.UUID, str, int], uuid.UUID]  # (feature, name, version)
    # Budget reservations the batch names: (API key, feature) of each.
    reservations: dict[uuid.UUID, tuple[uuid.UUID | None, uuid.UUID]]


@dataclass
class _Accepted:
    index: int
    event: ReportedEvent
    row: dict[str, Any]


def ingest_events(
    key: AuthenticatedKey,
    events: Sequence[Any],
    now: datetime | None = None,
    *,
    refused_before: int = 0,
) -> IngestionResult:
    """Check, store and count one batch of reported events as one transaction, which it
    commits. ``events`` are dicts as decoded from JSON (anything else is refused).
    ``refused_before``: events of the same request refused before they became events
    (OpenTelemetry spans that do not map), counted with the key's ``invalid`` ones."""
    return ingest_batches(key, [(events, refused_before)], now)[0]


def ingest_batches(
    key: AuthenticatedKey,
    batches: Sequence[tuple[Sequence[Any], int]],
    now: datetime | None = None,
) -> list[IngestionResult]:
    """``ingest_events`` for several requests of one key at once, as one transaction:
    (events, refused before) of each; the result of each, as if they had been stored one
    after the other in this order (an id sent by two of them is stored by the first, a
    duplicate for the second; a pending event and its final are stored final, accepted
    by the first and completed by the second)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    max_age = timedelta(days=current_app.config.get("USAGE_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS))
    events = [raw for batch, _ in batches for raw in batch]
    rejected: list[Rejection] = []
    # Text the database cannot store (NUL, unpaired surrogates) is refused before any
    # query sees it: PostgreSQL would fail the whole batch on it.
    unstorable = [_unstorable(raw) for raw in events]
    checked = [
        check(ReportedEvent, raw) if isinstance(raw, Mapping) and not unstorable[i] else None
        for i, raw in enumerate(events)
    ]
    catalog = _load_catalog([c.values for c in checked if c is not None])
    accepted: list[_Accepted] = []
    for index, raw in enumerate(events):
        problems = unstorable[index]
        if problems:
            event_id = raw.get("id") if isinstance(raw.get("id"), str) else None
            rejected.append(Rejection(index, event_id, "invalid", problems))
            continue
        outcome = _check_event(key, raw, checked[index], catalog, now, max_age)
        if isinstance(outcome, Rejection):
            rejected.append(replace(outcome, index=index))
        else:
            accepted.append(_Accepted(index, *outcome))

    shard = pick_shard()
    outcomes = _store(key, accepted, catalog, shard, now)
    # Final events settle their reservations in this transaction: spend and the released
    # hold become visible to admissions together.
    settle_reservations(
        [
            (item.event.reservation_id, item.row["cost_usd"], item.event.id)
            for item in accepted
            if item.event.reservation_id is not None and item.event.status != "pending"
        ],
        now,
    )
    whole = _tally(outcomes, rejected, 0, len(events))
    _count(key, whole, len(events), shard, now, sum(before for _, before in batches))
    db.session.commit()
    results = []
    start = 0
    for batch, _ in batches:
        results.append(_tally(outcomes, rejected, start, start + len(batch)))
        start += len(batch)
    return results


def _tally(
    outcomes: Mapping[int, str], rejected: Sequence[Rejection], start: int, stop: int
) -> IngestionResult:
    """The result of the events at positions start…stop-1 (indexes relative to start)."""
    result = IngestionResult()
    for index in range(start, stop):
        outcome = outcomes.get(index)
        if outcome == "accepted":
            result.accepted += 1
        elif outcome == "completed":
            result.completed += 1
        elif outcome == "duplicate":
            result.duplicates += 1
    result.rejected = [
        replace(rejection, index=rejection.index - start)
        for rejection in rejected
        if start <= rejection.index < stop
    ]
    return result


# ---------------------------------------------------------------------------------------
# Checking one event


def _unstorable(raw: Any) -> dict[str, str] | None:
    """The field (dotted path) holding text no database column can store, or None."""
    if not isinstance(raw, Mapping):
        return None
    problem = json_value_problem(dict(raw), MAX_JSON_FIELD_DEPTH + 1)
    if problem is None:
        return None
    path, message = problem
    if message.startswith("must not be nested"):
        return None  # the event's own rules name the field and its limit
    return {path or "event": message}


def _load_catalog(values: list[dict[str, Any]]) -> _Catalog:
    """Features and models from this process's snapshot of the catalog (one query when it
    is current: webapp/services/apps/ingestion_catalog.py); the prompts and reservations
    the batch names, one query each when it names any."""
    snapshot = catalog_cache(current_app).current()
    feature_ids = snapshot.feature_ids
    prompt_names = {v["prompt"].name for v in values if v.get("prompt") is not None}
    prompts: dict[tuple[uuid.UUID, str, int], uuid.UUID] = {}
    if prompt_names:
        named = {feature_ids[v["feature"]] for v in values if v.get("feature") in feature_ids}
        rows = (
            db.session.execute(
                select(Prompt.feature_id, Prompt.name, Prompt.version, Prompt.id).where(
                    Prompt.feature_id.in_(named), Prompt.name.in_(prompt_names)
                )
            )
            if named
            else ()
        )
        prompts = {(f, n, v): i for f, n, v, i in rows if f is not None}
    reservations = reservation_owners(
        {v["reservation_id"] for v in values if v.get("reservation_id") is not None}
    )
    return _Catalog(feature_ids, snapshot.models, snapshot.provider_of, prompts, reservations)


def resolve_model(
    candidates: Sequence[tuple[CatalogModel, str]], provider: str | None, version: str | None
) -> CatalogModel | None:
    """The catalog's model for a reported name (``candidates`` in the order described in
    the module docstring), or None."""
    if provider is not None:
        wanted = provider.casefold()
        candidates = [c for c in candidates if c[1].casefold() == wanted]
    if version is not None:
        exact = [c for c in candidates if c[0].version == version]
        candidates = exact or [c for c in candidates if c[0].version is None]
    return candidates[0][0] if candidates else None


def _check_event(
    key: AuthenticatedKey,
    raw: Any,
    checked: Any,
    catalog: _Catalog,
    now: datetime,
    max_age: timedelta,
) -> Rejection | tuple[ReportedEvent, dict[str, Any]]:
    """The event and its usage row, or its rejection (index filled in by the caller)."""
    event_id = raw.get("id") if isinstance(raw, Mapping) else None
    event_id = event_id if isinstance(event_id, str) else None
    if checked is None:
        return Rejection(-1, None, "invalid", {"event": "must be an object"})
    errors: dict[str, str] = dict(checked.errors)
    codes: set[str] = set()
    if errors:
        oversized = oversized_fields(raw)
        codes.update("too_large" if name in oversized else "invalid" for name in errors)
    values = checked.values
    for name, message in cross_field_problems(values).items():
        if name not in errors:
            errors[name] = message
            codes.add("invalid")

    feature_id = catalog.feature_ids.get(values["feature"]) if "feature" in values else None
    if "feature" in values:
        if feature_id is None:
            errors["feature"] = "is not a feature of this console"
            codes.add("unknown_feature")
        elif not key.may_use_feature(feature_id):
            errors["feature"] = "is not a feature this API key may report for"
            codes.add("feature_not_allowed")
    if "timestamp" in values:
        stamp: datetime = values["timestamp"]
        if stamp < now - max_age:
            errors["timestamp"] = f"is more than {max_age.days} days in the past"
            codes.add("too_old")
        elif stamp > now + FUTURE_TOLERANCE:
            errors["timestamp"] = "is more than 10 minutes in the future"
            codes.add("in_future")
    prompt_id = None
    reference = values.get("prompt")
    if reference is not None and feature_id is not None:
        prompt_id = catalog.prompts.get((feature_id, reference.name, reference.version))
        if prompt_id is None:
            errors["prompt"] = (
                f"names no prompt version of the feature {values['feature']} "
                f"({reference.name} version {reference.version})"
            )
            codes.add("invalid")

    reservation_id = values.get("reservation_id")
    owner = catalog.reservations.get(reservation_id) if reservation_id is not None else None
    if reservation_id is not None and feature_id is not None and owner != (key.id, feature_id):
        errors["reservation_id"] = (
            f"is not a reservation this API key made for the feature {values['feature']}"
        )
        codes.add("invalid")

    event = checked.model
    model = None
    cost, source = Decimal(0), "unpriced"
    if event is not None and not codes:
        model = resolve_model(
            catalog.models.get(event.model, ()), event.provider, event.model_version
        )
        if event.cost_usd is not None:
            cost, source = event.cost_usd, "reported"
        elif model is not None:
            cost, source = _catalog_cost(model, event), "catalog"
        if cost > MAX_COST:
            errors["cost_usd"] = (
                f"must be given: the catalog prices this request above {MAX_COST} USD"
            )
            codes.add("invalid")
    if codes or event is None:
        code = next(c for c in REJECTION_CODES if c in codes) if codes else "invalid"
        return Rejection(-1, event_id, code, errors)
    return event, _usage_row(key, event, feature_id, model, prompt_id, cost, source)


def _catalog_cost(model: CatalogModel, event: ReportedEvent) -> Decimal:
    return request_cost(
        model,
        event.input_tokens,
        event.output_tokens,
        event.images,
        cache_read_tokens=event.cache_read_input_tokens,
        cache_write_tokens=event.cache_write_input_tokens,
    )


def _usage_row(
    key: AuthenticatedKey,
    event: ReportedEvent,
    feature_id: uuid.UUID | None,
    model: CatalogModel | None,
    prompt_id: uuid.UUID | None,
    cost: Decimal,
    source: str,
) -> dict[str, Any]:
    """Every column of the event's ``ai_usage_logs`` row (a bulk insert needs the same
    keys in every row)."""
    return {
        "id": uuid.uuid4(),
        "feature_id": feature_id,
        "model_id": model.id if model is not None else None,
        "prompt_id": prompt_id,
        "user_id": event.user_id,
        "organization_id": event.organization_id,
        "session_id": event.session_id,
        "request_data": event.request_data or {},
        "response_data": event.response_data or {},
        "metadata": event.metadata or {},
        "input_tokens": event.input_tokens,
        "output_tokens": event.output_tokens,
        "tokens_used": event.input_tokens + event.output_tokens,
        "cache_read_input_tokens": event.cache_read_input_tokens,
        "cache_write_input_tokens": event.cache_write_input_tokens,
        "reasoning_tokens": event.reasoning_tokens,
        "images": event.images,
        "response_time_ms": event.latency_ms,
        "cost_usd": cost,
        "cost_source": source,
        "status": event.status,
        "error_message": event.error_message,
        "created_at": event.timestamp,
        "environment": key.environment,
        "event_id": event.id,
        "api_key_id": key.id,
        "model_name": event.model,
        "provider_name": event.provider,
        "model_version": event.model_version,
    }


# ---------------------------------------------------------------------------------------
# Storing


# PostgreSQL: the whole batch as four arrays, one statement of five parameters (a
# 1,000-row VALUES list has 6,000 and costs more to build and parse than to run).
LEDGER_UNNEST = text(
    "INSERT INTO usage_event_ids "
    "(environment, event_id, usage_log_id, created_at, is_final, received_at) "
    "SELECT :environment, event_id, usage_log_id, created_at, is_final, :received_at "
    "FROM unnest(CAST(:event_ids AS varchar[]), CAST(:usage_log_ids AS uuid[]), "
    "CAST(:created_ats AS timestamptz[]), CAST(:finals AS boolean[])) "
    "AS batch(event_id, usage_log_id, created_at, is_final) "
    "ORDER BY event_id "
    "ON CONFLICT (environment, event_id) DO NOTHING RETURNING event_id"
)
SQLITE_LEDGER_INSERT = (
    sqlite.insert(LEDGER)
    .on_conflict_do_nothing(index_elements=["environment", "event_id"])
    .returning(LEDGER.c.event_id)
)


def _insert_ledger_rows(
    environment: str, entries: list[tuple[str, uuid.UUID, datetime, bool]], now: datetime
) -> set[str]:
    """Add (event id, usage row id, row time, final) to the ledger, sorted by event id so
    concurrent batches wait for each other in one order; returns the ids that were new."""
    if not entries:
        return set()
    if db.session.get_bind().dialect.name == "postgresql":
        event_ids, usage_log_ids, created_ats, finals = map(list, zip(*entries, strict=True))
        parameters = {
            "environment": environment,
            "received_at": now,
            "event_ids": event_ids,
            "usage_log_ids": usage_log_ids,
            "created_ats": created_ats,
            "finals": finals,
        }
        return set(db.session.scalars(LEDGER_UNNEST, parameters))
    rows = [
        {
            "environment": environment,
            "event_id": event_id,
            "usage_log_id": usage_log_id,
            "created_at": created_at,
            "is_final": is_final,
            "received_at": now,
        }
        for event_id, usage_log_id, created_at, is_final in entries
    ]
    return set(db.session.scalars(SQLITE_LEDGER_INSERT, rows))


def _store(
    key: AuthenticatedKey,
    accepted: list[_Accepted],
    catalog: _Catalog,
    shard: int,
    now: datetime,
) -> dict[int, str]:
    """Store the accepted events; the outcome of each by its place in the batch:
    ``accepted`` (stored), ``completed`` (made a pending event final) or ``duplicate``."""
    groups: dict[str, list[_Accepted]] = {}
    for item in accepted:
        groups.setdefault(item.event.id, []).append(item)

    # The row each id would be stored as if it is new: a pending event completed later in
    # the same batch is stored final (at the pending event's time).
    planned: dict[str, tuple[dict[str, Any], bool]] = {}
    for event_id, items in groups.items():
        first = items[0]
        final = next((i for i in items if i.event.status != "pending"), None)
        if first.event.status == "pending" and final is not None:
            row = final.row | {"id": first.row["id"], "created_at": first.row["created_at"]}
            planned[event_id] = (row, True)
        else:
            planned[event_id] = (first.row, first.event.status != "pending")

    ordered = sorted(planned.items())
    new_ids = _insert_ledger_rows(
        key.environment,
        [
            (event_id, row["id"], row["created_at"], is_final)
            for event_id, (row, is_final) in ordered
        ],
        now,
    )

    outcomes: dict[int, str] = {}
    rows = []
    completions: dict[str, _Accepted] = {}
    for event_id, items in groups.items():
        first_final = next((i for i in items if i.event.status != "pending"), None)
        for item in items:
            outcomes[item.index] = "duplicate"
        if event_id in new_ids:
            row, is_final = planned[event_id]
            rows.append(row)
            outcomes[items[0].index] = "accepted"
            if is_final and items[0].event.status == "pending" and first_final is not None:
                outcomes[first_final.index] = "completed"  # stored final at once
        elif first_final is not None:
            completions[event_id] = first_final  # a duplicate unless it completes

    # Completions first: every ledger lock of the transaction is taken before any rollup
    # lock, so two writers of one shard cannot wait for each other in a circle.
    completed, completed_ids, provider_of = _completions(
        key, {event_id: item.row for event_id, item in completions.items()}, catalog
    )
    store_usage_rows(rows, provider_of, shard, completed)
    for event_id in completed_ids:
        outcomes[completions[event_id].index] = "completed"
    return outcomes


def _completions(
    key: AuthenticatedKey, finals: dict[str, dict[str, Any]], catalog: _Catalog
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], set[str], dict[uuid.UUID, uuid.UUID]]:
    """Claim the pending events that these finals complete (ids sorted: concurrent
    batches lock in one order): (old row, changed columns) of each, their event ids, and
    the providers of every model involved. Finals of events already final, or reported
    by another key, claim nothing."""
    provider_of = dict(catalog.provider_of)
    targets: dict[uuid.UUID, str] = {}  # usage row id → event id
    if finals:
        # One statement for the whole batch, not one per event. The inner SELECT … FOR
        # UPDATE takes the ledger rows' locks in id order (concurrent batches lock in one
        # order, so they cannot wait for each other in a circle) and, on PostgreSQL,
        # re-checks a row it had to wait for: one already completed meanwhile drops out.
        claimable = (
            select(LEDGER.c.event_id)
            .where(
                LEDGER.c.environment == key.environment,
                LEDGER.c.event_id.in_(sorted(finals)),
                LEDGER.c.is_final.is_(False),
                # Only the key that reported the pending event may complete it: another
                # application's copy of the id is a duplicate and changes nothing.
                exists().where(USAGE.c.id == LEDGER.c.usage_log_id, USAGE.c.api_key_id == key.id),
            )
            .order_by(LEDGER.c.event_id)
            .with_for_update()
        )
        won = db.session.execute(
            update(LEDGER)
            .where(
                LEDGER.c.environment == key.environment,
                LEDGER.c.event_id.in_(claimable.scalar_subquery()),
                LEDGER.c.is_final.is_(False),
            )
            .values(is_final=True)
            .returning(LEDGER.c.event_id, LEDGER.c.usage_log_id)
        )
        targets = {row.usage_log_id: row.event_id for row in won}
    if not targets:
        return [], set(), provider_of
    old_rows = [
        dict(row._mapping)
        for row in db.session.execute(
            select(*[USAGE.c[name] for name in ROLLUP_INPUTS]).where(
                USAGE.c.id.in_(list(targets)), USAGE.c.status == "pending"
            )
        )
    ]
    unknown = {row["model_id"] for row in old_rows} - set(provider_of) - {None}
    if unknown:
        query = select(AIModel.id, AIModel.provider_id).where(AIModel.id.in_(unknown))
        provider_of |= {
            model_id: provider_id for model_id, provider_id in db.session.execute(query)
        }
    completed = [
        (
            row,
            {
                name: value
                for name, value in finals[targets[row["id"]]].items()
                if name not in KEPT_ON_COMPLETION
            },
        )
        for row in old_rows
    ]
    return completed, {targets[row["id"]] for row in old_rows}, provider_of


def _count(
    key: AuthenticatedKey,
    result: IngestionResult,
    received: int,
    shard: int,
    now: datetime,
    refused_before: int = 0,
) -> None:
    """Add the batch to the key's counters of this hour (one upsert)."""
    if not received and not refused_before:
        return
    figures = dict.fromkeys(COUNTER_COLUMNS, 0)
    figures[rejection_column("invalid")] += refused_before
    figures["accepted"] = result.accepted
    figures["completed"] = result.completed
    figures["duplicates"] = result.duplicates
    for rejection in result.rejected:
        figures[rejection_column(rejection.code)] += 1
    statement = _counter_upsert(db.session.get_bind().dialect.name)
    db.session.execute(
        statement,
        {
            "api_key_id": key.id,
            "hour": now.replace(minute=0, second=0, microsecond=0),
            "shard": shard,
            "last_event_at": now,
            **figures,
        },
    )


@functools.cache
def _counter_upsert(dialect_name: str) -> Any:
    """The upsert of a batch's counters, built once per dialect (building it costs more
    than running it for a small batch)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(COUNTERS)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["api_key_id", "hour", "shard"],
        set_={name: COUNTERS.c[name] + excluded[name] for name in COUNTER_COLUMNS}
        | {
            "last_event_at": case(
                (
                    COUNTERS.c.last_event_at.is_(None)
                    | (excluded.last_event_at > COUNTERS.c.last_event_at),
                    excluded.last_event_at,
                ),
                else_=COUNTERS.c.last_event_at,
            )
        },
    )
