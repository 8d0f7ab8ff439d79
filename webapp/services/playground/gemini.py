"""Google Gemini ``generateContent`` over HTTP (``httpx2``, the client the other SDKs use):
``streamGenerateContent?alt=sse`` streams candidates as server-sent events, the last one
carrying ``usageMetadata``. The key travels in ``x-goog-api-key``, never in the URL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx2

from webapp.services.playground.calls import (
    CallFailed,
    CallRequest,
    Deadline,
    Delta,
    Event,
    Finished,
    chosen,
    connection_failure,
    http_client,
    provider_message,
    refused_url,
    status_failure,
)

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"
NAMES = {
    "temperature": "temperature",
    "max_tokens": "maxOutputTokens",
    "top_p": "topP",
    "top_k": "topK",
    "stop": "stopSequences",
    "seed": "seed",
}


def _url(request: CallRequest) -> str:
    base = request.base_url.rstrip("/")
    if not base.endswith(f"/{API_VERSION}"):
        base += f"/{API_VERSION}"
    model = request.model if request.model.startswith("models/") else f"models/{request.model}"
    return f"{base}/{quote(model, safe='/')}:streamGenerateContent?alt=sse"


def call(request: CallRequest) -> Iterator[Event]:
    config = chosen(request.params, NAMES)
    if isinstance(config.get("stopSequences"), str):
        config["stopSequences"] = [config["stopSequences"]]
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": request.prompt}]}]}
    if config:
        body["generationConfig"] = config
    headers = {**request.headers, "x-goog-api-key": request.api_key}
    deadline = Deadline(request)
    try:
        with (
            http_client(request) as client,
            client.stream("POST", _url(request), json=body, headers=headers) as answer,
        ):
            if answer.status_code >= 400:
                answer.read()
                try:
                    error_body: Any = answer.json()
                except ValueError:
                    error_body = answer.text
                raise status_failure(
                    answer.status_code,
                    provider_message(error_body, answer.reason_phrase),
                    answer.headers.get("retry-after"),
                    request,
                )
            input_tokens = output_tokens = 0
            for line in answer.iter_lines():
                deadline.check()
                if not line.startswith("data:"):
                    continue
                try:
                    chunk = json.loads(line[5:].strip())
                except ValueError:
                    raise CallFailed("The provider's streamed answer could not be read.") from None
                for candidate in chunk.get("candidates") or []:
                    for part in (candidate.get("content") or {}).get("parts") or []:
                        if part.get("text") and not part.get("thought"):
                            yield Delta(part["text"])
                usage = chunk.get("usageMetadata")
                if usage:
                    input_tokens = int(usage.get("promptTokenCount") or 0)
                    output_tokens = int(usage.get("candidatesTokenCount") or 0) + int(
                        usage.get("thoughtsTokenCount") or 0
                    )
            yield Finished(input_tokens, output_tokens)
    except httpx2.TransportError as error:
        raise (refused_url(error) or connection_failure(error, request)) from None
