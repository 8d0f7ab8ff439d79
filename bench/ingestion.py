"""Benchmark: usage ingestion over HTTP (gunicorn, 2 workers) side by side with
``ingest_events`` and ``record_usage`` called directly, on PostgreSQL.

    python -m bench.ingestion [--database-url URL] [--events 20000] [--seconds 10]

The database is emptied and rebuilt by the migrations: give it one of its own (default
postgresql://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench). Prints, per case, events/s
through ``POST /api/v1/usage``, through ``ingest_events`` and through ``record_usage``
(the write path without the API) in this process, and their ratios; the median answer
time of a batch of 1; 8 concurrent writers sending one event per request (directly: 8 threads
through the same group commit as the endpoint), beside 8 clients of ``GET
/api/v1/whoami``, the trivial key-authenticated endpoint (the ceiling of any endpoint
on the machine); and OTLP
spans/s (protobuf, 512 spans per export, as the SDK's batch processor sends).
Targets: ≥ 10,000 events/s with 1,000-event batches and HTTP at most 2× the direct call;
a batch of 1 answered in < 20 ms median; ≥ 1,000 events/s from 8 concurrent writers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEFAULT_URL = "postgresql+psycopg://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench"
ROOT = Path(__file__).resolve().parent.parent
FEATURES = ("chatbot", "photo_tagging", "ai_search")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def events(count: int, now: datetime) -> list[dict]:
    """``count`` fresh events (new ids) spread over the last hour."""
    return [
        {
            "id": uuid.uuid4().hex,
            "timestamp": (now - timedelta(seconds=index % 3600)).isoformat(),
            "feature": FEATURES[index % len(FEATURES)],
            "model": ("gpt-4", "gpt-3.5-turbo", "claude-3-sonnet")[index % 3],
            "input_tokens": 500 + index % 700,
            "output_tokens": 100 + index % 300,
            "latency_ms": 200 + index % 2000,
            "user_id": f"user-{index % 500}",
        }
        for index in range(count)
    ]


def catalog_ids() -> list[tuple[object, object]]:
    """(feature id, model id) pairs of the seed, for record_usage's events."""
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import AIModel, Feature

    features = list(db.session.scalars(select(Feature.id)))
    models = list(db.session.scalars(select(AIModel.id)))
    return [(f, m) for f in features for m in models]


def recorded_events(count: int, catalog: list[tuple[object, object]], now: datetime) -> list:
    """``count`` events for record_usage, the same sizes as ``events``."""
    return [
        {
            "feature_id": str(catalog[index % len(catalog)][0]),
            "model_id": str(catalog[index % len(catalog)][1]),
            "input_tokens": 500 + index % 700,
            "output_tokens": 100 + index % 300,
            "response_time_ms": 200 + index % 2000,
            "created_at": (now - timedelta(seconds=index % 3600)).isoformat(),
        }
        for index in range(count)
    ]


class Client:
    """One keep-alive HTTP connection to the console."""

    def __init__(self, port: int, secret: str) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    def post(
        self, path: str, body: bytes | None, content_type: str | None = None, method: str = "POST"
    ) -> int:
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        try:
            self.connection.request(method, path, body=body, headers=headers)
            answer = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # gunicorn closes a keep-alive connection left idle for a few seconds.
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.connection.request(method, path, body=body, headers=headers)
            answer = self.connection.getresponse()
        answer.read()
        if answer.status >= 300 and answer.status != 207:
            raise RuntimeError(f"{path} answered {answer.status}")
        return answer.status


