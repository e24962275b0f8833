#!/bin/sh
# fetch_text.sh — the evaluation text for real-model perplexity runs
# (../shared/research/real_model.md §6):
#
#   ${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}/austen.txt
#
# Jane Austen's six novels (public domain) from the Debian package
# r-cran-janeaustenr, without installing R: `apt-get download` the .deb into a
# temporary directory, `dpkg-deb -x` it, and pull the strings out of the R
# lazy-load database with scripts/austen_extract.py (novels in alphabetical
# order: emma, mansfieldpark, northangerabbey, persuasion, prideprejudice,
# sensesensibility; lines joined by "\n").
#
# The result is pinned by its SHA-256 below; a different file is an error
# (nothing is left in place). Idempotent: an existing file with the right
# hash is kept as it is.
#
# Fallback, only if the janeaustenr package cannot be downloaded: The Jargon
# File 4.4.7 from jargon-text (public domain) into jargon.txt, also pinned,
# reported loudly on stderr; the exit status is then 3, so a caller that
# needs austen.txt notices.
#
# Needs: apt-get (with package lists), dpkg-deb, python3, sha256sum.
set -eu

AUSTEN_SHA256=65b434d16a8755142bfa95ba19c5f9abd0d30cf3dffe3b6793e834f9f56dcc96
AUSTEN_BYTES=4025029
JARGON_SHA256=40dfb4b98191a670a09a183d5798d50f243d23fdbd1495dcc0aca2ce5895ba97
JARGON_BYTES=1681817

here=$(cd "$(dirname "$0")" && pwd)
dir=${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}
austen=$dir/austen.txt
jargon=$dir/jargon.txt

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { wc -c < "$1" | tr -d ' '; }

if [ -f "$austen" ] && [ "$(sha "$austen")" = "$AUSTEN_SHA256" ]; then
    echo "fetch_text: $austen ($(size "$austen") bytes, sha256 ok) already present"
    exit 0
fi

mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt's download sandbox user (_apt) must be able to write here when root runs this.
chmod 755 "$tmp"

if (cd "$tmp" && apt-get download -q r-cran-janeaustenr >"$tmp/apt.log" 2>&1); then
    dpkg-deb -x "$tmp"/r-cran-janeaustenr_*.deb "$tmp/root"
    python3 "$here/austen_extract.py" "$tmp/root/usr/lib/R/site-library/janeaustenr/data" "$tmp/austen.txt"
    got=$(sha "$tmp/austen.txt")
    if [ "$got" != "$AUSTEN_SHA256" ]; then
        echo "fetch_text: ERROR: extracted text has sha256 $got ($(size "$tmp/austen.txt") bytes)," >&2
        echo "fetch_text:        expected $AUSTEN_SHA256 ($AUSTEN_BYTES bytes); the package or the extractor changed" >&2
        exit 1
    fi
    mv "$tmp/austen.txt" "$austen"
    echo "fetch_text: wrote $austen ($(size "$austen") bytes, sha256 $got)"
    exit 0
fi

echo "fetch_text: WARNING: apt-get download r-cran-janeaustenr failed:" >&2
sed 's/^/fetch_text:   /' "$tmp/apt.log" >&2
echo "fetch_text: WARNING: falling back to the Jargon File (jargon-text) -> $jargon, NOT austen.txt" >&2
if [ -f "$jargon" ] && [ "$(sha "$jargon")" = "$JARGON_SHA256" ]; then
    echo "fetch_text: FALLBACK $jargon ($(size "$jargon") bytes, sha256 ok) already present" >&2
    exit 3
fi
(cd "$tmp" && apt-get download -q jargon-text >"$tmp/apt.log" 2>&1) || {
    echo "fetch_text: ERROR: apt-get download jargon-text failed too (try apt-get update):" >&2
    sed 's/^/fetch_text:   /' "$tmp/apt.log" >&2
    exit 1
}
dpkg-deb -x "$tmp"/jargon-text_*.deb "$tmp/root"
gzip -dc "$tmp/root/usr/share/doc/jargon-text/jargon.txt.gz" > "$tmp/jargon.txt"
got=$(sha "$tmp/jargon.txt")
if [ "$got" != "$JARGON_SHA256" ]; then
    echo "fetch_text: ERROR: jargon.txt has sha256 $got, expected $JARGON_SHA256 ($JARGON_BYTES bytes)" >&2
    exit 1
fi
mv "$tmp/jargon.txt" "$jargon"
echo "fetch_text: FALLBACK wrote $jargon ($(size "$jargon") bytes, sha256 $got) instead of austen.txt" >&2
exit 3
