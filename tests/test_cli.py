"""flask seed, demo-data and create-admin, run as a user would run them."""

from __future__ import annotations

import contextvars
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.processes import environment_without
from webapp.models import (
    AIModel,
    AuditLog,
    Budget,
    Experiment,
    Feature,
    FeatureModelAssignment,
    Prompt,
    Provider,
    ProviderHealthLog,
    UsageEventId,
    UsageLog,
    User,
)
from webapp.services.usage.cost import request_cost


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def cli(app, db):
    runner = app.test_cli_runner()

    def run(*args: str, input: str | None = None):
        # In an empty context, as from a shell: the command gets its own app context.
        return contextvars.Context().run(runner.invoke, args=list(args), input=input)

    return run


SEED_COUNTS = {Feature: 3, Provider: 3, AIModel: 2, FeatureModelAssignment: 2, Budget: 3}


def test_seed_creates_the_seed_rows(cli, db):
    result = cli("seed")
    assert result.exit_code == 0, result.output
    assert {model: count(db, model) for model in SEED_COUNTS} == SEED_COUNTS
    names = set(db.session.scalars(select(Feature.name)))
    assert names == {"photo-tagging", "chatbot", "ai-search"}
    production = db.session.execute(
        select(Feature.name, AIModel.name)
        .join(FeatureModelAssignment, FeatureModelAssignment.feature_id == Feature.id)
        .join(AIModel, AIModel.id == FeatureModelAssignment.model_id)
        .where(FeatureModelAssignment.is_active, FeatureModelAssignment.environment == "production")
    ).all()
    assert set(production) == {("chatbot", "gpt-4"), ("photo-tagging", "vision-v2")}
    budget = db.session.scalars(select(Budget)).first()
    assert budget.period_type == "monthly" and budget.budget_amount == Decimal("1000.00")


def test_seed_is_idempotent(cli, db):
    cli("seed")
    audit_rows = count(db, AuditLog)
    result = cli("seed")
    assert result.exit_code == 0
    assert "nothing changed" in result.output
    assert {model: count(db, model) for model in SEED_COUNTS} == SEED_COUNTS
    assert count(db, AuditLog) == audit_rows  # no change, no audit row


def test_seed_budget_covers_the_current_month(cli, db):
    from datetime import UTC, datetime

    cli("seed")
    today = datetime.now(UTC).date()
    for budget in db.session.scalars(select(Budget)):
        assert budget.start_date == today.replace(day=1)
        assert budget.start_date <= today <= budget.end_date
        assert budget.end_date.month == today.month


def test_demo_data_loads_priced_usage_and_everything_else(cli, db):
    result = cli("demo-data", "--days", "7", "--requests", "600")
    assert result.exit_code == 0, result.output
    assert "Demo data loaded" in result.output
    assert count(db, UsageLog) == 600
    assert count(db, ProviderHealthLog) == 3 * 7 * 24
    assert count(db, Prompt) == 3
    assert count(db, Experiment) == 1
    # Every successful or failed request of a catalog model is priced from its model's
    # structured prices; the few that name a model outside the catalog are unpriced.
    priced = select(UsageLog).where(UsageLog.status != "timeout", UsageLog.model_id.is_not(None))
    for log in db.session.scalars(priced.limit(50)):
        assert log.cost_source == "catalog"
        model = db.session.get(AIModel, log.model_id)
        images = 1 if model.model_type == "vision" else 0
        assert log.cost_usd == request_cost(model, log.input_tokens, log.output_tokens, images)
        assert log.tokens_used == log.input_tokens + log.output_tokens
    statuses = set(db.session.scalars(select(UsageLog.status).distinct()))
    assert "success" in statuses and statuses <= {"success", "error", "timeout"}
    unknown = db.session.scalars(select(UsageLog).where(UsageLog.model_id.is_(None))).all()
    assert unknown and {(log.model_name, log.cost_source) for log in unknown} == {
        ("gpt-4.1-mini", "unpriced")
    }
    environments = set(db.session.scalars(select(UsageLog.environment).distinct()))
    assert environments == {"production", "staging", "development"}


