"""The connection migrations use: MIGRATIONS_DATABASE_URL (the schema owner) when set,
else the application's own database URL (fine when the application role owns the schema,
as in development).

`flask db upgrade` (migrations/env.py) and `flask grant-app-access` both connect through
it, so with the two-role setup of the README the tables are created by, and owned by, the
owner; the application role never owns what row-level security is meant to bind."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from webapp.config import normalize_database_url
from webapp.extensions import db


def migrations_url() -> str | None:
    # Read from the environment by webapp/config.py (a test app overrides it).
    url = current_app.config.get("MIGRATIONS_DATABASE_URL")
    return normalize_database_url(url) if url else None


def migrations_engine() -> Engine:
    """A new engine for the owner when MIGRATIONS_DATABASE_URL is set (dispose it after
    use), else the application's engine."""
    url = migrations_url()
    if url:
        return create_engine(url)
    return db.engine
