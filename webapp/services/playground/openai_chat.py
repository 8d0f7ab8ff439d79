"""OpenAI-compatible Chat Completions and Embeddings on the official ``openai`` SDK: OpenAI
itself, Azure OpenAI's v1 endpoint, vLLM, Ollama, LiteLLM, OpenRouter and every server that
speaks the same API at its ``api_endpoint``."""

from __future__ import annotations

from collections.abc import Iterator

import openai

from webapp.services.playground.calls import (
    CallRequest,
    Deadline,
    Delta,
    Event,
    Finished,
    chosen,
    http_client,
    sdk_failures,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
NAMES = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "top_p": "top_p",
    "stop": "stop",
    "seed": "seed",
}


def call(request: CallRequest) -> Iterator[Event]:
    """Stream a chat completion (usage in the last chunk), or embed the prompt for an
    embedding model (the answer is the vector's size and first values)."""
    with http_client(request) as transport:
        client = openai.OpenAI(
            api_key=request.api_key,
            base_url=request.base_url,
            default_headers=dict(request.headers),
            timeout=request.timeout_seconds,
            max_retries=0,  # a retry costs money: the admin decides
            http_client=transport,
        )
        with sdk_failures(openai, request):
            if request.model_type == "embedding":
                yield from _embed(client, request)
            else:
                yield from _chat(client, request)


def _chat(client: openai.OpenAI, request: CallRequest) -> Iterator[Event]:
    deadline = Deadline(request)
    stream = client.chat.completions.create(
        model=request.model,
        messages=[{"role": "user", "content": request.prompt}],
        stream=True,
        stream_options={"include_usage": True},
        **chosen(request.params, NAMES),
    )
    input_tokens = output_tokens = 0
    with stream:
        for chunk in stream:
            deadline.check()
            for choice in chunk.choices:
                text = choice.delta.content if choice.delta else None
                if text:
                    yield Delta(text)
            if chunk.usage is not None:
                input_tokens = chunk.usage.prompt_tokens or 0
                output_tokens = chunk.usage.completion_tokens or 0
    yield Finished(input_tokens, output_tokens)


def _embed(client: openai.OpenAI, request: CallRequest) -> Iterator[Event]:
    answer = client.embeddings.create(model=request.model, input=request.prompt)
    vector = answer.data[0].embedding if answer.data else []
    head = ", ".join(f"{value:.4f}" for value in vector[:8])
    yield Delta(f"{len(vector)} dimensions: [{head}{', …' if len(vector) > 8 else ''}]")
    yield Finished(answer.usage.prompt_tokens if answer.usage else 0, 0)
