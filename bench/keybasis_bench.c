/*
 * keybasis_bench.c — what a key basis costs a decode step: one query
 * (9 heads, GQA 3:1, head_dim 64, turbo3 keys and values: SmolLM2's shape)
 * attending a 2048-token context over 30 layers, and one new token appended
 * per layer, with no basis, one basis per head, and one per key-position
 * range (0, 256, 512, 1024: what `rotorquant calibrate --ctx 2064` writes).
 * The three caches hold the same keys and are timed in interleaved rounds
 * (medians of 31), so the ratios are side by side.
 *
 *   bench/keybasis_bench [--threads N] [--ctx N]
 */
#include "rotorquant.h"

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { L = 30, H = 3, G = 3, D = 64, ROUNDS = 31 };



int main(int argc, char **argv) {
    int threads = 2;
    size_t n = 2048;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--ctx")) n = (size_t)atol(argv[i + 1]);
    }
    if (threads < 1 || n < 1) {
        fprintf(stderr, "usage: keybasis_bench [--threads N] [--ctx N]\n");
        return 2;
    }
    rq_rng r;
    rq_rng_seed(&r, 1);
    float *k = malloc(sizeof(float) * n * H * D), *v = malloc(sizeof(float) * n * H * D);
    float *q = malloc(sizeof(float) * H * G * D), *o = malloc(sizeof(float) * H * G * D);
    float *A = malloc(sizeof(float) * 4 * D * D);
    if (!k || !v || !q || !o || !A) return 1;
    for (size_t i = 0; i < n * H * D; i++) k[i] = (float)rq_rng_gauss(&r), v[i] = (float)rq_rng_gauss(&r);
    for (int i = 0; i < H * G * D; i++) q[i] = (float)rq_rng_gauss(&r);
    for (int i = 0; i < 4 * D * D; i++) A[i] = (float)(((i % (D * D)) / D == i % D) + 0.1 * rq_rng_gauss(&r));
    static const size_t start[4] = {0, 256, 512, 1024};
    static const int n_ranges[3] = {0, 1, 4};
    rq_cache *c[3];
    for (int v3 = 0; v3 < 3; v3++) {
        rq_cache_config cfg = rq_cache_config_default();
        cfg.n_layers = L, cfg.n_kv_heads = H, cfg.head_dim = D, cfg.type_k = cfg.type_v = "turbo3";
        cfg.n_threads = threads;
        if (rq_cache_init(&c[v3], &cfg)) return 1;
        for (int l = 0; l < L; l++) {
            for (int h = 0; h < H && n_ranges[v3]; h++)
                if (rq_cache_set_key_basis(c[v3], l, h, (size_t)n_ranges[v3], start, A)) return 1;
            if (rq_cache_append(c[v3], l, k, v, n)) return 1;
        }
    }
    rq_attn_params p = {.n_q_heads = H * G, .scale = 0};
    double ta[3][ROUNDS], tp[3][ROUNDS];
    for (int round = 0; round < ROUNDS; round++)
        for (int v3 = 0; v3 < 3; v3++) {
            double t0 = bench_now();
            for (int l = 0; l < L; l++) rq_cache_attention(c[v3], l, q, 1, NULL, &p, o);
            double t1 = bench_now();
            for (int l = 0; l < L; l++) rq_cache_append(c[v3], l, k, v, 1);
            ta[v3][round] = t1 - t0, tp[v3][round] = bench_now() - t1;
        }
    printf("decode step of SmolLM2's shape (30 layers, 9/3 heads, d = 64, turbo3/turbo3), %zu-token context, "
           "%d threads; medians of %d interleaved rounds\n\n",
           n, threads, ROUNDS);
    printf("| key basis | attention µs | append µs | total µs | × no basis |\n|---|---:|---:|---:|---:|\n");
    double base = 0;
    static const char *names[3] = {"none", "one per head", "4 position ranges"};
    for (int v3 = 0; v3 < 3; v3++) {
        double a = bench_median(ta[v3], ROUNDS) * 1e6, b = bench_median(tp[v3], ROUNDS) * 1e6;
        if (v3 == 0) base = a + b;
        printf("| %s | %.0f | %.0f | %.0f | %.3f |\n", names[v3], a, b, a + b, (a + b) / base);
    }
    for (int v3 = 0; v3 < 3; v3++) rq_cache_free(c[v3]);
    free(k), free(v), free(q), free(o), free(A);
    rq_threads_shutdown();
    return 0;
}
