"""The connection migrations use: MIGRATIONS_DATABASE_URL (the schema owner) when set,
else the application's own database URL (fine when the application role owns the schema,
as in development)."""

from __future__ import annotations

import os

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from webapp.config import normalize_database_url
from webapp.extensions import db


def migrations_engine() -> Engine:
    url = os.environ.get("MIGRATIONS_DATABASE_URL")
    if url:
        return create_engine(normalize_database_url(url))
    return db.engine
