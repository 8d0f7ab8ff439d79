"""Prompt templates with versions (the seed's PromptManagementService, made correct).

A prompt *family* is the set of versions sharing (feature, name). Creating a prompt whose
family exists adds the next version; changing the content of a version adds a new version
and leaves the old one as it was (as in Langfuse); description, tags and variables change
in place. At most one version of a family is active.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, literal, or_, select, tuple_
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import AIModel, Feature, FeatureModelAssignment, Prompt, UsageLog
from webapp.models.types import json_array_overlaps
from webapp.services.apps.config_revision import bump_config_revision
from webapp.services.audit.records import add_audit_row
from webapp.services.audit.writes import apply_changes
from webapp.services.catalog import features
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.sorting import Sort, order_by
from webapp.services.core.validation import check
from webapp.services.prompts import environments
from webapp.services.prompts.families import lock_family, same_family
from webapp.services.prompts.rendering import (
    RenderResult,
    estimate_input_cost,
    estimate_tokens,
    placeholders,
    render,
)
from webapp.services.prompts.schemas import PromptCreate, PromptUpdate
from webapp.services.usage import windows

FIELDS = tuple(PromptCreate.model_fields)
MAX_LIMIT = 200
CREATE_ATTEMPTS = 5
# Stands in for a NULL feature when joining families (NULL never equals NULL).
NO_FEATURE = literal(uuid.UUID(int=0))


def prompt_as_dict(prompt: Prompt) -> dict[str, Any]:
    return {
        "id": prompt.id,
        "name": prompt.name,
        "description": prompt.description,
        "content": prompt.content,
        "version": prompt.version,
        "feature_id": prompt.feature_id,
        "tags": prompt.tags,
        "variables": prompt.variables,
        "detected_variables": placeholders(prompt.content),
        "is_active": prompt.is_active,
        "created_by": prompt.created_by,
        "created_at": prompt.created_at,
        "updated_at": prompt.updated_at,
    }


def get_prompt(prompt_id: uuid.UUID) -> Prompt:
    prompt = db.session.get(Prompt, prompt_id)
    if prompt is None:
        raise NotFound(f"prompt {prompt_id} does not exist")
    return prompt


_same_family = same_family


def escape_like(term: str) -> str:
    """``%``, ``_`` and ``\\`` in a search term match themselves (ESCAPE '\\')."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class PromptPage:
    prompts: list[Prompt]
    total: int
    limit: int
    offset: int