def test_demo_data_if_empty_does_not_load_twice(cli, db):
    cli("demo-data", "--days", "2", "--requests", "50")
    result = cli("demo-data", "--days", "2", "--requests", "50", "--if-empty")
    assert result.exit_code == 0
    assert "already exist" in result.output
    assert count(db, UsageLog) == 50


def test_demo_data_refuses_bad_numbers(cli, db):
    result = cli("demo-data", "--days", "0")
    assert result.exit_code == 2
    assert "--days" in result.output
    assert count(db, UsageLog) == 0


def test_create_admin_with_password_from_stdin(cli, db):
    result = cli(
        "create-admin", "Ops@Example.com", "--password-stdin", input="a long enough password\n"
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User))
    assert user.email == "ops@example.com" and user.role == "platform_admin"
    assert user.password_hash.startswith("$argon2id$")
    assert user.must_change_password is False  # the person chose it


def test_a_generated_admin_password_must_be_changed_at_first_sign_in(cli, db):
    result = cli("create-admin", "ops@example.com", "--generate-password")
    assert result.exit_code == 0, result.output
    assert "must be changed at the first sign-in" in result.output
    assert db.session.scalar(select(User.must_change_password)) is True


def test_create_admin_interactive_prompt_and_viewer_role(cli, db):
    result = cli(
        "create-admin",
        "v@example.com",
        "--role",
        "viewer",
        input="a long enough password\na long enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(User.role)) == "viewer"


def test_create_admin_refuses_a_short_password(cli, db):
    result = cli("create-admin", "ops@example.com", "--password-stdin", input="short\n")
    assert result.exit_code == 1
    assert "password: must be at least 12 characters" in result.output
    assert count(db, User) == 0


def test_create_admin_refuses_a_duplicate_email(cli, db):
    cli("create-admin", "ops@example.com", "--password-stdin", input="a long enough password\n")
    result = cli(
        "create-admin", "OPS@example.com", "--password-stdin", input="another long password\n"
    )
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert count(db, User) == 1


def test_create_admin_refuses_an_invalid_email_and_role(cli, db):
    result = cli(
        "create-admin", "not-an-email", "--password-stdin", input="a long enough password\n"
    )
    assert result.exit_code == 1 and "email: is not a valid email address" in result.output
    result = cli(
        "create-admin", "a@example.com", "--role", "root", "--password-stdin", input="x" * 20
    )
    assert result.exit_code == 2 and "--role" in result.output
    assert count(db, User) == 0


def test_create_admin_generates_and_prints_a_password_once(cli, db):
    result = cli("create-admin", "ops@example.com", "--generate-password")
    assert result.exit_code == 0
    assert "shown only this once" in result.output
    again = cli("create-admin", "someone@example.com", "--generate-password", "--if-no-users")
    assert again.exit_code == 0 and "no user created" in again.output
    assert count(db, User) == 1


def test_created_admin_can_sign_in_with_the_printed_password(cli, client, db):
    from tests.conftest import sign_in

    result = cli("create-admin", "ops@example.com", "--generate-password")
    password = result.output.rsplit(": ", 1)[1].strip()
    response = sign_in(client, "ops@example.com", password)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_seed_if_empty_leaves_an_admins_deletions_alone(cli, db):
    cli("seed")
    db.session.delete(db.session.scalar(select(Feature).where(Feature.name == "ai-search")))
    db.session.commit()
    result = cli("seed", "--if-empty")
    assert result.exit_code == 0 and "not applied" in result.output
    assert count(db, Feature) == 2


def test_demo_data_refuses_a_production_database_without_force(cli, app, db, monkeypatch):
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    result = cli("demo-data", "--requests", "10")
    assert result.exit_code == 1 and "production" in result.output
    assert count(db, UsageLog) == 0
    assert cli("demo-data", "--requests", "10", "--force").exit_code == 0
    assert count(db, UsageLog) == 10


def test_rollup_rebuild_recomputes_from_raw_rows(cli, db):
    from webapp.services.usage.rollup import ROLLUP

    assert cli("seed").exit_code == 0
    assert cli("demo-data", "--days", "3", "--requests", "300").exit_code == 0
    before = db.session.scalar(select(func.sum(ROLLUP.c.request_count)))
    assert before == 300
    db.session.execute(ROLLUP.delete())
    db.session.commit()
    result = cli("rollup", "rebuild", "--from", "2000-01-01")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Rollup rebuilt from 2000-01-01:")
    assert db.session.scalar(select(func.sum(ROLLUP.c.request_count))) == 300
    result = cli("rollup", "rebuild")
    assert "for every day" in result.output
    audit = db.session.scalars(select(AuditLog.action).where(AuditLog.action == "rollup.rebuild"))
    assert len(audit.all()) == 2


def test_rollup_rebuild_refuses_a_bad_date(cli, db):
    result = cli("rollup", "rebuild", "--from", "yesterday")
    assert result.exit_code == 2
    assert "'yesterday' does not match the format '%Y-%m-%d'" in result.output


def test_usage_prune_event_ids_deletes_only_ids_no_event_can_match(app, cli, db):
    now = datetime.now(UTC)
    max_age = app.config["USAGE_MAX_AGE_DAYS"]
    for name, age in (("old", timedelta(days=max_age + 2)), ("recent", timedelta(days=max_age))):
        db.session.add(
            UsageEventId(
                environment="production",
                event_id=name,
                usage_log_id=uuid.uuid4(),
                created_at=now - age,
                is_final=True,
                received_at=now,
            )
        )
    db.session.commit()
    result = cli("usage", "prune-event-ids")
    assert result.exit_code == 0, result.output
    assert "Pruned 1 event id(s)" in result.output
    db.session.expire_all()
    assert set(db.session.scalars(select(UsageEventId.event_id))) == {"recent"}
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "usage.prune_event_ids"))
    assert audit.new_values["deleted"] == 1


