"""Plotly figures built in Python. Pages embed a figure as JSON in a data attribute and
static/js/charts.js draws it, so no inline script is needed (strict CSP)."""

from __future__ import annotations

import html
from datetime import date
from decimal import Decimal

import plotly.graph_objects as go


def spend_per_day_chart(series: dict[str, dict[date, Decimal]]) -> str:
    """A stacked bar chart of spend per day by feature, as Plotly JSON."""
    figure = go.Figure()
    for name, per_day in series.items():
        figure.add_bar(
            name=html.escape(name),  # Plotly reads trace names as (limited) HTML
            x=[day.isoformat() for day in per_day],
            y=[float(amount) for amount in per_day.values()],  # display only
            # %{fullData.name}: Plotly inserts the trace name itself, so a feature name is
            # never read as hover-label markup.
            hovertemplate="%{x}: $%{y:,.2f}<extra>%{fullData.name}</extra>",
        )
    figure.update_layout(
        barmode="stack",
        margin={"l": 48, "r": 16, "t": 16, "b": 40},
        height=320,
        legend={"orientation": "h", "y": -0.2},
        yaxis={"tickprefix": "$"},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return figure.to_json()


def requests_and_errors_chart(daily: list) -> str:
    """Requests (bars) and failed requests (line) per day, as Plotly JSON."""
    days = [entry.day.isoformat() for entry in daily]
    figure = go.Figure()
    figure.add_bar(name="Requests", x=days, y=[entry.requests for entry in daily])
    figure.add_scatter(
        name="Errors and timeouts",
        x=days,
        y=[entry.errors for entry in daily],
        mode="lines+markers",
        line={"color": "#b3261e"},
    )
    figure.update_layout(
        margin={"l": 48, "r": 16, "t": 16, "b": 40},
        height=300,
        legend={"orientation": "h", "y": -0.2},
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
