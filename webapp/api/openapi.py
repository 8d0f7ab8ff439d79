"""The OpenAPI 3.1 document of the admin API, at /api/platform/ai-management/openapi.json.

The paths come from the routes themselves (``app.url_map``, this blueprint's rules), the
request bodies from the pydantic models the routes validate with (``model_json_schema``),
and the rest from ``OPERATIONS`` below: one entry per endpoint, saying what it reads from
the query string and what it answers. A route without an entry makes ``build_document``
fail (and tests/api/test_openapi.py with it), so no route goes undocumented.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, current_app
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from webapp.api import bp
from webapp.api.schemas import (
    ApiKeyCreate,
    AssignModel,
    ExperimentCreate,
    ExperimentUpdate,
    FeatureBulkUpdate,
    FeatureCreate,
    FeatureUpdate,
    ModelCreate,
    ModelFields,
    PromptCreate,
    PromptDuplicate,
    PromptEnvironment,
    PromptPromote,
    PromptTest,
    PromptUpdate,
    ProviderCreate,
    ProviderUpdate,
    Rollback,
)
from webapp.models import (
    ENVIRONMENTS,
    EXPERIMENT_STATUSES,
    FEATURE_STATUSES,
    MODEL_STATUSES,
)
from webapp.services.experiments.schemas import MAX_RESULTS_PER_BATCH
from webapp.services.health.provider_health import MAX_HISTORY_HOURS
from webapp.services.playground.runs import RunInput
from webapp.services.prompts.versions import MAX_LIMIT as MAX_PROMPTS
from webapp.services.spending.schemas import BudgetCreate, BudgetUpdate
from webapp.services.usage.logs import MAX_ERROR_TEXT, STATUS_CHOICES
from webapp.services.usage.windows import TIME_RANGES

DOCUMENT_PATH = "/openapi.json"
CACHE_KEY = "aipm.openapi_document"


OBJECT: dict[str, Any] = {"type": "object"}
OBJECTS: dict[str, Any] = {"type": "array", "items": OBJECT}
NOTHING: dict[str, Any] = {"type": "null"}
UUID: dict[str, Any] = {"type": "string", "format": "uuid"}

RESULT_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "variant_id": {"type": "string"},
        "metric_name": {"type": "string", "maxLength": 100},
        "metric_value": {"type": ["number", "string"]},
        "user_id": {"type": ["string", "null"]},
        "session_id": {"type": ["string", "null"]},
        "metadata": {"type": ["object", "null"]},
    },
    "required": ["variant_id", "metric_name", "metric_value"],
}
RESULTS: dict[str, Any] = {
    "type": "array",
    "items": RESULT_ITEM,
    "minItems": 1,
    "maxItems": MAX_RESULTS_PER_BATCH,
}
RESULTS_BODY: dict[str, Any] = {
    "description": 'A JSON array of results, or an object {"results": [...]}.',
    "oneOf": [
        RESULTS,
        {
            "type": "object",
            "properties": {"results": RESULTS},
            "required": ["results"],
            "additionalProperties": False,
        },
    ],
}


@dataclass(frozen=True)
class Query:
    """A query-string parameter a route reads."""

    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False

    def as_parameter(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "query",
            "required": self.required,
            "description": self.description,
            "schema": self.schema,
        }


def whole(name: str, default: int, low: int, high: int, description: str) -> Query:
    schema = {"type": "integer", "minimum": low, "maximum": high, "default": default}
    return Query(name, schema, description)


def flag(name: str, description: str) -> Query:
    return Query(name, {"type": "boolean", "default": False}, description)


def text(name: str, description: str, required: bool = False, **schema: Any) -> Query:
    return Query(name, {"type": "string", **schema}, description, required)


TIME_RANGE = Query(
    "time_range",
    {"type": "string", "enum": list(TIME_RANGES), "default": "24h"},
    "The window of the metrics: 1h and 24h roll, 7d and 30d are whole UTC days.",
)
ENVIRONMENT = Query(
    "environment",
    {"type": "string", "enum": list(ENVIRONMENTS)},
    "Only usage reported from this environment (default: every environment).",
)
INCLUDE_METRICS = flag("include_metrics", "Add request count, error rate and latency.")
USAGE_FILTERS = (
    text("feature_id", "Only this feature's requests.", format="uuid"),
    text("model_id", "Only this model's requests.", format="uuid"),
    text("provider_id", "Only this provider's requests.", format="uuid"),
    text(
        "status",
        "Only requests with this status (failed: error or timeout).",
        enum=list(STATUS_CHOICES),
    ),
    text("environment", "Only requests from this environment.", enum=list(ENVIRONMENTS)),
    text(
        "error_text",
        "Only requests whose error message contains this text (any case).",
        maxLength=MAX_ERROR_TEXT,
    ),
    text("start_date", "First UTC day (YYYY-MM-DD).", format="date"),
    text("end_date", "Last UTC day (YYYY-MM-DD), included.", format="date"),
)


@dataclass(frozen=True)
class Operation:
    """What one endpoint reads and answers (its path and method come from its route)."""

    summary: str
    tag: str
    body: type[BaseModel] | dict[str, Any] | None = None
    query: tuple[Query, ...] = ()
    success: tuple[int, ...] = (200,)
    data: dict[str, Any] = field(default_factory=lambda: OBJECT)
    media_type: str = "application/json"
    enveloped: bool = True  # the answer is the {"success", "data", ...} envelope
    conflicts: bool = False  # may answer 409 (a rule of the domain refuses the change)
    body_optional: bool = False  # the body may be left out (the seed's calls sent none)
    provider_call: bool = False  # calls a model: may answer 502 with the provider's words


def created(summary: str, tag: str, body: type[BaseModel] | dict[str, Any]) -> Operation:
    """A write that answers 201 with what it made (and 409 when a rule refuses it)."""
    return Operation(summary, tag, body=body, success=(201,), conflicts=True)


def changed(summary: str, tag: str, body: type[BaseModel]) -> Operation:
    """A write that answers 200 with the changed resource (and 409 when a rule refuses)."""
    return Operation(summary, tag, body=body, conflicts=True)


def deleted(summary: str, tag: str) -> Operation:
    """A delete: 200 with data null (409 when something still depends on it)."""
    return Operation(summary, tag, data=NOTHING, conflicts=True)


OPERATIONS: dict[str, Operation] = {
    # features
    "api.list_features": Operation(
        "List features with their active models",
        "features",
        query=(
            text("status", f"Comma-separated statuses ({', '.join(FEATURE_STATUSES)})."),
            INCLUDE_METRICS,
            TIME_RANGE,
            ENVIRONMENT,
        ),
        data=OBJECTS,
    ),
    "api.create_feature": created("Create a feature", "features", FeatureCreate),
    "api.bulk_update_features": Operation(
        "Change several features at once (all or nothing)",
        "features",
        body=FeatureBulkUpdate,
        data=OBJECTS,
        conflicts=True,
    ),
    "api.get_feature": Operation(
        "A feature, its active models and its metrics",
        "features",
        query=(TIME_RANGE, ENVIRONMENT),
    ),
    "api.put_feature": changed("Change a feature", "features", FeatureUpdate),
    "api.delete_feature": deleted("Delete a feature", "features"),
    "api.feature_usage": Operation(
        "Requests, errors and cost per UTC day",
        "features",
        query=(whole("days", 30, 1, 366, "How many days, today included."), ENVIRONMENT),
        data=OBJECTS,
    ),
    "api.feature_assignments": Operation(
        "Every model assignment of a feature, newest first", "features", data=OBJECTS
    ),
    "api.assign_model": Operation(
        "Assign a model to a feature in an environment",
        "features",
        body=AssignModel,
        success=(200, 201),
        conflicts=True,
    ),
    "api.rollback_assignment": created("Go back to the previous assignment", "features", Rollback),
    # models
    "api.list_models": Operation(
        "List AI models",
        "models",
        query=(
            text("provider", "A provider's name or id."),
            text("model_type", "Only models of this type."),
            text("status", "Only models with this status.", enum=list(MODEL_STATUSES)),
            INCLUDE_METRICS,
            TIME_RANGE,
            ENVIRONMENT,
        ),
        data=OBJECTS,
    ),
    "api.create_model": created("Create an AI model", "models", ModelCreate),
    "api.get_model": Operation(
        "A model and its metrics", "models", query=(TIME_RANGE, ENVIRONMENT)
    ),
    "api.put_model": changed("Change a model", "models", ModelFields),
    "api.delete_model": deleted("Delete a model", "models"),
    "api.model_deployments": Operation(
        "Every assignment of the model, newest first", "models", data=OBJECTS
    ),
    # providers
    "api.list_providers": Operation("List providers", "providers", data=OBJECTS),
    "api.create_provider": created("Create a provider", "providers", ProviderCreate),
    "api.get_provider": Operation("A provider and its models", "providers"),
    "api.put_provider": changed("Change a provider", "providers", ProviderUpdate),
    "api.delete_provider": deleted("Delete a provider", "providers"),
    "api.provider_health_history": Operation(
        "Current health, affected features and the recorded checks",
        "providers",
        query=(
            whole("hours", 24, 1, MAX_HISTORY_HOURS, "Hours of recorded checks."),
            TIME_RANGE,
        ),
    ),
    # prompts
    "api.list_prompts": Operation(
        "List prompt templates (latest versions)",
        "prompts",
        query=(
            text("feature_id", "Only this feature's prompts.", format="uuid"),
            text("created_by", "Only prompts by this user.", format="uuid"),
            text("tags", "Comma-separated tags, all of which a prompt has."),
            Query("is_active", {"type": "boolean"}, "Only active (or inactive) prompts."),
            text("search", "Text in the name, description or content."),
            whole("limit", 50, 1, MAX_PROMPTS, "Page size."),
            whole("offset", 0, 0, 10**9, "Prompts to skip."),
        ),
        data=OBJECTS,
    ),
    "api.create_prompt": created("Create a prompt template", "prompts", PromptCreate),
    "api.prompt_tags": Operation(
        "Every tag in use", "prompts", data={"type": "array", "items": {"type": "string"}}
    ),
    "api.get_prompt": Operation("A prompt version", "prompts"),
    "api.put_prompt": changed(
        "Change a prompt (content changes make a new version)", "prompts", PromptUpdate
    ),
    "api.delete_prompt": deleted("Delete a prompt", "prompts"),
    "api.activate_prompt": Operation(
        "Make this version live in an environment (no body: production)",
        "prompts",
        body=PromptEnvironment,
        body_optional=True,
        conflicts=True,
    ),
    "api.deactivate_prompt": Operation(
        "Stop this version being live in an environment (no body: production)",
        "prompts",
        body=PromptEnvironment,
        body_optional=True,
        conflicts=True,
    ),
    "api.promote_prompt": changed(
        "Promote this version to the next environment (it must be live in the one before)",
        "prompts",
        PromptPromote,
    ),
    "api.rollback_prompt": changed(
        "Bring back the version live before the current one in an environment",
        "prompts",
        PromptEnvironment,
    ),
    "api.prompt_environments": Operation(
        "The version of this prompt live in each environment (null: none)", "prompts"
    ),
    "api.prompt_activations": Operation(
        "Every activation of this prompt, newest first",
        "prompts",
        query=(text("environment", "Only this environment.", enum=list(ENVIRONMENTS)),),
        data=OBJECTS,
    ),
    "api.prompt_versions": Operation("Every version of a prompt", "prompts", data=OBJECTS),
    "api.duplicate_prompt": created("Copy a prompt under a new name", "prompts", PromptDuplicate),
    "api.test_prompt": Operation(
        "Render a prompt with variables (nothing is stored)", "prompts", body=PromptTest
    ),
    "api.run_prompt": Operation(
        "Run this version on a model (default: the feature's model in `environment`, "
        "default development): output, tokens, latency, time to first token, cost; "
        "recorded as usage (metadata.source playground) and in the run history",
        "prompts",
        body=RunInput,
        conflicts=True,  # a hard budget denies it; the provider has no usable credentials
        provider_call=True,
    ),
    "api.prompt_runs": Operation(
        "The last 50 playground runs of this prompt's family, newest first",
        "prompts",
        data=OBJECTS,
    ),
    "api.diff_prompt": Operation(
        "Line differences between two versions",
        "prompts",
        query=(text("against", "The id of the other version.", required=True, format="uuid"),),
    ),
    # experiments
    "api.list_experiments": Operation(
        "List experiments, newest first",
        "experiments",
        query=(
            text("status", f"Comma-separated statuses ({', '.join(EXPERIMENT_STATUSES)})."),
            text("feature_id", "Only this feature's experiments.", format="uuid"),
        ),
        data=OBJECTS,
    ),
    "api.create_experiment": created("Design an experiment", "experiments", ExperimentCreate),
    "api.get_experiment": Operation("An experiment", "experiments"),
    "api.put_experiment": changed(
        "Change an experiment (drafts only)", "experiments", ExperimentUpdate
    ),
    "api.delete_experiment": deleted("Delete an experiment", "experiments"),
    "api.start_experiment": Operation("Start an experiment", "experiments", conflicts=True),
    "api.pause_experiment": Operation("Pause an experiment", "experiments", conflicts=True),
    "api.resume_experiment": Operation("Resume an experiment", "experiments", conflicts=True),
    "api.complete_experiment": Operation("Complete an experiment", "experiments", conflicts=True),
    "api.cancel_experiment": Operation("Cancel an experiment", "experiments", conflicts=True),
    "api.experiment_assignment": Operation(
        "The variant a subject is assigned to",
        "experiments",
        query=(text("subject", "The user or session id to assign.", required=True),),
        conflicts=True,
    ),
    "api.record_experiment_results": created(
        "Record results (valid items stored, the others refused one by one)",
        "experiments",
        RESULTS_BODY,
    ),
    "api.experiment_analysis": Operation("Statistics per variant", "experiments"),
    "api.promote_experiment": Operation(
        "Assign the winning variant's model", "experiments", conflicts=True
    ),
    # spending
    "api.get_spending": Operation(
        "Spending breakdown, budgets, recommendations or trends",
        "spending",
        query=(
            text(
                "action",
                "What to answer (default breakdown).",
                enum=["breakdown", "budgets", "recommendations", "trends"],
            ),
            text("start_date", "First UTC day, for breakdown (YYYY-MM-DD).", format="date"),
            text("end_date", "Last UTC day, for breakdown (YYYY-MM-DD).", format="date"),
            whole("days", 30, 1, 365, "Days of trends."),
            Query(
                "environment",
                ENVIRONMENT.schema,
                "Breakdown and trends: only usage from this environment (default: all).",
            ),
        ),
        data={"type": ["object", "array"]},
    ),
    "api.create_budget": created("Create a budget (the seed's address)", "spending", BudgetCreate),
    "api.create_budget_alias": created("Create a budget", "spending", BudgetCreate),
    "api.list_budgets": Operation("Budgets and their burn rate", "spending", data=OBJECTS),
    "api.get_budget": Operation("A budget, its burn rate and history", "spending"),
    "api.put_budget": changed("Change a budget", "spending", BudgetUpdate),
    "api.delete_budget": deleted("Delete a budget", "spending"),
    # usage
    "api.list_usage": Operation(
        "AI requests, newest first, a page at a time",
        "usage",
        query=(
            *USAGE_FILTERS,
            whole("limit", 50, 1, 500, "Page size."),
            text("cursor", "metadata.next_cursor of the previous page."),
        ),
        data=OBJECTS,
    ),
    "api.export_usage": Operation(
        "Every matching AI request as CSV",
        "usage",
        query=USAGE_FILTERS,
        media_type="text/csv",
        enveloped=False,
        data={"type": "string"},
    ),
    # API keys
    "api.list_api_keys": Operation(
        "API keys (never their secrets) with their ingestion in the last 24 hours",
        "api keys",
        data=OBJECTS,
    ),
    "api.create_api_key": created(
        "Issue an API key: data.secret is in this answer only (needs a recent sign-in)",
        "api keys",
        ApiKeyCreate,
    ),
    "api.revoke_api_key": Operation(
        "Revoke an API key (again: no change); its next request is refused",
        "api keys",
    ),
    "api.openapi_document": Operation(
        "This document", "documentation", enveloped=False, data=OBJECT
    ),
}

ERRORS = {
    400: (
        "BadRequest",
        "Wrong input: `fields` names each wrong field (also a missing or invalid CSRF token).",
    ),
    401: (
        "Unauthorized",
        "Not signed in, or the session has ended; for sensitive writes, the sign-in is "
        "too old (`code`: reauthentication_required).",
    ),
    403: (
        "Forbidden",
        "The role does not allow it (viewers only read), or the user must first change a "
        "generated password, enrol a second factor or re-authenticate (see `code`).",
    ),
    404: ("NotFound", "No such resource (or a malformed id)."),
    409: ("Conflict", "The change breaks a rule (a name in use, a refused transition, …)."),
    413: ("PayloadTooLarge", "The body is larger than the server accepts."),
    502: (
        "ProviderFailed",
        "The model's provider did not answer (recorded as an error run): `details` holds "
        "`kind`, `provider_status`, `provider_message`, `retry_after`, `run_id`, `usage_id`.",
    ),
}

ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"const": False},
        "error": {"type": "string", "description": "What went wrong, in short."},
        "details": {"anyOf": [{"type": "string"}, {"type": "object"}]},
        "code": {"type": "string", "description": "A machine-readable reason."},
        "fields": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Each wrong field (dotted path) and what is wrong with it.",
        },
    },
    "required": ["success", "error"],
}


def success_envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "success": {"const": True},
            "data": data,
            "metadata": {"type": "object", "description": "Counts, windows, cursors."},
        },
        "required": ["success", "data"],
    }


PATH_ARGUMENT = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class UndocumentedRoute(LookupError):
    """A route of an API blueprint has no entry in its OPERATIONS table."""


def _body_schemas() -> tuple[dict[type[BaseModel], dict[str, Any]], dict[str, Any]]:
    """Each request model's schema as a reference, and the components they refer to."""
    models = sorted(
        {op.body for op in OPERATIONS.values() if isinstance(op.body, type)},
        key=lambda model: model.__name__,
    )
    references, definitions = models_json_schema(
        [(model, "validation") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    refs = {model: references[(model, "validation")] for model in models}
    components = definitions.get("$defs", {})
    for component in components.values():
        drop_null_defaults(component)
    return refs, components


def drop_null_defaults(schema: Any) -> None:
    """A field left out of a request is simply not set: pydantic writes that as
    ``"default": null`` even where null itself is refused (``"type": "string"``), which
    OpenAPI 3.1 calls invalid. The document drops such defaults."""
    if isinstance(schema, list):
        for item in schema:
            drop_null_defaults(item)
        return
    if not isinstance(schema, dict):
        return
    if "default" in schema and schema["default"] is None and not _allows_null(schema):
        del schema["default"]
    for value in schema.values():
        drop_null_defaults(value)


def _allows_null(schema: dict[str, Any]) -> bool:
    kinds = schema.get("type")
    if kinds is not None:  # "type" holds beside anyOf: both must accept null
        return kinds == "null" or (isinstance(kinds, list) and "null" in kinds)
    if "$ref" not in schema and "anyOf" not in schema:
        return True  # any value
    return any(
        isinstance(option, dict) and _allows_null(option) for option in schema.get("anyOf", [])
    )


def _responses(op: Operation, method: str, has_path_ids: bool) -> dict[str, Any]:
    content = success_envelope(op.data) if op.enveloped else op.data
    responses: dict[str, Any] = {
        str(status): {
            "description": "Created" if status == 201 else "OK",
            "content": {op.media_type: {"schema": content}},
        }
        for status in op.success
    }
    codes = [400, 401, 403]
    if has_path_ids:
        codes.append(404)
    if op.conflicts:
        codes.append(409)
    if method not in SAFE_METHODS:
        codes.append(413)
    if op.provider_call:
        codes.append(502)
    for code in codes:
        responses[str(code)] = {"$ref": f"#/components/responses/{ERRORS[code][0]}"}
    return responses


def _operation(
    endpoint: str, method: str, arguments: list[str], refs: dict[type[BaseModel], Any]
) -> dict[str, Any]:
    op = OPERATIONS[endpoint]
    write = method not in SAFE_METHODS
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": f"The {name.removesuffix('_id')}'s id.",
            "schema": UUID,
        }
        for name in arguments
    ] + [query.as_parameter() for query in op.query]
    document: dict[str, Any] = {
        "operationId": endpoint.removeprefix(f"{bp.name}."),
        "summary": op.summary,
        "tags": [op.tag],
        "security": [{"session": [], "csrf": []}] if write else [{"session": []}],
    }
    if parameters:
        document["parameters"] = parameters
    if op.body is not None:
        schema = refs[op.body] if isinstance(op.body, type) else op.body
        document["requestBody"] = {
            "required": not op.body_optional,
            "content": {"application/json": {"schema": schema}},
        }
    document["responses"] = _responses(op, method, bool(arguments))
    return document


