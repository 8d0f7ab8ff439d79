"""``POST /api/v1/otel/v1/traces``: OTLP/HTTP traces from applications' OpenTelemetry
exporters, so that ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=<console>/api/v1/otel/v1/traces``
works unchanged.

Protobuf or JSON, plain or gzip, at most 20 MiB decompressed. Every GenAI inference span
becomes a usage event recorded by ``ingest_events`` (the JSON endpoint's one write path);
spans that cannot be used — no feature, a feature the key may not report for, a wrong
number — are counted in ``partial_success.rejected_spans`` with the reasons in
``error_message``. Errors of the request itself answer with a ``google.rpc.Status`` in the
request's encoding, as OTLP/HTTP specifies (``400`` only when nothing decodes).
"""

from __future__ import annotations

from flask import Response, request
from sqlalchemy import select

from webapp.apps_api import bp
from webapp.apps_api.keys import current_key, requires_key
from webapp.extensions import db
from webapp.models import Feature
from webapp.request_limits import accepts_request_bytes
from webapp.services.apps.ingestion import ingest_events
from webapp.services.apps.otlp import (
    MAX_OTLP_BODY,
    BodyTooLarge,
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

# gRPC status codes carried in the google.rpc.Status of an error answer.
INVALID_ARGUMENT = 3
RESOURCE_EXHAUSTED = 8
# HTTP status → gRPC code, for key refusals (UNAUTHENTICATED, PERMISSION_DENIED, …).
_GRPC_CODES = {401: 16, 403: 7, 429: RESOURCE_EXHAUSTED}


def _status_answer(status: int, code: int, message: str, content_type: str | None) -> Response:
    try:
        encoding = media_type(content_type)
    except UnsupportedMediaType:
        encoding = "application/x-protobuf"
    return Response(encode_error_status(code, message, content_type), status, mimetype=encoding)


def as_otlp_status(refusal: Response) -> Response:
    """A key refusal (401, 403, 429) as OTLP/HTTP answers errors: a google.rpc.Status in
    the request's encoding; the status code and headers (WWW-Authenticate, Retry-After)
    stay, so exporters retry a 429 when Retry-After says."""
    envelope = refusal.get_json(silent=True) or {}
    message = envelope.get("details") or envelope.get("error") or refusal.status
    content_type = request.headers.get("Content-Type")
    answer = _status_answer(refusal.status_code, _GRPC_CODES.get(refusal.status_code, 2),
                            message, content_type)  # fmt: skip
    for name in ("WWW-Authenticate", "Retry-After"):
        if name in refusal.headers:
            answer.headers[name] = refusal.headers[name]
    return answer


@bp.post("/otel/v1/traces")
@accepts_request_bytes(MAX_OTLP_BODY)
@requires_key("usage:write", refusal=as_otlp_status)
def export_traces() -> Response:
    content_type = request.headers.get("Content-Type")
    try:
        encoding = media_type(content_type)
        body = read_body(
            request.get_data(cache=False), request.headers.get("Content-Encoding"), MAX_OTLP_BODY
        )
        export = decode_export_request(body, encoding)
    except UnsupportedMediaType as refused:
        return _status_answer(415, INVALID_ARGUMENT, str(refused), content_type)
    except BodyTooLarge as refused:
        return _status_answer(413, RESOURCE_EXHAUSTED, str(refused), content_type)
    except UndecodableBody as refused:
        return _status_answer(400, INVALID_ARGUMENT, str(refused), content_type)

    feature_names = db.session.scalars(select(Feature.name)).all()
    decoded = spans_to_events(export, feature_names)
    reasons = [rejection.reason for rejection in decoded.rejected]
    # Spans refused while mapping count on the key's figures too (as invalid events).
    result = ingest_events(current_key(), decoded.events, refused_before=len(decoded.rejected))
    for rejection in result.rejected:
        problems = "; ".join(f"{field} {problem}" for field, problem in rejection.errors.items())
        reasons.append(f"span {rejection.id}: {rejection.code}: {problems}")
    answer = encode_export_response(len(reasons), summarize_rejections(reasons), encoding)
    return Response(answer, 200, mimetype=encoding)
