"""A console served for the scale benchmarks: gunicorn with the README's production
command (gthread workers; two of them on this machine's two cores) and a signed-in admin's
cookies. Used by ``bench.scale`` and ``bench.csv_export``."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import time
import urllib.parse

DEFAULT_URL = "postgresql+psycopg://aipm_test:aipm_test@127.0.0.1:5432/aipm_bench"
API = "/api/platform/ai-management"
EMAIL, PASSWORD = "bench-admin@example.com", "bench password that is long enough"
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
# README "Running in production", with as many workers as this machine has cores: threads
# keep a worker's heartbeat going while one of them streams a long download.
SERVER_FLAGS = ("--workers", "2", "--worker-class", "gthread", "--threads", "4")


def serve(url: str, port: int, timeout: int = 30) -> subprocess.Popen:
    """gunicorn on ``port`` against ``url``, answering once ``/login`` does. Throttles are
    raised so that the benchmark's own traffic is not refused."""
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY="bench" * 8)
    env |= {
        "RATELIMIT_STORAGE_URI": "memory://",
        "LOGIN_FAILURES_PER_ACCOUNT": "1000 per minute",
        "API_KEY_RATE_LIMIT": "100000000 per minute",
    }
    env.pop("AIPM_ENV", None)
    command = [sys.executable, "-m", "gunicorn", *SERVER_FLAGS, "--timeout", str(timeout)]
    server = subprocess.Popen(
        [*command, "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(150):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/login")
            connection.getresponse().read()
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not start")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


def sign_in(port: int) -> str:
    """Sign in as the benchmark's admin; returns the Cookie header to send."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/login")
    response = connection.getresponse()
    page = response.read().decode()
    jar = _cookies(response, {})
    match = CSRF.search(page)
    if not match:
        raise SystemExit("no CSRF token on /login")
    body = urllib.parse.urlencode(
        {"email": EMAIL, "password": PASSWORD, "csrf_token": match.group(1)}
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": _header(jar)}
    connection.request("POST", "/login", body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.status != 302 or "/login" in (response.getheader("Location") or ""):
        raise SystemExit(f"sign-in answered {response.status}")
    return _header(_cookies(response, jar))


def _cookies(response: http.client.HTTPResponse, jar: dict[str, str]) -> dict[str, str]:
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, value = header.split(";")[0].partition("=")
        jar[name.strip()] = value
    return jar


def _header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())