def build_document(app: Flask) -> dict[str, Any]:
    """The document for every rule of this blueprint; UndocumentedRoute for a rule
    without an entry in OPERATIONS."""
    refs, definitions = _body_schemas()
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint.partition(".")[0] != bp.name:
            continue
        if rule.endpoint not in OPERATIONS:
            raise UndocumentedRoute(f"{rule.endpoint} ({rule.rule}) has no entry in OPERATIONS")
        path = PATH_ARGUMENT.sub(r"{\1}", rule.rule)
        arguments = PATH_ARGUMENT.findall(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                rule.endpoint, method, arguments, refs
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AI Platform Management — admin API",
            "version": "1",
            "description": (
                "The console's JSON API. Every answer is the envelope "
                '{"success", "data", "error", "details", "metadata"}; wrong input is 400 with '
                "`fields`. Money is a decimal string. Sign in at /login; writes need the "
                'CSRF token (the pages\' <meta name="csrf-token">) in X-CSRFToken.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {**definitions, "ErrorEnvelope": ERROR_ENVELOPE},
            "responses": error_responses(ERRORS),
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": app.config["SESSION_COOKIE_NAME"],
                    "description": "The console's signed session cookie (sign in at /login).",
                },
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRFToken",
                    "description": "The session's CSRF token; every write needs it.",
                },
            },
        },
    }


def error_responses(errors: Mapping[int, tuple[str, str]]) -> dict[str, Any]:
    """The ``components.responses`` of a document: each error answer, an ErrorEnvelope.
    Shared with the application API's document (webapp/apps_api/openapi.py)."""
    return {
        name: {
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}
            },
        }
        for name, description in errors.values()
    }


def document_response(cache_key: str, build: Callable[[Flask], dict[str, Any]]) -> Response:
    """A document as the answer (not enveloped), built once per application."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if cache_key not in app.extensions:
        app.extensions[cache_key] = json.dumps(build(app), ensure_ascii=False)
    return Response(app.extensions[cache_key], mimetype="application/json")


@bp.get(DOCUMENT_PATH)
def openapi_document() -> Response:
    """The document itself (not enveloped): built once per application."""
    return document_response(CACHE_KEY, build_document)
