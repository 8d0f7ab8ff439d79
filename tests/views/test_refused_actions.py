"""Actions the rules always refuse are not offered: they are shown disabled with the
service's reason, and the confirmations say what really happens (issue 16 item 8)."""

from __future__ import annotations

import re

import pytest

from tests import factories


@pytest.fixture
def catalog(db):
    openai = factories.provider("openai", display_name="OpenAI")
    used = factories.model(openai, "gpt-4", display_name="GPT-4")
    unused = factories.model(openai, "gpt-5", display_name="GPT-5")
    chatbot = factories.feature("chatbot", display_name="AI Chatbot")
    factories.assignment(chatbot, used)
    spare = factories.provider("spare", display_name="Spare")
    factories.model(spare, "spare-1", display_name="Spare one")
    db.session.commit()
    return {"openai": openai, "used": used, "unused": unused, "spare": spare}


def _delete_forms(page: str, action: str) -> list[str]:
    return re.findall(rf'<form[^>]*action="{re.escape(action)}"[^>]*>', page)


def test_a_model_with_history_offers_no_delete_and_says_why(admin_client, catalog):
    url = f"/models/{catalog['used'].id}"
    page = admin_client.get(url).get_data(as_text=True)
    assert _delete_forms(page, f"{url}/delete") == []
    assert re.search(r"<button[^>]*disabled[^>]*>Delete model</button>", page)
    assert "GPT-4 has 1 deployment(s) in its history" in page
    assert "history goes with it" not in page


def test_a_model_without_history_confirms_what_happens(admin_client, catalog):
    url = f"/models/{catalog['unused'].id}"
    page = admin_client.get(url).get_data(as_text=True)
    (form,) = _delete_forms(page, f"{url}/delete")
    assert 'data-confirm="Delete GPT-5? It never served a feature; this cannot be undone."' in form


def test_a_provider_whose_models_served_offers_no_delete(admin_client, catalog):
    url = f"/providers/{catalog['openai'].id}"
    page = admin_client.get(url).get_data(as_text=True)
    assert _delete_forms(page, f"{url}/delete") == []
    assert re.search(r"<button[^>]*disabled[^>]*>Delete provider</button>", page)
    assert "GPT-4 serves AI Chatbot (production)" in page
    spare = f"/providers/{catalog['spare'].id}"
    (form,) = _delete_forms(admin_client.get(spare).get_data(as_text=True), f"{spare}/delete")
    assert (
        "Delete Spare and its 1 model (none ever served a feature)? This cannot be undone." in form
    )


def test_the_newest_prompt_version_offers_no_delete(admin_client, db):
    factories.prompt("greeting", version=1)
    newest = factories.prompt("greeting", version=2, content="Hi {{name}}")
    db.session.commit()
    url = f"/prompts/{newest.id}"
    page = admin_client.get(url).get_data(as_text=True)
    assert _delete_forms(page, f"{url}/delete") == []
    assert re.search(r"<button[^>]*disabled[^>]*>Delete this version</button>", page)
    assert "V2 is the newest version of greeting" in page


def test_an_admin_cannot_demote_or_deactivate_themself_and_is_told(
    admin_client, admin_user, viewer_user
):
    page = admin_client.get("/users").get_data(as_text=True)
    own, other = str(admin_user.id), str(viewer_user.id)
    assert f"/users/{own}/role" not in page and f"/users/{own}/deactivate" not in page
    assert f"/users/{other}/role" in page and f"/users/{other}/deactivate" in page
    assert "You cannot remove your own admin role; ask another admin." in page
    assert "You cannot deactivate yourself; ask another admin." in page
    assert f'aria-describedby="role-why-{own}"' in page
