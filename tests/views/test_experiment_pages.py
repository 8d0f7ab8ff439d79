"""Experiment pages: the filtered list (page and htmx fragment), the create form with
field errors, and the experiment page with chart, p-values, SRM warning and buttons."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from sqlalchemy import select

from tests import factories
from tests.conftest import csrf_token
from webapp.models import Experiment, ExperimentResult
from webapp.services.core.actor import Actor
from webapp.services.experiments import lifecycle as experiments


@pytest.fixture
def setup(db):
    feature = factories.feature("chatbot")
    provider = factories.provider("openai")
    serving = factories.model(provider, "gpt-4")
    challenger = factories.model(provider, "gpt-4o-mini")
    factories.assignment(feature, serving)
    db.session.commit()
    return feature, serving, challenger


def create(setup, name="Cheaper model", start=False) -> Experiment:
    feature, serving, challenger = setup
    experiment = experiments.create_experiment(
        Actor.cli(),
        {
            "name": name,
            "feature_id": feature.id,
            "experiment_type": "model_comparison",
            "variants": [
                {"id": "current", "name": "GPT-4", "model_id": str(serving.id)},
                {"id": "mini", "name": "Mini", "model_id": str(challenger.id)},
            ],
            "config": {"primary_metric": "converted"},
        },
    )
    if start:
        experiments.transition(Actor.cli(), experiment.id, "start")
    return experiment


def add(db, experiment, variant, successes, n):
    for index in range(n):
        db.session.add(
            ExperimentResult(
                experiment_id=experiment.id,
                variant_id=variant,
                session_id=uuid.uuid4(),
                metric_name="converted",
                metric_value=1 if index < successes else 0,
            )
        )
    db.session.commit()


def test_list_filters_by_status_as_page_and_fragment(admin_client, setup):
    create(setup, "Draft one")
    create(setup, "Running one", start=True)
    page = admin_client.get("/experiments?status=running").get_data(as_text=True)
    assert "Running one" in page and "Draft one" not in page
    assert "<option selected>running</option>" in page
    fragment = admin_client.get("/experiments?status=draft", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in html
    assert 'id="experiment-results"' in html and "Draft one" in html
    assert admin_client.get("/experiments?status=asleep").status_code == 400


def _form(setup, **changes):
    feature, serving, challenger = setup
    form = {
        "name": "Cheaper model",
        "feature_id": str(feature.id),
        "experiment_type": "model_comparison",
        "primary_metric": "converted",
        "alpha": "0.05",
        "variant_0_id": "current",
        "variant_0_name": "GPT-4",
        "variant_0_model_id": str(serving.id),
        "variant_0_share": "70",
        "variant_1_id": "mini",
        "variant_1_name": "Mini",
        "variant_1_model_id": str(challenger.id),
        "variant_1_share": "30",
    }
    return {**form, **changes}


def test_create_form_saves_a_draft(admin_client, db, setup):
    assert admin_client.get("/experiments/new").status_code == 200
    token = csrf_token(admin_client, "/experiments/new")
    response = admin_client.post("/experiments", data={**_form(setup), "csrf_token": token})
    assert response.status_code == 302
    experiment = db.session.scalar(select(Experiment))
    assert response.headers["Location"] == f"/experiments/{experiment.id}"
    assert experiment.traffic_allocation == {"current": 70, "mini": 30}
    assert experiment.variants[1]["model_id"] == str(setup[2].id)
    assert experiment.config == {
        "primary_metric": "converted",
        "alpha": 0.05,
        "higher_is_better": True,
    }


def test_create_form_shows_errors_by_field(admin_client, db, setup):
    token = csrf_token(admin_client, "/experiments/new")
    data = {**_form(setup, variant_1_share="20", variant_1_model_id="", primary_metric="")}
    response = admin_client.post("/experiments", data={**data, "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Primary metric is required" in html
    assert "Model is required: the id of a model" in html
    assert db.session.scalar(select(Experiment)) is None
    data = _form(setup, variant_1_share="20")
    response = admin_client.post(
        "/experiments", data={**data, "csrf_token": token}, headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "<html" not in html
    assert "must sum to 100" in html and 'value="20"' in html


def test_experiment_page_shows_metrics_chart_and_promote(admin_client, db, setup):
    experiment = create(setup, start=True)
    add(db, experiment, "current", 50, 500)
    add(db, experiment, "mini", 110, 500)
    html = admin_client.get(f"/experiments/{experiment.id}").get_data(as_text=True)
    assert "Mini beats the control" in html
    # 10 % vs 22 %: the rates in percent, their difference in percentage points.
    assert "10.00 %" in html and "22.00 %" in html and "+12.00 pts" in html
    assert "&lt; 0.0001" in html and "significant" in html
    assert "Promote Mini (mini)" in html and "Traffic split matches" in html  # its name
    assert "Promote variant Mini (mini) to production" in html
    figure = json.loads(
        re.search(r'data-plotly-figure="([^"]+)"', html).group(1).replace("&#34;", '"')
    )
    trace = figure["data"][0]
    assert trace["x"] == ["GPT-4", "Mini"] and trace["error_y"]["type"] == "data"
    assert trace["y"] == pytest.approx([10.0, 22.0])


def test_experiment_page_warns_of_srm_and_hides_promote(admin_client, db, setup):
    experiment = create(setup, start=True)
    add(db, experiment, "current", 60, 600)
    add(db, experiment, "mini", 130, 400)
    html = admin_client.get(f"/experiments/{experiment.id}").get_data(as_text=True)
    assert 'id="srm-warning"' in html and "Sample ratio mismatch" in html
    assert "Promote Mini (mini)" not in html


def test_refused_transition_shows_why(admin_client, db, setup):
    experiment = create(setup)
    token = csrf_token(admin_client, f"/experiments/{experiment.id}")
    response = admin_client.post(
        f"/experiments/{experiment.id}/transition",
        data={"action": "pause", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and "cannot pause" in html
    assert 'id="experiment-page"' in html and "<html" not in html


def test_viewer_sees_the_page_without_buttons(viewer_client, db, setup):
    experiment = create(setup)
    html = viewer_client.get(f"/experiments/{experiment.id}").get_data(as_text=True)
    assert "Cheaper model" in html and 'name="action"' not in html
    assert "New experiment" not in viewer_client.get("/experiments").get_data(as_text=True)


def test_delete_button_follows_the_service_rule(admin_client, db, setup):
    draft = create(setup, "Draft one")
    live = create(setup, "Live one", start=True)
    draft_page = admin_client.get(f"/experiments/{draft.id}").get_data(as_text=True)
    live_page = admin_client.get(f"/experiments/{live.id}").get_data(as_text=True)
    assert f"/experiments/{draft.id}/delete" in draft_page
    assert f"/experiments/{live.id}/delete" not in live_page
    fragment = admin_client.get(f"/experiments/{draft.id}", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in html and "/delete" in html


def test_the_page_template_repeats_no_lifecycle_rule(app):
    """Which buttons show is the service's call (can_promote, can_delete)."""
    source = app.jinja_loader.get_source(app.jinja_env, "experiments/detail.html")[0]
    assert "experiment.status in" not in source
    assert "{% if can_promote %}" in source and "{% if can_delete %}" in source


