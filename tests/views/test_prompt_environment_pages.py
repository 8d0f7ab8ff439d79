"""The prompt page per environment: what is live where, promote development → staging →
production (production asks first), roll back per environment, history."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests import factories
from tests.conftest import csrf_token
from webapp.models import PromptActivation


@pytest.fixture
def family(db):
    feature = factories.feature("chatbot", display_name="AI Chatbot")
    v1 = factories.prompt("greeting", 1, feature_id=feature.id, is_active=True)
    v2 = factories.prompt("greeting", 2, feature_id=feature.id, live_in=("development",))
    v3 = factories.prompt("greeting", 3, feature_id=feature.id)
    db.session.commit()
    return {"feature": feature, "v1": v1, "v2": v2, "v3": v3}


def post(client, url, **form):
    return client.post(url, data={"csrf_token": csrf_token(client, "/"), **form})


def row(page: str, element_id: str) -> str:
    match = re.search(rf'<tr id="{element_id}">(.*?)</tr>', page, re.S)
    assert match, element_id
    return match.group(1)


def live_versions(db, feature):
    db.session.expire_all()
    rows = db.session.scalars(
        select(PromptActivation).where(
            PromptActivation.feature_id == feature.id, PromptActivation.deactivated_at.is_(None)
        )
    )
    return {r.environment: r.version for r in rows}


def test_the_page_shows_what_is_live_in_each_environment(viewer_client, family):
    page = viewer_client.get(f"/prompts/{family['v3'].id}").get_data(as_text=True)
    assert ">v2</a>" in row(page, "live-development")
    assert "none" in row(page, "live-staging")
    assert ">v1</a>" in row(page, "live-production")
    assert "Activation history" in page
    # A viewer reads; no form changes anything.
    for action in ("promote", "rollback", "activate"):
        assert f"/{action}" not in page


def test_an_admin_is_offered_the_next_step_of_the_pipeline(admin_client, family):
    page = admin_client.get(f"/prompts/{family['v3'].id}").get_data(as_text=True)
    assert f'action="/prompts/{family["v2"].id}/promote"' in page
    assert "Promote to staging" in page and "Promote to production" not in page
    assert "Activate in development" in page


def test_promotion_to_production_asks_for_confirmation(admin_client, db, family):
    response = post(admin_client, f"/prompts/{family['v2'].id}/promote", to_environment="staging")
    assert response.status_code == 302
    page = admin_client.get(f"/prompts/{family['v2'].id}").get_data(as_text=True)
    assert "greeting v2 promoted from development to staging." in page
    form = re.search(r'<form[^>]*/promote"[^>]*>', page, re.S).group(0)
    assert 'data-confirm="Promote v2 of greeting from staging to production?' in form
    response = post(
        admin_client, f"/prompts/{family['v2'].id}/promote", to_environment="production"
    )
    assert response.status_code == 302
    assert live_versions(db, family["feature"]) == {
        "development": 2,
        "staging": 2,
        "production": 2,
    }


def test_every_production_change_on_the_page_asks_first(admin_client, family):
    post(admin_client, f"/prompts/{family['v3'].id}/activate")  # production: v1 → v3
    page = admin_client.get(f"/prompts/{family['v3'].id}").get_data(as_text=True)
    production = row(page, "live-production")
    assert "Roll back production" in production and "Users get it right away." in production
    activate_v2 = re.search(
        rf'<form[^>]*action="/prompts/{family["v2"].id}/activate"[^>]*data-confirm[^>]*>', page
    )
    assert activate_v2 and "live in production now" in activate_v2.group(0)


def test_a_refused_promotion_says_why_and_changes_nothing(admin_client, db, family):
    response = post(
        admin_client, f"/prompts/{family['v3'].id}/promote", to_environment="production"
    )
    assert "can be promoted to production only while it is live in staging" in told(
        admin_client, response
    )
    bad = post(admin_client, f"/prompts/{family['v3'].id}/promote", to_environment="qa")
    assert "To environment must be one of staging, production" in told(admin_client, bad)
    assert live_versions(db, family["feature"]) == {"development": 2, "production": 1}


def test_activate_in_an_environment_from_the_page(admin_client, db, family):
    response = post(admin_client, f"/prompts/{family['v3'].id}/activate", environment="staging")
    assert response.status_code == 302
    page = admin_client.get(f"/prompts/{family['v3'].id}").get_data(as_text=True)
    assert "Version 3 is now live in staging." in page
    assert live_versions(db, family["feature"])["staging"] == 3
    bad = post(admin_client, f"/prompts/{family['v3'].id}/activate", environment="qa")
    assert "Environment must be one of" in told(admin_client, bad)


def told(client, response) -> str:
    """A refused plain-form write: post/redirect/get to the prompt page, which says why in
    an alert (issue 16 item 7)."""
    assert response.status_code == 302, response.status_code
    page = client.get(response.location).get_data(as_text=True)
    assert 'class="flash flash-error" role="alert"' in page
    return page


def test_roll_back_one_environment(admin_client, db, family):
    post(admin_client, f"/prompts/{family['v3'].id}/activate", environment="development")
    page = admin_client.get(f"/prompts/{family['v3'].id}").get_data(as_text=True)
    assert "Roll back development" in row(page, "live-development")
    assert "Roll back" not in row(page, "live-staging")  # nothing earlier there
    response = post(admin_client, f"/prompts/{family['v3'].id}/rollback", environment="development")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/prompts/{family['v2'].id}")
    assert live_versions(db, family["feature"])["development"] == 2
    refused = post(admin_client, f"/prompts/{family['v3'].id}/rollback", environment="staging")
    assert "no earlier version" in told(admin_client, refused)
    bad = post(admin_client, f"/prompts/{family['v3'].id}/rollback", environment="")
    assert "Nothing changed" in told(admin_client, bad)


def test_viewers_are_refused_the_writes(viewer_client, db, family):
    for path, form in (
        ("promote", {"to_environment": "staging"}),
        ("rollback", {"environment": "development"}),
        ("activate", {"environment": "staging"}),
    ):
        assert post(viewer_client, f"/prompts/{family['v2'].id}/{path}", **form).status_code == 403
    assert live_versions(db, family["feature"]) == {"development": 2, "production": 1}
