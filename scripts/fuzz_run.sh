#!/bin/sh
# fuzz_run.sh SECONDS TARGET... — runs each libFuzzer harness for SECONDS
# from its committed seed corpus (fuzz/corpus/NAME, read only) plus
# build-fuzz/corpus/NAME (where new inputs go), prints one line per target
# with its executions, and fails on the first crash or failed property
# (the input is saved as build-fuzz/crash-…; the log as build-fuzz/NAME.log).
set -u
seconds=$1; shift
status=0
for t in "$@"; do
    n=$(basename "$t")
    mkdir -p "build-fuzz/corpus/$n" "fuzz/corpus/$n"
    if "$t" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix=build-fuzz/ -rss_limit_mb=4096 \
        "build-fuzz/corpus/$n" "fuzz/corpus/$n" >"build-fuzz/$n.log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "build-fuzz/$n.log")
        echo "fuzz $n: ${execs:-?} executions in ${seconds} s, no failure"
    else
        echo "fuzz $n: FAILED (build-fuzz/$n.log):"
        grep -E 'ERROR|property failed|SUMMARY|^    #[0-4] ' "build-fuzz/$n.log" | head -20
        status=1
    fi
done
exit $status
