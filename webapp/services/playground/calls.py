"""Calling a model for the playground: what every protocol adapter takes and yields, the
failures in plain words, and the guarded HTTP client they all use.

An adapter (``openai_chat``, ``anthropic_messages``, ``gemini``) is a generator: it yields
``Delta`` pieces of the answer as the provider streams them, then one ``Finished`` with
the token counts the provider reported. Whatever goes wrong becomes ``CallFailed``
with the provider's HTTP status (None when no answer came), its own message and a
sentence the admin can act on; the API key never appears in it.

Outbound requests follow webapp/services/core/outbound.py: the URL's host is resolved and
every address checked (``ALLOW_PRIVATE_PROVIDER_URLS`` for self-hosted models) at each
request, and the connection goes to the very address checked (TLS still verifies the
name), redirects are not followed and proxies from the environment are not used.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2

from webapp.services.core.outbound import (
    OutboundFailed,
    OutboundRefused,
    parse_url,
    resolve,
)

# Parameters a run may set, by their common names; each adapter maps them to its API's.
PARAMETERS = ("temperature", "max_tokens", "top_p", "top_k", "stop", "seed")
DEFAULT_MAX_TOKENS = 1024  # Anthropic requires one; the others take it when given
MAX_MESSAGE = 1000  # characters of the provider's message kept


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finished:
    input_tokens: int
    output_tokens: int


Event = Delta | Finished


@dataclass(frozen=True, repr=False)
class CallRequest:
    """One call: the rendered prompt on one model with the merged parameters."""

    base_url: str
    api_key: str
    headers: Mapping[str, str]
    model: str
    model_type: str
    prompt: str
    params: Mapping[str, Any] = field(default_factory=dict)
    timeout_seconds: float = 60.0
    allow_private: bool = False
    extra_ports: frozenset[int] = frozenset()

    def __repr__(self) -> str:  # never the key
        return f"<CallRequest {self.model} at {self.base_url}>"


class CallFailed(Exception):
    """The provider did not answer the call. ``status``: its HTTP status (None when no
    answer came back), ``message``: its own words, ``reason``: what the admin reads."""

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        message: str | None = None,
        retry_after: str | None = None,
        kind: str = "provider_error",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.kind = kind

    def details(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "provider_status": self.status,
            "provider_message": self.message,
            "retry_after": self.retry_after,
        }


def scrub(text: str, secret: str) -> str:
    """``text`` without ``secret`` in it, cut to MAX_MESSAGE characters."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "[the API key]")
    return text[:MAX_MESSAGE]


