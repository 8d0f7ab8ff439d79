#!/usr/bin/env bash
# Bring up the console on SQLite (or DATABASE_URL): migrate, seed, load demo data and
# create an admin the first time, then serve on http://127.0.0.1:${PORT:-5000}.
# One process does it all (`flask start`): a second start pays one import of the app.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLASK_APP=wsgi
exec .venv/bin/flask start --host 127.0.0.1 --port "${PORT:-5000}" \
  --admin-email "${ADMIN_EMAIL:-admin@example.com}" --demo-requests "${DEMO_REQUESTS:-20000}"
