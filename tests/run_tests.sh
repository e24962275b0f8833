#!/bin/sh
# run_tests.sh — `make test`: the C tests (BUILD/test_all), then the command
# line's (tests/cli_test.sh); each prints its own "N passed, N failed", and
# the last line is their sum in the same form. Exit status 1 if anything
# failed (a suite that ends without its count line counts as one failure).
#
#   sh tests/run_tests.sh BUILD_DIR
B="${1:-build}"
log=$(mktemp "${TMPDIR:-/tmp}/rq_tests.XXXXXX") || exit 1
trap 'rm -f "$log"' EXIT
passed=0 failed=0
# count: add the "N passed, N failed" line of the last suite's log
count() {
    line=$(tail -n 1 "$log")
    p=$(echo "$line" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1/p')
    f=$(echo "$line" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\2/p')
    if [ -z "$p" ]; then
        echo "$1: no result line (crashed?)"
        failed=$((failed + 1))
    else
        passed=$((passed + p)) failed=$((failed + f))
    fi
}
"$B/test_all" | tee "$log"
count test_all
sh tests/cli_test.sh "$B" | tee "$log"
count cli_test.sh
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
