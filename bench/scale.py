"""Benchmark of issue 17: the console at scale, every figure beside /login in one run.

    python -m bench.scale --database-url URL [--database-url URL2 …] [--rows N] [--days 365]
                          [--reuse] [--repeat 15] [--clients 8] [--seconds 10]

Each ``--database-url`` is a database of its own (default
postgresql://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench). Without ``--reuse`` it is
emptied, rebuilt by the migrations and loaded with the realistic data set of
bench/scale_data.py (40 features, 8 providers, 30 models, 3 per feature, ``--days`` days
with a daily cycle, 1 % pending, 2 % without a feature, ~400k health checks); ``--rows``
takes one figure per database (``--rows 1000000 --rows 10000000``). With ``--reuse`` the
rows an earlier run loaded are measured again.

For each database in turn it serves the console with the README's production command
(gunicorn gthread, two workers for two cores), signs in as an admin and prints:
- every page, htmx partial and admin-API read: p50 of ``--repeat`` requests and the ratio
  to ``/login`` (a page that reads nothing);
- overview renders/s with ``--clients`` clients at once, for 7 days, 30 days, 24 hours;
- the 30-day usage CSV: rows/s, the worker's peak RSS and the ratio to PostgreSQL's own
  ``COPY`` of the same rows;
- ingestion through ``POST /api/v1/usage``: events/s in batches of 1,000 and the median
  answer to a batch of 1, at this table size.
With two or more databases a last column gives the growth from the first to the last.
On a shared machine the ratios are the figures to compare, not the milliseconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from bench.console import API, DEFAULT_URL, EMAIL, PASSWORD, serve, sign_in, stop

OVERVIEWS = (("7 days", "/"), ("30 days", "/?range=30d"), ("24 hours", "/?range=24h"))


@dataclass
class Figures:
    """What one database's run measured, by row label."""

    rows: str
    load: str = ""
    pages: dict[str, tuple[float, int, int]] = field(default_factory=dict)
    rates: dict[str, tuple[float, str]] = field(default_factory=dict)


def prepare(url: str, rows: int, reuse: bool, days: int = 365) -> dict[str, str]:
    """Load (unless ``reuse``) and return the ids, cursor and API key the runs need."""
    from sqlalchemy import select, text

    from bench.setup import add_key
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Budget, Feature, Provider, User
    from webapp.rls import OPERATOR, use_database_role
    from webapp.services.core.actor import Actor
    from webapp.services.identity.users import create_user
    from webapp.services.usage.logs import encode_cursor

    if not reuse:
        from bench.scale_data import load
        from bench.setup import fresh_app

        app = fresh_app(url)
        with app.app_context():
            print(f"Loading {rows:,} usage rows over {days} days…", flush=True)
            seconds = load(rows, days, datetime.now(UTC))
            print("  " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()), flush=True)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench" * 8})
    with app.app_context():
        use_database_role(OPERATOR)
        if db.session.scalar(select(User).where(User.email == EMAIL)) is None:
            create_user(Actor.cli(), EMAIL, PASSWORD, "platform_admin")
            db.session.commit()
        feature = db.session.scalars(select(Feature.id).order_by(Feature.name)).first()
        provider = db.session.scalars(select(Provider.id).order_by(Provider.name)).first()
        budget = db.session.scalars(select(Budget.id).order_by(Budget.name)).first()
        # A cursor 45 days deep (or as deep as the data goes), as the issue measured.
        deep = (
            db.session.execute(
                text(
                    "SELECT created_at, id FROM ai_usage_logs WHERE created_at < now() - "
                    "interval '45 days' ORDER BY created_at DESC, id DESC LIMIT 1"
                )
            ).first()
            or db.session.execute(
                text("SELECT created_at, id FROM ai_usage_logs ORDER BY created_at, id LIMIT 1")
            ).one()
        )
        count = db.session.scalar(text("SELECT count(*) FROM ai_usage_logs"))
        db.session.commit()
        secret = add_key(name=f"bench scale {datetime.now(UTC):%Y-%m-%d %H:%M:%S.%f}")
    return {
        "feature": str(feature),
        "provider": str(provider),
        "budget": str(budget),
        "cursor": encode_cursor(deep[0], deep[1]),
        "rows": f"{count:,}",
        "secret": secret,
    }


