"""The SSRF guard on provider URLs (webapp/services/core/outbound.py): refused at save time with
a 400 naming the field, refused again at check time (DNS can change), the checked address
is the one connected to, redirects are not followed and only generic error classes are
stored. A real HTTP server on 127.0.0.1 plays the provider (allowed only with
ALLOW_PRIVATE_PROVIDER_URLS on)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from tests import factories
from tests.conftest import csrf_token
from webapp.extensions import db as _db
from webapp.models import Provider, ProviderHealthLog
from webapp.services.core import outbound
from webapp.services.health import provider_health as ph

API = "/api/platform/ai-management"

# The list, and other spellings of the same places.
INTERNAL_URLS = [
    "http://127.0.0.1/",
    "http://localhost:8080/health",
    "http://api.localhost/",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[fd00:ec2::254]/",
    "http://10.0.0.1:6379/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://017700000001/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://192.168.1.10/",
    "http://172.16.0.1/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
]
# Still refused with ALLOW_PRIVATE_PROVIDER_URLS on: metadata, link-local, multicast, …
ALWAYS_REFUSED = {
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[fd00:ec2::254]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://[64:ff9b::a9fe:a9fe]/",
}


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_addresses_are_refused_at_save_time(url):
    assert outbound.url_problem(url, allow_private=False) is not None
    allowed_with_setting = outbound.url_problem(url, allow_private=True) is None
    assert allowed_with_setting == (url not in ALWAYS_REFUSED)


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass@example.com/",
        "http://user@example.com/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://example.com:99999/",
        "http://example.com:0/",
        "http:///path",
        "http://exa mple.com/",
    ],
)
def test_malformed_urls_and_credentials_are_refused_in_every_mode(url):
    assert outbound.url_problem(url, allow_private=True) is not None


def test_a_public_address_and_an_unresolvable_name_may_be_saved():
    assert outbound.url_problem("https://93.184.216.34/status", allow_private=False) is None
    # It may only resolve where the checks run; the check resolves it again each time.
    assert outbound.url_problem("https://status.invalid/", allow_private=False) is None


# --- a real local server ------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_GET(self):
        Handler.seen.append((self.path, self.headers.get("Host")))
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/ok" if self.path == "/redirect" else "ftp://x/")
            self.end_headers()
            return
        code = 503 if self.path == "/fail" else 200
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"Redis 7.2 banner: secret internal text")

    def log_message(self, *args):
        pass


def _serve(httpd) -> threading.Thread:
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def server() -> Iterator[str]:
    Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = _serve(httpd)
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def raw_server() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server that answers with whatever the test puts in ``script`` (a banner,
    or headers trickled byte by byte)."""
    script: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                for chunk in script:
                    try:
                        conn.sendall(chunk)
                    except OSError:
                        break
                    if len(chunk) == 1:
                        time.sleep(0.1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield listener.getsockname()[1], script
    stop.set()
    listener.close()
    thread.join(5)


def test_without_the_setting_a_local_server_is_refused_at_check_time(server):
    result = ph.run_http_check(f"{server}/ok", 2, allow_private=False)
    assert not result.ok and result.error == "address not allowed"
    assert Handler.seen == []  # not even connected to
    assert ph.run_http_check(f"{server}/ok", 2, allow_private=True).ok


def test_a_name_that_now_resolves_inside_is_refused_at_check_time(server, monkeypatch):
    """Saved while it resolved to a public address, then DNS changed (rebinding)."""
    port = server.rsplit(":", 1)[1]
    url = f"http://status.provider.test:{port}/ok"
    answer = {"address": "93.184.216.34"}

    def fake_getaddrinfo(host, port, *args, **kwargs):
        assert host == "status.provider.test"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer["address"], port))]

    monkeypatch.setattr(outbound.socket, "getaddrinfo", fake_getaddrinfo)
    ports = frozenset({int(port)})  # a public host on another port than 80/443 needs it
    assert outbound.url_problem(url, allow_private=False, extra_ports=ports) is None
    answer["address"] = "127.0.0.1"
    assert outbound.url_problem(url, allow_private=False, extra_ports=ports) is not None
    result = ph.run_http_check(url, 2, allow_private=False, extra_ports=ports)
    assert not result.ok and result.error == "address not allowed"
    assert Handler.seen == []


def test_the_checked_address_is_the_one_connected_to(server, monkeypatch):
    """One resolution per check: the connection goes to that address, with the name in
    the Host header; a second lookup (at connect time) would get a refused address."""
    port = int(server.rsplit(":", 1)[1])
    answers = iter(["127.0.0.1", "169.254.169.254"])
    calls = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(outbound.socket, "getaddrinfo", fake_getaddrinfo)
    result = ph.run_http_check(f"http://models.internal.test:{port}/ok", 2, allow_private=True)
    assert result.ok and result.status_code == 200
    assert calls == ["models.internal.test"]
    assert Handler.seen == [("/ok", f"models.internal.test:{port}")]


