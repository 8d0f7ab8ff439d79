"""Migration 0012_defects: model types normalised to llm | vision | embedding (unknown
ones stop it, naming the models), and each feature gets the type it needs."""

from __future__ import annotations

import uuid

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from webapp.extensions import db as _db
from webapp.models import AIModel, Feature


def _id(value: uuid.UUID):
    return value.hex if _db.engine.dialect.name == "sqlite" else value


def _insert(connection, sql: str, **values) -> None:
    connection.execute(
        text(sql), {k: _id(v) if isinstance(v, uuid.UUID) else v for k, v in values.items()}
    )


def _before_0012(rows) -> dict[str, uuid.UUID]:
    """Downgrade to 0011 and insert providers, models (name, type), features and active
    production assignments as they could be before the migration."""
    _db.session.remove()
    downgrade(revision="0012_creds")  # the revision before this one
    ids: dict[str, uuid.UUID] = {}
    with _db.engine.begin() as connection:
        if _db.engine.dialect.name == "postgresql":  # row-level security: as an operator
            connection.execute(text("SELECT set_config('app.user_role', 'platform_admin', true)"))
        ids["provider"] = uuid.uuid4()
        _insert(
            connection,
            "INSERT INTO ai_providers (id, name, display_name, provider_type) "
            "VALUES (:id, 'openai', 'OpenAI', 'openai')",
            id=ids["provider"],
        )
        for name, model_type in rows["models"]:
            ids[name] = uuid.uuid4()
            _insert(
                connection,
                "INSERT INTO ai_models (id, name, display_name, provider_id, model_type) "
                "VALUES (:id, :name, :name, :provider, :type)",
                id=ids[name],
                name=name,
                provider=ids["provider"],
                type=model_type,
            )
        for name in rows["features"]:
            ids[name] = uuid.uuid4()
            _insert(
                connection,
                "INSERT INTO ai_features (id, name, display_name) VALUES (:id, :name, :name)",
                id=ids[name],
                name=name,
            )
        for feature, model, environment in rows["assignments"]:
            _insert(
                connection,
                "INSERT INTO feature_model_assignments (id, feature_id, model_id, environment, "
                "is_active) VALUES (:id, :f, :m, :e, :a)",
                id=uuid.uuid4(),
                f=ids[feature],
                m=ids[model],
                e=environment,
                a=True,
            )
    return ids


def test_types_are_normalised_and_features_get_theirs(app, db):
    _before_0012(
        {
            "models": [
                ("gpt", "LLM"),
                ("claude", " llm "),
                ("vis", "Image"),
                ("emb", "embeddings"),
            ],
            "features": ["chatbot", "photo-tagging", "ai-search", "summaries", "finder", "idle"],
            "assignments": [
                ("summaries", "claude", "production"),
                ("finder", "gpt", "staging"),  # no production model: staging's type
                ("finder", "emb", "development"),
                ("ai-search", "gpt", "production"),  # the seed's name wins
            ],
        }
    )
    upgrade()
    types = {m.name: m.model_type for m in db.session.query(AIModel)}
    assert types == {"gpt": "llm", "claude": "llm", "vis": "vision", "emb": "embedding"}
    features = {f.name: f.model_type for f in db.session.query(Feature)}
    assert features == {
        "chatbot": "llm",
        "photo-tagging": "vision",
        "ai-search": "embedding",
        "summaries": "llm",
        "finder": "embedding",  # development sorts before staging
        "idle": "llm",
    }


def test_an_unknown_model_type_stops_the_upgrade_naming_the_model(app, db, capfd):
    rows = {"models": [("gpt", "llm"), ("odd", "Speech")], "features": [], "assignments": []}
    ids = _before_0012(rows)
    try:
        with pytest.raises(SystemExit):  # flask-migrate logs the error and exits 1
            upgrade()
        said = capfd.readouterr().err
        assert f"odd ({_id(ids['odd'])}): 'Speech'" in said
        assert "set each one's type, then upgrade again" in said and "gpt (" not in said
    finally:
        with _db.engine.begin() as connection:
            if _db.engine.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT set_config('app.user_role', 'platform_admin', true)")
                )
            connection.execute(text("UPDATE ai_models SET model_type = 'llm'"))
        upgrade()
