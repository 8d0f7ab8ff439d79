"""Reservations against hard budgets (``POST /api/v1/budgets/reserve``) and their
settlement by the usage events that carry their id.

Admission: a request is admitted when, for every active ``hard`` budget covering its
feature (its own and global ones, in their current window), spend + open reservations +
this estimate ≤ the amount. Spend is the budget pages' figure
(``budgets.analyse_budgets``: every environment). Open reservations are the unsettled,
unexpired ones of the budget's feature (of any feature for a global budget), read from
``budget_holds``: per feature and minute of expiry (rounded up), the amount its open
reservations hold — admission sums a few rows however many reservations are open (a sum
over the reservations themselves cost 35 ms at 50,000 open ones). So a reservation counts
up to a minute past its TTL, and one made just before a period ended counts in the next
for at most that long: both over-block, neither overshoots.

Atomicity: reading the room and inserting the reservation must not interleave with another
admission against the same budget, or two requests each see the room for one and both get
in. A conditional ``INSERT … SELECT`` alone does not prevent that under READ COMMITTED:
each transaction's snapshot lacks the other's uncommitted row (what went wrong in
litellm's first budget_reservation.py). So each covering hard budget is locked first, in
id order (two admissions under one global and one feature budget cannot deadlock):
PostgreSQL takes a transaction-scoped advisory lock per budget id (no UPDATE right on
budgets needed, and readers of the budget row are never blocked); each statement after it
sees every reservation committed before. SQLite has a single writer: a write statement
that changes nothing, first in the admission's transaction, takes the database's write
lock, so admissions run one after another. The lock is held while spend and the open
reservations are read, the reservation inserted and the transaction committed: on
PostgreSQL one statement and the commit (``ADMISSION`` reads every budget's spend from
the rollup and its open reservations, checks the room and inserts the reservation and its
hold only when all have room; everything else is prepared before the lock). That hold
bounds how many admissions one budget takes per second, so it is kept this short. Spend is
read inside it: a settlement commits its spend and releases its hold in one transaction,
so both reads must come after any settlement they could straddle.

No hard budget covers the feature: nothing is held and the answer has
``reservation_id`` None (the request may go ahead; there is nothing to settle).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import AIModel, Budget, BudgetHold, BudgetReservation, Feature, Provider
from webapp.services.apps.authentication import AuthenticatedKey
from webapp.services.core.errors import NotFound, ValidationFailed
from webapp.services.core.validation import check
from webapp.services.spending.budgets import (
    Window,
    amount_schedules,
    analyse_budgets,
    window_for,
)
from webapp.services.spending.enforcement import budgets_covering, period_end
from webapp.services.spending.schemas import ReservationRequest, reservation_form_problems
from webapp.services.usage.cost import request_cost
from webapp.services.usage.schemas import MAX_COST

DEFAULT_TTL_SECONDS = 600
RESERVATIONS = BudgetReservation.__table__
HOLDS = BudgetHold.__table__
PRUNE_AFTER = timedelta(hours=1)
# Changes nothing, but a write statement starts SQLite's write transaction.
SQLITE_WRITE_LOCK = text("UPDATE budget_reservations SET settled_at = settled_at WHERE 1 = 0")


@dataclass(frozen=True)
class Reservation:
    id: uuid.UUID | None  # None: no hard budget covers the feature, nothing was held
    reserved_usd: Decimal
    expires_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "reservation_id": self.id,
            "reserved_usd": self.reserved_usd,
            "expires_at": self.expires_at,
        }


class FeatureNotAllowed(Exception):
    """The key may not use the feature (answered 403)."""


@dataclass(frozen=True)
class BudgetExhausted(Exception):
    """A hard budget has no room for the estimate (answered 402)."""

    budget_id: uuid.UUID
    resets_at: datetime  # when the (last) exhausted budget's period ends


def _lock(budget_ids: Sequence[uuid.UUID]) -> None:
    """PostgreSQL: serialize admissions per budget, in id order (module docstring)."""
    for budget_id in sorted(budget_ids):
        key = int.from_bytes(budget_id.bytes[:8], "big", signed=True)
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _estimate(values: dict[str, Any]) -> Decimal:
    """The estimate as given, or the catalog price of the model and token counts."""
    if values.get("estimated_cost_usd") is not None:
        return values["estimated_cost_usd"]
    query = (
        select(AIModel)
        .join(Provider, Provider.id == AIModel.provider_id)
        .where(AIModel.name == values["model"])
        # As ingestion resolves a name: unversioned first, then provider name, version.
        .order_by(AIModel.version.is_not(None), Provider.name, AIModel.version, AIModel.id)
    )
    if values.get("provider"):
        query = query.where(func.lower(Provider.name) == values["provider"].lower())
    model = db.session.scalars(query.limit(1)).first()
    if model is None:
        raise ValidationFailed({"model": "is not a model of the catalog"})
    cost = request_cost(model, values["input_tokens"], values["max_output_tokens"])
    if cost > MAX_COST:
        raise ValidationFailed(
            {"max_output_tokens": f"prices the request above {MAX_COST} USD: reserve less"}
        )
    return cost


def expiry_minute(expires_at: datetime) -> datetime:
    """The hold bucket of a reservation: its expiry rounded up to the minute (it counts
    up to a minute longer than its TTL: over-blocking, never overshooting)."""
    floor = expires_at.replace(second=0, microsecond=0)
    return floor if floor == expires_at else floor + timedelta(minutes=1)


def held_amount(budget: Budget, now: datetime) -> Decimal:
    """What open reservations hold against ``budget``: the unexpired hold buckets of its
    feature (of every feature for a global budget)."""
    query = select(func.coalesce(func.sum(BudgetHold.held_usd), 0)).where(
        BudgetHold.expires_minute > now
    )
    if budget.feature_id is not None:
        query = query.where(BudgetHold.feature_id == budget.feature_id)
    return Decimal(db.session.scalar(query) or 0)


@functools.cache
def _hold_upsert(dialect_name: str) -> Any:
    """Add to a hold bucket, creating it (built once per dialect)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(HOLDS)
    return statement.on_conflict_do_update(
        index_elements=["feature_id", "expires_minute"],
        set_={"held_usd": HOLDS.c.held_usd + statement.excluded.held_usd},
    )


