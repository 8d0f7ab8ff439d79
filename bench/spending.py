"""Benchmark: the 30-day spending breakdown and the Global Overview (page and partials)
through the services (daily rollup) against the same answers computed
from raw rows, on PostgreSQL.

    python -m bench.spending --rows 1000000 [--database-url URL] [--days 90] [--repeat 7]

The database is emptied and rebuilt by the migrations: give it one of its own (default
postgresql://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench; `make bench` creates it).
Rows are loaded with COPY, then the rollup is built with the same code as
`flask rollup rebuild`. Prints medians side by side and their ratio. Targets at 1M rows:
breakdown under 50 ms and at least 20x faster than raw; overview page under 150 ms and
each partial under 80 ms (server side: the request through the app, rendering included).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import random
import re
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
            # Oldest first, as usage arrives: rows of one day sit together on disk, as they
            # would in production (random order would scatter "the last 24 hours").
            window = days * 86_400
            offsets = sorted((window * rng.random() for _ in range(rows)), reverse=True)
            with cursor.copy(f"COPY ai_usage_logs ({columns}) FROM STDIN") as copy:
                for offset in offsets:
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
                            now - timedelta(seconds=offset),
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

    from sqlalchemy import text

    from bench.setup import fresh_app
    from webapp.extensions import db
    from webapp.rls import OPERATOR, use_database_role
    from webapp.services.spending.analytics import spending_breakdown
    from webapp.services.usage.rollup import recompute_rollup

    app = fresh_app(args.database_url)
    with app.app_context():
        use_database_role(OPERATOR)
        now = datetime.now(UTC)
        today = now.date()
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
            # The same code with every day read from raw rows.
            spending_breakdown(first, today, raw_from=first)
            db.session.rollback()

        fast = spending_breakdown(first, today)
        slow = spending_breakdown(first, today, raw_from=first)
        assert fast.total_spend == slow.total_spend, (fast.total_spend, slow.total_spend)
        db.session.rollback()
        through_service()  # warm caches for both
        from_raw_rows()
        service_ms = median_ms(through_service, args.repeat)
        raw_ms = median_ms(from_raw_rows, max(3, args.repeat // 2))
        print()
        print(f"30-day breakdown, {args.rows:,} rows, median of runs, same process:")
        print(f"  service (daily rollup):              {service_ms:8.1f} ms   target < 50 ms")
        print(f"  aggregated from raw rows:            {raw_ms:8.1f} ms")
        print(
            f"  ratio:                               {raw_ms / service_ms:8.1f} x   target ≥ 20 x"
        )
        print(f"  both answer total spend {fast.total_spend} over {fast.total_requests:,} requests")
        overview_figures(app, args.repeat)


OVERVIEW_TARGETS = [
    ("page  /                  (7 days)", "/", {}, 150),
    ("page  /?range=30d", "/?range=30d", {}, 150),
    ("page  /?range=24h", "/?range=24h", {}, 150),
    ("part  dashboard 30d (htmx)", "/?range=30d", {"HX-Request": "true"}, 80),
    ("part  /overview/tiles?range=30d", "/overview/tiles?range=30d", {"HX-Request": "true"}, 80),
    ("part  /overview/alerts", "/overview/alerts", {"HX-Request": "true"}, 80),
]


@contextlib.contextmanager
def reading_raw_rows_only():
    """Every whole-day read goes to the raw rows: the same pages, computed as if there
    were no rollup."""
    from webapp.services.overview import kpis as overview_kpis
    from webapp.services.spending import analytics as spending
    from webapp.services.spending import budgets
    from webapp.services.usage import reads as usage_days

    original = usage_days.usage_by

    def raw(start, end, keys, **kwargs):
        return original(start, end, keys, **{**kwargs, "raw_from": start})

    modules = (budgets, overview_kpis, spending)
    for module in modules:
        module.usage_by = raw
    try:
        yield
    finally:
        for module in modules:
            module.usage_by = original


def overview_figures(app, repeat: int) -> None:
    """Median server-side time of the overview page and its partials, through the app."""
    from webapp.extensions import db
    from webapp.models import ROLE_ADMIN
    from webapp.services.core.actor import Actor
    from webapp.services.identity.users import create_user

    email, password = "bench@example.com", "a long passphrase for timing pages"
    create_user(Actor.cli(), email, password, ROLE_ADMIN)
    db.session.commit()
    test_client = app.test_client()

    class Isolated:
        """Each request in an empty context (its own app context and database session),
        as a server runs it; this function's own context holds the caller's session."""

        def __getattr__(self, name: str):
            method = getattr(test_client, name)
            return lambda *a, **k: contextvars.Context().run(method, *a, **k)

    client = Isolated()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    signed_in = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert signed_in.status_code == 302, signed_in.status_code

    def timed(url: str, headers: dict) -> float:
        def fetch():
            response = client.get(url, headers=headers)
            assert response.status_code == 200, (url, response.status_code)

        fetch()  # warm
        return median_ms(fetch, repeat)

    print()
    print("Global Overview, server-side median per request (same process, same data):")
    print(f"  {'':34} {'rollup':>9} {'raw rows':>9} {'ratio':>7}  target")
    for label, url, headers, target in OVERVIEW_TARGETS:
        fast = timed(url, headers)
        with reading_raw_rows_only():
            slow = timed(url, headers)
        verdict = "ok" if fast < target else "MISSED"
        print(
            f"  {label:34} {fast:7.1f}ms {slow:7.1f}ms {slow / fast:6.1f}x  < {target} ms {verdict}"
        )


if __name__ == "__main__":
    main()
