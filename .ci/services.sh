#!/usr/bin/env bash
# Start the services the test suite needs, for CI and for developers:
#   eval "$(bash .ci/services.sh start)"   # prints the exports (ARTLENS_TEST_POSTGRES, ARTLENS_TEST_RAY_ADDRESS)
#   bash .ci/services.sh stop
# PostgreSQL: a throw-away cluster (Debian's initdb / pg_ctl) in a temp folder, run as a non-root user
# when we are root. Ray: a local head node from the .venv's `ray`. State lives in $ARTLENS_SERVICES_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${ARTLENS_SERVICES_DIR:-/tmp/artlens-ci-services}
RAY=${RAY:-.venv/bin/ray}

pg_bin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$d" ]; then
        echo "PostgreSQL binaries not found (apt-get install postgresql)" >&2
        return 1
    fi
    echo "$d"
}

as_pg_user() {
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    mkdir -p "$STATE"
    local bin port data
    bin=$(pg_bin)
    port=${ARTLENS_TEST_PG_PORT:-55432}
    data="$STATE/pgdata"
    rm -rf "$data"
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && { id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres; chown -R postgres "$STATE"; }
    as_pg_user "$bin/initdb" -D "$data" -U artlens --auth=trust -E UTF8 >"$STATE/initdb.log" 2>&1
    as_pg_user "$bin/pg_ctl" -D "$data" -l "$STATE/postgres.log" -w \
        -o "-p $port -k $STATE -c listen_addresses=127.0.0.1 -c fsync=off" start >&2
    as_pg_user "$bin/createdb" -h 127.0.0.1 -p "$port" -U artlens artlens_test >&2
    echo "export ARTLENS_TEST_POSTGRES=postgresql+psycopg://artlens@127.0.0.1:$port/artlens_test"
    if [ -x "$RAY" ]; then
        # A throw-away local cluster: no token authentication (Ray turns it on when ~/.ray/auth_token
        # exists, and clients in the tests would then be refused).
        export RAY_AUTH_MODE=disabled
        echo "export RAY_AUTH_MODE=disabled"
        "$RAY" start --head --num-cpus "$(nproc)" --port 6380 --disable-usage-stats \
            --include-dashboard=false >"$STATE/ray.log" 2>&1
        echo "export ARTLENS_TEST_RAY_ADDRESS=127.0.0.1:6380"
    fi
}

stop() {
    local bin
    if [ -d "$STATE/pgdata" ] && bin=$(pg_bin); then
        as_pg_user "$bin/pg_ctl" -D "$STATE/pgdata" -m fast stop >&2 || true
    fi
    [ -x "$RAY" ] && "$RAY" stop --force >/dev/null 2>&1 || true
    rm -rf "$STATE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
