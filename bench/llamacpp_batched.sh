#!/bin/sh
# bench/llamacpp_batched.sh — the peer of `rotorquant batched` (issue 13):
# llama.cpp's llama-batched-bench on the same GGUF with f16 and q8_0 KV
# caches. Not in CI; needs a llama.cpp build (LLAMA_BIN, default
# /work/llamacpp/build/bin). -pps: the prompt is prefilled once and shared by
# every sequence, as `rotorquant batched` forks it; -kvu: one unified KV
# buffer holding all sequences. Its S_TG t/s column is the aggregate decode
# speed of all B sequences (rotorquant batched's "aggregate tok/s").
#
#   sh bench/llamacpp_batched.sh [NPP] [NPL] [NTG]   (defaults 512 1,8,32 8)
set -eu
LLAMA_BIN=${LLAMA_BIN:-/work/llamacpp/build/bin}
MODEL="${RQ_MODEL:-${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}/SmolLM2-135M-Instruct.Q4_1.gguf}"
NPP=${1:-512}
NPL=${2:-1,8,32}
NTG=${3:-8}
maxb=$(echo "$NPL" | tr ',' '\n' | sort -n | tail -1)
CTX=$((NPP + maxb * NTG + 64))
for t in f16 q8_0; do
    echo "## llama-batched-bench, K/V $t, -npp $NPP -ntg $NTG -npl $NPL -pps, 2 threads"
    LD_LIBRARY_PATH="$LLAMA_BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$LLAMA_BIN/llama-batched-bench" -m "$MODEL" \
        -c "$CTX" -b 2048 -ub 512 -npp "$NPP" -ntg "$NTG" -npl "$NPL" -pps -kvu -t 2 -tb 2 -ctk "$t" -ctv "$t" \
        -fa on 2>/dev/null | grep '^|'
done
