#!/bin/sh
# check_exports.sh LIB.so HEADER... — the shared library exports exactly the
# functions the public headers declare with RQ_API: no internal symbol
# leaks, no declared function is missing. Exit 1 listing the differences.
set -eu
lib=$1; shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "R" {print $3}' | sort -u >"$tmp/exported"
# the name before the first "(" of every RQ_API declaration
grep -h '^RQ_API' "$@" | sed 's/(.*//; s/.*[ *]//' | sort -u >"$tmp/declared"
status=0
if ! cmp -s "$tmp/exported" "$tmp/declared"; then
    comm -23 "$tmp/exported" "$tmp/declared" | sed 's/^/exported but not declared: /'
    comm -13 "$tmp/exported" "$tmp/declared" | sed 's/^/declared but not exported: /'
    status=1
fi
exit $status
