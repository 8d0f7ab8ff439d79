"""Spans made by the real OpenTelemetry SDK, for the OTLP tests.

``SpanSpec`` describes a span; ``record_spans`` has the SDK record them (a real
``TracerProvider``, real ids, real timestamps), ``protobuf_body`` / ``json_body`` encode them
exactly as the OTLP/HTTP exporter does, and ``send_spans`` sends them to a live server with
the SDK's own ``OTLPSpanExporter`` (gzip by default, as applications configure it).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

# 2026-12-02T10:00:00Z, in nanoseconds: fixed so that tests can assert the timestamp.
START_NS = 1_796_205_600_000_000_000
AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]


@dataclass(frozen=True)
class SpanSpec:
    """A span to record. ``children`` are recorded inside it (an agent span and its chat
    calls); ``error`` sets the span status to ERROR with that message."""

    name: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    duration_ms: float = 250.0
    start_ns: int = START_NS
    error: str | None = None
    children: Sequence[SpanSpec] = ()


def chat_span(model: str = "gpt-4o", **attributes: AttributeValue) -> SpanSpec:
    """A GenAI chat span as the current semantic conventions describe it."""
    return SpanSpec(
        name=f"chat {model}",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 30,
            **attributes,
        },
    )


def _emit(provider: TracerProvider, specs: Sequence[SpanSpec]) -> None:
    tracer = provider.get_tracer("aipm.tests", "1.0")

    def emit(spec: SpanSpec) -> None:
        span = tracer.start_span(spec.name, attributes=spec.attributes, start_time=spec.start_ns)
        # Children are started inside their parent, so they share its trace id.
        with trace.use_span(span, end_on_exit=False):
            for child in spec.children:
                emit(child)
        if spec.error is not None:
            span.set_status(Status(StatusCode.ERROR, spec.error))
        span.end(end_time=spec.start_ns + int(spec.duration_ms * 1_000_000))

    for spec in specs:
        emit(spec)


def _provider(resource_attributes: Mapping[str, str]) -> TracerProvider:
    # Resource.create adds the SDK's own attributes (telemetry.sdk.*), as in an application.
    return TracerProvider(resource=Resource.create(dict(resource_attributes)))


def record_spans(
    specs: Sequence[SpanSpec], resource_attributes: Mapping[str, str] | None = None
) -> list[ReadableSpan]:
    """The finished spans, as the SDK hands them to an exporter."""
    provider = _provider(resource_attributes or {})
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _emit(provider, specs)
    provider.shutdown()
    return list(memory.get_finished_spans())


def export_request(
    specs: Sequence[SpanSpec], resource_attributes: Mapping[str, str] | None = None
) -> ExportTraceServiceRequest:
    """The ``ExportTraceServiceRequest`` the OTLP/HTTP exporter would send for ``specs``."""
    return encode_spans(record_spans(specs, resource_attributes))


def protobuf_body(
    specs: Sequence[SpanSpec], resource_attributes: Mapping[str, str] | None = None
) -> bytes:
    return export_request(specs, resource_attributes).SerializeToString()


def json_body(
    specs: Sequence[SpanSpec],
    resource_attributes: Mapping[str, str] | None = None,
    *,
    ids: str = "hex",
) -> bytes:
    return json_body_of(export_request(specs, resource_attributes), ids=ids)


def json_body_of(request: ExportTraceServiceRequest, *, ids: str = "hex") -> bytes:
    """The OTLP JSON encoding: ProtoJSON with hex ids (``ids="hex"``, what the OTLP spec
    requires) or with ProtoJSON's base64 ids (``ids="base64"``, what some senders do)."""
    document = json.loads(json_format.MessageToJson(request))
    if ids == "hex":
        for resource_spans in document.get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    hex_ids(span)
                    for link in span.get("links", []):
                        hex_ids(link)
    return json.dumps(document).encode()


def hex_ids(item: dict[str, Any]) -> None:
    """Turn an object's base64 ids (ProtoJSON) into hex (OTLP JSON), in place."""
    for name in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
        if name in item:
            item[name] = base64.b64decode(item[name]).hex()


class _RecordingExporter(SpanExporter):
    """Passes spans on to the real exporter and keeps what each export answered."""

    def __init__(self, exporter: OTLPSpanExporter) -> None:
        self.exporter = exporter
        self.results: list[SpanExportResult] = []
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.exporter.export(spans)
        self.results.append(result)
        self.spans.extend(spans)
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


@dataclass(frozen=True)
class Sent:
    results: list[SpanExportResult]  # one per export call the processor made
    spans: list[ReadableSpan]  # what was exported, for sending the same spans again


def otlp_exporter(
    url: str,
    headers: Mapping[str, str],
    *,
    compression: Compression = Compression.Gzip,
    timeout: float = 5.0,
) -> OTLPSpanExporter:
    """The SDK's OTLP/HTTP protobuf exporter, configured as an application would
    (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` = ``url``, ``OTEL_EXPORTER_OTLP_HEADERS``)."""
    return OTLPSpanExporter(
        endpoint=url, headers=dict(headers), compression=compression, timeout=timeout
    )


def send_spans(
    url: str,
    headers: Mapping[str, str],
    specs: Sequence[SpanSpec],
    resource_attributes: Mapping[str, str] | None = None,
    *,
    batch: bool = False,
    compression: Compression = Compression.Gzip,
) -> Sent:
    """Record ``specs`` with a ``TracerProvider`` whose processor (simple: one export per
    span; ``batch=True``: ``BatchSpanProcessor``, one export for all) feeds a real
    ``OTLPSpanExporter`` pointed at ``url``. Returns once everything was exported."""
    recorder = _RecordingExporter(otlp_exporter(url, headers, compression=compression))
    provider = _provider(resource_attributes or {})
    processor = BatchSpanProcessor(recorder) if batch else SimpleSpanProcessor(recorder)
    provider.add_span_processor(processor)
    _emit(provider, specs)
    provider.shutdown()  # flushes the batch processor, then shuts the exporter down
    return Sent(results=recorder.results, spans=recorder.spans)


def send_again(
    url: str,
    headers: Mapping[str, str],
    spans: Sequence[ReadableSpan],
    *,
    compression: Compression = Compression.Gzip,
) -> SpanExportResult:
    """Export the very same spans once more (same ids), as an exporter retrying after a
    lost answer would."""
    exporter = otlp_exporter(url, headers, compression=compression)
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()
