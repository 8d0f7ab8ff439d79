"""The prompt editor pages: list with live search, versions, diff, test form."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests import factories
from tests.conftest import csrf_token
from webapp.models import Prompt

HX = {"HX-Request": "true"}


@pytest.fixture
def family(db):
    feature = factories.feature("chatbot", display_name="AI Chatbot")
    v1 = factories.prompt(
        "greeting",
        1,
        feature_id=feature.id,
        is_active=True,
        tags=["chat"],
        content="Hello {{name}}\nWelcome to {{ product }}",
        variables={"product": {"type": "string", "default": "Minerva"}},
    )
    v2 = factories.prompt(
        "greeting",
        2,
        feature_id=feature.id,
        content="Hi {{name}}\nWelcome to {{ product }}!",
        variables={"product": {"type": "string", "default": "Minerva"}},
    )
    factories.prompt("discount", 1, content="Use 100%_OFF", tags=["sales"])
    db.session.commit()
    return {"feature": feature, "v1": v1, "v2": v2}


def test_list_shows_one_row_per_family_with_the_active_version(viewer_client, family):
    page = viewer_client.get("/prompts").get_data(as_text=True)
    assert "2 prompts" in page and "v1</span>" in page and "AI Chatbot" in page


def test_live_search_returns_only_the_results_and_escapes_wildcards(viewer_client, family):
    fragment = viewer_client.get("/prompts", query_string={"q": "100%_"}, headers=HX).get_data(
        as_text=True
    )
    assert fragment.lstrip().startswith('<section id="prompt-results"')
    assert "discount" in fragment and "greeting" not in fragment
    assert "1 prompt" in viewer_client.get("/prompts?q=%25", headers=HX).get_data(as_text=True)
    assert "greeting" in viewer_client.get("/prompts?tag=chat&active=yes").get_data(as_text=True)
    assert "0 prompts" in viewer_client.get("/prompts?active=no&tag=chat").get_data(as_text=True)


def test_prompt_page_shows_variables_versions_and_diff(viewer_client, family):
    page = viewer_client.get(f"/prompts/{family['v2'].id}").get_data(as_text=True)
    assert "{{name}}" in page and "default Minerva" in page and "v1" in page
    fragment = viewer_client.get(
        f"/prompts/{family['v2'].id}?against={family['v1'].id}", headers=HX
    ).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="diff"')
    assert 'class="diff-changed"' in fragment and "diff-replace" not in fragment
    assert "<del>Hello</del>" in fragment and "<ins>Hi</ins>" in fragment  # the word marked


def test_test_form_renders_with_defaults_and_reports_missing(viewer_client, family):
    url = f"/prompts/{family['v1'].id}/test"
    fragment = viewer_client.get(
        url, query_string={"var_name": "Ada", "var_product": ""}, headers=HX
    ).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="test-result"')
    assert "Hello Ada\nWelcome to Minerva" in fragment and "tokens" in fragment
    missing = viewer_client.get(
        url, query_string={"extra_name": "mood", "extra_value": "x"}, headers=HX
    ).get_data(as_text=True)
    assert "name: no value and no default" in missing and "mood: not used by this prompt" in missing


def test_saving_content_creates_a_version_and_shows_it(admin_client, family, db):
    response = admin_client.post(
        f"/prompts/{family['v2'].id}/content",
        headers=HX,
        data={"csrf_token": csrf_token(admin_client, "/"), "content": "Hey {{name}}"},
    )
    assert response.status_code == 204
    v3 = db.session.scalar(select(Prompt).where(Prompt.version == 3))
    assert response.headers["HX-Redirect"] == f"/prompts/{v3.id}" and v3.content == "Hey {{name}}"
    assert "Saved as version 3." in admin_client.get(f"/prompts/{v3.id}").get_data(as_text=True)


def test_empty_content_comes_back_inline(admin_client, family):
    response = admin_client.post(
        f"/prompts/{family['v2'].id}/content",
        headers=HX,
        data={"csrf_token": csrf_token(admin_client, "/"), "content": " "},
    )
    assert response.status_code == 400
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="workspace"') and "Content is required" in fragment


def test_new_prompt_form_errors_and_viewers(admin_client, viewer_user, family):
    response = admin_client.post(
        "/prompts",
        headers=HX,
        data={"csrf_token": csrf_token(admin_client, "/"), "name": "", "content": ""},
    )
    assert response.status_code == 400
    assert "Name is required" in response.get_data(as_text=True)


def test_failed_actions_answer_inside_the_page_fragment(admin_client, family):
    token = csrf_token(admin_client, "/")
    response = admin_client.post(
        f"/prompts/{family['v1'].id}/delete", headers=HX, data={"csrf_token": token}
    )
    assert response.status_code == 409
    fragment = response.get_data(as_text=True)
    assert (
        fragment.lstrip().startswith('<div id="prompt-page">')
        and fragment.count('id="prompt-page"') == 1
    )
    assert "Not deleted:" in fragment
    response = admin_client.post(
        f"/prompts/{family['v1'].id}/duplicate",
        headers=HX,
        data={"csrf_token": token, "name": "bad/name!"},
    )
    assert response.status_code == 400 and "Not duplicated:" in response.get_data(as_text=True)


def test_variables_can_be_declared_from_the_page(admin_client, family, db):
    token = csrf_token(admin_client, "/")
    response = admin_client.post(
        f"/prompts/{family['v1'].id}/details",
        data={
            "csrf_token": token,
            "description": "",
            "tags": "chat",
            "variables": '{"name": {"type": "string", "default": "friend"}}',
        },
    )
    assert response.status_code == 302
    # The confirmation names what changed (issue 16 item 18: not "Description and tags").
    # Only the variables changed (the tags were "chat" already).
    assert "Variables saved." in admin_client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    again = admin_client.post(
        f"/prompts/{family['v1'].id}/details",
        data={"csrf_token": token, "description": "Greets", "tags": "chat, mail"},
    )
    page = admin_client.get(again.headers["Location"]).get_data(as_text=True)
    assert "Description and tags saved." in page
    db.session.expire_all()
    assert db.session.get(Prompt, family["v1"].id).variables == {
        "name": {"type": "string", "default": "friend"}
    }
    bad = admin_client.post(
        f"/prompts/{family['v1'].id}/details",
        headers=HX,
        data={"csrf_token": token, "tags": "", "variables": "{nope"},
    )
    assert bad.status_code == 400
    assert "Not saved: Variables must be valid JSON" in bad.get_data(as_text=True)
    assert "{nope</textarea>" in bad.get_data(as_text=True)  # what was typed is kept


def test_every_activation_asks_and_has_one_label(admin_client, family):
    """Issue 16 item 9: activating changes what is served: it asks, like deactivating,
    and reads "Activate in production" for older and newer versions alike."""
    import re

    page = admin_client.get(f"/prompts/{family['v2'].id}").get_data(as_text=True)
    assert "Roll back to this" not in page
    forms = re.findall(r'<form[^>]*action="/prompts/[^"]+/activate"[^>]*>.*?</form>', page, re.S)
    assert forms and all("data-confirm=" in form for form in forms)
    production = [form for form in forms if 'value="development"' not in form]
    assert production and all("Activate in production" in form for form in production)


def test_malformed_placeholders_are_reported_as_warnings(admin_client, family):
    """Issue 16 item 22: ``{{ user name }}`` and an unclosed ``{{`` were silently sent as
    written; the editor now says so (and still saves: braces may be meant literally)."""
    from tests.conftest import csrf_token

    response = admin_client.post(
        f"/prompts/{family['v2'].id}/content",
        data={
            "csrf_token": csrf_token(admin_client, "/"),
            "content": "Hello {{ user name }}\nWelcome to {{product",
        },
    )
    assert response.status_code == 302
    page = admin_client.get(response.location).get_data(as_text=True)
    assert "Check 2 placeholders: see the warnings below." in page
    assert "Line 1: “{{ user name }}” is not a placeholder" in page
    assert "(did you mean {{user_name}}?)" in page
    assert "Line 2: “{{product” opens {{ but never closes it with }}." in page
    clean = admin_client.get(f"/prompts/{family['v1'].id}").get_data(as_text=True)
    assert "placeholder-warnings" not in clean
