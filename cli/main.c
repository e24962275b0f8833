/*
 * main.c — the `rotorquant` command-line tool. Thin: parses arguments, calls
 * the library (include/rotorquant.h only), prints. Errors become one line on
 * stderr and a nonzero exit.
 *
 *   rotorquant bench  [--dims D] [--n N] [--seed S] [--json]
 *   rotorquant types  [--dims D]
 *   rotorquant --version
 */
#include "cli.h"

static int usage(FILE *f) {
    fprintf(f,
            "usage: rotorquant <command> [options]\n"
            "  bench  [--dims D] [--n N] [--seed S] [--json]  quality of every type on synthetic data\n"
            "  types  [--dims D]                              the type registry with exact sizes\n"
            "  --version                                      version and format version\n");
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
        printf("rotorquant %s (block format %d)\n", rq_version_str(), RQ_FORMAT_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) return usage(stdout);
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"bench", cmd_bench}, {"types", cmd_types}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name)) return cmds[i].fn(argc, argv);
    fprintf(stderr, "rotorquant: unknown command '%s'\n", cmd);
    return usage(stderr);
}
