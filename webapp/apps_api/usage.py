"""``POST /api/v1/usage``: an application reports a batch of 1 to 1,000 AI requests.

Answers (all in the envelope, ``data`` = ``{"accepted", "completed", "duplicates",
"rejected": [{"index", "id", "code", "errors"}]}``): ``200`` when every event was stored
or was a duplicate (``success`` true), ``207`` when some were refused and ``422`` when all
were (``success`` false); ``400`` for a body that is not a JSON object with an ``events``
list of 1 to 1,000 items, ``413`` beyond 5 MiB (compressed, and again after decompression),
``415`` for another content type or content encoding than JSON, plain or gzip.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, request

from webapp.api.envelope import error_response, success_response, unsuccessful_response
from webapp.apps_api import bp
from webapp.apps_api.keys import current_key, requires_key
from webapp.request_limits import accepts_request_bytes, too_large
from webapp.services.apps.bodies import (
    BodyTooLarge,
    UndecodableBody,
    UnsupportedMediaType,
    read_body,
)
from webapp.services.apps.ingestion_groups import ingestion_groups
from webapp.services.apps.reported_events import MAX_EVENTS

MAX_BODY_BYTES = 5 * 1024 * 1024  # sent, and once decompressed


class BodyRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def request_body(limit: int) -> bytes:
    """The request's body, decompressed when ``Content-Encoding: gzip`` (at most ``limit``
    bytes once decompressed: a gzip bomb never inflates past it in memory)."""
    data = request.get_data(cache=False)  # the stream stops with 413 past the limit
    try:
        return read_body(data, request.headers.get("Content-Encoding"), limit)
    except BodyTooLarge:
        raise too_large(limit) from None
    except UnsupportedMediaType:
        raise BodyRefused(415, "Send the body plain or with 'Content-Encoding: gzip'.") from None
    except UndecodableBody as undecodable:
        raise BodyRefused(400, f"The body is not valid gzip: {undecodable}.") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def batch_events(body: bytes) -> list[Any]:
    """The ``events`` list of a JSON body, or ``BodyRefused`` (400) naming what is wrong."""
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise BodyRefused(400, "The body is not valid JSON.") from None
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list):
        raise BodyRefused(400, "events: is required: a list of 1 to 1,000 events")
    if not events:
        raise BodyRefused(400, "events: must contain at least 1 event")
    if len(events) > MAX_EVENTS:
        raise BodyRefused(400, f"events: must contain at most {MAX_EVENTS:,} events")
    return events


def _refusal(refused: BodyRefused) -> Response:
    title = {400: "Bad request", 415: "Unsupported media type"}[refused.status]
    fields = None
    if refused.message.startswith("events: "):
        fields = {"events": refused.message.removeprefix("events: ")}
    return error_response(refused.status, title, refused.message, fields)


@bp.post("/usage")
@accepts_request_bytes(MAX_BODY_BYTES)
@requires_key("usage:write")
def report_usage() -> Response:
    if request.mimetype != "application/json":
        return _refusal(BodyRefused(415, "Send the events as 'Content-Type: application/json'."))
    try:
        events = batch_events(request_body(MAX_BODY_BYTES))
    except BodyRefused as refused:
        return _refusal(refused)
    # Stored with the key's other small batches waiting in this worker at the same time
    # (group commit: one transaction for several requests, each answered after it).
    result = ingestion_groups(current_app).ingest(current_key(), events)
    if not result.rejected:
        return success_response(result.as_dict())
    status = 422 if len(result.rejected) == len(events) else 207
    return unsuccessful_response(result.as_dict(), status)
