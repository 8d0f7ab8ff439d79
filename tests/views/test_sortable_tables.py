"""Sortable tables: a header link per column, the order in the URL (``sort=key`` or
``sort=-key``), ordered in SQL where the list comes from SQL, NULLs last both ways, pages
of 50 where a list can grow past that, and a wrong order named (400, default shown)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests import factories
from tests.usage_rows import insert_usage
from webapp.extensions import db as database
from webapp.models import Experiment, User
from webapp.services.core.sorting import Sort, order_by, page_of, sorted_rows


def names_in(html: str, pattern: str) -> list[str]:
    return re.findall(pattern, html)


def header_link(html: str, label: str) -> str:
    found = re.search(rf'<a class="sort" href="([^"]+)"[^>]*>{re.escape(label)}', html)
    assert found, f"no sort link for {label}"
    return found.group(1).replace("&amp;", "&")


@pytest.fixture
def catalog(db):
    openai = factories.provider("openai", display_name="OpenAI")
    google = factories.provider("google", display_name="Google")
    factories.provider("zeta", display_name="Zeta")
    cheap = factories.model(openai, "cheap", display_name="Cheap")
    dear = factories.model(google, "dear", display_name="Dear")
    factories.model(google, "idle", display_name="Idle")
    alpha = factories.feature("alpha", display_name="Alpha")
    beta = factories.feature("beta", display_name="Beta")
    factories.feature("gamma", display_name="Gamma")
    database.session.commit()
    now = datetime.now(UTC) - timedelta(minutes=5)
    insert_usage(
        [
            {"feature_id": alpha.id, "model_id": cheap.id, "cost_usd": "0.10", "created_at": now},
            {"feature_id": beta.id, "model_id": dear.id, "cost_usd": "5.00", "created_at": now},
            {"feature_id": beta.id, "model_id": dear.id, "cost_usd": "5.00", "created_at": now},
        ]
    )
    return {"openai": openai, "google": google}


def feature_names(html: str) -> list[str]:
    return names_in(html, r'href="/features/[^"]+"><strong>([^<]+)</strong>')


def test_features_sort_by_a_figure_and_back(admin_client, catalog):
    page = admin_client.get("/features").get_data(as_text=True)
    assert feature_names(page) == ["Alpha", "Beta", "Gamma"]
    assert 'aria-sort="ascending"' in page
    cost = header_link(page, "Cost")
    assert "sort=-cost" in cost  # figures sort largest first
    by_cost = admin_client.get(cost, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert by_cost.lstrip().startswith('<section id="features-table"')
    # Gamma has no requests: its cost is $0, not missing.
    assert feature_names(by_cost) == ["Beta", "Alpha", "Gamma"]
    back = header_link(by_cost, "Cost")
    assert "sort=cost" in back and "sort=-cost" not in back
    assert feature_names(admin_client.get(back).get_data(as_text=True)) == [
        "Gamma",
        "Alpha",
        "Beta",
    ]
    # The range control keeps the order, the default order adds nothing to URLs.
    assert "sort=-cost" in re.search(r'href="([^"]*range=7d[^"]*)"', by_cost).group(1)
    assert "sort=" not in re.search(r'href="([^"]*range=7d[^"]*)"', page).group(1)


def test_models_sort_by_requests_keeps_filters(admin_client, catalog):
    page = admin_client.get("/models?sort=-requests&provider=google").get_data(as_text=True)
    names = names_in(page, r'href="/models/[^"]+"><strong>([^<]+)</strong>')
    assert names == ["Dear", "Idle"]
    assert "provider=google" in header_link(page, "Model")
    assert 'name="sort" value="-requests"' in page  # the filters send the order on


def test_providers_sort_in_sql_by_model_count(admin_client, catalog):
    page = admin_client.get("/providers?sort=-models").get_data(as_text=True)
    names = names_in(page, r'href="/providers/[^"]+"><strong>([^<]+)</strong>')
    assert names == ["Google", "OpenAI", "Zeta"]
    page = admin_client.get("/providers?sort=name").get_data(as_text=True)
    names = names_in(page, r'href="/providers/[^"]+"><strong>([^<]+)</strong>')
    assert names == ["Google", "OpenAI", "Zeta"]


def test_users_sort_last_sign_in_with_never_signed_in_last_both_ways(admin_client, db):
    now = datetime.now(UTC)
    for i, seen in enumerate([now - timedelta(days=3), None, now - timedelta(days=1)]):
        database.session.add(
            User(email=f"u{i}@example.com", role="viewer", password_hash="x", last_login_at=seen)
        )
    database.session.commit()
    admin = database.session.scalar(database.select(User).where(User.email == "admin@example.com"))
    admin.last_login_at = now - timedelta(days=10)
    database.session.commit()

    def emails(url: str) -> list[str]:
        html = admin_client.get(url).get_data(as_text=True)
        return [e for e in names_in(html, r"<td><strong>([^<]+)</strong>") if e.startswith("u")]

    assert emails("/users?sort=last_sign_in") == [
        "u0@example.com",
        "u2@example.com",
        "u1@example.com",
    ]
    assert emails("/users?sort=-last_sign_in") == [
        "u2@example.com",
        "u0@example.com",
        "u1@example.com",
    ]


def test_experiments_page_in_fifties_without_overlap(admin_client, db):
    feature = factories.feature("chatbot")
    database.session.add_all(
        Experiment(
            name=f"exp-{i:03d}",
            feature_id=feature.id,
            experiment_type="prompt_testing",
            status="draft",
            variants=[],
            traffic_allocation={},
            winner_variant="b" if i % 2 else None,
        )
        for i in range(61)
    )
    database.session.commit()
    first = admin_client.get("/experiments?sort=-name").get_data(as_text=True)
    names = names_in(first, r"<strong>(exp-\d+)</strong>")
    assert len(names) == 50 and names[0] == "exp-060"
    assert "61 experiments" in first and "page 1 of 2" in first
    following = re.search(r'href="([^"]+)"[^>]*rel="next"', first).group(1).replace("&amp;", "&")
    assert "sort=-name" in following and "page=2" in following
    rest = names_in(
        admin_client.get(following).get_data(as_text=True), r"<strong>(exp-\d+)</strong>"
    )
    assert len(rest) == 11 and set(rest).isdisjoint(names)
    # NULL winners come last whichever way.
    by_winner = admin_client.get("/experiments?sort=winner").get_data(as_text=True)
    assert names_in(by_winner, r"<strong>(exp-\d+)</strong>")[0] in {
        f"exp-{i:03d}" for i in range(1, 61, 2)
    }


def test_budgets_sort_by_spend(admin_client, catalog):
    factories.budget(name="Small", budget_amount=Decimal("10"))
    factories.budget(name="Large", budget_amount=Decimal("1000"))
    database.session.commit()
    page = admin_client.get("/budgets?sort=-amount").get_data(as_text=True)
    names = names_in(page, r'href="/budgets/[^"]+"><strong>([^<]+)</strong>')
    assert names.index("Large") < names.index("Small")
    assert header_link(page, "Spent").endswith("sort=-spent")


def test_prompts_sort_in_sql(admin_client, db):
    factories.prompt("aaa", version=1)
    factories.prompt("zzz", version=1)
    factories.prompt("zzz", version=2)
    database.session.commit()
    page = admin_client.get("/prompts?sort=-versions").get_data(as_text=True)
    assert names_in(page, r"<strong>(aaa|zzz)</strong>") == ["zzz", "aaa"]
    assert 'name="sort" value="-versions"' in page  # the filters send the order on


def test_top_models_sort(admin_client, catalog):
    page = admin_client.get("/?sort=name").get_data(as_text=True)
    section = page[page.index("Top models by cost") :]
    assert names_in(section, r'href="/models/[^"]+">([^<]+)</a></td>')[:2] == ["Cheap", "Dear"]


@pytest.mark.parametrize(
    "url",
    ["/features", "/models", "/providers", "/experiments", "/users", "/budgets", "/prompts", "/"],
)
def test_a_wrong_order_is_named_and_the_default_shown(admin_client, catalog, url):
    response = admin_client.get(f"{url}?sort=shoe_size")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "sort=shoe_size" in html and "must be one of" in html


def test_sorted_rows_and_order_by_put_missing_values_last():
    rows = [{"v": 2}, {"v": None}, {"v": 1}, {"v": 3}]
    keys = {"v": lambda r: r["v"]}
    assert [r["v"] for r in sorted_rows(rows, Sort("v"), keys)] == [1, 2, 3, None]
    assert [r["v"] for r in sorted_rows(rows, Sort("v", True), keys)] == [3, 2, 1, None]
    assert [r["v"] for r in sorted_rows([{"v": "b"}, {"v": "A"}], Sort("v"), keys)] == ["A", "b"]
    terms = order_by(Sort("email", True), {"email": User.email}, User.id)
    assert [
        str(database.select(User.id).order_by(t).compile()).split("ORDER BY ")[1] for t in terms
    ] == [
        "users.email IS NULL",
        "users.email DESC",
        "users.id",
    ]
    assert page_of(list(range(120)), 9).page == 3  # past the end: the last page
    assert page_of(list(range(120)), 3).items == list(range(100, 120))


def test_the_default_order_adds_nothing_to_the_filters_and_links(admin_client, db):
    html = admin_client.get("/experiments").get_data(as_text=True)
    assert 'name="sort"' not in html
    html = admin_client.get("/experiments?sort=-name").get_data(as_text=True)
    assert 'name="sort" value="-name" form="experiment-filters"' in html
