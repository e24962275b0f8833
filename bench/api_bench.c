/*
 * api_bench.c — the work `python -m rotorquant.benchmark --speed` times from
 * Python, timed here through the public C API on one thread, so the two can
 * be compared (the binding's overhead): encode + decode of n vectors (decode
 * into a reused buffer, and into one allocated for the call), and one
 * decode-attention call on a cache of ctx tokens.
 *
 *   make build/bench/api_bench
 *   build/bench/api_bench [--type turbo3] [--n 100000] [--dim 128] [--reps 7]
 *                         [--ctx 4096] [--kv-heads 8] [--q-heads 32] [--attn-reps 50] [--seed 0]
 *
 * Data: rq_data_generate(isotropic, seed) for the vectors, seed + 1 / + 2 /
 * + 3 for keys, values and the query (the Python side draws the same
 * arrays with rotorquant.data). Times: medians over the repeats, and the
 * fastest repeat (*_min_s: on a shared machine the least disturbed run),
 * wall clock (CLOCK_MONOTONIC), after one warm-up. Output: one JSON line.
 */
#include <rotorquant.h>
#include <rotorquant_eval.h>

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>



/* Sorts v; returns its median and, in *lo, its minimum. */
static double median(double *v, int n, double *lo) {
    double m = bench_median(v, n);
    *lo = v[0];
    return m;
}

static int fail(const char *what, rq_status st) {
    fprintf(stderr, "api_bench: %s: %s\n", what, rq_status_str(st));
    return 1;
}

