#!/bin/sh
# Rate-distortion data for docs/RESULTS.md "Rate-distortion" (issue 14): mean KLD vs bits/value on
# SmolLM2-135M for every family and budget, and synthetic relative MSE vs bits. Writes JSON under
# build/results-rd/; bench/rd_plot.py draws docs/plots/rd_kld.svg and rd_mse.svg from it.
# Usage: bench/rd_results.sh [OUTDIR]   (env: RQ=build/rotorquant, MODEL, TEXT, THREADS)
set -eu
RQ=${RQ:-build/rotorquant}
OUT=${1:-build/results-rd}
MODEL=${MODEL:-$HOME/.cache/rotorquant/SmolLM2-135M-Instruct.Q4_1.gguf}
TEXT=${TEXT:-$HOME/.cache/rotorquant/austen.txt}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
P="$RQ perplexity -m $MODEL -f $TEXT --ctx 512 --chunks 8 --threads $THREADS --json"
$RQ bench --json --data isotropic --dims 128 --n 2048 --reps 0 \
    --types turbo1,turbo2,turbo3,turbo4,turbo5,tcq2,tcq3,tcq4,tcq5 > "$OUT/mse.json"
$P --configs q8_0,q4_0,q4_0h,turbo2,turbo3,turbo4,turbo5,tcq2,tcq3,tcq4,tcq5,turbo4/turbo2,turbo5/turbo3,tcq4/tcq2,tcq5/tcq3 > "$OUT/configs.json"
$P --kv-bits 2.25,3.25,4.25 > "$OUT/kvbits_turbo.json"
$P --kv-bits 2.25,3.25,4.25 --kv-family tcq > "$OUT/kvbits_tcq.json"
