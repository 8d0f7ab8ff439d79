"""Benchmark of issue 17: the console's pages at scale, p50 beside /login in one run.

    python -m bench.scale [--rows 1000000] [--database-url URL] [--reuse] [--repeat 15]

Loads the realistic data set of bench/scale_data.py (40 features, 8 providers, 30 models,
3 per feature, 365 days with a daily cycle, 1 % pending, 2 % without a feature, ~400k
health checks) into a database of its own (emptied and rebuilt by the migrations; default
postgresql://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench), or reuses what an earlier
run loaded (``--reuse``). Then serves the console with gunicorn (2 sync workers, the
README's command) on ``--port``, signs in as an admin, and prints each page's p50 and its
ratio to ``/login`` (a page that reads nothing), with the load average before and after:
on a shared machine the ratio is the figure to compare, not the milliseconds.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
from datetime import UTC, datetime

DEFAULT_URL = "postgresql+psycopg://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench"
EMAIL, PASSWORD = "bench-admin@example.com", "bench password that is long enough"
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
API = "/api/platform/ai-management"


def prepare(url: str, rows: int, reuse: bool) -> dict[str, str]:
    """Load (unless ``reuse``) and return the ids and cursor the page list needs."""
    from sqlalchemy import select, text

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Feature, Provider, User
    from webapp.rls import OPERATOR, use_database_role
    from webapp.services.core.actor import Actor
    from webapp.services.identity.users import create_user
    from webapp.services.usage.logs import encode_cursor

    if not reuse:
        from bench.scale_data import load
        from bench.setup import fresh_app

        app = fresh_app(url)
        with app.app_context():
            print(f"Loading {rows:,} usage rows…", flush=True)
            seconds = load(rows, 365, datetime.now(UTC))
            print("  " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()), flush=True)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench" * 8})
    with app.app_context():
        use_database_role(OPERATOR)
        if db.session.scalar(select(User).where(User.email == EMAIL)) is None:
            create_user(Actor.cli(), EMAIL, PASSWORD, "platform_admin")
            db.session.commit()
        feature = db.session.scalars(select(Feature.id).order_by(Feature.name)).first()
        provider = db.session.scalars(select(Provider.id).order_by(Provider.name)).first()
        # A cursor 45 days deep, as the issue measured.
        deep = db.session.execute(
            text(
                "SELECT created_at, id FROM ai_usage_logs WHERE created_at < now() - "
                "interval '45 days' ORDER BY created_at DESC, id DESC LIMIT 1"
            )
        ).one()
        count = db.session.scalar(text("SELECT count(*) FROM ai_usage_logs"))
        db.session.commit()
    return {
        "feature": str(feature),
        "provider": str(provider),
        "cursor": encode_cursor(deep[0], deep[1]),
        "rows": f"{count:,}",
    }


def start_server(url: str, port: int) -> subprocess.Popen:
    env = dict(
        os.environ,
        DATABASE_URL=url,
        SECRET_KEY="bench" * 8,
        RATELIMIT_STORAGE_URI="memory://",
        LOGIN_FAILURES_PER_ACCOUNT="1000 per minute",
    )
    command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--timeout", "120"]
    server = subprocess.Popen(
        [*command, "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/login")
            connection.getresponse().read()
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not start")


def sign_in(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/login")
    response = connection.getresponse()
    page = response.read().decode()
    jar = _cookies(response, {})
    match = CSRF.search(page)
    if not match:
        raise SystemExit("no CSRF token on /login")
    body = urllib.parse.urlencode(
        {"email": EMAIL, "password": PASSWORD, "csrf_token": match.group(1)}
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": _header(jar)}
    connection.request("POST", "/login", body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.status != 302 or "/login" in (response.getheader("Location") or ""):
        raise SystemExit(f"sign-in answered {response.status}")
    return _header(_cookies(response, jar))


def _cookies(response: http.client.HTTPResponse, jar: dict[str, str]) -> dict[str, str]:
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, value = header.split(";")[0].partition("=")
        jar[name.strip()] = value
    return jar


def _header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def p50(port: int, path: str, cookie: str | None, repeat: int) -> tuple[float, int, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Cookie": cookie} if cookie else {}
    timings, status, size = [], 0, 0
    for attempt in range(repeat + 1):
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        size = len(response.read())
        status = response.status
        if attempt:  # the first request warms the worker
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), status, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--reuse", action="store_true", help="keep the loaded data")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--port", type=int, default=5701)
    args = parser.parse_args()

    ids = prepare(args.database_url, args.rows, args.reuse)
    pages = [
        ("/login (trivial page)", "/login", False),
        ("/features?range=30d", "/features?range=30d", True),
        ("/features/<id>", f"/features/{ids['feature']}", True),
        ("/?range=24h (overview)", "/?range=24h", True),
        ("/ (7 days)", "/", True),
        ("/?range=30d", "/?range=30d", True),
        ("/models", "/models", True),
        ("/providers/<id>", f"/providers/{ids['provider']}", True),
        ("/spending (30 days)", "/spending", True),
        ("usage API, first page", f"{API}/usage?limit=50", True),
        ("usage API, cursor 45 days deep", f"{API}/usage?limit=50&cursor={ids['cursor']}", True),
    ]
    server = start_server(args.database_url, args.port)
    try:
        cookie = sign_in(args.port)
        load_before = os.getloadavg()[0]
        results = [
            (name, *p50(args.port, path, cookie if auth else None, args.repeat))
            for name, path, auth in pages
        ]
        load_after = os.getloadavg()[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
    trivial = results[0][1]
    print(f"\n{ids['rows']} usage rows; p50 of {args.repeat} requests each through gunicorn")
    print(f"load average {load_before:.1f} before, {load_after:.1f} after ({os.cpu_count()} CPUs)")
    print(f"{'page':34} {'p50 ms':>9} {'× /login':>9} {'status':>6} {'bytes':>9}")
    for name, median, status, size in results:
        print(f"{name:34} {median:9.1f} {median / trivial:8.1f}× {status:>6} {size:>9,}")


if __name__ == "__main__":
    main()
