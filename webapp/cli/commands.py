"""flask commands: start, seed, demo-data, create-admin, grant-app-access, rollup rebuild|compact,
providers check, config export."""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from webapp.cli.demo_data import load_demo_data
from webapp.cli.seed import seed_defaults
from webapp.extensions import db
from webapp.migrations_engine import migrations_engine
from webapp.models import ROLE_ADMIN, ROLES, Feature, UsageLog
from webapp.models.features import ENVIRONMENTS
from webapp.rls import OPERATOR, use_database_role
from webapp.services.apps.ledger import prune_event_ids
from webapp.services.apps.runtime_config import export_bundle
from webapp.services.catalog import credentials as stored_credentials
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, ValidationFailed
from webapp.services.health import provider_health
from webapp.services.identity import users
from webapp.services.usage import partitions as usage_partitions
from webapp.services.usage.compaction import compact_rollups
from webapp.services.usage.retention import purge_usage, purged_before
from webapp.services.usage.rollup import rebuild_rollup


def as_operator(command: Callable[..., None]) -> Callable[..., None]:
    """Commands are run by whoever holds the database credentials: full access under
    PostgreSQL row-level security."""

    @functools.wraps(command)
    def run(*args: object, **kwargs: object) -> None:
        use_database_role(OPERATOR)
        command(*args, **kwargs)

    return run


@click.command("seed")
@click.option("--if-empty", is_flag=True, help="Do nothing when any feature exists already.")
@with_appcontext
@as_operator
def seed_command(if_empty: bool) -> None:
    """Insert the default features, providers, models, assignments and budgets (idempotent).

    Without --if-empty, rows an admin deleted since (a default feature, say) come back."""
    if if_empty and db.session.scalar(select(func.count()).select_from(Feature)):
        click.echo("Features exist already; seed not applied.")
        return
    report = seed_defaults(Actor.cli(), datetime.now(UTC).date())
    if report.total:
        summary = ", ".join(f"{count} {kind}" for kind, count in report.created.items())
        click.echo(f"Seeded {summary}.")
    else:
        click.echo("Seed data already present; nothing changed.")


@click.command("demo-data")
@with_appcontext
@as_operator
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(1, 3650),
    help="Spread usage over the last N days.",
)
@click.option(
    "--requests",
    default=20_000,
    show_default=True,
    type=click.IntRange(0, 50_000_000),
    help="Number of usage log rows.",
)
@click.option("--if-empty", is_flag=True, help="Do nothing when usage logs already exist.")
@click.option(
    "--seed",
    "random_seed",
    default=7,
    show_default=True,
    help="Random seed (same seed, same data).",
)
@click.option("--force", is_flag=True, help="Load even in production mode (fake spend!).")
def demo_data_command(
    days: int, requests: int, if_empty: bool, random_seed: int, force: bool
) -> None:
    """Load realistic demo usage, health checks, prompts and an experiment."""
    if current_app.config["PRODUCTION"] and not force:
        raise click.ClickException(
            "refusing to load fake usage into a production database (use --force to insist)"
        )
    if if_empty and db.session.scalar(select(func.count()).select_from(UsageLog)):
        click.echo("Usage logs already exist; demo data not loaded again.")
        return
    seed_defaults(Actor.cli(), datetime.now(UTC).date())
    started = time.perf_counter()
    with click.progressbar(length=requests, label="Usage logs", file=sys.stderr) as bar:
        report = load_demo_data(
            Actor.cli(),
            datetime.now(UTC),
            days,
            requests,
            progress=bar.update,
            seed=random_seed,
        )
    elapsed = time.perf_counter() - started
    summary = ", ".join(
        f"{count} {kind.replace('_', ' ')}" for kind, count in report.as_dict().items() if count
    )
    click.echo(f"Demo data loaded in {elapsed:.1f} s: {summary}.")


