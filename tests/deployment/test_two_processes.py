"""Past one machine: two gunicorn processes sharing one Redis (``RATELIMIT_STORAGE_URI``)
and one database behave as one console. A throttle is counted across both processes (the
per-key API limit and the sign-in throttle per account), and a configuration change made
through one process is what the other serves on its next request (the runtime config's
cache is keyed by the database's revision, never by the process).

Needs ``redis-server`` (Debian's package; .ci/run installs it): skipped without it on a
developer machine, a failure under CI=true."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests import factories
from tests.conftest import PASSWORD
from tests.processes import environment_without

ROOT = Path(__file__).resolve().parents[2]
BASE = "/api/platform/ai-management"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}")
        try:
            requests.get(url, timeout=10)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(f"{what} did not answer within 60 s")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed: .ci/run must install it")
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    port = _free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path_factory.mktemp("redis"),
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError("redis-server did not start") from None
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def two_consoles(app, db, redis_url, tmp_path) -> Iterator[list[str]]:
    """Two gunicorn processes (one worker each) on the test database and one Redis,
    emptied first: each test starts with no counts."""
    import redis

    redis.Redis.from_url(redis_url).flushall()
    env = environment_without("TEST_", "GUNICORN", "WEB_CONCURRENCY")
    env |= {
        "DATABASE_URL": str(db.engine.url.render_as_string(hide_password=False)),
        "SECRET_KEY": "two-processes-test-secret",
        "RATELIMIT_STORAGE_URI": redis_url,
        "API_KEY_RATE_LIMIT": "3 per minute",
        "LOGIN_FAILURES_PER_ACCOUNT": "3 per 15 minutes",
        "AIPM_ENV": "development",
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    processes, urls = [], []
    for name in ("a", "b"):
        port = _free_port()
        log = open(tmp_path / f"gunicorn-{name}.log", "w")  # noqa: SIM115 (closed below)
        process = subprocess.Popen(
            [gunicorn, "--workers", "1", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append((process, log))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for (process, _), url in zip(processes, urls, strict=True):
            _wait_for(f"{url}/login", process, f"gunicorn at {url}")
        yield urls
    finally:
        for process, log in processes:
            process.terminate()
            process.wait(timeout=20)
            log.close()


def _sign_in(base: str, email: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    answer = session.post(
        f"{base}/login",
        data={"email": email, "password": password, "csrf_token": token},
        timeout=10,
        allow_redirects=False,
    )
    session.login_status = answer.status_code  # type: ignore[attr-defined]
    return session


def _csrf(session: requests.Session, base: str) -> str:
    page = session.get(f"{base}/", timeout=10).text
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def test_the_per_key_rate_limit_is_counted_across_both_processes(two_consoles, db):
    _, secret = factories.api_key(name="shared")
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    first, second = two_consoles
    statuses = [
        requests.get(f"{base}/api/v1/whoami", headers=headers, timeout=10).status_code
        for base in (first, second, first, second)
    ]
    # Three requests are allowed per minute in all, whichever process answers them.
    assert statuses == [200, 200, 200, 429]


def test_the_sign_in_throttle_is_counted_across_both_processes(two_consoles, admin_user):
    first, second = two_consoles
    for base in (first, second, first):
        failed = _sign_in(base, admin_user.email, "not the password")
        assert failed.login_status == 401  # the form again, with its error
    # The account's fourth failure is refused by the other process, even with the
    # right password: the counter lives in Redis, not in either process.
    throttled = _sign_in(second, admin_user.email, PASSWORD)
    assert throttled.login_status == 429


def test_a_configuration_change_through_one_process_is_served_by_the_other(
    two_consoles, db, admin_user
):
    first, second = two_consoles
    feature = factories.feature("chatbot")
    _, secret = factories.api_key(name="reader", scopes=("config:read",))
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}

    before = requests.get(f"{second}/api/v1/config/chatbot", headers=headers, timeout=10)
    assert before.status_code == 200
    assert before.json()["data"]["feature"]["status"] == "active"
    etag = before.headers["ETag"]
    assert (
        requests.get(
            f"{second}/api/v1/config/chatbot",
            headers=headers | {"If-None-Match": etag},
            timeout=10,
        ).status_code
        == 304
    )

    admin = _sign_in(first, admin_user.email, PASSWORD)
    assert admin.login_status == 302
    changed = admin.put(
        f"{first}{BASE}/features/{feature.id}",
        json={"status": "maintenance"},
        headers={"X-CSRFToken": _csrf(admin, first)},
        timeout=10,
    )
    assert changed.status_code == 200, changed.text

    after = requests.get(
        f"{second}/api/v1/config/chatbot", headers=headers | {"If-None-Match": etag}, timeout=10
    )
    assert after.status_code == 200  # not 304: the other process's cache is behind
    assert after.json()["data"]["feature"]["status"] == "maintenance"
    assert after.json()["data"]["revision"] > before.json()["data"]["revision"]
    assert after.headers["ETag"] != etag
