"""Anthropic's Messages API on the official ``anthropic`` SDK (streamed: the input tokens
arrive in ``message_start``, the output tokens in ``message_delta``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic

from webapp.services.playground.calls import (
    DEFAULT_MAX_TOKENS,
    CallRequest,
    Deadline,
    Delta,
    Event,
    Finished,
    chosen,
    http_client,
    sdk_failures,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
NAMES = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "top_p": "top_p",
    "top_k": "top_k",
    "stop": "stop_sequences",
}


def call(request: CallRequest) -> Iterator[Event]:
    params = chosen(request.params, NAMES)
    max_tokens = params.pop("max_tokens", DEFAULT_MAX_TOKENS)
    stop = params.pop("stop_sequences", None)
    typed: dict[str, object] = {"stop_sequences": [stop] if isinstance(stop, str) else stop}
    # This SDK's signature no longer lists the sampling parameters: they travel in the
    # body as the Messages API reads them.
    extra_body = params or None
    deadline = Deadline(request)
    with http_client(request) as transport:
        client = anthropic.Anthropic(
            api_key=request.api_key,
            base_url=request.base_url,
            default_headers=dict(request.headers),
            timeout=request.timeout_seconds,
            max_retries=0,
            http_client=transport,
        )
        with sdk_failures(anthropic, request):
            arguments: dict[str, Any] = {
                "model": request.model,
                "messages": [{"role": "user", "content": request.prompt}],
                "max_tokens": max_tokens,
                "stream": True,
                "extra_body": extra_body,
                **{key: value for key, value in typed.items() if value is not None},
            }
            stream = client.messages.create(**arguments)
            input_tokens = output_tokens = 0
            with stream:
                for event in stream:
                    deadline.check()
                    if event.type == "message_start":
                        usage = event.message.usage
                        input_tokens = usage.input_tokens or 0
                        output_tokens = usage.output_tokens or 0
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        yield Delta(event.delta.text)
                    elif event.type == "message_delta" and event.usage is not None:
                        output_tokens = event.usage.output_tokens or output_tokens
            yield Finished(input_tokens, output_tokens)
