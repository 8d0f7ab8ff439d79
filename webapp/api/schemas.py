"""Request bodies of the JSON API (pydantic v2). They check shapes and types and refuse
unknown fields; the services check the rules (names, ranges, references)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureCreate(Body):
    name: str = Field(max_length=100)
    display_name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    status: str | None = None
    config: dict[str, Any] | None = None


class FeatureUpdate(Body):
    display_name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    status: str | None = None
    config: dict[str, Any] | None = None


class FeatureBulkItem(FeatureUpdate):
    id: str


class FeatureBulkUpdate(Body):
    items: list[FeatureBulkItem] = Field(min_length=1, max_length=500)


class AssignModel(Body):
    model_id: str
    environment: str = "production"
    config_overrides: dict[str, Any] | None = None


class Rollback(Body):
    environment: str = "production"


class ProviderCreate(Body):
    name: str = Field(max_length=200)
    display_name: str = Field(max_length=200)
    provider_type: str = Field(max_length=100)
    status: str | None = None
    config: dict[str, Any] | None = None
    api_endpoint: str | None = Field(default=None, max_length=2000)


class ProviderUpdate(Body):
    name: str | None = Field(default=None, max_length=200)
    display_name: str | None = Field(default=None, max_length=200)
    provider_type: str | None = Field(default=None, max_length=100)
    status: str | None = None
    config: dict[str, Any] | None = None
    api_endpoint: str | None = Field(default=None, max_length=2000)


class Pricing(Body):
    input_price_per_million: Decimal | None = None
    output_price_per_million: Decimal | None = None
    price_per_request: Decimal | None = None
    price_per_image: Decimal | None = None


class ModelFields(Body):
    name: str | None = Field(default=None, max_length=200)
    display_name: str | None = Field(default=None, max_length=200)
    provider_id: str | None = None
    model_type: str | None = Field(default=None, max_length=100)
    version: str | None = Field(default=None, max_length=50)
    status: str | None = None
    config: dict[str, Any] | None = None
    performance_metrics: dict[str, Any] | None = None
    capabilities: list[str] | None = None
    pricing: Pricing | None = None

    def service_fields(self) -> dict[str, Any]:
        """Flatten ``pricing`` into the model's price columns."""
        fields = self.model_dump(exclude_unset=True, exclude={"pricing"})
        if self.pricing is not None:
            fields.update(self.pricing.model_dump(exclude_unset=True))
        return fields


class ModelCreate(ModelFields):
    name: str = Field(max_length=200)
    display_name: str = Field(max_length=200)
    provider_id: str
    model_type: str = Field(max_length=100)
