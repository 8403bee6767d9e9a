#!/bin/sh
# Run once by the postgres image when it initialises an empty data directory (mounted into
# /docker-entrypoint-initdb.d by docker-compose.yml): a role that may only replicate, and a
# pg_hba.conf line that lets it stream from other containers. The `postgres-replica` service of
# the `scale` profile bootstraps itself through it (deploy/postgres/replica-entrypoint.sh).
#
# An existing data directory never runs this: on one, run it by hand with
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/10-replication.sh
#   docker compose exec postgres psql -U "$PG_USER" -d "$PG_DATABASE" -c 'select pg_reload_conf()'
# No `set -u`: the image sources a script it cannot execute (no executable bit), and its own
# entrypoint does not expect unset variables to be fatal.
set -e

: "${REPLICATION_USER:=replicator}"
: "${REPLICATION_PASSWORD:?must be set}"

psql -v ON_ERROR_STOP=1 -q --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v user="$REPLICATION_USER" -v password="$REPLICATION_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I WITH LOGIN REPLICATION PASSWORD %L', :'user', :'password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
SQL

# Replication connections match only lines naming `replication`; the image's own line for other
# containers (`host all all all ...`) does not let them in.
if ! grep -q "^host replication $REPLICATION_USER " "$PGDATA/pg_hba.conf"; then
    echo "host replication $REPLICATION_USER all scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
