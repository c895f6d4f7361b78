#!/usr/bin/env bash
# The part of the official postgres image's entrypoint the operator relies on:
#   * `postgres ...` or `-c ...` arguments start the server (leading options mean "postgres ...");
#   * on an empty $PGDATA: initdb with POSTGRES_USER / POSTGRES_PASSWORD (required) and
#     POSTGRES_INITDB_ARGS, a pg_hba.conf line for POSTGRES_HOST_AUTH_METHOD (default
#     scram-sha-256) from any address, POSTGRES_DB created, then /docker-entrypoint-initdb.d/*.sh
#     (run if executable, else sourced) and *.sql, against a server listening on the socket only;
#   * any other command runs as given.
set -Eeuo pipefail
if [[ ${1:-} == -* ]]; then set -- postgres "$@"; fi

initialise() {
  [[ -n ${POSTGRES_PASSWORD:-} ]] || { echo "POSTGRES_PASSWORD must be set to initialise $PGDATA" >&2; exit 1; }
  local pwfile
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
  # shellcheck disable=SC2086
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
    --auth-host="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" -D "$PGDATA" ${POSTGRES_INITDB_ARGS:-}
  rm -f "$pwfile"
  printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
  if [[ $POSTGRES_DB != postgres ]]; then
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
      --set=db="$POSTGRES_DB" <<<'CREATE DATABASE :"db"'
  fi
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh) if [[ -x $f ]]; then "$f"; else . "$f"; fi ;;
      *.sql) psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -f "$f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
}

if [[ ${1:-} == postgres ]]; then
  export POSTGRES_USER=${POSTGRES_USER:-postgres}
  export POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA" 2>/dev/null || true
  [[ -s $PGDATA/PG_VERSION ]] || initialise
fi
exec "$@"
