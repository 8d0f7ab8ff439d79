"""``POST /api/v1/budgets/reserve``: set money aside under the hard budgets covering a
feature before making a request (webapp.services.spending.reservations).

Answers (envelope): ``200`` ``{"reservation_id", "reserved_usd", "expires_at"}`` (the id
and expiry null when no hard budget covers the feature: nothing to settle); ``402`` with
``"code": "budget_exhausted"`` and ``resets_at`` when a hard budget has no room (not 429:
clients retry 429, and retrying does not make money appear); ``400`` naming each wrong
field; ``404`` an unknown feature; ``403`` a feature outside the key's features.
"""

from __future__ import annotations

from flask import Response

from webapp.api.envelope import error_response, success_response
from webapp.api.parsing import json_object_body
from webapp.apps_api import bp
from webapp.apps_api.keys import current_key, requires_key
from webapp.services.core.errors import NotFound, ValidationFailed
from webapp.services.spending.reservations import BudgetExhausted, FeatureNotAllowed, reserve


@bp.post("/budgets/reserve")
@requires_key("usage:write")
def reserve_budget() -> Response:
    try:
        reservation = reserve(current_key(), json_object_body())
    except ValidationFailed as invalid:
        return error_response(400, "Validation failed", str(invalid), invalid.errors)
    except NotFound as missing:
        return error_response(404, "Not found", str(missing), {"feature": "is not a feature"})
    except FeatureNotAllowed:
        return error_response(
            403,
            "Forbidden",
            "This API key may not use this feature.",
            {"feature": "is not a feature this API key may use"},
            code="feature_not_allowed",
        )
    except BudgetExhausted as exhausted:
        return error_response(
            402,
            "Budget exhausted",
            "A hard budget covering this feature has no room for this request until it resets.",
            code="budget_exhausted",
            extra={"resets_at": exhausted.resets_at},
        )
    return success_response(reservation.as_dict())
