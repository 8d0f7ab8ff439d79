"""The loop the issue closes, over real HTTP on both sides: an admin signed in to the live
console (login form, session cookie, CSRF) assigns a model and promotes a prompt version to
production; the Python client sees both within one max-age; the usage it records carries
them; an experiment runs, the usage the client records per variant becomes the
experiment's results, the admin promotes the winner; the client sees the winner."""

from __future__ import annotations

from collections import Counter

from aipm_client import Client
from sqlalchemy import select

from tests import factories
from tests.clients.live import AdminSession
from webapp.models import Prompt, UsageLog

MAX_AGE = 30  # the console's Cache-Control: max-age


def stored_usage(db) -> list[UsageLog]:
    db.session.rollback()
    return list(db.session.scalars(select(UsageLog).order_by(UsageLog.created_at)))


def test_admin_decisions_reach_the_client_and_its_usage_flows_back(db, console, clock, admin_user):
    feature = factories.feature("chatbot")
    openai = factories.provider("openai")
    gpt4 = factories.model(openai, "gpt-4", config={"max_tokens": 512})
    factories.model(openai, "gpt-4o-mini")
    v1 = factories.prompt("greeting", 1, feature_id=feature.id, is_active=True, content="Hi")
    v2 = factories.prompt("greeting", 2, feature_id=feature.id, content="Hello {{name}}")
    v3 = factories.prompt("greeting", 3, feature_id=feature.id, content="Welcome, {{name}}!")
    _, secret = factories.api_key(environment="production")
    db.session.commit()
    ids = {"feature": str(feature.id), "gpt4": str(gpt4.id), "v2": str(v2.id), "v3": str(v3.id)}

    client = Client(console.url, secret, clock=clock, batch_size=100, flush_interval=60)
    before = client.config("chatbot")
    assert before.model is None and before.prompt("greeting")["version"] == 1
    assert v1.version == 1

    # 1. The admin assigns a model and promotes v2 development → staging → production.
    admin = AdminSession(console.url, admin_user.email)
    admin.ok(
        "POST",
        f"/features/{ids['feature']}/assignments",
        {"model_id": ids["gpt4"], "environment": "production"},
    )
    admin.ok("POST", f"/prompts/{ids['v2']}/activate", {"environment": "development"})
    admin.ok("POST", f"/prompts/{ids['v2']}/promote", {"to_environment": "staging"})
    promoted = admin.ok("POST", f"/prompts/{ids['v2']}/promote", {"to_environment": "production"})
    assert "production" in promoted["metadata"]["live_in"]

    # 2. Within one max-age the client sees both (before it, its cached answer stands).
    clock.advance(MAX_AGE - 1)
    assert client.config("chatbot").model is None
    clock.advance(1)
    seen = client.config("chatbot")
    assert seen.source == "console" and seen.revision > before.revision
    assert seen.model["name"] == "gpt-4" and seen.model["config"] == {"max_tokens": 512}
    assert seen.prompt("greeting")["version"] == 2

    # 3. The usage it records carries them.
    event_id = client.record(config=seen, input_tokens=120, output_tokens=30, latency_ms=400)
    assert client.flush(10)
    (row,) = stored_usage(db)
    assert row.event_id == event_id
    assert (row.model_id, row.model_name, row.provider_name) == (gpt4.id, "gpt-4", "openai")
    assert row.prompt_id == v2.id
    assert row.event_metadata == {"config_revision": seen.revision}

    # 4. An experiment: v2 (control) against v3; the client assigns subjects locally and
    # records each request tagged with its variant and whether the user converted.
    experiment = admin.ok(
        "POST",
        "/experiments",
        {
            "name": "Warmer greeting",
            "feature_id": ids["feature"],
            "experiment_type": "prompt_testing",
            "variants": [
                {"id": "control", "name": "Hello", "prompt_id": ids["v2"]},
                {"id": "warm", "name": "Welcome", "prompt_id": ids["v3"]},
            ],
            "traffic_allocation": {"control": 50, "warm": 50},
            "config": {"primary_metric": "converted", "alpha": 0.05},
        },
    )["data"]
    admin.ok("POST", f"/experiments/{experiment['id']}/start", {})
    clock.advance(MAX_AGE)
    running = client.config("chatbot")
    assert [e["id"] for e in running.experiments] == [experiment["id"]]
    served = Counter()
    for n in range(400):
        subject = f"user-{n}"
        variant = client.variant("chatbot", experiment["id"], subject)
        assert variant is not None
        served[variant.id] += 1
        # The warmer greeting converts 3 users in 10, the control 1 in 10.
        converted = n % 10 < (3 if variant.id == "warm" else 1)
        client.record(
            config=running,
            variant=variant,
            user_id=subject,
            input_tokens=100,
            output_tokens=20,
            metadata={"converted": converted},
        )
    assert client.flush(20)
    rows = stored_usage(db)[1:]
    assert len(rows) == 400
    by_variant = Counter(r.event_metadata["variant_id"] for r in rows)
    assert by_variant == served and set(served) == {"control", "warm"}
    prompt_of = {v2.id: "control", v3.id: "warm"}
    assert all(prompt_of[r.prompt_id] == r.event_metadata["variant_id"] for r in rows)

    # 5. The stored usage becomes the experiment's results; the admin promotes the winner.
    results = [
        {
            "variant_id": r.event_metadata["variant_id"],
            "metric_name": "converted",
            "metric_value": 1 if r.event_metadata["converted"] else 0,
            "user_id": str(r.user_id),
        }
        for r in rows
    ]
    recorded = admin.ok("POST", f"/experiments/{experiment['id']}/results", {"results": results})
    assert recorded["data"]["accepted"] == 400
    analysis = admin.ok("GET", f"/experiments/{experiment['id']}/analysis")["data"]
    assert analysis["winner"] == "warm"
    admin.ok("POST", f"/experiments/{experiment['id']}/promote", {})

    # 6. Within one max-age the client sees the winner live, and the experiment gone.
    clock.advance(MAX_AGE)
    after = client.config("chatbot")
    assert after.prompt("greeting")["version"] == 3
    assert after.prompt("greeting")["content"] == "Welcome, {{name}}!"
    assert after.experiments == []
    assert client.variant("chatbot", experiment["id"], "user-1") is None
    client.record(config=after, input_tokens=5)
    assert client.flush(10)
    last = stored_usage(db)[-1]
    db.session.rollback()
    assert db.session.get(Prompt, last.prompt_id).version == 3
    client.close()
