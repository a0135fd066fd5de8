#!/bin/sh
# make bench: generate the benchmark data sets, run the batch on them and print
# its wall time and peak memory beside the targets. Never part of make test.
#
#   bench/run.sh               small set: vendor 100k rows, 10 partners x 20k rows
#   BENCH_FULL=1 bench/run.sh  also the full set: vendor 1M rows, 100 partners x 200k rows
#   and always: the postgresql connector on a 1M-row table (its own test server)
#
# Data sets are generated once into build/bench/data-*/ and kept; they are made
# again when the generator or its arguments change. Each run starts on an empty
# store. Exit status 1 when a run fails or the full set misses a target.
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
ACCTMAP="$ROOT/build/acctmap"
GEN="$ROOT/build/bench/gen"
SEED=42

# Targets for the full set (DESIGN: one nightly batch over 100 partners).
TARGET_SECONDS=15
TARGET_RSS_KIB=$((2 * 1024 * 1024))

status=0

for tool in "$ACCTMAP" "$GEN"; do
    if [ ! -x "$tool" ]; then
        echo "bench: $tool is missing; run 'make bench' (or 'make all build/bench/gen')" >&2
        exit 1
    fi
done

# generate NAME VENDOR_ROWS PARTNERS PARTNER_ROWS
generate() {
    dir="$ROOT/build/bench/data-$1"
    args="-v $2 -p $3 -r $4 -s $SEED"
    if [ -f "$dir/acctmap.json" ] && [ -f "$dir/.gen-args" ] &&
        [ "$(cat "$dir/.gen-args")" = "$args" ] &&
        [ -z "$(find "$GEN" -newer "$dir/.gen-args")" ]; then
        echo "bench: $1 set: $dir (kept)"
        return 0
    fi
    rm -rf "$dir"
    # shellcheck disable=SC2086 # $args is a list of options
    "$GEN" -o "$dir" $args
    echo "$args" > "$dir/.gen-args"
}

# Seconds from /usr/bin/time's "h:mm:ss" or "m:ss.ss".
to_seconds() {
    echo "$1" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }'
}

# verdict VALUE TARGET: "ok" or "MISSED" (numbers may have decimals).
verdict() {
    awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 < t + 0) ? "ok" : "MISSED" }'
}

# stages NAME LOG: per-stage throughput from the run's own timings. read and
# keys are summed over the worker threads, so they are per-core rates.
stages() {
    records=$(sed -n 's/.*records read \([0-9]*\),.*/\1/p' "$2")
    sed -n 's/^seconds: //p' "$2" | tr -d ',' | awk -v n="$records" -v set="$1" '{
        for (i = 1; i < NF; i += 2) t[$i] = $(i + 1)
        rk = t["read"] + t["keys"]
        printf "bench: %s set: read+normalize+key %9.0f records/s per core (%.2f s of CPU)\n", set, (rk > 0 ? n / rk : 0), rk
        printf "bench: %s set: resolve           %9.0f records/s        (%.2f s)\n", set, (t["resolve"] > 0 ? n / t["resolve"] : 0), t["resolve"]
        printf "bench: %s set: index %.2f s, matrices %.4f s, reports %.2f s, store %.2f s (its own thread, and the commit)\n", set, t["index"], t["matrices"], t["reports"], t["store"]
        printf "bench: %s set: whole run needs %.0f records/s for 21M records in 15 s\n", set, 21000000 / 15
    }'
}

# matrices NAME DIR: every partner's matrix once indexed, against the 5 ms target.
matrices() {
    if [ -x "$ROOT/build/bench/bench_matrix" ]; then
        printf 'bench: %s set: ' "$1"
        "$ROOT/build/bench/bench_matrix" "$2/acctmap.json" 50 || status=1
    fi
}

