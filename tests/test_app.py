"""The application factory, settings and the last-resort error handler."""

from __future__ import annotations

import os
import stat

import pytest
from sqlalchemy import func, select

import webapp.config as config
from webapp import create_app
from webapp.config import ConfigError
from webapp.extensions import db as _db
from webapp.models import Feature


def test_development_secret_key_is_generated_once_with_mode_0600(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("AIPM_ENV", raising=False)
    monkeypatch.delenv("FLASK_ENV", raising=False)
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    first = config.load_secret_key()
    assert len(first) == 64
    assert stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode) == 0o600
    assert config.load_secret_key() == first


def test_production_without_secret_key_refuses_to_start(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("AIPM_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_production_mode_makes_cookies_secure(monkeypatch):
    monkeypatch.setenv("AIPM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-session"
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_database_url_from_the_environment_uses_psycopg(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/aipm")
    monkeypatch.setenv("SECRET_KEY", "k")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db:5432/aipm"


def test_default_database_is_sqlite_under_instance(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SECRET_KEY", "k")
    uri = create_app().config["SQLALCHEMY_DATABASE_URI"]
    assert uri.startswith("sqlite:///") and uri.endswith("instance/aipm.sqlite3")


def test_unexpected_error_shows_a_short_page_and_rolls_back(app, db):
    """A fresh app on the same database, with one route that fails half-way."""
    broken = create_app(
        {
            "SECRET_KEY": "k",
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST_KIB": 8192,
            "ARGON2_PARALLELISM": 1,
        }
    )

    @broken.get("/explode")
    def explode():
        _db.session.add(Feature(name="half-written", display_name="Half", model_type="llm"))
        _db.session.flush()
        raise RuntimeError("secret internal detail")

    @broken.get("/api/platform/ai-management/explode")
    def explode_api():
        raise RuntimeError("secret internal detail")

    from tests.conftest import IsolatedClient, make_user, sign_in

    make_user("admin@example.com", "platform_admin")
    broken.test_client_class = IsolatedClient
    client = broken.test_client()
    sign_in(client, "admin@example.com")
    response = client.get("/explode")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong" in page and "secret internal detail" not in page
    api = client.get("/api/platform/ai-management/explode")
    assert api.status_code == 500
    assert api.get_json() == {"success": False, "error": "Internal server error"}
    assert db.session.scalar(select(func.count()).select_from(Feature)) == 0


def test_production_refuses_a_short_secret_key(monkeypatch):
    monkeypatch.setenv("AIPM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="too short"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_an_empty_key_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("AIPM_ENV", raising=False)
    monkeypatch.delenv("FLASK_ENV", raising=False)
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(ConfigError, match="no usable key"):
        config.load_secret_key()


def test_behind_a_trusted_proxy_the_client_address_is_audited(monkeypatch, app, db):
    from tests.conftest import IsolatedClient, make_user, sign_in
    from webapp.models import AuditLog

    monkeypatch.setenv("TRUSTED_PROXY_COUNT", "1")
    proxied = create_app(
        {
            "SECRET_KEY": "k",
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST_KIB": 8192,
            "ARGON2_PARALLELISM": 1,
        }
    )
    make_user("admin@example.com", "platform_admin")
    proxied.test_client_class = IsolatedClient
    client = proxied.test_client()
    client.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.7"
    client.environ_base["HTTP_X_FORWARDED_PROTO"] = "https"
    # Over HTTPS, Flask-WTF also checks that writes come from a page of this site.
    client.environ_base["HTTP_REFERER"] = "https://localhost/login"
    response = sign_in(client, "admin@example.com")
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    row = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.login")).one()
    assert str(row.ip_address) == "198.51.100.7"
    assert "Strict-Transport-Security" in client.get("/login").headers


def test_production_requires_an_explicit_throttling_store(monkeypatch):
    monkeypatch.setenv("AIPM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
    with pytest.raises(ConfigError, match="RATELIMIT_STORAGE_URI"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_production_sends_hsts_even_behind_an_unconfigured_proxy(monkeypatch, app):
    monkeypatch.setenv("AIPM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    # TESTING: the test database's role owns its tables, which production refuses
    # (webapp/db_roles.py; tests/test_two_database_roles.py checks that refusal).
    production = create_app(
        {"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "TESTING": True}
    )
    response = production.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_production_refuses_argon2_below_the_owasp_minimum(monkeypatch):
    monkeypatch.setenv("AIPM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    monkeypatch.setenv("ARGON2_MEMORY_COST_KIB", "1024")
    with pytest.raises(ConfigError, match="OWASP"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


@pytest.mark.parametrize(
    "argv, refused",
    [
        (["flask", "run"], True),
        (["flask", "--app", "wsgi", "run", "--port", "8000"], True),
        (["flask", "-A", "wsgi", "shell"], True),
        (["gunicorn", "--bind", "0.0.0.0:8000", "wsgi:app"], True),  # a stray variable
        (["flask", "--app", "wsgi", "db", "upgrade"], False),
        (["flask", "-e", ".env", "grant-app-access", "aipm_app"], False),
        (["/usr/lib/python3/flask/__main__.py", "create-admin", "a@example.com"], False),
    ],
)
def test_flask_run_in_production_checks_the_database_role(monkeypatch, argv, refused):
    """`flask run` sets FLASK_RUN_FROM_CLI like every flask command: only the maintenance
    commands may run with a role that escapes row-level security."""
    from webapp import db_roles

    monkeypatch.setenv("AIPM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")
    monkeypatch.setattr("sys.argv", argv)
    monkeypatch.setattr(
        db_roles, "app_role_problems", lambda engine: ["the database role aipm owns tables"]
    )
    if refused:
        with pytest.raises(ConfigError, match="owns tables"):
            create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    else:
        assert create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}) is not None
