"""Benchmark: budget reservations per second on one hot hard budget, on PostgreSQL.

    python -m bench.reservations [--database-url URL] [--seconds 5]

The database is emptied and rebuilt by the migrations: give it one of its own (default
postgresql://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench). One feature with one hard
budget (large enough never to refuse) and 1, 4 and 8 concurrent client processes (as
gunicorn workers would be: no shared GIL) calling ``reserve`` directly (no HTTP), each
with its own app and connection, as the database role ``application``. Every admission
takes the budget's lock, so this is the rate of one budget's critical section. Prints
reservations/s and the median and p95 answer time; target ≥ 500/s. Beside each figure,
the same clients running the floor of any durable admission (the budget's advisory lock,
one UPDATE, the commit): the ceiling of one hot budget on this machine. At the end the
held total is checked against the count.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

DEFAULT_URL = "postgresql+psycopg://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench"
CLIENTS = (1, 4, 8)
ESTIMATE = "0.001000"


# The floor of any durable admission on one budget: take the budget's lock, write one
# row, commit (the commit must happen under the lock, or the next admission would not
# see this one). Its rate is the ceiling of a hot budget on this machine.
FLOOR_TABLE = "bench_lock_floor"


def _floor(db: Any) -> None:
    from sqlalchemy import text

    db.session.execute(text("SELECT pg_advisory_xact_lock(4242)"))
    db.session.execute(text(f"UPDATE {FLOOR_TABLE} SET n = n + 1 WHERE id = 1"))
    db.session.commit()


def _client(
    database_url: str, secret: str, barrier: Any, stop: Any, results: Any, floor: bool = False
) -> None:
    """One client process: its own app and connection, reserving until ``stop`` (or
    running the floor transaction)."""
    from webapp import create_app
    from webapp.extensions import db
    from webapp.rls import APPLICATION, use_database_role
    from webapp.services.apps.authentication import authenticate_secret
    from webapp.services.spending.reservations import reserve

    if floor:
        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench" * 8})
        latencies = []
        with app.app_context():
            _floor(db)
            barrier.wait()
            while not stop.is_set():
                started = time.perf_counter()
                _floor(db)
                latencies.append(time.perf_counter() - started)
            db.session.remove()
        results.put(latencies)
        return

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench" * 8})
    latencies = []
    with app.app_context():
        use_database_role(APPLICATION)
        key = authenticate_secret(secret)
        body = {"feature": "chatbot", "estimated_cost_usd": ESTIMATE}
        reserve(key, body)  # warm-up (held, and counted at the end)
        barrier.wait()
        while not stop.is_set():
            started = time.perf_counter()
            reserve(key, body)
            latencies.append(time.perf_counter() - started)
        db.session.remove()
    results.put(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    args = parser.parse_args()

    from flask_migrate import downgrade, upgrade
    from sqlalchemy import func, select, text

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import ApiKey, Budget, BudgetReservation, Feature
    from webapp.rls import OPERATOR, use_database_role
    from webapp.services.apps.secrets import new_secret, secret_hash, secret_prefix

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "SECRET_KEY": "bench" * 8})
    with app.app_context():
        try:
            downgrade(revision="base")
        except Exception:  # an empty or older database may have nothing to take down
            db.session.rollback()
        upgrade()
        use_database_role(OPERATOR)
        today = datetime.now(UTC).date()
        feature = Feature(name="chatbot", display_name="Chatbot", model_type="llm")
        db.session.add(feature)
        db.session.flush()
        db.session.add(
            Budget(
                name="hot",
                feature_id=feature.id,
                period_type="monthly",
                budget_amount=Decimal("99999999.00"),
                start_date=today - timedelta(days=1),
                end_date=today + timedelta(days=30),
                enforcement="hard",
            )
        )
        secret = new_secret("production")
        db.session.add(
            ApiKey(
                name="bench",
                prefix=secret_prefix(secret),
                secret_hash=secret_hash(secret),
                environment="production",
                scopes=["usage:write"],
                feature_ids=[],
            )
        )
        db.session.commit()
        db.session.execute(text(f"DROP TABLE IF EXISTS {FLOOR_TABLE}"))
        db.session.execute(text(f"CREATE TABLE {FLOOR_TABLE} (id int PRIMARY KEY, n bigint)"))
        db.session.execute(text(f"INSERT INTO {FLOOR_TABLE} VALUES (1, 0)"))
        db.session.commit()
        db.engine.dispose()  # no connection crosses the forks below

    print(f"Reservations on one hard budget, {args.seconds:g} s per figure (PostgreSQL),")
    print("beside the floor: advisory lock + one UPDATE + commit, the same clients:")
    print(
        f"  {'clients':>7} {'per s':>8} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'floor/s':>8} {'floor p50':>9} {'floor/reserve':>13}"
    )
    context = multiprocessing.get_context("fork")
    total = 0

    def run(clients: int, floor: bool) -> tuple[float, list[float]]:
        barrier = context.Barrier(clients + 1)
        stop = context.Event()
        results = context.Queue()
        workers = [
            context.Process(
                target=_client,
                args=(args.database_url, secret, barrier, stop, results, floor),
            )
            for _ in range(clients)
        ]
        for worker in workers:
            worker.start()
        barrier.wait()
        started = time.perf_counter()
        time.sleep(args.seconds)
        stop.set()
        latencies: list[float] = []
        for _ in workers:
            latencies.extend(results.get())
        elapsed = time.perf_counter() - started
        for worker in workers:
            worker.join()
        return len(latencies) / elapsed, sorted(latencies)

    for clients in CLIENTS:
        rate, ordered = run(clients, floor=False)
        total += len(ordered) + clients  # and one warm-up each
        floor_rate, floor_ordered = run(clients, floor=True)
        p95 = ordered[int(len(ordered) * 0.95)] if ordered else 0.0
        print(
            f"  {clients:>7} {rate:>8.0f} "
            f"{statistics.median(ordered) * 1000:>7.2f} {p95 * 1000:>7.2f}"
            f" {floor_rate:>8.0f} {statistics.median(floor_ordered) * 1000:>9.2f}"
            f" {floor_rate / rate:>12.2f}x"
        )

    with app.app_context():
        use_database_role(OPERATOR)
        count, held = db.session.execute(
            select(func.count(), func.sum(BudgetReservation.reserved_usd))
        ).one()
        assert count == total, (count, total)
        assert held == Decimal(ESTIMATE) * total, (held, total)
        print(f"  {count} reservations held {held} USD: as counted")
        db.session.execute(text(f"DROP TABLE IF EXISTS {FLOOR_TABLE}"))
        db.session.commit()


if __name__ == "__main__":
    main()
