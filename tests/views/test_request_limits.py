"""Request bodies: limited before anything reads them, and never read for anonymous
callers of protected addresses (issue 12, item 1)."""

from __future__ import annotations

import io

import pytest
from flask import Flask

from tests.conftest import csrf_token
from webapp import create_app
from webapp.auth import public
from webapp.request_limits import accepts_request_bytes

API = "/api/platform/ai-management"


class CountingStream(io.RawIOBase):
    """A client body of ``total`` bytes that counts how much of it the server read."""

    def __init__(self, total: int, byte: bytes = b" ") -> None:
        self.total = total
        self.read_bytes = 0
        self.byte = byte

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.total - self.read_bytes)
        buffer[:count] = self.byte * count
        self.read_bytes += count
        return count


def send(client, url, stream, *, length=None, headers=None, method="POST"):
    """POST ``stream`` as JSON; without ``length`` it is a chunked body, as a server that
    terminates the input stream (gunicorn) hands it over."""
    environ = {"wsgi.input": stream, "wsgi.input_terminated": True}
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    return client.open(
        url,
        method=method,
        content_type="application/json",
        headers=headers or {},
        environ_overrides=environ,
    )


@pytest.fixture
def small_limit(app, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_REQUEST_BYTES", 4096)
    return 4096


@pytest.mark.parametrize("url", [f"{API}/features", "/features/new", "/no-such-page", "/login"])
def test_a_declared_length_over_the_limit_is_413_before_any_byte_is_read(client, url):
    stream = CountingStream(300 * 1024 * 1024)
    response = send(client, url, stream, length=stream.total)
    assert response.status_code == 413
    assert stream.read_bytes == 0
    if url.startswith("/api/"):
        body = response.get_json()
        assert body["success"] is False and body["error"] == "Request too large"
        assert "1 MiB" in body["details"]
    else:
        assert "Request too large" in response.get_data(as_text=True)


def test_a_chunked_body_stops_at_the_limit_with_413(admin_client, small_limit):
    stream = CountingStream(10 * 1024 * 1024)
    token = {"X-CSRFToken": csrf_token(admin_client, "/")}
    response = send(admin_client, f"{API}/features", stream, headers=token)
    assert response.status_code == 413
    assert response.get_json()["details"] == "The request body must be at most 4 KiB."
    assert stream.read_bytes <= small_limit + 1  # one byte past the limit, never more


def test_a_chunked_body_of_exactly_the_limit_is_read_whole(admin_client, small_limit):
    body = b'{"name": "summaries", "display_name": "Summaries"}'
    padded = body + b" " * (small_limit - len(body))
    token = {"X-CSRFToken": csrf_token(admin_client, "/")}
    response = send(admin_client, f"{API}/features", io.BytesIO(padded), headers=token)
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize("length", [None, 512 * 1024])
def test_anonymous_bodies_to_protected_addresses_are_never_read(client, length):
    stream = CountingStream(512 * 1024, byte=b"\x00")
    response = send(client, f"{API}/features", stream, length=length)
    assert response.status_code == 401
    assert stream.read_bytes == 0


def test_a_viewers_refused_write_is_not_read(viewer_client):
    stream = CountingStream(512 * 1024)
    token = {"X-CSRFToken": csrf_token(viewer_client, "/")}
    response = send(viewer_client, f"{API}/features", stream, length=stream.total, headers=token)
    assert response.status_code == 403
    assert stream.read_bytes == 0


def test_a_view_may_accept_larger_bodies(app: Flask):
    own = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key-not-for-production",
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "MAX_REQUEST_BYTES": 1024,
            "WTF_CSRF_ENABLED": False,
        }
    )

    @own.post("/ingest-test")
    @public
    @accepts_request_bytes(8192)
    def ingest_test():
        from flask import request

        return {"read": len(request.get_data())}

    client = own.test_client()
    assert client.post("/ingest-test", data=b"x" * 8192).get_json() == {"read": 8192}
    assert client.post("/ingest-test", data=b"x" * 8193).status_code == 413
    assert client.post("/login", data=b"x" * 1025).status_code == 413
