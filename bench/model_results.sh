#!/bin/sh
# bench/model_results.sh BUILD — the real-model section of docs/RESULTS.md
# (issue 5): SmolLM2-135M with every KV cache configuration in one run of
# `rotorquant perplexity` (PPL, KLD and top-1 against the f32 cache on the
# same tokens, decode tokens/s at 512 and 2048 context) and per-layer
# attention fidelity (`rotorquant fidelity`). Run it as `make model-results`
# (downloads the model and prepares the text first). Raw outputs stay in
# BUILD/results/. Every number written comes from these commands.
# REUSE=1 keeps raw outputs already in BUILD/results (each made by the same
# command) and only runs the missing ones: to rebuild the section after
# adding a measurement without rerunning the 25 minutes of the others.
set -eu
B=${1:-build}
OUT=$B/results
mkdir -p "$OUT"
# run FILE ARGS…: `rotorquant ARGS` > BUILD/results/FILE
run() {
    f=$1
    shift
    if [ "${REUSE:-0}" = 1 ] && [ -s "$OUT/$f" ]; then
        echo "model-results: reusing $OUT/$f"
        return
    fi
    echo "model-results: $B/rotorquant $*"
    "$B/rotorquant" "$@" > "$OUT/$f.tmp"
    mv "$OUT/$f.tmp" "$OUT/$f"
}
CHUNKS=${CHUNKS:-8}
CONFIGS=f16/f16,q8_0/q8_0,q4_0/q4_0,q4_0h/q4_0h,turbo5/turbo3,turbo5/turbo4,turbo4/turbo4,turbo4/turbo3,turbo4/turbo2,turbo3/turbo3,turbo3p/turbo3,rotor3/rotor3,dense3/dense3,planar3/planar3,iso3/iso3,q8_0/turbo3
NC_CONFIGS=turbo5/turbo3,turbo4/turbo4,turbo4/turbo2,turbo3/turbo3

PPL="perplexity --no-norm-correct --no-centre-keys --ctx 512 --chunks $CHUNKS --threads 2 --configs $CONFIGS --decode-ctx 512,2048"
run perplexity.md $PPL
NC="perplexity --no-centre-keys --ctx 512 --chunks $CHUNKS --threads 2 --norm-correct --configs $NC_CONFIGS"
run perplexity_nc.md $NC
# A calibrated key basis (rotorquant calibrate), one for every run below:
# bases per key-position range (0, 256, 512, 1024) from 2 × 2064 tokens the
# model samples itself (2064: the decode-speed runs go 16 tokens past 2048).
KB="$OUT/key_basis.gguf"
CAL="calibrate --ctx 2064 --n-tokens 4128 --threads 2 -o $KB"
run calibrate.txt $CAL
KB_CONFIGS=turbo3/turbo3,turbo4/turbo2,turbo3/turbo2,turbo4/turbo3,q4_0/q4_0
KBP="perplexity --no-norm-correct --no-centre-keys --ctx 512 --chunks $CHUNKS --threads 2 --key-basis $KB --configs $KB_CONFIGS"
run perplexity_kb.md $KBP
KBNC="perplexity --no-centre-keys --ctx 512 --chunks $CHUNKS --threads 2 --key-basis $KB --norm-correct --configs turbo3/turbo3,turbo4/turbo2"
run perplexity_kb_nc.md $KBNC

