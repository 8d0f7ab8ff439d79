"""GenAI spans → usage events: which OpenTelemetry spans are AI requests, and what they say.

One usage event per *inference* span: the GenAI semantic conventions' ``chat``,
``text_completion``, ``generate_content`` and ``embeddings`` operations, OpenInference's
``LLM`` and ``EMBEDDING`` span kinds, and OpenLLMetry's ``llm.request.type`` for the
instrumentations that predate ``gen_ai.operation.name``. Agent and workflow spans
(``invoke_agent``, ``execute_tool``, OpenInference ``AGENT``/``CHAIN``/``TOOL``…) carry the
sums of their children: counting them would count every request twice, so they are
ignored like any other span (HTTP, database…).

Attribute names: the current conventions first, then the names before semantic
conventions 1.37 and OpenInference's, so every instrumentation in use today maps.

The events have the JSON shape of ``POST /api/v1/usage``; this module never touches the
database (whether the feature exists and the key may report for it is ingestion's call).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from webapp.services.usage.schemas import MAX_TOKENS

INFERENCE_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
OPENINFERENCE_INFERENCE_KINDS = frozenset({"LLM", "EMBEDDING"})
# OpenLLMetry (traceloop) before it set gen_ai.operation.name; its workflow, agent and tool
# spans carry traceloop.span.kind and no llm.request.type.
LEGACY_INFERENCE_REQUEST_TYPES = frozenset({"chat", "completion", "embedding"})

FEATURE = "aipm.feature"
SERVICE_NAME = "service.name"
MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "embedding.model_name")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
# Event field → the attributes that may carry it, the first present one wins.
TOKENS: Mapping[str, tuple[str, ...]] = {
    "input_tokens": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
    ),
    "output_tokens": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
    ),
    "cache_read_input_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "cache_write_input_tokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
    ),
}
PROMPT_NAME = "gen_ai.prompt.name"
PROMPT_VERSION = "gen_ai.prompt.version"
ERROR_TYPE = "error.type"

MAX_ERROR_MESSAGE = 2000  # characters, the usage event's limit
MAX_METADATA_TEXT = 256  # characters per metadata value: the event's metadata is ≤ 4 KiB
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WHOLE_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class SpanRejection:
    """An inference span that could not become a usage event, and why (English)."""

    trace_id: str
    span_id: str
    reason: str


@dataclass(frozen=True)
class DecodedSpans:
    events: list[dict[str, Any]]  # usage events in the JSON shape of POST /api/v1/usage
    rejected: list[SpanRejection]  # inference spans that could not be used
    ignored: int  # every other span (agents, workflows, HTTP…), never counted


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Complex:
    """An array, key-value list or bytes attribute: never a value this mapping reads."""

    def __repr__(self) -> str:
        return "a list or bytes"


_COMPLEX = _Complex()
Scalar = str | bool | int | float | _Complex | None


def spans_to_events(
    request: ExportTraceServiceRequest, feature_names: Iterable[str]
) -> DecodedSpans:
    """Every inference span of ``request`` as a usage event, or as a rejection saying why
    not; other spans only counted as ignored.

    ``feature_names``: the features that exist, so that a resource's ``service.name`` can
    name one. ``aipm.feature`` is taken as written (ingestion checks it).
    """
    features = frozenset(feature_names)
    events: list[dict[str, Any]] = []
    rejected: list[SpanRejection] = []
    ignored = 0
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = _attributes(span.attributes)
                operation = inference_operation(attributes)
                if operation is None:
                    ignored += 1
                    continue
                try:
                    events.append(_event(span, attributes, resource, operation, features))
                except _Rejected as rejection:
                    rejected.append(
                        SpanRejection(span.trace_id.hex(), span.span_id.hex(), rejection.reason)
                    )
    return DecodedSpans(events=events, rejected=rejected, ignored=ignored)


def inference_operation(attributes: Mapping[str, AnyValue]) -> str | None:
    """The span's operation when it is an inference (one model call), else None.

    The most specific convention decides: a span naming a GenAI operation is judged by it
    alone (an ``invoke_agent`` span stays an agent span whatever else it carries).
    """
    operation = _scalar(attributes.get("gen_ai.operation.name"))
    if isinstance(operation, str) and operation:
        return operation if operation in INFERENCE_OPERATIONS else None
    kind = _scalar(attributes.get("openinference.span.kind"))
    if isinstance(kind, str) and kind:
        return kind.lower() if kind.upper() in OPENINFERENCE_INFERENCE_KINDS else None
    request_type = _scalar(attributes.get("llm.request.type"))
    if isinstance(request_type, str) and request_type in LEGACY_INFERENCE_REQUEST_TYPES:
        return request_type
    return None


def summarize_rejections(reasons: Sequence[str], max_chars: int = 1000) -> str:
    """One English ``error_message`` for ``partial_success``: each distinct reason once,
    with how many spans it refused, cut to ``max_chars``."""
    if not reasons:
        return ""
    counts = Counter(reasons)
    parts = [reason if n == 1 else f"{reason} ({n} spans)" for reason, n in counts.items()]
    noun = "span" if len(reasons) == 1 else "spans"
    message = f"{len(reasons)} {noun} rejected: " + "; ".join(parts)
    return message if len(message) <= max_chars else message[: max_chars - 1] + "…"


def _event(
    span: Span,
    attributes: Mapping[str, AnyValue],
    resource: Mapping[str, AnyValue],
    operation: str,
    features: frozenset[str],
) -> dict[str, Any]:
    label = f"span {_shorten(span.name, 100)!r}"
    if len(span.trace_id) != _TRACE_ID_BYTES or not any(span.trace_id):
        raise _Rejected(f"{label} has no valid trace id (16 bytes, not all zero)")
    if len(span.span_id) != _SPAN_ID_BYTES or not any(span.span_id):
        raise _Rejected(f"{label} has no valid span id (8 bytes, not all zero)")
    if not span.start_time_unix_nano:
        raise _Rejected(f"{label} has no start time")
    feature = _feature(label, attributes, resource, features)
    model = _text(label, attributes, MODEL)
    if model is None:
        raise _Rejected(f"{label} names no model: set gen_ai.request.model")

    event: dict[str, Any] = {
        # The idempotency id: a retried export sends the same spans, so it stores nothing twice.
        "id": f"{span.trace_id.hex()}:{span.span_id.hex()}",
        "timestamp": _timestamp(span.start_time_unix_nano),
        "feature": feature,
        "model": model,
    }
    provider = _text(label, attributes, PROVIDER)
    if provider is not None:
        event["provider"] = provider
    event.update(_outcome(label, span, attributes))
    for field, names in TOKENS.items():
        found = _first(attributes, names)
        if found is not None:
            event[field] = _count(label, *found)
    event["latency_ms"] = _latency_ms(label, span)
    prompt = _prompt(label, attributes)
    if prompt is not None:
        event["prompt"] = prompt
    event["metadata"] = {"otel": _otel_metadata(span, operation, resource)}
    return event


def _feature(
    label: str,
    attributes: Mapping[str, AnyValue],
    resource: Mapping[str, AnyValue],
    features: frozenset[str],
) -> str:
    for source in (attributes, resource):
        named = _text(label, source, (FEATURE,))
        if named is not None:
            return named
    service = _scalar(resource.get(SERVICE_NAME))
    if isinstance(service, str) and service in features:
        return service
    if isinstance(service, str) and service:
        raise _Rejected(
            f"{label} names no feature: service.name {_shorten(service, 100)!r} is not a "
            "feature; set aipm.feature or service.name to a feature name"
        )
    raise _Rejected(f"{label} names no feature: set aipm.feature or service.name")


def _outcome(label: str, span: Span, attributes: Mapping[str, AnyValue]) -> dict[str, str]:
    """``status`` and, on failure, ``error_message``. ``error.type`` is only set when the
    operation failed (semantic conventions), so it means an error even on an unset status."""
    error_type = _text(label, attributes, (ERROR_TYPE,))
    if span.status.code != Status.STATUS_CODE_ERROR and error_type is None:
        return {"status": "success"}
    outcome = {"status": "error"}
    message = span.status.message.strip() or error_type
    if message:
        outcome["error_message"] = message[:MAX_ERROR_MESSAGE]
    return outcome


def _latency_ms(label: str, span: Span) -> int:
    # An end before the start (clock trouble, an unset end) is no duration at all.
    nanoseconds = max(0, span.end_time_unix_nano - span.start_time_unix_nano)
    milliseconds = (nanoseconds + 500_000) // 1_000_000
    if milliseconds > MAX_TOKENS:
        raise _Rejected(f"{label} lasts longer than {MAX_TOKENS} ms")
    return milliseconds


def _prompt(label: str, attributes: Mapping[str, AnyValue]) -> dict[str, Any] | None:
    name = _text(label, attributes, (PROMPT_NAME,))
    if name is None:
        return None
    prompt: dict[str, Any] = {"name": name}
    found = _first(attributes, (PROMPT_VERSION,))
    if found is not None:
        key, value = found
        version = _whole_number(value)
        if version is None:
            raise _Rejected(
                f"{label}: {key} must be a whole number (a version of the prompt), "
                f"not {_shorten(repr(value), 50)}"
            )
        prompt["version"] = version
    return prompt


def _otel_metadata(span: Span, operation: str, resource: Mapping[str, AnyValue]) -> dict[str, str]:
    metadata = {"span_name": span.name, "operation": operation}
    service = _scalar(resource.get(SERVICE_NAME))
    if isinstance(service, str):
        metadata["service_name"] = service
    return {key: _shorten(value, MAX_METADATA_TEXT) for key, value in metadata.items() if value}


def _timestamp(nanoseconds: int) -> str:
    moment = _EPOCH + timedelta(microseconds=nanoseconds // 1000)
    return moment.isoformat(timespec="microseconds")


def _count(label: str, key: str, value: Scalar) -> int:
    count = _whole_number(value)
    if count is None or count > MAX_TOKENS:
        raise _Rejected(
            f"{label}: {key} must be a whole number from 0 to {MAX_TOKENS}, "
            f"not {_shorten(repr(value), 50)}"
        )
    return count


def _whole_number(value: Scalar) -> int | None:
    """A whole number ≥ 0 from an int, an integral double (some SDKs send every number as
    a double) or a string of digits; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value)
    return None


def _text(label: str, attributes: Mapping[str, AnyValue], names: Sequence[str]) -> str | None:
    """The first non-blank text among ``names``; a number or list there is a mistake worth
    saying rather than a value to skip."""
    for name in names:
        value = _scalar(attributes.get(name))
        if value is None:
            continue
        if not isinstance(value, str):
            raise _Rejected(f"{label}: {name} must be text, not {_shorten(repr(value), 50)}")
        if value.strip():
            return value.strip()
    return None


def _first(attributes: Mapping[str, AnyValue], names: Sequence[str]) -> tuple[str, Scalar] | None:
    for name in names:
        value = _scalar(attributes.get(name))
        if value is not None:
            return name, value
    return None


def _attributes(key_values: Iterable[KeyValue]) -> dict[str, AnyValue]:
    # Later duplicates win, as in the SDKs.
    return {item.key: item.value for item in key_values}


def _scalar(value: AnyValue | None) -> Scalar:
    if value is None:
        return None
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind is None:
        return None
    return _COMPLEX


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
