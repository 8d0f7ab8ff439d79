"""The usage CSV export's rate beside PostgreSQL's own COPY of the same rows, in one run.

    python -m bench.csv_export [--database-url URL] [--days 365] [--timeout 30]

Needs a database loaded by ``python -m bench.scale`` (or bench/scale_data.py). Serves the
console with the README's production command (gthread workers, ``--timeout``), signs in,
downloads ``/api/.../usage.csv`` for the last ``--days`` days to the end, and prints rows,
rows/s and the serving worker's peak RSS; then ``COPY (SELECT …) TO STDOUT WITH CSV`` of
the same rows and columns. On a shared machine the ratio is the figure to compare.
"""

from __future__ import annotations

import argparse
import http.client
import os
import time
from datetime import UTC, datetime, timedelta

from bench.console import API, DEFAULT_URL, serve, sign_in, stop
from bench.scale import prepare


def peak_rss_mb(parent: int) -> float:
    """The largest peak resident set (VmHWM) among the server's worker processes."""
    peak = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(parent) and "VmHWM" in fields:
            peak = max(peak, int(fields["VmHWM"].split()[0]))
    return peak / 1024


def download(port: int, cookie: str, path: str) -> tuple[int, float, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    connection.request("GET", path, headers={"Cookie": cookie})
    response = connection.getresponse()
    lines = 0
    while chunk := response.read(1 << 16):
        lines += chunk.count(b"\n")
    return lines - 1, time.perf_counter() - started, response.status


def copy_rate(url: str, since: datetime) -> tuple[int, float]:
    import psycopg

    columns = (
        "u.id, u.created_at, u.feature_id, f.display_name, u.model_id, m.display_name, "
        "p.display_name, u.prompt_id, u.status, u.input_tokens, u.output_tokens, "
        "u.tokens_used, u.response_time_ms, u.cost_usd, u.error_message, u.user_id, "
        "u.organization_id, u.environment, u.cost_source, u.model_name, u.provider_name"
    )
    query = (
        f"SELECT {columns} FROM ai_usage_logs u LEFT JOIN ai_features f ON f.id = u.feature_id "
        "LEFT JOIN ai_models m ON m.id = u.model_id LEFT JOIN ai_providers p "
        f"ON p.id = m.provider_id WHERE u.created_at >= '{since.isoformat()}' "
        "ORDER BY u.created_at DESC, u.id DESC"
    )
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        connection.execute("SELECT set_config('app.user_role', 'platform_admin', false)")
        started = time.perf_counter()
        rows = 0
        with connection.cursor().copy(f"COPY ({query}) TO STDOUT WITH CSV") as copy:
            for data in copy:
                rows += bytes(data).count(b"\n")
        return rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--timeout", type=int, default=30)
    parser.add_argument("--port", type=int, default=5702)
    args = parser.parse_args()

    prepare(args.database_url, 0, reuse=True)
    today = datetime.now(UTC).date()
    first = today - timedelta(days=args.days - 1)
    path = f"{API}/usage.csv?start_date={first}&end_date={today}"
    server = serve(args.database_url, args.port, args.timeout)
    try:
        cookie = sign_in(args.port)
        load = os.getloadavg()[0]
        rows, seconds, status = download(args.port, cookie, path)
        rss = peak_rss_mb(server.pid)
    finally:
        stop(server)
    copied, copy_seconds = copy_rate(
        args.database_url, datetime.combine(first, datetime.min.time(), UTC)
    )
    print(f"\nusage CSV, last {args.days} days; load average {load:.1f} ({os.cpu_count()} CPUs)")
    print(f"{'':28} {'rows':>10} {'seconds':>8} {'rows/s':>9}")
    print(
        f"{'export (gunicorn, status ' + str(status) + ')':28} {rows:10,} {seconds:8.1f} "
        f"{rows / seconds:9,.0f}   worker peak RSS {rss:.0f} MB"
    )
    print(f"{'COPY … TO STDOUT':28} {copied:10,} {copy_seconds:8.1f} {copied / copy_seconds:9,.0f}")
    print(f"export / COPY: {rows / seconds / (copied / copy_seconds):.2f}")


if __name__ == "__main__":
    main()
