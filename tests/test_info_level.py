"""Issue 12, item 14: HTMX fragments of budget and model pages, CSV formula prefixes,
production settings that must not be weakened, and database errors without values."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests import factories
from webapp import create_app
from webapp.config import ConfigError, configured_worker_count, settings_from_environment
from webapp.csv_export import csv_safe

HX = {"HX-Request": "true"}


def test_budget_and_model_pages_render_their_fragment_for_htmx(viewer_client, db):
    budget = factories.budget()
    model = factories.model(factories.provider())
    db.session.commit()
    for url in ("/budgets", f"/budgets/{budget.id}", f"/models/{model.id}"):
        response = viewer_client.get(url, headers=HX)
        assert response.status_code == 200, url
        assert "<html" not in response.get_data(as_text=True), url


@pytest.mark.parametrize(
    "value",
    [
        "=1+1",
        "\n=1+1",
        " =1+1",
        "\t=1+1",
        "\r=1+1",
        "\u00a0=1+1",
        "\u200b=1+1",
        "＝1+1",
        "＋1",
        "－1",
        "＠SUM(A1)",
        "﹦1+1",
        "@SUM(A1)",
    ],
)
def test_csv_prefixes_everything_a_spreadsheet_could_run(value):
    assert csv_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["timeout", "a=b", "", 12, None])
def test_csv_leaves_plain_values_alone(value):
    assert csv_safe(value) == value


@pytest.fixture
def production(monkeypatch):
    monkeypatch.setenv("AIPM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    return monkeypatch


def test_production_refuses_insecure_cookies(production):
    production.setenv("SESSION_COOKIE_SECURE", "0")
    with pytest.raises(ConfigError, match="SESSION_COOKIE_SECURE=0 is refused"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


@pytest.mark.parametrize(
    "variable, value", [("WEB_CONCURRENCY", "4"), ("GUNICORN_CMD_ARGS", "--bind :8000 -w 3")]
)
def test_production_refuses_memory_storage_with_several_workers(production, variable, value):
    production.setenv(variable, value)
    with pytest.raises(ConfigError, match="worker processes"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    production.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6390/0")
    assert settings_from_environment({})["RATELIMIT_STORAGE_URI"].startswith("redis://")


def test_worker_count_from_gunicorns_command_line(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    gunicorn = "/srv/.venv/bin/gunicorn"
    assert configured_worker_count([gunicorn, "--workers", "4", "wsgi:app"]) == 4
    assert configured_worker_count([gunicorn, "--workers=2", "wsgi:app"]) == 2
    assert configured_worker_count([gunicorn, "-w5", "wsgi:app"]) == 5
    assert configured_worker_count([gunicorn, "wsgi:app"]) == 1
    assert configured_worker_count(["pytest", "-w", "9"]) == 1  # not gunicorn's


def test_database_errors_keep_values_out_of_messages_and_logs(app, db, caplog):
    secret = "secret-value-123"
    with pytest.raises(DBAPIError) as raised:
        # PostgreSQL answers with DETAIL and CONTEXT lines quoting the value; SQLite
        # never quotes it. Either way, no part of the value may appear.
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SELECT CAST(:v AS jsonb)"), {"v": '{"' + secret})
        else:
            db.session.execute(text("SELECT json(:v)"), {"v": '{"' + secret})
    db.session.rollback()
    with caplog.at_level(logging.ERROR):
        logging.getLogger("test").error("failed", exc_info=raised.value)
    assert secret not in str(raised.value)
    assert secret not in str(raised.value.orig)
    assert secret not in caplog.text
