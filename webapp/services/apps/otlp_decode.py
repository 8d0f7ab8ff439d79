"""OTLP/HTTP trace export messages: reading a request, writing the answer.

Both encodings of the OpenTelemetry protocol: binary protobuf (``application/x-protobuf``,
what the standard exporters send) and its JSON mapping (``application/json``). OTLP's JSON
differs from plain ProtoJSON in one way that matters here: trace and span ids are hex, not
base64. ``google.protobuf.json_format`` does the rest (lowerCamelCase and snake_case field
names, enums as integers or names, 64-bit integers as strings or numbers).
"""

from __future__ import annotations

import base64
import json
import string
from typing import Any

from google.protobuf import json_format, unknown_fields
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from webapp.services.apps.bodies import UndecodableBody, UnsupportedMediaType

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_MEDIA_TYPES = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}

# Byte lengths of the id fields, by both spellings of their JSON names.
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
_ID_FIELDS = {
    "traceId": _TRACE_ID_BYTES,
    "trace_id": _TRACE_ID_BYTES,
    "spanId": _SPAN_ID_BYTES,
    "span_id": _SPAN_ID_BYTES,
    "parentSpanId": _SPAN_ID_BYTES,
    "parent_span_id": _SPAN_ID_BYTES,
}
_HEX_DIGITS = frozenset(string.hexdigits)


class OtlpDecodeError(UndecodableBody):
    """Nothing in the body decodes as an OTLP trace export request (answer 400)."""


def media_type(content_type: str | None) -> str:
    """``PROTOBUF`` or ``JSON`` for a request's Content-Type (parameters such as charset
    allowed); ``UnsupportedMediaType`` (415) for anything else."""
    essence = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        return _MEDIA_TYPES[essence]
    except KeyError:
        raise UnsupportedMediaType(
            f"Content-Type {essence or 'missing'!r} is not supported: send {PROTOBUF} or {JSON}"
        ) from None


def decode_export_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """The export request in ``body``, read in the encoding ``content_type`` names.

    Raises ``OtlpDecodeError`` when the body is not such a request, ``UnsupportedMediaType``
    for another content type. A span that decodes but is unusable (no model, bad ids) is
    not an error here: ``spans_to_events`` rejects it alone.
    """
    if media_type(content_type) == JSON:
        return _decode_json(body)
    return _decode_protobuf(body)


def _decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError:
        raise OtlpDecodeError("the body is not an OTLP traces export request (protobuf)") from None
    # Some stray bytes parse as a message made only of unknown fields: with no spans at all
    # that is not a traces request (a metrics or logs export sent to the wrong path, say).
    if not request.resource_spans and len(unknown_fields.UnknownFieldSet(request)):
        raise OtlpDecodeError("the body is not an OTLP traces export request (protobuf)")
    return request


def _decode_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise OtlpDecodeError("the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise OtlpDecodeError("the body is not an OTLP traces export request: not a JSON object")
    _ids_to_base64(document)
    request = ExportTraceServiceRequest()
    try:
        # OTLP asks receivers to ignore fields they do not know (newer senders add some).
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise OtlpDecodeError(f"the body is not an OTLP traces export request: {error}") from None
    return request


def _ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite hex ids, in place, to the base64 json_format expects of bytes fields.

    An id already in base64 is left as it is: a hex id has exactly twice its byte length in
    hex digits, and base64 of those byte lengths never has that many characters.
    """
    for resource_spans in _objects(document, "resourceSpans", "resource_spans"):
        for scope_spans in _objects(resource_spans, "scopeSpans", "scope_spans"):
            for span in _objects(scope_spans, "spans"):
                _fix_ids(span)
                for link in _objects(span, "links"):
                    _fix_ids(link)


def _objects(parent: dict[str, Any], *names: str) -> list[dict[str, Any]]:
    """The JSON objects in the list ``parent[name]``; anything else is left for ParseDict
    to refuse."""
    found: list[dict[str, Any]] = []
    for name in names:
        children = parent.get(name)
        if isinstance(children, list):
            found.extend(child for child in children if isinstance(child, dict))
    return found


def _fix_ids(item: dict[str, Any]) -> None:
    for name, size in _ID_FIELDS.items():
        value = item.get(name)
        if isinstance(value, str) and len(value) == 2 * size and _HEX_DIGITS.issuperset(value):
            item[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


def encode_export_response(rejected_spans: int, error_message: str, content_type: str) -> bytes:
    """The ``ExportTraceServiceResponse`` body in the request's encoding.

    ``partial_success`` is set only when spans were rejected: an empty response is OTLP's
    "all accepted".
    """
    response = ExportTraceServiceResponse()
    if rejected_spans > 0:
        response.partial_success.rejected_spans = rejected_spans
        response.partial_success.error_message = error_message
    if media_type(content_type) == JSON:
        # ProtoJSON: {"partialSuccess": {"rejectedSpans": "2", "errorMessage": "…"}}, the
        # 64-bit count as a string, as OTLP's JSON mapping has it.
        return json.dumps(json_format.MessageToDict(response)).encode()
    return response.SerializeToString()


def encode_error_status(code: int, message: str, content_type: str | None) -> bytes:
    """A ``google.rpc.Status`` body, which OTLP/HTTP answers with on 4xx/5xx, in the
    request's encoding (protobuf when the content type is unknown: it is what the
    standard exporters read). ``code`` is a gRPC code, e.g. 3 INVALID_ARGUMENT.

    Written by hand: Status is two fields, and googleapis-common-protos is not a runtime
    dependency of ours.
    """
    try:
        encoding = media_type(content_type)
    except UnsupportedMediaType:
        encoding = PROTOBUF
    if encoding == JSON:
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode()
    status = b""
    if code:
        status += b"\x08" + _varint(code)  # field 1, varint
    if text:
        status += b"\x12" + _varint(len(text)) + text  # field 2, length-delimited
    return status


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
