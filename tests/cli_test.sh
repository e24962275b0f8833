#!/bin/sh
# cli_test.sh — the rotorquant command line, run by `make test` after the C
# tests: per-command help, one-line errors with exit code 2 for bad usage
# (unknown, inapplicable and malformed options, each naming its token) and 1
# for failures, outputs checked before any long run, undefined metrics
# printed as "-", and — with the SmolLM2 model present — the model commands'
# results. Prints one line per check and ends with "N passed, N failed".
#
#   sh tests/cli_test.sh BUILD_DIR
set -u
RQ="${1:-build}/rotorquant"
MODEL="${RQ_MODEL:-${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}/SmolLM2-135M-Instruct.Q4_1.gguf}"
TEXT="${RQ_TEXT:-${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}/austen.txt}"
GEMMA="${RQ_GEMMA3:-${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}/gemma-3-270m-q4_k_m.gguf}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rq_cli.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 skip=0

ok() { pass=$((pass + 1)); echo "  ok   cli: $1"; }
bad() { fail=$((fail + 1)); echo "  FAIL cli: $1"; sed 's/^/    | /' "$tmp/err" "$tmp/out" 2>/dev/null | head -8; }

# run NAME WANT_RC GREP_STDERR CMD...: exit code WANT_RC, exactly one line on
# stderr, matching the fixed string GREP_STDERR (empty: no stderr expected
# when WANT_RC is 0).
run() {
    name=$1 want=$2 pat=$3
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then bad "$name (exit $rc, expected $want)"; return; fi
    if [ "$want" -ne 0 ]; then
        if [ "$(wc -l <"$tmp/err")" -ne 1 ]; then bad "$name (expected one error line)"; return; fi
        if ! grep -qF -- "$pat" "$tmp/err"; then bad "$name (stderr lacks '$pat')"; return; fi
    fi
    ok "$name"
}

# ---- help --------------------------------------------------------------------
for c in bench eval types generate perplexity fidelity dump-kv calibrate batched; do
    "$RQ" "$c" --help >"$tmp/out" 2>"$tmp/err"
    if [ $? -eq 0 ] && grep -q "^usage: rotorquant $c " "$tmp/out" && [ ! -s "$tmp/err" ]; then ok "$c --help"
    else bad "$c --help"; fi
done
run "-h anywhere" 0 "" "$RQ" perplexity --ctx 64 -h

# ---- usage errors: exit 2, one line naming the token ---------------------------
run "unknown command" 2 "unknown command 'frobnicate'" "$RQ" frobnicate
run "unknown option" 2 "unknown option '--bogus'" "$RQ" perplexity --bogus
run "inapplicable option" 2 "option -p does not apply to perplexity" "$RQ" perplexity -p hello
run "inapplicable --json" 2 "option --json does not apply to generate" "$RQ" generate -p hi --json
run "fidelity refuses --configs" 2 "option --configs does not apply to fidelity" "$RQ" fidelity --configs turbo3
run "--configs names the bad token" 2 "unknown cache type 'bogus' in 'turbo3,q8_0/bogus'" \
    "$RQ" perplexity --configs turbo3,q8_0/bogus
run "-ctk names the bad type" 2 "unknown cache type 'nope'" "$RQ" generate -p hi -ctk nope
run "missing value" 2 "option --chunks needs a value" "$RQ" fidelity --chunks
run "bad number" 2 "bad value for --chunks: 'x'" "$RQ" fidelity --chunks x
run "--kv-bits names the bad budget" 2 "--kv-bits: bad budget '0.5' in '3.25,0.5'" "$RQ" perplexity --kv-bits 3.25,0.5
run "--kv-bits takes one budget in generate" 2 "--kv-bits: bad budget '4' in '3,4'" "$RQ" generate -p hi --kv-bits 3,4
run "calibrate --offset without -f" 2 "--offset applies to -f TEXT" "$RQ" calibrate -o "$tmp/b.gguf" --offset 5
run "bench --types names the bad type" 2 "'nope'" "$RQ" bench --types turbo3,nope
run "types: unknown option" 2 "unknown or incomplete option '--bogus'" "$RQ" types --bogus
run "eval: unknown option" 2 "unknown option '--bogus'" "$RQ" eval --type turbo3 --keys k.npy --bogus 1
run "batched --sequences names the bad item" 2 "bad item 'x' in '1,x'" "$RQ" batched --sequences 1,x
run "batched --mem-budget unit" 2 "bad value for --mem-budget: '1XB'" "$RQ" batched --mem-budget 1XB
run "batched: --types or -ctk" 2 "either --types or -ctk/-ctv" "$RQ" batched --types turbo3 -ctk f16
run "batched --kv-bits names the bad budget" 2 "--kv-bits: bad budget '0.5' in '3.25,0.5'" "$RQ" batched --kv-bits 3.25,0.5
run "batched --kv-family" 2 "bad value for --kv-family: 'e8'" "$RQ" batched --kv-bits 3 --kv-family e8
run "RQ_SIMD=bogus" 2 "unknown SIMD level 'bogus'" env RQ_SIMD=bogus "$RQ" types
run "RQ_SIMD=scalar" 0 "" env RQ_SIMD=scalar "$RQ" types