def timed(function: Callable[[], None]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def start_server(url: str, port: int) -> subprocess.Popen:
    env = dict(
        os.environ,
        DATABASE_URL=url,
        SECRET_KEY="bench" * 8,
        API_KEY_RATE_LIMIT="100000000 per minute",
    )
    env.pop("AIPM_ENV", None)
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "--workers",
            "2",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    for _ in range(100):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/v1/openapi.json")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def otlp_body(spans: int, now: datetime) -> bytes:
    """An OTLP/HTTP protobuf export of ``spans`` GenAI chat spans, made by the SDK."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    finished = []

    class Keep(SpanExporter):
        def export(self, batch):  # type: ignore[no-untyped-def]
            finished.extend(batch)
            return SpanExportResult.SUCCESS

    provider = TracerProvider(resource=Resource.create({"service.name": "chatbot"}))
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    tracer = provider.get_tracer("bench")
    start = int((now - timedelta(minutes=5)).timestamp() * 1e9)
    for index in range(spans):
        span = tracer.start_span(
            "chat gpt-4",
            start_time=start + index,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4",
                "gen_ai.provider.name": "openai",
                "gen_ai.usage.input_tokens": 400 + index % 100,
                "gen_ai.usage.output_tokens": 50 + index % 50,
            },
        )
        span.end(end_time=start + index + 300_000_000)
    return encode_spans(finished).SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port (0: any free one)")
    parser.add_argument("--events", type=int, default=20_000, help="events per batched case")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of timed runs")
    args = parser.parse_args()

    from bench.setup import add_key, fresh_app
    from webapp.extensions import db
    from webapp.rls import APPLICATION, OPERATOR, use_database_role
    from webapp.services.apps.authentication import authenticate_secret
    from webapp.services.apps.ingestion import ingest_events
    from webapp.services.apps.ingestion_groups import IngestionGroups
    from webapp.services.usage.recording import record_usage

    app = fresh_app(args.database_url)
    with app.app_context():
        use_database_role(OPERATOR)
        now = datetime.now(UTC)
        catalog = catalog_ids()
        secret = add_key()
        use_database_role(APPLICATION)
        key = authenticate_secret(secret)
        db.session.commit()

    port = args.port or free_port()
    server = start_server(args.database_url, port)
    # (case, over HTTP, ingest_events directly, record_usage directly)
    rows: list[tuple[str, float, float | None, float | None]] = []
    try:
        client = Client(port, secret)

        def direct(batch: list[dict]) -> None:
            with app.app_context():
                use_database_role(APPLICATION)
                ingest_events(key, batch)

        def recorded(size: int, batches: int) -> float:
            """Events/s of record_usage (the write path without the API) at this size."""
            prepared = [recorded_events(size, catalog, now) for _ in range(batches)]
            with app.app_context():
                use_database_role(OPERATOR)
                seconds = timed(lambda: [record_usage(batch) for batch in prepared])
            return size * batches / seconds

        for size in (1, 100, 1000):
            total = min(args.events, 2000) if size == 1 else args.events
            batches = [events(size, now) for _ in range(total // size)]
            latencies = []

            def over_http(batches=batches, latencies=latencies) -> None:
                for batch in batches:
                    body = json.dumps({"events": batch}).encode()
                    latencies.append(timed(lambda body=body: client.post("/api/v1/usage", body)))

            http_seconds = timed(over_http)
            direct_batches = [events(size, now) for _ in range(total // size)]
            direct_seconds = timed(
                lambda direct_batches=direct_batches: [direct(b) for b in direct_batches]
            )
            rows.append(
                (
                    f"batch of {size:>4}: events/s",
                    total / http_seconds,
                    total / direct_seconds,
                    recorded(size, total // size),
                )
            )
            if size == 1:
                median_ms = statistics.median(latencies) * 1000
                rows.append(("batch of 1: median answer ms", median_ms, None, None))

        writers = 8

        def concurrently(send: Callable[[Client], None], over_http: bool = True) -> float:
            """Requests/s of ``writers`` threads calling ``send`` for ``args.seconds``."""
            counts = [0] * writers
            stop = time.perf_counter() + args.seconds

            def run(slot: int) -> None:
                own = Client(port, secret)
                while time.perf_counter() < stop:
                    send(own)
                    counts[slot] += 1

            threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sum(counts) / (time.perf_counter() - started)

        def post_one(own: Client) -> None:
            own.post("/api/v1/usage", json.dumps({"events": events(1, now)}).encode())

        http_rate = concurrently(post_one)
        # The ceiling of any endpoint on this machine: the trivial key-authenticated one.
        whoami_rate = concurrently(lambda own: own.post("/api/v1/whoami", None, method="GET"))

        groups = IngestionGroups()

        def grouped(own: Client) -> None:
            with app.app_context():
                use_database_role(APPLICATION)
                groups.ingest(key, events(1, now))

        direct_rate = concurrently(grouped)
        rows.append((f"{writers} writers, 1 event/request: events/s", http_rate, direct_rate, None))
        rows.append((f"{writers} writers, GET /api/v1/whoami: requests/s", whoami_rate, None, None))

        exports = max(1, args.events // 512)
        bodies = [otlp_body(512, now) for _ in range(exports)]
        otlp_seconds = timed(
            lambda: [
                client.post("/api/v1/otel/v1/traces", body, "application/x-protobuf")
                for body in bodies
            ]
        )
        rows.append(
            (
                "OTLP protobuf, 512 spans/export: spans/s",
                exports * 512 / otlp_seconds,
                None,
                recorded(512, exports),
            )
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    def cell(value: float | None, width: int = 14) -> str:
        return f"{value:>{width}.0f}" if value else " " * width

    def ratio(direct_figure: float | None, over_http: float) -> str:
        return f"{direct_figure / over_http:>11.2f}x" if direct_figure else " " * 12

    print(
        f"{'case':<44}{'HTTP':>10}{'ingest_events':>14}{'record_usage':>14}"
        f"{'ingest/HTTP':>12}{'record/HTTP':>12}"
    )
    for name, over_http, ingested, recorded_figure in rows:
        print(
            f"{name:<44}{over_http:>10.1f}{cell(ingested)}{cell(recorded_figure)}"
            f"{ratio(ingested, over_http)}{ratio(recorded_figure, over_http)}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