def test_the_form_names_every_problem_in_one_answer(admin_client, db, setup):
    """Issue 16 item 10: unreadable JSON and a wrong alpha no longer hide the service's
    problems until the next submit."""
    data = _form(
        setup,
        name="",
        alpha="lots",
        variant_1_params="{not json",
        variant_0_model_id=str(uuid.uuid4()),
    )
    token = csrf_token(admin_client, "/experiments/new")
    response = admin_client.post("/experiments", data={**data, "csrf_token": token})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="experiment-name-error"' in html  # the service's
    assert 'id="experiment-alpha-error"' in html  # the form's
    assert 'id="variant_1_params-error"' in html and "must be valid JSON" in html
    assert 'id="variant_0_model_id-error"' in html


def test_ten_variants_fit_the_form(admin_client, db, setup):
    challenger = setup[2]
    data = _form(setup, variant_0_share="", variant_1_share="")
    for row in range(2, 10):
        data |= {
            f"variant_{row}_id": f"v{row}",
            f"variant_{row}_name": f"V{row}",
            f"variant_{row}_model_id": str(challenger.id),
        }
    page = admin_client.get("/experiments/new").get_data(as_text=True)
    assert 'name="variant_9_id"' in page and 'name="variant_10_id"' not in page
    token = csrf_token(admin_client, "/experiments/new")
    response = admin_client.post("/experiments", data={**data, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    experiment = db.session.scalars(select(Experiment)).one()
    assert len(experiment.variants) == 10


def test_only_the_chosen_features_prompts_are_offered(admin_client, db, setup):
    feature, _, _ = setup
    other = factories.feature("search")
    own = factories.prompt("greeting", feature_id=feature.id)
    foreign = factories.prompt("ranking", feature_id=other.id)
    shared = factories.prompt("global-tone")
    db.session.commit()
    blank = admin_client.get("/experiments/new").get_data(as_text=True)
    assert str(own.id) not in blank and "Choose the feature first" in blank
    chosen = admin_client.get(
        f"/experiments/new?feature_id={feature.id}&name=Tone", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert chosen.lstrip().startswith('<form id="experiment-form"')
    assert str(own.id) in chosen and str(shared.id) in chosen and str(foreign.id) not in chosen
    assert 'value="Tone"' in chosen  # what was typed stays