# ---- inputs and outputs, checked before the model loads (-m is missing) -------
mkdir "$tmp/dir.npy"
run "eval: a directory as .npy" 1 "is a directory" "$RQ" eval --type turbo3 --keys "$tmp/dir.npy"
run "bench: a directory as .npy" 1 "is a directory" "$RQ" bench --data "npy:$tmp/dir.npy" --reps 0
run "calibrate -o in a missing directory" 1 "cannot write in $tmp/none" \
    "$RQ" calibrate -m "$tmp/no.gguf" -o "$tmp/none/b.gguf"
run "calibrate -o a directory" 1 "is a directory" "$RQ" calibrate -m "$tmp/no.gguf" -o "$tmp"
: >"$tmp/file"
run "dump-kv -o a file" 1 "is not a directory" "$RQ" dump-kv -m "$tmp/no.gguf" -o "$tmp/file"
mkdir "$tmp/old"
echo '{}' >"$tmp/old/manifest.json"
run "dump-kv fails on the model" 1 "$tmp/no.gguf" "$RQ" dump-kv -m "$tmp/no.gguf" -o "$tmp/old"
if [ ! -e "$tmp/old/manifest.json" ]; then ok "dump-kv removes an old manifest before it starts"
else bad "dump-kv removes an old manifest before it starts"; fi
run "-m gemma3: \$RQ_GEMMA3, and how to download it" 1 "$tmp/no.gguf: " env RQ_GEMMA3="$tmp/no.gguf" "$RQ" generate -m gemma3 -p hi
if grep -qF "make model MODEL=gemma3" "$tmp/err"; then ok "-m gemma3: names make model MODEL=gemma3"
else bad "-m gemma3: names make model MODEL=gemma3"; fi
run "-m smollm2: \$RQ_MODEL" 1 "$tmp/no.gguf: " env RQ_MODEL="$tmp/no.gguf" "$RQ" perplexity -m smollm2
run "dump-kv creates its directory" 1 "$tmp/no.gguf" "$RQ" dump-kv -m "$tmp/no.gguf" -o "$tmp/new"
if [ -d "$tmp/new" ]; then ok "dump-kv made -o DIR"; else bad "dump-kv made -o DIR"; fi

# ---- with the model ---------------------------------------------------------------
if [ ! -f "$MODEL" ]; then
    skip=1
    echo "  skip cli: model commands: SmolLM2 model not found at $MODEL (run \`make model\`)"
