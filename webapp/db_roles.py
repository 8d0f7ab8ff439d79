"""Production refuses to serve as a PostgreSQL role that row-level security cannot bind.

RLS and the audit log's append-only trigger (migrations 0002/0003) only bind a role that
is neither a superuser nor allowed to bypass RLS, and that does not own the tables (nor
the schema, whose owner may drop them): an owner can ``ALTER TABLE … DISABLE ROW LEVEL
SECURITY``, drop the trigger and then delete audit rows. The README's two-role setup
(``MIGRATIONS_DATABASE_URL`` for the owner) avoids all of that; this check makes a
deployment that skipped it fail loudly at startup instead of running unprotected.

Refusing rather than warning: a warning in a log nobody reads leaves the audit log
erasable, and the fix is a documented one-time step. Only the maintenance commands
(``flask db …``, ``grant-app-access``, ``create-admin``) are not checked: they are how an
operator repairs the setup. Every other use of the ``flask`` command is — ``flask run``
above all, which serves the console like gunicorn does (Flask sets
``FLASK_RUN_FROM_CLI`` for every command, so that alone says nothing).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from webapp.config import ConfigError

logger = logging.getLogger(__name__)

_ROLE = text(
    "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
)
# Ownership counts through membership: a member of the owner role may act as the owner.
_OWNED_TABLES = text(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
    "AND pg_has_role(current_user, c.relowner, 'MEMBER') ORDER BY c.relname"
)
_OWNS_SCHEMA = text(
    "SELECT pg_has_role(current_user, nspowner, 'MEMBER') FROM pg_namespace "
    "WHERE nspname = current_schema()"
)


def app_role_problems(engine: Engine) -> list[str]:
    """What makes the role of ``engine`` escape row-level security (PostgreSQL only;
    empty elsewhere and when all is well)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        role, superuser, bypass = connection.execute(_ROLE).one()
        owned = connection.execute(_OWNED_TABLES).scalars().all()
        owns_schema = bool(connection.execute(_OWNS_SCHEMA).scalar())
    problems = []
    if superuser:
        problems.append(f"the database role {role} is a superuser")
    if bypass:
        problems.append(f"the database role {role} has BYPASSRLS")
    if owned:
        shown = ", ".join(owned[:5]) + (f" and {len(owned) - 5} more" if len(owned) > 5 else "")
        problems.append(f"the database role {role} owns tables ({shown})")
    if owns_schema:
        problems.append(f"the database role {role} owns the schema")
    return problems


# The commands that set up or repair the database and its roles.
MAINTENANCE_COMMANDS = frozenset({"db", "grant-app-access", "create-admin"})
# The flask command's own options that take a value (``flask --app wsgi db upgrade``).
_OPTIONS_WITH_VALUE = frozenset({"--app", "-A", "--env-file", "-e"})


def flask_command(argv: Sequence[str]) -> str | None:
    """The subcommand of a ``flask`` command line: ``flask -A wsgi db upgrade`` → ``db``."""
    words = iter(argv[1:])
    for word in words:
        if word in _OPTIONS_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def running_maintenance_command(argv: Sequence[str] | None = None) -> bool:
    if not os.environ.get("FLASK_RUN_FROM_CLI"):
        return False  # gunicorn, or any other server
    return flask_command(sys.argv if argv is None else argv) in MAINTENANCE_COMMANDS


def refuse_unsafe_app_role(app: Flask) -> None:
    """In production, except for the maintenance commands: ConfigError when the
    application's role escapes row-level security. A database that cannot be reached yet
    is logged, not fatal (the first request will say the same)."""
    if not app.config["PRODUCTION"] or app.testing or running_maintenance_command():
        return
    from webapp.extensions import db

    with app.app_context():
        try:
            problems = app_role_problems(db.engine)
        except SQLAlchemyError as error:
            logger.warning("Could not check the database role at startup: %s", type(error).__name__)
            return
        finally:
            db.engine.dispose()  # no connection opened before gunicorn forks its workers
    if problems:
        raise ConfigError(
            "Refusing to start: "
            + "; ".join(problems)
            + ". Row-level security and the append-only audit log do not bind such a role. "
            "Run the application as a role that owns nothing (README, 'Two database "
            "roles'): MIGRATIONS_DATABASE_URL names the owner for `flask db upgrade` and "
            "`flask grant-app-access ROLE`, DATABASE_URL the application role."
        )
