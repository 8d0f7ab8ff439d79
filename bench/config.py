"""Benchmark: applications reading their configuration over HTTP (gunicorn, 2 workers), side
by side with ``GET /api/v1/whoami`` (the trivial key-authenticated endpoint), on PostgreSQL.

    python -m bench.config [--database-url URL] [--seconds 8] [--clients 4] [--rounds 4]

The database is emptied and rebuilt by the migrations: give it one of its own (default
postgresql://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench). Seeds the default catalogue,
a live prompt and a running experiment for ``chatbot``, then runs in ``--rounds``
interleaved rounds each case with ``--clients`` keep-alive connections, ``--seconds`` per
case in all: whoami, GET
/api/v1/config/chatbot answered 200 (no If-None-Match), and answered 304 (the ETag of the
first answer). Prints requests/s, p50 and p95 per case and each one's cost relative to
whoami. Targets: a 304 at most 1.5× whoami, a 200 at most 3×.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import sys
import threading
import time

from bench.ingestion import DEFAULT_URL, free_port, start_server

CONFIG_PATH = "/api/v1/config/chatbot?subject=user-42"


def prepare(url: str) -> str:
    """Rebuild the database and return an API key's secret (both scopes, every feature)."""
    from bench.setup import add_key, fresh_app
    from webapp.extensions import db
    from webapp.models import Feature
    from webapp.rls import OPERATOR, use_database_role
    from webapp.services.core.actor import Actor
    from webapp.services.experiments import lifecycle
    from webapp.services.prompts import versions

    app = fresh_app(url)
    with app.app_context():
        use_database_role(OPERATOR)
        actor = Actor.cli()
        chatbot = db.session.query(Feature).filter_by(name="chatbot").one()
        first = versions.create_prompt(
            actor,
            {
                "name": "greeting",
                "feature_id": str(chatbot.id),
                "content": "Hello {{name}}",
                "is_active": True,
            },
        )
        second = versions.create_prompt(
            actor,
            {"name": "greeting", "feature_id": str(chatbot.id), "content": "Hi {{name}}!"},
        )
        experiment = lifecycle.create_experiment(
            actor,
            {
                "name": "Greeting v2",
                "feature_id": str(chatbot.id),
                "experiment_type": "prompt_testing",
                "variants": [
                    {"id": "control", "name": "Current", "prompt_id": str(first.id)},
                    {"id": "v2", "name": "Friendlier", "prompt_id": str(second.id)},
                ],
                "traffic_allocation": {"control": 50, "v2": 50},
                "config": {"primary_metric": "converted"},
            },
        )
        lifecycle.transition(actor, experiment.id, "start")
        secret = add_key()
    return secret


def get(connection: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> tuple:
    connection.request("GET", path, headers=headers)
    answer = connection.getresponse()
    answer.read()
    return answer.status, answer.getheader("ETag")


def run_case(
    port: int, path: str, headers: dict[str, str], expect: int, clients: int, seconds: float
) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p95 ms) of ``clients`` connections asking ``path`` for
    ``seconds``; every answer must have the status ``expect``."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[str] = []
    start_at = time.perf_counter() + 0.2
    stop_at = start_at + seconds

    def client(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        get(connection, path, headers)  # warm the connection (and the worker's cache)
        while time.perf_counter() < start_at:
            time.sleep(0.001)
        own = latencies[slot]
        while (began := time.perf_counter()) < stop_at:
            status, _ = get(connection, path, headers)
            own.append(time.perf_counter() - began)
            if status != expect:
                failures.append(f"{path} answered {status}, not {expect}")
                return

    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(failures[0])
    every = sorted(value for own in latencies for value in own)
    p95 = every[min(len(every) - 1, int(len(every) * 0.95))]
    return len(every) / seconds, statistics.median(every) * 1000, p95 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port (0: any free one)")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each case")
    parser.add_argument("--clients", type=int, default=4, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds of the cases")
    args = parser.parse_args()

    secret = prepare(args.database_url)
    auth = {"Authorization": f"Bearer {secret}"}
    port = args.port or free_port()
    server = start_server(args.database_url, port)
    try:
        status, etag = get(http.client.HTTPConnection("127.0.0.1", port), CONFIG_PATH, auth)
        if status != 200 or not etag:
            raise RuntimeError(f"GET {CONFIG_PATH} answered {status}")
        cases = [
            ("GET /api/v1/whoami (200)", "/api/v1/whoami", auth, 200),
            ("GET /api/v1/config/chatbot (200)", CONFIG_PATH, auth, 200),
            ("GET /api/v1/config/chatbot (304)", CONFIG_PATH, {**auth, "If-None-Match": etag}, 304),
        ]
        # Interleaved rounds, so that whatever else the machine does weighs on every case
        # alike; the figures are over all rounds.
        rounds = max(1, args.rounds)
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name, *_ in cases}
        for _ in range(rounds):
            for name, path, headers, expect in cases:
                samples[name].append(
                    run_case(port, path, headers, expect, args.clients, args.seconds / rounds)
                )
        results = [
            (
                name,
                (
                    statistics.fmean(rate for rate, _, _ in figures),
                    statistics.median(p50 for _, p50, _ in figures),
                    statistics.median(p95 for _, _, p95 in figures),
                ),
            )
            for name, figures in samples.items()
        ]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    base_rate = results[0][1][0]
    print(
        f"{args.clients} clients, {args.seconds:.0f} s per case in {args.rounds} rounds, "
        "2 gunicorn workers (gthread, 4 threads)"
    )
    print(f"{'case':<36}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'cost vs whoami':>16}")
    for name, (rate, p50, p95) in results:
        # Cost: time per request relative to whoami (its throughput over this one's).
        print(f"{name:<36}{rate:>9.0f}{p50:>9.2f}{p95:>9.2f}{base_rate / rate:>15.2f}x")
    print("targets: 304 ≤ 1.5x, 200 ≤ 3x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
