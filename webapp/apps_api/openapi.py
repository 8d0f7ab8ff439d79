"""The OpenAPI 3.1 document of the application API, at ``/api/v1/openapi.json``.

Built like the admin API's (webapp/api/openapi.py, whose envelope schemas it shares): paths
from this blueprint's routes, request bodies from the pydantic models the routes validate
with, the rest from ``OPERATIONS``. A route without an entry fails ``build_document`` (and
tests/apps_api/test_openapi_v1.py). The document is public: it holds no secret, and an
application's developer reads it before they have a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from webapp.api.openapi import (
    ERROR_ENVELOPE,
    PATH_ARGUMENT,
    UndocumentedRoute,
    document_response,
    drop_null_defaults,
    error_responses,
    success_envelope,
)
from webapp.apps_api import bp
from webapp.auth import public
from webapp.models import REJECTION_CODES
from webapp.services.apps.reported_events import UsageBatch
from webapp.services.spending.schemas import ReservationRequest

DOCUMENT_PATH = "/openapi.json"
CACHE_KEY = "aipm.apps_openapi_document"

ERRORS = {
    400: ("BadRequest", "A malformed request: `fields` names each wrong field."),
    401: (
        "Unauthorized",
        "No API key, or an unknown, revoked or expired one (`WWW-Authenticate: Bearer`).",
    ),
    403: ("Forbidden", "The key lacks the scope (`insufficient_scope`) or the feature."),
    402: (
        "BudgetExhausted",
        "A hard budget has no room for the estimate: `code` is `budget_exhausted`, "
        "`resets_at` (RFC 3339) when its period ends. Not 429: do not retry before then.",
    ),
    404: ("NotFound", "No such feature, prompt or other named resource (`not_found`)."),
    413: ("PayloadTooLarge", "The body (after decompression) is larger than allowed."),
    415: ("UnsupportedMediaType", "The body's Content-Type is not one this operation reads."),
    429: ("TooManyRequests", "The key's rate limit is used up; `Retry-After` says when to retry."),
}
WHOAMI: dict[str, Any] = {
    "type": "object",
    "properties": {
        "prefix": {"type": "string", "description": "The visible start of the key."},
        "environment": {"type": "string", "enum": ["development", "staging", "production"]},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "feature_ids": {
            "type": "array",
            "items": {"type": "string", "format": "uuid"},
            "description": "The features the key may report for; empty: every feature.",
        },
    },
    "required": ["prefix", "environment", "scopes", "feature_ids"],
}


RESERVATION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reservation_id": {
            "type": ["string", "null"],
            "format": "uuid",
            "description": "Send it as the usage event's `reservation_id` to settle it; null "
            "when no hard budget covers the feature (nothing is held).",
        },
        "reserved_usd": {"type": "string", "description": "The estimate held (decimal)."},
        "expires_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "When an unsettled reservation stops counting.",
        },
    },
    "required": ["reservation_id", "reserved_usd", "expires_at"],
}
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
INGESTION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "accepted": {**COUNT, "description": "Events stored as new rows."},
        "completed": {**COUNT, "description": "Pending rows completed by a final event."},
        "duplicates": {**COUNT, "description": "Events already stored (retries)."},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {**COUNT, "description": "The event's place in `events`."},
                    "id": {"type": ["string", "null"]},
                    "code": {"type": "string", "enum": list(REJECTION_CODES)},
                    "errors": {"type": "object", "additionalProperties": {"type": "string"}},
                },
                "required": ["index", "id", "code", "errors"],
            },
        },
    },
    "required": ["accepted", "completed", "duplicates", "rejected"],
}


def ingestion_answer(success: bool, description: str) -> Answer:
    return Answer(
        description,
        {
            "application/json": {
                "type": "object",
                "properties": {"success": {"const": success}, "data": INGESTION},
                "required": ["success", "data"],
            }
        },
    )


# OTLP/HTTP bodies: protobuf bytes, or OTLP's JSON mapping of the same messages.
OTLP_BODY: dict[str, dict[str, Any]] = {
    "application/x-protobuf": {
        "type": "string",
        "format": "binary",
        "description": "An ExportTraceServiceRequest (opentelemetry/proto/collector/trace/v1).",
    },
    "application/json": {
        "type": "object",
        "description": "An ExportTraceServiceRequest in OTLP's JSON mapping (hex ids).",
    },
}
OTLP_STATUS: dict[str, dict[str, Any]] = {
    "application/x-protobuf": {"type": "string", "format": "binary"},
    "application/json": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
    },
}


@dataclass(frozen=True)
class Answer:
    """One documented answer: its schema per media type, and the headers it carries."""

    description: str
    content: dict[str, dict[str, Any]]
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)


def otlp_answer(description: str, schema: dict[str, dict[str, Any]]) -> Answer:
    return Answer(description, schema)


def enveloped(
    data: dict[str, Any],
    description: str = "OK",
    headers: dict[str, dict[str, Any]] | None = None,
) -> Answer:
    return Answer(description, {"application/json": success_envelope(data)}, headers or {})


@dataclass(frozen=True)
class Operation:
    """What one endpoint reads and answers (its path and method come from its route)."""

    summary: str
    tag: str
    scope: str | None  # None: public, no key; "any": a key with any scope
    description: str = ""
    body: type[BaseModel] | None = None
    # Bodies not described by a pydantic model (OTLP protobuf): media type → schema.
    raw_body: dict[str, dict[str, Any]] | None = None
    answers: dict[int, Answer] = field(default_factory=dict)
    errors: tuple[int, ...] = (401, 403, 429)
    # Query and header parameters (OpenAPI parameter objects).
    parameters: tuple[dict[str, Any], ...] = ()


NULLABLE_TEXT: dict[str, Any] = {"type": ["string", "null"]}
MONEY: dict[str, Any] = {"type": ["string", "null"], "description": "USD, a decimal string."}
ASSIGNMENT_RULE = (
    "Variants are assigned like /experiments/{id}/assignment: take SHA-256 of "
    "`<experiment id>:<subject>` (UTF-8), read its first 8 bytes as a big-endian integer, "
    "modulo `buckets` (10000): that is the subject's bucket. Walk the variants in order; "
    "each owns `weight` × 100 consecutive buckets. `variant` is filled in when `subject` "
    "is given."
)
PROMPT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "integer"},
        "content": {"type": "string"},
        "variables": {"type": "object"},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
    "required": ["name", "version", "content", "variables", "sha256"],
}
MODEL: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {
        "name": {"type": "string"},
        "version": NULLABLE_TEXT,
        "provider": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "provider_type": {"type": "string"},
                "api_endpoint": NULLABLE_TEXT,
            },
            "required": ["name", "provider_type", "api_endpoint"],
        },
        "config": {"type": "object"},
        "pricing": {
            "type": "object",
            "properties": {
                name: MONEY
                for name in (
                    "input_price_per_million",
                    "output_price_per_million",
                    "price_per_request",
                    "price_per_image",
                    "cache_read_price_per_million",
                    "cache_write_price_per_million",
                )
            },
        },
    },
    "required": ["name", "version", "provider", "config", "pricing"],
}
VARIANT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": NULLABLE_TEXT,
        "weight": {"type": ["number", "string"], "description": "Percent of the subjects."},
        "model": {
            "type": ["object", "null"],
            "description": "model_comparison: the model to use (null: deleted since).",
            "properties": {
                "name": {"type": "string"},
                "version": NULLABLE_TEXT,
                "provider": {"type": "string"},
            },
        },
        "prompt": {
            "type": ["object", "null"],
            "description": "prompt_testing: the prompt version to use (null: deleted since).",
            "properties": {"name": {"type": "string"}, "version": {"type": "integer"}},
        },
        "params": {"type": "object"},
    },
    "required": ["id", "weight"],
}
EXPERIMENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "name": {"type": "string"},
        "type": {"type": "string"},
        "assignment": {"type": "string", "enum": ["sha256"]},
        "buckets": {"type": "integer"},
        "control": NULLABLE_TEXT,
        "variants": {"type": "array", "items": VARIANT},
        "variant": {"type": ["string", "null"], "description": "The subject's variant."},
    },
    "required": ["id", "type", "assignment", "buckets", "variants", "variant"],
}
BUDGET: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {
        "state": {"type": "string", "enum": ["ok", "warning", "soft_exceeded", "hard_exceeded"]},
        "action": {"type": "string", "enum": ["allow", "degrade", "deny"]},
        "degrade_to": {
            "type": ["object", "null"],
            "properties": {"name": {"type": "string"}, "provider": {"type": "string"}},
        },
        "resets_at": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["state", "action", "degrade_to", "resets_at"],
}
FEATURE_CONFIG: dict[str, Any] = {
    "type": "object",
    "properties": {
        "feature": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "status": {"type": "string", "enum": ["active", "inactive", "maintenance"]},
            },
            "required": ["name", "status"],
        },
        "environment": {"type": "string", "enum": ["development", "staging", "production"]},
        "revision": {"type": "integer", "minimum": 0},
        "model": MODEL,
        "prompts": {"type": "array", "items": PROMPT},
        "experiments": {"type": "array", "items": EXPERIMENT},
        "budget": BUDGET,
    },
    "required": [
        "feature",
        "environment",
        "revision",
        "model",
        "prompts",
        "experiments",
        "budget",
    ],
}
ALL_CONFIG: dict[str, Any] = {
    "type": "object",
    "properties": {
        "environment": {"type": "string", "enum": ["development", "staging", "production"]},
        "revision": {"type": "integer", "minimum": 0},
        "features": {"type": "object", "additionalProperties": FEATURE_CONFIG},
    },
    "required": ["environment", "revision", "features"],
}
PROMPT_VERSION: dict[str, Any] = {
    "type": "object",
    "properties": {
        **PROMPT["properties"],
        "feature": NULLABLE_TEXT,
        "environment": {"type": "string", "enum": ["development", "staging", "production"]},
        "live": {"type": "boolean"},
        "revision": {"type": "integer", "minimum": 0},
    },
    "required": [*PROMPT["required"], "feature", "environment", "live", "revision"],
}
CACHE_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": "A strong validator of this answer: send it back as If-None-Match.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "`private, max-age=30, stale-if-error=86400`: keep it 30 s, and "
        "fall back on it for a day while the console is unreachable.",
        "schema": {"type": "string"},
    },
}
SUBJECT: dict[str, Any] = {
    "name": "subject",
    "in": "query",
    "required": False,
    "description": "A user or session id (1 to 200 characters): fills in each experiment's "
    "`variant`.",
    "schema": {"type": "string"},
}
IF_NONE_MATCH: dict[str, Any] = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of the copy the client holds: `304` while it is current.",
    "schema": {"type": "string"},
}


def cached_answers(data: dict[str, Any]) -> dict[int, Answer]:
    return {
        200: enveloped(data, headers=CACHE_HEADERS),
        304: Answer(
            "Not modified: the client's copy (If-None-Match) is current.", {}, CACHE_HEADERS
        ),
    }


OPERATIONS: dict[str, Operation] = {
    "apps_api.whoami": Operation(
        "What the calling key is and may do",
        "keys",
        "any",
        answers={200: enveloped(WHOAMI)},
    ),
    "apps_api.report_usage": Operation(
        "Report a batch of AI requests",
        "usage",
        "usage:write",
        description=(
            "1 to 1,000 events, at most 5 MiB (`Content-Encoding: gzip` accepted; the limit "
            "applies after decompression). Each event is stored once per environment by its "
            "`id`: a retry answers it as a duplicate; a `pending` event is completed by a "
            "later final one with the same id. Refused events never block the others."
        ),
        body=UsageBatch,
        answers={
            200: ingestion_answer(True, "Every event was stored or was a duplicate."),
            207: ingestion_answer(False, "Some events were refused (`data.rejected`)."),
            422: ingestion_answer(False, "Every event was refused."),
        },
        errors=(400, 401, 403, 413, 415, 429),
    ),
    "apps_api.reserve_budget": Operation(
        "Reserve an estimate under the feature's hard budgets",
        "budgets",
        "usage:write",
        description=(
            "Admitted only when, for every hard budget covering the feature, spend + open "
            "reservations + this estimate is at most the amount (atomically: parallel "
            "reservations never overshoot). The usage event carrying `reservation_id` "
            "settles it; unsettled, it expires after BUDGET_RESERVATION_TTL_SECONDS."
        ),
        body=ReservationRequest,
        answers={200: enveloped(RESERVATION)},
        errors=(400, 401, 402, 403, 404, 429),
    ),
    "apps_api.export_traces": Operation(
        "Export OpenTelemetry spans (OTLP/HTTP)",
        "usage",
        "usage:write",
        description=(
            "OTLP/HTTP, protobuf or JSON, plain or gzip, at most 20 MiB decompressed. Each "
            "GenAI inference span is one usage event (id: trace id + span id); agent and "
            "workflow spans are not counted, other spans are ignored. Unusable spans are "
            "counted in `partial_success.rejected_spans` with the reasons."
        ),
        raw_body=OTLP_BODY,
        answers={
            200: otlp_answer(
                "An ExportTraceServiceResponse in the request's encoding.",
                {
                    "application/x-protobuf": {"type": "string", "format": "binary"},
                    "application/json": {
                        "type": "object",
                        "properties": {
                            "partialSuccess": {
                                "type": "object",
                                "properties": {
                                    "rejectedSpans": {"type": ["string", "integer"]},
                                    "errorMessage": {"type": "string"},
                                },
                            }
                        },
                    },
                },
            ),
            400: otlp_answer("Nothing in the body decodes (a google.rpc.Status).", OTLP_STATUS),
            413: otlp_answer("Larger than 20 MiB decompressed.", OTLP_STATUS),
            415: otlp_answer("Another Content-Type or Content-Encoding.", OTLP_STATUS),
            401: otlp_answer(
                "No API key, or an unknown, revoked or expired one (`WWW-Authenticate`).",
                OTLP_STATUS,
            ),
            403: otlp_answer("The key lacks the scope `usage:write`.", OTLP_STATUS),
            429: otlp_answer("The key's rate limit is used up (`Retry-After`).", OTLP_STATUS),
        },
        errors=(),
    ),
    "apps_api.feature_config": Operation(
        "What to do for one feature in the key's environment",
        "config",
        "config:read",
        description=(
            "The feature's status, the model assigned to it in the key's environment (with "
            "the assignment's overrides merged into the model's config; `null` without an "
            "assignment: run on the application's default), the prompt versions live "
            "there, its running experiments and its budget guard (`null`: no budget "
            f"applies). {ASSIGNMENT_RULE} Poll with `If-None-Match`: `304` while nothing "
            "changed (the ETag covers the configuration revision, the subject and the "
            "budget state)."
        ),
        answers=cached_answers(FEATURE_CONFIG),
        errors=(400, 401, 403, 404, 429),
        parameters=(SUBJECT, IF_NONE_MATCH),
    ),
    "apps_api.all_config": Operation(
        "What to do for every feature the key may read",
        "config",
        "config:read",
        description=(
            "`features` maps each feature's name to what GET /config/{name} answers for "
            "it. Same caching as GET /config/{name}."
        ),
        answers=cached_answers(ALL_CONFIG),
        errors=(400, 401, 403, 429),
        parameters=(SUBJECT, IF_NONE_MATCH),
    ),
    "apps_api.prompt_version": Operation(
        "One version of a prompt",
        "config",
        "config:read",
        description=(
            "A prompt of `feature` (leave it out for a global prompt): the version live in "
            "the key's environment, or `version`. `live` says whether that version is the "
            "live one there."
        ),
        answers=cached_answers(PROMPT_VERSION),
        errors=(400, 401, 403, 404, 429),
        parameters=(
            {
                "name": "feature",
                "in": "query",
                "required": False,
                "description": "The feature's name (none: a global prompt).",
                "schema": {"type": "string"},
            },
            {
                "name": "version",
                "in": "query",
                "required": False,
                "description": "This version instead of the live one.",
                "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
            },
            IF_NONE_MATCH,
        ),
    ),
    "apps_api.openapi_document": Operation(
        "This document",
        "meta",
        None,
        answers={200: Answer("OK", {"application/json": {"type": "object"}})},
        errors=(),
    ),
}


def _body_schemas() -> tuple[dict[type[BaseModel], dict[str, Any]], dict[str, Any]]:
    models = sorted(
        {op.body for op in OPERATIONS.values() if op.body is not None},
        key=lambda model: model.__name__,
    )
    if not models:
        return {}, {}
    references, definitions = models_json_schema(
        [(model, "validation") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    components = definitions.get("$defs", {})
    drop_null_defaults(components)
    return {model: references[(model, "validation")] for model in models}, components


def _operation(endpoint: str, path: str, refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    op = OPERATIONS[endpoint]
    document: dict[str, Any] = {
        "operationId": endpoint.removeprefix(f"{bp.name}."),
        "summary": op.summary,
        "tags": [op.tag],
        "security": [{"bearer": []}] if op.scope else [],
    }
    if op.description or op.scope:
        scope = (
            "Needs an API key (any scope)."
            if op.scope == "any"
            else (f"Needs an API key with the scope `{op.scope}`." if op.scope else "")
        )
        document["description"] = " ".join(part for part in (op.description, scope) if part)
    in_path = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{([a-z_]+)}", path)
    ]
    if in_path or op.parameters:
        document["parameters"] = [*in_path, *op.parameters]
    if op.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[op.body]}},
        }
    elif op.raw_body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {media: {"schema": schema} for media, schema in op.raw_body.items()},
        }
    responses: dict[str, Any] = {}
    for status, answer in op.answers.items():
        entry: dict[str, Any] = {"description": answer.description}
        if answer.content:
            entry["content"] = {
                media: {"schema": schema} for media, schema in answer.content.items()
            }
        if answer.headers:
            entry["headers"] = answer.headers
        responses[str(status)] = entry
    for code in op.errors:
        responses[str(code)] = {"$ref": f"#/components/responses/{ERRORS[code][0]}"}
    document["responses"] = responses
    return document


def build_document(app: Flask) -> dict[str, Any]:
    """The document for every rule of this blueprint."""
    refs, definitions = _body_schemas()
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint.partition(".")[0] != bp.name:
            continue
        if rule.endpoint not in OPERATIONS:
            raise UndocumentedRoute(f"{rule.endpoint} ({rule.rule}) has no entry in OPERATIONS")
        path = PATH_ARGUMENT.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule.endpoint, path, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AI Platform Management — application API",
            "version": "1",
            "description": (
                "What applications call: report usage (JSON batches or OpenTelemetry spans) "
                "and read their configuration. Authenticate with `Authorization: Bearer "
                "aipm_…` (an API key an admin issues at /api-keys); no cookies. Answers are "
                'the envelope {"success", "data", "error", "code", "details", "fields"}. '
                "Money is a decimal string."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {**definitions, "ErrorEnvelope": ERROR_ENVELOPE},
            "responses": error_responses(ERRORS),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "aipm_<dev|stg|prd>_<secret>",
                    "description": "An API key issued at /api-keys.",
                }
            },
        },
    }


@bp.get(DOCUMENT_PATH)
@public
def openapi_document() -> Response:
    """The document itself (not enveloped): built once per application."""
    return document_response(CACHE_KEY, build_document)