def reserve(
    key: AuthenticatedKey, fields: Mapping[str, Any], now: datetime | None = None
) -> Reservation:
    """Admit one request's estimate against the hard budgets covering its feature, or
    raise ``BudgetExhausted``; one transaction, which it commits."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    checked = check(ReservationRequest, fields)
    errors = dict(checked.errors)
    for name, message in reservation_form_problems(checked.values).items():
        errors.setdefault(name, message)
    if errors:
        raise ValidationFailed(errors)
    values = checked.values
    feature_id = db.session.scalar(select(Feature.id).where(Feature.name == values["feature"]))
    if feature_id is None:
        raise NotFound(f"feature {values['feature']!r} does not exist")
    if not key.may_use_feature(feature_id):
        raise FeatureNotAllowed(values["feature"])
    estimate = _estimate(values)

    sqlite = db.session.get_bind().dialect.name == "sqlite"
    if sqlite:
        # The database's write lock, taken by the admission transaction's first statement
        # (a reader cannot become the writer once another writer committed).
        db.session.commit()
        db.session.execute(SQLITE_WRITE_LOCK)
    hard = budgets_covering(feature_id, now.date(), enforcement="hard")
    if not hard:
        db.session.rollback()
        return Reservation(None, estimate, None)
    # Buckets long expired are of no use: the feature's are pruned as it reserves, before
    # the lock (they are never read, so no admission needs to wait for this).
    db.session.execute(
        delete(HOLDS).where(
            HOLDS.c.feature_id == feature_id, HOLDS.c.expires_minute < now - PRUNE_AFTER
        )
    )
    today = now.date()
    windows = [window_for(budget, today) for budget, _ in hard]
    ends = [(budget.id, window.end) for (budget, _), window in zip(hard, windows, strict=True)]
    ttl = current_app.config.get("BUDGET_RESERVATION_TTL_SECONDS", DEFAULT_TTL_SECONDS)
    expires_at = now + timedelta(seconds=ttl)
    reservation = Reservation(uuid.uuid4(), estimate, expires_at)
    row = {
        "id": reservation.id,
        "feature_id": feature_id,
        "api_key_id": key.id,
        "reserved_usd": estimate,
        "created_at": now,
        "expires_at": expires_at,
    }
    # Spend is read inside the lock: a settlement commits its cost as spend and releases
    # its hold together, so spend read before the lock could miss a settlement whose
    # released hold the read below already sees — and admit past the amount.
    if sqlite:
        analyses = analyse_budgets(now, hard)
        rooms = [
            analysis.amount - analysis.current_spend - held_amount(analysis.budget, now)
            for analysis in analyses
        ]
        if not _exhausted(ends, rooms, estimate):
            _hold(row, _tightest(ends, rooms))
    else:
        # Everything prepared before the lock: under it, one statement (spend, open
        # reservations, the check, the reservation and its hold) and the commit.
        parameters = _admission_parameters(hard, windows, now, row)
        _lock([budget.id for budget, _ in hard])
        rooms = [Decimal(room) for room in db.session.scalars(ADMISSION, parameters)]
    exhausted = _exhausted(ends, rooms, estimate)
    if exhausted is not None:
        db.session.rollback()
        raise exhausted
    db.session.commit()
    return reservation


def _exhausted(
    ends: Sequence[tuple[uuid.UUID, date]], rooms: Sequence[Decimal], estimate: Decimal
) -> BudgetExhausted | None:
    """The refusal when a budget (id, last day of its window) has no room for the
    estimate: the last such budget, and the latest end of their periods; else None."""
    exhausted = [end for end, room in zip(ends, rooms, strict=True) if estimate > room]
    if not exhausted:
        return None
    return BudgetExhausted(exhausted[-1][0], max(period_end(day) for _, day in exhausted))


def _tightest(ends: Sequence[tuple[uuid.UUID, date]], rooms: Sequence[Decimal]) -> uuid.UUID:
    """The budget with the least room (the first of equals), which the reservation names."""
    place = min(range(len(rooms)), key=lambda index: (rooms[index], index))
    return ends[place][0]


def _hold(row: dict[str, Any], budget_id: uuid.UUID | None) -> None:
    """Insert the reservation and add it to its hold bucket (SQLite; Core, not the ORM:
    nothing to refresh after the commit)."""
    db.session.execute(RESERVATIONS.insert().values(**row, budget_id=budget_id))
    db.session.execute(
        _hold_upsert(db.session.get_bind().dialect.name),
        {
            "feature_id": row["feature_id"],
            "expires_minute": expiry_minute(row["expires_at"]),
            "held_usd": row["reserved_usd"],
        },
    )


# PostgreSQL: each budget's room — its amount, minus its spend (the rollup's cost over
# its window up to today: the budgets pages' figure, ``analyse_budgets``; a test holds
# the two equal), minus the open reservations of its feature (of all for a global
# budget) — and, only when every budget has room for the estimate, the reservation,
# naming the budget with the least room, and its hold. One statement after the lock: one
# snapshot, in which the rooms read are those the insert is judged by.
ADMISSION = text(
    "WITH budget AS ("
    " SELECT * FROM unnest(CAST(:budget_ids AS uuid[]), CAST(:budget_features AS uuid[]),"
    " CAST(:amounts AS numeric[]), CAST(:first_days AS date[]), CAST(:last_days AS date[]))"
    " WITH ORDINALITY AS b(id, feature_id, amount, first_day, last_day, place)"
    "), room AS ("
    " SELECT b.id, b.place, b.amount"
    " - COALESCE((SELECT sum(r.cost_usd) FROM ai_usage_daily_rollup r"
    "  WHERE r.day BETWEEN b.first_day AND b.last_day"
    "  AND (b.feature_id IS NULL OR r.feature_id = b.feature_id)), 0)"
    " - COALESCE((SELECT sum(h.held_usd) FROM budget_holds h"
    "  WHERE h.expires_minute > :created_at"
    "  AND (b.feature_id IS NULL OR h.feature_id = b.feature_id)), 0) AS room"
    " FROM budget b"
    "), admitted AS ("
    " INSERT INTO budget_reservations"
    " (id, budget_id, feature_id, api_key_id, reserved_usd, created_at, expires_at)"
    " SELECT :id, (SELECT id FROM room ORDER BY room, place LIMIT 1), :feature_id,"
    " :api_key_id, :reserved_usd, :created_at, :expires_at"
    " WHERE NOT EXISTS (SELECT 1 FROM room WHERE room < :reserved_usd)"
    " RETURNING feature_id"
    "), held AS ("
    " INSERT INTO budget_holds (feature_id, expires_minute, held_usd)"
    " SELECT feature_id, :expires_minute, :reserved_usd FROM admitted"
    " ON CONFLICT (feature_id, expires_minute)"
    " DO UPDATE SET held_usd = budget_holds.held_usd + EXCLUDED.held_usd"
    ") SELECT room FROM room ORDER BY place"
)


def _admission_parameters(
    hard: Sequence[tuple[Budget, str | None]],
    windows: Sequence[Window],
    now: datetime,
    row: dict[str, Any],
) -> dict[str, Any]:
    """``ADMISSION``'s parameters: the budgets in the order of ``hard``, each with the
    amount in force for its window (``AmountSchedule``, as the budget pages) and its window
    up to today (as ``analyse_budgets`` reads spend), and the reservation."""
    today = now.date()
    schedules = amount_schedules([budget for budget, _ in hard])
    return row | {
        "budget_ids": [budget.id for budget, _ in hard],
        "budget_features": [budget.feature_id for budget, _ in hard],
        "amounts": [
            schedules[budget.id].for_period(window.start, window.end, now)
            for (budget, _), window in zip(hard, windows, strict=True)
        ],
        "first_days": [window.start for window in windows],
        "last_days": [min(window.end, today) for window in windows],
        "expires_minute": expiry_minute(row["expires_at"]),
    }


# ---------------------------------------------------------------------------------------
# Settlement (called by webapp.services.apps.ingestion inside its transaction)


def reservation_owners(
    reservation_ids: set[uuid.UUID],
) -> dict[uuid.UUID, tuple[uuid.UUID | None, uuid.UUID]]:
    """(API key, feature) of each of these reservations that exists (one query)."""
    if not reservation_ids:
        return {}
    rows = db.session.execute(
        select(
            BudgetReservation.id, BudgetReservation.api_key_id, BudgetReservation.feature_id
        ).where(BudgetReservation.id.in_(reservation_ids))
    )
    return {rid: (key_id, feature_id) for rid, key_id, feature_id in rows}


def settle_reservations(
    settlements: Sequence[tuple[uuid.UUID, Decimal, str]], now: datetime
) -> None:
    """Settle each (reservation, actual cost, event id) not settled yet and release its
    hold (the event's cost counts as spend from the same commit). A reservation is
    settled once: a later event carrying it changes nothing."""
    released: dict[tuple[uuid.UUID, datetime], Decimal] = {}
    for reservation_id, cost, event_id in sorted(settlements):
        settled = db.session.execute(
            update(RESERVATIONS)
            .where(RESERVATIONS.c.id == reservation_id, RESERVATIONS.c.settled_at.is_(None))
            .values(settled_at=now, settled_cost_usd=cost, usage_event_id=event_id)
            .returning(
                RESERVATIONS.c.feature_id, RESERVATIONS.c.expires_at, RESERVATIONS.c.reserved_usd
            )
        ).first()
        if settled is not None:
            bucket = (settled.feature_id, expiry_minute(settled.expires_at))
            released[bucket] = released.get(bucket, Decimal(0)) + settled.reserved_usd
    # Buckets in one order, so two batches settling into the same ones cannot deadlock.
    for (feature_id, minute), amount in sorted(released.items()):
        db.session.execute(
            update(HOLDS)
            .where(HOLDS.c.feature_id == feature_id, HOLDS.c.expires_minute == minute)
            .values(held_usd=HOLDS.c.held_usd - amount)
        )
