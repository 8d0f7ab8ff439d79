"""What the catalog's inputs may hold (features, assignments, providers, models): one
pydantic model per input, used by the JSON API and the HTML forms alike. The services
add what needs the database (a name already taken, a provider that does not exist)."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from webapp.models import (
    ENVIRONMENTS,
    FEATURE_STATUSES,
    MODEL_STATUSES,
    MODEL_TYPES,
    PROVIDER_STATUSES,
)
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.validation import (
    Amount,
    Id,
    Input,
    JsonObject,
    OneOf,
    Text,
    problem,
)

# ---------------------------------------------------------------------------------------
# Features

# Names are letters of any alphabet ("übersetzung", "перевод"), digits and the marks
# each kind allows: ``[^\W_]`` is a letter or digit (``\w`` without the underscore).
# Feature and provider names are also lower case (Text(lower_case=True)).
FEATURE_NAME = re.compile(r"^[^\W_](?:[^\W_]|-){0,99}$")
FeatureName = Annotated[
    str,
    Text(
        100,
        pattern=FEATURE_NAME,
        lower_case=True,
        problem="must be 1-100 lower-case letters, digits and dashes (e.g. photo-tagging)",
    ),
]
Description = Annotated[str | None, Text(10_000, required=False)]
DESCRIPTION_PROBLEM = "must be text of at most 10,000 characters"


class FeatureUpdate(Input):
    """The fields of a feature that can change (PUT /features/<id>, the status form)."""

    unknown_field: ClassVar[str] = "is not a field that can be changed"
    messages: ClassVar[dict[str, str]] = {"description": DESCRIPTION_PROBLEM}

    display_name: Annotated[str | None, Text(200)] = None
    description: Description = None
    status: Annotated[str | None, OneOf(FEATURE_STATUSES)] = None
    config: Annotated[dict[str, Any] | None, JsonObject()] = None
    # The type of model the feature needs: only models of that type serve it.
    model_type: Annotated[str | None, OneOf(MODEL_TYPES)] = None


class FeatureCreate(FeatureUpdate):
    unknown_field: ClassVar[str] = "is not a field of a feature"

    name: FeatureName
    display_name: Annotated[str, Text(200)]
    # Optional so clients of the seed's API keep working: a feature created without it
    # needs a language model, the common case (the forms always send it).
    model_type: Annotated[str, OneOf(MODEL_TYPES)] = "llm"


class FeatureBulkItem(FeatureUpdate):
    id: Annotated[uuid.UUID, Id("must be a feature id")]


MAX_BULK_ITEMS = 500


class FeatureBulkUpdate(Input):
    """PUT /features/bulk: all items or none. The service checks the items one by one
    (``FeatureBulkItem``), so that one answer names every item's problems and every
    unknown feature."""

    items: list[FeatureBulkItem] = Field(min_length=1, max_length=MAX_BULK_ITEMS)


class AssignModel(Input):
    """POST /features/<id>/assignments and the feature page's assign form."""

    model_id: Annotated[uuid.UUID, Id("must be a model id")]
    environment: Annotated[str, OneOf(ENVIRONMENTS)] = "production"
    config_overrides: Annotated[dict[str, Any] | None, JsonObject(optional=True)] = None


class Rollback(Input):
    environment: Annotated[str, OneOf(ENVIRONMENTS)] = "production"


# ---------------------------------------------------------------------------------------
# Providers

PROVIDER_NAME = re.compile(r"^[^\W_](?:[^\W_]|-){0,199}$")
HTTP_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
# The health-check GET runs every minute: a slow endpoint must not hold the run up.
MAX_CHECK_TIMEOUT_SECONDS = 30
TIMEOUT_PROBLEM = f"must be a number of seconds above 0 and at most {MAX_CHECK_TIMEOUT_SECONDS}"


