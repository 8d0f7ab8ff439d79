"""The /api-keys page: who sees what, creating (the secret shown once, in the answer to
the form only), the form's errors, revoking with confirmation."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

import webapp.auth
from tests import factories
from tests.conftest import csrf_token
from webapp.models import ApiKey, ApiKeyIngestion
from webapp.services.apps.secrets import SECRET_PATTERN

PAGE = "/api-keys"
SECRET_IN_PAGE = re.compile(r'<code class="secret" id="new-key-secret">([^<]+)</code>')


def form(**fields):
    return {
        "name": "photo-tagger",
        "environment": "production",
        "scopes": ["usage:write"],
        **fields,
    }


def submit(client, data, **headers):
    return client.post(PAGE, data={**data, "csrf_token": csrf_token(client, PAGE)}, headers=headers)


def key_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(ApiKey)) or 0


def test_anonymous_visitors_are_sent_to_sign_in(client, db):
    key, _ = factories.api_key()
    db.session.commit()
    for answer in (
        client.get(PAGE),
        client.post(PAGE, data=form()),
        client.post(f"{PAGE}/{key.id}/revoke"),
    ):
        assert answer.status_code in (302, 400)
        if answer.status_code == 302:
            assert "/login" in answer.headers["Location"]
    assert key_count(db) == 1


def test_a_viewer_sees_the_list_but_no_form_and_no_revoke(viewer_client, db):
    key, _ = factories.api_key(name="tagger")
    db.session.commit()
    page = viewer_client.get(PAGE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "tagger" in html and key.prefix in html
    assert 'id="api-key-form"' not in html and "/revoke" not in html
    token = csrf_token(viewer_client, PAGE)
    assert viewer_client.post(PAGE, data={**form(), "csrf_token": token}).status_code == 403
    revoke = viewer_client.post(f"{PAGE}/{key.id}/revoke", data={"csrf_token": token})
    assert revoke.status_code == 403
    db.session.expire_all()
    assert key_count(db) == 1 and db.session.get(ApiKey, key.id).revoked_at is None


def test_the_page_is_in_the_navigation_and_links_the_api_reference(admin_client, db):
    html = admin_client.get("/").get_data(as_text=True)
    assert f'href="{PAGE}"' in html
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert 'href="/api/v1/openapi.json"' in page and "API reference" in page
    assert 'id="api-key-form"' in page
    assert "No API keys yet." in page


def test_the_list_shows_every_column(admin_client, admin_user, db):
    chatbot = factories.feature("chatbot", display_name="Chat bot")
    now = datetime.now(UTC)
    key, _ = factories.api_key(
        name="tagger",
        environment="staging",
        scopes=("usage:write",),
        features=(chatbot,),
        created_by=admin_user.id,
        expires_at=datetime(2030, 5, 6, 7, 8, tzinfo=UTC),
        last_used_at=datetime(2026, 3, 4, 5, 6, tzinfo=UTC),
    )
    factories.api_key(name="old", revoked_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    db.session.add(
        ApiKeyIngestion(
            api_key_id=key.id,
            hour=now.replace(minute=0, second=0, microsecond=0),
            shard=1,
            accepted=41,
            completed=3,
            duplicates=2,
            rejected_unknown_feature=5,
            last_event_at=datetime(2026, 3, 4, 5, 7, tzinfo=UTC),
        )
    )
    db.session.commit()
    html = admin_client.get(PAGE).get_data(as_text=True)
    row = html[html.index(f'id="key-{key.id}"') :]
    row = row[: row.index("</tr>")]
    for text in (
        "tagger",
        key.prefix,
        "staging",
        "usage:write",
        "Chat bot",
        admin_user.email,
        "2030-05-06 07:08",
        "2026-03-04 05:06",
        "accepted 41",
        "completed 3",
        "duplicates 2",
        "unknown_feature 5",
        "last event 2026-03-04 05:07",
        "Revoke",
    ):
        assert text in row, text
    assert "2026-01-02 03:04" in html  # the revoked key's revocation time
    assert "every feature" in html


def test_creating_shows_the_secret_once_with_a_copy_button(admin_client, db):
    answer = submit(admin_client, form(scopes=["usage:write", "config:read"]))
    # Post/redirect/get (issue 16 item 7): the keys page shows the secret once.
    assert answer.status_code == 302 and answer.location == PAGE
    cookie = answer.headers.get("Set-Cookie", "")
    html = admin_client.get(PAGE).get_data(as_text=True)
    secret = SECRET_IN_PAGE.search(html).group(1)
    assert SECRET_PATTERN.fullmatch(secret)
    assert "will not be shown again" in html
    assert 'data-copy-target="new-key-secret"' in html
    assert "js/copy.js" in html
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None  # no inline script
    # Nowhere else: not in a header or readable in the cookie, not on the next page.
    assert all(secret not in value for _, value in answer.headers.items())
    assert secret not in cookie
    later = admin_client.get(PAGE).get_data(as_text=True)
    assert secret not in later and "new-key-secret" not in later
    assert "photo-tagger" in later
    (key,) = db.session.scalars(select(ApiKey))
    assert key.scopes == ["usage:write", "config:read"]


def test_the_secret_works_and_revoking_stops_it_on_the_next_request(admin_client, db, app):
    submit(admin_client, form())
    html = admin_client.get(PAGE).get_data(as_text=True)
    secret = SECRET_IN_PAGE.search(html).group(1)
    machine = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert machine.get("/api/v1/whoami", headers=headers).status_code == 200
    (key,) = db.session.scalars(select(ApiKey))
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert f'action="/api-keys/{key.id}/revoke"' in page
    assert 'data-confirm="Revoke photo-tagger' in page
    token = csrf_token(admin_client, PAGE)
    revoked = admin_client.post(f"{PAGE}/{key.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 302 and revoked.headers["Location"].endswith(PAGE)
    after = admin_client.get(PAGE).get_data(as_text=True)
    assert "is revoked" in after
    assert machine.get("/api/v1/whoami", headers=headers).status_code == 401


def test_htmx_gets_the_page_block_with_the_secret(admin_client, db):
    answer = submit(admin_client, form(), **{"HX-Request": "true"})
    assert answer.status_code == 201
    html = answer.get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith('<div id="api-keys-page">')
    assert SECRET_IN_PAGE.search(html)


def test_features_and_expiry_from_the_form(admin_client, db):
    chatbot = factories.feature("chatbot")
    factories.feature("search")
    db.session.commit()
    later = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    answer = submit(
        admin_client,
        form(feature_ids=[str(chatbot.id)], expires_at=later.strftime("%Y-%m-%dT%H:%M")),
    )
    assert answer.status_code == 302
    (key,) = db.session.scalars(select(ApiKey))
    assert key.feature_ids == [str(chatbot.id)]
    assert key.expires_at == later


BAD_FORMS = [
    ({"name": ""}, "Name is required"),
    ({"name": "x" * 201}, "Name must be at most 200 characters"),
    ({"environment": "prod"}, "Environment must be one of"),
    ({"scopes": []}, "Scopes must name at least one of"),
    ({"scopes": ["usage:write", "root"]}, "Scopes may only hold"),
    ({"feature_ids": ["abc"]}, "Features: item 1 is not a feature id"),
    ({"feature_ids": [str(uuid.UUID(int=3))]}, "Features names no feature"),
    ({"expires_at": "2020-01-01T10:00"}, "Expiry must be in the future"),
    ({"expires_at": "next week"}, "Expiry must be a date and time"),
]


@pytest.mark.parametrize(("change", "message"), BAD_FORMS)
def test_bad_input_is_shown_at_its_field_and_changes_nothing(admin_client, db, change, message):
    answer = submit(admin_client, form(**change))
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert message in html
    assert 'aria-invalid="true"' in html
    assert 'value="' in html and key_count(db) == 0
    assert SECRET_IN_PAGE.search(html) is None


def test_the_form_keeps_what_was_typed(admin_client, db):
    html = submit(admin_client, form(name="my app", environment="staging", scopes=[])).get_data(
        as_text=True
    )
    assert 'value="my app"' in html
    assert "<option selected>staging</option>" in html


def test_a_name_in_use_is_409_at_the_name_field(admin_client, db):
    factories.api_key(name="photo-tagger")
    db.session.commit()
    answer = submit(admin_client, form())
    assert answer.status_code == 409
    assert "is in use" in answer.get_data(as_text=True)
    assert key_count(db) == 1


def test_creating_needs_a_recent_sign_in(monkeypatch, admin_client, db):
    token = csrf_token(admin_client, PAGE)
    start = webapp.auth.now()
    monkeypatch.setattr(webapp.auth, "now", lambda: start + 11 * 60)
    answer = admin_client.post(PAGE, data={**form(), "csrf_token": token})
    assert answer.status_code == 303
    assert "/account/reauthenticate" in answer.headers["Location"]
    assert key_count(db) == 0


def test_revoking_an_unknown_key_is_404(admin_client, db):
    token = csrf_token(admin_client, PAGE)
    answer = admin_client.post(f"{PAGE}/{uuid.uuid4()}/revoke", data={"csrf_token": token})
    assert answer.status_code == 404
