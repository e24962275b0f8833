/*
 * test.h — the minimal test harness. A test is a function; it passes when no
 * CHECK inside it failed. TEST_SKIP marks it skipped with a visible reason.
 */
#ifndef RQ_TEST_H
#define RQ_TEST_H

#include "rotorquant.h"
#include "rotorquant_cuda.h"
#include "rotorquant_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int rq_test_failures;        /* CHECK failures in the running test */
extern const char *rq_test_skipped; /* set by TEST_SKIP                   */

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            rq_test_failures++;                                             \
            fprintf(stderr, "    FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

#define CHECK_OK(expr)                                                      \
    do {                                                                    \
        rq_status st_ = (expr);                                             \
        CHECK(st_ == RQ_OK, "%s -> %s", #expr, rq_status_str(st_));         \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                               \
    CHECK(fabs((double)(a) - (double)(b)) <= (tol), "%s=%.9g %s=%.9g tol=%.3g", \
          #a, (double)(a), #b, (double)(b), (double)(tol))

#define TEST_SKIP(reason)                                                   \
    do {                                                                    \
        rq_test_skipped = (reason);                                         \
        return;                                                             \
    } while (0)

/* Progress lines the tests print (measured values) go to stdout. */
#define TEST_NOTE(...)                                                      \
    do {                                                                    \
        printf("    ");                                                     \
        printf(__VA_ARGS__);                                                \
        putchar('\n');                                                      \
    } while (0)

typedef struct {
    const char *name;
    void (*fn)(void);
} rq_test;

/* k8 types (turbo{b}k8, tcq{k}k8) encode unit-scale vectors: norms above
 * 2^2 are out of their range (docs/FORMAT.md §5.2). */
static inline int test_is_k8(const char *type) {
    size_t n = strlen(type);
    return n > 2 && type[n - 2] == 'k' && type[n - 1] == '8';
}
/* The all-type tests' input for `type`: x itself, or for a k8 type a copy
 * in buf with vector i (d floats) scaled to norm 0.35 + 0.45·(i mod 7),
 * i.e. 0.35 .. 3.05 (inside 2^-2 .. 2^2); zero and non-finite vectors as
 * they are. */
static inline const float *test_fit_k8(const char *type, const float *x, float *buf, size_t n_vec, int d) {
    if (!test_is_k8(type)) return x;
    for (size_t i = 0; i < n_vec; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
        const double f = s > 0 && isfinite(s) ? (0.35 + 0.45 * (double)(i % 7)) / sqrt(s) : 1.0; /* NaN stays */
        for (int j = 0; j < d; j++) buf[i * d + j] = (float)(x[i * d + j] * f);
    }
    return buf;
}

/* Each tests/test_*.c defines one NULL-terminated table, listed in
 * tests/test_main.c. */
extern const rq_test tests_basics[];
extern const rq_test tests_codebook[];
extern const rq_test tests_clifford[];
extern const rq_test tests_rotation[];
extern const rq_test tests_quant[];
extern const rq_test tests_attention[];
extern const rq_test tests_sequences[];
extern const rq_test tests_seqio[];
extern const rq_test tests_centre[];
extern const rq_test tests_keybasis[];
extern const rq_test tests_threads[];
extern const rq_test tests_simd[];
extern const rq_test tests_cuda[];
extern const rq_test tests_metrics[];
extern const rq_test tests_npy[];
extern const rq_test tests_gguf[];
extern const rq_test tests_ggml[];
extern const rq_test tests_tokenizer[];
extern const rq_test tests_model[];
extern const rq_test tests_gemma3[];
extern const rq_test tests_tcq[];
extern const rq_test tests_int8[];

/* Deterministic test data helpers (tests/test_main.c). */
void test_random_unit(rq_rng *rng, float *x, int d);
void test_random_gauss(rq_rng *rng, float *x, int d);

#endif
