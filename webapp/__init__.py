"""The application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.config import INSTANCE_DIR, PROJECT_ROOT, settings_from_environment
from webapp.extensions import csrf, db, limiter, migrate


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_DIR),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(settings_from_environment(overrides or {}))
    app.config.update(overrides or {})

    if app.config["TRUSTED_PROXY_COUNT"]:
        hops = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    if not app.config["PRODUCTION"] and not app.testing:
        app.logger.warning(
            "Development mode: set AIPM_ENV=production (and SECRET_KEY) when serving real users."
        )

    from webapp import json_input

    json_input.init_app(app)  # request JSON is parsed strictly (no NaN, no lone surrogates)

    import webapp.models  # noqa: F401  (registers every table on db.metadata)

    _postgresql_session_settings(app.config)
    db.init_app(app)
    from webapp.services.usage.partitions import is_partition_name

    migrate.init_app(
        app,
        db,
        directory=str(PROJECT_ROOT / "migrations"),
        compare_type=True,
        # ai_usage_logs' monthly partitions are made at run time, not by the models.
        include_name=lambda name, kind, _parent: not (kind == "table" and is_partition_name(name)),
    )

    # Authorization runs before CSRF validation (both are before_request hooks, run in
    # registration order): an anonymous write is answered 401/redirect, not 400.
    from webapp import auth, request_limits

    request_limits.init_app(app)  # body size first: known from the headers alone
    auth.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)

    from webapp import errors, responses, static_assets

    errors.init_app(app)
    responses.init_app(app)
    static_assets.init_app(app)  # hashed static URLs, cached for a year

    from webapp.api import bp as api_bp
    from webapp.views import filters, links, register_views

    filters.init_app(app)
    links.init_app(app)
    register_views(app)
    app.register_blueprint(api_bp)
    from webapp.apps_api import bp as apps_api_bp

    app.register_blueprint(apps_api_bp)
    from webapp import read_replica

    read_replica.init_app(app)

    from webapp.cli import register_commands

    register_commands(app)

    from webapp.db_roles import refuse_unsafe_app_role

    refuse_unsafe_app_role(app)
    return app


def _postgresql_session_settings(config: dict[str, Any]) -> None:
    """``jit = off`` on the console's PostgreSQL connections (README "Scaling"): its
    statements are index ranges and aggregates over days of rows, where compiling with
    LLVM costs 14–45 % of a statement and never pays back. Set at connect time (libpq
    ``options``), so no transaction rollback can undo it."""
    if not str(config.get("SQLALCHEMY_DATABASE_URI", "")).startswith("postgresql"):
        return
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    connect_args = dict(options.get("connect_args") or {})
    connect_args["options"] = f"{connect_args.get('options', '')} -c jit=off".strip()
    options["connect_args"] = connect_args
    config["SQLALCHEMY_ENGINE_OPTIONS"] = options
