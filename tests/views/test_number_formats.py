"""Issue 16 item 19, on rendered pages: counts with thousands separators ("10,004
requests"), money with 2 decimals in tables and 4 (said in the header) where one
request's cost needs them, a tiny cost never shown as $0.0000, and the forecast says
what it extrapolates. Both databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests import factories
from tests.usage_rows import insert_usage
from webapp.views.filters import cost

REQUESTS = 10_004


@pytest.fixture
def busy(db):
    owner = factories.provider("openai", display_name="OpenAI")
    model = factories.model(owner, "gpt-4", display_name="GPT-4")
    feature = factories.feature("chatbot", display_name="AI Chatbot")
    db.session.commit()
    now = datetime.now(UTC)
    insert_usage(
        {
            "feature_id": feature.id,
            "model_id": model.id,
            "cost_usd": Decimal("0.012345"),
            "created_at": now - timedelta(minutes=30, seconds=index % 600),
        }
        for index in range(REQUESTS)
    )
    return owner, model, feature


def test_ten_thousand_and_four_requests_read_10_004_on_every_page(viewer_client, busy):
    owner, model, feature = busy
    pages = {
        "features": "/features?range=24h",
        "feature": f"/features/{feature.id}?range=24h",
        "model": f"/models/{model.id}?range=24h",
        "provider": f"/providers/{owner.id}?range=24h",
        "overview": "/?range=24h",
        "spending": "/spending?range=7d",
    }
    for name, url in pages.items():
        html = viewer_client.get(url).get_data(as_text=True)
        # What the page writes (the charts' data is numbers for Plotly, not text).
        text = re.sub(r'data-plotly-figure="[^"]*"', "", html)
        assert "10,004" in text, name
        assert "10004" not in text, name
    # Spending tables: 10,004 × $0.012345 = $123.4994, $123.50 with 2 decimals, by feature, provider
    # and model alike.
    spending = viewer_client.get("/spending?range=7d").get_data(as_text=True)
    for table in ("feature", "provider", "model"):
        section = spending.split(f"<h2>By {table}</h2><a", 1)[1].split("</table>", 1)[0]
        assert '<td class="num">$123.50</td>' in section, table
        assert "$123.4994" not in section  # 4 decimals in the by-model table before


def test_a_requests_cost_has_four_decimals_said_in_the_header(admin_client, db):
    owner = factories.provider("openai")
    model = factories.model(owner, "gpt-4")
    db.session.commit()
    insert_usage(
        [
            {"model_id": model.id, "cost_usd": Decimal("1.234567")},
            {"model_id": model.id, "cost_usd": Decimal("0.000040")},
            {"model_id": model.id, "cost_usd": Decimal("0")},
        ]
    )
    html = admin_client.get("/requests").get_data(as_text=True)
    assert '<th class="num">Cost <small class="muted">($, 4 decimals)</small></th>' in html
    cells = re.findall(r'<td class="num">(\$[^<]*|&lt; \$[^<]*)(?:<br>|</td>)', html)
    assert sorted(cells) == sorted(["$1.2346", "&lt; $0.0001", "$0.0000"])


def test_the_cost_filter():
    assert cost(Decimal("0.00004")) == "< $0.0001"
    assert cost(Decimal("0")) == "$0.0000"
    assert cost(Decimal("12345.67891")) == "$12,345.6789"
    assert cost(None) == "—"


def test_the_forecast_says_what_it_extrapolates(viewer_client, db):
    owner = factories.provider("openai")
    model = factories.model(owner, "gpt-4")
    db.session.commit()
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    # Spend doubling in the last week: the trend is "increasing", the forecast is the
    # 30-day average carried forward, and the page says so beside it.
    insert_usage(
        {
            "model_id": model.id,
            "cost_usd": Decimal("2") if day <= 7 else Decimal("1"),
            "created_at": today - timedelta(days=day),
        }
        for day in range(1, 31)
    )
    html = viewer_client.get("/spending?range=30d").get_data(as_text=True)
    trend = html.split('id="spending-trends"', 1)[1].split("</section>", 1)[0]
    assert "increasing" in trend and "(+100.0 %)" in trend
    assert "next 30 days ≈ <strong>$37.00</strong> at the daily average of the last 30 days" in (
        trend
    )
