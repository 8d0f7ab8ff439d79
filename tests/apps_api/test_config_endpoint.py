"""GET /api/v1/config[/<feature>] and /api/v1/prompts/<name> over HTTP: the answer, the
envelope of refusals, ETag/304 and Cache-Control, never a stale answer across two app
instances (two workers) sharing one database, and ``flask config export``."""

from __future__ import annotations

import json

import pytest

from tests import factories
from tests.conftest import IsolatedClient, csrf_token
from webapp import create_app
from webapp.extensions import db as _db
from webapp.services.apps.config_revision import current_revision
from webapp.services.core.actor import Actor
from webapp.services.experiments import lifecycle as experiments

ADMIN_API = "/api/platform/ai-management"
ACTOR = Actor.cli()


def bearer(secret: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **headers}


@pytest.fixture
def world(db):
    feature = factories.feature("chatbot")
    factories.feature("search", status="maintenance")
    provider = factories.provider("openai", api_endpoint="https://api.openai.com/v1")
    serving = factories.model(provider, "gpt-4", config={"max_tokens": 1024, "temperature": 1})
    challenger = factories.model(provider, "gpt-4o-mini")
    factories.assignment(feature, serving, config_overrides={"temperature": 0.2})
    old = factories.prompt("greeting", 1, feature_id=feature.id, is_active=True)
    new = factories.prompt("greeting", 2, feature_id=feature.id, content="Hi {{name}}!")
    _, secret = factories.api_key()
    _, limited = factories.api_key(features=(feature,))
    db.session.commit()
    return type(
        "World",
        (),
        {
            "feature": feature,
            "serving": serving,
            "challenger": challenger,
            "old": old,
            "new": new,
            "secret": secret,
            "limited": limited,
        },
    )


def test_the_answer_and_its_cache_headers(client, world):
    answer = client.get("/api/v1/config/chatbot", headers=bearer(world.secret))
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "private, max-age=30, stale-if-error=86400"
    etag = answer.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    body = answer.json
    assert body["success"] is True
    data = body["data"]
    assert data["feature"] == {"name": "chatbot", "status": "active"}
    assert data["environment"] == "production"
    assert data["revision"] == current_revision()
    assert data["model"]["name"] == "gpt-4"
    assert data["model"]["provider"]["api_endpoint"] == "https://api.openai.com/v1"
    assert data["model"]["config"] == {"max_tokens": 1024, "temperature": 0.2}
    assert data["model"]["pricing"]["input_price_per_million"] == "30.000000"
    assert [(p["name"], p["version"]) for p in data["prompts"]] == [("greeting", 1)]
    assert data["experiments"] == [] and data["budget"] is None
    assert "Set-Cookie" not in answer.headers


def test_if_none_match_answers_304_until_something_changes(client, admin_client, world):
    url = "/api/v1/config/chatbot"
    api = IsolatedClient(client.application)
    first = api.get(url, headers=bearer(world.secret))
    etag = first.headers["ETag"]
    for validator in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = api.get(url, headers=bearer(world.secret, **{"If-None-Match": validator}))
        assert again.status_code == 304, validator
        assert again.data == b""
        assert again.headers["ETag"] == etag
        assert again.headers["Cache-Control"].startswith("private, max-age=30")
    assert api.get(url, headers=bearer(world.secret, **{"If-None-Match": '"x"'})).status_code == 200
    changed = admin_client.post(
        f"{ADMIN_API}/features/{world.feature.id}/assignments",
        json={"model_id": str(world.challenger.id), "environment": "production"},
        headers={"X-CSRFToken": csrf_token(admin_client, "/")},
    )
    assert changed.status_code in (200, 201), changed.json
    after = api.get(url, headers=bearer(world.secret, **{"If-None-Match": etag}))
    assert after.status_code == 200
    assert after.headers["ETag"] != etag
    assert after.json["data"]["model"]["name"] == "gpt-4o-mini"