else
    if [ ! -f "$TEXT" ]; then
        skip=$((skip + 1))
        echo "  skip cli: fidelity/dump-kv/stored perplexity: evaluation text not found at $TEXT (run \`make evaltext\`)"
    else
        "$RQ" fidelity --ctx 16 --chunks 3 >"$tmp/out" 2>"$tmp/err"
        if grep -q "3 chunks of 16 tokens" "$tmp/out"; then ok "fidelity --chunks 3 honoured"; else bad "fidelity --chunks 3 honoured"; fi
        "$RQ" dump-kv -o "$tmp/kv" --layers 1,3 --n-tokens 16 --f16 >"$tmp/out" 2>"$tmp/err"
        if [ $? -eq 0 ] && [ -f "$tmp/kv/manifest.json" ] && [ -f "$tmp/kv/layer03_v.npy" ] &&
            grep -q '"layers": \[1, 3\]' "$tmp/kv/manifest.json" && grep -q '"dtype": "float16"' "$tmp/kv/manifest.json" &&
            [ "$(ls "$tmp/kv" | wc -l)" -eq 7 ]; then ok "dump-kv: files, then the manifest"
        else bad "dump-kv: files, then the manifest"; fi
        # --int8-scores: turbo3 and tcq3 keys are scored in int8 (the rows
        # change); 5-bit MSE keys are not served (their row is the float
        # path's, bit for bit)
        "$RQ" perplexity --ctx 64 --chunks 2 --configs turbo3,turbo5/turbo3,tcq3/turbo3 >"$tmp/out" 2>"$tmp/err"
        "$RQ" perplexity --ctx 64 --chunks 2 --configs turbo3,turbo5/turbo3,tcq3/turbo3 --int8-scores >"$tmp/out8" 2>"$tmp/err"
        if [ -n "$(grep '^| turbo5 |' "$tmp/out")" ] && [ "$(grep '^| turbo5 |' "$tmp/out")" = "$(grep '^| turbo5 |' "$tmp/out8")" ] &&
            [ -n "$(grep '^| turbo3 |' "$tmp/out8")" ] && [ "$(grep '^| turbo3 |' "$tmp/out")" != "$(grep '^| turbo3 |' "$tmp/out8")" ] &&
            [ -n "$(grep '^| tcq3 |' "$tmp/out8")" ] && [ "$(grep '^| tcq3 |' "$tmp/out")" != "$(grep '^| tcq3 |' "$tmp/out8")" ]; then
            ok "perplexity --int8-scores: turbo3 and tcq3 keys scored in int8, turbo5 keys unchanged"
        else bad "perplexity --int8-scores: turbo3 and tcq3 keys scored in int8, turbo5 keys unchanged"; fi
        # --decode-ctx: its rows run one after another; stderr points to the interleaved timing
        "$RQ" perplexity --ctx 16 --chunks 1 --decode-ctx 32 >"$tmp/out" 2>"$tmp/err"
        if [ $? -eq 0 ] && grep -q ' tok/s @32 |' "$tmp/out" && grep -q 'build/bench/decode_profile' "$tmp/err"; then
            ok "perplexity --decode-ctx: tok/s column, pointer to bench/decode_profile"
        else bad "perplexity --decode-ctx: tok/s column, pointer to bench/decode_profile"; fi
    fi
    "$RQ" generate -p "Hi" -n 1 >"$tmp/out" 2>"$tmp/err"
    if grep -q "generated 1 tokens - tok/s" "$tmp/err"; then ok "generate -n 1: decode speed undefined, '-'"
    else bad "generate -n 1: decode speed undefined, '-'"; fi
    # --prompt-cache: the second run restores the prompt and prints what the
    # first printed (greedy); a changed prompt reuses the common prefix and
    # prints what a run without the cache prints; a corrupt file: a warning
    P="The quick brown fox jumps over the lazy dog. Once upon a time, in a land far away, there lived"
    PL="$P a miller who had three sons, a mill, a donkey and a cat. When the miller died, the eldest son took the mill, the second son the donkey, and the youngest son was left with nothing but the cat, which made him very sad indeed. But the cat said to him: do not worry, master, give me a bag and a pair of boots, and you will see"
    for t in f16 turbo3; do
        "$RQ" generate -p "$P" -n 8 -ctk $t -ctv $t >"$tmp/plain" 2>"$tmp/err"
        "$RQ" generate -p "$P" -n 8 -ctk $t -ctv $t --prompt-cache "$tmp/pc.$t" >"$tmp/out1" 2>"$tmp/err1"
        "$RQ" generate -p "$P" -n 8 -ctk $t -ctv $t --prompt-cache "$tmp/pc.$t" >"$tmp/out" 2>"$tmp/err"
        if grep -q "reused 0 of" "$tmp/err1" && grep -q "saved$" "$tmp/err1" && grep -q "reused 22 of 23 prompt tokens" "$tmp/err" &&
            cmp -s "$tmp/plain" "$tmp/out1" && cmp -s "$tmp/plain" "$tmp/out"; then ok "generate --prompt-cache ($t): the same greedy text"
        else bad "generate --prompt-cache ($t): the same greedy text"; fi
        # keys are centred (the default): a common prefix shorter than the
        # centring window (64 + 1) is prefilled again, so the cache is the one
        # a run without the file builds; a longer one is reused
        "$RQ" generate -p "$PL" -n 8 -ctk $t -ctv $t >"$tmp/plain" 2>"$tmp/err"
        "$RQ" generate -p "$PL" -n 8 -ctk $t -ctv $t --prompt-cache "$tmp/pc.$t" >"$tmp/out" 2>"$tmp/err"
        if grep -q "shorter than the key centring window" "$tmp/err" && grep -q "reused 0 of 105" "$tmp/err" &&
            cmp -s "$tmp/plain" "$tmp/out"; then ok "generate --prompt-cache ($t): a prefix shorter than the centring window is prefilled"
        else bad "generate --prompt-cache ($t): a prefix shorter than the centring window is prefilled"; fi
        "$RQ" generate -p "$PL that" -n 8 -ctk $t -ctv $t >"$tmp/plain" 2>"$tmp/err"
        "$RQ" generate -p "$PL that" -n 8 -ctk $t -ctv $t --prompt-cache "$tmp/pc.$t" >"$tmp/out" 2>"$tmp/err"
        if grep -q "reused 105 of 106 prompt tokens, prefilled 1" "$tmp/err" && cmp -s "$tmp/plain" "$tmp/out"; then
            ok "generate --prompt-cache ($t): a longer prompt reuses the common prefix"
        else bad "generate --prompt-cache ($t): a longer prompt reuses the common prefix"; fi
    done
    "$RQ" generate -p "$P" -n 2 -ctk turbo3 -ctv turbo3 --prompt-cache "$tmp/pc.f16" >"$tmp/out" 2>"$tmp/err"
    if [ $? -eq 0 ] && [ "$(grep -c warning "$tmp/err")" -eq 1 ] && grep -q "saved with types f16/f16" "$tmp/err" &&
        grep -q "reused 0 of 23" "$tmp/err"; then ok "generate --prompt-cache: other cache types, one warning, a full prefill"
    else bad "generate --prompt-cache: other cache types, one warning, a full prefill"; fi
    head -c 200 "$tmp/pc.turbo3" >"$tmp/pc.cut"
    "$RQ" generate -p "$P" -n 2 -ctk turbo3 -ctv turbo3 --prompt-cache "$tmp/pc.cut" >"$tmp/out" 2>"$tmp/err"
    if [ $? -eq 0 ] && [ "$(grep -c warning "$tmp/err")" -eq 1 ] && grep -q "do not hold" "$tmp/err"; then
        ok "generate --prompt-cache: a truncated file, one warning"
    else bad "generate --prompt-cache: a truncated file, one warning"; fi
    # batched: a tiny run of 3 sequences (forked, then distinct copies); the
    # capacity by page arithmetic is what allocating finds
    for fill in "" --distinct; do
        "$RQ" batched --sequences 1,3 --ctx 16 --steps 2 --types turbo3 --mem-budget 8MiB --json $fill \
            >"$tmp/out" 2>"$tmp/err"
        if [ $? -eq 0 ] && grep -q '"sequences": 3, "ctx": 16,' "$tmp/out" &&
            grep -q '"by_pages": 6, "by_alloc": 6, "f16_by_pages": 1}' "$tmp/out"; then ok "batched $fill: runs and capacity"
        else bad "batched $fill: runs and capacity"; fi
    done
    # --kv-bits in generate: a 13-token run is planned for 512 positions, not
    # 13 (key centring's fixed μ and sink cost 24/ctx bits/value), so 3.25
    # bits/value leave every layer's K and V at least 2 bits
    "$RQ" generate -p "The capital of France is" -n 8 --kv-bits 3.25 >"$tmp/out" 2>"$tmp/err"
    line=$(grep '^kv-bits 3.25: ' "$tmp/err")
    if [ $? -eq 0 ] && echo "$line" | grep -q 'planned for 512 positions (prompt + n = 13, at least 512)' &&
        echo "$line" | grep -Eq 'K [2-5]{30} / V [2-5]{30} '; then ok "generate --kv-bits 3.25: a short run planned for 512 positions, >= 2-bit layers"
    else bad "generate --kv-bits 3.25: a short run planned for 512 positions, >= 2-bit layers"; fi
    # --kv-bits in batched: one more configuration per budget next to the
    # types, planned for --ctx + --steps; its JSON names the budget, family,
    # per-layer choice and bits/value, and its capacity by page arithmetic
    # (each layer's own page bytes) is what allocating finds
    "$RQ" batched --sequences 2 --ctx 16 --steps 2 --types turbo3 --kv-bits 4.25 --kv-family tcq --mem-budget 8MiB \
        --json >"$tmp/out" 2>"$tmp/err"
    rc=$?
    cap=$(grep -o '"kv_bits": 4.2500, "by_pages": [0-9]*, "by_alloc": [0-9]*' "$tmp/out" | sed 's/.*"by_pages": //; s/, "by_alloc": / /')
    if [ $rc -eq 0 ] && grep -q '^kv-bits 4.25: 4.2[0-9]* bits/value planned for 18 positions (the largest --ctx + --steps)' "$tmp/err" &&
        grep -Eq '"type_k": "kv-bits 4.25", "type_v": "per layer", "sequences": 2, "ctx": 16, .*"bits_per_value": 4\.[0-9]+, "centre_keys": true, "norm_correct": true, "kv_bits": 4\.2500, "kv_family": "tcq", "kv_plan_ctx": 18, "layer_bits_k": "[1-5]{30}", "layer_bits_v": "[1-5]{30}"' "$tmp/out" &&
        grep -q '"type_k": "turbo3", "type_v": "turbo3", "sequences": 2, .*"centre_keys": false' "$tmp/out" &&
        [ -n "$cap" ] && [ "${cap% *}" = "${cap#* }" ] && [ "${cap% *}" -gt 0 ]; then ok "batched --kv-bits: a per-layer configuration, its JSON and capacity"
    else bad "batched --kv-bits: a per-layer configuration, its JSON and capacity"; fi
    printf 'Hello world' >"$tmp/two.txt" # two tokens: the scored one has no next token
    "$RQ" perplexity -f "$tmp/two.txt" --ctx 2 --chunks 1 >"$tmp/out" 2>"$tmp/err"
    if grep -q '^| f32 | f32 | 32.000 | 46080 | - | - |' "$tmp/out"; then ok "perplexity 0/0 prints '-'"
    else bad "perplexity 0/0 prints '-'"; fi
    # the numbers the perplexity loop gave before it moved to model/ppl.c, at
    # the AVX-512 level they were recorded at: the fused attention sums in
    # each level's own order, and a last-bit change in one layer's output can
    # flip a code of the next layer's quantized keys, so compressed-cache
    # rows differ between levels (encoded bytes never do; f32 rows agree).
    # Recorded without norm correction and key centring (the CLI's defaults
    # since both were measured to lower KLD): --no-norm-correct --no-centre-keys
    if [ ! -f "$TEXT" ]; then
        : # counted in the skip above
    elif ! "$RQ" --version | grep -q 'simd avx512'; then
        skip=$((skip + 1))
        echo "  skip cli: perplexity stored rows: recorded at simd avx512, this build runs $("$RQ" --version | sed 's/.*simd //; s/)//')"
    else
    RQ_SIMD=avx512 "$RQ" perplexity --ctx 64 --chunks 2 --no-norm-correct --no-centre-keys --configs turbo3,q8_0/turbo4 \
        >"$tmp/out" 2>"$tmp/err"
    cat >"$tmp/want" <<'ROWS'
