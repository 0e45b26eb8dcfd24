#!/usr/bin/env bash
# Private PostgreSQL for tests and benchmarks: its own data dir and port, never the system cluster.
#   bash .ci/pg.sh start [DIR] [PORT]   → prints the DATABASE_URL
#   bash .ci/pg.sh stop  [DIR]
set -euo pipefail
cmd=${1:?start|stop}
dir=$(realpath -m "${2:-/tmp/parley-pg}")
port=${3:-55432}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bindir" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
# As root, run the server tools as postgres from / (the caller's cwd may be a directory postgres can't enter).
as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
case "$cmd" in
  start)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      mkdir -p "$dir"
      [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
      as_pg "$bindir/initdb" -D "$dir/data" -U parley --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
    fi
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
    echo "postgres://parley@127.0.0.1:$port/postgres"
    ;;
  stop)
    [ -f "$dir/data/postmaster.pid" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
  *) echo "usage: pg.sh start|stop [DIR] [PORT]" >&2; exit 2 ;;
esac
