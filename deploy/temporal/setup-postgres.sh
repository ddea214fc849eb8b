#!/bin/sh
# One-shot schema job for Temporal's own PostgreSQL (run by temporalio/admin-tools).
# Idempotent: on later runs it only applies schema versions newer than the installed ones,
# which is also how a Temporal server upgrade gets its schema changes.
set -eu

: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
DB_PORT="${DB_PORT:-5432}"
SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

echo "waiting for PostgreSQL at ${POSTGRES_SEEDS}:${DB_PORT}"
tries=0
until nc -z "${POSTGRES_SEEDS}" "${DB_PORT}"; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "PostgreSQL did not come up"; exit 1; }
  sleep 2
done

sql_tool() {
  temporal-sql-tool --plugin postgres12 --ep "${POSTGRES_SEEDS}" -p "${DB_PORT}" -u "${POSTGRES_USER}" "$@"
}

setup_database() {
  db="$1"
  versioned="$2"
  if sql_tool --db "$db" update-schema -d "$versioned" 2>/dev/null; then
    echo "database $db: schema up to date"
    return
  fi
  echo "database $db: first setup"
  sql_tool --db "$db" create || echo "database $db already exists"
  sql_tool --db "$db" setup-schema -v 0.0
  sql_tool --db "$db" update-schema -d "$versioned"
}

setup_database temporal "${SCHEMA_ROOT}/temporal/versioned"
setup_database temporal_visibility "${SCHEMA_ROOT}/visibility/versioned"
echo "Temporal schema ready"
