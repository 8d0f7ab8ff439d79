"""The experiments API contract: the issue's URLs and field names, and wrong input
(400 naming the field, 404 for unknown or malformed ids, 409 for refused moves)."""

from __future__ import annotations

import uuid

import pytest

from tests import factories
from tests.conftest import csrf_token

API = "/api/platform/ai-management/experiments"


def send(client, method, url, **kwargs):
    return client.open(
        url, method=method, headers={"X-CSRFToken": csrf_token(client, "/")}, **kwargs
    )


def answer(response, status=200):
    assert response.status_code == status, response.get_json()
    return response.get_json()


@pytest.fixture
def setup(db):
    feature = factories.feature("chatbot")
    provider = factories.provider("openai")
    serving = factories.model(provider, "gpt-4")
    challenger = factories.model(provider, "gpt-4o-mini")
    factories.assignment(feature, serving)
    old = factories.prompt("greeting", 1, feature_id=feature.id, is_active=True)
    new = factories.prompt("greeting", 2, feature_id=feature.id, content="Hi {{name}}!")
    db.session.commit()
    return {
        "feature": feature,
        "serving": serving,
        "challenger": challenger,
        "old": old,
        "new": new,
    }


def issue_body(setup) -> dict:
    """The example body of the issue, with real ids."""
    return {
        "name": "Greeting v2",
        "feature_id": str(setup["feature"].id),
        "experiment_type": "prompt_testing",
        "variants": [
            {"id": "control", "name": "Current", "prompt_id": str(setup["old"].id)},
            {"id": "v2", "name": "Friendlier", "prompt_id": str(setup["new"].id)},
        ],
        "traffic_allocation": {"control": 50, "v2": 50},
        "config": {"primary_metric": "converted", "alpha": 0.05},
    }


@pytest.fixture
def experiment(admin_client, setup) -> dict:
    return answer(send(admin_client, "POST", API, json=issue_body(setup)), 201)["data"]


def results(variant: str, successes: int, n: int) -> list[dict]:
    return [
        {
            "variant_id": variant,
            "metric_name": "converted",
            "metric_value": 1 if i < successes else 0,
            "session_id": str(uuid.uuid4()),
        }
        for i in range(n)
    ]


def test_create_get_list_and_filters(admin_client, setup, experiment):
    assert experiment["status"] == "draft" and experiment["control"] == "control"
    assert experiment["traffic_allocation"] == {"control": 50, "v2": 50}
    assert experiment["statistical_significance"] is None and experiment["winner_variant"] is None
    got = answer(admin_client.get(f"{API}/{experiment['id']}"))["data"]
    assert got["variants"][1]["prompt_id"] == str(setup["new"].id)
    listed = answer(admin_client.get(f"{API}?status=draft&feature_id={setup['feature'].id}"))
    assert [e["id"] for e in listed["data"]] == [experiment["id"]]
    assert listed["data"][0]["feature_name"] == "Chatbot"
    assert answer(admin_client.get(f"{API}?status=running"))["data"] == []
    assert answer(admin_client.get(f"{API}?status=running,draft"))["metadata"]["count"] == 1


def test_list_filters_are_checked(admin_client, setup):
    assert answer(admin_client.get(f"{API}?status=asleep"), 400)["fields"].keys() == {"status"}
    assert answer(admin_client.get(f"{API}?feature_id=nope"), 400)["fields"].keys() == {
        "feature_id"
    }