def test_unknown_and_forbidden_features_in_the_envelope(client, world):
    unknown = client.get("/api/v1/config/nope", headers=bearer(world.secret))
    assert unknown.status_code == 404
    assert unknown.json["success"] is False and unknown.json["code"] == "not_found"
    forbidden = client.get("/api/v1/config/search", headers=bearer(world.limited))
    assert forbidden.status_code == 403
    assert forbidden.json["code"] == "feature_not_allowed"
    assert "ETag" not in forbidden.headers
    allowed = client.get("/api/v1/config/chatbot", headers=bearer(world.limited))
    assert allowed.status_code == 200


def test_the_scope_config_read_is_needed(client, world):
    _, writer = factories.api_key(scopes=("usage:write",))
    factories.db.session.commit()
    refused = client.get("/api/v1/config/chatbot", headers=bearer(writer))
    assert refused.status_code == 403
    assert refused.json["code"] == "insufficient_scope"


def test_a_bad_subject_is_a_field_error(client, world):
    answer = client.get(f"/api/v1/config/chatbot?subject={'x' * 201}", headers=bearer(world.secret))
    assert answer.status_code == 400
    assert "subject" in answer.json["fields"]


def test_a_maintenance_feature_says_so_and_the_environment_is_the_keys(client, world):
    _, staging = factories.api_key(environment="staging")
    factories.db.session.commit()
    data = client.get("/api/v1/config/search", headers=bearer(staging)).json["data"]
    assert data["feature"]["status"] == "maintenance"
    assert data["environment"] == "staging"
    assert data["model"] is None


def test_variant_equals_the_admin_assignment(client, admin_client, world):
    experiment = experiments.create_experiment(
        ACTOR,
        {
            "name": "Greeting v2",
            "feature_id": str(world.feature.id),
            "experiment_type": "prompt_testing",
            "variants": [
                {"id": "control", "name": "Current", "prompt_id": str(world.old.id)},
                {"id": "v2", "name": "Friendlier", "prompt_id": str(world.new.id)},
            ],
            "traffic_allocation": {"control": 50, "v2": 50},
            "config": {"primary_metric": "converted"},
        },
    )
    experiments.transition(ACTOR, experiment.id, "start")
    api = IsolatedClient(client.application)
    for number in range(20):
        subject = f"user-{number}"
        told = api.get(
            f"/api/v1/config/chatbot?subject={subject}", headers=bearer(world.secret)
        ).json["data"]["experiments"][0]
        admin = admin_client.get(
            f"{ADMIN_API}/experiments/{experiment.id}/assignment?subject={subject}"
        ).json["data"]
        assert told["variant"] == admin["variant_id"], subject
        assert told["id"] == str(experiment.id)


def test_every_feature_the_key_may_read_in_one_answer(client, world):
    everything = client.get("/api/v1/config", headers=bearer(world.secret))
    assert everything.status_code == 200
    data = everything.json["data"]
    assert sorted(data["features"]) == ["chatbot", "search"]
    assert data["revision"] == current_revision()
    single = client.get("/api/v1/config/chatbot", headers=bearer(world.secret)).json["data"]
    assert data["features"]["chatbot"] == single
    limited = client.get("/api/v1/config", headers=bearer(world.limited))
    assert sorted(limited.json["data"]["features"]) == ["chatbot"]
    assert limited.headers["ETag"] != everything.headers["ETag"]
    etag = everything.headers["ETag"]
    again = client.get("/api/v1/config", headers=bearer(world.secret, **{"If-None-Match": etag}))
    assert again.status_code == 304


