"""Charts without data say so instead of drawing an empty −1…1 frame; charts with data
keep their traces."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from webapp import charts


def _figure(text: str) -> dict:
    return json.loads(text)


def test_a_chart_without_data_shows_the_message_and_hides_its_axes():
    for figure in (
        _figure(charts.stacked_spend_chart(["2026-12-01", "2026-12-02"], {})),
        _figure(charts.stacked_spend_chart(["2026-12-01"], {"chatbot": [Decimal("0")]})),
        _figure(charts.requests_and_error_rate_chart(["2026-12-01"], [0], [None])),
        _figure(charts.spend_donut_chart([], [])),
        _figure(charts.requests_and_errors_chart([])),
    ):
        assert figure["data"] == []
        assert figure["layout"]["annotations"][0]["text"] == "No requests in this range"
        assert figure["layout"]["xaxis"] == {"visible": False}
        assert figure["layout"]["yaxis"] == {"visible": False}


def test_a_provider_without_checks_says_so():
    figure = _figure(charts.health_timeline_chart([]))
    assert figure["layout"]["annotations"][0]["text"] == "No health checks in this range"


def test_a_chart_with_data_keeps_its_traces():
    figure = _figure(charts.stacked_spend_chart(["2026-12-01"], {"chatbot": [Decimal("1.5")]}))
    assert [trace["y"] for trace in figure["data"]] == [[1.5]]
    assert "annotations" not in figure["layout"]
    daily = [SimpleNamespace(day=date(2026, 12, 1), requests=3, errors=1)]
    assert len(_figure(charts.requests_and_errors_chart(daily))["data"]) == 2


def test_the_error_rate_axis_steps_in_round_numbers():
    figure = _figure(charts.requests_and_error_rate_chart(["2026-12-01"], [10], [Decimal("1.7")]))
    assert figure["layout"]["yaxis2"]["tickformat"] == ".1~f"


def test_axes_counting_requests_or_dollars_separate_thousands():
    spend = _figure(charts.stacked_spend_chart(["2026-12-01"], {"chatbot": [Decimal("1500")]}))
    requests = _figure(charts.requests_and_error_rate_chart(["2026-12-01"], [12000], [None]))
    burn = _figure(
        charts.budget_burn_chart(
            [date(2026, 12, 1)],
            [Decimal("900")],
            Decimal("1000"),
            date(2026, 12, 31),
            Decimal("1800"),
        )
    )
    assert spend["layout"]["yaxis"]["tickformat"] == ",~f"
    assert requests["layout"]["yaxis"]["tickformat"] == ",~f"
    assert burn["layout"]["yaxis"]["tickformat"] == ",~f"


def test_a_single_day_is_labelled_as_a_day_not_as_midnight():
    one_day = _figure(charts.stacked_spend_chart(["2026-12-01"], {"chatbot": [Decimal("2")]}))
    two_days = _figure(
        charts.stacked_spend_chart(["2026-12-01", "2026-12-02"], {"chatbot": [Decimal("2")] * 2})
    )
    assert one_day["layout"]["xaxis"] == {"type": "category"}
    assert "xaxis" not in two_days["layout"]
