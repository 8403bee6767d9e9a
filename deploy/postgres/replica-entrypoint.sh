#!/bin/sh
# The entrypoint of the `postgres-replica` service (docker-compose.yml, profile `scale`): a
# streaming replica of the `postgres` service.
#
# On an empty data directory it copies the primary with `pg_basebackup -R`, which also writes
# standby.signal and primary_conninfo (so PostgreSQL starts as a hot standby that streams from
# the primary), through a physical replication slot, so the primary keeps the WAL this replica
# has not received yet. Then it hands over to the image's own entrypoint, which finds a data
# directory, skips initialisation and starts PostgreSQL as the postgres user.
#
# The slot outlives the replica: after `docker compose rm postgres-replica` and its volume, drop it
# on the primary (`select pg_drop_replication_slot('replica_1')`), or WAL piles up there.
set -eu

: "${PRIMARY_HOST:=postgres}"
: "${PRIMARY_PORT:=5432}"
: "${REPLICATION_USER:=replicator}"
: "${REPLICATION_SLOT:=replica_1}"
: "${REPLICATION_PASSWORD:?must be set}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "replica: no data directory yet; copying $PRIMARY_HOST:$PRIMARY_PORT with pg_basebackup"
    mkdir -p "$PGDATA"
    # What an interrupted copy left behind: pg_basebackup wants an empty directory.
    find "$PGDATA" -mindepth 1 -delete
    chown postgres:postgres "$PGDATA"
    chmod 0700 "$PGDATA"
    export PGPASSWORD="$REPLICATION_PASSWORD"
    until pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT"; do
        sleep 1
    done
    # The same slot again when this replica is bootstrapped anew.
    psql "host=$PRIMARY_HOST port=$PRIMARY_PORT user=$REPLICATION_USER dbname=postgres" \
         -v ON_ERROR_STOP=1 -qAt -v slot="$REPLICATION_SLOT" <<'SQL'
SELECT pg_create_physical_replication_slot(:'slot')
 WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = :'slot');
SQL
    gosu postgres pg_basebackup \
        --host="$PRIMARY_HOST" --port="$PRIMARY_PORT" --username="$REPLICATION_USER" \
        --pgdata="$PGDATA" --wal-method=stream --slot="$REPLICATION_SLOT" \
        --checkpoint=fast --no-password -R
    unset PGPASSWORD
fi

exec docker-entrypoint.sh "$@"
