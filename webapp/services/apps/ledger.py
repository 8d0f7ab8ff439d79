"""Keeping the idempotency ledger (``usage_event_ids``) to the size it needs.

An event older than ``USAGE_MAX_AGE_DAYS`` is refused as too old whatever its id, so ids
whose usage rows are older than that (plus a day of margin for clock skew and the 10
minutes an event may be early) can never be needed again. Without pruning the ledger
grows with every event ever reported.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete

from webapp.extensions import db
from webapp.models import UsageEventId
from webapp.services.audit.records import add_audit_row
from webapp.services.core.actor import Actor

MARGIN = timedelta(days=1)


def prune_event_ids(actor: Actor, now: datetime, max_age_days: int) -> int:
    """Delete the ledger rows no event can match any more, as one audited transaction.
    Returns how many were deleted."""
    cutoff = now - timedelta(days=max_age_days) - MARGIN
    deleted = db.session.execute(delete(UsageEventId).where(UsageEventId.created_at < cutoff))
    count = int(deleted.rowcount or 0)  # type: ignore[attr-defined]
    add_audit_row(
        actor,
        "usage.prune_event_ids",
        "usage_event_ids",
        new_values={"before": cutoff.isoformat(), "deleted": count},
    )
    db.session.commit()
    return count
