"""Which version of a prompt is live in each environment, with history and roll back.

Rules (issue 15, "Prompts per environment"):

- In every environment (development, staging, production) at most one version of a
  family (feature, name) is live; the database enforces it (partial unique indexes on
  ``prompt_activations``). Changing what is live closes the current row (kept as history:
  who, when, what it replaced) and opens a new one, in one transaction with its audit row.
- ``activate_prompt`` makes any version live in any environment directly (an admin's
  decision; the seed's activate endpoint means production).
- ``promote_prompt`` follows the pipeline development → staging → production: a version
  may be promoted to an environment only while it is live in the one before (promoting
  to development is refused: nothing comes before it, activate there). It stays live
  where it was: a promotion copies, it does not move.
- ``rollback_prompt`` brings back, in one environment, the version that was live there
  before the current one (skipping deleted versions and the current version itself),
  whatever the pipeline says: rolling back is the way out of a bad release.
- ``Prompt.is_active`` means "live in production" and is written in the same
  transaction as production's rows, so the seed's API, filters and pages keep working.

Concurrency: every change takes the family's lock (PostgreSQL advisory lock, the same as
new versions take) before reading what is live; on SQLite a clash on the unique index is
answered with a Conflict, changing nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from webapp.extensions import db
from webapp.models import ENVIRONMENTS, Prompt, PromptActivation, User
from webapp.models.types import utcnow
from webapp.services.apps.config_revision import bump_config_revision
from webapp.services.audit.records import add_audit_row
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.prompts.families import lock_family, same_family, same_family_activations

PRODUCTION = "production"
# The pipeline: each environment is promoted to from the one before it.
PROMOTES_FROM = {"staging": "development", "production": "staging"}


@dataclass(frozen=True)
class ActivationResult:
    prompt: Prompt  # the version live afterwards (or the one that stopped being live)
    environment: str
    changed: bool  # False: nothing to do (it was live there already)
    message: str


@dataclass(frozen=True)
class Switch:
    """What one change of the live version did (for the caller's audit row)."""

    changed: bool
    old_values: dict[str, Any]
    new_values: dict[str, Any]
    activation: PromptActivation | None


@dataclass(frozen=True)
class ActivationEntry:
    """One row of history, with the e-mails of who opened and closed it."""

    activation: PromptActivation
    activated_by_email: str | None
    deactivated_by_email: str | None

    @property
    def is_live(self) -> bool:
        return self.activation.deactivated_at is None


def check_environment(environment: Any, field: str = "environment") -> str:
    if environment not in ENVIRONMENTS:
        raise ValidationFailed({field: f"must be one of {', '.join(ENVIRONMENTS)}"})
    return str(environment)


def _get_prompt(prompt_id: uuid.UUID) -> Prompt:
    prompt = db.session.get(Prompt, prompt_id)
    if prompt is None:
        raise NotFound(f"prompt {prompt_id} does not exist")
    return prompt


def _live_row(name: str, feature_id: uuid.UUID | None, environment: str) -> PromptActivation | None:
    return db.session.scalar(
        select(PromptActivation).where(
            *same_family_activations(name, feature_id),
            PromptActivation.environment == environment,
            PromptActivation.deactivated_at.is_(None),
        )
    )


def _label(prompt: Prompt) -> str:
    return f"{prompt.name} v{prompt.version}"


def switch_in_transaction(
    actor: Actor,
    prompt: Prompt,
    environment: str,
    action: str = "activate",
    from_environment: str | None = None,
) -> Switch:
    """Make ``prompt`` the live version of its family in ``environment`` and flush, without
    audit or commit: the caller's use case does both (an experiment's promotion, a new
    version created active). Takes the family's lock first."""
    check_environment(environment)
    lock_family(prompt.name, prompt.feature_id)
    db.session.refresh(prompt)  # what it is now that the family is ours
    current = _live_row(prompt.name, prompt.feature_id, environment)
    previous: tuple[uuid.UUID | None, int | None] = (None, None)
    if current is not None:
        previous = (current.prompt_id, current.version)
    elif environment == PRODUCTION:
        # A version marked active without a row (written before this table, or directly):
        # it is what production served, so it is what this change replaces.
        legacy = db.session.scalar(
            select(Prompt).where(*same_family(prompt.name, prompt.feature_id), Prompt.is_active)
        )
        if legacy is not None:
            previous = (legacy.id, legacy.version)
    if current is not None and current.prompt_id == prompt.id:
        return Switch(False, {}, {}, current)
    if current is None and previous[0] == prompt.id:
        # Live in production by is_active alone: give it its row; what is live is unchanged
        # for the seed's API, but live_prompts (applications' configuration) now lists it.
        opened = _open(actor, prompt, environment, action, (None, None))
        bump_config_revision()
        return Switch(False, {}, {}, opened)
    now = utcnow()
    try:
        if current is not None:
            current.deactivated_at = now
            current.deactivated_by = actor.user_id
            db.session.flush()  # the partial unique index must see the old row closed first
        activation = _open(actor, prompt, environment, action, previous)
        if environment == PRODUCTION:
            _mirror_production(prompt)
        bump_config_revision()
    except IntegrityError:
        # Only where advisory locks are not available (SQLite): someone changed it meanwhile.
        db.session.rollback()
        raise Conflict(
            f"someone else changed what is live in {environment} for {prompt.name} just now; "
            "reload and try again",
            field="environment",
        ) from None
    old_values: dict[str, Any] = {
        "environment": environment,
        "active_version": previous[1],
        "prompt_id": previous[0],
    }
    new_values: dict[str, Any] = {
        "environment": environment,
        "active_version": prompt.version,
        "prompt_id": prompt.id,
        "activation_id": activation.id,
    }
    if from_environment:
        new_values["from_environment"] = from_environment
    return Switch(True, old_values, new_values, activation)


def _open(
    actor: Actor,
    prompt: Prompt,
    environment: str,
    action: str,
    previous: tuple[uuid.UUID | None, int | None],
) -> PromptActivation:
    activation = PromptActivation(
        feature_id=prompt.feature_id,
        name=prompt.name,
        environment=environment,
        prompt_id=prompt.id,
        version=prompt.version,
        previous_prompt_id=previous[0],
        previous_version=previous[1],
        action=action,
        activated_by=actor.user_id,
    )
    db.session.add(activation)
    db.session.flush()
    return activation


def _mirror_production(live: Prompt) -> None:
    """``is_active`` follows production: ``live`` is the family's only active version."""
    db.session.execute(
        update(Prompt)
        .where(*same_family(live.name, live.feature_id), Prompt.is_active, Prompt.id != live.id)
        .values(is_active=False),
        execution_options={"synchronize_session": "fetch"},
    )
    live.is_active = True
    db.session.flush()


def _commit(
    actor: Actor, prompt: Prompt, environment: str, switch: Switch, action: str, message: str
) -> ActivationResult:
    if not switch.changed:
        db.session.commit()  # at most a missing row given to a legacy active version
        return ActivationResult(
            prompt, environment, False, f"{_label(prompt)} is already live in {environment}"
        )
    add_audit_row(actor, action, "prompt", prompt.id, switch.old_values, switch.new_values)
    db.session.commit()
    return ActivationResult(prompt, environment, True, message)


def activate_prompt(actor: Actor, prompt_id: uuid.UUID, environment: str) -> ActivationResult:
    """Make this version the live one of its family in ``environment``."""
    check_environment(environment)
    prompt = _get_prompt(prompt_id)
    switch = switch_in_transaction(actor, prompt, environment)
    return _commit(
        actor,
        prompt,
        environment,
        switch,
        "prompt.activate",
        f"{_label(prompt)} is now live in {environment}",
    )


def promote_prompt(actor: Actor, prompt_id: uuid.UUID, to_environment: str) -> ActivationResult:
    """Make this version live in ``to_environment``; it must be live in the environment
    before it (development → staging → production)."""
    if not isinstance(to_environment, str) or to_environment not in PROMOTES_FROM:
        raise ValidationFailed(
            {
                "to_environment": (
                    f"must be one of {', '.join(PROMOTES_FROM)} (development is the first "
                    "environment: activate a version there)"
                )
            }
        )
    source = PROMOTES_FROM[to_environment]
    prompt = _get_prompt(prompt_id)
    lock_family(prompt.name, prompt.feature_id)  # what is live in `source` holds until commit
    live_in_source = _live_row(prompt.name, prompt.feature_id, source)
    if live_in_source is None or live_in_source.prompt_id != prompt.id:
        where = f"v{live_in_source.version} is" if live_in_source else "no version is"
        raise Conflict(
            f"{_label(prompt)} can be promoted to {to_environment} only while it is live in "
            f"{source} ({where} live there now)",
            field="to_environment",
        )
    switch = switch_in_transaction(actor, prompt, to_environment, "promote", source)
    return _commit(
        actor,
        prompt,
        to_environment,
        switch,
        "prompt.promote",
        f"{_label(prompt)} promoted from {source} to {to_environment}",
    )


def rollback_prompt(
    actor: Actor, feature_id: uuid.UUID | None, name: str, environment: str
) -> ActivationResult:
    """Bring back the version that was live in ``environment`` before the current one."""
    check_environment(environment)
    lock_family(name, feature_id)
    rows = db.session.scalars(
        select(PromptActivation)
        .where(
            *same_family_activations(name, feature_id),
            PromptActivation.environment == environment,
        )
        .order_by(PromptActivation.activated_at.desc(), PromptActivation.version.desc())
    ).all()
    if (
        not rows
        and db.session.scalar(select(Prompt.id).where(*same_family(name, feature_id))) is None
    ):
        raise NotFound(f"no prompt named {name} exists here")
    current = next((row for row in rows if row.deactivated_at is None), None)
    earlier = next(
        (
            row
            for row in rows
            if row.deactivated_at is not None
            and row.prompt_id is not None
            and (current is None or row.prompt_id != current.prompt_id)
        ),
        None,
    )
    if earlier is None or earlier.prompt_id is None:
        raise Conflict(f"there is no earlier version of {name} to roll back to in {environment}")
    prompt = _get_prompt(earlier.prompt_id)
    switch = switch_in_transaction(actor, prompt, environment, "rollback")
    return _commit(
        actor,
        prompt,
        environment,
        switch,
        "prompt.rollback",
        f"{_label(prompt)} is live again in {environment}",
    )


def deactivate_in_transaction(actor: Actor, prompt: Prompt, environment: str) -> Switch:
    """Close this version's live row in ``environment`` (no version is live there after)."""
    check_environment(environment)
    lock_family(prompt.name, prompt.feature_id)
    db.session.refresh(prompt)
    current = _live_row(prompt.name, prompt.feature_id, environment)
    live_here = current is not None and current.prompt_id == prompt.id
    if environment == PRODUCTION and prompt.is_active:
        live_here = True
    if not live_here:
        return Switch(False, {}, {}, None)
    if current is not None and current.prompt_id == prompt.id:
        current.deactivated_at = utcnow()
        current.deactivated_by = actor.user_id
    if environment == PRODUCTION:
        prompt.is_active = False
    db.session.flush()
    bump_config_revision()
    return Switch(
        True,
        {"environment": environment, "is_active": True},
        {"environment": environment, "is_active": False},
        current,
    )


def deactivate_prompt(actor: Actor, prompt_id: uuid.UUID, environment: str) -> ActivationResult:
    check_environment(environment)
    prompt = _get_prompt(prompt_id)
    switch = deactivate_in_transaction(actor, prompt, environment)
    if not switch.changed:
        db.session.rollback()
        return ActivationResult(
            prompt, environment, False, f"{_label(prompt)} is not live in {environment}"
        )
    add_audit_row(
        actor, "prompt.deactivate", "prompt", prompt.id, switch.old_values, switch.new_values
    )
    db.session.commit()
    return ActivationResult(
        prompt,
        environment,
        True,
        f"{_label(prompt)} is no longer live in {environment}; no version of {prompt.name} is",
    )


# --- reads --------------------------------------------------------------------------------


def live_prompts(feature_id: uuid.UUID | None, environment: str) -> list[dict[str, Any]]:
    """The versions live in ``environment`` for a feature (``None``: global prompts), as
    plain data for applications' configuration: name, version, content, variables, id."""
    check_environment(environment)
    feature_condition = (
        PromptActivation.feature_id == feature_id
        if feature_id
        else PromptActivation.feature_id.is_(None)
    )
    rows = db.session.execute(
        select(Prompt, PromptActivation.activated_at)
        .join(PromptActivation, PromptActivation.prompt_id == Prompt.id)
        .where(
            feature_condition,
            PromptActivation.environment == environment,
            PromptActivation.deactivated_at.is_(None),
        )
        .order_by(Prompt.name)
    ).all()
    return [
        {
            "prompt_id": prompt.id,
            "name": prompt.name,
            "version": prompt.version,
            "content": prompt.content,
            "variables": dict(prompt.variables or {}),
            "activated_at": activated_at,
        }
        for prompt, activated_at in rows
    ]


def live_by_environment(prompt_id: uuid.UUID) -> dict[str, ActivationEntry | None]:
    """For the family of ``prompt_id``: the live row of each environment (or None)."""
    prompt = _get_prompt(prompt_id)
    found: dict[str, ActivationEntry | None] = dict.fromkeys(ENVIRONMENTS)
    for entry in _entries(prompt.name, prompt.feature_id, None, live_only=True):
        found[entry.activation.environment] = entry
    return found


def history(
    feature_id: uuid.UUID | None, name: str, environment: str | None = None
) -> list[ActivationEntry]:
    """Every activation of the family (in one environment, or all), newest first."""
    if environment is not None:
        check_environment(environment)
    return _entries(name, feature_id, environment)


def _entries(
    name: str, feature_id: uuid.UUID | None, environment: str | None, live_only: bool = False
) -> list[ActivationEntry]:
    opened_by, closed_by = aliased(User), aliased(User)
    query = (
        select(PromptActivation, opened_by.email, closed_by.email)
        .outerjoin(opened_by, opened_by.id == PromptActivation.activated_by)
        .outerjoin(closed_by, closed_by.id == PromptActivation.deactivated_by)
        .where(*same_family_activations(name, feature_id))
        .order_by(PromptActivation.activated_at.desc(), PromptActivation.version.desc())
    )
    if environment is not None:
        query = query.where(PromptActivation.environment == environment)
    if live_only:
        query = query.where(PromptActivation.deactivated_at.is_(None))
    return [ActivationEntry(row, by, closer) for row, by, closer in db.session.execute(query)]


def promotion_target(prompt: Prompt, live: dict[str, ActivationEntry | None]) -> str | None:
    """Where this version may be promoted next given what is ``live``: the environment
    after the last one it is live in, unless it is live there already (for the page)."""
    target = None
    for environment, source in PROMOTES_FROM.items():
        entry, here = live.get(source), live.get(environment)
        live_in_source = entry is not None and entry.activation.prompt_id == prompt.id
        live_here = here is not None and here.activation.prompt_id == prompt.id
        if live_in_source and not live_here:
            target = environment
    return target


def can_roll_back(prompt: Prompt, environment: str) -> bool:
    """Is there an earlier version to bring back in ``environment`` (for the page)?"""
    rows = history(prompt.feature_id, prompt.name, environment)
    current = next((e.activation.prompt_id for e in rows if e.is_live), None)
    return any(not e.is_live and e.activation.prompt_id not in (None, current) for e in rows)


def activation_as_dict(entry: ActivationEntry) -> dict[str, Any]:
    row = entry.activation
    return {
        "id": row.id,
        "environment": row.environment,
        "prompt_id": row.prompt_id,
        "version": row.version,
        "name": row.name,
        "feature_id": row.feature_id,
        "action": row.action,
        "previous_prompt_id": row.previous_prompt_id,
        "previous_version": row.previous_version,
        "activated_at": row.activated_at,
        "activated_by": row.activated_by,
        "activated_by_email": entry.activated_by_email,
        "deactivated_at": row.deactivated_at,
        "deactivated_by": row.deactivated_by,
        "deactivated_by_email": entry.deactivated_by_email,
        "is_live": entry.is_live,
    }


def live_environments(prompt_id: uuid.UUID) -> list[str]:
    """The environments in which this version is live, in pipeline order."""
    found = set(
        db.session.scalars(
            select(PromptActivation.environment).where(
                PromptActivation.prompt_id == prompt_id,
                PromptActivation.deactivated_at.is_(None),
            )
        )
    )
    return [environment for environment in ENVIRONMENTS if environment in found]
