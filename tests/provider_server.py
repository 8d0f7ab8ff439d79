"""A local HTTP server that speaks the three provider protocols as the providers send them,
for the official SDKs to talk to through their ``base_url``:

- OpenAI Chat Completions (``POST /v1/chat/completions``, plain and SSE with the usage
  chunk of ``stream_options.include_usage`` and ``data: [DONE]``) and Embeddings;
- Anthropic Messages (``POST /v1/messages``, plain and the named SSE events
  message_start / content_block_* / ping / message_delta / message_stop);
- Gemini ``generateContent`` and ``streamGenerateContent?alt=sse``.

The model name chooses the behaviour: ``fail-401`` (also 403, 404, 429 with Retry-After,
500, 503) answers that status with the provider's own error body; ``slow`` waits before
each piece; anything else answers ``ANSWER`` in pieces. Every request is kept in
``requests`` (path, headers, JSON body) for the tests to look at.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER_PIECES = ["Hello", ", Ada", "! How", " can I help?"]
ANSWER = "".join(ANSWER_PIECES)
INPUT_TOKENS = 12
OUTPUT_TOKENS = 9
PROVIDER_MESSAGES = {
    401: "Incorrect API key provided.",
    403: "Your key may not use this model.",
    404: "The model does not exist.",
    429: "Rate limit reached for requests.",
    500: "The server had an error while processing your request.",
    503: "The engine is currently overloaded.",
}


class ProviderServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, piece_delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.piece_delay = piece_delay

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> ProviderServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # streamed bodies end when the connection closes
    server: ProviderServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.path.startswith("/v1/chat/completions"):
            self._openai_chat(body)
        elif self.path.startswith("/v1/embeddings"):
            self._openai_embeddings(body)
        elif self.path.startswith("/v1/messages"):
            self._anthropic(body)
        elif match := re.match(r"^/v1beta/models/([^:]+):(\w+)", self.path):
            self._gemini(match.group(1), match.group(2))
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    # --- helpers -------------------------------------------------------------------------

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _failure(self, model: str, shape: str) -> bool:
        match = re.match(r"^fail-(\d{3})$", model)
        if not match:
            return False
        status = int(match.group(1))
        message = PROVIDER_MESSAGES.get(status, "failed")
        headers = {"Retry-After": "7"} if status == 429 else {}
        if shape == "anthropic":
            kind = {401: "authentication_error", 429: "rate_limit_error"}.get(status, "api_error")
            body: Any = {"type": "error", "error": {"type": kind, "message": message}}
        elif shape == "gemini":
            body = {"error": {"code": status, "message": message, "status": "FAILED"}}
        else:
            body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
        self._json(status, body, headers)
        return True

    def _sse_start(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _send(self, text: str, slow: bool) -> None:
        if slow:
            time.sleep(1.0)
        elif self.server.piece_delay:
            time.sleep(self.server.piece_delay)
        self.wfile.write(text.encode())
        self.wfile.flush()

    # --- OpenAI --------------------------------------------------------------------------

    def _openai_chat(self, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        if self._failure(model, "openai"):
            return
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}
        if not body.get("stream"):
            self._json(
                200,
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": ANSWER},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": INPUT_TOKENS,
                        "completion_tokens": OUTPUT_TOKENS,
                        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
                    },
                },
            )
            return
        slow = model == "slow"
        self._sse_start()
        first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        self._send(f"data: {json.dumps({**base, 'choices': [first]})}\n\n", False)
        for piece in ANSWER_PIECES:
            choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            self._send(f"data: {json.dumps({**base, 'choices': [choice]})}\n\n", slow)
        done = {"index": 0, "delta": {}, "finish_reason": "stop"}
        self._send(f"data: {json.dumps({**base, 'choices': [done]})}\n\n", False)
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "prompt_tokens": INPUT_TOKENS,
                "completion_tokens": OUTPUT_TOKENS,
                "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
            }
            self._send(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n", False)
        self._send("data: [DONE]\n\n", False)

    def _openai_embeddings(self, body: dict[str, Any]) -> None:
        if self._failure(body.get("model", ""), "openai"):
            return
        vector = [round(0.01 * i, 4) for i in range(16)]
        self._json(
            200,
            {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": vector}],
                "model": body.get("model"),
                "usage": {"prompt_tokens": INPUT_TOKENS, "total_tokens": INPUT_TOKENS},
            },
        )

    # --- Anthropic -----------------------------------------------------------------------

    def _anthropic(self, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        if self._failure(model, "anthropic"):
            return
        message = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1},
        }
        if not body.get("stream"):
            message |= {
                "content": [{"type": "text", "text": ANSWER}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS},
            }
            self._json(200, message)
            return
        slow = model == "slow"

        def event(name: str, data: dict[str, Any], wait: bool = False) -> None:
            self._send(f"event: {name}\ndata: {json.dumps(data)}\n\n", wait)

        self._sse_start()
        event("message_start", {"type": "message_start", "message": message})
        event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        event("ping", {"type": "ping"})
        for piece in ANSWER_PIECES:
            event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
                slow,
            )
        event("content_block_stop", {"type": "content_block_stop", "index": 0})
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": OUTPUT_TOKENS},
            },
        )
        event("message_stop", {"type": "message_stop"})

    # --- Gemini --------------------------------------------------------------------------

    def _gemini(self, model: str, method: str) -> None:
        if self._failure(model, "gemini"):
            return

        def chunk(text: str, usage: bool) -> dict[str, Any]:
            data: dict[str, Any] = {
                "candidates": [
                    {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
                ],
                "modelVersion": model,
            }
            if usage:
                data["candidates"][0]["finishReason"] = "STOP"
                data["usageMetadata"] = {
                    "promptTokenCount": INPUT_TOKENS,
                    "candidatesTokenCount": OUTPUT_TOKENS,
                    "totalTokenCount": INPUT_TOKENS + OUTPUT_TOKENS,
                }
            return data

        if method == "generateContent":
            self._json(200, chunk(ANSWER, True))
            return
        slow = model == "slow"
        self._sse_start()
        for index, piece in enumerate(ANSWER_PIECES):
            last = index == len(ANSWER_PIECES) - 1
            self._send(f"data: {json.dumps(chunk(piece, last))}\r\n\r\n", slow)