@pytest.mark.parametrize(
    "change, field",
    [
        ({"traffic_allocation": {"control": 60, "v2": 60}}, "traffic_allocation"),
        ({"traffic_allocation": {"control": 100}}, "traffic_allocation.v2"),
        ({"experiment_type": "guessing"}, "experiment_type"),
        ({"feature_id": "not-an-id"}, "feature_id"),
        ({"config": {"alpha": 0.05}}, "config.primary_metric"),
        ({"config": {"primary_metric": "converted", "control": "v9"}}, "config.control"),
        ({"variants": "two"}, "variants"),
        ({"name": ""}, "name"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_wrong_input_is_400_naming_the_field(admin_client, setup, change, field):
    body = {**issue_body(setup), **change}
    response = answer(send(admin_client, "POST", API, json=body), 400)
    assert response["success"] is False
    assert field in response["fields"], response["fields"]
    assert answer(admin_client.get(API))["data"] == []


def test_unknown_prompt_or_model_is_refused(admin_client, setup):
    body = issue_body(setup)
    body["variants"][1]["prompt_id"] = str(uuid.uuid4())
    fields = answer(send(admin_client, "POST", API, json=body), 400)["fields"]
    assert fields == {"variants.1.prompt_id": "is not a known prompt version"}
    body = {
        **issue_body(setup),
        "experiment_type": "model_comparison",
        "variants": [
            {"id": "control", "name": "GPT-4", "model_id": str(setup["serving"].id)},
            {"id": "v2", "name": "Ghost", "model_id": str(uuid.uuid4())},
        ],
    }
    fields = answer(send(admin_client, "POST", API, json=body), 400)["fields"]
    assert fields == {"variants.1.model_id": "is not a known model"}


def test_json_that_is_not_an_object_is_400(admin_client, setup):
    response = send(admin_client, "POST", API, data="[1]", content_type="application/json")
    assert answer(response, 400)["fields"] == {"body": "must be a JSON object"}


@pytest.mark.parametrize("suffix", ["", "/analysis", "/assignment?subject=a"])
@pytest.mark.parametrize("target", [lambda: str(uuid.uuid4()), lambda: "not-a-uuid"])
def test_unknown_or_malformed_ids_are_404(admin_client, setup, suffix, target):
    assert answer(admin_client.get(f"{API}/{target()}{suffix}"), 404)["success"] is False


@pytest.mark.parametrize("action", ["start", "pause", "complete", "promote"])
def test_writes_on_unknown_ids_are_404(admin_client, setup, action):
    answer(send(admin_client, "POST", f"{API}/{uuid.uuid4()}/{action}", json={}), 404)
    answer(send(admin_client, "DELETE", f"{API}/nope", json={}), 404)
    answer(send(admin_client, "PUT", f"{API}/nope", json={"name": "x"}), 404)


def test_lifecycle_over_the_api_with_409_for_bad_moves(admin_client, experiment):
    url = f"{API}/{experiment['id']}"
    conflict = answer(send(admin_client, "POST", f"{url}/pause", json={}), 409)
    assert conflict["error"] == "Conflict" and "cannot pause" in conflict["details"]
    started = answer(send(admin_client, "POST", f"{url}/start", json={}))["data"]
    assert started["status"] == "running" and started["start_date"]
    frozen = answer(send(admin_client, "PUT", url, json={"variants": []}), 409)
    assert "variants" in frozen["fields"]
    answer(send(admin_client, "DELETE", url, json={}), 409)
    assert answer(send(admin_client, "POST", f"{url}/pause", json={}))["data"]["status"] == "paused"
    assert answer(send(admin_client, "POST", f"{url}/resume", json={}))["data"]["status"] == (
        "running"
    )
    done = answer(send(admin_client, "POST", f"{url}/complete", json={}))["data"]
    assert done["status"] == "completed" and done["end_date"]
    answer(send(admin_client, "POST", f"{url}/cancel", json={}), 409)
    answer(send(admin_client, "DELETE", url, json={}))
    answer(admin_client.get(url), 404)


def test_cancel_a_draft_and_update_it_before(admin_client, experiment):
    url = f"{API}/{experiment['id']}"
    updated = answer(
        send(admin_client, "PUT", url, json={"traffic_allocation": {"control": 90, "v2": 10}})
    )["data"]
    assert updated["traffic_allocation"] == {"control": 90, "v2": 10}
    assert answer(send(admin_client, "PUT", url, json={"traffic_allocation": 5}), 400)["fields"]
    assert answer(send(admin_client, "POST", f"{url}/cancel", json={}))["data"]["status"] == (
        "cancelled"
    )


def test_assignment_is_stable_and_needs_a_subject(admin_client, experiment):
    url = f"{API}/{experiment['id']}/assignment"
    first = answer(admin_client.get(f"{url}?subject=user-1"))["data"]
    assert first["variant_id"] in ("control", "v2") and 0 <= first["bucket"] < 10_000
    assert first["running"] is False and first["experiment_status"] == "draft"
    assert answer(admin_client.get(f"{url}?subject=user-1"))["data"] == first
    assert answer(admin_client.get(url), 400)["fields"].keys() == {"subject"}


def test_results_analysis_and_promote(admin_client, setup, experiment):
    url = f"{API}/{experiment['id']}"
    refused = answer(send(admin_client, "POST", f"{url}/results", json=results("v2", 1, 1)), 409)
    assert "only while it runs" in refused["details"]
    answer(send(admin_client, "POST", f"{url}/start", json={}))
    not_yet = answer(send(admin_client, "POST", f"{url}/promote", json={}), 409)
    assert "no significant winner" in not_yet["details"]
    batch = results("control", 50, 500) + results("v2", 110, 500)
    batch.append({"variant_id": "v9", "metric_name": "converted", "metric_value": 1})
    recorded = answer(send(admin_client, "POST", f"{url}/results", json={"results": batch}), 201)
    assert recorded["data"]["accepted"] == 1000
    assert recorded["data"]["refused"] == [
        {"index": 1000, "reason": "variant_id 'v9' is not a variant of this experiment"}
    ]
    analysis = answer(admin_client.get(f"{url}/analysis"))["data"]
    metric = analysis["metrics"][0]
    assert metric["metric_name"] == "converted" and metric["kind"] == "rate"
    control, v2 = metric["variants"]
    assert control["n"] == 500 and control["rate"] == pytest.approx(0.1)
    assert len(control["confidence_interval"]) == 2
    assert v2["p_value"] < 0.001 and v2["p_value_corrected"] == v2["p_value"]
    assert v2["sufficient_data"] is True and v2["significant"] is True
    assert analysis["srm"]["checked"] is True and analysis["srm"]["mismatch"] is False
    assert analysis["winner"] == "v2"
    stored = answer(admin_client.get(url))["data"]
    assert stored["winner_variant"] == "v2" and stored["statistical_significance"] == "0.0000"
    promoted = answer(send(admin_client, "POST", f"{url}/promote", json={}))
    assert promoted["data"]["status"] == "completed"
    assert promoted["metadata"]["promoted_variant"]["id"] == "v2"
    assert "v2 is now the active version" in promoted["metadata"]["message"]
    answer(send(admin_client, "POST", f"{url}/promote", json={}), 409)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"results": []}, "results"),
        ({"items": []}, "items"),
        ("nonsense", "results"),
        ([{"variant_id": "control", "metric_name": "m", "metric_value": "x"}], "results.0"),
    ],
)
def test_bad_result_batches_are_400(admin_client, experiment, body, field):
    url = f"{API}/{experiment['id']}"
    answer(send(admin_client, "POST", f"{url}/start", json={}))
    response = send(admin_client, "POST", f"{url}/results", json=body)
    assert field in answer(response, 400)["fields"]


def test_a_results_envelope_names_every_wrong_field(admin_client, experiment):
    url = f"{API}/{experiment['id']}/results"
    fields = answer(send(admin_client, "POST", url, json={"results": [], "colour": 1}), 400)
    assert fields["fields"] == {
        "colour": "is not a field (send results: [...])",
        "results": "must be a list of 1 to 5,000 results",
    }
    fields = answer(send(admin_client, "POST", url, json={}), 400)["fields"]
    assert fields == {"results": "must be a list of 1 to 5,000 results"}
