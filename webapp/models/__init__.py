"""Typed SQLAlchemy models, one module per domain. Importing this package registers every
table on ``db.metadata`` (Alembic's autogenerate and ``flask db check`` read it)."""

from webapp.models.apps import (
    API_KEY_SCOPES,
    REJECTION_CODES,
    ApiKey,
    ApiKeyIngestion,
    UsageEventId,
)
from webapp.models.audit import AuditEventWindow, AuditLog
from webapp.models.budgets import (
    ENFORCEMENTS,
    PERIOD_TYPES,
    Budget,
    BudgetAmountChange,
    BudgetHold,
    BudgetReservation,
)
from webapp.models.config_revision import ConfigRevision
from webapp.models.experiments import (
    EXPERIMENT_STATUSES,
    EXPERIMENT_TYPES,
    Experiment,
    ExperimentResult,
)
from webapp.models.features import (
    ENVIRONMENTS,
    FEATURE_STATUSES,
    Feature,
    FeatureModelAssignment,
)
from webapp.models.playground import RUN_STATUSES, PromptRun
from webapp.models.prompts import ACTIVATION_ACTIONS, Prompt, PromptActivation
from webapp.models.providers import (
    HEALTH_STATUSES,
    MODEL_STATUSES,
    MODEL_TYPES,
    PROVIDER_STATUSES,
    AIModel,
    Provider,
    ProviderHealthLog,
)
from webapp.models.rollup import (
    UsageDailyRollup,
    UsageHourlyOutcomes,
    UsageHourlyRollup,
    UsageRollupRevision,
)
from webapp.models.sessions import RecoveryCode, UserSession
from webapp.models.usage import COST_SOURCES, USAGE_STATUSES, UsageLog
from webapp.models.users import ROLE_ADMIN, ROLE_VIEWER, ROLES, User

__all__ = [
    "ACTIVATION_ACTIONS",
    "API_KEY_SCOPES",
    "COST_SOURCES",
    "ENFORCEMENTS",
    "ENVIRONMENTS",
    "EXPERIMENT_STATUSES",
    "EXPERIMENT_TYPES",
    "FEATURE_STATUSES",
    "HEALTH_STATUSES",
    "MODEL_STATUSES",
    "MODEL_TYPES",
    "PERIOD_TYPES",
    "PROVIDER_STATUSES",
    "REJECTION_CODES",
    "ROLES",
    "ROLE_ADMIN",
    "ROLE_VIEWER",
    "RUN_STATUSES",
    "USAGE_STATUSES",
    "AIModel",
    "ApiKey",
    "ApiKeyIngestion",
    "AuditEventWindow",
    "AuditLog",
    "Budget",
    "BudgetAmountChange",
    "BudgetHold",
    "BudgetReservation",
    "ConfigRevision",
    "Experiment",
    "ExperimentResult",
    "Feature",
    "FeatureModelAssignment",
    "Prompt",
    "PromptActivation",
    "PromptRun",
    "Provider",
    "ProviderHealthLog",
    "RecoveryCode",
    "UsageDailyRollup",
    "UsageEventId",
    "UsageHourlyOutcomes",
    "UsageHourlyRollup",
    "UsageLog",
    "UsageRollupRevision",
    "User",
    "UserSession",
]