@pytest.mark.parametrize("path", ["/redirect", "/redirect-ftp"])
def test_a_redirect_is_not_followed(server, path):
    result = ph.run_http_check(f"{server}{path}", 2, allow_private=True)
    assert not result.ok and result.status_code == 302
    assert result.error == "HTTP 302 (redirect not followed)"
    assert [seen for seen, _ in Handler.seen] == [path]


def test_errors_are_generic_classes_never_the_remote_text(server, raw_server):
    port, script = raw_server
    failed = ph.run_http_check(f"{server}/fail", 2, allow_private=True)
    assert failed.error == "HTTP 503"
    script.append(b"SSH-2.0-OpenSSH_9.6 internal-host-42\r\n")
    banner = ph.run_http_check(f"http://127.0.0.1:{port}/", 2, allow_private=True)
    assert banner.error == "invalid HTTP answer"
    tls = ph.run_http_check(f"https://127.0.0.1:{port}/", 2, allow_private=True)
    assert tls.error == "TLS error"
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    closed_port = free.getsockname()[1]
    free.close()
    refused = ph.run_http_check(f"http://127.0.0.1:{closed_port}/", 2, allow_private=True)
    assert refused.error == "connection refused"
    unknown = ph.run_http_check("http://no-such-host.invalid/", 2, allow_private=True)
    assert unknown.error == "host not found"


def test_one_deadline_bounds_a_trickling_server(raw_server):
    port, script = raw_server
    script.extend(bytes([b]) for b in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100)
    started = time.perf_counter()
    result = ph.run_http_check(f"http://127.0.0.1:{port}/", 0.5, allow_private=True)
    assert time.perf_counter() - started < 1.5
    assert not result.ok and result.error == "timed out"


def test_recorded_checks_store_the_generic_class(app, db, server, monkeypatch):
    provider = factories.provider("selfhosted", health_check={"url": f"{server}/fail"})
    local = factories.provider("local", health_check={"url": f"{server}/ok"})
    db.session.commit()
    # Off (the default): both are refused at check time, and no request is made.
    ph.record_health_checks()
    rows = {row.provider_id: row for row in db.session.scalars(select(ProviderHealthLog))}
    for row in rows.values():
        assert row.details["http_check"]["error"] == "address not allowed"
    assert Handler.seen == []
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_PROVIDER_URLS", True)
    ph.record_health_checks()
    latest = {
        row.provider_id: row.details["http_check"]
        for row in db.session.scalars(
            select(ProviderHealthLog).order_by(ProviderHealthLog.checked_at)
        )
    }
    assert latest[provider.id]["error"] == "HTTP 503"
    assert latest[local.id]["ok"] is True


def test_remote_text_recorded_before_the_guard_is_not_shown():
    old = {"url": "http://x/", "ok": False, "error": "[Errno 111] SSH-2.0-OpenSSH banner"}
    assert ph.CheckResult.from_dict(old).error == "check failed"
    assert ph.CheckResult.from_dict({**old, "error": "timed out"}).error == "timed out"
    assert ph.CheckResult.from_dict({**old, "error": "HTTP 404"}).error == "HTTP 404"


# --- saving: the API and the provider form ------------------------------------------


def _put(client, provider_id, body):
    return client.put(
        f"{API}/providers/{provider_id}",
        json=body,
        headers={"X-CSRFToken": csrf_token(client, "/")},
    )


def test_saving_an_internal_url_answers_400_naming_the_field(app, admin_client, db, monkeypatch):
    provider = factories.provider("selfhosted")
    db.session.commit()
    check = _put(admin_client, provider.id, {"health_check": {"url": "http://10.0.0.1:6379/"}})
    assert check.status_code == 400
    assert set(check.get_json()["fields"]) == {"health_check.url"}
    endpoint = _put(admin_client, provider.id, {"api_endpoint": "http://169.254.169.254/"})
    assert endpoint.status_code == 400
    assert set(endpoint.get_json()["fields"]) == {"api_endpoint"}
    creds = _put(admin_client, provider.id, {"api_endpoint": "https://u:p@api.example.com/"})
    assert set(creds.get_json()["fields"]) == {"api_endpoint"}
    _db.session.expire_all()
    saved = _db.session.get(Provider, provider.id)
    assert saved.health_check == {} and saved.api_endpoint is None

    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_PROVIDER_URLS", True)
    body = {
        "api_endpoint": "http://127.0.0.1:8000/v1",
        "health_check": {"url": "http://localhost:8000/"},
    }
    assert _put(admin_client, provider.id, body).status_code == 200
    metadata = _put(admin_client, provider.id, {"api_endpoint": "http://169.254.169.254/"})
    assert metadata.status_code == 400  # metadata stays refused with the setting


