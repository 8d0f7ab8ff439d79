"""Settings read from the environment.

Every setting has a safe default for development; production mode (``FLASK_ENV`` or
``AIPM_ENV`` set to ``production``) refuses to start without an explicit ``SECRET_KEY``.
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from limits import parse as parse_limit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = Path(os.environ.get("AIPM_INSTANCE_DIR", PROJECT_ROOT / "instance"))


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message says which and how to fix it."""


def is_production() -> bool:
    mode = os.environ.get("AIPM_ENV") or os.environ.get("FLASK_ENV") or "development"
    return mode.lower() == "production"


def default_database_url() -> str:
    return f"sqlite:///{INSTANCE_DIR / 'aipm.sqlite3'}"


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs written the usual way (postgres://, postgresql://)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_secret_key() -> str:
    """SECRET_KEY from the environment; in development one generated once and kept 0600."""
    key = os.environ.get("SECRET_KEY")
    if key:
        if is_production() and len(key) < 32:
            raise ConfigError("SECRET_KEY is too short: use at least 32 random characters.")
        return key
    if is_production():
        raise ConfigError(
            "SECRET_KEY is not set. In production set SECRET_KEY to a long random value, "
            "e.g. SECRET_KEY=\"$(python -c 'import secrets; print(secrets.token_hex(32))')\"."
        )
    ensure_instance_dir()
    key_file = INSTANCE_DIR / "secret_key"
    try:
        # Created 0600 from the start so the key is never readable by others, even briefly;
        # O_EXCL makes the first of several starting processes the only writer.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = key_file.read_text().strip()
        if len(key) < 32:
            raise ConfigError(
                f"{key_file} holds no usable key; delete it to have a new one generated"
            ) from None
        return key
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def check_credentials_keys(value: str) -> list[bytes]:
    """``CREDENTIALS_KEY``: one Fernet key, or several separated by commas (the first
    encrypts, all decrypt: how a key is rotated). ConfigError naming the wrong one."""
    from cryptography.fernet import Fernet

    keys = [part.strip().encode("ascii", "replace") for part in value.split(",") if part.strip()]
    if not keys:
        raise ConfigError("CREDENTIALS_KEY is empty: give at least one Fernet key.")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError(
                f"CREDENTIALS_KEY key {position} is not a Fernet key (32 url-safe "
                "base64-encoded bytes); generate one with python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None
    return keys


def load_credentials_key() -> str:
    """CREDENTIALS_KEY from the environment (production refuses to start without it);
    in development one generated once into instance/credentials_key, 0600, like the
    secret key. It encrypts the providers' API keys at rest."""
    key = os.environ.get("CREDENTIALS_KEY")
    if key:
        check_credentials_keys(key)
        return key
    if is_production():
        raise ConfigError(
            "CREDENTIALS_KEY is not set. In production set CREDENTIALS_KEY to a Fernet key, "
            "e.g. CREDENTIALS_KEY=\"$(python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')\"; it encrypts provider API keys."
        )
    from cryptography.fernet import Fernet

    ensure_instance_dir()
    key_file = INSTANCE_DIR / "credentials_key"
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = key_file.read_text().strip()
        try:
            check_credentials_keys(key)
        except ConfigError:
            raise ConfigError(
                f"{key_file} holds no usable Fernet key; delete it to have a new one "
                "generated (credentials stored with it can then no longer be read)"
            ) from None
        return key
    key = Fernet.generate_key().decode("ascii")
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def ensure_instance_dir() -> None:
    """instance/ holds the development key and SQLite database: private to this user."""
    INSTANCE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)


def settings_from_environment(overrides: dict[str, Any]) -> dict[str, Any]:
    """Settings from the environment; keys present in ``overrides`` are not read (so a test
    app never creates a secret-key file or needs DATABASE_URL)."""
    production = is_production()
    secret_key = overrides.get("SECRET_KEY") or load_secret_key()
    credentials_key = overrides.get("CREDENTIALS_KEY") or load_credentials_key()
    idle_minutes = int(os.environ.get("SESSION_IDLE_MINUTES", "30"))
    absolute_hours = int(os.environ.get("SESSION_ABSOLUTE_HOURS", "12"))
    secure_cookies = _flag("SESSION_COOKIE_SECURE", default=production)
    argon2 = {
        "ARGON2_TIME_COST": int(os.environ.get("ARGON2_TIME_COST", "3")),
        "ARGON2_MEMORY_COST_KIB": int(os.environ.get("ARGON2_MEMORY_COST_KIB", str(64 * 1024))),
        "ARGON2_PARALLELISM": int(os.environ.get("ARGON2_PARALLELISM", "4")),
    }
    if production and (
        argon2["ARGON2_TIME_COST"] < 2 or argon2["ARGON2_MEMORY_COST_KIB"] < 19 * 1024
    ):
        raise ConfigError(
            "Argon2 settings below OWASP's minimum (time cost 2, memory 19 MiB) are refused "
            "in production."
        )
    max_request_bytes = int(os.environ.get("MAX_REQUEST_BYTES", str(1024 * 1024)))
    if max_request_bytes < 1024:
        raise ConfigError("MAX_REQUEST_BYTES must be at least 1024.")
    usage_max_age_days = int(os.environ.get("USAGE_MAX_AGE_DAYS", "30"))
    if usage_max_age_days < 1:
        raise ConfigError("USAGE_MAX_AGE_DAYS must be at least 1.")
    raw_retention, content_retention = _retention_days(usage_max_age_days)
    settled_groups = int(os.environ.get("USAGE_SETTLED_CACHE_GROUPS", "200000"))
    if settled_groups < 0:
        raise ConfigError("USAGE_SETTLED_CACHE_GROUPS must be 0 (off) or more.")
    reservation_ttl = int(os.environ.get("BUDGET_RESERVATION_TTL_SECONDS", "600"))
    if reservation_ttl < 1:
        raise ConfigError("BUDGET_RESERVATION_TTL_SECONDS must be at least 1.")
    if production and not secure_cookies:
        raise ConfigError(
            "SESSION_COOKIE_SECURE=0 is refused in production: session cookies must travel "
            "over HTTPS only. Serve the console over HTTPS (TRUSTED_PROXY_COUNT behind a proxy)."
        )
    api_key_rate_limit = os.environ.get("API_KEY_RATE_LIMIT", "1200 per minute")
    try:
        parse_limit(api_key_rate_limit)
    except ValueError:
        raise ConfigError(
            f"API_KEY_RATE_LIMIT={api_key_rate_limit!r} is not a rate limit such as "
            "'1200 per minute'."
        ) from None
    storage = os.environ.get("RATELIMIT_STORAGE_URI")
    if production and not storage:
        raise ConfigError(
            "RATELIMIT_STORAGE_URI is not set. Sign-in throttling needs storage shared by all "
            "worker processes, e.g. redis://localhost:6379; set memory:// only when a single "
            "process serves the console."
        )
    workers = configured_worker_count()
    if production and storage and storage.startswith("memory://") and workers > 1:
        raise ConfigError(
            f"RATELIMIT_STORAGE_URI=memory:// with {workers} worker processes: each would "
            "count sign-in failures on its own, multiplying the limits. Use a shared storage "
            "such as redis://localhost:6379, or a single worker."
        )
    return {
        "SECRET_KEY": secret_key,
        # Fernet key(s) encrypting provider credentials; the first encrypts, every one
        # decrypts (`flask credentials rotate` re-encrypts with the first).
        "CREDENTIALS_KEY": credentials_key,
        # How long a playground run may wait for the provider (the whole answer), seconds.
        "PROVIDER_CALL_TIMEOUT_SECONDS": _seconds("PROVIDER_CALL_TIMEOUT_SECONDS", 60.0),
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(
            os.environ.get("DATABASE_URL") or default_database_url()
        ),
        # A PostgreSQL streaming replica the dashboards read from (webapp/read_replica.py);
        # unset: everything reads from DATABASE_URL.
        "DATABASE_READ_URL": normalize_database_url(os.environ["DATABASE_READ_URL"])
        if os.environ.get("DATABASE_READ_URL")
        else None,
        # hide_parameters: SQL errors in the log never show values (password hashes, …).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
        # The schema owner, for `flask db upgrade` and `flask grant-app-access` when the
        # application connects as a lesser role (see webapp/migrations_engine.py).
        "MIGRATIONS_DATABASE_URL": os.environ.get("MIGRATIONS_DATABASE_URL") or None,
        # Provider health checks and API endpoints may point at loopback and private
        # addresses (self-hosted models) only with this on; link-local, multicast, reserved
        # and cloud metadata addresses stay refused (webapp/services/core/outbound.py).
        "ALLOW_PRIVATE_PROVIDER_URLS": _flag("ALLOW_PRIVATE_PROVIDER_URLS", default=False),
        # Ports besides 80 and 443 that those URLs may use (any port is fine for loopback
        # and private hosts with ALLOW_PRIVATE_PROVIDER_URLS on), e.g. "8443,9443".
        "PROVIDER_URL_PORTS": _ports("PROVIDER_URL_PORTS"),
        "PRODUCTION": production,
        # The largest request body read (bytes), checked before any byte is read; a view
        # may accept more with @accepts_request_bytes (webapp/request_limits.py).
        "MAX_REQUEST_BYTES": max_request_bytes,
        "MAX_CONTENT_LENGTH": max_request_bytes,
        # Behind a reverse proxy, how many proxies set X-Forwarded-For/-Proto (client IPs
        # in the audit log, HTTPS detection for HSTS). 0: the app faces clients directly.
        # Usage events older than this many days are refused as too old (POST /api/v1/usage,
        # OpenTelemetry); ledger rows of the idempotency ids older than it may be pruned.
        "USAGE_MAX_AGE_DAYS": usage_max_age_days,
        # `flask usage purge` (cron): raw usage rows, and their request/response bodies,
        # kept this many days (None: kept for ever). Rollups are never purged.
        "USAGE_RAW_RETENTION_DAYS": raw_retention,
        "USAGE_CONTENT_RETENTION_DAYS": content_retention,
        # Per worker process, at most this many groups of settled rollup sums are kept in
        # memory (webapp/services/usage/settled.py); 0 turns the remembering off.
        "USAGE_SETTLED_CACHE_GROUPS": settled_groups,
        "BUDGET_RESERVATION_TTL_SECONDS": reservation_ttl,
        "TRUSTED_PROXY_COUNT": int(os.environ.get("TRUSTED_PROXY_COUNT", "0")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies,
        # The __Host- prefix pins the cookie to this host and path / (HTTPS only).
        "SESSION_COOKIE_NAME": "__Host-session" if secure_cookies else "session",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _flag("SESSION_COOKIE_SECURE", default=production),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        # Sessions end after this long without a request, and this long after sign-in.
        "SESSION_IDLE_MINUTES": idle_minutes,
        "SESSION_ABSOLUTE_HOURS": absolute_hours,
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=absolute_hours),
        # Sign-in throttling (webapp/login_throttle.py on Flask-Limiter's storage): every
        # attempt is counted when it arrives, before any password hashing; a successful
        # sign-in resets the account (or device) counter it was charged to. Use a shared
        # storage such as redis://host:6379 when several worker processes serve the console.
        "RATELIMIT_STORAGE_URI": storage or "memory://",
        "RATELIMIT_STRATEGY": "moving-window",
        "RATELIMIT_HEADERS_ENABLED": True,
        "LOGIN_FAILURES_PER_ACCOUNT": os.environ.get(
            "LOGIN_FAILURES_PER_ACCOUNT", "10 per 15 minutes"
        ),
        "LOGIN_FAILURES_PER_ADDRESS": os.environ.get(
            "LOGIN_FAILURES_PER_ADDRESS", "50 per 15 minutes"
        ),
        # A browser that signed in to an account gets a signed device cookie for it; its
        # attempts are limited per device, so strangers hammering the account (limited
        # per account) cannot lock its owner out (OWASP's "device cookies").
        "LOGIN_FAILURES_PER_DEVICE": os.environ.get(
            "LOGIN_FAILURES_PER_DEVICE", "10 per 15 minutes"
        ),
        # Requests per API key (/api/v1/), counted in the same storage after the key is
        # authenticated; over it: 429 with Retry-After (webapp/apps_api/keys.py).
        "API_KEY_RATE_LIMIT": api_key_rate_limit,
        # GET /api/v1/config: how long a worker reuses a feature's budget state (spend moves
        # it without a configuration change); a budget edit takes effect at once.
        "CONFIG_BUDGET_SECONDS": float(os.environ.get("CONFIG_BUDGET_SECONDS", "10")),
        "LOGIN_DEVICE_COOKIE_DAYS": int(os.environ.get("LOGIN_DEVICE_COOKIE_DAYS", "90")),
        # Repeated events (throttled sign-ins per address, refused requests per user) are
        # audited once per window, with a count.
        "AUDIT_REPEAT_WINDOW_MINUTES": int(os.environ.get("AUDIT_REPEAT_WINDOW_MINUTES", "15")),
        # Platform admins must enrol a TOTP second factor before using the console (on in
        # production unless set to 0; off in development and tests unless set to 1).
        "MFA_REQUIRED_FOR_ADMINS": _flag("MFA_REQUIRED_FOR_ADMINS", default=production),
        # Sensitive actions (roles, password/MFA resets, deactivation, health-check URLs)
        # need a sign-in or re-authentication within this many minutes.
        "REAUTH_MINUTES": int(os.environ.get("REAUTH_MINUTES", "10")),
        # Argon2id parameters: argon2-cffi's defaults (RFC 9106 low-memory profile:
        # t=3, m=64 MiB, p=4) are stronger than OWASP's minimum (t=2, m=19 MiB, p=1).
        **argon2,
        **health_settings(),
    }


def health_settings() -> dict[str, Any]:
    """Provider health thresholds (see webapp/services/health/provider_health.py and the README).

    A threshold is met at its value: an error rate of exactly 5 % is degraded."""
    return {
        # The two usage windows: the short one reacts fast, the long one is the fallback
        # when the short one has too little traffic to judge.
        "HEALTH_SHORT_WINDOW_MINUTES": int(os.environ.get("HEALTH_SHORT_WINDOW_MINUTES", "15")),
        "HEALTH_LONG_WINDOW_MINUTES": int(os.environ.get("HEALTH_LONG_WINDOW_MINUTES", "60")),
        # Fewer finished requests than this in a window are too few to judge it.
        "HEALTH_MIN_REQUESTS": int(os.environ.get("HEALTH_MIN_REQUESTS", "5")),
        # Error rate in percent of finished requests (errors and timeouts).
        "HEALTH_DEGRADED_ERROR_RATE": Decimal(os.environ.get("HEALTH_DEGRADED_ERROR_RATE", "5")),
        "HEALTH_DOWN_ERROR_RATE": Decimal(os.environ.get("HEALTH_DOWN_ERROR_RATE", "25")),
        # p95 latency in milliseconds.
        "HEALTH_DEGRADED_P95_MS": Decimal(os.environ.get("HEALTH_DEGRADED_P95_MS", "5000")),
        "HEALTH_DOWN_P95_MS": Decimal(os.environ.get("HEALTH_DOWN_P95_MS", "15000")),
        # The HTTP health check: default timeout, and the points a failed check costs.
        "HEALTH_CHECK_TIMEOUT_SECONDS": float(os.environ.get("HEALTH_CHECK_TIMEOUT_SECONDS", "5")),
        "HEALTH_CHECK_FAILURE_PENALTY": int(os.environ.get("HEALTH_CHECK_FAILURE_PENALTY", "50")),
    }


def configured_worker_count(argv: list[str] | None = None) -> int:
    """How many worker processes the server was told to start, as far as the process can
    tell: ``WEB_CONCURRENCY`` (gunicorn's and most platforms' variable), ``--workers`` /
    ``-w`` in ``GUNICORN_CMD_ARGS`` or on gunicorn's own command line (workers are forked
    from it, so they share its ``sys.argv``). A ``workers =`` line in a gunicorn
    configuration file is not seen: 1 then."""
    argv = sys.argv if argv is None else argv
    counts = [os.environ.get("WEB_CONCURRENCY", "")]
    words = shlex.split(os.environ.get("GUNICORN_CMD_ARGS", ""))
    if argv and Path(argv[0]).name.startswith("gunicorn"):
        words += argv[1:]
    for index, word in enumerate(words):
        if word in ("-w", "--workers") and index + 1 < len(words):
            counts.append(words[index + 1])
        elif word.startswith("--workers="):
            counts.append(word.partition("=")[2])
        elif word.startswith("-w") and word[2:].isdigit():
            counts.append(word[2:])
    return max((int(count) for count in counts if count.strip().isdigit()), default=1)


def _ports(name: str) -> frozenset[int]:
    """A comma-separated list of TCP ports (1-65535); empty when unset."""
    ports = set()
    for part in os.environ.get(name, "").replace(" ", "").split(","):
        if not part:
            continue
        if not part.isdigit() or not 0 < int(part) < 65536:
            raise ConfigError(f"{name} must list TCP ports (1-65535) separated by commas")
        ports.add(int(part))
    return frozenset(ports)


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0
    if not 0 < seconds <= 3600:
        raise ConfigError(f"{name} must be a number of seconds above 0 and at most 3600")
    return seconds


def _flag(name: str, *, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _retention_days(max_age_days: int) -> tuple[int | None, int | None]:
    """USAGE_RAW_RETENTION_DAYS and USAGE_CONTENT_RETENTION_DAYS (unset: keep everything)."""
    values: list[int | None] = []
    for name, minimum in (
        ("USAGE_RAW_RETENTION_DAYS", max_age_days),
        ("USAGE_CONTENT_RETENTION_DAYS", 1),
    ):
        raw = os.environ.get(name, "").strip()
        if not raw:
            values.append(None)
            continue
        if not raw.isdigit() or int(raw) < minimum:
            why = " (USAGE_MAX_AGE_DAYS: younger events may still arrive)" if minimum > 1 else ""
            raise ConfigError(
                f"{name}={raw!r} must be a whole number of days, at least {minimum}{why}."
            )
        values.append(int(raw))
    return values[0], values[1]
