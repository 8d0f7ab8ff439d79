"""The seed's JSON response envelope:
``{"success": bool, "data": ..., "error": str, "details": str, "metadata": {...}}``."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from webapp.services.core.serialization import to_jsonable


def _json_response(body: dict[str, Any], status: int) -> Response:
    return Response(
        json.dumps(to_jsonable(body), ensure_ascii=False),
        status=status,
        mimetype="application/json",
    )


def success_response(
    data: Any, status: int = 200, metadata: dict[str, Any] | None = None
) -> Response:
    body: dict[str, Any] = {"success": True, "data": data}
    if metadata is not None:
        body["metadata"] = metadata
    return _json_response(body, status)


def unsuccessful_response(data: Any, status: int) -> Response:
    """``success: false`` with ``data`` all the same: a batch some or all of whose items
    were refused (207, 422), each refusal said in ``data``."""
    return _json_response({"success": False, "data": data}, status)


def error_response(
    status: int,
    error: str,
    details: str | None = None,
    fields: dict[str, str] | None = None,
    code: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """``extra``: more top-level members an error answer documents (``resets_at``)."""
    body: dict[str, Any] = {"success": False, "error": error, **(extra or {})}
    if code:
        body["code"] = code  # machine-readable reason, e.g. "reauthentication_required"
    if details:
        body["details"] = details
    if fields:
        body["fields"] = fields  # each wrong field and what is wrong with it
    return _json_response(body, status)