def test_the_provider_form_names_the_refused_field(admin_client, db):
    provider = factories.provider("selfhosted")
    db.session.commit()
    response = admin_client.post(
        f"/providers/{provider.id}",
        data={
            "csrf_token": csrf_token(admin_client, "/"),
            "name": provider.name,
            "display_name": provider.display_name,
            "provider_type": provider.provider_type,
            "status": provider.status,
            "api_endpoint": "",
            "health_check_url": "http://2130706433/",
            "health_check_timeout": "",
        },
    )
    assert response.status_code == 400
    assert "must not point at a loopback or private address" in response.get_data(as_text=True)


# --- the review of issue 12: site-local IPv6, ports --------------------------------------


@pytest.mark.parametrize(
    "url", ["http://[fec0::1]/", "http://[feff:1::2]/", "https://[fec0::a]:443/"]
)
def test_ipv6_site_local_is_refused_in_every_mode(url):
    """fec0::/10 is deprecated (RFC 3879) and counted as global by Python 3.11."""
    assert outbound.url_problem(url, allow_private=False) is not None
    assert outbound.url_problem(url, allow_private=True) is not None


def test_only_ports_80_and_443_unless_listed():
    public = "93.184.216.34"
    assert outbound.url_problem(f"http://{public}:80/", allow_private=False) is None
    assert outbound.url_problem(f"https://{public}:443/", allow_private=False) is None
    for port in (22, 6379, 8080, 8443):
        url = f"https://{public}:{port}/status"
        problem = outbound.url_problem(url, allow_private=False)
        assert problem is not None and "PROVIDER_URL_PORTS" in problem
        # ALLOW_PRIVATE_PROVIDER_URLS opens other ports for one's own network only.
        assert outbound.url_problem(url, allow_private=True) is not None
    listed = frozenset({8443})
    assert outbound.url_problem(f"https://{public}:8443/", False, listed) is None
    assert outbound.url_problem(f"https://{public}:8444/", False, listed) is not None
    # A name that does not resolve here: another port is refused unless private hosts
    # are allowed (it may resolve to one where the checks run; they judge it again).
    assert outbound.url_problem("https://status.invalid:8443/", allow_private=False)
    assert outbound.url_problem("https://status.invalid:8443/", allow_private=True) is None


def test_any_port_for_private_hosts_with_the_setting(server):
    assert outbound.url_problem("http://10.0.0.1:6379/", allow_private=True) is None
    assert outbound.url_problem("http://[fd12:3456::1]:11434/", allow_private=True) is None
    assert ph.run_http_check(f"{server}/ok", 2, allow_private=True).ok  # on a random port


def test_a_name_that_resolves_to_a_public_address_on_another_port_is_refused_at_check_time(
    server, monkeypatch
):
    port = server.rsplit(":", 1)[1]

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(outbound.socket, "getaddrinfo", fake_getaddrinfo)
    result = ph.run_http_check(f"http://status.provider.test:{port}/ok", 2, allow_private=True)
    assert not result.ok and result.error == "URL not allowed"
    assert Handler.seen == []


def test_provider_url_ports_setting(monkeypatch, app, admin_client, db):
    from webapp.config import ConfigError, settings_from_environment

    monkeypatch.setenv("PROVIDER_URL_PORTS", "8443, 9443")
    assert settings_from_environment({"SECRET_KEY": "x"})["PROVIDER_URL_PORTS"] == {8443, 9443}
    monkeypatch.setenv("PROVIDER_URL_PORTS", "8443,http")
    with pytest.raises(ConfigError, match="PROVIDER_URL_PORTS"):
        settings_from_environment({"SECRET_KEY": "x"})
    monkeypatch.delenv("PROVIDER_URL_PORTS")
    assert settings_from_environment({"SECRET_KEY": "x"})["PROVIDER_URL_PORTS"] == frozenset()

    provider = factories.provider("openai")
    db.session.commit()
    body = {"api_endpoint": "https://93.184.216.34:8443/v1"}
    refused = _put(admin_client, provider.id, body)
    assert refused.status_code == 400 and set(refused.get_json()["fields"]) == {"api_endpoint"}
    monkeypatch.setitem(app.config, "PROVIDER_URL_PORTS", frozenset({8443}))
    assert _put(admin_client, provider.id, body).status_code == 200
