"""Benchmark: usage ingestion called directly (no HTTP), on PostgreSQL: events/s of
``ingest_events`` at batches of 1, 100 and 1,000 events beside ``record_usage`` with the
same batches, then 1, 4 and 8 concurrent writers sending one event per transaction.

    python -m bench.ingestion_service [--database-url URL] [--seconds 3]

The database is emptied and rebuilt by the migrations: give it one of its own (default
postgresql://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench; `make bench` creates it).
``ingest_events`` runs as the database role ``application`` (row-level security on, as
the endpoint runs it). Commits are durable (the server's ``synchronous_commit``). At the
end the rollup, summed over its shards, is checked against the raw rows.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

DEFAULT_URL = "postgresql+psycopg://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench"
BATCHES = (1, 100, 1_000)
WRITERS = (1, 4, 8)


def reported_events(count: int, features: list[str], models: list[str], now: datetime) -> list:
    rng = random.Random()
    events = []
    for _ in range(count):
        input_tokens = rng.randint(50, 4000)
        events.append(
            {
                "id": uuid.uuid4().hex,
                "timestamp": (now - timedelta(seconds=rng.randint(0, 3600))).isoformat(),
                "feature": rng.choice(features),
                "model": rng.choice(models),
                "input_tokens": input_tokens,
                "cache_read_input_tokens": rng.randint(0, input_tokens),
                "output_tokens": rng.randint(0, 1500),
                "latency_ms": int(rng.lognormvariate(6.5, 0.5)),
                "status": "success" if rng.random() < 0.95 else "error",
                "user_id": f"user-{rng.randint(1, 5000)}",
            }
        )
    return events


def recorded_events(count: int, feature_ids: list, model_ids: list, now: datetime) -> list:
    rng = random.Random()
    return [
        {
            "feature_id": str(rng.choice(feature_ids)),
            "model_id": str(rng.choice(model_ids)),
            "input_tokens": rng.randint(50, 4000),
            "output_tokens": rng.randint(0, 1500),
            "response_time_ms": int(rng.lognormvariate(6.5, 0.5)),
            "status": "success",
            "created_at": (now - timedelta(seconds=rng.randint(0, 3600))).isoformat(),
        }
        for _ in range(count)
    ]


def rate(run_batch: Callable[[], int], seconds: float) -> float:
    """Events per second of ``run_batch`` (returns how many events it sent), run for about
    ``seconds`` after one warm-up call."""
    run_batch()
    sent = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        sent += run_batch()
    return sent / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    args = parser.parse_args()

    from sqlalchemy import select

    from bench.setup import add_key, fresh_app
    from webapp.extensions import db
    from webapp.models import AIModel, Feature
    from webapp.rls import APPLICATION, OPERATOR, use_database_role
    from webapp.services.apps.authentication import authenticate_secret
    from webapp.services.apps.ingestion import ingest_events
    from webapp.services.usage.recording import record_usage

    app = fresh_app(args.database_url)
    with app.app_context():
        use_database_role(OPERATOR)
        now = datetime.now(UTC)
        secret = add_key(("usage:write",))
        features = list(db.session.scalars(select(Feature.name)))
        feature_ids = list(db.session.scalars(select(Feature.id)))
        models = list(db.session.scalars(select(AIModel.name)))
        model_ids = list(db.session.scalars(select(AIModel.id)))
        key = authenticate_secret(secret)
        db.session.commit()

        print(f"Direct calls, {args.seconds:g} s per figure, events/s (PostgreSQL):")
        print(f"  {'batch':>6} {'ingest_events':>14} {'record_usage':>13} {'ratio':>6}")
        for size in BATCHES:

            def ingest_batch(size: int = size) -> int:
                result = ingest_events(key, reported_events(size, features, models, now))
                assert not result.rejected, result.rejected[:1]
                return size

            def record_batch(size: int = size) -> int:
                return record_usage(recorded_events(size, feature_ids, model_ids, now))

            use_database_role(APPLICATION)
            ingested = rate(ingest_batch, args.seconds)
            use_database_role(OPERATOR)
            recorded = rate(record_batch, args.seconds)
            print(f"  {size:>6} {ingested:>14,.0f} {recorded:>13,.0f} {ingested / recorded:>5.2f}x")

    print()
    print("Concurrent writers, one event per transaction (threads, own sessions), events/s:")
    print(f"  {'writers':>7} {'ingest_events':>14} {'per writer':>11}")
    for writers in WRITERS:
        total = concurrent_rate(app, writers, args.seconds, key, features, models, now)
        print(f"  {writers:>7} {total:>14,.0f} {total / writers:>11,.0f}")

    with app.app_context():
        use_database_role(OPERATOR)
        print()
        print(f"Rollup equals raw rows: {'yes' if rollup_matches_raw() else 'NO'}")


def concurrent_rate(app, writers: int, seconds: float, key, features, models, now) -> float:
    """Events/s of ``writers`` threads, each with its own app context and session,
    sending one event per ``ingest_events`` transaction."""
    from webapp.extensions import db
    from webapp.rls import APPLICATION, use_database_role
    from webapp.services.apps.ingestion import ingest_events

    counts = [0] * writers
    stop = threading.Event()
    barrier = threading.Barrier(writers + 1)

    def write(slot: int) -> None:
        with app.app_context():
            use_database_role(APPLICATION)
            ingest_events(key, reported_events(1, features, models, now))  # warm
            barrier.wait()
            while not stop.is_set():
                ingest_events(key, reported_events(1, features, models, now))
                counts[slot] += 1
            db.session.remove()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def rollup_matches_raw() -> bool:
    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import AIModel, UsageLog
    from webapp.models.types import utc_day
    from webapp.services.usage.rollup import KEY_COLUMNS, ROLLUP

    nil = uuid.UUID(int=0)
    raw_keys = (
        utc_day(UsageLog.created_at),
        UsageLog.feature_id,
        UsageLog.model_id,
        AIModel.provider_id,
        UsageLog.status,
        UsageLog.environment,
    )
    raw = {
        (day, f or nil, m or nil, p or nil, s, e): (n, tokens, cost)
        for day, f, m, p, s, e, n, tokens, cost in db.session.execute(
            select(
                *raw_keys, func.count(), func.sum(UsageLog.tokens_used), func.sum(UsageLog.cost_usd)
            )
            .outerjoin(AIModel, AIModel.id == UsageLog.model_id)
            .group_by(*raw_keys)
        )
    }
    c = ROLLUP.c
    keys = [c[k] for k in KEY_COLUMNS if k != "shard"]
    rolled = {
        tuple(row[:6]): tuple(row[6:])
        for row in db.session.execute(
            select(
                *keys, func.sum(c.request_count), func.sum(c.tokens_used), func.sum(c.cost_usd)
            ).group_by(*keys)
        )
        if any(row[6:])
    }
    return rolled == raw


if __name__ == "__main__":
    main()
