"""One HTTP exchange with the console under a hard total deadline (standard library only).

A socket timeout bounds each ``recv``, not the exchange: a server that trickles one byte
every second would hold ``http.client`` for ever under a 2-second timeout. Here the
connected socket is wrapped so that every send and every receive first sets the socket's
timeout to the time left until the deadline (and fails at once when none is left), so
request, status line, headers and body end by the deadline. Before that:

- the name lookup (``getaddrinfo``, which no socket timeout bounds: the resolver may wait
  for seconds) runs in a short-lived thread the call waits for only until the deadline
  (an address literal is not looked up);
- each address is tried with the time left, not a fresh timeout each;
- the TLS handshake runs with the socket's timeout set to the time left when it starts
  (each of its few round trips is bounded by that, not their sum).
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aipm_client.errors import ConsoleUnavailable

USER_AGENT = "aipm-client-python/0.1.0"
MAX_BODY_BYTES = 16 * 1024 * 1024


class DeadlineExceeded(TimeoutError):
    """The exchange reached its deadline."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes

    def json(self) -> dict[str, Any]:
        """The JSON object of the body, or {} when there is none (or it is not JSON)."""
        if not self.body:
            return {}
        try:
            document = json.loads(self.body)
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(_left(self._deadline))
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """The parts of a socket ``http.client`` uses, each bounded by the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self._sock.settimeout(_left(self._deadline))
            sent = self._sock.send(view)
            view = view[sent:]

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        # http.client closes the connection as soon as it has the headers of a
        # ``Connection: close`` answer, before the body is read; a real socket stays open
        # while its file is. ``Transport.request`` closes the socket itself (``shut``).
        pass

    def shut(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("deadline reached")
    return left


AddressInfo = tuple[Any, ...]  # one entry of socket.getaddrinfo


def resolve(host: str, port: int, deadline: float) -> list[AddressInfo]:
    """``getaddrinfo`` for a TCP connection, given up at the deadline."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # an address: nothing to look up
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    found: list[list[AddressInfo]] = []
    failed: list[OSError] = []

    def look_up() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as error:
            failed.append(error)

    worker = threading.Thread(target=look_up, name="aipm-client-resolve", daemon=True)
    try:
        worker.start()
    except RuntimeError:  # no new thread at interpreter shutdown: look up inline
        look_up()
    else:
        worker.join(_left(deadline))
    if failed:
        raise failed[0]
    if not found:
        raise DeadlineExceeded(f"the name lookup of {host} did not end in time")
    return found[0]


def connect_by(deadline: float) -> Any:
    """A ``create_connection`` for ``http.client`` that keeps to ``deadline``: the lookup
    and every address tried share the time left."""

    def create_connection(
        address: tuple[str, int], timeout: Any = None, source_address: Any = None
    ) -> socket.socket:
        host, port = address
        last: OSError | None = None
        for family, kind, proto, _, target in resolve(host, port, deadline):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(_left(deadline))
                if source_address:
                    sock.bind(source_address)
                sock.connect(target)
                return sock
            except OSError as error:
                sock.close()
                if isinstance(error, TimeoutError):
                    raise
                last = error
        raise last or OSError(f"{host} has no address")

    return create_connection


class Transport:
    """Requests to one console with one API key. Thread-safe: a connection per request
    (applications read their configuration rarely; usage goes in batches)."""

    def __init__(
        self, base_url: str, api_key: str, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        if not api_key:
            raise ValueError("api_key is required (aipm_…)")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path
        self._authorization = f"Bearer {api_key}"
        self._ssl_context = ssl_context or (
            ssl.create_default_context() if parts.scheme == "https" else None
        )

    def request(
        self,
        method: str,
        path: str,
        timeout: float,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """The console's answer, whatever its status; ``ConsoleUnavailable`` when it could
        not be had within ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        sent_headers = {
            "Authorization": self._authorization,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Connection": "close",
            **(headers or {}),
        }
        payload = None
        if body is not None:
            payload = json.dumps(body, separators=(",", ":"), default=str).encode()
            sent_headers["Content-Type"] = "application/json"
        connection = self._connection(timeout)
        connection._create_connection = connect_by(deadline)  # type: ignore[attr-defined]
        wrapped: _DeadlineSocket | None = None
        try:
            connection.connect()
            wrapped = _DeadlineSocket(connection.sock, deadline)
            connection.sock = wrapped
            connection.request(method, self.prefix + path, body=payload, headers=sent_headers)
            response = connection.getresponse()
            data = response.read(MAX_BODY_BYTES + 1)
            if len(data) > MAX_BODY_BYTES:
                raise ConsoleUnavailable(f"{method} {path}: the answer is larger than 16 MiB")
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        except TimeoutError:  # the deadline, or a socket timeout (set to the time left)
            raise ConsoleUnavailable(
                f"{method} {path}: no complete answer within {timeout:g} s"
            ) from None
        except (OSError, http.client.HTTPException) as error:
            raise ConsoleUnavailable(f"{method} {path}: {type(error).__name__}: {error}") from None
        finally:
            connection.close()
            if wrapped is not None:
                wrapped.shut()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=self._ssl_context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
