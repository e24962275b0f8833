#!/bin/sh
# llamacpp_peer.sh — the cross-check of our forward pass and cache types
# against llama.cpp's llama-perplexity on the same tokens (issue 15). Not CI.
#
#   sh bench/llamacpp_peer.sh LLAMA_BIN [BUILD]
#     LLAMA_BIN  the directory with llama-perplexity (bench/build_llamacpp.sh
#                DIR builds it into DIR/build/bin)
#     BUILD      ours (default build: needs BUILD/rotorquant)
#   MODELS="gemma3 smollm2" (default gemma3), CHUNKS=4, KLD=1 (default: also
#   the q4_0 KL-divergence rows), RUNS=DIR for the raw logs (default
#   BUILD/peer).
#
# The same tokens: llama-perplexity tokenizes the whole text with the
# model's BOS first (when its GGUF sets add_bos_token, as Gemma's does),
# cuts the stream into chunks of -c tokens, puts BOS in place of each
# chunk's first token, and scores positions c/2 .. c − 2 of each chunk.
# `rotorquant perplexity --llamacpp-chunks` does exactly that (model/ppl.h),
# so both score the same 255 targets per chunk given the same context.
# Differences left: llama.cpp computes in its own kernels (f16 K/V with
# flash attention; its Q4_K/Q6_K dot products quantize the activations to
# 8 bits, ours dequantize weights to float), so PPLs agree to within those
# roundings, not to the last digit.
#
# KL divergence: llama-perplexity --kl-divergence-base writes the f16-cache
# logits; --kl-divergence then compares a q4_0 K/V cache with them. This
# llama.cpp rotates keys and values of quantized caches with a Hadamard
# transform by default (llama-kv-cache.cpp attn_rot_k/v, whenever head_dim
# is a multiple of 64; LLAMA_ATTN_ROT_DISABLE=1 turns it off), so its q4_0
# corresponds to our q4_0h, and with the rotation off to our q4_0. Our
# reference is the f32 cache (f16 is within KLD 1e-5 of it).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 LLAMA_BIN [BUILD]" >&2; exit 2; }
LB=$1
B=${2:-build}
cache=${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}
TEXT=${RQ_TEXT:-$cache/austen.txt}
CHUNKS=${CHUNKS:-4}
RUNS=${RUNS:-$B/peer}
mkdir -p "$RUNS"
LP="$LB/llama-perplexity"
[ -x "$LP" ] || { echo "llamacpp_peer: no $LP (sh bench/build_llamacpp.sh DIR)" >&2; exit 1; }

gguf() {
    case $1 in
    gemma3) echo "$cache/gemma-3-270m-q4_k_m.gguf" ;;
    smollm2) echo "$cache/SmolLM2-135M-Instruct.Q4_1.gguf" ;;
    esac
}

# llama-perplexity's final PPL and KLD lines from a log
lpl() { sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$1" | tail -n 1; }
lkld() { sed -n 's/.*Mean    KLD: *\(-\{0,1\}[0-9.]*\).*/\1/p' "$1" | tail -n 1; }
ltop() { sed -n 's/.*Same top p: *\([0-9.]*\).*/\1/p' "$1" | tail -n 1; }
lppl_q() { sed -n 's/.*Mean PPL(Q) *: *\([0-9.]*\).*/\1/p' "$1" | tail -n 1; }
# our PPL / mean KLD / top-1 of the row "| K | V |" from a markdown table
ours() { awk -F'|' -v k="$2" -v v="$3" -v c="$4" '{ gsub(/ /, "", $2); gsub(/ /, "", $3) } $2 == k && $3 == v { gsub(/ /, "", $c); print $c }' "$1"; }

echo "| model | cache | llama.cpp PPL | ours PPL | llama.cpp mean KLD | ours mean KLD | llama.cpp top-1 | ours top-1 |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for M in ${MODELS:-gemma3}; do
    G=$(gguf "$M")
    common="-m $G -f $TEXT -c 512 --chunks $CHUNKS -t 2"
    # our rows: f32 (the reference), f16, q4_0, q4_0h on llama-perplexity's chunks
    [ -s "$RUNS/${M}_ours.md" ] ||
        "$B/rotorquant" perplexity --no-norm-correct --no-centre-keys -m "$M" --ctx 512 --chunks "$CHUNKS" --threads 2 --llamacpp-chunks \
            --configs f16/f16,q4_0/q4_0,q4_0h/q4_0h > "$RUNS/${M}_ours.md"
    O="$RUNS/${M}_ours.md"
    # llama.cpp: f16 cache (and the KLD base), f32 if it accepts it
    [ -s "$RUNS/${M}_f16.log" ] && grep -q "Final estimate" "$RUNS/${M}_f16.log" ||
        "$LP" $common -ctk f16 -ctv f16 --kl-divergence-base "$RUNS/${M}_f16.kld" > "$RUNS/${M}_f16.log" 2>&1
    # f32 through --kl-divergence: the base file holds the tokens, so no second
    # tokenization of the whole text (minutes); its "Mean PPL(Q)" is the PPL
    [ -s "$RUNS/${M}_f32.log" ] && grep -q "Mean PPL(Q)" "$RUNS/${M}_f32.log" ||
        "$LP" $common -ctk f32 -ctv f32 --kl-divergence-base "$RUNS/${M}_f16.kld" --kl-divergence \
            > "$RUNS/${M}_f32.log" 2>&1 || true
    f32=$(lppl_q "$RUNS/${M}_f32.log")
    # llama.cpp's f32 row: KLD and top-1 against its own f16 cache (ours: the reference)
    echo "| $M | f32 | ${f32:-(refused)} | $(ours "$O" f32 f32 6) | $(lkld "$RUNS/${M}_f32.log") | | $(ltop "$RUNS/${M}_f32.log")% | |"
    echo "| $M | f16 | $(lpl "$RUNS/${M}_f16.log") | $(ours "$O" f16 f16 6) | | $(ours "$O" f16 f16 8) | | $(ours "$O" f16 f16 10) |"
    [ "${KLD:-1}" = 1 ] || continue
    for rot in 1 0; do
        log="$RUNS/${M}_q4_0_rot$rot.log"
        if ! { [ -s "$log" ] && grep -q "Mean    KLD" "$log"; }; then
            if [ $rot = 1 ]; then
                "$LP" $common -ctk q4_0 -ctv q4_0 --kl-divergence-base "$RUNS/${M}_f16.kld" --kl-divergence > "$log" 2>&1
            else
                LLAMA_ATTN_ROT_DISABLE=1 "$LP" $common -ctk q4_0 -ctv q4_0 --kl-divergence-base "$RUNS/${M}_f16.kld" \
                    --kl-divergence > "$log" 2>&1
            fi
        fi
        ot=q4_0h && [ $rot = 0 ] && ot=q4_0
        echo "| $M | q4_0 (rotation $([ $rot = 1 ] && echo on || echo off)) vs our $ot | $(lppl_q "$log") | $(ours "$O" $ot $ot 6) | $(lkld "$log") | $(ours "$O" $ot $ot 8) | $(ltop "$log")% | $(ours "$O" $ot $ot 10) |"
    done
    rm -f "$RUNS/${M}_f16.kld"
done
echo
echo "llama.cpp: $( (cat "$LB/VERSION" 2>/dev/null || cat "$LB/../../VERSION" 2>/dev/null || echo "$LB") | tr "\n" ";")"
