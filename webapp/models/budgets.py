"""Spending budgets, global or for one feature."""

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
from webapp.models.types import ExactNumeric

PERIOD_TYPES = ("daily", "weekly", "monthly", "quarterly", "yearly")


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
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
