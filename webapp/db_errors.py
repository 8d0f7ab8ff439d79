"""Database errors without the values they were about.

``hide_parameters`` keeps bound values out of SQLAlchemy's message, but PostgreSQL's own
message carries them in its DETAIL (``Key (email)=(…) already exists``, ``Failing row
contains (…)``) and CONTEXT (``JSON data, line 1: {"…``) lines, and psycopg puts those in
the exception's text, so they reached the log with every traceback. Here the driver's
exception keeps only the primary message and the SQLSTATE; the full diagnostics stay on
``error.diag`` for code that needs a field such as ``constraint_name``.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext


def _without_values(error: BaseException) -> str | None:
    """Rewrite the driver exception's text to its primary message; that text, or None."""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary:
        return None
    sqlstate = getattr(error, "sqlstate", None)
    text = f"{primary} (SQLSTATE {sqlstate})" if sqlstate else primary
    error.args = (text,)
    return text


@event.listens_for(Engine, "handle_error")
def _strip_error_details(context: ExceptionContext) -> None:
    if context.dialect is None or context.dialect.name != "postgresql":
        return
    original = context.original_exception
    text = _without_values(original)
    wrapper = context.sqlalchemy_exception
    if text is not None and wrapper is not None and len(wrapper.args) == 1:
        # SQLAlchemy wrote the driver's text into its own message when wrapping it.
        kind = f"{type(original).__module__}.{type(original).__name__}"
        wrapper.args = (f"({kind}) {text}",)
