#!/bin/sh
# bench/results.sh BUILD — regenerates the "Quantizer quality (issue 3)"
# section of docs/RESULTS.md and its plots (docs/plots/quality_*.svg) from
# one run of `rotorquant bench --json` and, when Faiss is installed, of
# bench/faiss_peer.py. Run it as `make results`; the raw outputs stay in
# BUILD/results/. Every number written comes from these commands.
set -eu
B=${1:-build}
OUT=$B/results
mkdir -p "$OUT"
rm -f "$OUT/bench.json" "$OUT/faiss.json"

# more queries and needle trials than the one-minute default, for steadier
# top-1/top-5 and needle rates
set -- bench --json --queries 128 --trials 400
echo "results: $B/rotorquant $*"
"$B/rotorquant" "$@" > "$OUT/bench.json"

# the peer exits 0 and says so when Faiss is missing; then no faiss.json
echo "results: python3 bench/faiss_peer.py --rotorquant $B/rotorquant --json $OUT/faiss.json"
python3 bench/faiss_peer.py --rotorquant "$B/rotorquant" --json "$OUT/faiss.json" | tee "$OUT/faiss.md"

python3 bench/plots.py --bench "$OUT/bench.json" --faiss "$OUT/faiss.json" \
    --cmd "build/rotorquant $*" --docs docs