| f32 | f32 | 32.000 | 46080 | 32.3166 | +0.0000 | 0.00000 | 0.00000 | 1.0000 |
| turbo3 | turbo3 | 3.250 | 4680 | 40.2165 | +7.8999 | 0.22507 | 1.06816 | 0.8125 |
| q8_0 | turbo4 | 6.375 | 9180 | 32.6289 | +0.3123 | 0.00905 | 0.03935 | 0.9531 |
ROWS
    if grep '^| [fqt]' "$tmp/out" | cmp -s - "$tmp/want"; then ok "perplexity: stored PPL/KLD/top-1"
    else bad "perplexity: stored PPL/KLD/top-1"; fi
    fi
fi

# ---- with Gemma 3 270M -------------------------------------------------------------
if [ ! -f "$GEMMA" ]; then
    skip=$((skip + 1))
    echo "  skip cli: Gemma 3 commands: model not found at $GEMMA (run \`make model MODEL=gemma3\`)"
else
    "$RQ" generate -m gemma3 -p "The capital of France is the city of" -n 4 -ctk f16 -ctv f16 >"$tmp/out" 2>"$tmp/err"
    if grep -q "Paris" "$tmp/out"; then ok "generate -m gemma3: Paris"; else bad "generate -m gemma3: Paris"; fi
    "$RQ" batched -m gemma3 --sequences 2 --ctx 8 --steps 1 --types turbo3 --no-alloc-check --json >"$tmp/out" 2>"$tmp/err"
    if [ $? -eq 0 ] && grep -q '"sequences": 2, "ctx": 8,' "$tmp/out"; then ok "batched -m gemma3: many sequences"
    else bad "batched -m gemma3: many sequences"; fi
    if [ ! -f "$TEXT" ]; then
        skip=$((skip + 1))
        echo "  skip cli: fidelity -m gemma3: evaluation text not found at $TEXT (run \`make evaltext\`)"
    else
        "$RQ" fidelity -m gemma3 --ctx 16 --chunks 1 --json >"$tmp/out" 2>"$tmp/err"
        if grep -q '"layer": 0, "window": 512,' "$tmp/out" && grep -q '"layer": 5, "window": 0,' "$tmp/out"; then
            ok "fidelity -m gemma3: local layers carry their window"
        else bad "fidelity -m gemma3: local layers carry their window"; fi
    fi
fi

[ "$skip" -ne 0 ] && echo "cli: $skip group(s) skipped (see the skip line above)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
