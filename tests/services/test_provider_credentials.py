"""Provider credentials (issue 18): encrypted at rest, never shown again, audited without
the value, rotated with `flask credentials rotate`, refused clearly under a wrong key."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from tests import factories
from tests.conftest import TEST_CREDENTIALS_KEY, csrf_token
from webapp.config import ConfigError
from webapp.models import AuditLog, Provider
from webapp.services.catalog import credentials as stored
from webapp.services.catalog import providers
from webapp.services.core.actor import Actor
from webapp.services.core.errors import ValidationFailed

API = "/api/platform/ai-management"
SECRET = "sk-test-0123456789abcdefWXYZ"


def write(client, method, url, **kwargs):
    return client.open(
        url, method=method, headers={"X-CSRFToken": csrf_token(client, "/")}, **kwargs
    )


def raw_column(db, provider_id) -> str | None:
    """The stored value as the database holds it (no ORM type in between)."""
    return db.session.execute(
        text("SELECT credentials_ciphertext FROM ai_providers WHERE id = :id"),
        {"id": provider_id if db.engine.dialect.name == "postgresql" else provider_id.hex},
    ).scalar()


def everything_stored(db) -> str:
    """Every value of every table, as a dump of the database would show them."""
    found = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(text(f"SELECT * FROM {table.name}")):
            found.append(json.dumps([str(value) for value in row]))
    return "\n".join(found)


def test_api_sets_credentials_encrypted_and_never_answers_them(admin_client, db):
    created = write(
        admin_client,
        "POST",
        f"{API}/providers",
        json={
            "name": "openai",
            "display_name": "OpenAI",
            "provider_type": "openai",
            "credentials": {"api_key": SECRET, "headers": {"OpenAI-Organization": "org-42"}},
        },
    )
    assert created.status_code == 201, created.get_json()
    data = created.get_json()["data"]
    assert data["credentials_set"] is True and data["credentials_hint"] == "WXYZ"
    assert SECRET not in created.get_data(as_text=True)
    provider = db.session.get(Provider, __import__("uuid").UUID(data["id"]))
    token = raw_column(db, provider.id)
    assert token and SECRET not in token and "org-42" not in token
    assert Fernet(TEST_CREDENTIALS_KEY.encode()).decrypt(token.encode()).startswith(b"{")
    assert SECRET not in everything_stored(db) and "org-42" not in everything_stored(db)
    for path in (f"{API}/providers", f"{API}/providers/{provider.id}"):
        answer = admin_client.get(path).get_data(as_text=True)
        assert SECRET not in answer and '"credentials_hint":"WXYZ"' in answer.replace(" ", "")
    page = admin_client.get(f"/providers/{provider.id}").get_data(as_text=True)
    assert SECRET not in page and "ending …WXYZ" in page


def test_viewers_learn_only_whether_a_key_is_set(admin_client, viewer_user, app, db):
    from tests.conftest import sign_in

    created = admin_client.post(
        f"{API}/providers",
        json={
            "name": "openai",
            "display_name": "OpenAI",
            "provider_type": "openai",
            "credentials": {"api_key": SECRET},
        },
        headers={"X-CSRFToken": csrf_token(admin_client, "/")},
    )
    assert created.status_code == 201, created.get_json()
    provider_id = created.get_json()["data"]["id"]
    viewer = app.test_client()
    assert sign_in(viewer, viewer_user.email).status_code == 302
    listed = viewer.get(f"{API}/providers").get_json()["data"][0]
    one = viewer.get(f"{API}/providers/{provider_id}").get_json()["data"]
    for data in (listed, one):
        assert data["credentials_set"] is True and data["credentials_hint"] is None


def test_replace_and_clear_are_audited_without_the_value(admin_client, db):
    provider = factories.provider("anthropic", display_name="Anthropic")
    db.session.commit()
    url = f"{API}/providers/{provider.id}"
    assert (
        write(admin_client, "PUT", url, json={"credentials": {"api_key": SECRET}}).status_code
        == 200
    )
    other = "sk-ant-another-key-9876"
    answer = write(admin_client, "PUT", url, json={"credentials": {"api_key": other}})
    assert answer.get_json()["data"]["credentials_hint"] == "9876"
    cleared = write(admin_client, "PUT", url, json={"credentials": None})
    assert cleared.get_json()["data"] == cleared.get_json()["data"] | {
        "credentials_set": False,
        "credentials_hint": None,
    }
    assert raw_column(db, provider.id) is None
    actions = db.session.scalars(
        select(AuditLog.action)
        .where(AuditLog.action.like("provider.credentials%"))
        .order_by(AuditLog.created_at, AuditLog.id)
    ).all()
    assert sorted(actions) == sorted(
        ["provider.credentials_set", "provider.credentials_replace", "provider.credentials_clear"]
    )
    dump = everything_stored(db)
    assert SECRET not in dump and other not in dump
    # Clearing what is not set changes nothing and audits nothing.
    write(admin_client, "PUT", url, json={"credentials": None})
    assert (
        db.session.scalar(
            select(AuditLog.id).where(AuditLog.action == "provider.credentials_clear").offset(1)
        )
        is None
    )


@pytest.mark.parametrize(
    "credentials, field",
    [
        ("sk-plain-text", "credentials"),
        ({"headers": {}}, "credentials.api_key"),
        ({"api_key": "has space inside"}, "credentials.api_key"),
        ({"api_key": SECRET, "headers": {"Bad Header": "x"}}, "credentials.headers"),
        ({"api_key": SECRET, "headers": {"X-Org": "a\r\nInjected: 1"}}, "credentials.headers"),
        ({"api_key": SECRET, "extra": 1}, "credentials.extra"),
    ],
)
def test_wrong_credentials_name_the_field_and_never_echo_the_key(
    admin_client, db, credentials, field
):
    provider = factories.provider("openai")
    db.session.commit()
    answer = write(
        admin_client, "PUT", f"{API}/providers/{provider.id}", json={"credentials": credentials}
    )
    assert answer.status_code == 400, answer.get_json()
    assert field in answer.get_json()["fields"]
    assert SECRET not in answer.get_data(as_text=True)


def test_viewers_cannot_set_credentials(viewer_client, db):
    provider = factories.provider("openai")
    db.session.commit()
    answer = write(
        viewer_client,
        "PUT",
        f"{API}/providers/{provider.id}",
        json={"credentials": {"api_key": SECRET}},
    )
    assert answer.status_code == 403
    assert raw_column(db, provider.id) is None


def test_the_form_sets_keeps_and_clears_the_key(admin_client, db):
    provider = factories.provider("openai", display_name="OpenAI", provider_type="openai")
    db.session.commit()
    fields = {
        "name": "openai",
        "display_name": "OpenAI",
        "provider_type": "openai",
        "status": "active",
        "csrf_token": csrf_token(admin_client, f"/providers/{provider.id}"),
    }
    saved = admin_client.post(
        f"/providers/{provider.id}",
        data={**fields, "api_key": SECRET, "credential_headers": "OpenAI-Project: proj-1"},
    )
    assert saved.status_code == 302
    db.session.expire_all()
    assert stored.unseal(db.session.get(Provider, provider.id)) == stored.ProviderCredentials(
        SECRET, {"OpenAI-Project": "proj-1"}
    )
    page = admin_client.get(f"/providers/{provider.id}").get_data(as_text=True)
    assert SECRET not in page and "proj-1" not in page and "ending …WXYZ" in page
    # An empty key field keeps the key.
    assert admin_client.post(f"/providers/{provider.id}", data=fields).status_code == 302
    db.session.expire_all()
    assert db.session.get(Provider, provider.id).credentials_hint == "WXYZ"
    # A wrong key is refused, and the page does not send it back.
    wrong = admin_client.post(f"/providers/{provider.id}", data={**fields, "api_key": "a b"})
    assert wrong.status_code == 400 and "API key must be" in wrong.get_data(as_text=True)
    cleared = admin_client.post(
        f"/providers/{provider.id}", data={**fields, "clear_credentials": "1"}
    )
    assert cleared.status_code == 302
    db.session.expire_all()
    assert db.session.get(Provider, provider.id).credentials_ciphertext is None


def test_rotation_re_encrypts_with_the_new_key(app, db, monkeypatch):
    provider = factories.provider("openai")
    db.session.commit()
    providers.update_provider(Actor.cli(), provider.id, {"credentials": {"api_key": SECRET}})
    before = raw_column(db, provider.id)
    new_key = Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "CREDENTIALS_KEY", f"{new_key},{TEST_CREDENTIALS_KEY}")
    result = app.test_cli_runner().invoke(args=["credentials", "rotate"])
    assert result.exit_code == 0, result.output
    assert "1 provider" in result.output
    db.session.expire_all()
    after = raw_column(db, provider.id)
    assert after != before
    Fernet(new_key.encode()).decrypt(after.encode())  # the new key alone opens it
    monkeypatch.setitem(app.config, "CREDENTIALS_KEY", new_key)
    assert stored.unseal(db.session.get(Provider, provider.id)).api_key == SECRET
    assert db.session.scalar(
        select(AuditLog.new_values).where(AuditLog.action == "provider.credentials_rotate")
    ) == {"re_encrypted": 1, "keys": 2}


def test_a_wrong_key_fails_clearly(app, db, monkeypatch):
    provider = factories.provider("openai", display_name="OpenAI")
    db.session.commit()
    providers.update_provider(Actor.cli(), provider.id, {"credentials": {"api_key": SECRET}})
    monkeypatch.setitem(app.config, "CREDENTIALS_KEY", Fernet.generate_key().decode())
    db.session.expire_all()
    with pytest.raises(stored.CredentialsUnreadable, match="credentials of OpenAI cannot be"):
        stored.unseal(db.session.get(Provider, provider.id))
    result = app.test_cli_runner().invoke(args=["credentials", "rotate"])
    assert result.exit_code != 0
    assert "cannot be decrypted with CREDENTIALS_KEY" in result.output
    assert SECRET not in result.output


def test_the_repr_of_clear_credentials_hides_the_key():
    shown = repr(stored.ProviderCredentials(SECRET, {"X-Org": "o"}))
    assert SECRET not in shown and "WXYZ" in shown
    assert stored.hint_of("short") == ""


def test_config_validates_and_requires_the_key(monkeypatch, tmp_path):
    import webapp.config as config

    with pytest.raises(ConfigError, match="key 2 is not a Fernet key"):
        config.check_credentials_keys(f"{TEST_CREDENTIALS_KEY},not-a-key")
    monkeypatch.delenv("CREDENTIALS_KEY")
    monkeypatch.setenv("AIPM_ENV", "production")
    with pytest.raises(ConfigError, match="CREDENTIALS_KEY is not set"):
        config.load_credentials_key()
    monkeypatch.setenv("AIPM_ENV", "development")
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    first = config.load_credentials_key()
    assert (tmp_path / "credentials_key").stat().st_mode & 0o777 == 0o600
    assert config.load_credentials_key() == first
    Fernet(first.encode())


def test_service_refuses_headers_without_a_key(db):
    provider = factories.provider("openai")
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        providers.update_provider(
            Actor.cli(), provider.id, {"credentials": {"api_key": "", "headers": {"X-A": "b"}}}
        )
    assert "credentials.api_key" in refused.value.errors


def test_runtime_config_and_the_bundle_never_carry_credentials(client, db):
    feature = factories.feature("chatbot")
    provider = factories.provider("openai", api_endpoint="https://api.openai.com/v1")
    factories.assignment(feature, factories.model(provider, "gpt-4"))
    _, secret = factories.api_key()
    db.session.commit()
    providers.update_provider(
        Actor.cli(), provider.id, {"credentials": {"api_key": SECRET, "headers": {"X-O": "o-1"}}}
    )
    answer = client.get("/api/v1/config/chatbot", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    assert answer.json["data"]["model"]["provider"]["name"] == "openai"
    assert SECRET not in body and "WXYZ" not in body and "o-1" not in body
    assert "credentials" not in body and "ciphertext" not in body
    token = raw_column(db, provider.id)
    assert token not in body


def test_setting_credentials_needs_a_recent_sign_in(monkeypatch, admin_client, db):
    import webapp.auth

    provider = factories.provider("openai")
    db.session.commit()
    token = csrf_token(admin_client, "/")
    start = webapp.auth.now()
    monkeypatch.setattr(webapp.auth, "now", lambda: start + 11 * 60)
    answer = admin_client.put(
        f"{API}/providers/{provider.id}",
        json={"credentials": {"api_key": SECRET}},
        headers={"X-CSRFToken": token},
    )
    assert answer.status_code == 401
    assert answer.get_json()["code"] == "reauthentication_required"
    assert raw_column(db, provider.id) is None
    # Other changes still go through without it.
    answer = admin_client.put(
        f"{API}/providers/{provider.id}",
        json={"status": "inactive"},
        headers={"X-CSRFToken": token},
    )
    assert answer.status_code == 200


def test_a_stored_key_is_never_sent_to_a_new_address_without_being_given_again(admin_client, db):
    created = write(
        admin_client,
        "POST",
        f"{API}/providers",
        json={
            "name": "openai",
            "display_name": "OpenAI",
            "provider_type": "openai",
            "api_endpoint": "https://api.example.com/v1",
            "credentials": {"api_key": SECRET},
        },
    )
    assert created.status_code == 201, created.get_json()
    provider_id = created.get_json()["data"]["id"]
    url = f"{API}/providers/{provider_id}"
    for change in (
        {"api_endpoint": "https://collector.example.net/v1"},
        {"api_endpoint": None, "config": {"base_url": "https://collector.example.net/v1"}},
    ):
        refused = write(admin_client, "PUT", url, json=change)
        assert refused.status_code == 400, refused.get_json()
        assert "credentials" in refused.get_json()["fields"]
        data = admin_client.get(url).get_json()["data"]
        assert data["api_endpoint"] == "https://api.example.com/v1"  # nothing changed
        assert data["credentials_set"] is True
    # Other changes keep the key; a move with the key given again is fine.
    assert write(admin_client, "PUT", url, json={"display_name": "OpenAI EU"}).status_code == 200
    moved = write(
        admin_client,
        "PUT",
        url,
        json={"api_endpoint": "https://eu.example.com/v1", "credentials": {"api_key": SECRET}},
    )
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["data"]["credentials_set"] is True


def test_config_base_url_gets_the_same_address_check_as_the_endpoint(admin_client, db):
    created = write(
        admin_client,
        "POST",
        f"{API}/providers",
        json={"name": "local", "display_name": "Local", "provider_type": "custom"},
    )
    assert created.status_code == 201, created.get_json()
    refused = write(
        admin_client,
        "PUT",
        f"{API}/providers/{created.get_json()['data']['id']}",
        json={"config": {"base_url": "http://169.254.169.254/v1"}},
    )
    assert refused.status_code == 400
    assert set(refused.get_json()["fields"]) == {"config.base_url"}
