"""Plotly figures built in Python. Pages embed a figure as JSON in a data attribute and
static/js/charts.js draws it, so no inline script is needed (strict CSP)."""

from __future__ import annotations

import html
import json
from datetime import date
from decimal import Decimal
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def requests_and_errors_chart(daily: list) -> str:
    """Requests (bars) and failed requests (line) per day, as Plotly JSON."""
    if not any(entry.requests for entry in daily):
        return figure_json([], 300)
    days = [entry.day.isoformat() for entry in daily]
    figure = go.Figure()
    if len(days) == 1:
        figure.update_layout(xaxis={"type": "category"})  # see figure_json
    figure.add_bar(name="Requests", x=days, y=[entry.requests for entry in daily])
    figure.add_scatter(
        name="Errors and timeouts",
        x=days,
        y=[entry.errors for entry in daily],
        mode="lines+markers",
        line={"color": "#b3261e"},
    )
    _layout(figure, 300)
    figure.update_layout(yaxis={"tickformat": ",~f", "rangemode": "tozero"})
    return figure.to_json()


# Every chart's frame: compact margins, legend below, transparent so the card shows.
BASE_LAYOUT = {
    "margin": {"l": 48, "r": 16, "t": 16, "b": 40},
    "legend": {"orientation": "h", "y": -0.2},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
}


def _layout(figure: go.Figure, height: int = 320) -> None:
    figure.update_layout(**BASE_LAYOUT, height=height)


def spend_donut_chart(labels: list[str], amounts: list[Decimal]) -> str:
    """A donut of spend shares (by provider), as Plotly JSON."""
    trace = {
        "type": "pie",
        "labels": [html.escape(label) for label in labels],
        "values": [float(amount) for amount in amounts],  # display only
        "hole": 0.55,
        "sort": False,
        # Outside, with room made for them: Plotly drops inside labels that don't fit, so a
        # small share's label vanished.
        "textposition": "outside",
        "texttemplate": "%{percent:.1%}",
        "automargin": True,
        "hovertemplate": "%{label}: $%{value:,.2f} (%{percent})<extra></extra>",
    }
    return figure_json([trace], height=300)


def budget_burn_chart(
    days: list[date],
    cumulative: list[Decimal],
    budget_amount: Decimal,
    window_end: date,
    projected: Decimal,
) -> str:
    """Cumulative spend in the budget's window against the budget line, with the
    projection to the end of the window, as Plotly JSON."""
    figure = go.Figure()
    x = [day.isoformat() for day in days]
    figure.add_scatter(
        name="Spent so far",
        x=x,
        y=[float(v) for v in cumulative],
        mode="lines+markers",
        line={"color": "#1a56db"},
        hovertemplate="%{x}: $%{y:,.2f}<extra></extra>",
    )
    if days and days[-1] < window_end:
        figure.add_scatter(
            name="Projection",
            x=[x[-1], window_end.isoformat()],
            y=[float(cumulative[-1]), float(projected)],
            mode="lines",
            line={"color": "#b54708", "dash": "dash"},
            hovertemplate="%{x}: $%{y:,.2f}<extra></extra>",
        )
    start = x[0] if x else window_end.isoformat()
    figure.add_scatter(
        name="Budget",
        x=[start, window_end.isoformat()],
        y=[float(budget_amount)] * 2,
        mode="lines",
        line={"color": "#b3261e"},
        hovertemplate="Budget: $%{y:,.2f}<extra></extra>",
    )
    _layout(figure)
    figure.update_layout(yaxis={"tickprefix": "$", "tickformat": ",~f", "rangemode": "tozero"})
    return figure.to_json()


