"""Request bodies of the JSON API (pydantic v2). They check shapes and types and refuse
unknown fields; the services check the rules (names, ranges, references)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Scalars are typed Any on purpose: the services check them (type included), so one
# answer names every wrong field instead of stopping at the first type error.


class FeatureCreate(Body):
    name: Any = None
    display_name: Any = None
    description: Any = None
    status: Any = None
    config: Any = None


class FeatureUpdate(Body):
    display_name: Any = None
    description: Any = None
    status: Any = None
    config: Any = None


class FeatureBulkItem(FeatureUpdate):
    id: Any = None


class FeatureBulkUpdate(Body):
    items: list[FeatureBulkItem] = Field(min_length=1, max_length=500)


class AssignModel(Body):
    model_id: str
    environment: str = "production"
    config_overrides: dict[str, Any] | None = None


class Rollback(Body):
    environment: str = "production"


class ProviderCreate(Body):
    name: Any = None
    display_name: Any = None
    provider_type: Any = None
    status: Any = None
    config: Any = None
    api_endpoint: Any = None
    health_check: Any = None


class ProviderUpdate(ProviderCreate):
    pass


class Pricing(Body):
    input_price_per_million: Any = None
    output_price_per_million: Any = None
    price_per_request: Any = None
    price_per_image: Any = None


class ModelFields(Body):
    name: Any = None
    display_name: Any = None
    provider_id: Any = None
    model_type: Any = None
    version: Any = None
    status: Any = None
    config: Any = None
    performance_metrics: Any = None
    capabilities: Any = None
    pricing: Pricing | None = None

    def service_fields(self) -> dict[str, Any]:
        """Flatten ``pricing`` into the model's price columns."""
        fields = self.model_dump(exclude_unset=True, exclude={"pricing"})
        if self.pricing is not None:
            fields.update(self.pricing.model_dump(exclude_unset=True))
        return fields


class ModelCreate(ModelFields):
    pass


class ExperimentCreate(Body):
    name: Any = None
    description: Any = None
    feature_id: Any = None
    experiment_type: Any = None
    variants: Any = None
    traffic_allocation: Any = None
    config: Any = None


class ExperimentUpdate(ExperimentCreate):
    pass
