"""What the benchmark scripts share: a database rebuilt by the migrations with the seed's
rows, and an API key to call the application API with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def fresh_app(url: str) -> Any:
    """An app on ``url`` whose database was taken down and rebuilt by the migrations, with
    the seed's rows. Everything in the database is lost."""
    from flask_migrate import downgrade, upgrade

    from webapp import create_app
    from webapp.cli.seed import seed_defaults
    from webapp.extensions import db
    from webapp.rls import OPERATOR, use_database_role
    from webapp.services.core.actor import Actor

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench" * 8})
    with app.app_context():
        _empty_usage()
        try:
            downgrade(revision="base")
        except Exception:  # an empty or older database may have nothing to take down
            db.session.rollback()
        upgrade()
        use_database_role(OPERATOR)
        seed_defaults(Actor.cli(), datetime.now(UTC).date())
        db.session.commit()
    return app


def _empty_usage() -> None:
    """Empty the usage tables first: the partitioning migration's downgrade would copy
    every row back into a plain table (ten minutes for 10M rows) only to drop it."""
    from sqlalchemy import inspect, text

    from webapp.extensions import db

    tables = set(inspect(db.engine).get_table_names())
    if db.engine.dialect.name == "postgresql" and "ai_usage_logs" in tables:
        with db.engine.begin() as connection:
            connection.execute(text("TRUNCATE ai_usage_logs CASCADE"))


def add_key(scopes: tuple[str, ...] = ("usage:write", "config:read"), name: str = "bench") -> str:
    """A production key for every feature (in the caller's app context, committed);
    returns its secret."""
    from webapp.extensions import db
    from webapp.models import ApiKey
    from webapp.services.apps.secrets import new_secret, secret_hash, secret_prefix

    secret = new_secret("production")
    db.session.add(
        ApiKey(
            name=name,
            prefix=secret_prefix(secret),
            secret_hash=secret_hash(secret),
            environment="production",
            scopes=list(scopes),
            feature_ids=[],
        )
    )
    db.session.commit()
    return secret
