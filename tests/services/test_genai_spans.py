"""GenAI spans → usage events (no database). Spans are recorded by the real SDK."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.otel_helpers import SpanSpec, chat_span, export_request
from webapp.services.apps.genai_spans import (
    INFERENCE_OPERATIONS,
    DecodedSpans,
    SpanRejection,
    spans_to_events,
    summarize_rejections,
)

FEATURES = ("chatbot", "photo-tagging", "ai-search")
CHATBOT = {"service.name": "chatbot"}


def decode(
    specs: Sequence[SpanSpec],
    resource: Mapping[str, str] | None = None,
    features: Sequence[str] = FEATURES,
) -> DecodedSpans:
    return spans_to_events(
        export_request(specs, CHATBOT if resource is None else resource), features
    )


def one_event(spec: SpanSpec, resource: Mapping[str, str] | None = None) -> dict:
    decoded = decode([spec], resource)
    assert decoded.rejected == [] and decoded.ignored == 0
    (event,) = decoded.events
    return event


def one_rejection(spec: SpanSpec, resource: Mapping[str, str] | None = None) -> str:
    decoded = decode([spec], resource)
    assert decoded.events == []
    (rejection,) = decoded.rejected
    return rejection.reason


def _ids(request: ExportTraceServiceRequest) -> list[str]:
    return [
        f"{span.trace_id.hex()}:{span.span_id.hex()}"
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


# --- the event -----------------------------------------------------------------------------


def test_a_chat_span_with_the_current_names_becomes_one_full_event():
    spec = SpanSpec(
        "chat gpt-4o",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.cache_creation.input_tokens": 100,
            "gen_ai.usage.reasoning.output_tokens": 200,
            "gen_ai.prompt.name": "support-answer",
            "gen_ai.prompt.version": 3,
        },
        duration_ms=812.4,
    )
    request = export_request([spec], CHATBOT)
    (event,) = spans_to_events(request, FEATURES).events
    assert event == {
        "id": _ids(request)[0],
        "timestamp": "2026-12-02T10:00:00.000000+00:00",
        "feature": "chatbot",
        "model": "gpt-4o-2024-08-06",  # the response's model: what actually answered
        "provider": "openai",
        "status": "success",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cache_read_input_tokens": 1000,
        "cache_write_input_tokens": 100,
        "reasoning_tokens": 200,
        "latency_ms": 812,
        "prompt": {"name": "support-answer", "version": 3},
        "metadata": {
            "otel": {"span_name": "chat gpt-4o", "operation": "chat", "service_name": "chatbot"}
        },
    }


def test_the_id_is_trace_id_and_span_id_in_hex_so_a_retry_has_the_same_one():
    request = export_request([chat_span()], CHATBOT)
    first = spans_to_events(request, FEATURES).events[0]["id"]
    again = spans_to_events(request, FEATURES).events[0]["id"]
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert first == again == f"{span.trace_id.hex()}:{span.span_id.hex()}"
    assert len(first) == 49
    trace_id, span_id = first.split(":")
    assert len(trace_id) == 32 and len(span_id) == 16


def test_absent_values_are_absent_keys():
    event = one_event(
        SpanSpec("chat", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"})
    )
    assert set(event) == {"id", "timestamp", "feature", "model", "status", "latency_ms", "metadata"}


def test_the_timestamp_is_the_start_in_utc_with_microseconds():
    event = one_event(replace(chat_span(), start_ns=1_796_205_600_123_456_789))
    assert event["timestamp"] == "2026-12-02T10:00:00.123456+00:00"


@pytest.mark.parametrize(
    ("duration_ms", "latency_ms"), [(0.4, 0), (0.5, 1), (1234.6, 1235), (0, 0), (-50, 0)]
)
def test_latency_is_end_minus_start_in_whole_milliseconds_never_negative(duration_ms, latency_ms):
    spec = replace(chat_span(), duration_ms=duration_ms)
    assert one_event(spec)["latency_ms"] == latency_ms


# --- which spans count -----------------------------------------------------------------------


@pytest.mark.parametrize("operation", sorted(INFERENCE_OPERATIONS))
def test_every_inference_operation_is_an_event(operation):
    spec = SpanSpec(
        f"{operation} m", {"gen_ai.operation.name": operation, "gen_ai.request.model": "m"}
    )
    assert one_event(spec)["metadata"]["otel"]["operation"] == operation


def test_agent_and_tool_spans_are_ignored_and_their_children_counted_once():
    agent = SpanSpec(
        "invoke_agent travel",
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.request.model": "gpt-4o",
            # An agent span carries the sums of its children: counting it counts twice.
            "gen_ai.usage.input_tokens": 240,
            "gen_ai.usage.output_tokens": 60,
        },
        children=[
            chat_span(),
            SpanSpec("execute_tool flights", {"gen_ai.operation.name": "execute_tool"}),
            chat_span(),
        ],
    )
    create = SpanSpec("create_agent travel", {"gen_ai.operation.name": "create_agent"})
    decoded = decode([create, agent])
    assert decoded.ignored == 3
    assert decoded.rejected == []
    assert [event["input_tokens"] for event in decoded.events] == [120, 120]


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"http.request.method": "POST", "url.full": "https://api.openai.com/v1/chat"},
        {"gen_ai.operation.name": "retrieval", "gen_ai.request.model": "m"},
        {"gen_ai.operation.name": "invoke_agent", "openinference.span.kind": "LLM"},
        {"openinference.span.kind": "AGENT", "llm.model_name": "m"},
        {"openinference.span.kind": "CHAIN", "llm.token_count.prompt": 5},
        {"openinference.span.kind": "TOOL"},
        {"openinference.span.kind": "RETRIEVER"},
        {"traceloop.span.kind": "workflow", "gen_ai.request.model": "m"},
        {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 5},  # no operation at all
    ],
)
def test_other_spans_are_ignored_silently(attributes):
    decoded = decode([SpanSpec("something", attributes)])
    assert decoded == DecodedSpans(events=[], rejected=[], ignored=1)


# --- names, old and new ----------------------------------------------------------------------


def test_the_names_before_semantic_conventions_1_37():
    event = one_event(
        SpanSpec(
            "chat claude",
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4",
                "gen_ai.usage.prompt_tokens": 50,
                "gen_ai.usage.completion_tokens": 20,
                "gen_ai.usage.cache_read_input_tokens": 10,
                "gen_ai.usage.cache_creation_input_tokens": 5,
                "gen_ai.usage.reasoning_tokens": 4,
            },
        )
    )
    assert event["provider"] == "anthropic"
    assert event["model"] == "claude-sonnet-4"
    assert (
        event["input_tokens"],
        event["output_tokens"],
        event["cache_read_input_tokens"],
        event["cache_write_input_tokens"],
        event["reasoning_tokens"],
    ) == (50, 20, 10, 5, 4)


def test_cache_write_under_its_cache_write_name_too():
    spec = chat_span(**{"gen_ai.usage.cache_write.input_tokens": 7})
    assert one_event(spec)["cache_write_input_tokens"] == 7


def test_the_current_name_wins_over_the_old_one():
    spec = chat_span(
        **{
            "gen_ai.provider.name": "azure.ai.openai",
            "gen_ai.system": "openai",
            "gen_ai.usage.prompt_tokens": 999,
            "gen_ai.usage.input_tokens": 10,
        }
    )
    event = one_event(spec)
    assert event["provider"] == "azure.ai.openai" and event["input_tokens"] == 10


def test_the_request_model_when_the_response_names_none_or_a_blank_one():
    assert one_event(chat_span("gpt-4o-mini"))["model"] == "gpt-4o-mini"
    blank = chat_span("gpt-4o-mini", **{"gen_ai.response.model": "  "})
    assert one_event(blank)["model"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("kind", "operation"), [("LLM", "llm"), ("EMBEDDING", "embedding"), ("llm", "llm")]
)
def test_openinference_llm_and_embedding_spans(kind, operation):
    event = one_event(
        SpanSpec(
            "ChatOpenAI",
            {
                "openinference.span.kind": kind,
                "llm.model_name": "gpt-4o",
                "llm.provider": "openai",
                "llm.system": "openai-compatible",
                "llm.token_count.prompt": 100,
                "llm.token_count.completion": 40,
                "llm.token_count.prompt_details.cache_read": 60,
                "llm.token_count.prompt_details.cache_write": 20,
                "llm.token_count.completion_details.reasoning": 10,
            },
        )
    )
    assert event["model"] == "gpt-4o"
    assert event["provider"] == "openai"
    assert (
        event["input_tokens"],
        event["output_tokens"],
        event["cache_read_input_tokens"],
        event["cache_write_input_tokens"],
        event["reasoning_tokens"],
    ) == (100, 40, 60, 20, 10)
    assert event["metadata"]["otel"]["operation"] == operation


def test_openinference_provider_falls_back_to_llm_system_and_embedding_model_name():
    event = one_event(
        SpanSpec(
            "embed",
            {
                "openinference.span.kind": "EMBEDDING",
                "embedding.model_name": "text-embedding-3-small",
                "llm.system": "openai",
            },
        )
    )
    assert event["model"] == "text-embedding-3-small" and event["provider"] == "openai"


def test_openllmetry_spans_without_an_operation_name():
    event = one_event(
        SpanSpec(
            "openai.chat",
            {
                "llm.request.type": "chat",
                "gen_ai.system": "OpenAI",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.prompt_tokens": 9,
            },
        )
    )
    assert event["model"] == "gpt-4o" and event["input_tokens"] == 9


# --- token values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "count"), [(42, 42), ("42", 42), (" 42 ", 42), (42.0, 42), (0, 0)]
)
def test_tokens_as_ints_integral_strings_or_integral_doubles(value, count):
    spec = chat_span(**{"gen_ai.usage.input_tokens": value})
    assert one_event(spec)["input_tokens"] == count


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (-3, "-3"),
        (1.5, "1.5"),
        (-1.0, "-1.0"),
        ("12.0", "'12.0'"),
        ("-4", "'-4'"),
        ("many", "'many'"),
        ("", "''"),
        (True, "True"),
        (2**31, "2147483648"),
        ([1, 2], "a list or bytes"),
    ],
)
def test_a_bad_token_count_rejects_the_span_naming_the_attribute(value, shown):
    spec = chat_span(**{"gen_ai.usage.cache_read.input_tokens": value})
    assert one_rejection(spec) == (
        "span 'chat gpt-4o': gen_ai.usage.cache_read.input_tokens must be a whole number "
        f"from 0 to 2147483647, not {shown}"
    )


def test_a_bad_value_under_an_old_name_is_named_as_sent():
    spec = SpanSpec(
        "chat",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m",
            "gen_ai.usage.completion_tokens": -1,
        },
    )
    assert one_rejection(spec) == (
        "span 'chat': gen_ai.usage.completion_tokens must be a whole number "
        "from 0 to 2147483647, not -1"
    )


# --- status ----------------------------------------------------------------------------------


def test_an_error_status_is_an_error_with_its_message():
    spec = replace(chat_span(), error="Rate limit reached for gpt-4o")
    event = one_event(spec)
    assert event["status"] == "error"
    assert event["error_message"] == "Rate limit reached for gpt-4o"


def test_the_error_type_when_the_status_has_no_message():
    spec = replace(chat_span(**{"error.type": "openai.RateLimitError"}), error="")
    event = one_event(spec)
    assert event["status"] == "error" and event["error_message"] == "openai.RateLimitError"


def test_an_error_type_alone_means_an_error():
    event = one_event(chat_span(**{"error.type": "timeout"}))
    assert event["status"] == "error" and event["error_message"] == "timeout"


def test_the_error_message_is_cut_to_2000_characters():
    spec = replace(chat_span(), error="x" * 5000)
    assert one_event(spec)["error_message"] == "x" * 2000


def test_a_success_has_no_error_message():
    assert "error_message" not in one_event(chat_span())


# --- feature ---------------------------------------------------------------------------------


def test_the_span_feature_wins_over_the_resource_and_the_service():
    resource = {"service.name": "chatbot", "aipm.feature": "ai-search"}
    spec = chat_span(**{"aipm.feature": "photo-tagging"})
    assert one_event(spec, resource)["feature"] == "photo-tagging"
    assert one_event(chat_span(), resource)["feature"] == "ai-search"
    assert one_event(chat_span(), {"service.name": "chatbot"})["feature"] == "chatbot"


def test_aipm_feature_is_taken_as_written_for_ingestion_to_check():
    spec = chat_span(**{"aipm.feature": "not-a-feature-yet"})
    assert one_event(spec)["feature"] == "not-a-feature-yet"


def test_a_service_that_is_no_feature_rejects_the_span():
    assert one_rejection(chat_span(), {"service.name": "checkout"}) == (
        "span 'chat gpt-4o' names no feature: service.name 'checkout' is not a feature; "
        "set aipm.feature or service.name to a feature name"
    )


def test_a_span_naming_no_feature_at_all_is_rejected():
    request = export_request([chat_span()], {})
    request.resource_spans[0].resource.ClearField("attributes")  # not even the SDK's default
    (rejection,) = spans_to_events(request, FEATURES).rejected
    assert rejection.reason == (
        "span 'chat gpt-4o' names no feature: set aipm.feature or service.name"
    )


def test_the_feature_of_each_resource():
    photo = export_request([chat_span("gpt-4o-mini")], {"service.name": "photo-tagging"})
    search = export_request([chat_span("gemini-2.5-flash")], {"aipm.feature": "ai-search"})
    photo.resource_spans.extend(search.resource_spans)
    events = spans_to_events(photo, FEATURES).events
    assert [(e["feature"], e["model"]) for e in events] == [
        ("photo-tagging", "gpt-4o-mini"),
        ("ai-search", "gemini-2.5-flash"),
    ]


# --- other rejections ------------------------------------------------------------------------


def test_a_span_without_a_model_is_rejected_with_its_ids():
    request = export_request(
        [SpanSpec("chat", {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 1})],
        CHATBOT,
    )
    span = request.resource_spans[0].scope_spans[0].spans[0]
    decoded = spans_to_events(request, FEATURES)
    assert decoded.rejected == [
        SpanRejection(
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            reason="span 'chat' names no model: set gen_ai.request.model",
        )
    ]


def test_a_model_that_is_not_text_is_rejected():
    reason = one_rejection(chat_span(**{"gen_ai.response.model": 4}))
    assert reason == "span 'chat gpt-4o': gen_ai.response.model must be text, not 4"


def test_spans_without_valid_ids_or_a_start_are_rejected():
    request = export_request([chat_span(), chat_span(), chat_span()], CHATBOT)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].trace_id = b"\0" * 16
    spans[1].span_id = b"\1" * 4
    spans[2].start_time_unix_nano = 0
    reasons = [r.reason for r in spans_to_events(request, FEATURES).rejected]
    assert reasons == [
        "span 'chat gpt-4o' has no valid trace id (16 bytes, not all zero)",
        "span 'chat gpt-4o' has no valid span id (8 bytes, not all zero)",
        "span 'chat gpt-4o' has no start time",
    ]


def test_a_refused_span_does_not_block_the_others():
    good, bad = chat_span(), chat_span(**{"gen_ai.usage.input_tokens": -1})
    decoded = decode([good, bad, good])
    assert len(decoded.events) == 2 and len(decoded.rejected) == 1


# --- prompt and metadata ---------------------------------------------------------------------


@pytest.mark.parametrize(("version", "expected"), [(2, 2), ("2", 2), (2.0, 2)])
def test_the_prompt_version_is_a_whole_number(version, expected):
    spec = chat_span(**{"gen_ai.prompt.name": "greeting", "gen_ai.prompt.version": version})
    assert one_event(spec)["prompt"] == {"name": "greeting", "version": expected}


def test_a_prompt_name_alone():
    assert one_event(chat_span(**{"gen_ai.prompt.name": "greeting"}))["prompt"] == {
        "name": "greeting"
    }


def test_a_prompt_version_without_a_name_is_no_prompt():
    assert "prompt" not in one_event(chat_span(**{"gen_ai.prompt.version": 3}))


def test_a_prompt_version_that_is_no_number_rejects_the_span():
    spec = chat_span(**{"gen_ai.prompt.name": "greeting", "gen_ai.prompt.version": "v2"})
    assert one_rejection(spec) == (
        "span 'chat gpt-4o': gen_ai.prompt.version must be a whole number "
        "(a version of the prompt), not 'v2'"
    )


def test_metadata_stays_small_with_long_names():
    spec = SpanSpec(
        "chat " + "n" * 10_000, {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}
    )
    event = one_event(spec, {"aipm.feature": "chatbot", "service.name": "s" * 10_000})
    otel = event["metadata"]["otel"]
    assert len(otel["span_name"]) == 256 and otel["span_name"].endswith("…")
    assert len(otel["service_name"]) == 256
    assert len(json.dumps(event["metadata"]).encode()) < 4096


# --- summary for partial_success -------------------------------------------------------------


def test_rejections_are_summarized_once_per_reason():
    reasons = ["span 'a' names no model", "span 'b' has no start time", "span 'a' names no model"]
    assert summarize_rejections(reasons) == (
        "3 spans rejected: span 'a' names no model (2 spans); span 'b' has no start time"
    )
    assert summarize_rejections(reasons[:1]) == "1 span rejected: span 'a' names no model"
    assert summarize_rejections([]) == ""
    long = summarize_rejections([f"reason {i}" for i in range(500)], max_chars=100)
    assert len(long) == 100 and long.endswith("…")
