"""A live console for the client's tests: the test app served over real HTTP by werkzeug
in a thread (on a free port), behind a small WSGI layer that can make the console fail on
purpose, and servers that hang or trickle."""

from __future__ import annotations

import http.cookiejar
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from tests.conftest import PASSWORD

ADMIN_API = "/api/platform/ai-management"


@dataclass
class Seen:
    """One request the console received, and what it answered."""

    method: str
    path: str
    at: float
    status: int = 0
    event_ids: list[str] = field(default_factory=list)


@dataclass
class Fault:
    """Answer ``status`` (with ``headers``) to the next request to ``path``; ``after``:
    let the console handle it first (it stores the batch) and lose its answer."""

    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    after: bool = False


class Faults:
    """WSGI middleware in front of the console."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.planned: deque[Fault] = deque()
        self.down = False  # every request answers 503
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    def plan(self, *faults: Fault) -> None:
        self.planned.extend(faults)

    def requests(self, path: str) -> list[Seen]:
        with self.lock:
            return [seen for seen in self.seen if seen.path == path]

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        seen = Seen(environ["REQUEST_METHOD"], path, time.monotonic())
        if path == "/api/v1/usage":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            seen.event_ids = [event.get("id") for event in json.loads(body).get("events", [])]
            environ["wsgi.input"] = _Body(body)
        with self.lock:
            self.seen.append(seen)
            fault = next((f for f in self.planned if f.path == path), None)
            if fault is not None:
                self.planned.remove(fault)
        if self.down and fault is None:
            fault = Fault(path, 503, {"Retry-After": "1"})
        if fault is not None and fault.after:
            list(self.app(environ, lambda *args, **kwargs: None))
        if fault is not None:
            seen.status = fault.status
            payload = json.dumps({"success": False, "error": "injected", "code": "injected"})
            start_response(
                f"{fault.status} Injected",
                [("Content-Type", "application/json"), *fault.headers.items()],
            )
            return [payload.encode()]

        def recording_start(status: str, headers: list[Any], *args: Any) -> Any:
            seen.status = int(status.split()[0])
            return start_response(status, headers, *args)

        return self.app(environ, recording_start)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size is None or size < 0 else self.offset + size
        chunk, self.offset = self.data[self.offset : end], min(end, len(self.data))
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


class LiveConsole:
    def __init__(self, app: Flask) -> None:
        self.faults = Faults(app)
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self.faults, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    def stop(self) -> None:
        """Stop listening: connections are then refused."""
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.running = False


class SlowServer:
    """Accepts connections and answers too slowly: ``trickle`` sends a status line and
    then one header byte every ``interval`` seconds for ever; otherwise it says nothing."""

    def __init__(self, trickle: bool, interval: float = 0.1) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.trickle, self.interval = trickle, interval
        self.stopped = threading.Event()
        self.bytes_sent = 0
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                if self.trickle:
                    connection.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self.stopped.wait(self.interval):
                    if self.trickle:
                        connection.sendall(b"X")
                        self.bytes_sent += 1
            except OSError:
                return

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class AdminSession:
    """An admin signed in to the live console over HTTP with a cookie jar, as a browser
    is: the login form with its CSRF token, then the admin JSON API with X-CSRFToken."""

    def __init__(self, base_url: str, email: str, password: str = PASSWORD) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        token = self._token("/login")
        form = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token})
        with self.opener.open(f"{base_url}/login", data=form.encode()) as answer:
            assert "/login" not in answer.url, "the admin could not sign in"
        self.csrf = self._token("/")

    def _token(self, path: str) -> str:
        with self.opener.open(self.base_url + path) as page:
            match = CSRF_META.search(page.read().decode())
        assert match, f"no csrf-token on {path}"
        return match.group(1)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{self.base_url}{ADMIN_API}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-CSRFToken": self.csrf},
        )
        try:
            with self.opener.open(request) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        status, answer = self.call(method, path, body)
        assert status in (200, 201), (status, answer)
        return answer


class FakeClock:
    """The client's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
