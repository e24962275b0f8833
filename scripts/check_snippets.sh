#!/bin/sh
# check_snippets.sh README DIR — every ```c block of README must appear, line
# for line (leading/trailing blanks ignored), as a contiguous run of lines in
# one of the C programs in DIR, which `make examples` compiles and runs. So a
# snippet in the README is always code that compiles and works.
# Exit 1 naming the first snippet that no example contains.
set -eu
readme=$1
dir=$2
awk -v dir="$dir" '
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
BEGIN {
    cmd = "ls " dir "/*.c"
    while ((cmd | getline f) > 0) {
        n = 0
        while ((getline line < f) > 0) src[f, ++n] = trim(line)
        len[f] = n; files[++nf] = f
        close(f)
    }
    close(cmd)
}
/^```c[ \t]*$/ { inblk = 1; m = 0; start = NR; next }
/^```/ && inblk {
    inblk = 0; found = 0
    for (i = 1; i <= nf && !found; i++) {
        f = files[i]
        for (s = 1; s + m - 1 <= len[f] && !found; s++) {
            ok = 1
            for (j = 1; j <= m; j++) if (src[f, s + j - 1] != snip[j]) { ok = 0; break }
            if (ok) found = 1
        }
    }
    if (!found) {
        printf "%s:%d: this C snippet is in no program of %s/ (make examples compiles those)\n", FILENAME, start, dir
        bad = 1
    }
    next
}
inblk { snip[++m] = trim($0) }
END { exit bad }
' "$readme"