@click.command("create-admin")
@with_appcontext
@as_operator
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default=ROLE_ADMIN, show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--generate-password", is_flag=True, help="Generate a password and print it once.")
@click.option("--if-no-users", is_flag=True, help="Do nothing when any user exists (first run).")
def create_admin_command(
    email: str,
    role: str,
    password_stdin: bool,
    generate_password: bool,
    if_no_users: bool,
) -> None:
    """Create a console user (a platform admin unless --role viewer)."""
    if if_no_users and users.count_users():
        click.echo("Users already exist; no user created.")
        return
    if password_stdin and generate_password:
        raise click.UsageError("use either --password-stdin or --generate-password, not both")
    if generate_password:
        password = users.generate_password()
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        # A printed password has been seen by whoever ran this: the user replaces it.
        user = users.create_user(
            Actor.cli(), email, password, role, must_change_password=generate_password
        )
    except ValidationFailed as error:
        raise click.ClickException(f"User not created: {error}") from None
    except Conflict as error:
        raise click.ClickException(f"User not created: {error.message}") from None
    click.echo(f"Created {user.role} {user.email}.")
    if generate_password:
        click.echo("It must be changed at the first sign-in.")
        click.echo(f"Generated password (shown only this once): {password}")


@click.command("grant-app-access")
@click.argument("role")
@with_appcontext
def grant_app_access_command(role: str) -> None:
    """Grant a PostgreSQL login role what the application needs, as the schema owner.

    Run after `flask db upgrade`, with MIGRATIONS_DATABASE_URL (or DATABASE_URL) naming
    the owner. The role gets no ownership, so row-level security applies to it, and it
    may only read and append audit rows."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise click.BadParameter(
            "use a plain PostgreSQL role name (a-z, 0-9, _)", param_hint="ROLE"
        )
    engine = migrations_engine()
    if engine.dialect.name != "postgresql":
        raise click.ClickException("grant-app-access is for PostgreSQL databases only")
    tables = [t.name for t in db.metadata.sorted_tables if t.name != "platform_audit_logs"]
    with engine.begin() as connection:
        connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
        connection.exec_driver_sql(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(tables)} TO {role}"
        )
        connection.exec_driver_sql(f"GRANT SELECT, INSERT ON platform_audit_logs TO {role}")
        connection.exec_driver_sql(
            f"REVOKE UPDATE, DELETE, TRUNCATE ON platform_audit_logs FROM {role}"
        )
        connection.exec_driver_sql(f"GRANT SELECT ON alembic_version TO {role}")
    click.echo(f"Granted {role} access to {len(tables) + 1} tables (audit log: read and append).")


@click.group("rollup")
def rollup_group() -> None:
    """The usage rollups (daily and hourly) that spending analytics and the windows read."""


@rollup_group.command("rebuild")
@click.option(
    "--from",
    "since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="First UTC day to recompute (YYYY-MM-DD); all days when omitted.",
)
@with_appcontext
@as_operator
def rollup_rebuild_command(since: datetime | None) -> None:
    """Recompute the daily and hourly rollups and the hourly outcomes from the raw usage rows
    (one transaction)."""
    first_day = since.date() if since else None
    purged = purged_before()
    if purged and (first_day is None or first_day < purged):
        raise click.ClickException(
            f"Raw usage before {purged.isoformat()} was purged (flask usage purge): "
            "rebuilding those days would erase their spending history. Use --from "
            f"{purged.isoformat()} or later."
        )
    written = rebuild_rollup(Actor.cli(), first_day)
    scope = f"from {first_day.isoformat()}" if first_day else "for every day"
    click.echo(f"Rollup rebuilt {scope}: {written} rows.")


@rollup_group.command("compact")
@with_appcontext
@as_operator
def rollup_compact_command() -> None:
    """Fold the shards of closed days and hours into one row per key (figures unchanged)."""
    compaction = compact_rollups()
    click.echo(
        f"Rollups compacted: {compaction.daily_rows_folded:,} daily and "
        f"{compaction.hourly_rows_folded:,} hourly shard rows folded ({compaction.days:,} days); "
        f"{compaction.outcome_rows_folded:,} hourly outcome shard rows folded."
    )


@click.group("usage")
def usage_group() -> None:
    """Usage reported by applications."""


@usage_group.command("prune-event-ids")
@with_appcontext
@as_operator
def usage_prune_event_ids_command() -> None:
    """Delete idempotency ids older than USAGE_MAX_AGE_DAYS + 1 day (events that old are
    refused anyway). Meant to run daily (cron or a systemd timer)."""
    max_age = current_app.config["USAGE_MAX_AGE_DAYS"]
    deleted = prune_event_ids(Actor.cli(), datetime.now(UTC), max_age)
    click.echo(f"Pruned {deleted} event id(s) older than {max_age} days + 1.")


@usage_group.command("partitions")
@click.option(
    "--through",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Create monthly partitions up to this day's month (default: 3 months ahead).",
)
@with_appcontext
def usage_partitions_command(through: datetime | None) -> None:
    """Create ai_usage_logs' monthly partitions from USAGE_MAX_AGE_DAYS back to 3 months
    ahead (PostgreSQL; run it daily from cron: it is idempotent). Rows of a new month
    waiting in the default partition move into it. Connects as the schema owner
    (MIGRATIONS_DATABASE_URL)."""
    today = datetime.now(UTC).date()
    max_age = current_app.config["USAGE_MAX_AGE_DAYS"]  # events may come this far back
    engine = migrations_engine()
    try:
        with engine.begin() as connection:
            if not usage_partitions.is_partitioned(connection):
                click.echo("ai_usage_logs is not partitioned (SQLite): nothing to do.")
                return
            if through is None:
                created = usage_partitions.ensure_partitions(connection, today, max_age)
            else:
                first = today - timedelta(days=max_age)
                created = usage_partitions.create_partitions(connection, first, through.date())
            present = usage_partitions.list_partitions(connection)
    finally:
        if engine is not db.engine:
            engine.dispose()
    for name in created:
        click.echo(f"Created {name}.")
    click.echo(f"{len(created)} partition(s) created; {len(present)} attached.")


@usage_group.command("purge")
@click.option(
    "--before",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Remove raw usage rows created before this UTC day (default: today minus "
    "USAGE_RAW_RETENTION_DAYS, when set).",
)
@with_appcontext
def usage_purge_command(before: datetime | None) -> None:
    """Apply the retention settings (run daily from cron): drop whole months of raw usage
    rows (PostgreSQL partitions), delete the rest before the day in batches, and empty
    request/response bodies older than USAGE_CONTENT_RETENTION_DAYS. Rollups (spending
    history, budgets) are kept. Audited with the counts."""
    config = current_app.config
    today = datetime.now(UTC).date()
    raw_days, content_days = (
        config["USAGE_RAW_RETENTION_DAYS"],
        config["USAGE_CONTENT_RETENTION_DAYS"],
    )
    raw_before = (
        before.date() if before else (today - timedelta(days=raw_days) if raw_days else None)
    )
    content_before = today - timedelta(days=content_days) if content_days else None
    if raw_before is None and content_before is None:
        click.echo(
            "Nothing to purge: no --before, and USAGE_RAW_RETENTION_DAYS and "
            "USAGE_CONTENT_RETENTION_DAYS are unset (everything is kept)."
        )
        return
    engine = migrations_engine()
    try:
        report = purge_usage(
            engine, Actor.cli(), raw_before, content_before, today, config["USAGE_MAX_AGE_DAYS"]
        )
    except ValidationFailed as error:
        raise click.ClickException(f"Nothing purged: {error}") from None
    finally:
        if engine is not db.engine:
            engine.dispose()
    if raw_before:
        click.echo(
            f"Raw usage before {raw_before.isoformat()}: {report.rows_dropped} row(s) in "
            f"{len(report.dropped_partitions)} dropped partition(s), "
            f"{report.rows_deleted} deleted in batches."
        )
    if content_before:
        click.echo(f"Bodies before {content_before.isoformat()}: {report.bodies_cleared} emptied.")


@click.group("providers")
def providers_group() -> None:
    """Provider health checks."""


@providers_group.command("check")
@click.option("--no-http", is_flag=True, help="Judge from usage only; skip the health-check URLs.")
@with_appcontext
@as_operator
def providers_check_command(no_http: bool) -> None:
    """Judge every provider's health and record one provider_health_logs row each.

    Meant to run every minute (cron or a systemd timer, see the README)."""
    results = provider_health.record_health_checks(http_checks=not no_http)
    for provider, health in results:
        score = "—" if health.score is None else str(health.score)
        line = f"{provider.name}: {health.status} (score {score})"
        if health.check is not None:
            outcome = "ok" if health.check.ok else f"failed: {health.check.error}"
            line += f", HTTP check {outcome}"
        click.echo(line)
    click.echo(f"Recorded {len(results)} health check(s).")


@click.group("config")
def config_group() -> None:
    """Applications' configuration."""


