#!/bin/bash
# The tests' PostgreSQL server: a throwaway cluster in a temporary directory,
# on 127.0.0.1 on a free port, with its unix socket in that directory.
#
#   tests/pg.sh run CMD ARGS...  start a server, run CMD with its URIs in the
#                                environment, stop and remove it (also when CMD
#                                fails or we are interrupted); exits with CMD's status
#   tests/pg.sh start            start one and print `export` lines for a shell (eval)
#   tests/pg.sh stop [DIR]       stop and remove the server of DIR (or $ACCTMAP_TEST_PG_DIR)
#   tests/pg.sh halt | resume    stop / start again the server of $ACCTMAP_TEST_PG_DIR,
#                                keeping its data (tests of a server that goes away)
#
# Exported for the tests:
#   ACCTMAP_TEST_PG        postgresql://USER:PASSWORD@127.0.0.1:PORT/acctmap_test (UTF8)
#   ACCTMAP_TEST_PG_ASCII  the same server, database acctmap_ascii (SQL_ASCII)
#   ACCTMAP_TEST_PG_DIR    the cluster's directory (for stop, halt, resume)
# The password is made up per server: tests check that it never shows.
set -eu

PG_VERSION=15
PG_BIN=/usr/lib/postgresql/$PG_VERSION/bin
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# Install Debian's server when missing (idempotent, no network when present). The
# package creates and starts a cluster "main" of its own: drop the one it just made,
# so that nothing keeps running after the tests.
ensure_server() {
    if [ ! -x "$PG_BIN/postgres" ]; then
        had_main=0
        [ ! -d "/etc/postgresql/$PG_VERSION/main" ] || had_main=1
        "$ROOT/tools/deps.sh" "postgresql-$PG_VERSION" >&2
        if [ "$had_main" -eq 0 ] && [ -d "/etc/postgresql/$PG_VERSION/main" ] &&
            command -v pg_dropcluster > /dev/null; then
            pg_dropcluster --stop "$PG_VERSION" main >&2 || true
        fi
    fi
}

# Run a server program as the cluster's owner: initdb and postgres refuse root.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        # Nothing answers: free (bash's /dev/tcp connects or fails at once on loopback).
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo "pg.sh: no free port found" >&2
    return 1
}

pg_options() {
    # No durability needed for test data; a server that starts and stops fast.
    echo "-c listen_addresses=127.0.0.1 -p $1 -k $2 -c fsync=off -c synchronous_commit=off" \
        "-c full_page_writes=off -c shared_buffers=32MB -c max_connections=40"
}

start_server() {
    local dir port pass tries
    ensure_server
    dir=$(mktemp -d /tmp/acctmap-pg.XXXXXX)
    chmod 0755 "$dir"
    pass="t$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s\n' "$pass" > "$dir/pwfile"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir" "$dir/pwfile"
    fi
    if ! as_owner "$PG_BIN/initdb" -D "$dir/data" -U acctmap -A scram-sha-256 \
        --pwfile="$dir/pwfile" -E UTF8 --locale=C --no-sync > "$dir/initdb.log" 2>&1; then
        echo "pg.sh: initdb failed:" >&2
        tail -n 20 "$dir/initdb.log" >&2
        rm -rf "$dir"
        return 1
    fi
    for tries in 1 2 3 4 5; do
        port=$(free_port)
        echo "$port" > "$dir/port"
        [ "$(id -u)" -ne 0 ] || chown postgres: "$dir/port"
        if as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
            -o "$(pg_options "$port" "$dir")" start > /dev/null 2>&1; then
            break
        fi
        if [ "$tries" -eq 5 ]; then
            echo "pg.sh: the server did not start:" >&2
            tail -n 20 "$dir/server.log" >&2
            rm -rf "$dir"
            return 1
        fi
    done
    PGPASSWORD=$pass "$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" \
        -U acctmap -d postgres > /dev/null <<'EOF'
CREATE DATABASE acctmap_test;
CREATE DATABASE acctmap_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
EOF
    STARTED_DIR=$dir
    ACCTMAP_TEST_PG="postgresql://acctmap:$pass@127.0.0.1:$port/acctmap_test"
    ACCTMAP_TEST_PG_ASCII="postgresql://acctmap:$pass@127.0.0.1:$port/acctmap_ascii"
    ACCTMAP_TEST_PG_DIR=$dir
}

stop_server() {
    local dir=$1
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop \
            > /dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
run)
    shift
    [ $# -gt 0 ] || { echo "usage: tests/pg.sh run CMD ARGS..." >&2; exit 2; }
    STARTED_DIR=""
    child=""
    trap 'stop_server "$STARTED_DIR"' EXIT
    # A signal ends the command too (it runs in the background: `wait` returns at once
    # on a signal, where a foreground command would delay the trap until it ended).
    trap '[ -z "$child" ] || kill -TERM "$child" 2>/dev/null; exit 130' INT
    trap '[ -z "$child" ] || kill -TERM "$child" 2>/dev/null; exit 143' TERM
    start_server
    export ACCTMAP_TEST_PG ACCTMAP_TEST_PG_ASCII ACCTMAP_TEST_PG_DIR
    status=0
    "$@" < /dev/stdin &
    child=$!
    wait "$child" || status=$?
    child=""
    exit $status
    ;;
start)
    start_server
    echo "export ACCTMAP_TEST_PG='$ACCTMAP_TEST_PG'"
    echo "export ACCTMAP_TEST_PG_ASCII='$ACCTMAP_TEST_PG_ASCII'"
    echo "export ACCTMAP_TEST_PG_DIR='$ACCTMAP_TEST_PG_DIR'"
    ;;
stop)
    stop_server "${2:-${ACCTMAP_TEST_PG_DIR:-}}"
    ;;
halt)
    dir=${ACCTMAP_TEST_PG_DIR:?ACCTMAP_TEST_PG_DIR is not set}
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop > /dev/null
    ;;
resume)
    dir=${ACCTMAP_TEST_PG_DIR:?ACCTMAP_TEST_PG_DIR is not set}
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "$(pg_options "$(cat "$dir/port")" "$dir")" start > /dev/null
    ;;
*)
    echo "usage: tests/pg.sh run CMD... | start | stop [DIR] | halt | resume" >&2
    exit 2
    ;;
esac