def page_list(ids: dict[str, str], today: date) -> list[tuple[str, str, bool]]:
    """(label, path, htmx partial) of every page the issue measures, and their partials."""
    year = f"start_date={today - timedelta(days=364)}&end_date={today}"
    return [
        ("/login (trivial page)", "/login", False),
        ("/features?range=30d", "/features?range=30d", False),
        ("  partial: range swap to 24h", "/features?range=24h", True),
        ("/features/<id>", f"/features/{ids['feature']}", False),
        ("  partial: range swap to 1h", f"/features/{ids['feature']}?range=1h", True),
        ("/?range=24h (overview)", "/?range=24h", False),
        ("  partial: tiles, 24h", "/overview/tiles?range=24h", True),
        ("  partial: alerts", "/overview/alerts", True),
        ("/ (7 days)", "/", False),
        ("/?range=30d", "/?range=30d", False),
        ("/models", "/models", False),
        ("/providers", "/providers", False),
        ("/providers/<id>", f"/providers/{ids['provider']}", False),
        ("/spending (30 days)", "/spending", False),
        ("/spending (365 days)", f"/spending?range=custom&{year}", False),
        ("/budgets", "/budgets", False),
        ("/budgets/<id>", f"/budgets/{ids['budget']}", False),
        ("API spending breakdown, 365 days", f"{API}/spending?{year}", False),
        ("API usage, first page", f"{API}/usage?limit=50", False),
        ("API usage, cursor 45 days deep", f"{API}/usage?limit=50&cursor={ids['cursor']}", False),
    ]


