"""POST /api/v1/budgets/reserve: admission under hard budgets (200, 402 and its shape),
every bad input, expiry, settlement by usage events, and parallel clients (threads with
their own connections, on both databases) that never overshoot a hard budget. Requests
run as the database role ``application``, so the row-level security of migration 0010 is
exercised."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.apps_api.test_key_authentication import bearer
from tests.usage_rows import insert_usage
from webapp.models import BudgetHold, BudgetReservation
from webapp.services.apps.authentication import authenticate_secret
from webapp.services.spending.budgets import period_containing
from webapp.services.spending.reservations import BudgetExhausted, expiry_minute
from webapp.services.spending.reservations import reserve as service_reserve

URL = "/api/v1/budgets/reserve"
D = Decimal


def this_month() -> tuple[date, date]:
    return period_containing(datetime.now(UTC).date(), "monthly")


def next_reset() -> str:
    end = this_month()[1] + timedelta(days=1)
    return datetime(end.year, end.month, end.day, tzinfo=UTC).isoformat()


@pytest.fixture
def setup(db):
    chatbot = factories.feature("chatbot")
    search = factories.feature("search")
    openai = factories.provider("openai")
    factories.model(openai, "gpt-4o", input_price_per_million=D(10), output_price_per_million=D(20))
    first, last = this_month()
    hard = factories.budget(
        name="chat hard",
        feature_id=chatbot.id,
        enforcement="hard",
        budget_amount=D("1.00"),
        start_date=first,
        end_date=last,
    )
    _, secret = factories.api_key(features=(chatbot,))
    _, everything = factories.api_key()
    _, reader = factories.api_key(scopes=("config:read",))
    db.session.commit()
    return {
        "chatbot": chatbot,
        "search": search,
        "budget": hard,
        "secret": secret,
        "everything": everything,
        "reader": reader,
    }


def post(client, secret, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        URL, data=data, headers=bearer(secret) | {"Content-Type": "application/json"}
    )


def reserve(client, setup, amount="0.40", secret=None):
    return post(
        client, secret or setup["secret"], {"feature": "chatbot", "estimated_cost_usd": amount}
    )


def test_admits_within_the_amount_then_402(db, client, setup):
    answers = [reserve(client, setup) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    data = answers[0].json["data"]
    assert D(data["reserved_usd"]) == D("0.40")
    uuid.UUID(data["reservation_id"])
    expires = datetime.fromisoformat(data["expires_at"])
    assert timedelta(seconds=590) < expires - datetime.now(UTC) <= timedelta(seconds=600)
    assert reserve(client, setup, "0.20").status_code == 200  # exactly the amount: 1.00
    refused = reserve(client, setup, "0.000001")
    assert refused.status_code == 402
    assert refused.json == {
        "success": False,
        "error": "Budget exhausted",
        "code": "budget_exhausted",
        "details": "A hard budget covering this feature has no room for this request "
        "until it resets.",
        "resets_at": next_reset(),
    }
    assert db.session.scalar(select(func.count()).select_from(BudgetReservation)) == 3


def test_admission_uses_the_amount_in_force_after_an_edit(db, client, setup):
    from webapp.services.core.actor import Actor
    from webapp.services.spending.budgets import update_budget

    assert reserve(client, setup).status_code == 200  # 0.40 of 1.00
    update_budget(Actor.cli(), setup["budget"].id, {"budget_amount": "0.50"})
    db.session.commit()
    # The cut applies to the current period at once: 0.40 + 0.20 would pass 0.50.
    assert reserve(client, setup, "0.20").status_code == 402
    assert reserve(client, setup, "0.10").status_code == 200
    update_budget(Actor.cli(), setup["budget"].id, {"budget_amount": "2.00"})
    db.session.commit()
    assert reserve(client, setup, "1.00").status_code == 200


def test_spend_counts_with_the_reservations(db, client, setup):
    insert_usage([{"feature_id": setup["chatbot"].id, "cost_usd": "0.90"}])
    assert reserve(client, setup, "0.11").status_code == 402
    assert reserve(client, setup, "0.10").status_code == 200
    assert reserve(client, setup, "0").status_code == 200  # nothing more: still within


def test_priced_from_the_model(db, client, setup):
    answer = post(
        client,
        setup["secret"],
        {
            "feature": "chatbot",
            "model": "gpt-4o",
            "input_tokens": 10_000,
            "max_output_tokens": 5_000,
        },
    )
    assert answer.status_code == 200
    assert D(answer.json["data"]["reserved_usd"]) == D("0.2")  # 0.10 in + 0.10 out


def test_no_hard_budget_holds_nothing(db, client, setup):
    first, last = this_month()
    factories.budget(name="soft", enforcement="soft", start_date=first, end_date=last)
    db.session.commit()
    answer = post(client, setup["everything"], {"feature": "search", "estimated_cost_usd": "5"})
    assert answer.status_code == 200
    assert answer.json["data"] == {
        "reservation_id": None,
        "reserved_usd": "5.000000",
        "expires_at": None,
    }
    assert db.session.scalar(select(func.count()).select_from(BudgetReservation)) == 0


def test_a_global_hard_budget_covers_every_feature(db, client, setup):
    first, last = this_month()
    factories.budget(
        name="all", enforcement="hard", budget_amount=D("0.50"), start_date=first, end_date=last
    )
    db.session.commit()
    ok = post(client, setup["everything"], {"feature": "search", "estimated_cost_usd": "0.30"})
    assert ok.status_code == 200
    # The chatbot's own budget has room; the global one has 0.20 left.
    assert reserve(client, setup, "0.30").status_code == 402
    admitted = reserve(client, setup, "0.20")
    assert admitted.status_code == 200
    # The reservation names the budget with the least room: the global one (0.20 left,
    # the chatbot's own 1.00).
    named = db.session.scalar(
        select(BudgetReservation.budget_id).where(
            BudgetReservation.id == uuid.UUID(admitted.json["data"]["reservation_id"])
        )
    )
    assert named != setup["budget"].id and named is not None
    # Nothing was inserted by the refused one: the chatbot's holds are 0.20 only.
    assert db.session.scalar(
        select(func.sum(BudgetHold.held_usd)).where(BudgetHold.feature_id == setup["chatbot"].id)
    ) == D("0.20")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {},
            {
                "feature": "is required",
                "estimated_cost_usd": "is required, or model with input_tokens and "
                "max_output_tokens",
            },
        ),
        (
            {"feature": "chatbot"},
            {"estimated_cost_usd": "is required, or model with input_tokens and max_output_tokens"},
        ),
        (
            {"feature": "chatbot", "estimated_cost_usd": "1", "model": "gpt-4o"},
            {
                "estimated_cost_usd": "give either estimated_cost_usd or model with "
                "input_tokens and max_output_tokens, not both"
            },
        ),
        (
            {"feature": "chatbot", "model": "gpt-4o", "input_tokens": 5},
            {"max_output_tokens": "is required with model"},
        ),
        (
            {"feature": "chatbot", "input_tokens": 5, "max_output_tokens": 5},
            {"model": "is required with input_tokens and max_output_tokens"},
        ),
        (
            {"feature": "chatbot", "model": "nope", "input_tokens": 5, "max_output_tokens": 5},
            {"model": "is not a model of the catalog"},
        ),
        (
            {"feature": "chatbot", "model": "gpt-4o", "input_tokens": -1, "max_output_tokens": 5},
            {"input_tokens": "must be a whole number from 0"},
        ),
        ({"feature": "chatbot", "estimated_cost_usd": "-1"}, {"estimated_cost_usd": None}),
        ({"feature": "chatbot", "estimated_cost_usd": "abc"}, {"estimated_cost_usd": None}),
        ({"feature": "chatbot", "estimated_cost_usd": "1", "color": "red"}, {"color": None}),
        ({"feature": 7, "estimated_cost_usd": "1"}, {"feature": None}),
    ],
)
def test_bad_input_is_named_and_holds_nothing(db, client, setup, body, fields):
    answer = post(client, setup["secret"], body)
    assert answer.status_code == 400, answer.json
    assert set(answer.json["fields"]) == set(fields)
    for name, message in fields.items():
        if message is not None:
            assert answer.json["fields"][name] == message
    assert db.session.scalar(select(func.count()).select_from(BudgetReservation)) == 0


def test_not_json_is_400(db, client, setup):
    answer = post(client, setup["secret"], b"{nope")
    assert answer.status_code == 400
    assert post(client, setup["secret"], b"[1]").status_code == 400


def test_unknown_feature_404_foreign_feature_403_missing_scope_403(db, client, setup):
    answer = post(client, setup["secret"], {"feature": "ghost", "estimated_cost_usd": "1"})
    assert (answer.status_code, answer.json["fields"]) == (404, {"feature": "is not a feature"})
    answer = post(client, setup["secret"], {"feature": "search", "estimated_cost_usd": "1"})
    assert (answer.status_code, answer.json["code"]) == (403, "feature_not_allowed")
    answer = reserve(client, setup, secret=setup["reader"])
    assert (answer.status_code, answer.json["code"]) == (403, "insufficient_scope")
    assert client.post(URL, json={"feature": "chatbot"}).status_code == 401


def test_expired_reservations_stop_counting(db, client, setup, app, monkeypatch):
    monkeypatch.setitem(app.config, "BUDGET_RESERVATION_TTL_SECONDS", 30)
    answer = reserve(client, setup, "1.00")
    expires = datetime.fromisoformat(answer.json["data"]["expires_at"])
    assert timedelta(seconds=25) < expires - datetime.now(UTC) <= timedelta(seconds=30)
    assert reserve(client, setup, "0.01").status_code == 402
    # The hold counts until the minute after its expiry (rounded up), then not at all.
    key = authenticate_secret(setup["secret"])
    body = {"feature": "chatbot", "estimated_cost_usd": "1.00"}
    with pytest.raises(BudgetExhausted):
        service_reserve(key, body, now=expires)
    later = expiry_minute(expires)
    assert service_reserve(key, body, now=later).id is not None


def test_holds_match_the_open_reservations(db, client, setup):
    made = [reserve(client, setup, "0.10").json["data"] for _ in range(3)]
    usage(client, setup["secret"], cost_usd="0.02", reservation_id=made[0]["reservation_id"])
    db.session.expire_all()
    held = db.session.scalar(select(func.sum(BudgetHold.held_usd)))
    open_sum = db.session.scalar(
        select(func.sum(BudgetReservation.reserved_usd)).where(
            BudgetReservation.settled_at.is_(None)
        )
    )
    assert held == open_sum == D("0.20")


# ---------------------------------------------------------------------------------------
# Settlement


def usage(client, secret, **fields):
    event = {
        "id": fields.pop("id", str(uuid.uuid4())),
        "timestamp": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
        "feature": "chatbot",
        "model": "gpt-4o",
    } | fields
    return client.post("/api/v1/usage", json={"events": [event]}, headers=bearer(secret))


def test_a_usage_event_settles_its_reservation(db, client, setup):
    reservation_id = reserve(client, setup, "0.90").json["data"]["reservation_id"]
    assert reserve(client, setup, "0.20").status_code == 402
    answer = usage(client, setup["secret"], id="e1", cost_usd="0.05", reservation_id=reservation_id)
    assert answer.status_code == 200, answer.json
    db.session.expire_all()
    row = db.session.get(BudgetReservation, uuid.UUID(reservation_id))
    assert (row.settled_cost_usd, row.usage_event_id) == (D("0.05"), "e1")
    assert row.settled_at is not None
    # 0.05 spent, nothing held: 0.95 left.
    assert reserve(client, setup, "0.96").status_code == 402
    assert reserve(client, setup, "0.95").status_code == 200
    # Settled once: another event carrying it changes nothing.
    usage(client, setup["secret"], id="e2", cost_usd="0.50", reservation_id=reservation_id)
    db.session.expire_all()
    assert db.session.get(BudgetReservation, uuid.UUID(reservation_id)).settled_cost_usd == D(
        "0.05"
    )


def test_pending_events_do_not_settle_their_final_does(db, client, setup):
    reservation_id = reserve(client, setup, "0.50").json["data"]["reservation_id"]
    usage(client, setup["secret"], id="p", status="pending", reservation_id=reservation_id)
    db.session.expire_all()
    assert db.session.get(BudgetReservation, uuid.UUID(reservation_id)).settled_at is None
    answer = usage(
        client, setup["secret"], id="p", input_tokens=1000, reservation_id=reservation_id
    )
    assert answer.json["data"]["completed"] == 1
    db.session.expire_all()
    row = db.session.get(BudgetReservation, uuid.UUID(reservation_id))
    assert row.settled_cost_usd == D("0.01")  # 1,000 input tokens at 10 per million


def test_unknown_or_foreign_reservation_makes_the_event_invalid(db, client, setup):
    theirs = reserve(client, setup, "0.10", secret=setup["everything"]).json["data"]
    cases = {
        str(uuid.uuid4()): "is not a reservation this API key made for the feature chatbot",
        theirs["reservation_id"]: "is not a reservation this API key made for the feature chatbot",
        "not-a-uuid": "must be a reservation id (UUID) from POST /api/v1/budgets/reserve",
    }
    for reservation_id, message in cases.items():
        answer = usage(client, setup["secret"], reservation_id=reservation_id)
        assert answer.status_code == 422
        (rejected,) = answer.json["data"]["rejected"]
        assert (rejected["code"], rejected["errors"]) == ("invalid", {"reservation_id": message})
    db.session.expire_all()
    row = db.session.get(BudgetReservation, uuid.UUID(theirs["reservation_id"]))
    assert row.settled_at is None


def test_a_reservation_for_another_feature_is_foreign(db, client, setup):
    search_key = setup["everything"]
    first, last = this_month()
    factories.budget(name="all", enforcement="hard", start_date=first, end_date=last)
    db.session.commit()
    made = post(client, search_key, {"feature": "search", "estimated_cost_usd": "0.1"})
    answer = usage(client, search_key, reservation_id=made.json["data"]["reservation_id"])
    assert answer.json["data"]["rejected"][0]["errors"] == {
        "reservation_id": "is not a reservation this API key made for the feature chatbot"
    }


# ---------------------------------------------------------------------------------------
# Concurrency: each thread has its own app context, session and connection


def test_parallel_clients_never_overshoot(db, app, setup):
    threads, per_thread = 10, 4
    barrier = threading.Barrier(threads)
    statuses: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            for _ in range(per_thread):
                status = reserve(client, setup, "0.07").status_code
                with lock:
                    statuses.append(status)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    db.session.expire_all()
    held = db.session.scalar(select(func.sum(BudgetReservation.reserved_usd)))
    assert sorted(set(statuses)) == [200, 402]
    assert statuses.count(200) == 14  # 14 × 0.07 = 0.98; a 15th would pass 1.00
    assert held == D("0.98")


def test_the_admission_statement_reads_the_budget_pages_spend(db, setup, dialect):
    """PostgreSQL admits in one statement that reads spend from the rollup itself; its
    room must be the budgets pages' figure (analyse_budgets) minus the open holds, for a
    feature budget and a global one, whatever days, features and environments the usage
    has (the day before the window, today, tomorrow's early events, no feature)."""
    if dialect != "postgresql":
        pytest.skip("the one-statement admission is PostgreSQL's")
    from webapp.services.spending.budgets import analyse_budgets, window_for
    from webapp.services.spending.enforcement import budgets_covering
    from webapp.services.spending.reservations import (
        ADMISSION,
        _admission_parameters,
        held_amount,
    )

    now = datetime.now(UTC)
    first, last = this_month()
    factories.budget(
        name="all", enforcement="hard", budget_amount=D("50"), start_date=first, end_date=last
    )
    day = timedelta(days=1)
    insert_usage(
        [
            {"feature_id": setup["chatbot"].id, "cost_usd": "0.125", "created_at": now},
            {"feature_id": setup["search"].id, "cost_usd": "0.25", "created_at": now},
            {"feature_id": None, "cost_usd": "0.5", "created_at": now, "environment": "staging"},
            # Before the window (and before the budgets started): not spend.
            {"feature_id": setup["chatbot"].id, "cost_usd": "7", "created_at": now - 40 * day},
            # Tomorrow (an event up to 10 minutes early lands there): not spend yet.
            {"feature_id": setup["chatbot"].id, "cost_usd": "3", "created_at": now + day},
        ]
    )
    service_reserve(
        authenticate_secret(setup["everything"]),
        {"feature": "chatbot", "estimated_cost_usd": "0.01"},
    )
    hard = budgets_covering(setup["chatbot"].id, now.date(), enforcement="hard")
    assert len(hard) == 2
    expected = [
        a.amount - a.current_spend - held_amount(a.budget, now) for a in analyse_budgets(now, hard)
    ]
    row = {
        "id": uuid.uuid4(),
        "feature_id": setup["chatbot"].id,
        "api_key_id": None,
        "reserved_usd": D("100"),  # more than any room: nothing is inserted
        "created_at": now,
        "expires_at": now + timedelta(minutes=5),
    }
    windows = [window_for(budget, now.date()) for budget, _ in hard]
    parameters = _admission_parameters(hard, windows, now, row)
    rooms = [D(room) for room in db.session.scalars(ADMISSION, parameters)]
    db.session.rollback()
    assert rooms == expected
    assert sorted(expected) == [D("0.865"), D("49.115")]  # 1 − 0.125 − 0.01; 50 − 0.875 − 0.01
