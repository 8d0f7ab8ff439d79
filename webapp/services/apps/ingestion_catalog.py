"""What ingestion resolves reported names against — every feature by name, every model by
name with its provider's name and its prices — cached per process under the
configuration revision.

Every use case that changes a feature, a model or a provider bumps the configuration
revision in its own transaction (webapp/services/apps/config_revision.py), so a batch
reads the committed revision (one primary-key lookup) and uses this process's snapshot
when it was loaded under that revision, else loads a new one (two queries). The snapshot
is read after the revision, in the same transaction under READ COMMITTED: it is never
older than the revision it is filed under (at worst newer, which only costs a reload).
A change made through another worker is therefore seen by the next batch of every
worker.

Writes that do not go through those use cases (test factories, a shell) do not bump the
revision: a flush that adds, changes or deletes a feature, model or provider in this
process drops the snapshot as well (``forget_on_catalog_flush``).

The snapshot holds plain frozen values, never ORM objects: it outlives the session that
loaded it.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from webapp.extensions import db
from webapp.models import AIModel, Feature, Provider
from webapp.services.apps.config_revision import current_revision

CACHE_KEY = "aipm.ingestion_catalog"
CATALOG_CLASSES = (Feature, AIModel, Provider)


@dataclass(frozen=True)
class CatalogModel:
    """A model as ingestion needs it: identity and prices (what ``request_cost`` reads)."""

    id: uuid.UUID
    provider_id: uuid.UUID
    name: str
    version: str | None
    input_price_per_million: Decimal
    output_price_per_million: Decimal
    price_per_request: Decimal | None
    price_per_image: Decimal | None
    cache_read_price_per_million: Decimal | None
    cache_write_price_per_million: Decimal | None


MODEL_COLUMNS = tuple(CatalogModel.__dataclass_fields__)


@dataclass(frozen=True)
class CatalogSnapshot:
    revision: int
    feature_ids: dict[str, uuid.UUID]  # by name
    # By name: (model, provider name), unversioned first, then provider name, version, id.
    models: dict[str, tuple[tuple[CatalogModel, str], ...]]
    provider_of: dict[uuid.UUID, uuid.UUID]  # model id → provider id


def load_snapshot(revision: int) -> CatalogSnapshot:
    """Every feature and model of the catalog, in two queries."""
    feature_ids = {
        name: feature_id
        for name, feature_id in db.session.execute(select(Feature.name, Feature.id))
    }
    found: dict[str, list[tuple[CatalogModel, str]]] = {}
    rows = db.session.execute(
        select(*(AIModel.__table__.c[name] for name in MODEL_COLUMNS), Provider.name).join(
            Provider, Provider.id == AIModel.provider_id
        )
    )
    for row in rows:
        model = CatalogModel(*row[:-1])
        found.setdefault(model.name, []).append((model, row[-1]))
    models = {
        name: tuple(
            sorted(
                candidates,
                key=lambda c: (c[0].version is not None, c[1], c[0].version or "", str(c[0].id)),
            )
        )
        for name, candidates in found.items()
    }
    provider_of = {m.id: m.provider_id for found in models.values() for m, _ in found}
    return CatalogSnapshot(revision, feature_ids, models, provider_of)


class CatalogCache:
    """One process's snapshot (one per application object: each gunicorn worker has its
    own), shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: CatalogSnapshot | None = None
        self._generation = 0  # bumped by forget(): a load begun before is not kept

    def current(self) -> CatalogSnapshot:
        """The snapshot of the committed revision, loaded in the caller's transaction
        when this process has none for it."""
        revision = current_revision()
        snapshot = self._snapshot
        if snapshot is not None and snapshot.revision == revision:
            return snapshot
        generation = self._generation
        snapshot = load_snapshot(revision)
        with self._lock:
            if self._generation == generation:
                self._snapshot = snapshot
        return snapshot

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._snapshot = None


def catalog_cache(app: Flask) -> CatalogCache:
    cache = app.extensions.get(CACHE_KEY)
    if cache is None:
        cache = app.extensions.setdefault(CACHE_KEY, CatalogCache())
    return cache


FLUSHED_CATALOG = "aipm.flushed_catalog"


@event.listens_for(Session, "after_flush")
def forget_on_catalog_flush(session: Session, _context: Any) -> None:
    """A feature, model or provider written in this process, whatever wrote it: the
    snapshot goes (also a write that does not bump the revision, as test factories), and
    again when that transaction ends (a snapshot loaded meanwhile may hold its rows, which
    a rollback takes back)."""
    if not has_app_context():
        return
    for instance in (*session.new, *session.dirty, *session.deleted):
        if isinstance(instance, CATALOG_CLASSES):
            session.info[FLUSHED_CATALOG] = True
            catalog_cache(current_app).forget()
            return


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def forget_after_catalog_transaction(session: Session, *_args: Any) -> None:
    if session.info.pop(FLUSHED_CATALOG, False) and has_app_context():
        catalog_cache(current_app).forget()
