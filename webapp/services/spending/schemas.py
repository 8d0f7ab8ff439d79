"""What a budget's input may hold: one pydantic model used by the JSON API and the
budget form alike. The service adds what needs the database or the stored budget (the
feature exists, the end is not before the start)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import Field

from webapp.models import ENFORCEMENTS, PERIOD_TYPES
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.validation import Amount, Flag, Id, Input, OneOf, Rule, Text, problem
from webapp.services.spending.analytics import EARLIEST_DATE, LATEST_DATE, as_utc_date
from webapp.services.usage.schemas import Count, OptionalCost

MAX_AMOUNT = Decimal("99999999.99")  # NUMERIC(10, 2)


@dataclass(frozen=True)
class Day(Rule):
    """A UTC calendar date from a date, a datetime or ISO 8601 text of either."""

    def validate(self, value: Any) -> date:
        try:
            return as_utc_date(value, "day")
        except ValidationFailed as error:
            raise problem(error.errors["day"]) from None

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "format": "date",
            "description": f"YYYY-MM-DD or ISO 8601, {EARLIEST_DATE} to {LATEST_DATE}",
        }


BUDGET_AMOUNT = Amount(
    2,
    minimum=Decimal(0),
    exclusive_minimum=True,
    maximum=MAX_AMOUNT,
    out_of_range=f"must be greater than 0 and at most {MAX_AMOUNT}",
)
ALERT_THRESHOLD = Amount(
    2,
    minimum=Decimal(0),
    exclusive_minimum=True,
    maximum=Decimal(1),
    out_of_range="must be greater than 0 and at most 1 (e.g. 0.8 for 80 %)",
)


class BudgetUpdate(Input):
    """PUT /budgets/<id> and the budget form on an existing budget."""

    unknown_field: ClassVar[str] = "is not a field of a budget"

    name: Annotated[str | None, Text(200)] = None
    description: Annotated[str | None, Text(5000, required=False)] = None
    feature_id: Annotated[
        uuid.UUID | None,
        Id("must be a feature id (UUID) or empty for a global budget", optional=True),
    ] = None
    period_type: Annotated[str | None, OneOf(PERIOD_TYPES)] = None
    budget_amount: Annotated[Decimal | None, BUDGET_AMOUNT] = None
    alert_threshold: Annotated[Decimal | None, ALERT_THRESHOLD] = None
    start_date: Annotated[date | None, Day()] = None
    end_date: Annotated[date | None, Day()] = None
    is_active: Annotated[bool | None, Flag()] = None
    enforcement: Annotated[str | None, OneOf(ENFORCEMENTS)] = None
    degrade_to_model_id: Annotated[
        uuid.UUID | None,
        Id(
            "must be a model id (UUID) or empty for the cheapest model of the same type",
            optional=True,
        ),
    ] = None


class BudgetCreate(BudgetUpdate):
    """POST /spending (or /budgets) and the new-budget form."""

    name: Annotated[str, Text(200)]
    period_type: Annotated[str, OneOf(PERIOD_TYPES)] = "monthly"
    budget_amount: Annotated[Decimal, BUDGET_AMOUNT]
    alert_threshold: Annotated[Decimal, ALERT_THRESHOLD] = Decimal("0.80")
    start_date: Annotated[date, Day()]
    end_date: Annotated[date, Day()]
    is_active: Annotated[bool, Flag()] = True
    enforcement: Annotated[str, OneOf(ENFORCEMENTS)] = "observe"


REQUIRED = tuple(name for name, info in BudgetCreate.model_fields.items() if info.is_required())


class ReservationRequest(Input):
    """``POST /api/v1/budgets/reserve``: the feature and either the estimate itself or
    what prices it (a catalog model and token counts)."""

    unknown_field: ClassVar[str] = "is not a field of a reservation"

    feature: Annotated[str, Text(100)] = Field(description="The feature's name.")
    estimated_cost_usd: OptionalCost = Field(
        default=None,
        description="What the request may cost at most (decimal text or number, at most "
        "6 decimals). Or give model, input_tokens and max_output_tokens instead.",
    )
    model: Annotated[str | None, Text(200, required=False)] = Field(
        default=None, description="A catalog model's name: the estimate is its price."
    )
    provider: Annotated[str | None, Text(200, required=False)] = Field(
        default=None, description="The model's provider, when two providers offer the name."
    )
    input_tokens: Annotated[int | None, Count()] = Field(
        default=None, description="The request's input tokens (with model)."
    )
    max_output_tokens: Annotated[int | None, Count()] = Field(
        default=None, description="The most output tokens the request may produce (with model)."
    )


def reservation_form_problems(values: dict[str, Any]) -> dict[str, str]:
    """The rules across fields: the estimate, or the model with both token counts."""
    priced = [name for name in ("model", "input_tokens", "max_output_tokens") if name in values]
    if values.get("estimated_cost_usd") is not None:
        if priced:
            return {
                "estimated_cost_usd": "give either estimated_cost_usd or model with "
                "input_tokens and max_output_tokens, not both"
            }
        return {}
    if not priced:
        return {
            "estimated_cost_usd": "is required, or model with input_tokens and max_output_tokens"
        }
    return {
        name: "is required with model"
        if name != "model"
        else "is required with input_tokens and max_output_tokens"
        for name in ("model", "input_tokens", "max_output_tokens")
        if values.get(name) is None
    }
