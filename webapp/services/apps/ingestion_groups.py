"""Group commit: small batches of one API key that arrive while another of its batches is
being stored in this process are stored together, in one transaction.

Each small request (at most ``GROUPED_EVENTS`` events) joins its key's queue. When no
batch of that key is being stored, it stores its own at once (alone: nothing waits for
company, so a lone request pays nothing). Otherwise it waits; when the running group has
committed, the first waiter leads the next group: every request queued by then (up to
``MAX_GROUP_EVENTS`` events), stored by ``ingest_batches`` as one transaction. Each
request is answered only after that commit, with its own result, exactly what it would
have got stored on its own just after the ones before it (``ingest_batches``).

A refused event is that event's answer, as in any batch. If the group's transaction
fails as a whole (an error the database raises, a deadlock), it is rolled back and every
request of it is stored again on its own, in its own transaction: one request's failure
fails only that request. Nothing is lost (every request is answered with a result or its
error) and nothing is stored twice (the ledger's ids, as for any retry).

The queues are per process (a gunicorn worker's threads share them); workers never wait
for each other here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from webapp.extensions import db
from webapp.services.apps.authentication import AuthenticatedKey
from webapp.services.apps.ingestion import IngestionResult, ingest_batches

GROUPED_EVENTS = 100  # larger batches are their own group: they gain nothing from company
MAX_GROUP_EVENTS = 1_000
CACHE_KEY = "aipm.ingestion_groups"


@dataclass
class _Request:
    events: Sequence[Any]
    refused_before: int
    woken: threading.Event = field(default_factory=threading.Event)
    leads: bool = False  # woken to lead the next group
    result: IngestionResult | None = None
    error: BaseException | None = None


@dataclass
class _Queue:
    busy: bool = False  # a group of this key is being stored
    waiting: list[_Request] = field(default_factory=list)


class IngestionGroups:
    """One process's queues, by API key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[AuthenticatedKey, _Queue] = {}

    def ingest(
        self, key: AuthenticatedKey, events: Sequence[Any], *, refused_before: int = 0
    ) -> IngestionResult:
        """``ingest_events(key, events)``, stored with the key's other small batches that
        are waiting at the same time (module docstring)."""
        if len(events) > GROUPED_EVENTS:
            return ingest_batches(key, [(events, refused_before)])[0]
        me = _Request(events, refused_before)
        with self._lock:
            queue = self._queues.setdefault(key, _Queue())
            if queue.busy:
                queue.waiting.append(me)
            else:
                queue.busy = True
                me.leads = True
        if not me.leads:
            me.woken.wait()
        if me.leads:
            self._lead(key, me)
        if me.error is not None:
            raise me.error
        assert me.result is not None
        return me.result

    def _lead(self, key: AuthenticatedKey, me: _Request) -> None:
        """Store ``me`` with the requests waiting now, answer them, hand over."""
        group = [me]
        try:
            with self._lock:
                queue = self._queues[key]
                total = len(me.events)
                while queue.waiting and total + len(queue.waiting[0].events) <= MAX_GROUP_EVENTS:
                    total += len(queue.waiting[0].events)
                    group.append(queue.waiting.pop(0))
            _store_group(key, group)
        finally:
            for request in group:
                if request.result is None and request.error is None:
                    request.error = RuntimeError("the group's leader stopped before storing it")
            self._hand_over(key)
            for request in group:
                if request is not me:
                    request.woken.set()

    def _hand_over(self, key: AuthenticatedKey) -> None:
        """A group of ``key`` has been stored: the first waiter leads the next one."""
        with self._lock:
            queue = self._queues[key]
            if queue.waiting:
                successor = queue.waiting.pop(0)
                successor.leads = True
                successor.woken.set()
            else:
                del self._queues[key]


def _store_group(key: AuthenticatedKey, group: list[_Request]) -> None:
    """One transaction for the group; on failure, each request in its own."""
    try:
        results = ingest_batches(key, [(r.events, r.refused_before) for r in group])
    except Exception as error:
        db.session.rollback()
        if len(group) == 1:
            group[0].error = error
            return
    else:
        for request, result in zip(group, results, strict=True):
            request.result = result
        return
    for request in group:
        try:
            request.result = ingest_batches(key, [(request.events, request.refused_before)])[0]
        except Exception as error:  # this request's own failure, answered to it alone
            db.session.rollback()
            request.error = error


def ingestion_groups(app: Flask) -> IngestionGroups:
    """This process's queues (one per application object)."""
    groups = app.extensions.get(CACHE_KEY)
    if groups is None:
        groups = app.extensions.setdefault(CACHE_KEY, IngestionGroups())
    return groups