LC=${LONG_CHUNKS:-3}
L0="perplexity --no-norm-correct --no-centre-keys --ctx 2048 --chunks $LC --threads 2 --configs f16/f16,q4_0/q4_0,turbo4/turbo2,turbo3/turbo3 --decode-ctx 2048"
run perplexity_2048.md $L0
L1="perplexity --no-norm-correct --no-centre-keys --ctx 2048 --chunks $LC --threads 2 --key-basis $KB --configs turbo4/turbo2,turbo3/turbo3 --decode-ctx 2048"
run perplexity_2048_kb.md $L1
L2="perplexity --no-centre-keys --ctx 2048 --chunks $LC --threads 2 --key-basis $KB --norm-correct --configs turbo4/turbo2,turbo3/turbo3"
run perplexity_2048_kb_nc.md $L2
# Ablation (turbo3/turbo3): one basis for every position (--ranges 1)
# calibrated on 512, 2064 and 8192 positions, and a 512-position one from
# Austen text far from the scored chunks
TEXT=${RQ_TEXT:-${RQ_CACHE_DIR:-$HOME/.cache/rotorquant}/austen.txt}
run calibrate_single512.txt calibrate --ctx 512 --ranges 1 --threads 2 -o $OUT/kb_single512.gguf
run calibrate_single2064.txt calibrate --ctx 2064 --n-tokens 4128 --ranges 1 --threads 2 -o $OUT/kb_single2064.gguf
run calibrate_single8192.txt calibrate -f $TEXT --offset 600000 --ctx 8192 --n-tokens 8192 --ranges 1 --threads 2 -o $OUT/kb_single8192.gguf
run calibrate_austen512.txt calibrate -f $TEXT --offset 600000 --ctx 512 --threads 2 -o $OUT/kb_austen512.gguf
AB="perplexity --no-norm-correct --no-centre-keys --ctx 512 --chunks $CHUNKS --threads 2 --configs turbo3/turbo3"
AB2="perplexity --no-norm-correct --no-centre-keys --ctx 2048 --chunks $LC --threads 2 --configs turbo3/turbo3"
for b in single512 single2064 single8192 austen512; do
    run ablation_$b.md $AB --key-basis $OUT/kb_$b.gguf
done
run ablation_single2064_2048.md $AB2 --key-basis $OUT/kb_single2064.gguf
FID="fidelity --no-norm-correct --no-centre-keys --ctx 512 --chunks 2 --threads 2"
for t in turbo3 rotor3 q4_0; do
    run "fidelity_$t.md" $FID -ctk $t -ctv $t
done
run fidelity_turbo3_kb.md $FID -ctk turbo3 -ctv turbo3 --key-basis $KB

python3 - "$OUT" "$PPL" "$FID" "$CHUNKS" "$NC" "$CAL" "$KBP" "$KBNC" "$L0" "$L1" "$L2" "$AB" "$AB2" <<'PY'
import re, sys, platform, subprocess, datetime
out, ppl_cmd, fid_cmd, chunks, nc_cmd, cal_cmd, kb_cmd, kbnc_cmd, l0_cmd, l1_cmd, l2_cmd, ab_cmd, ab2_cmd = sys.argv[1:14]
ppl = open(f"{out}/perplexity.md").read().strip()
def rows(f, skip_f32=True):
    return "\n".join(l for l in open(f"{out}/{f}").read().splitlines()
                     if l.startswith("|") and not (skip_f32 and l.startswith("| f32 ")) and not l.startswith("|---")
                     and not l.startswith("| K "))
def table(f):
    return "\n".join(l for l in open(f"{out}/{f}").read().splitlines() if l.startswith("|"))
kb = table("perplexity_kb.md") + "\n" + rows("perplexity_kb_nc.md").replace(" + basis |", " + basis, norm-corrected |")
long0 = table("perplexity_2048.md")
long1 = rows("perplexity_2048_kb.md")
def kld(f):  # mean KLD of the turbo3/turbo3 row
    for l in rows(f).splitlines():
        c = l.split("|")
        if c[1].strip().startswith("turbo3") and c[2].strip() == "turbo3": return float(c[7])
    raise SystemExit(f"no turbo3/turbo3 row in {f}")
ablation = "\n".join(f"| {name} | {ctx} | {kld(f):.4f} |" for name, ctx, f in (
    ("one basis, 512 sampled positions (`calibrate --ctx 512 --ranges 1`)", 512, "ablation_single512.md"),
    ("one basis, 2064 sampled positions (`calibrate --ctx 2064 --n-tokens 4128 --ranges 1`)", 512, "ablation_single2064.md"),
    ("the same", 2048, "ablation_single2064_2048.md"),
    ("one basis, 8192 Austen positions (`calibrate -f TEXT --offset 600000 --ctx 8192 --n-tokens 8192 --ranges 1`)", 512, "ablation_single8192.md"),
    ("ranges 0/256, 512 Austen positions (`calibrate -f TEXT --offset 600000 --ctx 512`)", 512, "ablation_austen512.md"),
    ("ranges 0/256/512/1024, 2064 sampled positions (the basis above)", 512, "perplexity_kb.md"),
    ("the same", 2048, "perplexity_2048_kb.md")))
