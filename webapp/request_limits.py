"""How much of a request body the console reads, decided before anything reads it.

Every request body is limited to ``MAX_REQUEST_BYTES`` (1 MiB by default) unless its view
asks for more with ``@accepts_request_bytes(...)``. A declared ``Content-Length`` above the
limit is answered ``413`` at once, before the sign-in check and before any byte is read;
a body without one (chunked) is read through ``BodyLimitStream``, which stops with
``413`` at the first byte past the limit. Anonymous requests to protected addresses
are answered by the sign-in guard before their body is parsed (see ``webapp.auth``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from flask.wrappers import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

View = TypeVar("View", bound=Callable[..., Any])


def accepts_request_bytes(limit: int) -> Callable[[View], View]:
    """Let one view accept bodies up to ``limit`` bytes (e.g. ingestion batches)."""

    def mark(view: View) -> View:
        view.max_request_bytes = limit  # type: ignore[attr-defined]
        return view

    return mark


def request_byte_limit() -> int:
    """The body limit of the current request's view, or the application's default."""
    default: int = current_app.config["MAX_REQUEST_BYTES"]
    if request.endpoint is None:
        return default
    view = current_app.view_functions.get(request.endpoint)
    return getattr(view, "max_request_bytes", default)


def describe_bytes(count: int) -> str:
    if count >= 1024 * 1024 and count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MiB"
    if count >= 1024 and count % 1024 == 0:
        return f"{count // 1024} KiB"
    return f"{count} bytes"


def too_large(limit: int) -> RequestEntityTooLarge:
    return RequestEntityTooLarge(f"The request body must be at most {describe_bytes(limit)}.")


class BodyLimitStream(LimitedStream):
    """werkzeug's LimitedStream with a maximum stops *silently* once it has read exactly
    its limit (a larger chunked body arrives truncated). This one reads at most one byte
    past ``limit`` and answers 413 when that byte exists."""

    def __init__(self, stream: Any, limit: int) -> None:
        super().__init__(stream, limit + 1, is_max=True)
        self.max_bytes = limit

    def readinto(self, b: bytearray) -> int | None:  # type: ignore[override]
        count = super().readinto(b)
        if self.tell() > self.max_bytes:
            raise too_large(self.max_bytes)
        return count


class LimitedRequest(Request):
    @cached_property
    def stream(self) -> Any:
        limit = self.max_content_length
        if (
            limit is not None
            and self.content_length is None
            and "wsgi.input_terminated" in self.environ
        ):
            return BodyLimitStream(self.environ["wsgi.input"], limit)
        return super().stream  # Content-Length known: checked before, read up to it


def limit_request_body() -> None:
    limit = request_byte_limit()
    # Flask 3.1: the per-request limit that werkzeug's input stream enforces, also for
    # bodies without Content-Length (the stream raises 413 once it passes the limit).
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)


def init_app(app: Flask) -> None:
    app.request_class = LimitedRequest
    # Registered before the sign-in guard: the size is known from the headers alone.
    app.before_request(limit_request_body)
