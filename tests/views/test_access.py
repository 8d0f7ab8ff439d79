"""Every route's authorization, found by walking app.url_map. Each endpoint must have a
decision in POLICY: a new route without one fails ``test_every_route_has_a_decision``."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.conftest import csrf_token

PUBLIC = "public"  # anyone
READ = "read"  # any signed-in user may GET; writes (if any) need platform_admin
ADMIN_WRITE = "admin write"  # platform_admin only
ANY_ROLE_WRITE = "any role write"  # any signed-in user, GET and POST
ADMIN_ONLY = "admin only"  # platform_admin only, reading included
API_KEY = "api key"  # /api/v1/: an application's API key, never a browser session

POLICY = {
    "static": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": ANY_ROLE_WRITE,
    "auth.change_password": ANY_ROLE_WRITE,
    "account.mfa_login": PUBLIC,
    "account.sessions_page": READ,
    "account.end_session": ANY_ROLE_WRITE,
    "account.end_other_sessions": ANY_ROLE_WRITE,
    "account.mfa_settings": READ,
    "account.enable_mfa": ANY_ROLE_WRITE,
    "account.regenerate_recovery_codes": ANY_ROLE_WRITE,
    "account.disable_mfa": ANY_ROLE_WRITE,
    "account.reauthenticate": ANY_ROLE_WRITE,
    "overview.index": READ,
    "overview.tiles": READ,
    "overview.alerts": READ,
    "features.index": READ,
    "features.create": ADMIN_WRITE,
    "features.detail": READ,
    "features.assign": ADMIN_WRITE,
    "features.rollback": ADMIN_WRITE,
    "features.change_status": ADMIN_WRITE,
    "features.edit": ADMIN_ONLY,
    "features.update": ADMIN_WRITE,
    "features.delete": ADMIN_WRITE,
    "models.index": READ,
    "models.new": ADMIN_ONLY,
    "models.create": ADMIN_WRITE,
    "models.detail": READ,
    "models.edit": ADMIN_ONLY,
    "models.update": ADMIN_WRITE,
    "models.delete": ADMIN_WRITE,
    "providers.index": READ,
    "providers.create": ADMIN_WRITE,
    "providers.detail": READ,
    "providers.update": ADMIN_WRITE,
    "providers.delete": ADMIN_WRITE,
    "prompts.index": READ,
    "spending.index": READ,
    "prompts.new": ADMIN_ONLY,
    "prompts.create": ADMIN_WRITE,
    "prompts.detail": READ,
    "prompts.test": READ,
    "prompts.save_content": ADMIN_WRITE,
    "prompts.save_details": ADMIN_WRITE,
    "prompts.activate": ADMIN_WRITE,
    "prompts.deactivate": ADMIN_WRITE,
    "prompts.promote": ADMIN_WRITE,
    "prompts.rollback": ADMIN_WRITE,
    "prompts.duplicate": ADMIN_WRITE,
    "prompts.delete": ADMIN_WRITE,
    "api.list_prompts": READ,
    "api.create_prompt": ADMIN_WRITE,
    "api.prompt_tags": READ,
    "api.get_prompt": READ,
    "api.put_prompt": ADMIN_WRITE,
    "api.delete_prompt": ADMIN_WRITE,
    "api.activate_prompt": ADMIN_WRITE,
    "api.deactivate_prompt": ADMIN_WRITE,
    "api.promote_prompt": ADMIN_WRITE,
    "api.rollback_prompt": ADMIN_WRITE,
    "api.prompt_environments": READ,
    "api.run_prompt": ADMIN_WRITE,
    "api.prompt_runs": READ,
    "prompts.playground_run": ADMIN_WRITE,
    "prompts.playground_history": READ,
    "api.prompt_activations": READ,
    "api.prompt_versions": READ,
    "api.duplicate_prompt": ADMIN_WRITE,
    "api.test_prompt": ADMIN_WRITE,
    "api.diff_prompt": READ,
    "budgets.index": READ,
    "budgets.new": ADMIN_ONLY,
    "budgets.create": ADMIN_WRITE,
    "budgets.detail": READ,
    "budgets.edit": ADMIN_ONLY,
    "budgets.update": ADMIN_WRITE,
    "budgets.delete": ADMIN_WRITE,
    "experiments.index": READ,
    "experiments.new": ADMIN_ONLY,
    "experiments.create": ADMIN_WRITE,
    "experiments.detail": READ,
    "experiments.transition": ADMIN_WRITE,
    "experiments.promote": ADMIN_WRITE,
    "experiments.delete": ADMIN_WRITE,
    "api.list_experiments": READ,
    "api.create_experiment": ADMIN_WRITE,
    "api.get_experiment": READ,
    "api.put_experiment": ADMIN_WRITE,
    "api.delete_experiment": ADMIN_WRITE,
    "api.start_experiment": ADMIN_WRITE,
    "api.pause_experiment": ADMIN_WRITE,
    "api.resume_experiment": ADMIN_WRITE,
    "api.complete_experiment": ADMIN_WRITE,
    "api.cancel_experiment": ADMIN_WRITE,
    "api.experiment_assignment": READ,
    "api.record_experiment_results": ADMIN_WRITE,
    "api.experiment_analysis": READ,
    "api.promote_experiment": ADMIN_WRITE,
    "audit.index": READ,
    "audit.export": READ,
    "spending.export": READ,
    "requests.index": READ,
    "requests.detail": READ,
    "users.index": ADMIN_ONLY,
    "users.create": ADMIN_ONLY,
    "users.change_role": ADMIN_ONLY,
    "users.deactivate": ADMIN_ONLY,
    "users.activate": ADMIN_ONLY,
    "users.reset_password": ADMIN_ONLY,
    "users.reset_mfa": ADMIN_ONLY,
    "users.end_sessions": ADMIN_ONLY,
    "api.list_features": READ,
    "api.create_feature": ADMIN_WRITE,
    "api.bulk_update_features": ADMIN_WRITE,
    "api.get_feature": READ,
    "api.put_feature": ADMIN_WRITE,
    "api.delete_feature": ADMIN_WRITE,
    "api.feature_usage": READ,
    "api.feature_assignments": READ,
    "api.assign_model": ADMIN_WRITE,
    "api.rollback_assignment": ADMIN_WRITE,
    "api.list_providers": READ,
    "api.create_provider": ADMIN_WRITE,
    "api.get_provider": READ,
    "api.put_provider": ADMIN_WRITE,
    "api.delete_provider": ADMIN_WRITE,
    "api.provider_health_history": READ,
    "api.list_models": READ,
    "api.create_model": ADMIN_WRITE,
    "api.get_model": READ,
    "api.put_model": ADMIN_WRITE,
    "api.delete_model": ADMIN_WRITE,
    "api.model_deployments": READ,
    "api.get_spending": READ,
    "api.create_budget": ADMIN_WRITE,
    "api.create_budget_alias": ADMIN_WRITE,
    "api.list_budgets": READ,
    "api.get_budget": READ,
    "api.put_budget": ADMIN_WRITE,
    "api.delete_budget": ADMIN_WRITE,
    "api.list_usage": READ,
    "api.export_usage": READ,
    "api.openapi_document": READ,
    "api_keys.index": READ,
    "api_keys.create": ADMIN_WRITE,
    "api_keys.revoke": ADMIN_WRITE,
    "api.list_api_keys": READ,
    "api.create_api_key": ADMIN_WRITE,
    "api.revoke_api_key": ADMIN_WRITE,
    "apps_api.whoami": API_KEY,
    "apps_api.feature_config": API_KEY,
    "apps_api.all_config": API_KEY,
    "apps_api.prompt_version": API_KEY,
    "apps_api.openapi_document": PUBLIC,
    "apps_api.report_usage": API_KEY,
    "apps_api.export_traces": API_KEY,
    "apps_api.reserve_budget": API_KEY,
}

# Listings whose contract requires a parameter (the seed's /spending needs an action's
# dates): the query string to render them with.
LISTING_QUERY = {"api.get_spending": "?action=budgets"}


def _routes():
    from webapp import create_app

    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    found = []
    for rule in app.url_map.iter_rules():
        values = {arg: str(uuid.uuid4()) for arg in rule.arguments if arg != "filename"}
        if "filename" in rule.arguments:
            values["filename"] = "css/app.css"
        url = rule.build(values, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return found


ROUTES = _routes()
PROTECTED = [r for r in ROUTES if POLICY.get(r[0]) not in (PUBLIC, API_KEY)]
KEYED = [r for r in ROUTES if POLICY.get(r[0]) == API_KEY]
WRITES = [r for r in PROTECTED if r[1] != "GET"]


def is_api(url: str) -> bool:
    return url.startswith("/api/")


def test_every_route_has_a_decision():
    missing = sorted({endpoint for endpoint, _, _ in ROUTES} - set(POLICY))
    assert missing == [], f"add these endpoints to POLICY with a decision: {missing}"


def test_application_api_routes_live_under_api_v1():
    assert KEYED
    assert all(url.startswith("/api/v1/") for _, _, url in KEYED)


@pytest.mark.parametrize("endpoint, method, url", KEYED)
def test_application_api_refuses_anonymous_and_browser_sessions(
    client, admin_client, endpoint, method, url
):
    for caller in (client, admin_client):
        response = caller.open(url, method=method)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        if response.is_json:  # the OTLP route answers in OTLP's own (protobuf) encoding
            assert response.get_json()["code"] == "invalid_api_key"
        else:
            assert response.mimetype == "application/x-protobuf"


def test_no_write_is_hidden_behind_get():
    """State changes are never reachable by GET: every GET route is a read."""
    writes_by_get = [e for e, m, _ in ROUTES if m == "GET" and POLICY[e] == ADMIN_WRITE]
    assert writes_by_get == []


@pytest.mark.parametrize("endpoint, method, url", PROTECTED + KEYED)
def test_anonymous_is_sent_to_sign_in(client, endpoint, method, url):
    response = client.open(url, method=method)
    if is_api(url):
        assert response.status_code == 401
        if response.mimetype != "application/x-protobuf":  # OTLP answers OTLP's way
            assert response.get_json()["success"] is False
    else:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("endpoint, method, url", [r for r in PROTECTED if not is_api(r[2])])
def test_anonymous_htmx_requests_get_a_client_redirect(client, endpoint, method, url):
    response = client.open(url, method=method, headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")
    assert b"<form" not in response.data  # never a login form swapped into a fragment


def call(client, method, url):
    token = csrf_token(client, "/")
    if is_api(url):
        return client.open(url, method=method, json={}, headers={"X-CSRFToken": token})
    return client.open(url, method=method, data={"csrf_token": token})


@pytest.mark.parametrize("endpoint, method, url", PROTECTED)
def test_viewer(viewer_client, endpoint, method, url):
    response = call(viewer_client, method, url)
    policy = POLICY[endpoint]
    refused = policy == ADMIN_ONLY or (policy in (READ, ADMIN_WRITE) and method != "GET")
    if refused:
        assert response.status_code == 403
        if is_api(url):
            assert response.get_json()["error"] == "Forbidden"
    else:
        assert response.status_code not in (401, 403)


@pytest.mark.parametrize("endpoint, method, url", PROTECTED)
def test_admin_is_allowed(admin_client, endpoint, method, url):
    response = call(admin_client, method, url)
    assert response.status_code not in (401, 403), response.status_code
    assert response.status_code < 500


UUID_IN_URL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")


@pytest.mark.parametrize(
    "endpoint, method, url",
    [r for r in PROTECTED if r[1] == "GET" and not UUID_IN_URL.search(r[2])],
)
def test_every_listing_page_renders_for_its_roles(admin_client, endpoint, method, url):
    assert admin_client.get(url + LISTING_QUERY.get(endpoint, "")).status_code == 200


def test_unknown_url_is_404_for_everyone(client):
    assert client.get("/no-such-page").status_code == 404
    response = client.get("/api/platform/ai-management/no-such-thing")
    assert response.status_code == 404 and response.get_json()["success"] is False


def test_wrong_method_on_a_known_address_reveals_nothing_to_anonymous(client):
    response = client.delete("/users")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    api = client.delete("/api/platform/ai-management/features")
    assert api.status_code == 401
