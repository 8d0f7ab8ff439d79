"""Benchmark: what the Python client (clients/python) costs the application, against a live
console (gunicorn, 2 workers, PostgreSQL), side by side in one run.

    python -m bench.client [--database-url URL] [--port 5101] [--calls 400] [--events 5000]

The database is emptied and rebuilt (as ``bench.config`` does: a live prompt and a running
experiment for ``chatbot``). Cases, each timed per call in this process:

- ``http.client`` GET /api/v1/whoami on a new connection: the floor of any request.
- ``config()`` answered from the cache (within max-age): no request.
- ``config()`` past max-age, revalidated: a ``304`` (an injected clock ages the entry).
- ``config()`` with an empty cache: a ``200``.
- ``variant()`` for a new subject each call (cached config, local SHA-256).
- ``record()``: queueing one event (the sending happens in the background).
Then ``--events`` events recorded and flushed: delivered events per second, and the rows
counted in the database (none lost, none twice).
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import time
from collections.abc import Callable

from bench.config import prepare
from bench.ingestion import DEFAULT_URL, start_server


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def timed(calls: int, action: Callable[[int], object]) -> list[float]:
    action(-1)  # warm
    figures = []
    for index in range(calls):
        began = time.perf_counter()
        action(index)
        figures.append(time.perf_counter() - began)
    return figures


def wait_ready(port: int, secret: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request(
                "GET", "/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"}
            )
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the console did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--port", type=int, default=5101)
    parser.add_argument("--calls", type=int, default=400, help="calls per case")
    parser.add_argument("--events", type=int, default=5000, help="events recorded and flushed")
    args = parser.parse_args()

    from aipm_client import Client

    secret = prepare(args.database_url)
    server = start_server(args.database_url, args.port)
    try:
        wait_ready(args.port, secret)
        url = f"http://127.0.0.1:{args.port}"
        clock = Clock()
        client = Client(url, secret, clock=clock, timeout=5)
        experiment_id = client.config("chatbot").experiments[0]["id"]

        def whoami(_: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=5)
            connection.request(
                "GET", "/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"}
            )
            assert connection.getresponse().read() is not None
            connection.close()

        def revalidated(_: int) -> None:
            clock.now += 31
            assert client.config("chatbot").source == "console"

        def fetched(_: int) -> None:
            client._cache.clear()  # an empty cache (private: this is a benchmark)
            assert client.config("chatbot").source == "console"

        cases = [
            ("GET /api/v1/whoami, new connection", whoami),
            ("config() from the cache", lambda _: client.config("chatbot")),
            ("config() revalidated (304)", revalidated),
            ("config() empty cache (200)", fetched),
            ("variant() new subject", lambda n: client.variant("chatbot", experiment_id, f"u{n}")),
            (
                "record() one event queued",
                lambda _: client.record("chatbot", "gpt-4", input_tokens=10),
            ),
        ]
        results = [(name, timed(args.calls, action)) for name, action in cases]
        assert client.flush(60)

        sender = Client(url, secret, batch_size=500, flush_interval=0.5)
        began = time.perf_counter()
        for _ in range(args.events):
            sender.record("chatbot", "gpt-4", input_tokens=10, output_tokens=5)
        queued = time.perf_counter() - began
        assert sender.flush(300), "not every event was delivered"
        delivered = time.perf_counter() - began
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    from sqlalchemy import create_engine, text

    from webapp.rls import OPERATOR

    engine = create_engine(args.database_url)
    with engine.connect() as connection:
        # Row-level security shows the rows to the operator role (webapp.rls).
        connection.execute(
            text("SELECT set_config('app.user_role', :role, false)"), {"role": OPERATOR}
        )
        rows = connection.execute(text("SELECT count(*) FROM ai_usage_logs")).scalar_one()
    expected = args.calls + 1 + args.events

    base = statistics.median(results[0][1])
    print(f"{args.calls} calls per case; console: 2 gunicorn workers, PostgreSQL")
    print(f"{'case':<38}{'p50 ms':>9}{'p95 ms':>9}{'p50 vs whoami':>15}")
    for name, figures in results:
        ordered = sorted(figures)
        p50 = statistics.median(ordered)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        print(f"{name:<38}{p50 * 1000:>9.3f}{p95 * 1000:>9.3f}{p50 / base:>14.3f}x")
    print(
        f"{args.events} events: queued in {queued * 1000:.0f} ms, delivered in "
        f"{delivered:.2f} s ({args.events / delivered:.0f} events/s, batches of 500); "
        f"rows stored {rows} of {expected} recorded"
    )


if __name__ == "__main__":
    main()
