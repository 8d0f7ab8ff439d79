"""The configuration revision: read it, and bump it inside a configuration change.

Every use case that can change what GET /api/v1/config answers calls
``bump_config_revision()`` in its own transaction, after its other writes (the last
statement before the audit row and the commit): the row lock it takes is then held only
while the transaction commits, and it never waits for another lock while holding it, so
two changes cannot deadlock on it. A single row serialises configuration changes; they
are rare admin actions, so that costs nothing noticeable, and readers never wait for it
(a plain SELECT takes no row lock).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import ConfigRevision

ROW_ID = 1


def current_revision() -> int:
    """The revision now committed (0 before the first change)."""
    found = db.session.scalar(select(ConfigRevision.revision).where(ConfigRevision.id == ROW_ID))
    return int(found or 0)


def bump_config_revision() -> int:
    """Add one to the revision in the open transaction and return the new value. An
    upsert, so a missing row (an emptied table) starts again instead of bumping nothing."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(ConfigRevision).values(id=ROW_ID, revision=1)
    statement = statement.on_conflict_do_update(
        index_elements=["id"], set_={"revision": ConfigRevision.revision + 1}
    ).returning(ConfigRevision.revision)
    return int(db.session.scalar(statement) or 0)
