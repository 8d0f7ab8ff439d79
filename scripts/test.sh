#!/usr/bin/env bash
# The whole suite: lint, the type checker (mypy), then pytest on SQLite, then pytest on
# PostgreSQL. Without TEST_DATABASE_URL it starts this machine's PostgreSQL cluster and
# creates a test role and database. No PostgreSQL is a loud warning locally and a failure
# under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
mkdir -p test-artifacts

echo "== ruff =="
"$BIN/ruff" check .
"$BIN/ruff" format --check .

echo "== mypy =="
make --no-print-directory typecheck

echo "== pytest on SQLite =="
env -u TEST_DATABASE_URL "$BIN/python" -m pytest "$@"

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

start_local_postgres() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 1
  local cluster
  cluster=$(pg_lsclusters --no-header 2>/dev/null | head -n 1)
  if [ -z "$cluster" ]; then
    local version
    version=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
    [ -n "$version" ] || return 1
    pg_createcluster "$version" main >/dev/null
    cluster=$(pg_lsclusters --no-header | head -n 1)
  fi
  local version name status port
  read -r version name port status _ <<<"$cluster"
  if [ "$status" != "online" ]; then
    pg_ctlcluster "$version" "$name" start
  fi
  for _ in $(seq 1 30); do
    as_postgres psql -p "$port" -qAtc "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.5
  done
  as_postgres psql -p "$port" -v ON_ERROR_STOP=1 -qc "
    DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aipm_test') THEN
        CREATE ROLE aipm_test LOGIN PASSWORD 'aipm_test';
      END IF;
    END \$\$;" >/dev/null
  if ! as_postgres psql -p "$port" -qAtc "SELECT 1 FROM pg_database WHERE datname = 'aipm_test'" | grep -q 1; then
    as_postgres createdb -p "$port" -O aipm_test aipm_test
  fi
  # A second login role that owns nothing, as the application runs in production: the
  # row-level security tests connect with it (tables are granted by the tests).
  as_postgres psql -p "$port" -v ON_ERROR_STOP=1 -qc "
    DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aipm_test_app') THEN
        CREATE ROLE aipm_test_app LOGIN PASSWORD 'aipm_test_app';
      END IF;
    END \$\$;" >/dev/null
  export TEST_DATABASE_URL="postgresql+psycopg://aipm_test:aipm_test@127.0.0.1:$port/aipm_test"
  export TEST_APP_DATABASE_URL="postgresql+psycopg://aipm_test_app:aipm_test_app@127.0.0.1:$port/aipm_test"
  start_local_replica "$version" "$port"
}

# A streaming replica of the cluster, made with pg_basebackup from the same installation,
# for the read-replica tests (tests/deployment/test_read_replica.py): they pause its
# replay to tell it from the primary, which the test role may do once granted.
REPLICA_DIR=/var/tmp/aipm-test-replica
REPLICA_PORT=${REPLICA_PORT:-55433}
stop_local_replica() {
  if [ -f "$REPLICA_DIR/data/postmaster.pid" ]; then
    as_postgres "/usr/lib/postgresql/$1/bin/pg_ctl" -D "$REPLICA_DIR/data" -m fast -w stop >/dev/null || true
  fi
}
start_local_replica() {
  local version=$1 port=$2 bin="/usr/lib/postgresql/$1/bin"
  [ -x "$bin/pg_basebackup" ] || return 0
  stop_local_replica "$version"
  as_postgres psql -p "$port" -d aipm_test -v ON_ERROR_STOP=1 -qc "
    GRANT EXECUTE ON FUNCTION pg_wal_replay_pause() TO aipm_test;
    GRANT EXECUTE ON FUNCTION pg_wal_replay_resume() TO aipm_test;" >/dev/null
  rm -rf "$REPLICA_DIR"
  mkdir -p "$REPLICA_DIR"
  chown postgres "$REPLICA_DIR"
  chmod 700 "$REPLICA_DIR"
  as_postgres "$bin/pg_basebackup" -p "$port" -D "$REPLICA_DIR/data" -R -X stream
  # Debian keeps the configuration outside the data directory: the replica gets its own.
  as_postgres touch "$REPLICA_DIR/data/postgresql.conf"
  as_postgres cp "/etc/postgresql/$version/main/pg_hba.conf" "/etc/postgresql/$version/main/pg_ident.conf" "$REPLICA_DIR/data/"
  # fsync=off: a throwaway replica that must keep up with a suite emptying its tables
  # after every test, on the same cores (a CI run once found it 30 s behind).
  as_postgres "$bin/pg_ctl" -D "$REPLICA_DIR/data" -l "$REPLICA_DIR/log" -w -t 300 -o \
    "-p $REPLICA_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$REPLICA_DIR -c hot_standby=on -c fsync=off" \
    start >/dev/null
  trap 'stop_local_replica '"$version" EXIT
  export TEST_READ_DATABASE_URL="postgresql+psycopg://aipm_test:aipm_test@127.0.0.1:$REPLICA_PORT/aipm_test"
}

echo "== pytest on PostgreSQL =="
if [ -z "${TEST_DATABASE_URL:-}" ] && ! start_local_postgres; then
  echo "!!! No PostgreSQL found (set TEST_DATABASE_URL or install PostgreSQL)."
  echo "!!! The suite ran on SQLite only; production runs on PostgreSQL."
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 0
fi
"$BIN/python" -m pytest "$@"
