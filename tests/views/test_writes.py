"""Every write route: exactly one audit row when it succeeds, none (beside its own
failure record) when it fails, and nothing at all without a valid CSRF token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from tests import factories
from tests.conftest import PASSWORD, csrf_token, enrol_mfa, make_user, totp_code
from tests.views.test_access import API_KEY, POLICY, ROUTES
from webapp.models import (
    AIModel,
    AuditLog,
    Experiment,
    ExperimentResult,
    Feature,
    Prompt,
    Provider,
    User,
)
from webapp.services.identity import mfa

NEW_PASSWORD = "a brand new passphrase"
API = "/api/platform/ai-management"


@dataclass
class World:
    admin: User
    viewer: User
    feature: Feature
    provider: Provider  # its gpt-4o-mini serves the feature in production
    idle_provider: Provider  # offers nothing in use
    serving: AIModel  # gpt-4o-mini, active in production
    previous: AIModel  # gpt-4, served production before
    spare: AIModel  # assigned nowhere
    deprecated: AIModel
    active_prompt: Prompt  # greeting v2, active (live in production) and live in development
    draft_prompt: Prompt  # greeting v3, inactive, the newest
    old_prompt: Prompt  # greeting v1, inactive (was live in production before v2)
    draft_experiment: Experiment  # prompt_testing, draft
    live_experiment: Experiment  # model_comparison, running, "spare" wins significantly
    paused_experiment: Experiment  # a_b_test, paused


@pytest.fixture
def world(db, admin_user) -> World:

    viewer = make_user("viewer@example.com", "viewer")
    feature = factories.feature("chatbot")
    provider = factories.provider("openai")
    idle = factories.provider("idle")
    previous = factories.model(provider, "gpt-4")
    serving = factories.model(provider, "gpt-4o-mini")
    spare = factories.model(idle, "spare")
    deprecated = factories.model(provider, "davinci", status="deprecated")
    earlier = datetime.now(UTC) - timedelta(days=1)
    factories.assignment(
        feature,
        previous,
        is_active=False,
        assigned_at=earlier,
        deactivated_at=earlier + timedelta(hours=1),
    )
    factories.assignment(feature, serving)
    old = factories.prompt("greeting", 1, feature_id=feature.id, content="Hey")
    factories.activation(
        old, "production", activated_at=earlier, deactivated_at=earlier + timedelta(hours=1)
    )  # production served v1 before: something to roll back to
    active = factories.prompt(
        "greeting", 2, feature_id=feature.id, is_active=True, live_in=("development",)
    )
    draft = factories.prompt("greeting", 3, feature_id=feature.id, content="Hi {{name}}")
    experiments = _experiments(db, feature, active, draft, serving, spare)
    db.session.commit()
    return World(
        admin_user,
        viewer,
        feature,
        provider,
        idle,
        serving,
        previous,
        spare,
        deprecated,
        active,
        draft,
        old,
        *experiments,
    )


def _experiments(db, feature, control_prompt, new_prompt, serving, spare):
    config = {"primary_metric": "converted"}
    draft = Experiment(
        name="Greeting",
        feature_id=feature.id,
        experiment_type="prompt_testing",
        variants=[
            {"id": "control", "name": "Current", "prompt_id": str(control_prompt.id)},
            {"id": "new", "name": "New", "prompt_id": str(new_prompt.id)},
        ],
        traffic_allocation={"control": 50, "new": 50},
        config=config,
    )
    live = Experiment(
        name="Cheaper model",
        feature_id=feature.id,
        experiment_type="model_comparison",
        variants=[
            {"id": "current", "name": "Current", "model_id": str(serving.id)},
            {"id": "spare", "name": "Spare", "model_id": str(spare.id)},
        ],
        traffic_allocation={"current": 50, "spare": 50},
        config=config,
        status="running",
        start_date=datetime.now(UTC),
    )
    paused = Experiment(
        name="Button colour",
        feature_id=feature.id,
        experiment_type="a_b_test",
        variants=[{"id": "a", "name": "A"}, {"id": "b", "name": "B", "params": {"x": 1}}],
        traffic_allocation={"a": 50, "b": 50},
        config=config,
        status="paused",
        start_date=datetime.now(UTC),
    )
    db.session.add_all([draft, live, paused])
    db.session.flush()
    # One executemany insert, not 1,000 ORM objects: this fixture runs for every case.
    db.session.execute(
        insert(ExperimentResult),
        [
            {
                "experiment_id": live.id,
                "variant_id": variant,
                "session_id": uuid.uuid4(),
                "metric_name": "converted",
                "metric_value": 1 if index < wins else 0,
            }
            for variant, wins in (("current", 50), ("spare", 110))
            for index in range(500)
        ],
    )
    return draft, live, paused


def _model_form(w, **changes):
    form = {
        "name": "claude",
        "display_name": "Claude",
        "provider_id": str(w.provider.id),
        "model_type": "llm",
        "status": "available",
        "input_price_per_million": "0.8",
        "output_price_per_million": "4",
    }
    return {"data": {**form, **changes}}


def _provider_form(**changes):
    form = {
        "name": "anthropic",
        "display_name": "Anthropic",
        "provider_type": "anthropic",
        "status": "active",
        "api_endpoint": "",
    }
    return {"data": {**form, **changes}}


def _budget_body(**changes):
    body = {
        "name": "November",
        "budget_amount": "50.00",
        "period_type": "monthly",
        "alert_threshold": "0.80",
        "start_date": "2026-11-01",
        "end_date": "2026-11-30",
        "is_active": "on",
    }
    return {**body, **changes}


def _budget_json(**changes):
    body = _budget_body(**changes)
    body.pop("is_active")
    return body


def _budget_id(w):
    """A budget to change, created on first use (most cases need none)."""
    if not hasattr(w, "budget"):
        from webapp.extensions import db

        w.budget = factories.budget(name="November")
        db.session.commit()
    return w.budget.id


def _spare_feature_id(w):
    """A feature without history (no model, usage or experiment): one that may be
    deleted, created on first use."""
    if not hasattr(w, "spare_feature"):
        from webapp.extensions import db

        w.spare_feature = factories.feature("spare", display_name="Spare")
        db.session.commit()
    return w.spare_feature.id


def _api_key_id(w):
    """An API key to revoke, created on first use."""
    if not hasattr(w, "api_key"):
        from webapp.extensions import db

        w.api_key, _ = factories.api_key(name="tagger")
        db.session.commit()
    return w.api_key.id


def _api_key_body(**changes):
    return {"name": "chat app", "environment": "staging", "scopes": ["usage:write"], **changes}


# endpoint -> (valid request, expected action), (failing request, failure record or None)
# A request is (method, url, kwargs) built from the world.
CASES = {
    "auth.login": (
        lambda w: ("POST", "/login", {"data": {"email": w.admin.email, "password": PASSWORD}}),
        "auth.login",
        lambda w: ("POST", "/login", {"data": {"email": w.admin.email, "password": "wrong!"}}),
        "auth.login_failed",
    ),
    "auth.logout": (
        lambda w: ("POST", "/logout", {}),
        "auth.logout",
        None,  # nothing to get wrong but the CSRF token (tested below)
        None,
    ),
    "auth.change_password": (
        lambda w: (
            "POST",
            "/account/password",
            {
                "data": {
                    "current_password": PASSWORD,
                    "new_password": NEW_PASSWORD,
                    "confirm_password": NEW_PASSWORD,
                }
            },
        ),
        "user.change_password",
        lambda w: (
            "POST",
            "/account/password",
            {
                "data": {
                    "current_password": "not it",
                    "new_password": NEW_PASSWORD,
                    "confirm_password": NEW_PASSWORD,
                }
            },
        ),
        "auth.reauth_failed",
    ),
    "api.put_feature": (
        lambda w: ("PUT", f"{API}/features/{w.feature.id}", {"json": {"status": "maintenance"}}),
        "feature.update",
        lambda w: ("PUT", f"{API}/features/{w.feature.id}", {"json": {"status": "gone"}}),
        None,
    ),
    "users.create": (
        lambda w: ("POST", "/users", {"data": {"email": "new@example.com", "role": "viewer"}}),
        "user.create",
        lambda w: ("POST", "/users", {"data": {"email": "not an email", "role": "viewer"}}),
        None,
    ),
    "users.change_role": (
        lambda w: ("POST", f"/users/{w.viewer.id}/role", {"data": {"role": "platform_admin"}}),
        "user.change_role",
        lambda w: ("POST", f"/users/{w.admin.id}/role", {"data": {"role": "viewer"}}),
        None,
    ),
    "users.deactivate": (
        lambda w: ("POST", f"/users/{w.viewer.id}/deactivate", {}),
        "user.deactivate",
        lambda w: ("POST", f"/users/{w.admin.id}/deactivate", {}),
        None,
    ),
    "users.activate": (
        lambda w: ("POST", f"/users/{w.viewer.id}/activate", {}),
        "user.activate",
        lambda w: ("POST", f"/users/{uuid.uuid4()}/activate", {}),
        None,
    ),
    # --- features, models, providers: pages ---
    "features.update": (
        lambda w: ("POST", f"/features/{w.feature.id}", {"data": {"display_name": "Chat"}}),
        "feature.update",
        lambda w: ("POST", f"/features/{w.feature.id}", {"data": {"display_name": ""}}),
        None,
    ),
    "features.delete": (
        lambda w: ("POST", f"/features/{_spare_feature_id(w)}/delete", {}),
        "feature.delete",
        lambda w: ("POST", f"/features/{uuid.uuid4()}/delete", {}),
        None,
    ),
    "features.create": (
        lambda w: (
            "POST",
            "/features",
            {"data": {"name": "ai-search", "display_name": "AI Search", "model_type": "embedding"}},
        ),
        "feature.create",
        lambda w: ("POST", "/features", {"data": {"name": "Bad Name", "display_name": ""}}),
        None,
    ),
    "features.assign": (
        lambda w: (
            "POST",
            f"/features/{w.feature.id}/assign",
            {"data": {"environment": "production", "model_id": str(w.previous.id)}},
        ),
        "assignment.assign",
        lambda w: (
            "POST",
            f"/features/{w.feature.id}/assign",
            {"data": {"environment": "production", "model_id": str(w.deprecated.id)}},
        ),
        None,
    ),
    "features.rollback": (
        lambda w: (
            "POST",
            f"/features/{w.feature.id}/rollback",
            {"data": {"environment": "production"}},
        ),
        "assignment.rollback",
        lambda w: (
            "POST",
            f"/features/{w.feature.id}/rollback",
            {"data": {"environment": "staging"}},
        ),
        None,
    ),
    "features.change_status": (
        lambda w: ("POST", f"/features/{w.feature.id}/status", {"data": {"status": "maintenance"}}),
        "feature.update",
        lambda w: ("POST", f"/features/{w.feature.id}/status", {"data": {"status": "asleep"}}),
        None,
    ),
    "models.create": (
        lambda w: ("POST", "/models", _model_form(w)),
        "model.create",
        lambda w: ("POST", "/models", _model_form(w, input_price_per_million="-1")),
        None,
    ),
    "models.update": (
        lambda w: (
            "POST",
            f"/models/{w.spare.id}",
            _model_form(w, name="spare-2", provider_id=str(w.idle_provider.id)),
        ),
        "model.update",
        lambda w: ("POST", f"/models/{w.spare.id}", _model_form(w, status="gone")),
        None,
    ),
    "models.delete": (
        lambda w: ("POST", f"/models/{w.spare.id}/delete", {}),
        "model.delete",
        lambda w: ("POST", f"/models/{w.serving.id}/delete", {}),
        None,
    ),
    "providers.create": (
        lambda w: ("POST", "/providers", _provider_form()),
        "provider.create",
        lambda w: ("POST", "/providers", _provider_form(name="")),
        None,
    ),
    "providers.update": (
        lambda w: (
            "POST",
            f"/providers/{w.idle_provider.id}",
            _provider_form(name="idle", status="inactive"),
        ),
        "provider.update",
        lambda w: (
            "POST",
            f"/providers/{w.idle_provider.id}",
            _provider_form(api_endpoint="ftp://x"),
        ),
        None,
    ),
    "providers.delete": (
        lambda w: ("POST", f"/providers/{w.idle_provider.id}/delete", {}),
        "provider.delete",
        lambda w: ("POST", f"/providers/{w.provider.id}/delete", {}),
        None,
    ),
    # --- the JSON API ---
    "api.create_feature": (
        lambda w: (
            "POST",
            f"{API}/features",
            {"json": {"name": "ai-search", "display_name": "AI Search", "model_type": "embedding"}},
        ),
        "feature.create",
        lambda w: ("POST", f"{API}/features", {"json": {"name": "chatbot", "display_name": "Dup"}}),
        None,
    ),
    "api.bulk_update_features": (
        lambda w: (
            "PUT",
            f"{API}/features/bulk",
            {"json": {"items": [{"id": str(w.feature.id), "status": "inactive"}]}},
        ),
        "feature.update",
        lambda w: (
            "PUT",
            f"{API}/features/bulk",
            {"json": {"items": [{"id": str(w.feature.id), "status": "x"}]}},
        ),
        None,
    ),
    "api.delete_feature": (
        lambda w: ("DELETE", f"{API}/features/{_spare_feature_id(w)}", {"json": {}}),
        "feature.delete",
        # A feature with history: refused (409), nothing audited.
        lambda w: ("DELETE", f"{API}/features/{w.feature.id}", {"json": {}}),
        None,
    ),
    "api.assign_model": (
        lambda w: (
            "POST",
            f"{API}/features/{w.feature.id}/assignments",
            {"json": {"model_id": str(w.spare.id), "environment": "staging"}},
        ),
        "assignment.assign",
        lambda w: (
            "POST",
            f"{API}/features/{w.feature.id}/assignments",
            {"json": {"model_id": str(w.spare.id), "environment": "qa"}},
        ),
        None,
    ),
    "api.rollback_assignment": (
        lambda w: ("POST", f"{API}/features/{w.feature.id}/assignments/rollback", {"json": {}}),
        "assignment.rollback",
        lambda w: (
            "POST",
            f"{API}/features/{w.feature.id}/assignments/rollback",
            {"json": {"environment": "development"}},
        ),
        None,
    ),
    "api.create_provider": (
        lambda w: (
            "POST",
            f"{API}/providers",
            {
                "json": {
                    "name": "anthropic",
                    "display_name": "Anthropic",
                    "provider_type": "anthropic",
                }
            },
        ),
        "provider.create",
        lambda w: (
            "POST",
            f"{API}/providers",
            {"json": {"name": "openai", "display_name": "Dup", "provider_type": "openai"}},
        ),
        None,
    ),
    "api.put_provider": (
        lambda w: (
            "PUT",
            f"{API}/providers/{w.idle_provider.id}",
            {"json": {"status": "inactive"}},
        ),
        "provider.update",
        lambda w: ("PUT", f"{API}/providers/{w.idle_provider.id}", {"json": {"status": "bored"}}),
        None,
    ),
    "api.delete_provider": (
        lambda w: ("DELETE", f"{API}/providers/{w.idle_provider.id}", {"json": {}}),
        "provider.delete",
        lambda w: ("DELETE", f"{API}/providers/{w.provider.id}", {"json": {}}),
        None,
    ),
    "api.create_model": (
        lambda w: (
            "POST",
            f"{API}/models",
            {
                "json": {
                    "name": "claude",
                    "display_name": "Claude",
                    "provider_id": str(w.provider.id),
                    "model_type": "llm",
                    "pricing": {"input_price_per_million": "0.8", "output_price_per_million": 4},
                }
            },
        ),
        "model.create",
        lambda w: (
            "POST",
            f"{API}/models",
            {
                "json": {
                    "name": "claude",
                    "display_name": "Claude",
                    "provider_id": str(w.provider.id),
                    "model_type": "llm",
                    "pricing": {"input_price_per_million": "-0.8"},
                }
            },
        ),
        None,
    ),
    "api.put_model": (
        lambda w: (
            "PUT",
            f"{API}/models/{w.spare.id}",
            {"json": {"pricing": {"output_price_per_million": 2}}},
        ),
        "model.update",
        lambda w: ("PUT", f"{API}/models/{w.spare.id}", {"json": {"status": "retired"}}),
        None,
    ),
    "api.delete_model": (
        lambda w: ("DELETE", f"{API}/models/{w.spare.id}", {"json": {}}),
        "model.delete",
        lambda w: ("DELETE", f"{API}/models/{w.serving.id}", {"json": {}}),
        None,
    ),
    # --- prompts: pages ---
    "prompts.create": (
        lambda w: ("POST", "/prompts", {"data": {"name": "farewell", "content": "Bye {{name}}"}}),
        "prompt.create",
        lambda w: ("POST", "/prompts", {"data": {"name": "farewell", "content": ""}}),
        None,
    ),
    "prompts.save_content": (
        lambda w: (
            "POST",
            f"/prompts/{w.draft_prompt.id}/content",
            {"data": {"content": "Hey {{name}}"}},
        ),
        "prompt.new_version",
        lambda w: ("POST", f"/prompts/{w.draft_prompt.id}/content", {"data": {"content": "  "}}),
        None,
    ),
    "prompts.save_details": (
        lambda w: (
            "POST",
            f"/prompts/{w.draft_prompt.id}/details",
            {"data": {"description": "new", "tags": "a"}},
        ),
        "prompt.update",
        lambda w: ("POST", f"/prompts/{w.draft_prompt.id}/details", {"data": {"tags": "x" * 51}}),
        None,
    ),
    "prompts.activate": (
        lambda w: ("POST", f"/prompts/{w.draft_prompt.id}/activate", {}),
        "prompt.activate",
        lambda w: ("POST", f"/prompts/{uuid.uuid4()}/activate", {}),
        None,
    ),
    "prompts.deactivate": (
        lambda w: ("POST", f"/prompts/{w.active_prompt.id}/deactivate", {}),
        "prompt.deactivate",
        lambda w: ("POST", f"/prompts/{uuid.uuid4()}/deactivate", {}),
        None,
    ),
    "prompts.promote": (
        lambda w: (
            "POST",
            f"/prompts/{w.active_prompt.id}/promote",
            {"data": {"to_environment": "staging"}},
        ),
        "prompt.promote",
        lambda w: (
            "POST",
            f"/prompts/{w.draft_prompt.id}/promote",
            {"data": {"to_environment": "staging"}},
        ),
        None,
    ),
    "prompts.rollback": (
        lambda w: (
            "POST",
            f"/prompts/{w.draft_prompt.id}/rollback",
            {"data": {"environment": "production"}},
        ),
        "prompt.rollback",
        lambda w: (
            "POST",
            f"/prompts/{w.draft_prompt.id}/rollback",
            {"data": {"environment": "staging"}},
        ),
        None,
    ),
    "prompts.duplicate": (
        lambda w: (
            "POST",
            f"/prompts/{w.active_prompt.id}/duplicate",
            {"data": {"name": "greeting-copy"}},
        ),
        "prompt.duplicate",
        lambda w: (
            "POST",
            f"/prompts/{w.active_prompt.id}/duplicate",
            {"data": {"name": "greeting"}},
        ),
        None,
    ),
    "prompts.delete": (
        lambda w: ("POST", f"/prompts/{w.old_prompt.id}/delete", {}),
        "prompt.delete",
        lambda w: ("POST", f"/prompts/{w.active_prompt.id}/delete", {}),
        None,
    ),
    # --- prompts: API ---
    "api.create_prompt": (
        lambda w: ("POST", f"{API}/prompts", {"json": {"name": "farewell", "content": "Bye"}}),
        "prompt.create",
        lambda w: ("POST", f"{API}/prompts", {"json": {"name": "farewell"}}),
        None,
    ),
    "api.put_prompt": (
        lambda w: (
            "PUT",
            f"{API}/prompts/{w.draft_prompt.id}",
            {"json": {"content": "Yo {{name}}"}},
        ),
        "prompt.new_version",
        lambda w: ("PUT", f"{API}/prompts/{w.draft_prompt.id}", {"json": {"name": "renamed"}}),
        None,
    ),
    "api.delete_prompt": (
        lambda w: ("DELETE", f"{API}/prompts/{w.old_prompt.id}", {"json": {}}),
        "prompt.delete",
        lambda w: ("DELETE", f"{API}/prompts/{w.active_prompt.id}", {"json": {}}),
        None,
    ),
    "api.activate_prompt": (
        lambda w: ("POST", f"{API}/prompts/{w.draft_prompt.id}/activate", {"json": {}}),
        "prompt.activate",
        lambda w: ("POST", f"{API}/prompts/not-an-id/activate", {"json": {}}),
        None,
    ),
    "api.deactivate_prompt": (
        lambda w: ("POST", f"{API}/prompts/{w.active_prompt.id}/deactivate", {"json": {}}),
        "prompt.deactivate",
        lambda w: ("POST", f"{API}/prompts/{uuid.uuid4()}/deactivate", {"json": {}}),
        None,
    ),
    "api.promote_prompt": (
        lambda w: (
            "POST",
            f"{API}/prompts/{w.active_prompt.id}/promote",
            {"json": {"to_environment": "staging"}},
        ),
        "prompt.promote",
        lambda w: (
            "POST",
            f"{API}/prompts/{w.active_prompt.id}/promote",
            {"json": {"to_environment": "development"}},
        ),
        None,
    ),
    "api.rollback_prompt": (
        lambda w: (
            "POST",
            f"{API}/prompts/{w.active_prompt.id}/rollback",
            {"json": {"environment": "production"}},
        ),
        "prompt.rollback",
        lambda w: (
            "POST",
            f"{API}/prompts/{w.active_prompt.id}/rollback",
            {"json": {"environment": "qa"}},
        ),
        None,
    ),
    "api.duplicate_prompt": (
        lambda w: (
            "POST",
            f"{API}/prompts/{w.active_prompt.id}/duplicate",
            {"json": {"name": "copy"}},
        ),
        "prompt.duplicate",
        lambda w: ("POST", f"{API}/prompts/{w.active_prompt.id}/duplicate", {"json": {"name": ""}}),
        None,
    ),
    # A POST that saves nothing (renders a test): no audit row either way.
    "api.test_prompt": (
        lambda w: (
            "POST",
            f"{API}/prompts/{w.active_prompt.id}/test",
            {"json": {"variables": {"name": "A"}}},
        ),
        None,
        lambda w: (
            "POST",
            f"{API}/prompts/{w.active_prompt.id}/test",
            {"json": {"variables": [1]}},
        ),
        None,
    ),
    "users.reset_password": (
        lambda w: ("POST", f"/users/{w.viewer.id}/reset-password", {}),
        "user.reset_password",
        lambda w: ("POST", f"/users/{uuid.uuid4()}/reset-password", {}),
        None,
    ),
    "users.reset_mfa": (
        lambda w: ("POST", f"/users/{w.viewer.id}/reset-mfa", {}),
        "user.reset_mfa",
        lambda w: ("POST", f"/users/{uuid.uuid4()}/reset-mfa", {}),
        None,
    ),
    "users.end_sessions": (
        lambda w: ("POST", f"/users/{w.viewer.id}/end-sessions", {}),
        "user.end_sessions",
        lambda w: ("POST", f"/users/{uuid.uuid4()}/end-sessions", {}),
        None,
    ),
    # --- one's own account: sessions, second factor, re-authentication ---
    "account.end_session": (
        lambda w: ("POST", f"/account/sessions/{_other_session(w)}/end", {}),
        "session.end",
        lambda w: ("POST", f"/account/sessions/{uuid.uuid4()}/end", {}),
        None,
    ),
    "account.end_other_sessions": (
        lambda w: ("POST", "/account/sessions/end-others", {}),
        "session.end_others",
        None,
        None,
    ),
    "account.enable_mfa": (
        lambda w: ("POST", "/account/mfa/enable", {"data": {"code": totp_code(w.mfa_secret)}}),
        "mfa.enable",
        lambda w: ("POST", "/account/mfa/enable", {"data": {"code": "12345x"}}),
        None,
    ),
    "account.regenerate_recovery_codes": (
        lambda w: ("POST", "/account/mfa/recovery-codes", {}),
        "mfa.recovery_codes_regenerated",
        None,
        None,
    ),
    "account.disable_mfa": (
        lambda w: ("POST", "/account/mfa/disable", {}),
        "mfa.disable",
        None,
        None,
    ),
    "account.reauthenticate": (
        lambda w: ("POST", "/account/reauthenticate", {"data": {"password": PASSWORD}}),
        "auth.reauthenticate",
        lambda w: ("POST", "/account/reauthenticate", {"data": {"password": "not it"}}),
        "auth.reauth_failed",
    ),
    "account.mfa_login": (
        lambda w: ("POST", "/login/mfa", {"data": {"code": totp_code(w.mfa_secret)}}),
        None,  # the sign-in itself was recorded when the password was right
        lambda w: ("POST", "/login/mfa", {"data": {"code": "12345x"}}),
        "auth.mfa_failed",
    ),
    # --- budgets: API and pages ---
    "api.create_budget": (
        lambda w: ("POST", f"{API}/spending", {"json": _budget_json()}),
        "budget.create",
        lambda w: ("POST", f"{API}/spending", {"json": _budget_json(budget_amount="-5")}),
        None,
    ),
    "api.create_budget_alias": (
        lambda w: ("POST", f"{API}/budgets", {"json": _budget_json()}),
        "budget.create",
        lambda w: ("POST", f"{API}/budgets", {"json": _budget_json(end_date="2026-01-01")}),
        None,
    ),
    "api.put_budget": (
        lambda w: ("PUT", f"{API}/budgets/{_budget_id(w)}", {"json": {"budget_amount": "75"}}),
        "budget.update",
        lambda w: ("PUT", f"{API}/budgets/{_budget_id(w)}", {"json": {"budget_amount": "0"}}),
        None,
    ),
    "api.delete_budget": (
        lambda w: ("DELETE", f"{API}/budgets/{_budget_id(w)}", {}),
        "budget.delete",
        lambda w: ("DELETE", f"{API}/budgets/{uuid.uuid4()}", {}),
        None,
    ),
    "budgets.create": (
        lambda w: ("POST", "/budgets", {"data": _budget_body()}),
        "budget.create",
        lambda w: ("POST", "/budgets", {"data": _budget_body(budget_amount="-5")}),
        None,
    ),
    "budgets.update": (
        lambda w: ("POST", f"/budgets/{_budget_id(w)}", {"data": _budget_body(name="Renamed")}),
        "budget.update",
        lambda w: ("POST", f"/budgets/{_budget_id(w)}", {"data": _budget_body(name="")}),
        None,
    ),
    "budgets.delete": (
        lambda w: ("POST", f"/budgets/{_budget_id(w)}/delete", {}),
        "budget.delete",
        lambda w: ("POST", f"/budgets/{uuid.uuid4()}/delete", {}),
        None,
    ),
    # --- API keys ---
    "api_keys.create": (
        lambda w: ("POST", "/api-keys", {"data": _api_key_body()}),
        "api_key.create",
        lambda w: ("POST", "/api-keys", {"data": _api_key_body(scopes=[])}),
        None,
    ),
    "api_keys.revoke": (
        lambda w: ("POST", f"/api-keys/{_api_key_id(w)}/revoke", {}),
        "api_key.revoke",
        lambda w: ("POST", f"/api-keys/{uuid.uuid4()}/revoke", {}),
        None,
    ),
    "api.create_api_key": (
        lambda w: ("POST", f"{API}/api-keys", {"json": _api_key_body()}),
        "api_key.create",
        lambda w: ("POST", f"{API}/api-keys", {"json": _api_key_body(environment="live")}),
        None,
    ),
    "api.revoke_api_key": (
        lambda w: ("POST", f"{API}/api-keys/{_api_key_id(w)}/revoke", {"json": {}}),
        "api_key.revoke",
        lambda w: ("POST", f"{API}/api-keys/{uuid.uuid4()}/revoke", {"json": {}}),
        None,
    ),
}

# Writes of the console's users. /api/v1/ writes are an application's (API key, no
# cookies, no CSRF, reported data rather than admin actions): tests/apps_api covers them.
WRITE_ENDPOINTS = sorted(
    {e for e, m, _ in ROUTES if m not in ("GET",) and e != "static" and POLICY[e] != API_KEY}
)


def test_every_write_route_has_a_case():
    assert sorted(CASES) == WRITE_ENDPOINTS


def new_audit_actions(db, since: int) -> list[str]:
    db.session.expire_all()
    actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.created_at)).all()
    return list(actions[since:])


def audit_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditLog))


def prepare(endpoint: str, client, world: World):
    """Sign in (except for sign-in itself) and set the stage the endpoint needs."""
    from tests.conftest import sign_in

    if endpoint == "users.activate":
        world.viewer.is_active_user = False
        from webapp.extensions import db

        db.session.commit()
    if endpoint == "users.reset_mfa":
        enrol_mfa(world.viewer)
    if endpoint == "account.mfa_login":
        world.mfa_secret = enrol_mfa(world.admin)
    if endpoint != "auth.login":
        assert sign_in(client, world.admin.email).status_code == 302
    if endpoint in ("account.regenerate_recovery_codes", "account.disable_mfa"):
        enrol_mfa(world.admin)
    if endpoint == "account.enable_mfa":
        client.get("/account/mfa")
        with client.session_transaction() as session:
            world.mfa_secret = mfa.open_pending_secret(session["mfa_enrolment_secret"])


def _other_session(w) -> uuid.UUID:
    """A session of the admin on another device."""
    from webapp.extensions import db
    from webapp.services.identity import sessions

    record, _ = sessions.start_session(w.admin, datetime.now(UTC), "192.0.2.7", "Phone")
    db.session.commit()
    return record.id


def send(client, request, with_token: bool = True):
    method, url, kwargs = request
    kwargs = {
        key: dict(value) if isinstance(value, dict) else value for key, value in kwargs.items()
    }
    token = csrf_token(client, "/login" if url.startswith("/login") else "/")
    if with_token:
        if "json" in kwargs:
            kwargs["headers"] = {"X-CSRFToken": token}
        else:
            kwargs.setdefault("data", {})["csrf_token"] = token
    return client.open(url, method=method, **kwargs)


def _experiment_form(w, **changes):
    form = {
        "name": "Button colour 2",
        "feature_id": str(w.feature.id),
        "experiment_type": "a_b_test",
        "primary_metric": "clicked",
        "variant_0_id": "a",
        "variant_0_name": "Blue",
        "variant_1_id": "b",
        "variant_1_name": "Green",
        "variant_1_params": '{"colour": "green"}',
    }
    return {"data": {**form, **changes}}


def _experiment_json(w, **changes):
    body = {
        "name": "Greeting v4",
        "feature_id": str(w.feature.id),
        "experiment_type": "prompt_testing",
        "variants": [
            {"id": "control", "name": "Current", "prompt_id": str(w.active_prompt.id)},
            {"id": "v3", "name": "Draft", "prompt_id": str(w.draft_prompt.id)},
        ],
        "traffic_allocation": {"control": 50, "v3": 50},
        "config": {"primary_metric": "converted"},
    }
    return {"json": {**body, **changes}}


EXPERIMENT_CASES = {
    "experiments.create": (
        lambda w: ("POST", "/experiments", _experiment_form(w)),
        "experiment.create",
        lambda w: ("POST", "/experiments", _experiment_form(w, primary_metric="")),
        None,
    ),
    "experiments.transition": (
        lambda w: (
            "POST",
            f"/experiments/{w.draft_experiment.id}/transition",
            {"data": {"action": "start"}},
        ),
        "experiment.start",
        lambda w: (
            "POST",
            f"/experiments/{w.draft_experiment.id}/transition",
            {"data": {"action": "resume"}},
        ),
        None,
    ),
    "experiments.promote": (
        lambda w: ("POST", f"/experiments/{w.live_experiment.id}/promote", {}),
        "experiment.promote",
        lambda w: ("POST", f"/experiments/{w.draft_experiment.id}/promote", {}),
        None,
    ),
    "experiments.delete": (
        lambda w: ("POST", f"/experiments/{w.draft_experiment.id}/delete", {}),
        "experiment.delete",
        lambda w: ("POST", f"/experiments/{w.live_experiment.id}/delete", {}),
        None,
    ),
    "api.create_experiment": (
        lambda w: ("POST", f"{API}/experiments", _experiment_json(w)),
        "experiment.create",
        lambda w: (
            "POST",
            f"{API}/experiments",
            _experiment_json(w, traffic_allocation={"control": 50, "v3": 40}),
        ),
        None,
    ),
    "api.put_experiment": (
        lambda w: (
            "PUT",
            f"{API}/experiments/{w.draft_experiment.id}",
            {"json": {"name": "Renamed"}},
        ),
        "experiment.update",
        lambda w: (
            "PUT",
            f"{API}/experiments/{w.live_experiment.id}",
            {"json": {"traffic_allocation": {"current": 90, "spare": 10}}},
        ),
        None,
    ),
    "api.delete_experiment": (
        lambda w: ("DELETE", f"{API}/experiments/{w.draft_experiment.id}", {"json": {}}),
        "experiment.delete",
        lambda w: ("DELETE", f"{API}/experiments/{w.live_experiment.id}", {"json": {}}),
        None,
    ),
    "api.record_experiment_results": (
        lambda w: (
            "POST",
            f"{API}/experiments/{w.live_experiment.id}/results",
            {"json": [{"variant_id": "spare", "metric_name": "converted", "metric_value": 1}]},
        ),
        "experiment.record_results",
        lambda w: (
            "POST",
            f"{API}/experiments/{w.paused_experiment.id}/results",
            {"json": [{"variant_id": "a", "metric_name": "converted", "metric_value": 1}]},
        ),
        None,
    ),
    "api.promote_experiment": (
        lambda w: ("POST", f"{API}/experiments/{w.live_experiment.id}/promote", {"json": {}}),
        "experiment.promote",
        lambda w: ("POST", f"{API}/experiments/{w.paused_experiment.id}/promote", {"json": {}}),
        None,
    ),
}
# Lifecycle endpoints: (experiment that may take the action, one that may not).
TRANSITION_CASES = {
    "start": ("draft_experiment", "live_experiment"),
    "pause": ("live_experiment", "draft_experiment"),
    "resume": ("paused_experiment", "live_experiment"),
    "complete": ("live_experiment", "draft_experiment"),
    "cancel": ("draft_experiment", None),  # cancel applies to draft, running and paused
}


def _transition_case(action: str, allowed: str, refused: str | None):
    def url(w, which):
        target = getattr(w, which).id if which else "not-an-id"
        return ("POST", f"{API}/experiments/{target}/{action}", {"json": {}})

    return (lambda w: url(w, allowed), f"experiment.{action}", lambda w: url(w, refused), None)


CASES.update(EXPERIMENT_CASES)
# Playground runs call the feature's model: the provider serves from the tests' local
# server (``_playground_stage``); the streamed form answer is read to its end (buffered),
# since the run and its audit row are written as the stream finishes.
PLAYGROUND_CASES = {
    "api.run_prompt": (
        lambda w: (
            "POST",
            f"{API}/prompts/{w.active_prompt.id}/run",
            {"json": {"variables": {"name": "Ada"}, "environment": "production"}},
        ),
        "prompt.run",
        lambda w: ("POST", f"{API}/prompts/{w.active_prompt.id}/run", {"json": {"variables": {}}}),
        None,
    ),
    "prompts.playground_run": (
        lambda w: (
            "POST",
            f"/prompts/{w.active_prompt.id}/playground/run",
            {"data": {"var_name": "Ada", "environment": "production"}, "buffered": True},
        ),
        "prompt.run",
        lambda w: (
            "POST",
            f"/prompts/{w.active_prompt.id}/playground/run",
            {"data": {"environment": "production"}, "buffered": True},
        ),
        None,
    ),
}
CASES.update(PLAYGROUND_CASES)


@pytest.fixture(scope="module")
def provider_server():
    from tests.provider_server import ProviderServer

    running = ProviderServer().start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _playground_stage(request, app, monkeypatch):
    """For the playground's cases: the world's provider answers from the local server."""
    endpoint = getattr(request.node, "callspec", None) and request.node.callspec.params.get(
        "endpoint"
    )
    if endpoint not in PLAYGROUND_CASES:
        return
    from webapp.extensions import db
    from webapp.services.catalog import providers
    from webapp.services.core.actor import Actor

    server = request.getfixturevalue("provider_server")
    world = request.getfixturevalue("world")
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_PROVIDER_URLS", True)
    providers.update_provider(
        Actor.cli(),
        world.provider.id,
        {"api_endpoint": server.url + "/v1", "credentials": {"api_key": "sk-test-key-1234"}},
    )
    db.session.commit()


CASES.update(
    {
        f"api.{action}_experiment": _transition_case(action, *which)
        for action, which in TRANSITION_CASES.items()
    }
)


@pytest.mark.parametrize("endpoint", sorted(CASES))
def test_a_successful_write_leaves_exactly_one_audit_row(client, db, world, endpoint):
    make_request, action, _, _ = CASES[endpoint]
    prepare(endpoint, client, world)
    before = audit_count(db)
    response = send(client, make_request(world))
    assert response.status_code < 400, (endpoint, response.status_code)
    assert new_audit_actions(db, before) == ([action] if action else [])


@pytest.mark.parametrize("endpoint", [e for e in sorted(CASES) if CASES[e][2]])
def test_a_failed_write_leaves_only_its_failure_record(client, db, world, endpoint):
    _, _, make_request, failure_action = CASES[endpoint]
    prepare(endpoint, client, world)
    before = audit_count(db)
    response = send(client, make_request(world))
    if response.status_code in (302, 303):
        # Post/redirect/get (issue 16 item 7): the refusal is told by the page it
        # redirects to, so a reload repeats nothing.
        page = client.get(response.location).get_data(as_text=True)
        assert 'class="flash flash-error"' in page, (endpoint, response.location)
    else:
        assert response.status_code >= 400, (endpoint, response.status_code)
    assert new_audit_actions(db, before) == ([failure_action] if failure_action else [])


@pytest.mark.parametrize("endpoint", sorted(CASES))
def test_a_write_without_csrf_token_is_400_and_changes_nothing(client, db, world, endpoint):
    make_request, _, _, _ = CASES[endpoint]
    prepare(endpoint, client, world)
    before = audit_count(db)
    snapshot = db.session.execute(
        select(
            User.email, User.role, User.is_active_user, User.password_hash, User.session_version
        ).order_by(User.email)
    ).all()
    response = send(client, make_request(world), with_token=False)
    assert response.status_code == 400
    assert audit_count(db) == before
    db.session.expire_all()
    assert db.session.get(Feature, world.feature.id).status == "active"
    assert (
        db.session.execute(
            select(
                User.email, User.role, User.is_active_user, User.password_hash, User.session_version
            ).order_by(User.email)
        ).all()
        == snapshot
    )


def test_a_write_with_a_forged_csrf_token_is_refused(client, db, world):
    prepare("users.create", client, world)
    response = client.post(
        "/users", data={"email": "x@example.com", "role": "viewer", "csrf_token": "forged"}
    )
    assert response.status_code == 400
    assert db.session.scalar(select(User).where(User.email == "x@example.com")) is None
