"""Display names of features, models and providers by id, in one query (a UNION ALL):
analytics name the ids their grouped rows carry without a round trip per kind."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import literal, select, union_all

from webapp.extensions import db
from webapp.models import AIModel, Feature, Provider

KINDS: dict[str, type[Feature | AIModel | Provider]] = {
    "features": Feature,
    "models": AIModel,
    "providers": Provider,
}


def display_names(**ids: Iterable[uuid.UUID | None]) -> dict[str, dict[uuid.UUID, str]]:
    """``display_names(features=[…], models=[…], providers=[…])`` → {kind: {id: name}}.
    Ids that name no row (deleted since) are simply absent; None ids are ignored."""
    found: dict[str, dict[uuid.UUID, str]] = {kind: {} for kind in ids}
    parts = []
    for kind, values in ids.items():
        wanted = {value for value in values if value is not None}
        if wanted:
            model = KINDS[kind]
            parts.append(
                select(literal(kind).label("kind"), model.id, model.display_name).where(
                    model.id.in_(wanted)
                )
            )
    if not parts:
        return found
    statement = parts[0] if len(parts) == 1 else union_all(*parts)
    for kind, ident, name in db.session.execute(statement):
        found[kind][ident] = name
    return found


def every_name() -> dict[str, list[tuple[uuid.UUID, str]]]:
    """Every feature, model and provider as (id, display name), by name: the choices of a
    filter (one UNION ALL)."""
    found: dict[str, list[tuple[uuid.UUID, str]]] = {kind: [] for kind in KINDS}
    parts = [
        select(literal(kind).label("kind"), model.id, model.display_name)
        for kind, model in KINDS.items()
    ]
    statement = union_all(*parts).subquery()
    rows = db.session.execute(select(statement).order_by(statement.c.display_name))
    for kind, ident, name in rows:
        found[kind].append((ident, name))
    return found
