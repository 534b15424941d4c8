#!/bin/sh
# Creates or upgrades Temporal's two Postgres databases (run by the `temporal-schema`
# one-shot of docker-compose.yml, in the temporalio/admin-tools image, before the server
# starts). Safe to run on every `docker compose up`: an existing database is only
# brought to the schema version of this admin-tools release, which is also how a
# Temporal upgrade migrates (pin temporalio/server and admin-tools to the same version).
set -eu

: "${POSTGRES_SEEDS:?the Postgres host}"
: "${DB_PORT:=5432}"
: "${POSTGRES_USER:?}"
: "${POSTGRES_PWD:?}"
: "${DBNAME:=temporal}"
: "${VISIBILITY_DBNAME:=temporal_visibility}"
SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

sql_tool() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
        -u "$POSTGRES_USER" --pw "$POSTGRES_PWD" "$@"
}

# $1 database, $2 schema directory under $SCHEMA_ROOT
migrate() {
    if sql_tool --db "$1" update-schema -d "$SCHEMA_ROOT/$2/versioned" 2>/dev/null; then
        echo "temporal-schema: $1 is up to date"
        return
    fi
    # First run: no database or no version table yet.
    sql_tool --db "$1" create || echo "temporal-schema: database $1 exists"
    sql_tool --db "$1" setup-schema -v 0.0
    sql_tool --db "$1" update-schema -d "$SCHEMA_ROOT/$2/versioned"
    echo "temporal-schema: $1 created"
}

until nc -z -w 5 "$POSTGRES_SEEDS" "$DB_PORT"; do
    echo "temporal-schema: waiting for Postgres at $POSTGRES_SEEDS:$DB_PORT"
    sleep 2
done
migrate "$DBNAME" temporal
migrate "$VISIBILITY_DBNAME" visibility
