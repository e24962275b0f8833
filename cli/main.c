/*
 * main.c — the `rotorquant` command-line tool. Thin: parses arguments, calls
 * the library (include/rotorquant.h only) and model/, prints. Errors become
 * one line on stderr (cli_fail) and a nonzero exit: 2 for usage errors, 1
 * for failures.
 *
 *   rotorquant bench  [--data LIST] [--dims LIST] [--types LIST] [--json] [--dump DIR] ...
 *   rotorquant eval   --type T --keys K.npy [--queries Q.npy] [--values V.npy] [--json] ...
 *   rotorquant types  [--dims D]
 *   rotorquant generate | perplexity | fidelity | dump-kv | calibrate  (a real LLM: cli/cmd_model.c)
 *   rotorquant batched  (many sequences at once: cli/cmd_batched.c)
 *   rotorquant CMD --help    that command's usage
 *   rotorquant --version
 */
#include "cli.h"

#include <math.h>
#include <stdarg.h>

/* Each command's usage, printed by `rotorquant CMD --help` (and, first
 * line(s) only up to the blank line, by `rotorquant --help`). */
static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *usage;
} CMDS[] = {
    {"bench", cmd_bench,
     "  bench  [--data isotropic,outlier,npy:PATH] [--dims 64,128,256] [--types T,..] [--json]\n"
     "         [--ctx 1024,4096] [--n N] [--queries Q] [--hot H] [--logit-std L] [--trials T]\n"
     "         [--needle-keys N] [--snr S] [--reps R] [--speed-n N] [--seed S] [--dump DIR]\n"
     "                                                 quality, size and speed of every type\n"
     "\n"
     "    --data LIST      data sets: isotropic, outlier, npy:PATH (rows of a .npy; d from the file)\n"
     "    --dims LIST      head dimensions (synthetic data)\n"
     "    --types LIST     registry types, or all (default: every type but f32; `rotorquant types`)\n"
     "    --ctx LIST       attention key counts          --n N        vectors per pool (2048)\n"
     "    --queries Q      attention queries (32)        --hot H      hot keys per query (8)\n"
     "    --logit-std L    std dev of exact logits (2)   --trials T   needle trials (200)\n"
     "    --needle-keys N  keys per needle trial (1024)  --snr S      needle SNR (0.2)\n"
     "    --reps R         speed repetitions (5; 0 = no speed)   --speed-n N  vectors timed (1024)\n"
     "    --seed S         data and quantizer seed (42)  --json       one JSON document\n"
     "    --dump DIR       write the derived arrays as .npy (for peer benchmarks) instead\n"},
    {"eval", cmd_eval,
     "  eval   --type T --keys K.npy [--queries Q.npy] [--values V.npy] [--type-v T]\n"
     "         [--causal] [--scale S] [--seed S] [--reps R] [--json]\n"
     "                                                 the same metrics on your own arrays\n"
     "\n"
     "    K, V: (n, d) or (heads, n, d); Q: (m, d) or (q_heads, m, d), q_heads a multiple of heads;\n"
     "    float32 or float16 .npy. --causal: query i sees keys up to n - m + i. --scale: logit\n"
     "    scale (0 = 1/sqrt(d)). --reps: speed repetitions (5; 0 = none).\n"},
    {"types", cmd_types,
     "  types  [--dims D]                              the type registry with exact sizes\n"},
    {"generate", cmd_generate,
     "  generate   [-m MODEL] -p PROMPT [-n N] [-ctk T] [-ctv T] [--temp X] [--seed S] [-t N]\n"
     "             [-b N] [--key-basis B.gguf] [--no-norm-correct] [--no-centre-keys] [--centre-window N]\n"
     "             [--kv-bits B [--kv-family turbo|tcq]] [--prompt-cache FILE] [--int8-scores]\n"
     "                                                 run SmolLM2 or Gemma 3 with a compressed KV cache\n"
     "\n"
     "    -m MODEL    GGUF (default $RQ_MODEL, else the `make model` download); smollm2 or\n"
     "                gemma3: the `make model` / `make model MODEL=gemma3` downloads by name\n"
     "    -p PROMPT   the prompt            -n N        tokens to generate (32)\n"
     "    -ctk T -ctv T  key and value cache types (f16)   --temp X  0 = greedy (0)\n"
     "    --seed S    sampling and quantizer seed (42)      -t N      threads (2)\n"
     "    -b N        tokens per forward batch (256)\n"
     "    --key-basis B.gguf  keys in a calibrated basis (`rotorquant calibrate`)\n"
     "    --no-norm-correct   do not store |x|/|x^| (by default decoded vectors keep their norm)\n"
     "    --no-centre-keys    store keys as they are; by default they are stored as k - mu (mu:\n"
     "                        the fp16 mean of key positions 1..N per layer and KV head,\n"
     "                        N = --centre-window, 64) with position 0 exact in fp16\n"
     "    --kv-bits B         per-layer K/V types (turbo1..5) within B bits/value, every stored\n"
     "                        bit counted, from costs measured on 512 tokens of the model's own\n"
     "                        text (printed); overrides -ctk/-ctv. Planned for prompt + n\n"
     "                        positions, at least 512 (key centring's fixed mu and sink cost\n"
     "                        24/ctx bits/value; the line says which context it planned for)\n"
     "    --kv-family tcq     the budget's 2..5-bit candidates are the trellis codes tcq2..5\n"
     "                        (1 bit: turbo1); default turbo\n"
     "    --prompt-cache FILE  after the prompt, save its KV cache and token ids to FILE; a later\n"
     "                run reuses the longest common token prefix and prefills only the rest (same\n"
     "                model, cache types, seed and key basis; otherwise a warning and a full prefill;\n"
     "                with centred keys a common prefix shorter than the window + 1 is prefilled again)\n"
     "    --int8-scores  score keys of 1..4-bit codes and tcq2..5 keys in int8 (query and\n"
     "                centroids / TCQ LUT rounded to 8 bits, exact int32 sums:\n"
     "                rq_cache_config.int8_scores); off by default\n"},
    {"batched", cmd_batched,
     "  batched    [-m MODEL] [--sequences 1,8,32] [--ctx 512,4096] [-ctk T -ctv T | --types T,..]\n"
     "             [--mem-budget 1GiB] [--steps N] [--distinct] [--no-alloc-check] [-t N] [--json]\n"
     "             [--kv-bits B,.. [--kv-family turbo|tcq]] [--int8-scores]\n"
     "                                                 decode many sequences at once: tok/s, bytes, capacity\n"
     "\n"
     "    For each type, ctx and B: one prompt of ctx tokens is prefilled once and forked into B\n"
     "    sequences (shared pages, as a server with one system prompt; --distinct: B copies of\n"
     "    the pages instead, B x the memory traffic), then --steps (8) decode steps of all B at\n"
     "    once are timed: median step, aggregate tok/s (B / step), per-sequence tok/s, cache bytes.\n"
     "    Then per type and ctx the most ctx-token sequences a --mem-budget page pool holds\n"
     "    (page arithmetic, checked by allocating unless --no-alloc-check), and the ratio to f16.\n"
     "    --types T,..  several runs, K = V = T each (default: -ctk/-ctv, else f16)\n"
     "    --kv-bits L   budgets in bits/value, each one more run with per-layer K/V types (as for\n"
     "                  generate; keys centred, norms corrected), planned for the largest\n"
     "                  --ctx + --steps; the choice and bits/value printed (JSON: kv_bits, ...)\n"
     "    --kv-family tcq  the budgets pick among tcq2..5 (and turbo1); default turbo\n"
     "    --mem-budget  bytes, or with K/KiB/M/MiB/G/GiB (1GiB)   -t N  threads (2)\n"
     "    --int8-scores  int8 key scores, as for generate\n"
     "    The prompt is the evaluation text's start (pseudo-random tokens without it).\n"},
    {"perplexity", cmd_perplexity,
     "  perplexity [-m MODEL] [-f TEXT] [--ctx N] [--chunks N] [-ctk T -ctv T | --configs K/V,..]\n"
     "             [--decode-ctx 512,2048] [--key-basis B.gguf] [--kv-bits B,..] [--no-norm-correct]\n"
     "             [--no-centre-keys] [--int8-scores] [--json]\n"
     "                                                 PPL, KLD and top-1 vs the f32 cache\n"
     "\n"
     "    -f TEXT       evaluation text (default $RQ_TEXT, else the `make evaltext` download)\n"
     "    --ctx N       tokens per chunk (512); the second half of each is scored\n"
     "    --chunks N    at most N chunks (8)\n"
     "    --configs L   K/V pairs (or T for both), comma-separated, each a row after f32\n"
     "    --decode-ctx L  also time greedy decoding after prefills of these lengths\n"
     "    --kv-bits L   budgets in bits/value, each a row of per-layer types (as for generate),\n"
     "                  planned for --ctx positions\n"
     "    --llamacpp-chunks  llama-perplexity's exact chunks and scored positions (the\n"
     "                  stream starts with BOS when the model adds one; the last position\n"
     "                  of a chunk is not scored), to compare with llama.cpp's numbers\n"
     "    -t N, -b N, --seed S, --key-basis, --no-norm-correct, --no-centre-keys, --centre-window,\n"
     "    --kv-family, --int8-scores: as for generate\n"},
    {"fidelity", cmd_fidelity,
     "  fidelity   [-m MODEL] [-f TEXT] [--ctx N] [--chunks N] [-ctk T] [-ctv T] [--key-basis B.gguf]\n"
     "             [--kv-bits B] [--no-norm-correct] [--no-centre-keys] [--json]\n"
     "                                                 per-layer attention fidelity on real queries\n"
     "\n"
     "    One K/V pair (-ctk/-ctv, default turbo3) against exact attention, every position a\n"
     "    query, on an f32 forward pass. --ctx N: tokens per chunk (512); --chunks N: at most N\n"
     "    chunks (2). -t N, -b N, --seed S, --kv-bits, --kv-family, --no-norm-correct,\n"
     "    --no-centre-keys, --centre-window: as for generate.\n"},
    {"dump-kv", cmd_dump_kv,
     "  dump-kv    [-m MODEL] [-f TEXT] -o DIR [--layers L,..] [--n-tokens N] [--offset N] [--f16]\n"
     "                                                 real post-RoPE Q, K, V to .npy\n"
     "\n"
     "    Writes DIR/layerNN_{q,k,v}.npy (DIR is created) for --layers (0), tokens --offset ..\n"
     "    --offset + --n-tokens - 1 (256) of TEXT, then DIR/manifest.json last: a dump without\n"
     "    a manifest is incomplete. --f16: float16 files.\n"},
    {"calibrate", cmd_calibrate,
     "  calibrate  [-m MODEL] -o B.gguf [-f TEXT [--offset N]] [--n-tokens N] [--ctx N] [--ranges R]\n"
     "             [--temp X] [--seed S]\n"
     "                                                 a key basis from the model's own (or TEXT's)\n"
     "                                                 keys and queries, for --key-basis\n"
     "\n"
     "    --n-tokens N  tokens observed (2048)   --ctx N  positions calibrated (512)\n"
     "    --ranges R    position ranges, one basis each (1 = one basis for every position)\n"
     "    --temp X      sampling temperature of the model's own text (1)\n"},
};
#define N_CMDS (sizeof CMDS / sizeof CMDS[0])

