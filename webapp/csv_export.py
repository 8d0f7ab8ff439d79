"""CSV downloads, one writer for all of them (usage logs, spending tables, audit log):
every cell through ``csv_safe``, written in chunks as the rows come, under the reader's
database role."""

from __future__ import annotations

import csv
import functools
import io
import itertools
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Response, stream_with_context
from flask_login import current_user

from webapp.rls import use_database_role
from webapp.services.core.serialization import to_jsonable

FORMULA_STARTS = frozenset("=+-@")
CHUNK_CHARACTERS = 64_000
WRITE_BATCH = 200


def csv_safe(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe (OWASP's
    advice for CSV injection): text starting with =, +, -, @ or their full-width and small
    forms (＝, ﹦, …: spreadsheets fold them), and text starting with any whitespace or
    control character (LF, space, tab, CR: spreadsheets trim them and then see a formula).
    Numbers pass unchanged."""
    value = to_jsonable(value)
    if not isinstance(value, str):
        return value
    return _guarded(value)


@functools.lru_cache(maxsize=4096)
def _risky_start(first: str) -> bool:
    return (
        unicodedata.normalize("NFKC", first)[:1] in FORMULA_STARTS
        or first.isspace()
        or unicodedata.category(first) in ("Cc", "Cf")
    )


def _guarded(text: str) -> str:
    """``csv_safe`` for text (the rule looks at the first character only, so it is
    decided once per distinct first character)."""
    if text and _risky_start(text[0]):
        return "'" + text
    return text


def _as_is(value: Any) -> Any:
    return value


def _iso(value: date) -> str:
    return value.isoformat()  # starts with a digit: never a formula


def _decimal(value: Decimal) -> str:
    return _guarded(str(value))


# The cell of each value type a database row holds, exactly as ``csv_safe`` makes it,
# without its chain of type tests per cell (the usage export writes millions of cells).
# UUIDs, integers and floats pass as they are: the csv writer writes str() of them, as
# to_jsonable would, and numbers pass the guard unchanged. Other types take csv_safe.
_CELL: dict[type, Callable[[Any], Any]] = {
    str: _guarded,
    type(None): _as_is,
    int: _as_is,
    float: _as_is,
    bool: _as_is,
    uuid.UUID: _as_is,
    Decimal: _decimal,
    datetime: _iso,
    date: _iso,
}


def csv_cells(row: Sequence[Any]) -> list[Any]:
    """Every value of ``row`` through the guard, as the csv writer is to write it."""
    cell = _CELL.get
    return [cell(type(value), csv_safe)(value) for value in row]


def guard_columns(text_columns: Sequence[int]) -> Callable[[Sequence[Any]], list[Any]]:
    """The cells of rows whose columns other than ``text_columns`` are already the text
    ``csv_safe`` makes (ids, counts, amounts, ISO timestamps: none can start like a
    formula): only the text columns go through the guard."""

    def cells(row: Sequence[Any]) -> list[Any]:
        found = list(row)
        for index in text_columns:
            if found[index]:
                found[index] = _guarded(found[index])
        return found

    return cells


def csv_download(
    filename: str,
    header: Sequence[str],
    rows: Callable[[], Iterable[Sequence[Any]]],
    *,
    cells: Callable[[Sequence[Any]], list[Any]] = csv_cells,
) -> Response:
    """A streamed ``text/csv`` attachment: ``header``, then every row ``rows()`` yields,
    each through ``cells`` (``csv_cells``: every value guarded; ``guard_columns`` for rows
    whose non-text columns are written already).

    The request's teardown resets the database role before the body streams; the
    generator runs in a re-pushed context, so it takes the signed-in role up again."""
    role, user_id = current_user.role, current_user.id

    def lines() -> Iterator[str]:
        use_database_role(role, user_id)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        remaining = iter(rows())
        # Rows go to the writer a batch at a time (writerows: half the cost of writerow).
        while batch := list(itertools.islice(remaining, WRITE_BATCH)):
            writer.writerows(map(cells, batch))
            if buffer.tell() > CHUNK_CHARACTERS:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
