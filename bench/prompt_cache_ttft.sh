#!/bin/sh
# bench/prompt_cache_ttft.sh [BUILD] — time to first token of `rotorquant
# generate` with and without --prompt-cache (issue 13, item 3), on a prompt of
# the evaluation text's first ~400 tokens (CHARS characters, default 1800).
# Per cache type and REPS (5) repetitions: "cold" runs on a fresh file (the
# whole prompt prefilled, then saved), "warm" runs reuse it (all but the last
# prompt token restored). Prints the median time to first token of each and
# their ratio; also checks that cold and warm runs print the same text.
set -eu
B=${1:-build}
REPS=${REPS:-5}
CHARS=${CHARS:-1800}
TYPES=${TYPES:-"f16 turbo3 q8_0"}
TEXT="${RQ_TEXT:-${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}/austen.txt}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rq_ttft.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
P=$(head -c "$CHARS" "$TEXT" | tr -d '\000')
# ms: the time to first token from the prompt-cache line
ms() { sed -n 's/.*time to first token \([0-9.]*\) ms.*/\1/p' "$1"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
echo "| K / V | prompt tokens | reused | TTFT cold ms | TTFT warm ms | cold / warm | same text |"
echo "|---|---:|---:|---:|---:|---:|---|"
for t in $TYPES; do
    : >"$tmp/cold" ; : >"$tmp/warm"
    same=yes
    for r in $(seq "$REPS"); do
        rm -f "$tmp/pc"
        "$B/rotorquant" generate -p "$P" -n 4 -ctk "$t" -ctv "$t" --prompt-cache "$tmp/pc" >"$tmp/o1" 2>"$tmp/e1"
        ms "$tmp/e1" >>"$tmp/cold"
        "$B/rotorquant" generate -p "$P" -n 4 -ctk "$t" -ctv "$t" --prompt-cache "$tmp/pc" >"$tmp/o2" 2>"$tmp/e2"
        ms "$tmp/e2" >>"$tmp/warm"
        cmp -s "$tmp/o1" "$tmp/o2" || same=no
    done
    n=$(sed -n 's/.*reused [0-9]* of \([0-9]*\) prompt.*/\1/p' "$tmp/e2")
    u=$(sed -n 's/.*reused \([0-9]*\) of.*/\1/p' "$tmp/e2")
    c=$(median <"$tmp/cold")
    w=$(median <"$tmp/warm")
    echo "| $t / $t | $n | $u | $c | $w | $(awk -v c="$c" -v w="$w" 'BEGIN {printf "%.1fx", c / w}') | $same |"
done
