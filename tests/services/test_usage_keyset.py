"""Keyset pages of raw usage: every row exactly once, ties on created_at split by id, and
on PostgreSQL a deep cursor is one index range (the row comparison), not a filter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from tests.usage_rows import insert_usage
from webapp.models import UsageLog
from webapp.services.usage.logs import UsageFilter, before_keyset, iter_usage, list_usage

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_pages_visit_every_row_once_across_equal_timestamps(db):
    # Five rows share one timestamp, so page boundaries fall inside the tie.
    stamps = [NOW] * 5 + [NOW - timedelta(minutes=m) for m in range(1, 8)]
    rows = insert_usage({"created_at": stamp} for stamp in stamps)
    expected = sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)

    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = list_usage(UsageFilter(), limit=3, cursor=cursor)
        seen.extend(row["id"] for row in page)
        pages += 1
        if cursor is None:
            break
    assert seen == [row["id"] for row in expected]
    assert pages == 4
    assert [row["id"] for row in iter_usage(UsageFilter())] == seen


def test_before_keyset_keeps_only_older_rows_or_smaller_ids_at_the_same_time(db):
    rows = insert_usage({"created_at": NOW} for _ in range(3))
    rows += insert_usage([{"created_at": NOW - timedelta(seconds=1)}])
    middle = sorted(r["id"] for r in rows[:3])[1]
    condition = before_keyset(UsageLog.created_at, UsageLog.id, (NOW, middle))
    kept = set(db.session.scalars(select(UsageLog.id).where(condition)))
    assert kept == {min(r["id"] for r in rows[:3]), rows[3]["id"]}


def test_a_deep_cursor_is_an_index_range_on_postgresql(db, dialect):
    if dialect != "postgresql":
        pytest.skip("query plans are PostgreSQL's")
    insert_usage({"created_at": NOW - timedelta(hours=h)} for h in range(200))
    db.session.execute(text("ANALYZE ai_usage_logs"))
    query = select(UsageLog.id).where(
        before_keyset(UsageLog.created_at, UsageLog.id, (NOW - timedelta(hours=150), NOW_ID))
    )
    query = query.order_by(UsageLog.created_at.desc(), UsageLog.id.desc()).limit(50)
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(db.session.scalars(text(f"EXPLAIN {compiled}")))
    assert "Index Cond: (ROW(created_at, id) < ROW(" in plan, plan


NOW_ID = uuid.UUID(int=2**128 - 1)


def test_csv_rows_write_what_the_typed_rows_write(db):
    from webapp.csv_export import csv_cells, guard_columns
    from webapp.services.usage.logs import TEXT_COLUMNS, usage_csv_rows

    stamps = [NOW.replace(microsecond=0), NOW.replace(microsecond=120000), NOW]
    insert_usage({"created_at": stamp} for stamp in stamps)
    typed = [csv_cells(list(row.values())) for row in iter_usage(UsageFilter())]
    fast = [guard_columns(TEXT_COLUMNS)(row) for row in usage_csv_rows(UsageFilter())]

    def written(rows):  # what the csv writer makes of each cell: str(), None as ""
        return [["" if v is None else str(v) for v in row] for row in rows]

    assert written(typed) == written(fast)
    assert {row[1][19:] for row in written(fast)} >= {"+00:00", ".120000+00:00"}
