"""The audit log names its resources: ``platform_audit_logs.resource_name``.

Revision ID: 0012_forms
Revises: 0012_scale
Create Date: 2026-12-02

- platform_audit_logs gains ``resource_name`` (VARCHAR(300), NULL): the resource's name
  at write time ("AI Chatbot", "greeting v3", a user's email), so the audit page reads
  well after a rename or a delete.
- Backfill: the name of each resource that still exists, else the name kept in the row's
  own values (a delete's snapshot, a create's values); sign-in events and rows without a
  resource stay NULL. Audit rows are append-only (triggers since 0002, and no UPDATE
  policy under row-level security): the backfill lifts both for its one statement per
  kind and puts them back.

Downgrade drops the column (the names go; the rows are otherwise unchanged).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_forms"
down_revision = "0012_scale"
branch_labels = None
depends_on = None

TABLE = "platform_audit_logs"
# kind -> (table, SQL naming a row of it as ``r``)
NAMED = {
    "feature": ("ai_features", "r.display_name"),
    "model": ("ai_models", "r.display_name"),
    "provider": ("ai_providers", "r.display_name"),
    "prompt": ("ai_prompts", "r.name || ' v' || r.version"),
    "budget": ("ai_spending_budgets", "r.name"),
    "experiment": ("ai_experiments", "r.name"),
    "user": ("users", "r.email"),
    "api_key": ("api_keys", "r.name"),
}
# Keys of old_values / new_values that name the resource, in order of preference.
NAME_KEYS = ("display_name", "name", "email")


def _value(dialect: str, column: str, key: str) -> str:
    if dialect == "postgresql":
        return f"({TABLE}.{column} ->> '{key}')"
    return f"json_extract({TABLE}.{column}, '$.{key}')"


def _from_values(dialect: str, kind: str) -> str:
    """SQL for the name kept in the row's own values (new first, then old); a prompt's
    with its version, as the console names it ("greeting v3")."""
    found = []
    for column in ("new_values", "old_values"):
        if kind == "prompt":
            name, version = _value(dialect, column, "name"), _value(dialect, column, "version")
            found.append(f"({name} || ' v' || {version})")
        for key in NAME_KEYS:
            found.append(_value(dialect, column, key))
    return ", ".join(found)


def _backfill(dialect: str) -> None:
    for kind, (table, name) in NAMED.items():
        existing = f"(SELECT {name} FROM {table} r WHERE r.id = {TABLE}.resource_id)"
        op.execute(
            f"UPDATE {TABLE} SET resource_name = substr(COALESCE({existing}, "
            f"{_from_values(dialect, kind)}), 1, 300) "
            f"WHERE resource_type = '{kind}' AND resource_id IS NOT NULL"
        )


def upgrade():
    # Plain ADD COLUMN (no batch copy on SQLite: that would drop 0002's triggers).
    op.add_column(TABLE, sa.Column("resource_name", sa.String(300), nullable=True))
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        op.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER platform_audit_logs_append_only")
        op.execute(f"ALTER TABLE {TABLE} NO FORCE ROW LEVEL SECURITY")
        # The named tables keep row-level security: read them as an operator does (for
        # this transaction only).
        op.execute("SELECT set_config('app.user_role', 'platform_admin', true)")
        _backfill(dialect)
        op.execute("SELECT set_config('app.user_role', '', true)")
        op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER platform_audit_logs_append_only")
    else:
        op.execute("DROP TRIGGER platform_audit_logs_no_update")
        _backfill(dialect)
        op.execute(
            f"CREATE TRIGGER platform_audit_logs_no_update BEFORE UPDATE ON {TABLE} "
            "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: UPDATE refused'); END"
        )


def downgrade():
    # SQLite 3.35+ drops a column in place (the append-only triggers stay).
    op.drop_column(TABLE, "resource_name")