def provider_message(body: Any, fallback: str = "") -> str:
    """The message in an error body as providers send it: ``{"error": {"message": …}}``
    (OpenAI, Anthropic, Gemini), ``{"message": …}``, ``{"error": "…"}`` or text."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            message = inner.get("message") or inner.get("detail")
            if message:
                return str(message)
        elif isinstance(inner, str) and inner:
            return inner
        if body.get("message"):
            return str(body["message"])
        if body.get("detail"):
            return str(body["detail"])
    if isinstance(body, str) and body.strip():
        return body.strip()
    return fallback


def status_failure(
    status: int, message: str, retry_after: str | None, request: CallRequest
) -> CallFailed:
    """An HTTP error answer in plain words."""
    message = scrub(message or "(no message)", request.api_key)
    if status == 401:
        reason = "The provider refused the API key (401): check the provider's credentials."
    elif status == 403:
        reason = "The API key may not use this model or endpoint (403)."
    elif status == 404:
        reason = f"The provider does not know the model {request.model} or this endpoint (404)."
    elif status == 429:
        wait = f" Retry after {retry_after} s." if retry_after else ""
        reason = f"The provider is rate limiting this key (429).{wait}"
    elif status >= 500:
        reason = f"The provider failed to answer ({status}); try again later."
    else:
        reason = f"The provider refused the request ({status})."
    return CallFailed(f"{reason} Provider says: {message}", status, message, retry_after)


def connection_failure(error: BaseException, request: CallRequest) -> CallFailed:
    """No answer: refused, timed out, TLS, DNS — named for the admin."""
    host = parse_url(request.base_url).host
    text = f"{type(error).__name__}: {error}".lower()
    if isinstance(error, httpx2.TimeoutException) or "timed out" in text or "timeout" in text:
        return CallFailed(
            f"No answer from {host} within {request.timeout_seconds:g} s "
            "(PROVIDER_CALL_TIMEOUT_SECONDS).",
            kind="timeout",
        )
    if "ssl" in text or "certificate" in text or "tls" in text:
        return CallFailed(
            f"The TLS connection to {host} failed (certificate or protocol): "
            f"{scrub(str(error), request.api_key)}",
            kind="tls_error",
        )
    if "refused" in text:
        return CallFailed(
            f"Could not connect to {host}: connection refused (is the server running and "
            "the API endpoint right?).",
            kind="connection_refused",
        )
    return CallFailed(
        f"Could not reach {host}: {scrub(str(error), request.api_key)}", kind="connection_error"
    )


class PinnedTransport(httpx2.BaseTransport):
    """Each request goes to an address of its host checked just before (see the module
    docstring); the Host header and the TLS server name keep the host's name."""

    def __init__(self, allow_private: bool, extra_ports: frozenset[int]) -> None:
        self._allow_private = allow_private
        self._extra_ports = extra_ports
        self._inner = httpx2.HTTPTransport(retries=0)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            target = parse_url(str(request.url))
            addresses = resolve(target, self._allow_private, self._extra_ports)
        except OutboundRefused as refused:
            raise UrlRefused(f"the API endpoint {refused.problem}") from None
        except OutboundFailed as failed:
            raise httpx2.ConnectError(f"{target.host}: {failed.error}", request=request) from None
        request.headers["Host"] = request.url.netloc.decode("ascii")
        request.extensions = {**request.extensions, "sni_hostname": target.host}
        request.url = request.url.copy_with(host=str(addresses[0]))
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class UrlRefused(httpx2.TransportError):
    """The endpoint's address is not allowed (private, metadata, …)."""


def http_client(request: CallRequest) -> httpx2.Client:
    return httpx2.Client(
        transport=PinnedTransport(request.allow_private, request.extra_ports),
        timeout=httpx2.Timeout(request.timeout_seconds),
        follow_redirects=False,
        trust_env=False,
    )


def refused_url(error: BaseException) -> CallFailed | None:
    """The CallFailed of a refused endpoint found anywhere in ``error``'s causes."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, UrlRefused):
            return CallFailed(str(seen), kind="url_not_allowed")
        seen = seen.__cause__ or seen.__context__
    return None


class Deadline:
    """One deadline for the whole call: a server trickling tokens cannot hold a run
    longer than the timeout (each read's own timeout would restart)."""

    def __init__(self, request: CallRequest) -> None:
        self._request = request
        self._ends = time.monotonic() + request.timeout_seconds

    def check(self) -> None:
        if time.monotonic() > self._ends:
            raise CallFailed(
                f"No complete answer from {parse_url(self._request.base_url).host} within "
                f"{self._request.timeout_seconds:g} s (PROVIDER_CALL_TIMEOUT_SECONDS).",
                kind="timeout",
            )


def chosen(params: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """The run's parameters under the API's names (``names``: ours → theirs)."""
    return {
        names[key]: value for key, value in params.items() if key in names and value is not None
    }


@contextmanager
def sdk_failures(sdk: Any, request: CallRequest) -> Iterator[None]:
    """The OpenAI and Anthropic SDKs (generated alike: ``APIStatusError``,
    ``APIConnectionError``, ``APIError``) raise the same kinds of failure; each becomes a
    ``CallFailed`` in plain words with the provider's own message."""
    try:
        yield
    except sdk.APIStatusError as error:
        retry_after = error.response.headers.get("retry-after")
        raise status_failure(
            error.status_code, provider_message(error.body, error.message), retry_after, request
        ) from None
    except sdk.APIConnectionError as error:
        raise (
            refused_url(error) or connection_failure(error.__cause__ or error, request)
        ) from None
    except httpx2.TransportError as error:  # while reading a streamed answer
        raise (refused_url(error) or connection_failure(error, request)) from None
    except sdk.APIError as error:
        raise CallFailed(f"The provider's answer could not be read: {error.message}") from None