@config_group.command("export")
@click.option(
    "--environment",
    type=click.Choice(ENVIRONMENTS),
    default="production",
    show_default=True,
    help="The environment whose configuration is exported.",
)
@with_appcontext
@as_operator
def config_export_command(environment: str) -> None:
    """Print every feature's configuration for one environment as one JSON bundle (what
    GET /api/v1/config/<feature> answers, without subject): the Python client's fallback
    for a cold start while the console is unreachable.

    flask config export --environment production > bundle.json"""
    bundle = export_bundle(environment, datetime.now(UTC))
    db.session.rollback()  # read only
    click.echo(json.dumps(bundle, ensure_ascii=False, indent=2, sort_keys=True))


@click.group("credentials")
def credentials_group() -> None:
    """Provider credentials, encrypted at rest with CREDENTIALS_KEY."""


@credentials_group.command("rotate")
@with_appcontext
@as_operator
def credentials_rotate_command() -> None:
    """Re-encrypt every stored provider credential with the first key of CREDENTIALS_KEY.

    To change the key: CREDENTIALS_KEY="NEW,OLD", run this, then CREDENTIALS_KEY="NEW"."""
    try:
        count = stored_credentials.rotate_credentials(Actor.cli())
    except stored_credentials.CredentialsUnreadable as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Re-encrypted the credentials of {count} provider(s) with the first key.")


