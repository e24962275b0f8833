/*
 * main.c — the `rotorquant` command-line tool. Thin: parses arguments, calls
 * the library (include/rotorquant.h only), prints. Errors become one line on
 * stderr and a nonzero exit.
 *
 *   rotorquant bench  [--data LIST] [--dims LIST] [--types LIST] [--json] [--dump DIR] ...
 *   rotorquant eval   --type T --keys K.npy [--queries Q.npy] [--values V.npy] [--json] ...
 *   rotorquant types  [--dims D]
 *   rotorquant generate | perplexity | fidelity | dump-kv | calibrate  (a real LLM: cli/cmd_model.c)
 *   rotorquant --version
 */
#include "cli.h"

static int usage(FILE *f) {
    fprintf(f,
            "usage: rotorquant <command> [options]\n"
            "  bench  [--data isotropic,outlier,npy:PATH] [--dims 64,128,256] [--types T,..] [--json]\n"
            "         [--ctx 1024,4096] [--n N] [--queries Q] [--hot H] [--logit-std L] [--trials T]\n"
            "         [--needle-keys N] [--snr S] [--reps R] [--speed-n N] [--seed S] [--dump DIR]\n"
            "                                                 quality, size and speed of every type\n"
            "  eval   --type T --keys K.npy [--queries Q.npy] [--values V.npy] [--type-v T]\n"
            "         [--causal] [--scale S] [--seed S] [--reps R] [--json]\n"
            "                                                 the same metrics on your own arrays\n"
            "  types  [--dims D]                              the type registry with exact sizes\n"
            "  generate   [-m MODEL] -p PROMPT [-n N] [-ctk T] [-ctv T] [--temp X] [--seed S] [-t N]\n"
            "             [--key-basis B.gguf] [--norm-correct]\n"
            "                                                 run SmolLM2 with a compressed KV cache\n"
            "  perplexity [-m MODEL] [-f TEXT] [--ctx N] [--chunks N] [-ctk T -ctv T | --configs K/V,..]\n"
            "             [--decode-ctx 512,2048] [--key-basis B.gguf] [--norm-correct] [--json]\n"
            "                                                 PPL, KLD and top-1 vs the f32 cache\n"
            "  fidelity   [-m MODEL] [-f TEXT] [--ctx N] [--chunks N] [-ctk T] [-ctv T] [--key-basis B.gguf]\n"
            "             [--norm-correct] [--json]\n"
            "                                                 per-layer attention fidelity on real queries\n"
            "  dump-kv    [-m MODEL] [-f TEXT] -o DIR [--layers L,..] [--n-tokens N] [--offset N] [--f16]\n"
            "                                                 real post-RoPE Q, K, V to .npy\n"
            "  calibrate  [-m MODEL] -o B.gguf [-f TEXT [--offset N]] [--n-tokens N] [--ctx N] [--ranges R]\n"
            "             [--temp X] [--seed S]\n"
            "                                                 a key basis from the model's own (or TEXT's)\n"
            "                                                 keys and queries, for --key-basis\n"
            "  MODEL: a GGUF (llama or gemma3 architecture), or smollm2 / gemma3 for the `make model` downloads\n"
            "  --version                                      version, format version, SIMD level\n");
    return f == stderr ? 2 : 0;
}

int cli_fail(const char *what, rq_status st) {
    fprintf(stderr, "rotorquant: %s: %s\n", what, rq_status_str(st));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage(stderr);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("rotorquant %s (block format %d, simd %s)\n", rq_version_str(), RQ_FORMAT_VERSION, rq_simd_name());
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) return usage(stdout);
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"bench", cmd_bench}, {"types", cmd_types}, {"eval", cmd_eval},
                 {"generate", cmd_generate}, {"perplexity", cmd_perplexity}, {"fidelity", cmd_fidelity},
                 {"dump-kv", cmd_dump_kv}, {"calibrate", cmd_calibrate}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name)) return cmds[i].fn(argc, argv);
    fprintf(stderr, "rotorquant: unknown command '%s'\n", cmd);
    return usage(stderr);
}
