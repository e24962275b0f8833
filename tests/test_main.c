/*
 * test_main.c — runs every test table; prints one line per test and ends
 * with "N passed, N failed" (CI reads that line). Optional argument: run only
 * tests whose name contains it.
 */
#include "test.h"

#include <string.h>

int rq_test_failures;
const char *rq_test_skipped;

void test_random_gauss(rq_rng *rng, float *x, int d) {
    for (int i = 0; i < d; i++) x[i] = (float)rq_rng_gauss(rng);
}

void test_random_unit(rq_rng *rng, float *x, int d) {
    double s = 0;
    test_random_gauss(rng, x, d);
    for (int i = 0; i < d; i++) s += (double)x[i] * x[i];
    s = 1.0 / sqrt(s);
    for (int i = 0; i < d; i++) x[i] = (float)(x[i] * s);
}

static const rq_test *const tables[] = {
    tests_basics, tests_codebook, tests_clifford, tests_rotation, tests_quant,
    tests_attention, tests_sequences, tests_seqio, tests_centre, tests_keybasis, tests_threads, tests_simd, tests_cuda,
    tests_metrics, tests_npy, tests_gguf, tests_ggml, tests_tokenizer, tests_model, tests_gemma3, tests_tcq, tests_int8,
};

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0, skipped = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (const rq_test *c = tables[t]; c->name; c++) {
            if (filter && !strstr(c->name, filter)) continue;
            rq_test_failures = 0;
            rq_test_skipped = NULL;
            printf("  %s\n", c->name);
            fflush(stdout);
            c->fn();
            if (rq_test_skipped) {
                printf("  skip %s: %s\n", c->name, rq_test_skipped);
                skipped++;
            } else if (rq_test_failures) {
                printf("  FAIL %s (%d checks)\n", c->name, rq_test_failures);
                failed++;
            } else {
                printf("  ok   %s\n", c->name);
                passed++;
            }
        }
    }
    if (skipped) printf("%d skipped (see the skip lines above)\n", skipped);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
