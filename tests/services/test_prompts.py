"""Prompt versions, activation, search and rendering (both databases)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests import factories
from webapp.models import AuditLog, Prompt, UsageLog
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.prompts import versions as prompts
from webapp.services.prompts.rendering import render

ACTOR = Actor(user_id=None, ip_address="192.0.2.3", user_agent="pytest")


@pytest.fixture
def chatbot(db):
    feature = factories.feature("chatbot", display_name="AI Chatbot")
    db.session.commit()
    return feature


def create(name="greeting", content="Hello {{name}}", **fields):
    return prompts.create_prompt(ACTOR, {"name": name, "content": content, **fields})


# --- versions --------------------------------------------------------------------------


def test_creating_an_existing_family_adds_the_next_version(db, chatbot):
    first = create(feature_id=str(chatbot.id))
    second = create(content="Hi {{name}}", feature_id=str(chatbot.id))
    other_scope = create()  # no feature: a family of its own
    assert (first.version, second.version, other_scope.version) == (1, 2, 1)


def test_new_content_is_a_new_version_and_the_old_one_is_kept(db, chatbot):
    v1 = create(feature_id=str(chatbot.id), tags=["chat"], description="first")
    v2 = prompts.update_prompt(ACTOR, v1.id, {"content": "Hi there {{ name }}"})
    assert v2.id != v1.id and v2.version == 2
    assert v2.tags == ["chat"] and v2.description == "first"  # carried over
    db.session.expire_all()
    assert db.session.get(Prompt, v1.id).content == "Hello {{name}}"  # unchanged
    actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.created_at)).all()
    assert actions == ["prompt.create", "prompt.new_version"]


def test_description_tags_and_variables_change_in_place(db):
    v1 = create()
    same = prompts.update_prompt(
        ACTOR,
        v1.id,
        {
            "description": "d",
            "tags": "b, a, a",
            "variables": {"name": {"type": "string", "default": "you"}},
        },
    )
    assert same.id == v1.id and same.version == 1 and same.tags == ["a", "b"]
    assert (
        prompts.update_prompt(ACTOR, v1.id, {"content": "Hello {{name}}"}).id == v1.id
    )  # same content


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"content": ""}, "content"),
        ({"name": ""}, "name"),
        ({"tags": [1]}, "tags"),
        ({"variables": {"x": {"type": "date"}}}, "variables.x"),
        ({"variables": {"1x": {}}}, "variables.1x"),
        ({"variables": {"n": {"type": "number", "default": "many"}}}, "variables.n"),
        ({"feature_id": str(uuid.uuid4())}, "feature_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_create_names_each_wrong_field(db, fields, field):
    with pytest.raises(ValidationFailed) as error:
        prompts.create_prompt(ACTOR, {"name": "p", "content": "c", **fields})
    assert field in error.value.errors
    assert db.session.scalar(select(func.count()).select_from(Prompt)) == 0


def test_name_feature_and_activity_cannot_be_changed_by_update(db):
    v1 = create()
    for key, value in (("name", "other"), ("is_active", True)):
        with pytest.raises(ValidationFailed) as error:
            prompts.update_prompt(ACTOR, v1.id, {key: value})
        assert key in error.value.errors


def test_concurrent_creates_of_one_family_end_with_n_and_n_plus_1(app, db, chatbot, dialect):
    if dialect != "postgresql":
        pytest.skip("two real connections at once: PostgreSQL")
    from webapp.rls import OPERATOR, use_database_role

    create(feature_id=str(chatbot.id))
    feature_id = str(chatbot.id)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def add(text):
        with app.app_context():
            use_database_role(OPERATOR)
            barrier.wait()
            try:
                outcomes.append(
                    prompts.create_prompt(
                        ACTOR, {"name": "greeting", "content": text, "feature_id": feature_id}
                    ).version
                )
            except Exception as error:  # asserted below
                outcomes.append(error)

    threads = [threading.Thread(target=add, args=(t,)) for t in ("A {{x}}", "B {{x}}")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == [2, 3], outcomes


# --- activation ------------------------------------------------------------------------


def test_activation_is_exclusive_and_deactivation_leaves_none(db, chatbot):
    v1 = create(feature_id=str(chatbot.id), is_active=True)
    v2 = create(content="v2", feature_id=str(chatbot.id))
    prompts.activate(ACTOR, v2.id)
    db.session.expire_all()
    assert [p.version for p in prompts.versions(v1.id) if p.is_active] == [2]
    prompts.activate(ACTOR, v1.id)  # roll back to version 1
    db.session.expire_all()
    assert [p.version for p in prompts.versions(v1.id) if p.is_active] == [1]
    prompts.deactivate(ACTOR, v1.id)
    db.session.expire_all()
    assert not any(p.is_active for p in prompts.versions(v1.id))
    row = db.session.scalars(
        select(AuditLog)
        .where(AuditLog.action == "prompt.activate")
        .order_by(AuditLog.created_at.desc())
    ).first()
    # Per environment since issue 15: the row also says where (production) and which ids.
    assert (row.old_values["active_version"], row.new_values["active_version"]) == (2, 1)
    assert row.old_values["environment"] == row.new_values["environment"] == "production"


def test_deleting_the_active_version_is_refused(db):
    v1 = create(is_active=True)
    v2 = create(content="two")
    with pytest.raises(Conflict, match="activate another version"):
        prompts.delete_prompt(ACTOR, v1.id)
    prompts.activate(ACTOR, v2.id)
    prompts.delete_prompt(ACTOR, v1.id)
    with pytest.raises(NotFound):
        prompts.get_prompt(v1.id)


def test_duplicate_under_a_new_name(db, chatbot):
    v1 = create(feature_id=str(chatbot.id), tags=["t"], is_active=True)
    copy = prompts.duplicate(ACTOR, v1.id, "greeting-formal")
    assert (copy.name, copy.version, copy.is_active, copy.tags, copy.feature_id) == (
        "greeting-formal",
        1,
        False,
        ["t"],
        chatbot.id,
    )
    with pytest.raises(ValidationFailed):
        prompts.duplicate(ACTOR, v1.id, "greeting")


# --- listing and search ----------------------------------------------------------------


@pytest.fixture
def library(db, chatbot):
    create("discount", "Use code 100%_OFF now", tags=["sales"])
    create("path", "Open C:\\temp\\file", tags=["ops", "win"])
    create(
        "Greeting",
        "Hello {{name}}",
        description="Warm WELCOME",
        feature_id=str(chatbot.id),
        is_active=True,
    )
    create("unicode", "Grüße an {{name}}", tags=["de"])


@pytest.mark.parametrize(
    "search, expected",
    [
        ("100%", ["discount"]),
        ("%", ["discount"]),
        ("_", ["discount"]),
        ("0%_o", ["discount"]),
        ("\\temp", ["path"]),
        ("welcome", ["Greeting"]),
        ("HELLO", ["Greeting"]),
        ("grüße", ["unicode"]),
        ("nothing-like-this", []),
    ],
)
def test_search_is_case_insensitive_and_matches_wildcards_literally(library, search, expected):
    page = prompts.list_prompts(search=search)
    assert sorted(p.name for p in page.prompts) == expected and page.total == len(expected)


def test_filters_paging_and_tags(library, chatbot):
    assert [p.name for p in prompts.list_prompts(feature_id=chatbot.id).prompts] == ["Greeting"]
    assert sorted(p.name for p in prompts.list_prompts(tags=["win", "sales"]).prompts) == [
        "discount",
        "path",
    ]
    assert [p.name for p in prompts.list_prompts(is_active=True).prompts] == ["Greeting"]
    page = prompts.list_prompts(limit=2, offset=2)
    assert (len(page.prompts), page.total) == (2, 4)
    assert prompts.all_tags() == ["de", "ops", "sales", "win"]
    for kwargs, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"offset": -1}, "offset"),
    ):
        with pytest.raises(ValidationFailed) as error:
            prompts.list_prompts(**kwargs)
        assert field in error.value.errors


# --- diff, render, usage --------------------------------------------------------------


def test_diff_between_versions(db):
    v1 = create(content="line one\nline two\nline three")
    v2 = prompts.update_prompt(ACTOR, v1.id, {"content": "line one\nline 2\nline three\nline four"})
    result = prompts.diff(v2.id, v1.id)
    assert (result.old.version, result.new.version) == (1, 2)
    assert (
        "-line two" in result.unified
        and "+line 2" in result.unified
        and "+line four" in result.unified
    )
    assert ("replace", "line two", "line 2") in result.rows and (
        "insert",
        "",
        "line four",
    ) in result.rows
    other = create("other", "x")
    with pytest.raises(ValidationFailed):
        prompts.diff(v1.id, other.id)


@pytest.mark.parametrize(
    "content, declarations, values, rendered, missing, extra, type_errors",
    [
        ("Hi {{name}} and {{ name }}!", {}, {"name": "Ada"}, "Hi Ada and Ada!", [], [], {}),
        ("Hi {{name}}", {}, {}, "Hi {{name}}", ["name"], [], {}),
        ("Hi {{name}}", {"name": {"default": "you"}}, {}, "Hi you", [], [], {}),
        ("Hi {{name}}", {}, {"name": "Ada", "mood": "x"}, "Hi Ada", [], ["mood"], {}),
        ("{{a}}", {}, {"a": "{{b}}", "b": "no"}, "{{b}}", [], ["b"], {}),  # no re-expansion
        ("{{{x}}} {{ 1 + 2 }} { {x} }", {}, {"x": "X"}, "{X} {{ 1 + 2 }} { {x} }", [], [], {}),
        (
            "n={{n}} ok={{ok}}",
            {"n": {"type": "number"}, "ok": {"type": "boolean"}},
            {"n": "3.50", "ok": "TRUE"},
            "n=3.50 ok=true",
            [],
            [],
            {},
        ),
        (
            "n={{n}}",
            {"n": {"type": "number"}},
            {"n": "lots"},
            "n={{n}}",
            [],
            [],
            {"n": "must be a number"},
        ),
        ("Grüße, {{ name }} 👋", {}, {"name": "Jürgen"}, "Grüße, Jürgen 👋", [], [], {}),
        ("{{\tname\n}}", {}, {"name": "tab"}, "tab", [], [], {}),
    ],
)
def test_render_edge_cases(content, declarations, values, rendered, missing, extra, type_errors):
    result = render(content, declarations, values)
    assert (result.rendered, result.missing, result.extra, result.type_errors) == (
        rendered,
        missing,
        extra,
        type_errors,
    )


def test_try_render_estimates_tokens_and_cost_with_the_production_model(db, chatbot):
    model = factories.model(factories.provider(), "gpt-4", input_price_per_million=Decimal("30"))
    factories.assignment(chatbot, model)
    v1 = create(content="x" * 4000 + " {{name}}", feature_id=str(chatbot.id))
    trial = prompts.try_render(v1.id, {"name": "Ada"})
    assert trial.result.ok and trial.tokens == 1001  # ceil(4004 / 4)
    assert trial.model.name == "gpt-4" and trial.cost == Decimal("0.030030")
    assert prompts.try_render(create("solo", "hi").id, {}).cost is None  # no feature, no model
    with pytest.raises(NotFound):
        prompts.try_render(uuid.uuid4(), {})


def test_usage_statistics_per_prompt(db):
    v1 = create()
    for status, cost in (("success", "0.5"), ("error", "0.25")):
        db.session.add(
            UsageLog(
                prompt_id=v1.id,
                status=status,
                cost_usd=Decimal(cost),
                response_time_ms=100,
                created_at=datetime(2026, 11, 20, 12, tzinfo=UTC),
            )
        )
    db.session.commit()
    stats = prompts.usage(v1.id, days=3, today=date(2026, 11, 21))
    assert stats.totals.total_requests == 2 and stats.totals.success_rate == Decimal("50.00")
    assert stats.totals.total_cost == Decimal("0.750000")
    assert [(d.day.day, d.requests) for d in stats.daily] == [(19, 0), (20, 2), (21, 0)]


# --- review follow-ups ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1e999999999", "1e100000", "-1e31"])
def test_huge_numbers_are_type_errors_not_crashes(value):
    result = render("n={{n}}", {"n": {"type": "number"}}, {"n": value})
    assert "n" in result.type_errors and result.rendered == "n={{n}}"


def test_numbers_render_as_typed_without_exponents():
    result = render(
        "{{a}} {{b}}", {"a": {"type": "number"}, "b": {"type": "number"}}, {"a": "1e-7", "b": "1E3"}
    )
    assert result.rendered == "0.0000001 1000"


def test_an_empty_string_is_a_value_unless_the_form_left_it_blank():
    assert render("[{{x}}]", {}, {"x": ""}).rendered == "[]"
    assert render("[{{x}}]", {}, {"x": ""}, blank_is_missing=True).missing == ["x"]


def test_family_list_counts_every_version_whatever_matched(db):
    v1 = create("famx", "alpha", is_active=True)
    create("famx", "beta")
    [family] = prompts.list_families(search="beta").families
    assert (family.active_version, family.versions, family.latest.version) == (1, 2, 2)
    assert prompts.list_families(search="beta", active=False).total == 0
    assert v1.version == 1


def test_the_newest_version_cannot_be_deleted_so_numbers_are_never_reused(db):
    v1 = create()
    v2 = create(content="two")
    with pytest.raises(Conflict, match="newest version"):
        prompts.delete_prompt(ACTOR, v2.id)
    prompts.delete_prompt(ACTOR, v1.id)
    assert create(content="three").version == 3
    solo = create("solo", "only version")
    prompts.delete_prompt(ACTOR, solo.id)  # the only version may go


def test_duplicate_refuses_a_name_already_in_use(db):
    create("a", "x")
    b = create("b", "y")
    with pytest.raises(Conflict, match="already exists"):
        prompts.duplicate(ACTOR, b.id, "a")


def test_the_diff_marks_only_what_changed_and_folds_the_rest():
    """Issue 16 item 9: a real line diff, not every line of a replaced block yellow."""
    from webapp.services.prompts.versions import side_by_side

    old = [f"line {n}" for n in range(1, 11)] + ["You are a helpful assistant."]
    old.insert(5, "obsolete rule that goes")
    new = (
        ["line 1", "line 2", "inserted line"]
        + [f"line {n}" for n in range(3, 11)]
        + ["Answer in English.", "You are a concise assistant."]
    )
    lines = side_by_side(old, new)
    kinds = [line.kind for line in lines]
    assert kinds.count("added") == 2  # the inserted line and "Answer in English."
    assert kinds.count("removed") == 1 and kinds.count("changed") == 1
    assert kinds.count("folded") == 1  # line 6 … line 10: two kept each side, one folded
    changed = next(line for line in lines if line.kind == "changed")
    assert (changed.old_number, changed.new_number) == (12, 13)
    assert [text for text, marked in changed.old if marked] == ["helpful"]
    assert [text for text, marked in changed.new if marked] == ["concise"]
    shown = sum(1 for line in lines if line.kind == "same")
    assert shown + sum(line.folded for line in lines) == 10  # every unchanged line
    assert [line.kind for line in side_by_side(["same"], ["same"])] == ["folded"]
    unrelated = side_by_side(["alpha beta gamma"], ["zzz"])
    assert [line.kind for line in unrelated] == ["removed", "added"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("Hi {{ user name }}!", ["Line 1: “{{ user name }}” is not a placeholder"]),
        ("Hi {{name", ["Line 1: “{{name” opens {{ but never closes it"]),
        ("{{ a }}\n{{ 1 + 2 }} {{b}}", ["Line 2: “{{ 1 + 2 }}” is not a placeholder"]),
        ("{{x {{y}}", ["Line 1: “{{x {{y}}” opens {{ but never closes"]),
        ("{{{x}}} {{ ok }} {{ok}}", []),
        ("No braces at all", []),
    ],
)
def test_placeholder_warnings(content, expected):
    from webapp.services.prompts.rendering import placeholder_warnings

    found = placeholder_warnings(content)
    assert len(found) == len(expected)
    for warning, start in zip(found, expected, strict=True):
        assert warning.startswith(start)
