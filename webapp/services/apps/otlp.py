"""The OTLP/HTTP traces endpoint's pure part, in one import: read the export request,
map its GenAI spans to usage events, write the answer. No database, no Flask.

    body = read_body(raw, content_encoding, MAX_OTLP_BODY)            # 413 / 415 / 400
    request = decode_export_request(body, content_type)               # 415 / 400
    decoded = spans_to_events(request, feature_names)
    ...ingest decoded.events, add its refusals to decoded.rejected...
    encode_export_response(rejected, summarize_rejections(reasons), content_type)
"""

from __future__ import annotations

from webapp.services.apps.bodies import (
    BodyTooLarge,
    UndecodableBody,
    UnsupportedMediaType,
    read_body,
)
from webapp.services.apps.genai_spans import (
    DecodedSpans,
    SpanRejection,
    inference_operation,
    spans_to_events,
    summarize_rejections,
)
from webapp.services.apps.otlp_decode import (
    JSON,
    PROTOBUF,
    OtlpDecodeError,
    decode_export_request,
    encode_error_status,
    encode_export_response,
    media_type,
)

MAX_OTLP_BODY = 20 * 1024 * 1024  # bytes after decompression (the 20 MiB)

__all__ = [
    "JSON",
    "MAX_OTLP_BODY",
    "PROTOBUF",
    "BodyTooLarge",
    "DecodedSpans",
    "OtlpDecodeError",
    "SpanRejection",
    "UndecodableBody",
    "UnsupportedMediaType",
    "decode_export_request",
    "encode_error_status",
    "encode_export_response",
    "inference_operation",
    "media_type",
    "read_body",
    "spans_to_events",
    "summarize_rejections",
]
