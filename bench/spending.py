"""Benchmark: the 30-day spending breakdown through the service (daily rollup + today's raw
rows) against the same breakdown aggregated from raw rows, on PostgreSQL.

    python -m bench.spending --rows 1000000 [--database-url URL] [--days 90] [--repeat 7]

The database is emptied and rebuilt by the migrations: give it one of its own (default
postgresql://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench; `make bench` creates it).
Rows are loaded with COPY, then the rollup is built with the same code as
`flask rollup rebuild`. Prints medians side by side and their ratio. Targets at 1M rows:
service under 50 ms and at least 20x faster than raw.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

DEFAULT_URL = "postgresql+psycopg://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench"


def median_ms(function, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def load_rows(url: str, rows: int, days: int, features: list, models: list, now: datetime) -> float:
    """COPY ``rows`` usage rows spread over ``days`` days; returns seconds taken."""
    rng = random.Random(42)
    started = time.perf_counter()
    plain_url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain_url) as connection:
        # COPY refuses tables under forced row-level security; the owner lifts it for the
        # load only (same transaction, so nobody else ever sees the table without it).
        connection.execute("ALTER TABLE ai_usage_logs NO FORCE ROW LEVEL SECURITY")
        with connection.cursor() as cursor:
            columns = (
                "id, feature_id, model_id, input_tokens, output_tokens, tokens_used, "
                "response_time_ms, cost_usd, status, created_at"
            )
            with cursor.copy(f"COPY ai_usage_logs ({columns}) FROM STDIN") as copy:
                window = days * 86_400
                for _ in range(rows):
                    model_id, in_price, out_price = rng.choice(models)
                    input_tokens = rng.randint(50, 4000)
                    output_tokens = rng.randint(0, 1500)
                    cost = (
                        Decimal(input_tokens) * in_price + Decimal(output_tokens) * out_price
                    ) / 1_000_000
                    roll = rng.random()
                    status = "success" if roll < 0.95 else ("error" if roll < 0.98 else "timeout")
                    copy.write_row(
                        (
                            uuid.uuid4(),
                            rng.choice(features),
                            model_id,
                            input_tokens,
                            output_tokens,
                            input_tokens + output_tokens,
                            int(rng.lognormvariate(6.5, 0.5)),
                            cost.quantize(Decimal("0.000001")),
                            status,
                            now - timedelta(seconds=window * rng.random()),
                        )
                    )
        connection.execute("ALTER TABLE ai_usage_logs FORCE ROW LEVEL SECURITY")
        connection.commit()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90, help="days the rows are spread over")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()

    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from webapp import create_app
    from webapp.extensions import db
    from webapp.rls import OPERATOR, use_database_role
    from webapp.services.audit import Actor
    from webapp.services.rollup import recompute_rollup
    from webapp.services.seed import seed_defaults
    from webapp.services.spending import spending_breakdown

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "SECRET_KEY": "bench" * 8})
    with app.app_context():
        try:
            downgrade(revision="base")
        except Exception:  # an empty or older database may have nothing to take down
            db.session.rollback()
        upgrade()
        use_database_role(OPERATOR)
        now = datetime.now(UTC)
        today = now.date()
        seed_defaults(Actor.cli(), today)
        features = [row[0] for row in db.session.execute(text("SELECT id FROM ai_features"))]
        models = [
            (row[0], row[1], row[2])
            for row in db.session.execute(
                text("SELECT id, input_price_per_million, output_price_per_million FROM ai_models")
            )
        ]
        db.session.commit()

        print(f"Loading {args.rows:,} usage rows over {args.days} days with COPY…", flush=True)
        seconds = load_rows(args.database_url, args.rows, args.days, features, models, now)
        print(f"  loaded in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s)")
        started = time.perf_counter()
        written = recompute_rollup()
        db.session.commit()
        print(f"  rollup built in {time.perf_counter() - started:.1f} s: {written:,} rollup rows")
        db.session.execute(text("ANALYZE"))
        db.session.commit()

        first = today - timedelta(days=29)

        def through_service():
            spending_breakdown(first, today)
            db.session.rollback()

        def from_raw_rows():
            # The same code with "today" at the range's start: every day reads raw rows.
            spending_breakdown(first, today, today=first)
            db.session.rollback()

        fast = spending_breakdown(first, today)
        slow = spending_breakdown(first, today, today=first)
        assert fast.total_spend == slow.total_spend, (fast.total_spend, slow.total_spend)
        db.session.rollback()
        through_service()  # warm caches for both
        from_raw_rows()
        service_ms = median_ms(through_service, args.repeat)
        raw_ms = median_ms(from_raw_rows, max(3, args.repeat // 2))
        print()
        print(f"30-day breakdown, {args.rows:,} rows, median of runs, same process:")
        print(f"  service (rollup + today's raw rows): {service_ms:8.1f} ms   target < 50 ms")
        print(f"  aggregated from raw rows:            {raw_ms:8.1f} ms")
        print(
            f"  ratio:                               {raw_ms / service_ms:8.1f} x   target ≥ 20 x"
        )
        print(f"  both answer total spend {fast.total_spend} over {fast.total_requests:,} requests")


if __name__ == "__main__":
    main()
