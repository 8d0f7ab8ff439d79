"""Usage at scale: keyset index, ai_usage_logs partitioned by month (PostgreSQL).

Revision ID: 0012_scale
Revises: 0012_defects
Create Date: 2026-12-02

- ai_usage_logs: the index on created_at becomes (created_at, id), so the usage lists'
  row comparison ``(created_at, id) < (:t, :id)`` is one index range, and ties on
  created_at come out in order without a sort.
- The primary key becomes (id, created_at): a partitioned table's unique constraints must
  hold the partition key. ``id`` stays unique in practice (random UUIDs); the uniqueness
  ingestion relies on, one row per (environment, event id), lives in usage_event_ids
  (0008), which is not partitioned. No foreign key references ai_usage_logs.
- PostgreSQL: ai_usage_logs becomes PARTITION BY RANGE (created_at), one partition per
  UTC month from the oldest row's month (or 31 days back) to three months ahead, and a
  default partition.
  The rows move in this transaction (counted before and after: a difference aborts the
  upgrade); policies, RLS and grants are carried over from the old table. SQLite keeps a
  plain table (its primary key changes the same way).

Downgrade moves the rows back into a plain table with the old primary key and index.
"""

from datetime import UTC, datetime, timedelta

from alembic import op
from sqlalchemy import text

revision = "0012_scale"
down_revision = "0012_defects"
branch_labels = None
depends_on = None

TABLE = "ai_usage_logs"
OLD = "ai_usage_logs_unpartitioned"
MONTHS_AHEAD = 3
# Index name → (columns, WHERE); the keyset index differs between the two ends.
INDEXES = {
    "ix_ai_usage_logs_feature_id": ("feature_id", None),
    "ix_ai_usage_logs_model_id": ("model_id", None),
    "ix_ai_usage_logs_organization_id": ("organization_id", None),
    "ix_ai_usage_logs_status": ("status", None),
    "ix_ai_usage_logs_unknown_model_name": (
        "model_name",
        "model_id IS NULL AND model_name IS NOT NULL",
    ),
}
FOREIGN_KEYS = (
    ("fk_ai_usage_logs_feature_id_ai_features", "feature_id", "ai_features"),
    ("fk_ai_usage_logs_model_id_ai_models", "model_id", "ai_models"),
    ("fk_ai_usage_logs_prompt_id_ai_prompts", "prompt_id", "ai_prompts"),
    ("fk_ai_usage_logs_api_key_id_api_keys", "api_key_id", "api_keys"),
)


def upgrade():
    if op.get_context().dialect.name != "postgresql":
        with op.batch_alter_table(TABLE) as batch_op:
            batch_op.drop_constraint("pk_ai_usage_logs", type_="primary")
            batch_op.create_primary_key("pk_ai_usage_logs", ["id", "created_at"])
        op.create_index("ix_ai_usage_logs_created_at_id", TABLE, ["created_at", "id"])
        op.drop_index("ix_ai_usage_logs_created_at", table_name=TABLE)
        return
    _rebuild(partitioned=True)


def downgrade():
    if op.get_context().dialect.name != "postgresql":
        op.create_index("ix_ai_usage_logs_created_at", TABLE, ["created_at"])
        op.drop_index("ix_ai_usage_logs_created_at_id", table_name=TABLE)
        with op.batch_alter_table(TABLE) as batch_op:
            batch_op.drop_constraint("pk_ai_usage_logs", type_="primary")
            batch_op.create_primary_key("pk_ai_usage_logs", ["id"])
        return
    _rebuild(partitioned=False)


def _rebuild(partitioned):
    """Replace ai_usage_logs by a partitioned (or plain) copy holding every row."""
    bind = op.get_bind()
    # FORCE ROW LEVEL SECURITY binds the owner too: read and write as the operator.
    op.execute("SELECT set_config('app.user_role', 'platform_admin', true)")
    policies = bind.execute(
        text(
            "SELECT policyname, permissive, roles::text[], cmd, qual, with_check "
            "FROM pg_policies WHERE schemaname = current_schema() AND tablename = :t"
        ),
        {"t": TABLE},
    ).all()
    grants = bind.execute(
        text(
            "SELECT grantee, string_agg(privilege_type, ', ') FROM "
            "information_schema.role_table_grants WHERE table_schema = current_schema() "
            "AND table_name = :t AND grantee <> current_user GROUP BY grantee"
        ),
        {"t": TABLE},
    ).all()
    before = bind.scalar(text(f"SELECT count(*) FROM {TABLE}"))

    # Index and primary key names are unique per schema: free them on the old table.
    op.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    op.execute(f"ALTER TABLE {OLD} DROP CONSTRAINT pk_ai_usage_logs")
    for name in (*INDEXES, "ix_ai_usage_logs_created_at", "ix_ai_usage_logs_created_at_id"):
        op.execute(f"DROP INDEX IF EXISTS {name}")

    suffix = " PARTITION BY RANGE (created_at)" if partitioned else ""
    op.execute(
        f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS){suffix}"
    )
    key = "id, created_at" if partitioned else "id"
    op.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT pk_ai_usage_logs PRIMARY KEY ({key})")
    for name, column, target in FOREIGN_KEYS:
        op.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
            f"REFERENCES {target} (id) ON DELETE SET NULL"
        )
    indexes = dict(INDEXES)
    if partitioned:
        indexes["ix_ai_usage_logs_created_at_id"] = ("created_at, id", None)
    else:
        indexes["ix_ai_usage_logs_created_at"] = ("created_at", None)
    for name, (columns, where) in indexes.items():
        condition = f" WHERE {where}" if where else ""
        op.execute(f"CREATE INDEX {name} ON {TABLE} ({columns}){condition}")

    if partitioned:
        from webapp.services.usage.partitions import (
            create_default_partition,
            create_partitions,
            months,
            next_month,
        )

        oldest = bind.scalar(text(f"SELECT min(created_at) FROM {OLD}"))
        today = datetime.now(UTC).date()
        last = today.replace(day=1)
        for _ in range(MONTHS_AHEAD):
            last = next_month(last)
        # Applications may report events up to USAGE_MAX_AGE_DAYS (30 by default) old.
        recent = today - timedelta(days=31)
        first = min(oldest.date(), recent) if oldest else recent
        assert list(months(first, last))
        create_partitions(bind, first, last)
        create_default_partition(bind)

    op.execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")
    after = bind.scalar(text(f"SELECT count(*) FROM {TABLE}"))
    if after != before:
        raise RuntimeError(f"{TABLE}: {before} rows before the move, {after} after")
    op.execute(f"DROP TABLE {OLD}")

    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    for name, permissive, roles, command, qual, with_check in policies:
        clause = f"CREATE POLICY {name} ON {TABLE} AS {permissive} FOR {command}"
        clause += f" TO {', '.join(roles)}"
        if qual is not None:
            clause += f" USING ({qual})"
        if with_check is not None:
            clause += f" WITH CHECK ({with_check})"
        op.execute(clause)
    for grantee, privileges in grants:
        op.execute(f'GRANT {privileges} ON {TABLE} TO "{grantee}"')
    op.execute(f"ANALYZE {TABLE}")