# run_batch NAME: acctmap run on the set, figures beside the targets.
run_batch() {
    dir="$ROOT/build/bench/data-$1"
    log="$ROOT/build/bench/run-$1.log"
    timing="$ROOT/build/bench/time-$1.txt"
    rm -rf "$dir/acctmap-data"
    echo "bench: $1 set: acctmap run ($(du -sh "$dir" | cut -f1) of CSV)"
    if [ -x /usr/bin/time ]; then
        if ! (cd "$dir" && /usr/bin/time -v -o "$timing" "$ACCTMAP" run > "$log" 2>&1); then
            echo "bench: $1 set: acctmap run failed; see $log" >&2
            tail -n 5 "$log" >&2
            status=1
            return 0
        fi
        wall=$(to_seconds "$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$timing")")
        rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$timing")
    else
        # No GNU time (Debian package "time"): wall time only.
        start=$(date +%s.%N)
        if ! (cd "$dir" && "$ACCTMAP" run > "$log" 2>&1); then
            echo "bench: $1 set: acctmap run failed; see $log" >&2
            status=1
            return 0
        fi
        wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
        rss=""
    fi
    rss_mib=$(awk -v k="${rss:-0}" 'BEGIN { printf "%.0f", k / 1024 }')
    stages "$1" "$log"
    matrices "$1" "$dir"
    if [ "$1" = full ]; then
        v_time=$(verdict "$wall" "$TARGET_SECONDS")
        v_rss=$(verdict "${rss:-0}" "$TARGET_RSS_KIB")
        [ -n "$rss" ] || v_rss="not measured"
        printf 'bench: full set: wall time %6s s    target < %s s      %s\n' \
            "$wall" "$TARGET_SECONDS" "$v_time"
        printf 'bench: full set: peak RSS  %6s MiB  target < 2048 MiB  %s\n' \
            "${rss:+$rss_mib}" "$v_rss"
        if [ "$v_time" = MISSED ] || [ "$v_rss" = MISSED ]; then
            status=1
        fi
    else
        printf 'bench: %s set: %8s s, %s MiB peak RSS' "$1" "$wall" "${rss:+$rss_mib}"
        printf ' (targets, for the full set: < %s s, < 2048 MiB)\n' "$TARGET_SECONDS"
    fi
}

generate small 100000 10 20000
run_batch small

if [ "${BENCH_FULL:-0}" = 1 ]; then
    generate full 1000000 100 200000
    run_batch full
else
    echo "bench: full set skipped; BENCH_FULL=1 make bench runs it (2 GB of CSV)"
fi

# The small set again with the PostgreSQL store (issue 6), on its own test server: what the
# one-transaction commit of bytea chunks costs beside the dir: store.
pg_store_batch() {
    dir="$ROOT/build/bench/data-small"
    sed 's#"store": *"[^"]*"#"store": "env:ACCTMAP_STORE"#' "$dir/acctmap.json" > "$dir/pg.json"
    "$ROOT/tests/pg.sh" run sh -c '
        cd "$1" && ACCTMAP_STORE=$ACCTMAP_TEST_PG "$2" -c pg.json run > "$3" 2>&1 || {
            echo "bench: small set, postgresql store: acctmap run failed; see $3" >&2; exit 1; }
        sed -n "s/^run .* in \([0-9.]*\) s$/bench: small set, postgresql store: run committed in \1 s/p;
                s/^seconds: .*store \([0-9.]*\)$/bench: small set, postgresql store: store thread \1 s/p" "$3"
    ' sh "$dir" "$ACCTMAP" "$ROOT/build/bench/run-small-pg.log" || status=1
}
pg_store_batch

# The postgresql connector on a 1,000,000-row table (issue 6): records per second and peak
# RSS, which the server-side cursor keeps constant. It starts and removes its own server.
if [ -x "$ROOT/build/bench/pg_source" ]; then
    "$ROOT/tests/pg.sh" run "$ROOT/build/bench/pg_source" 1000000 || status=1
fi

# Matching quality on the labelled set fixtures/match (issue 4): precision, recall and
# the errors of each kind, beside the targets. It runs into its own temporary store.
if [ -x "$ROOT/build/bench/match_eval" ]; then
    "$ROOT/build/bench/match_eval" "$ROOT/fixtures/match" || status=1
fi

# The pull benchmark (issue 5): records/s through the shared HTTP client and the JSON
# parser, paging through generated pages served by the fake CRM server on loopback.
if [ -x "$ROOT/build/bench/bench_pull" ]; then
    "$ROOT/build/bench/bench_pull" 200 100 || status=1
fi

exit $status
