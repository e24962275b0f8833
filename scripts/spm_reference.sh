#!/bin/sh
# spm_reference.sh — rebuilds tests/data/gemma3_tok_ref.txt, the reference
# ids that tests/test_gemma3.c holds model/tokenizer_spm.c to, from an
# independent implementation: llama.cpp's llama-tokenize.
#
#   1. `pip download llama-cpp-python --no-binary :all: --no-deps`: the
#      source package, which vendors llama.cpp (0.3.36 when the fixture was
#      made);
#   2. cmake, only the llama-tokenize target (-DGGML_NATIVE=OFF, -j2; about
#      20 minutes on 2 shared cores);
#   3. scripts/spm_reference.py runs it on the whole evaluation text and on
#      the edge cases listed there, and writes the fixture.
#
# Needs: python3 with pip, cmake, a C/C++ compiler; the Gemma GGUF
# (make model MODEL=gemma3) and the text (make evaltext).
# Usage: sh scripts/spm_reference.sh [WORKDIR]   (default: a temporary one)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"
ls llama_cpp_python-*.tar.gz >/dev/null 2>&1 ||
    python3 -m pip download llama-cpp-python --no-binary :all: --no-deps --disable-pip-version-check -d .
tarball=$(ls llama_cpp_python-*.tar.gz | head -n 1)
src=${tarball%.tar.gz}
[ -d "$src" ] || tar xzf "$tarball"
lc=$src/vendor/llama.cpp
cmake -S "$lc" -B "$lc/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_OPENMP=OFF >/dev/null
cmake --build "$lc/build" --target llama-tokenize -j2
python3 "$here/scripts/spm_reference.py" "$lc/build/bin/llama-tokenize" "$cache/gemma-3-270m-q4_k_m.gguf" \
    "$cache/austen.txt" "$here/tests/data/gemma3_tok_ref.txt"
echo "spm_reference: wrote $here/tests/data/gemma3_tok_ref.txt ($tarball)"