class HealthCheck(Input):
    """``{}`` (no HTTP check) or ``{"url": "http(s)://…", "timeout_seconds": 0 < n <= 30}``."""

    url: Annotated[
        str | None,
        Text(
            2000,
            pattern=HTTP_URL,
            problem="must be an http(s) URL of at most 2000 characters",
        ),
    ] = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_CHECK_TIMEOUT_SECONDS)

    @model_validator(mode="before")
    @classmethod
    def _url_when_checking(cls, data: Any) -> Any:
        """A check with any setting needs its URL: a missing one fails the URL's rule
        (False is not text), which names the field."""
        if isinstance(data, dict) and data and data.get("url") in (None, ""):
            return {**data, "url": False}
        return data

    @field_validator("timeout_seconds", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        """A number from JSON, or the form's text; booleans are not seconds."""
        if isinstance(value, bool) or not isinstance(value, int | float | str | None):
            raise problem(TIMEOUT_PROBLEM)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise problem(TIMEOUT_PROBLEM) from None
        return value

    def stored(self) -> dict[str, Any]:
        """What the provider's ``health_check`` column keeps."""
        found: dict[str, Any] = {}
        if self.url is not None:
            found["url"] = self.url
        if self.timeout_seconds is not None:
            seconds = self.timeout_seconds
            found["timeout_seconds"] = int(seconds) if seconds == int(seconds) else seconds
        return found


# An HTTP header name (RFC 9110 token) and a value without line breaks or other controls.
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
HEADER_VALUE = re.compile(r"^[^\x00-\x08\x0a-\x1f\x7f]{0,2000}$")
MAX_HEADERS = 20
# The SDKs set these themselves from the API key and the request.
RESERVED_HEADERS = frozenset({"host", "content-length", "content-type", "transfer-encoding"})


class CredentialsInput(Input):
    """``{"api_key": "…", "headers": {"OpenAI-Organization": "org-…"}}``: stored
    encrypted, never shown again (webapp/services/catalog/credentials.py)."""

    unknown_field: ClassVar[str] = "is not a credential (api_key, headers)"

    api_key: Annotated[
        str,
        Text(
            4000,
            pattern=re.compile(r"^[^\x00-\x20\x7f]+$"),
            problem="must be the key as the provider gave it (no spaces)",
        ),
    ]
    headers: dict[str, Any] = Field(default_factory=dict)

    @field_validator("headers", mode="before")
    @classmethod
    def _headers(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise problem('must be an object of header names and values, e.g. {"X-Org": "…"}')
        if len(value) > MAX_HEADERS:
            raise problem(f"must hold at most {MAX_HEADERS} headers")
        for name, text in value.items():
            if not HEADER_NAME.match(str(name)):
                raise problem(f"{name!r} is not an HTTP header name")
            if str(name).lower() in RESERVED_HEADERS:
                raise problem(f"{name} is set by the client itself")
            if not isinstance(text, str) or not HEADER_VALUE.match(text):
                raise problem(f"{name} must be text without line breaks (at most 2000)")
        return {str(name): text for name, text in value.items()}


class ProviderUpdate(Input):
    unknown_field: ClassVar[str] = "is not a field of a provider"
    messages: ClassVar[dict[str, str]] = {
        "health_check": 'must be a JSON object such as {"url": "https://…"}',
        "health_check.*": "is not a health-check setting (url, timeout_seconds)",
        "health_check.url": "must be an http(s) URL of at most 2000 characters",
        "health_check.timeout_seconds": TIMEOUT_PROBLEM,
        "credentials": 'must be {"api_key": "…", "headers": {…}} or null to clear them',
    }

    name: Annotated[
        str | None,
        Text(
            200,
            pattern=PROVIDER_NAME,
            lower_case=True,
            problem="must be lower-case letters, digits and dashes (e.g. openai)",
        ),
    ] = None
    display_name: Annotated[str | None, Text(200)] = None
    provider_type: Annotated[str | None, Text(100)] = None
    status: Annotated[str | None, OneOf(PROVIDER_STATUSES)] = None
    config: Annotated[dict[str, Any] | None, JsonObject()] = None
    api_endpoint: Annotated[
        str | None,
        Text(2000, required=False, pattern=HTTP_URL, problem="must be an http(s) URL"),
    ] = None
    health_check: HealthCheck | None = None
    # Absent: unchanged; null: cleared; an object: set or replaced.
    credentials: CredentialsInput | None = None

    @field_validator("health_check", mode="before")
    @classmethod
    def _check_object(cls, value: Any) -> Any:
        if not isinstance(value, dict | HealthCheck):
            raise problem('must be a JSON object such as {"url": "https://…"}')
        return value

    @field_validator("credentials", mode="before")
    @classmethod
    def _credentials_object(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict | CredentialsInput):
            raise problem('must be {"api_key": "…", "headers": {…}} or null to clear them')
        return value


class ProviderCreate(ProviderUpdate):
    name: Annotated[
        str,
        Text(
            200,
            pattern=PROVIDER_NAME,
            lower_case=True,
            problem="must be lower-case letters, digits and dashes (e.g. openai)",
        ),
    ]
    display_name: Annotated[str, Text(200)]
    provider_type: Annotated[str, Text(100)]


# ---------------------------------------------------------------------------------------
# Models

PRICE_LIMIT = Decimal("1000000")  # NUMERIC(12, 6)
PRICE = Amount(
    6,
    minimum=Decimal(0),
    maximum=PRICE_LIMIT - Decimal("0.000001"),
    not_a_number="must be a number in USD, like 2.50",
    too_precise="must be below 1,000,000 with at most 6 decimals",
    out_of_range="must be below 1,000,000 with at most 6 decimals",
    below_minimum="must not be negative",
    required="is required (0 when the model does not charge for it)",
)
OPTIONAL_PRICE = dataclasses.replace(PRICE, optional=True)  # per request, image, cache
Price = Annotated[Decimal, PRICE]
OptionalPrice = Annotated[Decimal | None, OPTIONAL_PRICE]
PRICE_FIELDS = (
    "input_price_per_million",
    "output_price_per_million",
    "price_per_request",
    "price_per_image",
    "cache_read_price_per_million",
    "cache_write_price_per_million",
)


class Pricing(Input):
    """Prices in USD: per million input and output tokens, per request and per image, and
    per million input tokens read from or written to the provider's prompt cache (unset:
    those tokens cost the input price)."""

    unknown_field: ClassVar[str] = "is not a price of a model"

    input_price_per_million: Annotated[Decimal | None, PRICE] = None
    output_price_per_million: Annotated[Decimal | None, PRICE] = None
    price_per_request: OptionalPrice = None
    price_per_image: OptionalPrice = None
    cache_read_price_per_million: OptionalPrice = None
    cache_write_price_per_million: OptionalPrice = None


class ModelBase(Input):
    unknown_field: ClassVar[str] = "is not a field of a model"

    name: Annotated[str | None, Text(200)] = None
    display_name: Annotated[str | None, Text(200)] = None
    provider_id: Annotated[uuid.UUID | None, Id("must be a provider id")] = None
    model_type: Annotated[str | None, OneOf(MODEL_TYPES)] = None
    version: Annotated[str | None, Text(50, required=False)] = None
    status: Annotated[str | None, OneOf(MODEL_STATUSES)] = None
    config: Annotated[dict[str, Any] | None, JsonObject()] = None
    performance_metrics: Annotated[dict[str, Any] | None, JsonObject()] = None
    capabilities: list[str] | None = None

    @field_validator("capabilities", mode="before")
    @classmethod
    def _short_names(cls, value: Any) -> list[str]:
        """Each capability once, sorted: a list of names of 1-50 characters."""
        if not isinstance(value, list) or not all(
            isinstance(c, str) and 0 < len(c) <= 50 for c in value
        ):
            raise problem("must be a list of short names")
        return sorted(set(value))


class ModelChanges(ModelBase, Pricing):
    """A model's fields with its prices beside them: what the service and the form
    take (the API nests the prices under ``pricing``: ``ModelFields``)."""


class _Required(Input):
    """What a new model must name."""

    name: Annotated[str, Text(200)]
    display_name: Annotated[str, Text(200)]
    provider_id: Annotated[uuid.UUID, Id("must be a provider id")]
    model_type: Annotated[str, OneOf(MODEL_TYPES)]


class NewModel(_Required, ModelChanges):  # type: ignore[misc]  # required, narrower
    input_price_per_million: Price
    output_price_per_million: Price


class ModelFields(ModelBase):
    """The API's body for a model (PUT /models/<id>): its prices under ``pricing``. The
    API spreads ``pricing`` (``flat_model_fields``) and the service checks the result
    with ``ModelChanges``, naming price errors ``pricing.<price>``."""

    pricing: Pricing | None = None


class ModelCreate(_Required, ModelFields):  # type: ignore[misc]  # required, narrower
    """POST /models (checked as ``NewModel``)."""

    pricing: Pricing


def flat_model_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """An API body's ``pricing`` object (``Pricing``) spread into the model's price
    fields; ``model_errors`` names their errors back as the request does."""
    fields = dict(body)
    pricing = fields.pop("pricing", None)
    if pricing is None:
        return fields
    if not isinstance(pricing, dict):
        raise ValidationFailed({"pricing": "must be an object of prices"})
    unknown = [key for key in pricing if key not in PRICE_FIELDS]
    if unknown:
        raise ValidationFailed({f"pricing.{key}": Pricing.unknown_field for key in unknown})
    fields.update(pricing)
    return fields


def model_errors(error: ValidationFailed) -> ValidationFailed:
    """Price errors named as the API's body does: pricing.<price>."""
    return ValidationFailed(
        {("pricing." + k if k in PRICE_FIELDS else k): v for k, v in error.errors.items()}
    )
