"""Issue 16 item 18: non-ASCII letters such as "ü" are letters wherever a name is checked
(features, providers, prompts, experiment variants, prompt variables), in any alphabet;
feature and provider names stay lower case. Both databases (names are stored and read
back, and their uniqueness is checked by the database)."""

from __future__ import annotations

import unicodedata

import pytest

from tests import factories
from webapp.services.catalog import features, providers
from webapp.services.catalog.schemas import FeatureCreate, ProviderCreate
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, ValidationFailed
from webapp.services.core.validation import check
from webapp.services.experiments.schemas import VARIANT_ID_PATTERN
from webapp.services.prompts import versions as prompts
from webapp.services.prompts.rendering import placeholder_warnings, placeholders
from webapp.services.prompts.schemas import PromptCreate

ACTOR = Actor(user_id=None, ip_address="192.0.2.3", user_agent="pytest")


@pytest.mark.parametrize("name", ["übersetzung", "перевод", "翻訳", "straße-2", "café"])
def test_feature_names_take_lower_case_letters_of_any_alphabet(name):
    assert check(FeatureCreate, {"name": name, "display_name": "X"}).errors == {}


@pytest.mark.parametrize("name", ["Übersetzung", "ÜBER", "über setzung", "über_setzung", "-ü"])
def test_feature_names_still_refuse_upper_case_spaces_and_underscores(name):
    errors = check(FeatureCreate, {"name": name, "display_name": "X"}).errors
    assert errors == {
        "name": "must be 1-100 lower-case letters, digits and dashes (e.g. photo-tagging)"
    }


def test_a_decomposed_umlaut_is_the_same_name():
    """u + combining diaeresis (as some keyboards send it) is stored as the one letter."""
    decomposed = unicodedata.normalize("NFD", "übersetzung")
    assert decomposed != "übersetzung"
    checked = check(FeatureCreate, {"name": decomposed, "display_name": "X"})
    assert checked.errors == {} and checked.values["name"] == "übersetzung"


def test_provider_names_take_lower_case_letters_of_any_alphabet():
    fields = {"display_name": "X", "provider_type": "custom"}
    assert check(ProviderCreate, {"name": "anbieter-ö", **fields}).errors == {}
    assert set(check(ProviderCreate, {"name": "Anbieter-Ö", **fields}).errors) == {"name"}


@pytest.mark.parametrize("name", ["Übersetzung", "Zusammenfassung für Kunden", "résumé_v2.1"])
def test_prompt_names_take_letters_of_any_alphabet(name):
    assert check(PromptCreate, {"name": name, "content": "c"}).errors == {}


def test_variant_ids_and_prompt_variables_take_letters_of_any_alphabet():
    assert VARIANT_ID_PATTERN.match("kontrollgruppe-ä")
    assert not VARIANT_ID_PATTERN.match("_kontrolle")
    content = "Hallo {{ größe }} und {{name_2}}"
    assert placeholders(content) == ["größe", "name_2"]
    assert placeholder_warnings(content) == []  # not taken for a malformed placeholder


def test_unicode_names_are_stored_and_kept_unique(db):
    feature = features.create_feature(ACTOR, {"name": "übersetzung", "display_name": "Übersetzung"})
    assert features.get_feature(feature.id).name == "übersetzung"
    with pytest.raises(Conflict, match="already exists"):
        features.create_feature(ACTOR, {"name": "übersetzung", "display_name": "Zwei"})
    db.session.rollback()
    provider = providers.create_provider(
        ACTOR, {"name": "anbieter-ö", "display_name": "Anbieter Ö", "provider_type": "custom"}
    )
    assert provider.name == "anbieter-ö"
    prompt = prompts.create_prompt(
        ACTOR, {"name": "Übersetzung", "content": "Übersetze {{ text }}", "feature_id": feature.id}
    )
    assert prompts.get_prompt(prompt.id).name == "Übersetzung"
    with pytest.raises(ValidationFailed):
        prompts.create_prompt(ACTOR, {"name": "_Übersetzung", "content": "c"})


def test_the_feature_form_creates_a_feature_with_a_unicode_name(admin_client, db):
    from tests.conftest import csrf_token

    factories.provider("openai")
    db.session.commit()
    response = admin_client.post(
        "/features",
        data={
            "csrf_token": csrf_token(admin_client, "/"),
            "name": "übersetzung",
            "display_name": "Übersetzung",
            "model_type": "llm",
        },
    )
    assert response.status_code == 302
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<code>übersetzung</code>" in page and "Feature Übersetzung created." in page