def p50(port: int, path: str, headers: dict[str, str], repeat: int) -> tuple[float, int, int]:
    """Median milliseconds of ``repeat`` GETs on one connection (after one to warm up),
    the last status and size."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    timings, status, size = [], 0, 0
    for attempt in range(repeat + 1):
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        size = len(response.read())
        status = response.status
        if attempt:
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), status, size


def renders_per_second(
    port: int, path: str, cookie: str, clients: int, seconds: float
) -> tuple[float, float]:
    """``clients`` threads each requesting ``path`` back to back for ``seconds``: answers
    per second (all 200, or it fails) and the p95 milliseconds."""
    timings: list[float] = []
    failures: list[int] = []
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            connection.request("GET", path, headers={"Cookie": cookie})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(response.status)
            timings.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{path} answered {sorted(set(failures))} under load")
    timings.sort()
    return len(timings) / (time.monotonic() - began), timings[int(len(timings) * 0.95)]


def ingestion(port: int, secret: str, batches: int, singles: int) -> tuple[float, float]:
    """Events/s through POST /api/v1/usage in batches of 1,000, and the median ms of a
    batch of 1 (each answered 200/207 with every event accepted)."""
    from bench.ingestion import events

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    def post(count: int) -> float:
        batch = [
            event | {"feature": "chatbot", "model": "gpt-4"}  # in the seed, as the catalog
            for event in events(count, datetime.now(UTC))
        ]
        body = json.dumps({"events": batch})
        started = time.perf_counter()
        connection.request("POST", "/api/v1/usage", body=body, headers=headers)
        response = connection.getresponse()
        answer = json.loads(response.read())
        elapsed = time.perf_counter() - started
        if response.status not in (200, 207) or answer["data"]["accepted"] != count:
            raise SystemExit(f"ingestion answered {response.status}: {str(answer)[:300]}")
        return elapsed

    post(1000)  # warm up
    batch_seconds = sum(post(1000) for _ in range(batches))
    single = statistics.median(post(1) * 1000 for _ in range(singles))
    return batches * 1000 / batch_seconds, single


def measure(url: str, ids: dict[str, str], args: argparse.Namespace) -> Figures:
    from bench.csv_export import copy_rate, download, peak_rss_mb

    figures = Figures(rows=ids["rows"])
    today = datetime.now(UTC).date()
    server = serve(url, args.port)
    try:
        cookie = sign_in(args.port)
        before = os.getloadavg()[0]
        for label, path, partial in page_list(ids, today):
            headers = {} if path == "/login" else {"Cookie": cookie}
            if partial:
                headers["HX-Request"] = "true"
            figures.pages[label] = p50(args.port, path, headers, args.repeat)
        for label, path in OVERVIEWS:
            rate, p95 = renders_per_second(args.port, path, cookie, args.clients, args.seconds)
            figures.rates[f"overview {label}, {args.clients} clients"] = (
                rate,
                f"renders/s, p95 {p95:,.0f} ms",
            )
        first = today - timedelta(days=29)
        csv_path = f"{API}/usage.csv?start_date={first}&end_date={today}"
        rows, seconds, status = download(args.port, cookie, csv_path)
        rss = peak_rss_mb(server.pid)
        # Before the ingestion below adds rows to the window.
        copied, copy_seconds = copy_rate(url, datetime.combine(first, datetime.min.time(), UTC))
        rate, single = ingestion(args.port, ids["secret"], args.batches, args.repeat * 2)
        after = os.getloadavg()[0]
    finally:
        stop(server)
    csv_note = f"rows/s ({rows:,} rows, status {status}, worker peak RSS {rss:.0f} MB)"
    figures.rates["usage CSV, 30 days"] = (rows / seconds, csv_note)
    figures.rates["COPY of the same rows"] = (copied / copy_seconds, f"rows/s ({copied:,} rows)")
    figures.rates["ingestion, batches of 1,000"] = (rate, "events/s")
    figures.rates["ingestion, batch of 1"] = (single, "ms median")
    figures.load = f"load average {before:.1f} before, {after:.1f} after"
    return figures


def report(runs: list[Figures], repeat: int) -> None:
    print(f"\np50 of {repeat} requests each through gunicorn ({os.cpu_count()} CPUs)")
    for run in runs:
        print(f"  {run.rows} usage rows: {run.load}")
    growth = len(runs) > 1
    header = "".join(f"{run.rows + ' rows':>26}" for run in runs)
    print(f"\n{'page':36}{header}{'  growth' if growth else ''}")
    for label in runs[0].pages:
        cells = ""
        for run in runs:
            median, status, size = run.pages[label]
            trivial = run.pages["/login (trivial page)"][0]
            flag = "" if status == 200 else f" [{status}]"
            cells += f"{f'{median:,.1f} ms {median / trivial:,.1f}×{flag}':>17}{size:>9,}"
        if growth:
            cells += f"{runs[-1].pages[label][0] / runs[0].pages[label][0]:>7.2f}×"
        print(f"{label:36}{cells}")
    print()
    for label in runs[0].rates:
        cells = "".join(f"{run.rates[label][0]:>26,.1f}" for run in runs)
        print(f"{label:36}{cells}  {runs[-1].rates[label][1]}")
    for run in runs:
        export, copy = run.rates["usage CSV, 30 days"][0], run.rates["COPY of the same rows"][0]
        print(f"  {run.rows} rows: export / COPY {export / copy:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", action="append", dest="urls")
    parser.add_argument("--rows", type=int, action="append")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--reuse", action="store_true", help="keep the loaded data")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--batches", type=int, default=10, help="ingestion batches of 1,000")
    parser.add_argument("--port", type=int, default=5701)
    args = parser.parse_args()
    urls = args.urls or [DEFAULT_URL]
    rows = args.rows or [1_000_000]
    if not args.reuse and len(rows) != len(urls):
        parser.error("give one --rows per --database-url")
    runs = []
    for index, url in enumerate(urls):
        ids = prepare(url, rows[min(index, len(rows) - 1)], args.reuse, args.days)
        runs.append(measure(url, ids, args))
    report(runs, args.repeat)


if __name__ == "__main__":
    main()