static int usage(FILE *f) {
    fprintf(f, "usage: rotorquant <command> [options]    (rotorquant <command> --help: its options)\n");
    for (size_t i = 0; i < N_CMDS; i++) {
        const char *u = CMDS[i].usage, *end = strstr(u, "\n\n");
        fprintf(f, "%.*s", end ? (int)(end - u + 1) : (int)strlen(u), u);
    }
    fprintf(f, "  MODEL: a GGUF (llama or gemma3 architecture), or smollm2 / gemma3 for the `make model` downloads\n");
    fprintf(f, "  --version                                      version, format version, SIMD level\n");
    return f == stderr ? 2 : 0;
}

int cli_fail(const char *cmd, rq_status st, const char *what) {
    fprintf(stderr, "rotorquant: %s%s%s", cmd ? cmd : "", cmd ? ": " : "", what);
    if (st != RQ_OK) {
        fprintf(stderr, ": %s", rq_status_str(st));
        /* the library's message naming the argument and value at fault, once */
        const char *detail = rq_last_error();
        if (detail[0] && !strstr(what, detail)) fprintf(stderr, " (%s)", detail);
        rq_last_error_clear();
    }
    fputc('\n', stderr);
    return 1;
}

int cli_failf(const char *cmd, rq_status st, const char *fmt, ...) {
    char what[4608];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cli_fail(cmd, st, what);
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    char what[4608];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof what)
        snprintf(what + n, sizeof what - (size_t)n, " (see `rotorquant %s --help`)", cmd);
    cli_fail(cmd, RQ_OK, what);
    return 2;
}

