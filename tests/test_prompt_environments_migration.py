"""Migration 0009: the versions active before it are live in production after."""

from __future__ import annotations

import uuid

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from tests import factories
from webapp.services.prompts import environments


def test_active_versions_become_live_in_production(app, db):
    feature_id = factories.feature("chatbot").id
    db.session.commit()
    db.session.remove()
    downgrade(revision="0008")
    try:
        ids = {n: uuid.uuid4() for n in (1, 2, 3)}
        with db.engine.begin() as connection:
            if db.engine.dialect.name == "postgresql":  # row-level security: as an operator
                connection.execute(
                    text("SELECT set_config('app.user_role', 'platform_admin', true)")
                )
            for version, prompt_id in ids.items():
                connection.execute(
                    text(
                        "INSERT INTO ai_prompts (id, name, content, version, feature_id, "
                        "is_active) VALUES (:id, 'greeting', 'Hi', :v, :f, :a)"
                    ),
                    {
                        "id": prompt_id.hex if db.engine.dialect.name == "sqlite" else prompt_id,
                        "v": version,
                        "f": feature_id.hex if db.engine.dialect.name == "sqlite" else feature_id,
                        "a": version == 2,
                    },
                )
    finally:
        upgrade()
    live = environments.live_prompts(feature_id, "production")
    assert [(p["prompt_id"], p["version"]) for p in live] == [(ids[2], 2)]
    assert environments.live_prompts(feature_id, "staging") == []
    (entry,) = environments.history(feature_id, "greeting")
    assert (entry.activation.action, entry.activated_by_email) == ("activate", None)
