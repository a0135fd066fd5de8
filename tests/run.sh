#!/bin/sh
# Run every test binary in DIR/tests and end with one line: "N passed, N failed".
# Usage: tests/run.sh BUILD_DIR test_a test_b ...
dir=$1
shift
passed=0
failed=0
failed_bins=""
for t in "$@"; do
    log="$dir/tests/$t.log"
    CMOCKA_MESSAGE_OUTPUT=stdout "$dir/tests/$t" >"$log" 2>&1
    rc=$?
    # A binary may run several groups (test_store: once per store backend): add them up.
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # crashed (sanitizer, signal) before cmocka could count
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ]; then
        failed_bins="$failed_bins $t"
        echo "---- $t failed (exit $rc):"
        tail -n 40 "$log"
    else
        echo "ok   $t ($p)"
    fi
done
[ -z "$failed_bins" ] || echo "failed:$failed_bins"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