@click.command("start")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option(
    "--port", default=5000, show_default=True, envvar="PORT", type=click.IntRange(1, 65535)
)
@click.option(
    "--admin-email",
    default="admin@example.com",
    show_default=True,
    envvar="ADMIN_EMAIL",
    help="The first admin, created with a generated password when there is no user.",
)
@click.option("--demo-days", default=30, show_default=True, type=click.IntRange(1, 3650))
@click.option(
    "--demo-requests",
    default=20_000,
    show_default=True,
    envvar="DEMO_REQUESTS",
    type=click.IntRange(0, 50_000_000),
)
@click.option("--no-serve", is_flag=True, help="Set up only; do not start the server.")
@click.pass_context
@with_appcontext
def start_command(
    ctx: click.Context,
    host: str,
    port: int,
    admin_email: str,
    demo_days: int,
    demo_requests: int,
    no_serve: bool,
) -> None:
    """Bring up a development console in one process: upgrade the database, seed and load
    demo data when empty, create the first admin when there is no user, then serve (the
    development server, as `flask run`). Each step is the command of the same name, so a
    second start only checks and serves."""
    from flask_migrate import upgrade
    from werkzeug.serving import run_simple

    upgrade()
    ctx.invoke(seed_command, if_empty=True)
    ctx.invoke(demo_data_command, days=demo_days, requests=demo_requests, if_empty=True)
    ctx.invoke(create_admin_command, email=admin_email, generate_password=True, if_no_users=True)
    db.session.remove()
    if no_serve:
        return
    click.echo(f"\nConsole: http://{host}:{port}  (sign in as {admin_email})")
    click.echo(
        "Lost the password? .venv/bin/flask create-admin other@example.com creates another admin.\n"
    )
    # The app itself, not the proxy: the server calls it from its own threads.
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API
    run_simple(host, port, app, threaded=True)


def register_commands(app: Flask) -> None:
    for command in (
        start_command,
        seed_command,
        demo_data_command,
        create_admin_command,
        grant_app_access_command,
        rollup_group,
        usage_group,
        providers_group,
        config_group,
        credentials_group,
    ):
        app.cli.add_command(command)
