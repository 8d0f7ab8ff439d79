# Two commands: `make run` brings up a working console with demo data, `make test` runs
# every test on SQLite and then on PostgreSQL.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint typecheck format audit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

run: $(VENV)/.runtime-installed
	./scripts/run.sh

test: $(VENV)/.dev-installed
	./scripts/test.sh

# The inner loop: SQLite only, no browser tests, no schemathesis run, no lint. `make test`
# before pushing. Extra pytest arguments: make test-fast ARGS="-k budgets -x"
test-fast: $(VENV)/.dev-installed
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest -m "not browser and not schemathesis" -q $(ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy over webapp/ with the settings in pyproject.toml ([tool.mypy]); `make test` runs it
# after ruff and before pytest.
typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Known vulnerabilities in every package installed in .venv (runtime and test), from the
# Python Packaging Advisory Database through PyPI's API: it needs network, and fails
# (rather than passing unchecked) when PyPI cannot be reached. See the README.
$(VENV)/.audit-installed: requirements-audit.txt $(VENV)/.dev-installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-audit.txt
	touch $@

audit: $(VENV)/.audit-installed
# --skip-editable: the Python client (clients/python) is installed from this repository,
# not from PyPI, so there is nothing to look up for it.
	@$(BIN)/pip-audit --strict --skip-editable --progress-spinner off --desc off || { \
	  echo "make audit: vulnerabilities found, or PyPI's vulnerability API could not be" >&2; \
	  echo "reached (no offline database exists): run it where PyPI is reachable." >&2; \
	  exit 1; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache test-artifacts
