"""Request bodies of the JSON API (pydantic v2), by name, for the API and its OpenAPI
document. The input models live next to their domain (``webapp/services/<domain>/
schemas.py``), because the services validate with them whether the input came from the
API or from an HTML form; this module names them for the API."""

from __future__ import annotations

from typing import Any, ClassVar

from webapp.services.catalog.schemas import (
    AssignModel,
    FeatureBulkItem,
    FeatureBulkUpdate,
    FeatureCreate,
    FeatureUpdate,
    HealthCheck,
    ModelCreate,
    ModelFields,
    Pricing,
    ProviderCreate,
    ProviderUpdate,
    Rollback,
)
from webapp.services.core.validation import Input
from webapp.services.prompts.schemas import (
    PromptCreate,
    PromptDuplicate,
    PromptTest,
    PromptUpdate,
)


class Body(Input):
    pass


# The experiment's fields are still typed Any: experiments/lifecycle checks them by hand
# (type included), so one answer names every wrong field.


class ExperimentCreate(Body):
    unknown_field: ClassVar[str] = "is not a field of an experiment"

    name: Any = None
    description: Any = None
    feature_id: Any = None
    experiment_type: Any = None
    variants: Any = None
    traffic_allocation: Any = None
    config: Any = None


class ExperimentUpdate(ExperimentCreate):
    pass


__all__ = [
    "AssignModel",
    "Body",
    "ExperimentCreate",
    "ExperimentUpdate",
    "FeatureBulkItem",
    "FeatureBulkUpdate",
    "FeatureCreate",
    "FeatureUpdate",
    "HealthCheck",
    "ModelCreate",
    "ModelFields",
    "Pricing",
    "PromptCreate",
    "PromptDuplicate",
    "PromptTest",
    "PromptUpdate",
    "ProviderCreate",
    "ProviderUpdate",
    "Rollback",
]
