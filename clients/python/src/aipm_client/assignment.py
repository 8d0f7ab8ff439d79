"""Experiment variants computed locally, with the console's own hash and walk
(webapp.services.experiments.lifecycle: ``bucket_of``, ``variant_index_for_bucket``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal

BUCKETS = 10_000


def bucket_of(experiment_id: str, subject: str, buckets: int = BUCKETS) -> int:
    """The subject's bucket in 0..buckets-1: the first 8 bytes (big-endian) of
    SHA-256("<experiment id>:<subject>") modulo the number of buckets."""
    digest = hashlib.sha256(f"{experiment_id}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def variant_index(weights: Sequence[object], bucket: int) -> int:
    """Walk the weights (percentages, in order); each owns weight × 100 consecutive
    buckets. Decimal, as the console does, so a weight such as 33.33 ends exactly."""
    edge = Decimal(0)
    for index, weight in enumerate(weights):
        edge += Decimal(str(weight)) * 100
        if bucket < edge:
            return index
    return len(weights) - 1
