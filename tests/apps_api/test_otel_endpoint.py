"""POST /api/v1/otel/v1/traces with the real OpenTelemetry SDK and its OTLP/HTTP exporter
sending to a live server: spans become usage rows once, retries are duplicates, unusable
spans are counted in partial_success, wrong requests get OTLP's own answers."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExportResult
from sqlalchemy import func, select
from werkzeug.serving import make_server

from tests import factories
from tests.otel_helpers import SpanSpec, chat_span, json_body, protobuf_body, send_again, send_spans
from webapp.models import ApiKeyIngestion, UsageDailyRollup, UsageLog

PATH = "/api/v1/otel/v1/traces"
PROTOBUF = "application/x-protobuf"


def now_ns() -> int:
    return time.time_ns() - 60 * 1_000_000_000  # a minute ago


def started_at(spec: SpanSpec, start_ns: int) -> SpanSpec:
    """``spec`` and its children moved to start at ``start_ns`` (within the accepted window)."""
    children = tuple(started_at(child, start_ns + 1_000) for child in spec.children)
    return replace(spec, start_ns=start_ns, children=children)


def spans(*specs: SpanSpec) -> list[SpanSpec]:
    start = now_ns()
    return [started_at(spec, start + index * 1_000_000) for index, spec in enumerate(specs)]


@pytest.fixture
def world(db):
    chatbot = factories.feature("chatbot")
    factories.feature("ai_search")
    factories.model(factories.provider("openai"), "gpt-4o")
    key, secret = factories.api_key(environment="staging", features=(chatbot,))
    db.session.commit()
    return {"key": key, "secret": secret, "headers": {"Authorization": f"Bearer {secret}"}}


@pytest.fixture
def live_url(app, world) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{PATH}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def usage_rows(db):
    db.session.expire_all()
    return db.session.scalars(select(UsageLog).order_by(UsageLog.created_at)).all()


def test_the_sdk_exporter_records_inference_spans_once_and_a_retry_is_a_duplicate(
    db, world, live_url
):
    agent = SpanSpec(
        "invoke_agent planner",
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 999},
        children=(chat_span(), chat_span("gpt-4o", **{"gen_ai.usage.input_tokens": 50})),
    )
    sent = send_spans(live_url, world["headers"], spans(agent), {"service.name": "chatbot"})
    assert set(sent.results) == {SpanExportResult.SUCCESS}
    rows = usage_rows(db)
    assert len(rows) == 2  # the two chat spans; the agent span's sums are not counted
    assert {row.input_tokens for row in rows} == {120, 50}
    assert {row.environment for row in rows} == {"staging"}
    assert all(row.model_id is not None and row.cost_source == "catalog" for row in rows)
    assert all(row.api_key_id == world["key"].id for row in rows)
    assert all(len(row.event_id) == 49 for row in rows)  # trace id:span id

    assert send_again(live_url, world["headers"], sent.spans) == SpanExportResult.SUCCESS
    assert len(usage_rows(db)) == 2
    requests = db.session.scalar(select(func.sum(UsageDailyRollup.request_count)))
    assert requests == 2
    counted = db.session.execute(
        select(func.sum(ApiKeyIngestion.accepted), func.sum(ApiKeyIngestion.duplicates))
    ).one()
    assert tuple(counted) == (2, 2)


def test_json_encoding_uncompressed_also_works(db, world, live_url):
    sent = send_spans(
        live_url,
        world["headers"],
        spans(chat_span()),
        {"aipm.feature": "chatbot"},
        compression=Compression.NoCompression,
    )
    assert set(sent.results) == {SpanExportResult.SUCCESS}
    assert len(usage_rows(db)) == 1


def test_unusable_spans_are_counted_in_partial_success_with_reasons(db, world, client):
    body = protobuf_body(
        spans(
            chat_span(),  # fine: service.name names the feature
            chat_span(**{"aipm.feature": "ai_search"}),  # the key may not report for it
            chat_span(**{"aipm.feature": "no_such_feature"}),
            SpanSpec("GET /health", {"http.method": "GET"}),  # ignored silently
        ),
        {"service.name": "chatbot"},
    )
    answer = client.post(
        PATH,
        data=body,
        headers={**world["headers"], "Content-Type": "application/x-protobuf"},
    )
    assert answer.status_code == 200
    assert answer.mimetype == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(answer.data)
    assert response.partial_success.rejected_spans == 2
    assert "feature_not_allowed" in response.partial_success.error_message
    assert "unknown_feature" in response.partial_success.error_message
    assert len(usage_rows(db)) == 1


def test_a_json_request_gets_a_json_answer(db, world, client):
    body = json_body(spans(chat_span(**{"aipm.feature": "ai_search"})), {})
    answer = client.post(
        PATH,
        data=gzip.compress(body),
        headers={
            **world["headers"],
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    assert json.loads(answer.data)["partialSuccess"]["rejectedSpans"] == "1"


@pytest.mark.parametrize(
    ("headers", "data", "status"),
    [
        ({"Content-Type": "application/x-protobuf"}, b"\xff\xfe not protobuf", 400),
        ({"Content-Type": "application/json"}, b"{not json", 400),
        ({"Content-Type": "text/plain"}, b"hello", 415),
        (
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "br"},
            b"\x00",
            415,
        ),
        (
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
            b"not gzip",
            400,
        ),
    ],
)
def test_wrong_requests_change_nothing(db, world, client, headers, data, status):
    answer = client.post(PATH, data=data, headers={**world["headers"], **headers})
    assert answer.status_code == status
    assert usage_rows(db) == []


def test_a_gzip_bomb_past_20_mib_is_413(db, world, client):
    bomb = gzip.compress(b"\x00" * (21 * 1024 * 1024))
    answer = client.post(
        PATH,
        data=bomb,
        headers={
            **world["headers"],
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
        },
    )
    assert answer.status_code == 413


def test_a_key_without_usage_write_is_refused(db, world, client):
    _, secret = factories.api_key(scopes=("config:read",))
    db.session.commit()
    answer = client.post(
        PATH,
        data=protobuf_body(spans(chat_span()), {"service.name": "chatbot"}),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/x-protobuf"},
    )
    assert answer.status_code == 403
    assert usage_rows(db) == []


def test_key_refusals_answer_in_otlp_status_encoding(db, world, client):
    from google.rpc.status_pb2 import Status

    body = protobuf_body(spans(chat_span()), {"service.name": "chatbot"})
    answer = client.post(
        PATH,
        data=body,
        headers={"Authorization": "Bearer aipm_prd_" + "x" * 40, "Content-Type": PROTOBUF},
    )
    assert answer.status_code == 401
    assert answer.mimetype == PROTOBUF
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    status = Status.FromString(answer.data)
    assert status.code == 16  # UNAUTHENTICATED
    assert "API key" in status.message


def test_spans_refused_while_mapping_count_on_the_keys_figures(db, world, client):
    no_model = SpanSpec("chat", {"gen_ai.operation.name": "chat"})  # no model at all
    body = protobuf_body(spans(no_model, chat_span()), {"service.name": "chatbot"})
    answer = client.post(PATH, data=body, headers={**world["headers"], "Content-Type": PROTOBUF})
    assert ExportTraceServiceResponse.FromString(answer.data).partial_success.rejected_spans == 1
    db.session.expire_all()
    counted = db.session.execute(
        select(func.sum(ApiKeyIngestion.accepted), func.sum(ApiKeyIngestion.rejected_invalid))
    ).one()
    assert tuple(counted) == (1, 1)


def test_an_export_whose_spans_all_fail_to_map_is_still_counted(db, world, client):
    no_model = SpanSpec("chat", {"gen_ai.operation.name": "chat"})
    body = protobuf_body(spans(no_model), {"service.name": "chatbot"})
    answer = client.post(PATH, data=body, headers={**world["headers"], "Content-Type": PROTOBUF})
    assert answer.status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(func.sum(ApiKeyIngestion.rejected_invalid))) == 1
    assert usage_rows(db) == []
