"""Request bodies of the JSON API (pydantic v2), by name, for the API and its OpenAPI
document. The input models live next to their domain (``webapp/services/<domain>/
schemas.py``), because the services validate with them whether the input came from the
API or from an HTML form; this module names them for the API."""

from __future__ import annotations

from webapp.services.apps.schemas import ApiKeyCreate
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
from webapp.services.experiments.schemas import (
    ExperimentCreate,
    ExperimentUpdate,
    ResultBatch,
    ResultItem,
    Variant,
)
from webapp.services.prompts.schemas import (
    PromptCreate,
    PromptDuplicate,
    PromptEnvironment,
    PromptPromote,
    PromptTest,
    PromptUpdate,
)


class Body(Input):
    pass


__all__ = [
    "ApiKeyCreate",
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
    "PromptEnvironment",
    "PromptPromote",
    "PromptTest",
    "PromptUpdate",
    "ProviderCreate",
    "ProviderUpdate",
    "ResultBatch",
    "ResultItem",
    "Rollback",
    "Variant",
]