def list_prompts(
    feature_id: uuid.UUID | None = None,
    tags: list[str] | None = None,
    is_active: bool | None = None,
    created_by: uuid.UUID | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> PromptPage:
    errors = {}
    if not 1 <= limit <= MAX_LIMIT:
        errors["limit"] = f"must be between 1 and {MAX_LIMIT}"
    if offset < 0:
        errors["offset"] = "must not be negative"
    if errors:
        raise ValidationFailed(errors)
    conditions: list[Any] = []
    if feature_id:
        conditions.append(Prompt.feature_id == feature_id)
    if tags:
        conditions.append(json_array_overlaps(Prompt.tags, tags))
    if is_active is not None:
        conditions.append(Prompt.is_active.is_(is_active))
    if created_by:
        conditions.append(Prompt.created_by == created_by)
    if search and search.strip():
        pattern = f"%{escape_like(search.strip())}%"
        conditions.append(
            or_(
                Prompt.name.ilike(pattern, escape="\\"),
                Prompt.description.ilike(pattern, escape="\\"),
                Prompt.content.ilike(pattern, escape="\\"),
            )
        )
    total = db.session.scalar(select(func.count()).select_from(Prompt).where(*conditions)) or 0
    rows = db.session.scalars(
        select(Prompt)
        .where(*conditions)
        .order_by(Prompt.name, Prompt.feature_id, Prompt.version.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return PromptPage(list(rows), total, limit, offset)


def versions(prompt_id: uuid.UUID) -> list[Prompt]:
    """Every version of the prompt's family, newest first."""
    prompt = get_prompt(prompt_id)
    return list(
        db.session.scalars(
            select(Prompt)
            .where(*_same_family(prompt.name, prompt.feature_id))
            .order_by(Prompt.version.desc())
        )
    )


def all_tags() -> list[str]:
    tags: set[str] = set()
    for tag_list in db.session.scalars(select(Prompt.tags).distinct()):
        tags.update(tag_list or [])
    return sorted(tags)


def _checked(schema: type[PromptUpdate], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The prompt's fields as validated, its feature included (every problem at once)."""
    checked = check(schema, fields)
    feature_id = checked.values.get("feature_id")
    if feature_id is not None and not features.feature_exists(feature_id):
        checked.errors["feature_id"] = "is not a known feature"
    if checked.errors:
        raise ValidationFailed(checked.errors)
    return checked.values


_lock_family = lock_family


def _next_version(name: str, feature_id: uuid.UUID | None) -> int:
    _lock_family(name, feature_id)
    latest = db.session.scalar(
        select(func.max(Prompt.version)).where(*_same_family(name, feature_id))
    )
    return (latest or 0) + 1


def _insert_version(
    actor: Actor, fields: dict[str, Any], action: str, old: dict | None = None
) -> Prompt:
    """Insert the next version of a family. Two writers at once end with n and n+1:
    PostgreSQL serialises them on an advisory lock; elsewhere a unique-index clash is
    retried with a fresh version number."""
    activate = bool(fields.pop("is_active", False))
    for attempt in range(CREATE_ATTEMPTS):
        version = _next_version(fields["name"], fields.get("feature_id"))
        prompt = Prompt(**fields, version=version, is_active=False, created_by=actor.user_id)
        try:
            with db.session.begin_nested():
                db.session.add(prompt)
                db.session.flush()
        except IntegrityError:
            if attempt == CREATE_ATTEMPTS - 1:
                raise Conflict("the prompt is being changed by someone else; try again") from None
            continue
        break
    if activate:  # created active: live in production (is_active's meaning)
        environments.switch_in_transaction(actor, prompt, environments.PRODUCTION)
    add_audit_row(actor, action, "prompt", prompt.id, old or {}, prompt_as_dict(prompt))
    db.session.commit()
    return prompt


def create_prompt(actor: Actor, fields: Mapping[str, Any]) -> Prompt:
    return _insert_version(actor, _checked(PromptCreate, fields), "prompt.create")


def update_prompt(actor: Actor, prompt_id: uuid.UUID, changes: Mapping[str, Any]) -> Prompt:
    """New content → a new version (returned); other fields → changed in place."""
    fixed = {
        key: "cannot be changed here (duplicate, activate or deactivate instead)"
        for key in ("name", "feature_id", "is_active")
        if key in changes
    }
    if fixed:
        others = check(PromptUpdate, changes).errors
        raise ValidationFailed(fixed | {k: v for k, v in others.items() if k not in fixed})
    changes = _checked(PromptUpdate, changes)
    prompt = get_prompt(prompt_id)
    if "content" in changes and changes["content"] != prompt.content:
        fields = {
            "name": prompt.name,
            "feature_id": prompt.feature_id,
            "description": prompt.description,
            "tags": prompt.tags,
            "variables": prompt.variables,
            **changes,
        }
        return _insert_version(
            actor, fields, "prompt.new_version", {"version": prompt.version, "id": prompt.id}
        )
    changes.pop("content", None)
    if apply_changes(actor, prompt, changes, "prompt.update", "prompt"):
        bump_config_revision()
        db.session.commit()
    return prompt


def activate(actor: Actor, prompt_id: uuid.UUID) -> Prompt:
    """The seed's activation: make this the version live in production."""
    return environments.activate_prompt(actor, prompt_id, environments.PRODUCTION).prompt


def activate_in_transaction(prompt: Prompt, actor: Actor | None = None) -> tuple[dict, dict] | None:
    """Make ``prompt`` live in production and flush, without audit or commit: the caller's
    use case does both. Returns (old, new) audit values, or None when it was live already."""
    switch = environments.switch_in_transaction(
        actor or Actor(user_id=None), prompt, environments.PRODUCTION
    )
    return (switch.old_values, switch.new_values) if switch.changed else None


def deactivate(actor: Actor, prompt_id: uuid.UUID) -> Prompt:
    """The seed's deactivation: no version is live in production afterwards."""
    return environments.deactivate_prompt(actor, prompt_id, environments.PRODUCTION).prompt


def delete_refusal(prompt: Prompt) -> str | None:
    """Why this version cannot be deleted now, or None: what ``delete_prompt`` refuses
    with (under the family's lock), and what the prompt page shows beside a disabled
    Delete. The newest of several versions never can be; an active or live one until
    another version takes its place."""
    newest = db.session.scalar(
        select(func.max(Prompt.version)).where(*_same_family(prompt.name, prompt.feature_id))
    )
    if prompt.version == newest and newest > 1 and prompt.version != _oldest(prompt):
        return (
            f"v{prompt.version} is the newest version of {prompt.name}; versions are kept as "
            "history, so save a corrected version instead (older versions can be deleted)"
        )
    if prompt.is_active:
        return (
            f"version {prompt.version} of {prompt.name} is active: activate another version "
            "(or deactivate this one) before deleting it"
        )
    live_in = environments.live_environments(prompt.id)
    if live_in:
        return (
            f"version {prompt.version} of {prompt.name} is live in {', '.join(live_in)}: "
            "make another version live there (or deactivate it) before deleting it"
        )
    return None


def delete_prompt(actor: Actor, prompt_id: uuid.UUID) -> None:
    """Refused for the active version, and for the newest one while older versions exist
    (its number would be handed out again: version numbers are history)."""
    prompt = get_prompt(prompt_id)
    _lock_family(prompt.name, prompt.feature_id)
    db.session.refresh(prompt)
    refusal = delete_refusal(prompt)
    if refusal:
        raise Conflict(refusal)
    snapshot = prompt_as_dict(prompt)
    db.session.delete(prompt)
    bump_config_revision()  # a running experiment's variant may name this version
    add_audit_row(actor, "prompt.delete", "prompt", prompt_id, old_values=snapshot)
    db.session.commit()


def _oldest(prompt: Prompt) -> int:
    oldest = db.session.scalar(
        select(func.min(Prompt.version)).where(*_same_family(prompt.name, prompt.feature_id))
    )
    return prompt.version if oldest is None else oldest  # the family holds this version


def duplicate(
    actor: Actor, prompt_id: uuid.UUID, new_name: str, feature_id: Any = "same"
) -> Prompt:
    """Copy this version under a name no prompt here has yet (version 1, inactive)."""
    source = get_prompt(prompt_id)
    fields: dict[str, Any] = {
        "name": new_name,
        "content": source.content,
        "description": source.description,
        "tags": list(source.tags),
        "variables": dict(source.variables),
        "feature_id": source.feature_id if feature_id == "same" else feature_id,
    }
    fields = _checked(PromptCreate, fields)
    if fields["name"] == source.name and fields["feature_id"] == source.feature_id:
        raise ValidationFailed({"name": "must differ from the original name"})
    taken = db.session.scalar(
        select(Prompt.id).where(*_same_family(fields["name"], fields["feature_id"])).limit(1)
    )
    if taken is not None:
        raise Conflict(f"a prompt named {fields['name']} already exists here", field="name")
    return _insert_version(actor, fields, "prompt.duplicate", {"source_id": source.id})


@dataclass(frozen=True)
class VersionDiff:
    old: Prompt
    new: Prompt
    unified: str
    rows: list[tuple[str, str, str]]  # (opcode, old line, new line): the API's ``lines``
    lines: list[DiffLine]  # the page's side-by-side view (``side_by_side``)


# Unchanged lines kept around a change; longer unchanged runs fold into one row.
DIFF_CONTEXT = 2
# Two lines at least this similar (difflib's ratio) are one changed line, with the
# changed characters marked; less similar ones are a removed and an added line.
CHANGED_LINE_RATIO = 0.5


@dataclass(frozen=True)
class DiffLine:
    """One row of the side-by-side diff. ``kind``: ``same``, ``added``, ``removed``,
    ``changed`` or ``folded`` (``folded`` unchanged lines not shown). ``old``/``new``
    are (text, is_changed) pieces of the line; line numbers count from 1."""

    kind: str
    old_number: int | None = None
    new_number: int | None = None
    old: tuple[tuple[str, bool], ...] = ()
    new: tuple[tuple[str, bool], ...] = ()
    folded: int = 0


WORD = re.compile(r"\w+|\s+|[^\w\s]")


def _pieces(a: str, b: str) -> tuple[tuple[tuple[str, bool], ...], tuple[tuple[str, bool], ...]]:
    """The two lines cut into pieces, the words that differ marked (a word-level diff
    reads better than scattered characters)."""
    old_words, new_words = WORD.findall(a), WORD.findall(b)
    old: list[tuple[str, bool]] = []
    new: list[tuple[str, bool]] = []
    matcher = difflib.SequenceMatcher(a=old_words, b=new_words, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if i2 > i1:
            old.append(("".join(old_words[i1:i2]), tag != "equal"))
        if j2 > j1:
            new.append(("".join(new_words[j1:j2]), tag != "equal"))
    return tuple(old), tuple(new)


def _similarity(old: str, new: str) -> float:
    return difflib.SequenceMatcher(a=old, b=new, autojunk=False).ratio()


def _changed_block(
    a: list[str], b: list[str], i1: int, i2: int, j1: int, j2: int
) -> list[DiffLine]:
    """A block of differing lines: each old line is paired, in order, with the most
    similar new line still free after the last pair (a changed line); old lines
    without one are removed, new lines skipped over or left are added."""
    found: list[DiffLine] = []
    j = j1
    for i in range(i1, i2):
        best, best_ratio = None, CHANGED_LINE_RATIO
        for candidate in range(j, j2):
            ratio = _similarity(a[i], b[candidate])
            if ratio >= best_ratio and (best is None or ratio > best_ratio):
                best, best_ratio = candidate, ratio
        if best is None:
            found.append(DiffLine("removed", i + 1, None, ((a[i], True),)))
            continue
        found += [DiffLine("added", None, k + 1, (), ((b[k], True),)) for k in range(j, best)]
        old_pieces, new_pieces = _pieces(a[i], b[best])
        found.append(DiffLine("changed", i + 1, best + 1, old_pieces, new_pieces))
        j = best + 1
    found += [DiffLine("added", None, k + 1, (), ((b[k], True),)) for k in range(j, j2)]
    return found


def side_by_side(a: list[str], b: list[str], context: int = DIFF_CONTEXT) -> list[DiffLine]:
    """A line diff of ``a`` → ``b``: added, removed and changed lines marked, unchanged
    runs longer than ``2 * context`` folded (the first and last ``context`` lines of a
    run stay, next to the changes they frame)."""
    lines: list[DiffLine] = []
    opcodes = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    for position, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            same = [
                DiffLine(
                    "same", i1 + k + 1, j1 + k + 1, ((a[i1 + k], False),), ((b[j1 + k], False),)
                )
                for k in range(i2 - i1)
            ]
            head = context if position > 0 else 0
            tail = context if position < len(opcodes) - 1 else 0
            if len(same) > head + tail:
                kept_tail = same[len(same) - tail :] if tail else []
                lines += same[:head]
                lines.append(DiffLine("folded", folded=len(same) - head - tail))
                lines += kept_tail
            else:
                lines += same
            continue
        lines += _changed_block(a, b, i1, i2, j1, j2)
    return lines


def diff(prompt_id: uuid.UUID, against_id: uuid.UUID) -> VersionDiff:
    new, old = get_prompt(prompt_id), get_prompt(against_id)
    if (old.name, old.feature_id) != (new.name, new.feature_id):
        raise ValidationFailed({"against": "must be another version of the same prompt"})
    if old.version > new.version:
        old, new = new, old
    a, b = old.content.splitlines(), new.content.splitlines()
    unified = "\n".join(
        difflib.unified_diff(
            a, b, f"{old.name} v{old.version}", f"{new.name} v{new.version}", lineterm=""
        )
    )
    rows: list[tuple[str, str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        left, right = a[i1:i2], b[j1:j2]
        for index in range(max(len(left), len(right))):
            rows.append(
                (
                    tag,
                    left[index] if index < len(left) else "",
                    right[index] if index < len(right) else "",
                )
            )
    return VersionDiff(old, new, unified, rows, side_by_side(a, b))


@dataclass(frozen=True)
class RenderTrial:
    result: RenderResult
    tokens: int
    model: AIModel | None
    cost: Decimal | None


def try_render(
    prompt_id: uuid.UUID, values: dict[str, Any], blank_is_missing: bool = False
) -> RenderTrial:
    """Render with test values; estimate tokens and the cost of one call with the
    feature's active production model."""
    if not isinstance(values, dict):
        raise ValidationFailed({"variables": "must be an object of variable values"})
    prompt = get_prompt(prompt_id)
    result = render(prompt.content, prompt.variables, values, blank_is_missing)
    tokens = estimate_tokens(result.rendered)
    model = None
    if prompt.feature_id:
        model = db.session.scalar(
            select(AIModel)
            .join(FeatureModelAssignment, FeatureModelAssignment.model_id == AIModel.id)
            .where(
                FeatureModelAssignment.feature_id == prompt.feature_id,
                FeatureModelAssignment.environment == "production",
                FeatureModelAssignment.is_active,
            )
        )
    cost = (
        estimate_input_cost(tokens, model.input_price_per_million, model.price_per_request)
        if model
        else None
    )
    return RenderTrial(result, tokens, model, cost)


@dataclass(frozen=True)
class PromptUsage:
    totals: windows.UsageMetrics
    daily: list[windows.DailyUsage]


def usage(prompt_id: uuid.UUID, days: int = 30, today: date | None = None) -> PromptUsage:
    get_prompt(prompt_id)
    today = today or datetime.now(UTC).date()
    daily = windows.daily_usage(UsageLog.prompt_id, prompt_id, days, today)
    since = datetime(daily[0].day.year, daily[0].day.month, daily[0].day.day, tzinfo=UTC)
    until = datetime(today.year, today.month, today.day, tzinfo=UTC) + windows.TIME_RANGES["24h"]
    found = windows.usage_metrics_by(
        UsageLog.prompt_id, since, until, only=[prompt_id], whole_days=True
    )
    return PromptUsage(found.get(prompt_id) or windows.UsageMetrics.empty(), daily)


@dataclass(frozen=True)
class Family:
    latest: Prompt  # the newest version
    active_version: int | None
    versions: int
    feature_name: str | None
    changed_at: datetime


@dataclass(frozen=True)
class FamilyPage:
    families: list[Family]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


FAMILY_SORTS = ("name", "feature", "active_version", "versions", "changed")
BY_NAME = Sort("name")


def list_families(
    search: str | None = None,
    feature_id: uuid.UUID | None = None,
    tag: str | None = None,
    active: bool | None = None,
    page: int = 1,
    per_page: int = 25,
    sort: Sort = BY_NAME,
) -> FamilyPage:
    """One row per prompt family whose versions match the filters (the editor's list),
    ordered in SQL by ``sort`` (one of ``FAMILY_SORTS``)."""
    conditions: list[Any] = []
    if feature_id:
        conditions.append(Prompt.feature_id == feature_id)
    if tag:
        conditions.append(json_array_overlaps(Prompt.tags, [tag]))
    if search and search.strip():
        pattern = f"%{escape_like(search.strip())}%"
        conditions.append(
            or_(
                Prompt.name.ilike(pattern, escape="\\"),
                Prompt.description.ilike(pattern, escape="\\"),
                Prompt.content.ilike(pattern, escape="\\"),
            )
        )
    # Families with a version that matches; their figures cover all of their versions.
    matching = select(Prompt.name, func.coalesce(Prompt.feature_id, NO_FEATURE)).where(*conditions)
    active_version = func.max(case((Prompt.is_active, Prompt.version)))
    grouped = (
        select(
            Prompt.name.label("name"),
            Prompt.feature_id.label("feature_id"),
            func.max(Prompt.version).label("latest"),
            func.count().label("versions"),
            active_version.label("active_version"),
            func.max(Prompt.updated_at).label("changed_at"),
        )
        .where(tuple_(Prompt.name, func.coalesce(Prompt.feature_id, NO_FEATURE)).in_(matching))
        .group_by(Prompt.name, Prompt.feature_id)
    )
    if active is True:
        grouped = grouped.having(active_version.is_not(None))
    elif active is False:
        grouped = grouped.having(active_version.is_(None))
    families = grouped.subquery()
    total = db.session.scalar(select(func.count()).select_from(families)) or 0
    rows = db.session.execute(
        select(
            Prompt,
            families.c.active_version,
            families.c.versions,
            Feature.display_name,
            families.c.changed_at,
        )
        .join(
            families,
            (Prompt.name == families.c.name)
            & (
                func.coalesce(Prompt.feature_id, NO_FEATURE)
                == func.coalesce(families.c.feature_id, NO_FEATURE)
            )
            & (Prompt.version == families.c.latest),
        )
        .outerjoin(Feature, Feature.id == Prompt.feature_id)
        .order_by(
            *order_by(
                sort,
                {
                    "name": Prompt.name,
                    "feature": Feature.display_name,
                    "active_version": families.c.active_version,
                    "versions": families.c.versions,
                    "changed": families.c.changed_at,
                },
                Prompt.name,
                Feature.display_name,
                Prompt.id,
            )
        )
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return FamilyPage(
        [
            Family(p, active_v, int(n), feature_name, changed)
            for p, active_v, n, feature_name, changed in rows
        ],
        total,
        page,
        per_page,
    )