const char *cli_num(char *buf, size_t cap, const char *fmt, double v) {
    if (!isfinite(v)) snprintf(buf, cap, "-");
    else snprintf(buf, cap, fmt, v);
    return buf;
}

/* RQ_SIMD, when set, must name a level: the library falls back silently on
 * anything else, so a typo would measure the wrong kernels. */
static int simd_env_ok(void) {
    if (rq_simd_status() == RQ_OK) return 1;
    const char *v = getenv("RQ_SIMD");
    cli_failf("RQ_SIMD", RQ_OK, "unknown SIMD level '%s' (scalar, avx2 or avx512; unset = the best the CPU has)", v);
    return 0;
}

int main(int argc, char **argv) {
    if (!simd_env_ok()) return 2;
    if (argc < 2) return usage(stderr);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("rotorquant %s (block format %d, simd %s)\n", rq_version_str(), RQ_FORMAT_VERSION, rq_simd_name());
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) return usage(stdout);
    for (size_t i = 0; i < N_CMDS; i++) {
        if (strcmp(cmd, CMDS[i].name)) continue;
        for (int a = 2; a < argc; a++)
            if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
                printf("usage: rotorquant %s", CMDS[i].usage + 2);
                return 0;
            }
        return CMDS[i].fn(argc, argv);
    }
    cli_failf(NULL, RQ_OK, "unknown command '%s' (see `rotorquant --help`)", cmd);
    return 2;
}