int main(int argc, char **argv) {
    const char *type = "turbo3";
    long n = 100000, dim = 128, reps = 7, ctx = 4096, kvh = 8, qh = 32, attn_reps = 50, seed = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        long x = strtol(v, NULL, 10);
        if (!strcmp(a, "--type")) type = v;
        else if (!strcmp(a, "--n")) n = x;
        else if (!strcmp(a, "--dim")) dim = x;
        else if (!strcmp(a, "--reps")) reps = x;
        else if (!strcmp(a, "--ctx")) ctx = x;
        else if (!strcmp(a, "--kv-heads")) kvh = x;
        else if (!strcmp(a, "--q-heads")) qh = x;
        else if (!strcmp(a, "--attn-reps")) attn_reps = x;
        else if (!strcmp(a, "--seed")) seed = x;
        else {
            fprintf(stderr, "api_bench: unknown option %s\n", a);
            return 2;
        }
    }
    if (n < 1 || dim < 2 || reps < 1 || reps > 1000 || ctx < 1 || kvh < 1 || qh < kvh || attn_reps < 1) {
        fprintf(stderr, "api_bench: bad arguments\n");
        return 2;
    }
    size_t d = (size_t)dim, N = (size_t)n;

    /* ---- encode + decode of N vectors -------------------------------- */
    rq_quantizer *q;
    rq_status st = rq_quantizer_init(&q, type, (int)d, NULL);
    if (st) return fail("quantizer", st);
    size_t bpv = rq_quantizer_bytes_per_vector(q);
    float *x = malloc(N * d * sizeof(float)), *xh = malloc(N * d * sizeof(float));
    unsigned char *codes = malloc(N * bpv);
    double *t_enc = malloc((size_t)(reps > attn_reps ? reps : attn_reps) * sizeof(double));
    double *t_dec = malloc((size_t)reps * sizeof(double)), *t_both = malloc((size_t)reps * sizeof(double));
    if (!x || !xh || !codes || !t_enc || !t_dec || !t_both) return fail("alloc", RQ_ERR_NOMEM);
    if ((st = rq_data_generate(RQ_DATA_ISOTROPIC, (uint64_t)seed, x, N, (int)d))) return fail("data", st);
    for (long r = -1; r < reps; r++) { /* r = -1: warm-up */
        double t0 = bench_now();
        st = rq_quantizer_encode(q, x, codes, N);
        double t1 = bench_now();
        if (!st) st = rq_quantizer_decode(q, codes, xh, N);
        double t2 = bench_now();
        if (st) return fail("encode/decode", st);
        if (r >= 0) t_enc[r] = t1 - t0, t_dec[r] = t2 - t1, t_both[r] = t2 - t0;
    }
    /* decode into a buffer allocated for the call (as a caller wanting a
     * new array does; what Python's decode without out= does): the first
     * touch of fresh pages is part of the work */
    double *t_fresh = malloc((size_t)reps * sizeof(double));
    if (!t_fresh) return fail("alloc", RQ_ERR_NOMEM);
    for (long r = -1; r < reps; r++) {
        double t0 = bench_now();
        float *fresh = malloc(N * d * sizeof(float));
        if (!fresh) return fail("alloc", RQ_ERR_NOMEM);
        st = rq_quantizer_decode(q, codes, fresh, N);
        double t1 = bench_now();
        free(fresh);
        if (st) return fail("decode", st);
        if (r >= 0) t_fresh[r] = t1 - t0;
    }
    double fresh_lo, fresh_med = median(t_fresh, (int)reps, &fresh_lo);
    free(t_fresh);
    double enc_lo, dec_lo, both_lo, attn_lo;
    double enc = median(t_enc, (int)reps, &enc_lo), dec = median(t_dec, (int)reps, &dec_lo);
    double both = median(t_both, (int)reps, &both_lo);
    rq_quantizer_free(q);

    /* ---- one attention call on a cache of ctx tokens ----------------- */
    rq_cache_config cfg = rq_cache_config_default();
    cfg.n_layers = 1, cfg.n_kv_heads = (int)kvh, cfg.head_dim = (int)d;
    cfg.type_k = type, cfg.type_v = type, cfg.n_threads = 1;
    rq_cache *c;
    if ((st = rq_cache_init(&c, &cfg))) return fail("cache", st);
    size_t nkv = (size_t)ctx * (size_t)kvh;
    float *k = malloc(nkv * d * sizeof(float)), *v = malloc(nkv * d * sizeof(float));
    float *qv = malloc((size_t)qh * d * sizeof(float)), *out = malloc((size_t)qh * d * sizeof(float));
    if (!k || !v || !qv || !out) return fail("alloc", RQ_ERR_NOMEM);
    st = rq_data_generate(RQ_DATA_ISOTROPIC, (uint64_t)seed + 1, k, nkv, (int)d);
    if (!st) st = rq_data_generate(RQ_DATA_ISOTROPIC, (uint64_t)seed + 2, v, nkv, (int)d);
    if (!st) st = rq_data_generate(RQ_DATA_ISOTROPIC, (uint64_t)seed + 3, qv, (size_t)qh, (int)d);
    if (!st) st = rq_cache_append(c, 0, k, v, (size_t)ctx);
    if (st) return fail("cache data", st);
    rq_attn_params p;
    memset(&p, 0, sizeof p);
    p.n_q_heads = (int)qh;
    for (long r = -1; r < attn_reps; r++) {
        double t0 = bench_now();
        st = rq_cache_attention(c, 0, qv, 1, NULL, &p, out);
        if (st) return fail("attention", st);
        if (r >= 0) t_enc[r] = bench_now() - t0;
    }
    double attn = median(t_enc, (int)attn_reps, &attn_lo);
    rq_cache_free(c);

    printf("{\"type\": \"%s\", \"n\": %ld, \"dim\": %ld, \"simd\": \"%s\", \"encode_s\": %.6g, \"decode_s\": %.6g, "
           "\"encode_decode_s\": %.6g, \"encode_min_s\": %.6g, \"decode_min_s\": %.6g, \"encode_decode_min_s\": %.6g, "
           "\"decode_fresh_s\": %.6g, \"decode_fresh_min_s\": %.6g, "
           "\"ctx\": %ld, \"kv_heads\": %ld, \"q_heads\": %ld, \"attention_s\": %.6g, \"attention_min_s\": %.6g}\n",
           type, n, dim, rq_simd_name(), enc, dec, both, enc_lo, dec_lo, both_lo, fresh_med, fresh_lo, ctx, kvh, qh,
           attn, attn_lo);
    free(x), free(xh), free(codes), free(t_enc), free(t_dec), free(t_both);
    free(k), free(v), free(qv), free(out);
    return 0;
}
