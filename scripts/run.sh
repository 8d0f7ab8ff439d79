#!/usr/bin/env bash
# Bring up the console on SQLite (or DATABASE_URL): migrate, seed, load demo data and
# create an admin the first time, then serve on http://127.0.0.1:${PORT:-5000}.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLASK_APP=wsgi
FLASK=.venv/bin/flask
ADMIN_EMAIL=${ADMIN_EMAIL:-admin@example.com}

"$FLASK" db upgrade
"$FLASK" seed --if-empty
"$FLASK" demo-data --days 30 --requests "${DEMO_REQUESTS:-20000}" --if-empty
"$FLASK" create-admin "$ADMIN_EMAIL" --generate-password --if-no-users

echo
echo "Console: http://127.0.0.1:${PORT:-5000}  (sign in as $ADMIN_EMAIL)"
echo "Lost the password? .venv/bin/flask create-admin other@example.com creates another admin."
echo
exec "$FLASK" run --host 127.0.0.1 --port "${PORT:-5000}"
