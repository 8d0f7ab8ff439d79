"""The CSV writer's fast cells write exactly what ``csv_safe`` writes, type by type."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from webapp.csv_export import csv_cells, csv_safe

ROW = [
    "=1+1",
    "\u00a0=1+1",
    "＝1",
    "-2",
    "plain",
    "",
    None,
    0,
    -7,
    True,
    1.5,
    uuid.UUID(int=123),
    Decimal("0.300000"),
    Decimal("-1.250000"),
    datetime(2026, 11, 19, 8, 30, 1, 5, tzinfo=UTC),
    date(2026, 11, 19),
    {"k": "=x"},
    ["@a"],
]


def _written(cells: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


def test_cells_write_what_csv_safe_writes_for_every_type():
    assert _written(csv_cells(ROW)) == _written([csv_safe(value) for value in ROW])
    assert csv_cells(ROW)[:4] == ["'=1+1", "'\u00a0=1+1", "'＝1", "'-2"]
    assert csv_cells([Decimal("-1.250000")]) == ["'-1.250000"]
