"""Spending budgets, global or for one feature, and the reservations applications hold
against hard budgets (``POST /api/v1/budgets/reserve``)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import (
    Model,
    check_in,
    created_at_column,
    decimal_range_check,
    updated_at_column,
    uuid_pk,
)
from webapp.models.types import ExactNumeric, UTCDateTime, utcnow

PERIOD_TYPES = ("daily", "weekly", "monthly", "quarterly", "yearly")
# observe: report only; soft: tell applications to degrade; hard: tell them to stop, and
# admit reserved requests only within the amount.
ENFORCEMENTS = ("observe", "soft", "hard")


class Budget(Model):
    """The seed's row without ``spent_amount``: spend is always computed from usage for
    the budget's window, so a stored copy could only drift out of date."""

    __tablename__ = "ai_spending_budgets"
    __table_args__ = (
        sa.CheckConstraint(check_in("period_type", PERIOD_TYPES), name="period_type"),
        sa.CheckConstraint("budget_amount > 0", name="amount_positive"),
        *decimal_range_check(
            "alert_threshold_range", "alert_threshold", "0", "1", low_inclusive=False
        ),
        sa.CheckConstraint("end_date >= start_date", name="dates_ordered"),
        sa.CheckConstraint(check_in("enforcement", ENFORCEMENTS), name="enforcement"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text)
    feature_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_features.id", ondelete="CASCADE"), index=True
    )
    period_type: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    budget_amount: Mapped[Decimal] = mapped_column(ExactNumeric(10, 2), nullable=False)
    alert_threshold: Mapped[Decimal] = mapped_column(
        ExactNumeric(3, 2),
        nullable=False,
        default=Decimal("0.80"),
    )
    is_active: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=True, server_default=sa.true()
    )
    start_date: Mapped[date] = mapped_column(sa.Date, nullable=False)
    end_date: Mapped[date] = mapped_column(sa.Date, nullable=False)
    enforcement: Mapped[str] = mapped_column(
        sa.String(10), nullable=False, default="observe", server_default="observe"
    )
    # The model a soft budget tells applications to fall back on; NULL: the cheapest
    # available model of the same type (webapp.services.spending.enforcement).
    degrade_to_model_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_models.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class BudgetAmountChange(Model):
    """A budget's amount from ``effective_from`` on: editing the amount adds a row, so
    past periods keep the amount they had (``Budget.budget_amount`` is the latest one).
    A budget with no row has had its amount since it was created. Which amount applies to
    a period: ``webapp.services.spending.budgets.AmountSchedule`` (the one rule)."""

    __tablename__ = "budget_amount_changes"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.UniqueConstraint("budget_id", "effective_from"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    budget_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("ai_spending_budgets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    amount: Mapped[Decimal] = mapped_column(ExactNumeric(10, 2), nullable=False)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    changed_by: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = created_at_column()


OPEN_RESERVATION = "settled_at IS NULL"


class BudgetReservation(Model):
    """Money an application set aside for one request before making it. Open (unsettled,
    unexpired) reservations count against every hard budget covering their feature; the
    usage event that carries the reservation's id settles it with its actual cost."""

    __tablename__ = "budget_reservations"
    __table_args__ = (
        sa.CheckConstraint("reserved_usd >= 0", name="reserved_non_negative"),
        sa.CheckConstraint(
            "settled_cost_usd IS NULL OR settled_cost_usd >= 0", name="settled_non_negative"
        ),
        # Admission sums the open reservations of a feature (or of all features).
        sa.Index(
            "ix_budget_reservations_open",
            "feature_id",
            "expires_at",
            postgresql_where=sa.text(OPEN_RESERVATION),
            sqlite_where=sa.text(OPEN_RESERVATION),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # The hard budget with the least room when the reservation was admitted.
    budget_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_spending_budgets.id", ondelete="SET NULL"), index=True
    )
    feature_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("ai_features.id", ondelete="CASCADE"), nullable=False
    )
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("api_keys.id", ondelete="SET NULL"), index=True
    )
    reserved_usd: Mapped[Decimal] = mapped_column(ExactNumeric(12, 6), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The settling usage event's id (as the application sent it) and its actual cost.
    usage_event_id: Mapped[str | None] = mapped_column(sa.String(128))
    settled_cost_usd: Mapped[Decimal | None] = mapped_column(ExactNumeric(12, 6))


class BudgetHold(Model):
    """What open reservations hold per feature, bucketed by the minute they expire in
    (rounded up): admission sums the unexpired buckets instead of every open reservation,
    so its cost does not grow with the traffic. Kept by the reservation service in the
    same transactions as the reservations (plus on reserve, minus on settle)."""

    __tablename__ = "budget_holds"
    __table_args__ = (sa.Index("ix_budget_holds_expires_minute", "expires_minute"),)

    feature_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("ai_features.id", ondelete="CASCADE"), primary_key=True
    )
    expires_minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    held_usd: Mapped[Decimal] = mapped_column(ExactNumeric(14, 6), nullable=False)
