"""Issue 16 item 12: the provider page must not contradict itself. With known usage rows
and recorded health checks, the page as rendered (its HTML and its chart's data) says
the same thing in the health tiles, the usage tiles of the same window and the
timeline: status, score, error rate, p95 and traffic come from one computation.
Both databases."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests import factories
from tests.usage_rows import roll_up
from webapp.models import ProviderHealthLog, UsageLog
from webapp.services.health import provider_health

# (latency ms, status) 20 finished requests (3 failed) and one pending, 20-37 minutes ago:
# inside the long (60-minute) health window and the 1h usage range, outside the short one.
ROWS = [(100 + 115 * i, "success") for i in range(17)] + [
    (2215, "error"),
    (2400, "error"),
    (4100, "timeout"),
    (0, "pending"),
]
# Three hours ago, a quieter healthy spell the timeline's first check judged.
EARLIER = [(300, "success")] * 6


@pytest.fixture
def provider_page(db, viewer_client):
    owner = factories.provider("openai", display_name="OpenAI")
    model = factories.model(owner, "gpt-4")
    feature = factories.feature("chatbot")
    db.session.commit()
    now = datetime.now(UTC)
    for rows, start in ((ROWS, now - timedelta(minutes=20)), (EARLIER, now - timedelta(hours=3))):
        for index, (ms, status) in enumerate(rows):
            db.session.add(
                UsageLog(
                    feature_id=feature.id,
                    model_id=model.id,
                    status=status,
                    response_time_ms=ms,
                    cost_usd=Decimal("0.010000"),
                    created_at=start - timedelta(seconds=index * 50),
                )
            )
    db.session.commit()
    roll_up()  # rows added past the write path: the rollups get them too
    # Two recorded checks: 2h50m ago (the earlier spell) and now (the recent requests).
    provider_health.record_health_checks(now - timedelta(hours=2, minutes=50), http_checks=False)
    provider_health.record_health_checks(http_checks=False)
    response = viewer_client.get(f"/providers/{owner.id}?range=1h")
    assert response.status_code == 200
    return owner, response.get_data(as_text=True)


def tiles(fragment: str) -> dict[str, str]:
    found = re.findall(
        r'<div class="tile"><span class="label">([^<]+)</span><strong>([^<]*)</strong>', fragment
    )
    return dict(found)


def chart_of(page: str) -> list[list]:
    """The timeline's three series (score, p95, error rate) as the browser gets them."""
    attribute = re.search(r'data-plotly-figure="([^"]+)"', page)
    assert attribute, "the timeline chart is drawn"
    figure = json.loads(html.unescape(attribute.group(1)))
    assert [trace["name"] for trace in figure["data"]] == ["Score", "Latency", "Error rate"]
    return [trace["y"] for trace in figure["data"]]


def test_the_tiles_and_the_timeline_agree(provider_page, db):
    owner, page = provider_page
    health_part, usage_part = page.split("data-usage-range", 1)
    health, usage = tiles(health_part), tiles(usage_part.split("</div>\n  </section>", 1)[0])
    scores, latencies, error_rates = chart_of(page)

    # The known rows: 3 of 20 finished requests failed; p95 of their latencies; the
    # pending one is left out everywhere. p95 from the latency histogram (one definition
    # for every window): the 19th of 20 latencies is the last in the 2,000–3,000 ms bucket
    # (2,215 and 2,400 ms), so the interpolation ends at its upper bound.
    assert usage == {"Requests": "20", "Error rate": "15.00 %", "p95 latency": "3,000 ms"}
    # The health tiles judge the same 60 minutes (too few requests in the last 15) and
    # say so; their figures are the usage range's of the same window.
    assert "Judged from the finished requests of the last 60 minutes." in page
    assert health["Error rate"] == usage["Error rate"]
    assert health["p95 latency"] == usage["p95 latency"]
    assert health["Requests / min"] == "0.33"  # 20 requests / 60 minutes
    # Status: 15 % errors is degraded (5 %..25 %); the pill, the score and the latest
    # point of the timeline say the same.
    assert re.search(r'<h2>Health <span class="status status-degraded">degraded</span>', page)
    score = int(health["Score"])
    assert score == 56  # 100 − 60 · 15/25 (errors) − 40 · 3,000/15,000 (latency)
    assert (scores[-1], latencies[-1], error_rates[-1]) == (score, 3000.0, 15.0)
    assert f"{latencies[-1]:,.0f} ms" == health["p95 latency"]
    assert f"{error_rates[-1]:.2f} %" == health["Error rate"]

    # Every point of the chart is a recorded check, oldest first, as stored.
    stored = db.session.execute(
        select(
            ProviderHealthLog.health_score,
            ProviderHealthLog.response_time_ms,
            ProviderHealthLog.error_rate,
        )
        .where(ProviderHealthLog.provider_id == owner.id)
        .order_by(ProviderHealthLog.checked_at)
    ).all()
    assert [(float(s), float(ms), float(rate)) for s, ms, rate in stored] == list(
        zip(scores, latencies, error_rates, strict=True)
    )
    # The earlier spell: six quick successes (300 ms each), healthy; their p95 is read
    # inside the 300–400 ms bucket: 300 + 0.95 · 100.
    assert (error_rates[0], latencies[0]) == (0.0, 395.0)


def test_a_provider_without_traffic_reads_unknown_everywhere(db, viewer_client):
    """No usage to judge and no HTTP check: no score in the tiles, a gap in the chart,
    never a flattering 100 beside an unknown status."""
    owner = factories.provider("quiet", display_name="Quiet")
    db.session.commit()
    provider_health.record_health_checks(http_checks=False)
    page = viewer_client.get(f"/providers/{owner.id}").get_data(as_text=True)
    health = tiles(page.split("data-usage-range", 1)[0])
    assert re.search(r'<h2>Health <span class="status status-unknown">unknown</span>', page)
    assert (health["Score"], health["Error rate"], health["p95 latency"]) == ("—", "—", "—")
    figure = json.loads(html.unescape(re.search(r'data-plotly-figure="([^"]+)"', page)[1]))
    # The one check recorded nothing to judge: no trace has a value (the chart says so).
    assert figure["data"] == [] or all(
        value is None for trace in figure["data"] for value in trace["y"]
    )
