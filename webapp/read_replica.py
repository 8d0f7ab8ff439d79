"""Dashboards read from a PostgreSQL streaming replica when ``DATABASE_READ_URL`` is set.

Which requests: GET and HEAD of the analytics pages (overview, features, models,
providers, spending, budgets, experiments) and of the whole admin JSON API (its lists of
prompts and API keys included: a key revoked a moment ago may still be listed as active
there, while the key check itself runs on the primary). Everything else — every write,
sign-in and the session check, the users, audit-log, API-key and prompt *pages*, and the
application API under /api/v1/ (key checks, budgets and reservations must see the latest
state) — stays on the primary.

Which statements: only the SELECT queries the view runs, and only inside the view (the
session and role checks run in ``before_request`` hooks registered earlier, on the
primary). A flush, an INSERT/UPDATE/DELETE, ``SELECT … FOR UPDATE``, ``text()``,
``session.connection()`` and the reload of an object the session already holds go to the
primary even then, so a page that writes (an audit row) still can. The
row-level security identity is set on each connection as its transaction begins
(webapp.rls), the replica's included.

Lag: a replica applies the primary's changes a little later (milliseconds on a quiet
local network, more under load). A page read there may show figures from just before a
change — never a mix, since each statement sees one consistent snapshot of the replica.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import flask_sqlalchemy.session
import sqlalchemy as sa
from flask import Flask, current_app, request

EXTENSION = "aipm_read_engine"
# Blueprints whose GET/HEAD requests may read from the replica.
READ_BLUEPRINTS = (
    "overview",
    "features",
    "models",
    "providers",
    "spending",
    "budgets",
    "experiments",
    "api",
)

_reading: ContextVar[bool] = ContextVar("reading_from_replica", default=False)


class RoutingSession(flask_sqlalchemy.session.Session):
    """Flask-SQLAlchemy's session; ``_route`` below sends its plain reads to the replica
    while a read-only view of an analytics blueprint runs."""


@sa.event.listens_for(RoutingSession, "do_orm_execute")
def _route(state: sa.orm.ORMExecuteState) -> Any:
    """A query the view asks for runs on the replica. Loads of objects the session already
    holds (expired columns, lazy relationships) stay on the primary: the signed-in user's
    session row, written moments ago, may not have reached the replica yet."""
    if not _reading.get() or "bind" in state.bind_arguments:
        return None
    if not state.is_select or state.is_column_load or state.is_relationship_load:
        return None
    if getattr(state.statement, "_for_update_arg", None) is not None:
        return None
    engine = current_app.extensions.get(EXTENSION)
    if engine is None:
        return None
    return state.invoke_statement(bind_arguments={"bind": engine})


def reading_from_replica() -> bool:
    return _reading.get() and current_app.extensions.get(EXTENSION) is not None


def init_app(app: Flask) -> None:
    """Create the replica's engine (when ``DATABASE_READ_URL`` is set) and route the read
    blueprints' GET/HEAD views to it. Call after the blueprints are registered."""
    url = app.config.get("DATABASE_READ_URL")
    if not url:
        return
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
    app.extensions[EXTENSION] = sa.create_engine(url, **options)

    def start_reading() -> None:
        if request.method in ("GET", "HEAD"):
            _reading.set(True)

    for name in READ_BLUEPRINTS:
        if name in app.blueprints:
            # Blueprint hooks run after the application's (sign-in, session check).
            app.before_request_funcs.setdefault(name, []).append(start_reading)

    @app.teardown_request
    def stop_reading(_error: BaseException | None) -> None:
        _reading.set(False)
