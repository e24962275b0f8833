/*
 * attn_bench.c — decode attention time per generated token (one layer, all
 * heads) on the compressed cache, for every KV type side by side in one run.
 *
 * Per configuration (head_dim, KV heads, GQA ratio) and type: fill a cache
 * with 64K tokens of keys with outlier channels and Gaussian values, then
 * time rq_cache_attention for one query position at context 1K, 4K, 16K,
 * 64K (n_ctx limits on the same cache). Median of repeats; the ratios to f16
 * and q8_0 compare medians measured in this same run. "GB/s" = bytes of
 * K and V blocks read for the context / time.
 *
 *   bench/attn_bench [--threads N] [--max-ctx N] [--quick] [--types T,..] [--cpu]
 * (--types: the types to run, in place of the default list; f16 and q8_0,
 * the references of the ratio columns, are added when missing; --cpu: the
 * process CPU time of a call in place of its wall time — on a loaded
 * machine a long call is descheduled, which CPU time does not count; use
 * with --threads 1)
 */
#include "rotorquant.h"

#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>



static int cpu_time; /* --cpu */

static double clock_s(void) {
    if (!cpu_time) return bench_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* median seconds per call over repeats filling ~target seconds */
static double time_attention(rq_cache *c, const float *q, size_t ctx, const rq_attn_params *p, float *out, double target) {
    double t0 = clock_s();
    rq_cache_attention(c, 0, q, 1, &ctx, p, out); /* warm-up */
    double one = clock_s() - t0;
    int reps = (int)(target / (one > 1e-7 ? one : 1e-7));
    reps = reps < 5 ? 5 : reps > 201 ? 201 : reps;
    double *ts = malloc(sizeof(double) * (size_t)reps);
    for (int r = 0; r < reps; r++) {
        t0 = clock_s();
        rq_cache_attention(c, 0, q, 1, &ctx, p, out);
        ts[r] = clock_s() - t0;
    }
    double m = bench_median(ts, reps);
    free(ts);
    return m;
}

int main(int argc, char **argv) {
    int threads = 1;
    size_t max_ctx = 65536;
    double target = 0.25;
    static const char *defaults[] = {"f32", "f16", "q8_0", "q4_0h", "turbo4", "turbo3", "rotor3", "turbo3p", "turbo4p"};
    const char *types[32];
    char list[512] = "";
    int NT = 0;
    for (; NT < (int)(sizeof defaults / sizeof defaults[0]); NT++) types[NT] = defaults[NT];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-ctx") && i + 1 < argc) max_ctx = (size_t)atoll(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) max_ctx = 4096, target = 0.05;
        else if (!strcmp(argv[i], "--cpu")) cpu_time = 1;
        else if (!strcmp(argv[i], "--types") && i + 1 < argc && strlen(argv[i + 1]) < sizeof list - 12) {
            snprintf(list, sizeof list, "f16,q8_0,%s", argv[++i]);
            NT = 0;
            for (char *tok = strtok(list, ","); tok && NT < 32; tok = strtok(NULL, ",")) {
                int seen = 0;
                for (int u = 0; u < NT; u++) seen |= !strcmp(types[u], tok);
                if (!seen) types[NT++] = tok;
            }
        } else {
            fprintf(stderr, "usage: attn_bench [--threads N] [--max-ctx N] [--quick] [--types T,..] [--cpu]\n");
            return 2;
        }
    }
    int i16 = 0, i8 = 0; /* the ratio columns' references */
    for (int u = 0; u < NT; u++) i16 = !strcmp(types[u], "f16") ? u : i16, i8 = !strcmp(types[u], "q8_0") ? u : i8;
    static const struct { int d, kv, gqa; } cfgs[] = {{128, 8, 4}, {64, 3, 3}};
    static const size_t ctxs[] = {1024, 4096, 16384, 65536};
    printf("decode attention, one query position, one layer (all heads), %d thread(s), SIMD %s%s\n",
           threads, getenv("RQ_SIMD") ? getenv("RQ_SIMD") : "auto", cpu_time ? ", process CPU time per call" : "");
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        int d = cfgs[ci].d, H = cfgs[ci].kv, Hq = H * cfgs[ci].gqa;
        size_t n = max_ctx;
        float *k = malloc(sizeof(float) * n * (size_t)H * (size_t)d), *v = malloc(sizeof(float) * n * (size_t)H * (size_t)d);
        rq_rng r;
        rq_rng_seed(&r, 7);
        for (size_t i = 0; i < n * (size_t)H * (size_t)d; i++) {
            k[i] = (float)rq_rng_gauss(&r) * ((i % (size_t)d) % 23 == 5 ? 10.0f : 1.0f);
            v[i] = (float)rq_rng_gauss(&r);
        }
        float *q = malloc(sizeof(float) * (size_t)Hq * (size_t)d), *out = malloc(sizeof(float) * (size_t)Hq * (size_t)d);
        for (int i = 0; i < Hq * d; i++) q[i] = (float)rq_rng_gauss(&r);
        double t[32][4];
        size_t bpt[32];
        printf("\n### head_dim %d, %d KV heads, GQA %d:1 (%d query heads)\n\n", d, H, cfgs[ci].gqa, Hq);
        printf("| type | bytes/token (K+V, all heads) |");
        for (size_t x = 0; x < 4 && ctxs[x] <= max_ctx; x++) printf(" %zuK: µs | tok/s | GB/s | ×f16 | ×q8_0 |", ctxs[x] / 1024);
        printf("\n|---|---:|");
        for (size_t x = 0; x < 4 && ctxs[x] <= max_ctx; x++) printf("---:|---:|---:|---:|---:|");
        printf("\n");
        for (int ti = 0; ti < NT; ti++) {
            rq_cache_config cc = rq_cache_config_default();
            cc.n_layers = 1, cc.n_kv_heads = H, cc.head_dim = d, cc.type_k = types[ti], cc.type_v = types[ti];
            cc.n_threads = threads;
            rq_cache *c;
            rq_status st = rq_cache_init(&c, &cc);
            if (!st) st = rq_cache_append(c, 0, k, v, n);
            if (st) {
                fprintf(stderr, "%s: %s\n", types[ti], rq_status_str(st));
                return 1;
            }
            bpt[ti] = rq_cache_bytes_per_token(c);
            rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
            for (size_t x = 0; x < 4 && ctxs[x] <= max_ctx; x++) t[ti][x] = time_attention(c, q, ctxs[x], &p, out, target);
            rq_cache_free(c);
        }
        for (int ti = 0; ti < NT; ti++) {
            printf("| %s | %zu |", types[ti], bpt[ti]);
            for (size_t x = 0; x < 4 && ctxs[x] <= max_ctx; x++)
                printf(" %.1f | %.0f | %.1f | %.2f | %.2f |", 1e6 * t[ti][x], 1.0 / t[ti][x],
                       (double)bpt[ti] * (double)ctxs[x] / t[ti][x] / 1e9, t[i16][x] / t[ti][x], t[i8][x] / t[ti][x]);
            printf("\n");
        }
        free(k), free(v), free(q), free(out);
    }
    return 0;
}