def test_start_sets_up_everything_once_and_a_second_start_only_checks(cli, db):
    first = cli("start", "--no-serve", "--demo-days", "2", "--demo-requests", "120")
    assert first.exit_code == 0, first.output
    assert "Demo data loaded" in first.output
    assert "Generated password (shown only this once)" in first.output
    rows = {model: count(db, model) for model in (Feature, UsageLog, User)}
    assert rows[UsageLog] == 120 and rows[User] == 1
    again = cli("start", "--no-serve", "--admin-email", "other@example.com")
    assert again.exit_code == 0, again.output
    assert "Features exist already; seed not applied." in again.output
    assert "Usage logs already exist; demo data not loaded again." in again.output
    assert "Users already exist; no user created." in again.output
    assert "password" not in again.output.lower()
    assert {model: count(db, model) for model in rows} == rows


def test_a_start_imports_no_statistics_and_gives_the_development_notice_once(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = environment_without("DATABASE_URL", "AIPM_", "FLASK_", "TEST_")
    env |= {"AIPM_INSTANCE_DIR": str(tmp_path), "FLASK_APP": "wsgi"}
    # The console's own process: scipy stays out until an experiment is analysed.
    probe = "import sys, wsgi; print('scipy' in sys.modules)"
    imported = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, env=env, capture_output=True, text=True
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "False"
    flask = [sys.executable, "-m", "flask", "start", "--no-serve", "--demo-requests", "30"]
    started = subprocess.run(flask, cwd=root, env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr + started.stdout
    assert (started.stdout + started.stderr).count("Development mode") == 1
    assert "Demo data loaded" in started.stdout
