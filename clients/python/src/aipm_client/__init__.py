"""Python client of the AI Platform Management console (standard library only)."""

from aipm_client.assignment import bucket_of, variant_index
from aipm_client.client import Client, Reservation
from aipm_client.config import FeatureConfig, Variant
from aipm_client.errors import (
    AipmError,
    ApiError,
    BudgetExhausted,
    ClientClosed,
    ConsoleUnavailable,
    FeatureNotAllowed,
    Forbidden,
    InvalidRequest,
    QueueFull,
    Unauthorized,
    UnknownFeature,
)
from aipm_client.recorder import Rejected

__all__ = [
    "AipmError",
    "ApiError",
    "BudgetExhausted",
    "Client",
    "ClientClosed",
    "ConsoleUnavailable",
    "FeatureConfig",
    "FeatureNotAllowed",
    "Forbidden",
    "InvalidRequest",
    "QueueFull",
    "Rejected",
    "Reservation",
    "Unauthorized",
    "UnknownFeature",
    "Variant",
    "bucket_of",
    "variant_index",
]
