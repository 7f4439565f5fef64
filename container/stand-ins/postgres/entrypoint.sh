#!/bin/bash
# The parts of the official postgres image's entrypoint that docker-compose.yml relies on:
# initialise $PGDATA on first start from POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB, then run
# `postgres ARGS...` as the postgres user. SIGTERM/SIGINT become a fast shutdown (the official
# image's STOPSIGNAL), so a stop never waits for clients to hang up and never needs recovery.
set -euo pipefail

die() { echo "postgres stand-in: $*" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

[ "${1:-postgres}" = postgres ] || exec "$@"
[ $# -gt 0 ] && shift

POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"

init_cluster() {
  [ -n "${POSTGRES_PASSWORD:-}" ] || die "POSTGRES_PASSWORD is empty: set it (the database is new)"
  echo "postgres stand-in: initialising $PGDATA for user $POSTGRES_USER, database $POSTGRES_DB"
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 -D "$PGDATA" >/dev/null
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  # A socket-only server for the set-up, as the official image does.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -q --username "$POSTGRES_USER" --dbname postgres \
      --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
}

[ -s "$PGDATA/PG_VERSION" ] || init_cluster

postgres -D "$PGDATA" "$@" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null' TERM INT
status=0
wait "$pid" || status=$?
# A trapped signal interrupts the first wait (status > 128); the second one collects postgres's
# own exit status once its shutdown is done.
if [ "$status" -gt 128 ]; then
  status=0
  wait "$pid" || status=$?
fi
exit "$status"
