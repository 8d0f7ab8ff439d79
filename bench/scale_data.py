"""The realistic data set of issue 17, generated inside PostgreSQL (no rows cross the wire).

40 features, 8 providers, 30 models, each feature served by 3 models; usage spread over
the ``days`` days up to ``now`` (the current hour included, as under live traffic: the
rolling windows read its raw rows) with a daily cycle, 1 % pending, 2 % without a
feature; one health check per provider every 3 minutes over the last 105 days (~400k
rows). Used by ``bench.scale``; ``load`` needs an app context on an empty, seeded database.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlalchemy import text

FEATURES, PROVIDERS, MODELS, MODELS_PER_FEATURE = 40, 8, 30, 3
HEALTH_DAYS, HEALTH_EVERY_SECONDS = 105, 180

_CATALOG = (
    """
    INSERT INTO ai_providers (id, name, display_name, provider_type)
    SELECT gen_random_uuid(), 'bench-provider-' || g, 'Bench provider ' || g, 'openai'
    FROM generate_series(1, GREATEST(0, :providers - (SELECT count(*) FROM ai_providers))) g
    """,
    """
    INSERT INTO ai_models (id, name, display_name, provider_id, model_type,
                           input_price_per_million, output_price_per_million)
    SELECT gen_random_uuid(), 'bench-model-' || g, 'Bench model ' || g,
           (SELECT id FROM ai_providers ORDER BY name OFFSET (g % :providers) LIMIT 1),
           'llm', 0.15 + (g % 7) * 0.5, 0.60 + (g % 5) * 2
    FROM generate_series(1, GREATEST(0, :models - (SELECT count(*) FROM ai_models))) g
    """,
    """
    INSERT INTO ai_features (id, name, display_name, model_type)
    SELECT gen_random_uuid(), 'bench-feature-' || g, 'Bench feature ' || g, 'llm'
    FROM generate_series(1, GREATEST(0, :features - (SELECT count(*) FROM ai_features))) g
    """,
)

# Row g of n lands in the day-long slice floor(g * days / n) of the ``days`` days before
# ``now`` (oldest first, as usage arrives, so one day's rows sit together on disk); the
# time within the slice u + 0.1 sin(2πu) is monotone in u and gives a density that swings
# ±60 % around the mean over the day. The last slice ends at ``now``.
_USAGE = """
WITH f AS (SELECT id, (row_number() OVER (ORDER BY name) - 1)::int AS n FROM ai_features),
     m AS (SELECT id, input_price_per_million AS ip, output_price_per_million AS op,
                  (row_number() OVER (ORDER BY name) - 1)::int AS n FROM ai_models),
     r AS (
        SELECT g, floor(random() * :features)::int AS feature_n,
               floor(random() * :per_feature)::int AS pick,
               random() AS roll, random() AS day_u,
               (100 + floor(random() * 3000))::int AS input_tokens,
               floor(random() * 1200)::int AS output_tokens,
               (200 + floor(-ln(1 - random()) * 700))::int AS ms
        FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) g
     )
INSERT INTO ai_usage_logs (id, feature_id, model_id, input_tokens, output_tokens, tokens_used,
                           response_time_ms, cost_usd, status, created_at)
SELECT gen_random_uuid(),
       CASE WHEN r.roll < 0.02 THEN NULL ELSE f.id END,
       m.id, r.input_tokens, r.output_tokens, r.input_tokens + r.output_tokens, r.ms,
       round((r.input_tokens * m.ip + r.output_tokens * m.op) / 1000000, 6),
       CASE WHEN r.roll >= 0.99 THEN 'pending' WHEN r.roll >= 0.97 THEN 'error'
            WHEN r.roll >= 0.965 THEN 'timeout' ELSE 'success' END,
       CAST(:now AS timestamptz) - make_interval(days => :days)
         + make_interval(days => floor(r.g::numeric * :days / :rows)::int)
         + make_interval(secs => 86400 * (r.day_u + 0.1 * sin(2 * pi() * r.day_u)))
FROM r JOIN f ON f.n = r.feature_n
       JOIN m ON m.n = (r.feature_n * :per_feature + r.pick) % :models
"""

_HEALTH = """
INSERT INTO provider_health_logs (id, provider_id, status, response_time_ms, error_rate,
                                  throughput, health_score, checked_at)
SELECT gen_random_uuid(), p.id,
       CASE WHEN random() < 0.03 THEN 'degraded' ELSE 'healthy' END,
       (150 + floor(random() * 400))::int, round((random() * 2)::numeric, 2),
       (10 + floor(random() * 90))::int, (80 + floor(random() * 20))::int,
       CAST(:now AS timestamptz) - make_interval(secs => s)
FROM ai_providers p,
     generate_series(0, :health_days * 86400 - 1, :every) s
"""


def load(rows: int, days: int, now: datetime, chunk: int = 500_000) -> dict[str, float]:
    """Catalog, ``rows`` usage rows, ~400k health rows and the rebuilt rollup, committed.
    Returns seconds per step."""
    from webapp.extensions import db
    from webapp.rls import OPERATOR, use_database_role
    from webapp.services.usage import partitions
    from webapp.services.usage.rollup import recompute_rollup

    use_database_role(OPERATOR)
    seconds: dict[str, float] = {}
    shape = {
        "features": FEATURES,
        "providers": PROVIDERS,
        "models": MODELS,
        "per_feature": MODELS_PER_FEATURE,
    }
    for statement in _CATALOG:
        db.session.execute(text(statement), shape)
    db.session.commit()

    # The months of the history get their partitions first, as they would have had.
    partitions.create_partitions(
        db.session.connection(), (now - timedelta(days=days)).date(), now.date()
    )
    db.session.commit()
    started = time.perf_counter()
    for first in range(0, rows, chunk):
        last = min(rows, first + chunk) - 1
        db.session.execute(
            text(_USAGE),
            {**shape, "first": first, "last": last, "rows": rows, "days": days, "now": now},
        )
        db.session.commit()
    seconds["usage"] = time.perf_counter() - started

    started = time.perf_counter()
    db.session.execute(
        text(_HEALTH), {"now": now, "health_days": HEALTH_DAYS, "every": HEALTH_EVERY_SECONDS}
    )
    db.session.commit()
    seconds["health"] = time.perf_counter() - started

    started = time.perf_counter()
    recompute_rollup()
    db.session.commit()
    seconds["rollup"] = time.perf_counter() - started
    started = time.perf_counter()
    _vacuum()
    seconds["vacuum"] = time.perf_counter() - started
    return seconds


def _vacuum() -> None:
    """VACUUM (ANALYZE) the loaded tables, as autovacuum would have by the time a table of
    this size was read in production. Without it autovacuum starts on the fresh rows
    minutes later, in the middle of the measurements, and takes a core for minutes."""
    from webapp.extensions import db

    db.session.commit()
    if db.engine.dialect.name != "postgresql":
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM (ANALYZE)"))
