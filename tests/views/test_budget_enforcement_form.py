"""The budget form and pages show and edit ``enforcement`` and ``degrade_to``."""

from __future__ import annotations

from sqlalchemy import select

from tests import factories
from tests.conftest import csrf_token
from webapp.models import AuditLog, Budget

API = "/api/platform/ai-management"
FORM = {
    "name": "Chat",
    "budget_amount": "10",
    "alert_threshold": "0.8",
    "period_type": "monthly",
    "start_date": "2026-11-01",
    "end_date": "2026-12-31",
    "is_active": "on",
}


def test_form_creates_a_soft_budget_with_its_model_and_pages_show_it(admin_client, db):
    mini = factories.model(factories.provider("openai"), "gpt-4o-mini", display_name="Mini")
    db.session.commit()
    page = admin_client.get("/budgets/new").get_data(as_text=True)
    assert 'name="enforcement"' in page and 'name="degrade_to_model_id"' in page
    token = csrf_token(admin_client, "/budgets/new")
    answer = admin_client.post(
        "/budgets",
        data=FORM
        | {"csrf_token": token, "enforcement": "soft", "degrade_to_model_id": str(mini.id)},
    )
    assert answer.status_code == 302
    budget = db.session.scalars(select(Budget)).one()
    assert (budget.enforcement, budget.degrade_to_model_id) == ("soft", mini.id)
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "budget.create")).one()
    assert audit.new_values["enforcement"] == "soft"
    detail = admin_client.get(f"/budgets/{budget.id}").get_data(as_text=True)
    assert "enforcement: <strong>soft</strong> (degrade to Mini)" in detail
    assert ">soft</span>" in admin_client.get("/budgets").get_data(as_text=True)
    edit = admin_client.get(f"/budgets/{budget.id}/edit").get_data(as_text=True)
    assert f'<option value="{mini.id}" selected>' in edit


def test_form_names_a_bad_enforcement_and_saves_nothing(admin_client, db):
    token = csrf_token(admin_client, "/budgets/new")
    answer = admin_client.post(
        "/budgets", data=FORM | {"csrf_token": token, "enforcement": "strict"}
    )
    assert answer.status_code == 400
    assert "Enforcement must be one of observe, soft, hard" in answer.get_data(as_text=True)
    assert db.session.scalars(select(Budget)).first() is None


def test_admin_api_takes_and_returns_enforcement(admin_client, db):
    token = csrf_token(admin_client, "/budgets/new")
    headers = {"X-CSRFToken": token}
    body = {k: v for k, v in FORM.items() if k != "is_active"} | {"enforcement": "hard"}
    created = admin_client.post(f"{API}/budgets", json=body, headers=headers)
    assert created.status_code == 201
    assert created.json["data"]["enforcement"] == "hard"
    assert created.json["data"]["degrade_to_model_id"] is None
    bad = admin_client.put(
        f"{API}/budgets/{created.json['data']['id']}",
        json={"degrade_to_model_id": "x"},
        headers=headers,
    )
    assert bad.status_code == 400
    assert set(bad.json["fields"]) == {"degrade_to_model_id"}
