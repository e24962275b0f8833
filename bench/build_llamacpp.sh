#!/bin/sh
# build_llamacpp.sh — builds the peer, llama.cpp, for the side-by-side runs
# in bench/ (bench/llamacpp_peer.sh, the batched-bench comparison). Not CI.
#
# The source is the one scripts/spm_reference.sh uses: the PyPI source
# package of llama-cpp-python, which vendors llama.cpp (0.3.36 vendors
# llama.cpp 0.5.0-dev / ggml 0.25.3, commit 0c1e570). Unlike that script
# this build is the peer's best on this CPU: -DGGML_NATIVE=ON (AVX-512 on
# the Sapphire Rapids VM), OpenMP as its default, Release.
#
# Targets: llama-perplexity, llama-batched-bench, llama-bench (llama-cli is
# left out: in this version it links the whole server). About 20-30
# minutes on 2 shared cores with -j2 (JOBS=N to change).
#
# Needs: python3 with pip (or the tarball already in DIR), cmake, a C/C++
# compiler with OpenMP.
# Usage: sh bench/build_llamacpp.sh DIR     (e.g. /work/llamacpp)
#   -> DIR/build/bin/llama-perplexity, ... ; DIR/VERSION says what was built.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
work=$1
jobs=${JOBS:-2}
mkdir -p "$work"
work=$(cd "$work" && pwd)
cd "$work"
ls llama_cpp_python-*.tar.gz >/dev/null 2>&1 ||
    python3 -m pip download llama-cpp-python --no-binary :all: --no-deps --disable-pip-version-check -d .
tarball=$(ls llama_cpp_python-*.tar.gz | head -n 1)
src=${tarball%.tar.gz}
[ -d "$src" ] || tar xzf "$tarball"
lc=$work/$src/vendor/llama.cpp
cmake -S "$lc" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF >"$work/cmake.log"
for t in llama-perplexity llama-batched-bench llama-bench; do
    cmake --build "$work/build" --target "$t" -j"$jobs"
done
{
    echo "source: $tarball"
    grep -m1 'llama.cpp version' "$work/cmake.log" || true
    grep -m1 'ggml version' "$work/cmake.log" || true
    grep -m1 'ggml commit' "$work/cmake.log" || true
    grep -m1 'Adding CPU backend variant' "$work/cmake.log" || true
    grep -m1 'OpenMP' "$work/cmake.log" || true
} >"$work/VERSION"
cat "$work/VERSION"
echo "build_llamacpp: $work/build/bin"
