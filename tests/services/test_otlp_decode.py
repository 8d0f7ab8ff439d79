"""Reading OTLP/HTTP trace exports and writing the answer (no database).

The bodies come from the real OpenTelemetry SDK, encoded as its OTLP/HTTP exporter does.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading

import pytest
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExportResult
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.otel_helpers import (
    SpanSpec,
    chat_span,
    export_request,
    hex_ids,
    json_body_of,
    send_again,
    send_spans,
)
from webapp.services.apps.otlp import (
    JSON,
    MAX_OTLP_BODY,
    PROTOBUF,
    BodyTooLarge,
    OtlpDecodeError,
    UndecodableBody,
    UnsupportedMediaType,
    decode_export_request,
    encode_error_status,
    encode_export_response,
    media_type,
    read_body,
    spans_to_events,
    summarize_rejections,
)

RESOURCE = {"service.name": "chatbot"}


@pytest.fixture(scope="module")
def sdk_request() -> ExportTraceServiceRequest:
    """An agent span with two chat calls inside it, a link, an error: what the SDK sends."""
    specs = [
        SpanSpec(
            "invoke_agent helper",
            {"gen_ai.operation.name": "invoke_agent"},
            children=[chat_span(), chat_span("gpt-4o-mini", **{"gen_ai.usage.input_tokens": 7})],
        ),
        SpanSpec("chat claude", {"gen_ai.operation.name": "chat"}, error="overloaded"),
    ]
    request = export_request(specs, RESOURCE)
    # A link, so that its ids are converted too.
    span = request.resource_spans[0].scope_spans[0].spans[0]
    link = span.links.add()
    link.trace_id = b"\x01" * 16
    link.span_id = b"\x02" * 8
    return request


def _spans(request: ExportTraceServiceRequest) -> list:
    return [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


def test_protobuf_from_the_sdk_decodes_to_the_same_message(sdk_request):
    body = sdk_request.SerializeToString()
    decoded = decode_export_request(body, "application/x-protobuf")
    assert decoded == sdk_request
    assert len(_spans(decoded)) == 4


@pytest.mark.parametrize(
    "content_type",
    ["application/x-protobuf", "application/x-protobuf; charset=binary", "Application/Protobuf"],
)
def test_protobuf_content_types(sdk_request, content_type):
    assert decode_export_request(sdk_request.SerializeToString(), content_type) == sdk_request


def test_otlp_json_with_hex_ids_decodes_to_the_same_message(sdk_request):
    body = json_body_of(sdk_request, ids="hex")
    span = json.loads(body)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16  # hex, as OTLP wants
    assert len(span["links"][0]["traceId"]) == 32
    assert isinstance(span["startTimeUnixNano"], str)  # 64-bit integers as strings
    assert decode_export_request(body, "application/json") == sdk_request


def test_otlp_json_with_base64_ids_decodes_too(sdk_request):
    body = json_body_of(sdk_request, ids="base64")
    span = json.loads(body)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert base64.b64decode(span["traceId"]) == _spans(sdk_request)[0].trace_id
    assert decode_export_request(body, "application/json; charset=utf-8") == sdk_request


def test_json_with_snake_case_names_integer_enums_and_upper_case_hex(sdk_request):
    document = json_format.MessageToDict(
        sdk_request, preserving_proto_field_name=True, use_integers_for_enums=True
    )
    for resource_spans in document["resource_spans"]:
        for scope_spans in resource_spans["scope_spans"]:
            for span in scope_spans["spans"]:
                hex_ids(span)
                span["trace_id"] = span["trace_id"].upper()
                for link in span.get("links", []):
                    hex_ids(link)
    first = document["resource_spans"][0]["scope_spans"][0]["spans"][0]
    assert first["kind"] == 1  # SPAN_KIND_INTERNAL, as an integer
    body = json.dumps(document).encode()
    assert decode_export_request(body, JSON) == sdk_request


def test_json_64_bit_integers_may_be_numbers_and_unknown_fields_are_ignored():
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    body = json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [], "someFutureField": True},
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": trace_id,
                                    "spanId": span_id,
                                    "parentSpanId": "",
                                    "name": "chat gpt-4o",
                                    "kind": 3,
                                    "startTimeUnixNano": 1796205600000000000,
                                    "endTimeUnixNano": "1796205600250000000",
                                    "attributes": [
                                        {"key": "n", "value": {"intValue": 12}},
                                        {"key": "s", "value": {"intValue": "13"}},
                                    ],
                                    "status": {"code": 2, "message": "boom"},
                                    "aNewerField": {"x": 1},
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    ).encode()
    request = decode_export_request(body, JSON)
    (span,) = _spans(request)
    assert span.trace_id.hex() == trace_id and span.span_id.hex() == span_id
    assert span.parent_span_id == b""
    assert span.start_time_unix_nano == 1796205600000000000
    assert [a.value.int_value for a in span.attributes] == [12, 13]
    assert span.status.code == 2 and span.status.message == "boom"


def test_json_and_protobuf_give_the_same_events(sdk_request):
    from_protobuf = spans_to_events(
        decode_export_request(sdk_request.SerializeToString(), PROTOBUF), ["chatbot"]
    )
    from_json = spans_to_events(decode_export_request(json_body_of(sdk_request), JSON), ["chatbot"])
    assert from_json == from_protobuf
    assert len(from_json.events) == 2 and from_json.ignored == 1
    assert len(from_json.rejected) == 1  # the chat span without a model


def test_a_gzipped_export_reads_and_decodes(sdk_request):
    raw = gzip.compress(sdk_request.SerializeToString())
    body = read_body(raw, "gzip", MAX_OTLP_BODY)
    assert decode_export_request(body, PROTOBUF) == sdk_request


def test_the_limit_is_20_mib_after_decompression():
    with pytest.raises(BodyTooLarge, match="20 MiB"):
        read_body(gzip.compress(b"\n" * (MAX_OTLP_BODY + 1)), "gzip", MAX_OTLP_BODY)


def test_an_empty_protobuf_export_is_a_request_without_spans():
    assert decode_export_request(b"", PROTOBUF) == ExportTraceServiceRequest()
    assert decode_export_request(b"{}", JSON) == ExportTraceServiceRequest()


@pytest.mark.parametrize(
    "body",
    [
        b"garbage!garbage!",
        b"\xff\xff\xff",
        b'{"resourceSpans": []}',  # JSON sent as protobuf
        b"\x98\x06\x01",  # field 99: parses, but as nothing a traces request has
    ],
)
def test_garbage_protobuf_is_a_decode_error(body):
    with pytest.raises(OtlpDecodeError, match="not an OTLP traces export request") as raised:
        decode_export_request(body, PROTOBUF)
    assert isinstance(raised.value, UndecodableBody) and raised.value.status_code == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'"resourceSpans"', "not a JSON object"),
        (b'{"resourceSpans": "many"}', "not an OTLP traces export request"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}', "not an OTLP"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_garbage_json_is_a_decode_error(body, message):
    with pytest.raises(OtlpDecodeError, match=message):
        decode_export_request(body, JSON)


def test_a_json_span_with_a_broken_id_is_rejected_alone():
    # json_format reads base64 leniently: a broken id decodes to the wrong length, and the
    # span, not the whole export, is refused.
    good = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"}
    spans = [
        {**good, "traceId": "%%%"},
        {**good, "spanId": "abc"},
        {**good, "spanId": "eee19b7ec3c1b175"},
    ]
    for span in spans:
        span.update(
            name="chat",
            startTimeUnixNano="1796205600000000000",
            attributes=[
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                {"key": "aipm.feature", "value": {"stringValue": "chatbot"}},
            ],
        )
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
    decoded = spans_to_events(decode_export_request(body, JSON), [])
    assert [event["id"] for event in decoded.events] == [
        "5b8efff798038103d269b633813fc60c:eee19b7ec3c1b175"
    ]
    assert [rejection.reason for rejection in decoded.rejected] == [
        "span 'chat' has no valid trace id (16 bytes, not all zero)",
        "span 'chat' has no valid span id (8 bytes, not all zero)",
    ]


@pytest.mark.parametrize("content_type", ["text/plain", "application/grpc", "", "json"])
def test_other_content_types_are_unsupported(content_type):
    with pytest.raises(UnsupportedMediaType, match="send application/x-protobuf or") as raised:
        decode_export_request(b"", content_type)
    assert raised.value.status_code == 415


def test_media_type_names_the_encoding_to_answer_in():
    assert media_type("application/json; charset=utf-8") == JSON
    assert media_type("application/x-protobuf") == PROTOBUF


def test_the_answer_without_rejections_is_an_empty_response():
    assert encode_export_response(0, "", PROTOBUF) == b""
    assert json.loads(encode_export_response(0, "ignored", JSON)) == {}


def test_the_protobuf_answer_counts_rejected_spans():
    body = encode_export_response(2, "2 spans rejected: …", "application/x-protobuf")
    response = ExportTraceServiceResponse()
    response.ParseFromString(body)
    assert response.partial_success.rejected_spans == 2
    assert response.partial_success.error_message == "2 spans rejected: …"


def test_the_json_answer_is_otlp_json():
    body = encode_export_response(3, "no model", "application/json; charset=utf-8")
    partial = {"rejectedSpans": "3", "errorMessage": "no model"}  # int64 as a string
    assert json.loads(body) == {"partialSuccess": partial}
    response = json_format.Parse(body, ExportTraceServiceResponse())
    assert response.partial_success.rejected_spans == 3


@pytest.mark.parametrize("content_type", [PROTOBUF, None, "text/plain"])
def test_an_error_status_is_a_google_rpc_status(content_type):
    status = Status()
    status.ParseFromString(encode_error_status(3, "the body is not valid gzip", content_type))
    assert status.code == 3 and status.message == "the body is not valid gzip"
    long = Status()
    long.ParseFromString(encode_error_status(8, "é" * 300, content_type))
    assert long.code == 8 and long.message == "é" * 300


def test_an_error_status_in_json():
    body = encode_error_status(3, "bad", "application/json")
    assert json.loads(body) == {"code": 3, "message": "bad"}


# --- the real exporter against a live (bare WSGI) server -------------------------------------


@pytest.fixture
def otlp_server():
    """A werkzeug server in a thread that chains the pure functions the way the endpoint
    will (no Flask, no database): what the real exporter sends, and how it takes the answer."""
    received: list[dict] = []

    @Request.application
    def application(request: Request) -> Response:
        content_type = request.content_type or ""
        try:
            body = read_body(request.get_data(), request.content_encoding, MAX_OTLP_BODY)
            export = decode_export_request(body, content_type)
        except UndecodableBody as error:
            return Response(encode_error_status(3, error.message, content_type), status=400)
        decoded = spans_to_events(export, ["chatbot"])
        received.append(
            {"encoding": request.content_encoding, "type": content_type, "decoded": decoded}
        )
        answer = encode_export_response(
            len(decoded.rejected),
            summarize_rejections([r.reason for r in decoded.rejected]),
            content_type,
        )
        return Response(answer, content_type=media_type(content_type))

    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/v1/otel/v1/traces", received
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_the_sdk_exporter_sends_gzip_protobuf_that_maps_and_a_retry_has_the_same_ids(
    otlp_server,
):
    url, received = otlp_server
    agent = SpanSpec(
        "invoke_agent helper",
        {"gen_ai.operation.name": "invoke_agent"},
        children=[chat_span(), chat_span(**{"gen_ai.usage.input_tokens": -1})],
    )
    sent = send_spans(url, {"Authorization": "Bearer aipm_dev_x"}, [agent], RESOURCE, batch=True)
    assert sent.results == [SpanExportResult.SUCCESS]
    (first,) = received
    assert first["encoding"] == "gzip" and first["type"] == "application/x-protobuf"
    decoded = first["decoded"]
    assert len(decoded.events) == 1 and len(decoded.rejected) == 1 and decoded.ignored == 1

    assert send_again(url, {}, sent.spans) == SpanExportResult.SUCCESS
    retried = received[1]["decoded"]
    assert [e["id"] for e in retried.events] == [e["id"] for e in decoded.events]


def test_the_simple_processor_exports_span_by_span_uncompressed(otlp_server):
    url, received = otlp_server
    sent = send_spans(
        url, {}, [chat_span(), chat_span()], RESOURCE, compression=Compression.NoCompression
    )
    assert sent.results == [SpanExportResult.SUCCESS] * 2
    assert [r["encoding"] for r in received] == [None, None]
    assert sum(len(r["decoded"].events) for r in received) == 2