def health_timeline_chart(points: list) -> str:
    """Score, latency and error rate of a provider's health checks, three stacked panels
    sharing the time axis, as Plotly JSON."""
    if not points:
        return figure_json([], 480, empty_message="No health checks in this range")
    times = [point.at.isoformat() for point in points]

    def values(name: str) -> list[float | None]:
        # float for display only; None leaves a gap (a check with no data to judge).
        return [None if getattr(p, name) is None else float(getattr(p, name)) for p in points]

    figure = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12,
        subplot_titles=("Health score", "Latency (p95, ms)", "Error rate (%)"),
    )
    for row, (name, attribute, color) in enumerate(
        (
            ("Score", "health_score", "#1a7f37"),
            ("Latency", "response_time_ms", "#0b57d0"),
            ("Error rate", "error_rate", "#b3261e"),
        ),
        start=1,
    ):
        figure.add_scatter(
            name=name,
            x=times,
            y=values(attribute),
            mode="lines+markers" if len(points) <= 60 else "lines",
            line={"color": color},
            row=row,
            col=1,
        )
    figure.update_yaxes(range=[0, 100], row=1, col=1)
    figure.update_yaxes(rangemode="tozero", tickformat=",~f", row=2, col=1)
    figure.update_yaxes(rangemode="tozero", row=3, col=1)
    figure.update_layout(
        showlegend=False,
        margin={"l": 48, "r": 16, "t": 32, "b": 40},
        height=480,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return figure.to_json()


def experiment_metric_chart(metric) -> str:
    """Each variant's mean or rate with its 95 % confidence interval as error bars."""
    rows = [row for row in metric.variants if row.value is not None]
    scale = 100 if metric.kind == "rate" else 1  # rates read as percent
    figure = go.Figure()
    figure.add_scatter(
        x=[html.escape(row.name) for row in rows],
        y=[row.value * scale for row in rows],
        mode="markers",
        marker={"size": 12, "color": ["#5f6368" if row.is_control else "#1a73e8" for row in rows]},
        error_y={
            "type": "data",
            "symmetric": False,
            "array": [(row.ci[1] - row.value) * scale if row.ci else 0 for row in rows],
            "arrayminus": [(row.value - row.ci[0]) * scale if row.ci else 0 for row in rows],
            "thickness": 2,
            "width": 8,
        },
        customdata=[row.n for row in rows],
        hovertemplate="%{x}: %{y:,.3f}" + (" %" if scale == 100 else "") + " (n = %{customdata})"
        "<extra></extra>",
    )
    figure.update_layout(
        margin={"l": 56, "r": 16, "t": 16, "b": 40},
        height=260,
        showlegend=False,
        yaxis={"title": {"text": "rate (%)" if scale == 100 else "mean"}, "zeroline": False},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return figure.to_json()


def stacked_spend_chart(buckets: list[str], series: dict[str, list[Decimal]]) -> str:
    """Spend per day (or hour) stacked by feature, as Plotly JSON."""
    traces = [
        {
            "type": "bar",
            "name": html.escape(name),  # Plotly reads trace names as (limited) HTML
            "x": buckets,
            "y": [float(amount) for amount in amounts],  # display only
            # %{fullData.name}: Plotly inserts the trace name itself, so a feature name is
            # never read as hover-label markup.
            "hovertemplate": "%{x}: $%{y:,.2f}<extra>%{fullData.name}</extra>",
        }
        for name, amounts in series.items()
    ]
    return figure_json(traces, barmode="stack", yaxis={"tickprefix": "$", "tickformat": ",~f"})


def requests_and_error_rate_chart(
    buckets: list[str], requests: list[int], error_rate: list[Decimal | None]
) -> str:
    """Requests (bars) and error rate in % (line, right axis), as Plotly JSON."""
    traces: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": "Requests",
            "x": buckets,
            "y": requests,
            "marker": {"color": "#8da2fb"},
        },
        {
            "type": "scatter",
            "name": "Error rate (%)",
            "x": buckets,
            "y": [float(rate) if rate is not None else None for rate in error_rate],
            "mode": "lines+markers",
            "line": {"color": "#b3261e"},
            "yaxis": "y2",
            "hovertemplate": "%{x}: %{y:.2f} %<extra></extra>",
        },
    ]
    return figure_json(
        traces,
        yaxis={"title": {"text": "requests"}, "tickformat": ",~f"},
        yaxis2={
            "title": {"text": "error rate %"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            # Round steps (0, 2, 4 … or 0, 0.5, 1 …), never 1.7234 %.
            "tickformat": ".1~f",
            "nticks": 6,
            "showgrid": False,
        },
    )


NO_DATA = "No requests in this range"


def figure_json(
    traces: list[dict[str, Any]],
    height: int = 320,
    empty_message: str = NO_DATA,
    **layout: Any,
) -> str:
    """A figure as Plotly JSON, written directly: building a ``go.Figure`` validates every
    property and costs milliseconds per chart, which the overview cannot spare.

    A figure with nothing to draw (no trace holds a non-zero value) says
    ``empty_message`` in place of an empty −1…1 frame."""
    if not any(_has_data(trace) for trace in traces):
        return json.dumps({"data": [], "layout": empty_layout(empty_message, height)})
    if all(len(trace.get("x") or []) == 1 for trace in traces):
        # One bucket (this month on the 1st): a date axis would zoom into that day and
        # label it 00:00:00; a category axis labels the day.
        layout = {"xaxis": {"type": "category"}} | layout
    return json.dumps({"data": traces, "layout": BASE_LAYOUT | {"height": height} | layout})


def _has_data(trace: dict[str, Any]) -> bool:
    values = trace.get("values", trace.get("y")) or []
    return any(value for value in values if value is not None)


def empty_layout(message: str, height: int) -> dict[str, Any]:
    """Hidden axes and one centred line of text: what a chart without data shows."""
    hidden = {"visible": False}
    return BASE_LAYOUT | {
        "height": min(height, 160),
        "xaxis": hidden,
        "yaxis": hidden,
        "annotations": [
            {
                "text": html.escape(message),
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "font": {"size": 15, "color": "#667085"},
            }
        ],
    }
