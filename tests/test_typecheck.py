"""mypy checks webapp/ and the Python client (`make typecheck`); `make test` runs it
between ruff and pytest."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.test_dependencies import make_plan
from webapp.models import Feature, UsageLog
from webapp.models.base import Base, Model, db

PROJECT = Path(__file__).resolve().parent.parent


def test_mypy_is_configured_for_webapp_and_pinned():
    config = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["files"] == ["webapp", "clients/python/src"]
    assert config["python_version"] == "3.11"
    for setting in ("check_untyped_defs", "warn_unused_ignores", "no_implicit_optional"):
        assert config[setting] is True, setting
    pins = (PROJECT / "requirements-dev.txt").read_text().splitlines()
    assert "mypy==2.4.1" in pins


def test_make_typecheck_runs_mypy():
    plan = make_plan("-o", ".venv/.dev-installed", "typecheck")
    assert plan.strip().splitlines() == [".venv/bin/mypy"]


def test_the_suite_type_checks_after_ruff_and_before_pytest():
    script = (PROJECT / "scripts" / "test.sh").read_text()
    ruff = script.index('"$BIN/ruff" format --check .')
    typecheck = script.index("make --no-print-directory typecheck")
    pytest_run = script.index('"$BIN/python" -m pytest')
    assert ruff < typecheck < pytest_run


def test_models_subclass_flask_sqlalchemys_model_at_run_time():
    # The type checker is shown a class of its own for Model (webapp/models/base.py); at
    # run time it must stay db.Model, with Base's naming convention.
    assert Model is db.Model
    assert issubclass(Feature, db.Model) and issubclass(UsageLog, db.Model)
    assert Feature.metadata is db.metadata
    assert db.metadata.naming_convention == Base.metadata.naming_convention
