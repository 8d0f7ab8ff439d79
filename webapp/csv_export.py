"""CSV downloads, one writer for all of them (usage logs, spending tables, audit log):
every cell through ``csv_safe``, written in chunks as the rows come, under the reader's
database role."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from flask import Response, stream_with_context
from flask_login import current_user

from webapp.rls import use_database_role
from webapp.services.core.serialization import to_jsonable

FORMULA_STARTS = frozenset("=+-@")
CHUNK_CHARACTERS = 64_000


def csv_safe(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe (OWASP's
    advice for CSV injection): text starting with =, +, -, @ or their full-width and small
    forms (＝, ﹦, …: spreadsheets fold them), and text starting with any whitespace or
    control character (LF, space, tab, CR: spreadsheets trim them and then see a formula).
    Numbers pass unchanged."""
    value = to_jsonable(value)
    if not isinstance(value, str) or not value:
        return value
    first = value[0]
    if (
        unicodedata.normalize("NFKC", first)[:1] in FORMULA_STARTS
        or first.isspace()
        or unicodedata.category(first) in ("Cc", "Cf")
    ):
        return "'" + value
    return value


def csv_download(
    filename: str, header: Sequence[str], rows: Callable[[], Iterable[Sequence[Any]]]
) -> Response:
    """A streamed ``text/csv`` attachment: ``header``, then every row ``rows()`` yields.

    The request's teardown resets the database role before the body streams; the
    generator runs in a re-pushed context, so it takes the signed-in role up again."""
    role, user_id = current_user.role, current_user.id

    def lines() -> Iterator[str]:
        use_database_role(role, user_id)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for row in rows():
            writer.writerow([csv_safe(value) for value in row])
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
