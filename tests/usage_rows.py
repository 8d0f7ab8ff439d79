"""Usage rows written straight into ai_usage_logs and the rollup, for tests that need
columns ``record_usage`` does not take (environment, reported model names, cost source)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import AIModel, UsageLog
from webapp.services.usage.rollup import add_to_rollup

DEFAULTS: dict[str, Any] = {
    "feature_id": None,
    "model_id": None,
    "prompt_id": None,
    "status": "success",
    "input_tokens": 0,
    "output_tokens": 0,
    "response_time_ms": 100,
    "cost_usd": Decimal("0"),
    "environment": "production",
    "model_name": None,
    "provider_name": None,
    "model_version": None,
    "cache_read_input_tokens": 0,
    "cache_write_input_tokens": 0,
    "images": 0,
    "cost_source": "catalog",
}


def insert_usage(rows: Iterable[Mapping[str, Any]], commit: bool = True) -> list[dict[str, Any]]:
    """Insert ``rows`` (DEFAULTS fill what they leave out; ``created_at`` defaults to now)
    with one executemany, add them to the rollup, commit; the rows as inserted."""
    now = datetime.now(UTC)
    full = []
    for row in rows:
        values = DEFAULTS | {"id": uuid.uuid4(), "created_at": now} | dict(row)
        values["cost_usd"] = Decimal(str(values["cost_usd"]))
        values["tokens_used"] = values["input_tokens"] + values["output_tokens"]
        full.append(values)
    if not full:
        return full
    db.session.execute(UsageLog.__table__.insert(), full)
    model_ids = {row["model_id"] for row in full if row["model_id"]}
    provider_of = dict(
        db.session.execute(
            select(AIModel.id, AIModel.provider_id).where(AIModel.id.in_(model_ids))
        ).all()
    )
    add_to_rollup(full, provider_of)
    if commit:
        db.session.commit()
    return full