def test_one_prompt_version_with_an_etag(client, admin_client, world):
    url = "/api/v1/prompts/greeting?feature=chatbot"
    live = client.get(url, headers=bearer(world.secret))
    assert live.status_code == 200
    assert (live.json["data"]["version"], live.json["data"]["live"]) == (1, True)
    etag = live.headers["ETag"]
    assert (
        client.get(url, headers=bearer(world.secret, **{"If-None-Match": etag})).status_code == 304
    )
    other = client.get(f"{url}&version=2", headers=bearer(world.secret)).json["data"]
    assert (other["version"], other["live"]) == (2, False)
    promoted = admin_client.post(
        f"{ADMIN_API}/prompts/{world.new.id}/activate",
        json={"environment": "production"},
        headers={"X-CSRFToken": csrf_token(admin_client, "/")},
    )
    assert promoted.status_code == 200, promoted.json
    now_live = client.get(url, headers=bearer(world.secret, **{"If-None-Match": etag}))
    assert now_live.status_code == 200
    assert now_live.json["data"]["version"] == 2
    for bad, status in (("&version=0", 400), ("&version=x", 400), ("&version=9", 404)):
        assert client.get(url + bad, headers=bearer(world.secret)).status_code == status
    assert (
        client.get("/api/v1/prompts/nope?feature=chatbot", headers=bearer(world.secret)).json[
            "code"
        ]
        == "not_found"
    )
    forbidden = client.get("/api/v1/prompts/greeting?feature=search", headers=bearer(world.limited))
    assert forbidden.status_code == 403


@pytest.fixture
def second_instance(app):
    """Another application object on the same database: what a second gunicorn worker is."""
    other = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": app.config["SECRET_KEY"],
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "MIGRATIONS_DATABASE_URL": None,
        }
    )
    other.test_client_class = IsolatedClient
    yield other
    with other.app_context():
        _db.engine.dispose()


def test_a_change_through_one_instance_is_seen_by_the_other_at_once(
    client, admin_client, world, second_instance
):
    url = "/api/v1/config/chatbot"
    worker_b = second_instance.test_client()
    before = worker_b.get(url, headers=bearer(world.secret))
    assert before.json["data"]["model"]["name"] == "gpt-4"
    etag = before.headers["ETag"]
    # Worker B has the answer cached; worker A (the fixture's app) takes the change.
    changed = admin_client.post(
        f"{ADMIN_API}/features/{world.feature.id}/assignments",
        json={"model_id": str(world.challenger.id), "environment": "production"},
        headers={"X-CSRFToken": csrf_token(admin_client, "/")},
    )
    assert changed.status_code in (200, 201)
    revalidated = worker_b.get(url, headers=bearer(world.secret, **{"If-None-Match": etag}))
    assert revalidated.status_code == 200
    assert revalidated.json["data"]["model"]["name"] == "gpt-4o-mini"
    fresh = worker_b.get(url, headers=bearer(world.secret))
    assert fresh.json["data"]["model"]["name"] == "gpt-4o-mini"
    # And the other way round: a change through B, read through A.
    worker_a = IsolatedClient(client.application)
    a_etag = worker_a.get(url, headers=bearer(world.secret)).headers["ETag"]
    assert a_etag == fresh.headers["ETag"]  # both workers hash the same inputs alike
    with second_instance.app_context():
        from webapp.rls import OPERATOR, use_database_role
        from webapp.services.catalog import features

        use_database_role(OPERATOR)
        features.update_feature(ACTOR, world.feature.id, {"status": "maintenance"})
    seen = worker_a.get(url, headers=bearer(world.secret, **{"If-None-Match": a_etag}))
    assert seen.status_code == 200
    assert seen.json["data"]["feature"]["status"] == "maintenance"


def test_flask_config_export(app, client, world):
    result = app.test_cli_runner().invoke(args=["config", "export", "--environment", "production"])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.output)
    assert bundle["environment"] == "production"
    assert bundle["revision"] == current_revision()
    assert sorted(bundle["features"]) == ["chatbot", "search"]
    served = client.get("/api/v1/config/chatbot", headers=bearer(world.secret)).json["data"]
    assert bundle["features"]["chatbot"] == served
    staging = app.test_cli_runner().invoke(args=["config", "export", "--environment", "staging"])
    assert json.loads(staging.output)["features"]["chatbot"]["model"] is None
    wrong = app.test_cli_runner().invoke(args=["config", "export", "--environment", "qa"])
    assert wrong.exit_code != 0
    assert "qa" in wrong.output