# the norm-corrected rows have no decode column: one empty cell keeps the table
long2 = "\n".join(l + " |" for l in rows("perplexity_2048_kb_nc.md").replace(" + basis |", " + basis, norm-corrected |").splitlines())
nc = open(f"{out}/perplexity_nc.md").read().strip()
simd = subprocess.run(["sh", "-c", f"{out}/../rotorquant --version"], capture_output=True, text=True).stdout.strip()
def fid_mean(t):
    rows = [l for l in open(f"{out}/fidelity_{t}.md") if l.startswith("| mean")]
    return rows[0].strip() if rows else "| mean | ? |"
fid = "\n".join(f"| {t} " + fid_mean(t)[len('| mean '):] for t in ("turbo3", "rotor3", "q4_0"))
fid += "\n| turbo3, keys + basis " + fid_mean("turbo3_kb")[len('| mean '):]
cpu = ""
try:
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"): cpu = l.split(":", 1)[1].strip(); break
except OSError: pass
sec = f"""<!-- BEGIN model -->
## A real LLM: SmolLM2-135M with the compressed cache (issue 5)

Model: SmolLM2-135M-Instruct Q4_1 GGUF (`make model`; 30 layers, 9 query / 3 KV
heads, head_dim 64), run by our C forward pass (model/) with keys and values in
the library's KV cache and attention through `rq_cache_attention`. Text: Jane
Austen's six novels from Debian's r-cran-janeaustenr (`make evaltext`).
Machine: {cpu}, 2 threads, {simd}; {datetime.date.today()}.
Command: `make model-results` (bench/model_results.sh), which runs
`rotorquant {ppl_cmd}`:
{chunks} chunks of 512 tokens, the second half of each scored (llama.cpp's
convention); KLD and top-1 compare each configuration's next-token
distribution with the f32 cache's on the same tokens; bits/value is the mean
of K and V at d = 64 (every stored byte: norms included); tok/s is the median
time of one decode step right after a prefill of 512 / 2048 tokens.

{ppl}

The same with norm-corrected blocks (each block stores ‖x‖/‖ĉ‖, so decoded
vectors keep their norm; `rotorquant {nc_cmd}`):

{nc}

With a calibrated key basis (`rotorquant {cal_cmd}`: keys and queries of
2 × 2064 tokens the model samples itself, one basis per layer, KV head and
key-position range 0–255, 256–511, 512–1023, 1024+; then
`rotorquant {kb_cmd}`, and the norm-corrected rows from
`rotorquant {kbnc_cmd}`). The cache stores A·k and scores A⁻ᵀq against it,
so every score is unchanged; each A minimizes the expected score error
(rq_key_basis_fit). No bytes per token are added (the bases: 30 × 3 × 4 ×
64² floats, 5.6 MiB per model, kept with their inverses in the cache):

{kb}

At 2048 context (`rotorquant {l0_cmd}`; then with the same basis,
`rotorquant {l1_cmd}`, and the norm-corrected rows from
`rotorquant {l2_cmd}`):

{long0}
{long1}
{long2}

Which basis (turbo3/turbo3 mean KLD; `rotorquant {ab_cmd} --key-basis B` at
512 context, `rotorquant {ab2_cmd} --key-basis B` at 2048; no basis: 0.271 at
512, 0.265 at 2048):

| basis B | context | mean KLD |
|---|---:|---:|
{ablation}

Per-layer attention fidelity (`rotorquant {fid_cmd} -ctk T -ctv T`, the
last row with `--key-basis` the basis above: the f32-cache forward pass, and
at every layer the compressed K/V evaluated on the same queries, every
position of 2 × 512 tokens a query; means over layers):

| K = V | score cos | softmax KL | output cos | top-1 | top-5 |
|---|---:|---:|---:|---:|---:|
{fid}

Per-layer tables: `{out}/fidelity_*.md` after the run.
<!-- END model -->"""
p = "docs/RESULTS.md"
doc = open(p).read()
if "<!-- BEGIN model -->" in doc:
    doc = re.sub(r"<!-- BEGIN model -->.*?<!-- END model -->", lambda m: sec, doc, flags=re.S)
else:
    doc = doc.rstrip("\n") + "\n\n" + sec + "\n"
open(p, "w").write(doc)
print("model-results: docs/RESULTS.md updated")
PY
