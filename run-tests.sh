#!/usr/bin/env bash
# Install everything the tests need and run them: Debian packages (PostgreSQL, nginx, wrk, Chromium),
# a virtualenv with the project and its test extras, a throw-away PostgreSQL server on 127.0.0.1:54329
# (run as the postgres user: the server refuses root), then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

PGPORT=54329
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PGDATA=${TMPDIR:-/tmp}/ghu-feeds-pg
if ! "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; then
  PGUSER_OS=postgres
  [ "$(id -u)" -eq 0 ] || PGUSER_OS=$(id -un)
  as_pg() { if [ "$(id -u)" -eq 0 ]; then su "$PGUSER_OS" -s /bin/sh -c "$1"; else sh -c "$1"; fi; }
  rm -rf "$PGDATA"
  mkdir -p "$PGDATA"
  [ "$(id -u)" -eq 0 ] && chown "$PGUSER_OS" "$PGDATA"
  as_pg "'$PGBIN/initdb' -D '$PGDATA' -A trust -U postgres -E UTF8 >/dev/null"
  as_pg "'$PGBIN/pg_ctl' -D '$PGDATA' -l '$PGDATA/server.log' -w -o \"-p $PGPORT -k '$PGDATA' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start >/dev/null"
fi
export TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PGPORT/postgres"

.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
