"""Analysis of an experiment: the database sums each (metric, variant) with GROUP BY, the
statistics in ``experiment_stats`` turn the sums into intervals, p-values and a verdict.

Winner (on ``config.primary_metric`` only, Holm-corrected p-values, at ``config.alpha``):
the best challenger that is significantly better than the control (``higher_is_better``
says which direction is better, default higher); or the control when every challenger is
significantly worse than it; otherwise none. ``decisive_p_value`` is the p-value stored
on the experiment: the winner's (for the control, the largest of its comparisons), and
without a winner the smallest corrected p-value seen (or None without any test).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import case, func, select

from webapp.extensions import db
from webapp.models import Experiment, ExperimentResult
from webapp.models.types import SQLITE_SCALE
from webapp.services.experiments import stats as st


@dataclass
class VariantStats:
    variant_id: str
    name: str
    is_control: bool
    n: int
    value: float | None  # the mean, or the rate for a 0/1 metric
    ci: tuple[float, float] | None
    sufficient_data: bool
    p_value: float | None = None
    p_value_corrected: float | None = None
    significant: bool = False
    difference: float | None = None  # value − the control's value

    def as_dict(self, kind: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "variant_id": self.variant_id,
            "name": self.name,
            "is_control": self.is_control,
            "n": self.n,
            "rate" if kind == "rate" else "mean": self.value,
            "confidence_interval": list(self.ci) if self.ci else None,
            "sufficient_data": self.sufficient_data,
        }
        if not self.is_control:
            data.update(
                {
                    "difference": self.difference,
                    "p_value": self.p_value,
                    "p_value_corrected": self.p_value_corrected,
                    "significant": self.significant,
                }
            )
        return data


@dataclass
class MetricAnalysis:
    metric_name: str
    kind: str  # "rate" or "mean"
    test: str
    variants: list[VariantStats]

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric_name": self.metric_name,
            "kind": self.kind,
            "test": self.test,
            "variants": [v.as_dict(self.kind) for v in self.variants],
        }


@dataclass
class Analysis:
    experiment_id: uuid.UUID
    control: str
    primary_metric: str | None
    alpha: float
    higher_is_better: bool
    metrics: list[MetricAnalysis]
    srm: st.SrmCheck
    winner: str | None
    decisive_p_value: float | None
    verdict: str
    notes: list[str] = field(default_factory=list)

    def metric(self, name: str) -> MetricAnalysis | None:
        return next((m for m in self.metrics if m.metric_name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "control": self.control,
            "primary_metric": self.primary_metric,
            "alpha": self.alpha,
            "higher_is_better": self.higher_is_better,
            "confidence_level": st.CONFIDENCE,
            "metrics": [m.as_dict() for m in self.metrics],
            "srm": self.srm.as_dict(),
            "winner": self.winner,
            "statistical_significance": self.decisive_p_value,
            "verdict": self.verdict,
            "minimum_sample": {
                "rate": f"n·p ≥ {st.MIN_RATE_COUNT} and n·(1−p) ≥ {st.MIN_RATE_COUNT} per variant",
                "mean": f"n ≥ {st.MIN_MEAN_SAMPLE} per variant",
            },
        }


def metric_sums(experiment_id: uuid.UUID) -> dict[str, dict[str, tuple[st.Sums, bool]]]:
    """{metric: {variant: (sums, every value is 0 or 1)}}, summed by the database."""
    value = ExperimentResult.metric_value
    as_float = sa.type_coerce(value, sa.Float)
    # ExactNumeric keeps micro-units on SQLite: undo that scale for the squares.
    square_scale = 10 ** (2 * SQLITE_SCALE) if db.session.get_bind().dialect.name == "sqlite" else 1
    rows = db.session.execute(
        select(
            ExperimentResult.metric_name,
            ExperimentResult.variant_id,
            func.count(),
            func.sum(value),
            func.sum(as_float * as_float),
            func.sum(case((value.in_([Decimal(0), Decimal(1)]), 0), else_=1)),
        )
        .where(ExperimentResult.experiment_id == experiment_id)
        .group_by(ExperimentResult.metric_name, ExperimentResult.variant_id)
    ).all()
    result: dict[str, dict[str, tuple[st.Sums, bool]]] = {}
    for metric, variant, n, total, squares, non_binary in rows:
        sums = st.Sums(int(n), float(total or 0), float(squares or 0) / square_scale)
        result.setdefault(metric, {})[variant] = (sums, int(non_binary or 0) == 0)
    return result


def subjects_per_variant(experiment_id: uuid.UUID) -> dict[str, int]:
    """Distinct subjects (user_id, else session_id) seen per variant."""
    subject = func.coalesce(ExperimentResult.user_id, ExperimentResult.session_id)
    rows = db.session.execute(
        select(ExperimentResult.variant_id, func.count(sa.distinct(subject)))
        .where(ExperimentResult.experiment_id == experiment_id, subject.is_not(None))
        .group_by(ExperimentResult.variant_id)
    ).all()
    return {variant: int(count) for variant, count in rows}


def _analyze_metric(
    name: str,
    per_variant: dict[str, tuple[st.Sums, bool]],
    variants: list[dict[str, Any]],
    control: str,
    alpha: float,
) -> MetricAnalysis:
    is_rate = all(binary for _, binary in per_variant.values())
    kind = "rate" if is_rate else "mean"
    empty = st.Sums(0, 0.0, 0.0)
    rows: list[VariantStats] = []
    for variant in variants:
        sums = per_variant.get(variant["id"], (empty, True))[0]
        if is_rate:
            ci = st.wilson_interval(sums.total, sums.n)
            enough = st.rate_has_enough_data(sums)
        else:
            ci = st.mean_interval(sums)
            enough = st.mean_has_enough_data(sums)
        rows.append(
            VariantStats(
                variant["id"],
                variant["name"],
                variant["id"] == control,
                sums.n,
                sums.mean,
                ci,
                enough,
            )
        )
    control_row = next(r for r in rows if r.is_control)
    control_sums = per_variant.get(control, (empty, True))[0]
    tested: list[VariantStats] = []
    p_values: list[float] = []  # of the tested rows, in their order
    for row in rows:
        if row.is_control:
            continue
        if row.value is not None and control_row.value is not None:
            row.difference = row.value - control_row.value
        if not (row.sufficient_data and control_row.sufficient_data):
            continue  # the guard: not enough data, never a p-value
        sums = per_variant[row.variant_id][0]
        p = (
            st.two_proportion_p_value(control_sums, sums)
            if is_rate
            else st.welch_p_value(control_sums, sums)
        )
        if p is not None:
            row.p_value = p
            tested.append(row)
            p_values.append(p)
    corrected = st.holm(p_values) if len(tested) > 1 else p_values
    for row, p in zip(tested, corrected, strict=True):
        row.p_value_corrected = p
        row.significant = p < alpha
    test = "two-proportion z-test" if is_rate else "Welch's t-test"
    if len(tested) > 1:
        test += ", Holm-corrected"
    return MetricAnalysis(name, kind, test, rows)


def _decide(
    metric: MetricAnalysis | None, higher_is_better: bool, alpha: float
) -> tuple[str | None, float | None, str]:
    if metric is None:
        return None, None, "No results for the primary metric yet."
    challengers = [r for r in metric.variants if not r.is_control]
    tested = [r for r in challengers if r.p_value_corrected is not None]
    if not tested:
        return None, None, "Not enough data yet for a test on the primary metric."

    def better(row: VariantStats) -> bool:
        return (row.difference or 0) > 0 if higher_is_better else (row.difference or 0) < 0

    winners = [r for r in tested if r.significant and better(r)]
    if winners:
        # A winner has a difference to the control, so a value.
        best = max(
            winners, key=lambda r: (r.value or 0.0) if higher_is_better else -(r.value or 0.0)
        )
        return (
            best.variant_id,
            best.p_value_corrected,
            f"{best.name} beats the control (p = {best.p_value_corrected:.3g} < {alpha}).",
        )
    if len(tested) == len(challengers) and all(r.significant and not better(r) for r in tested):
        control = next(r for r in metric.variants if r.is_control)
        worst_p = max(r.p_value_corrected for r in tested if r.p_value_corrected is not None)
        return (
            control.variant_id,
            worst_p,
            f"The control ({control.name}) beats every challenger (p ≤ {worst_p:.3g}).",
        )
    smallest = min(r.p_value_corrected for r in tested if r.p_value_corrected is not None)
    return (
        None,
        smallest,
        f"No significant difference at alpha {alpha} (smallest p = {smallest:.3g}).",
    )


def analyze(experiment: Experiment) -> Analysis:
    config = experiment.config or {}
    variants = experiment.variants
    control = config.get("control") or variants[0]["id"]
    alpha = float(config.get("alpha", 0.05))
    higher_is_better = bool(config.get("higher_is_better", True))
    primary = config.get("primary_metric")
    sums = metric_sums(experiment.id)
    metrics = [
        _analyze_metric(name, per_variant, variants, control, alpha)
        for name, per_variant in sorted(
            sums.items(), key=lambda item: (item[0] != primary, item[0])
        )
    ]
    allocation = {v["id"]: Decimal(str(experiment.traffic_allocation[v["id"]])) for v in variants}
    srm = st.srm_check(subjects_per_variant(experiment.id), allocation)
    primary_metric = next((m for m in metrics if m.metric_name == primary), None)
    winner, p_value, verdict = _decide(primary_metric, higher_is_better, alpha)
    notes = []
    if srm.mismatch:
        # A broken split biases every comparison: no winner until it is explained.
        notes.append(srm.message)
        if winner is not None:
            verdict = f"No winner while the sample ratio mismatch stands. ({verdict})"
        winner = None
    return Analysis(
        experiment.id,
        control,
        primary,
        alpha,
        higher_is_better,
        metrics,
        srm,
        winner,
        p_value,
        verdict,
        notes,
    )
