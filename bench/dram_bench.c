/*
 * dram_bench.c — batched decode attention with the cache in DRAM: the
 * attention part of `rotorquant batched --sequences 32 --ctx 4096
 * --distinct` without the model (issue 13). B distinct sequences of ctx
 * tokens in every layer (one sequence of Gaussian keys and values, saved
 * and loaded B times: each its own pages, as --distinct), SmolLM2-135M's
 * shape by default (30 layers, 3 KV heads, 9 query heads, head_dim 64), so
 * that the turbo3 cache (~600 MiB) and the f16 one (~2.9 GiB) are both far
 * past the last-level cache. One "step" = rq_cache_attention_batch over
 * all B sequences in every layer, one query each. The types take turns
 * step by step (each sees the same machine load); per type the median and
 * the minimum step, and their ratio to the first type's.
 *
 *   bench/dram_bench [--types turbo3,f16,turbo3+i8] [--seqs 32] [--ctx 4096]
 *                    [--layers 30] [--kv-heads 3] [--q-heads 9] [--dim 64]
 *                    [--threads 2] [--steps 15] [--clock wall|cpu]
 *
 * --clock cpu times each step by the process's CPU time instead of the
 * wall clock: with --threads 1 (the call then runs on the calling thread)
 * that is the work itself, whatever else the shared machine runs — the
 * memory bus and the last-level cache are still shared.
 *
 * A type T+i8 is T with rq_cache_config.int8_scores. Memory: every type's
 * cache is held at once (B × ctx × layers × KV heads × 2 blocks each).
 */
#include "rotorquant.h"

#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TYPES 8

static int g_cpu_clock;

static double now_s(void) {
    if (!g_cpu_clock) return bench_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int split(char *s, char **out, int max) {
    int n = 0;
    for (char *t = strtok(s, ","); t && n < max; t = strtok(NULL, ",")) out[n++] = t;
    return n;
}

static double gauss(unsigned long long *s) { /* Box-Muller on a 64-bit LCG: bench data only */
    double u[2];
    for (int i = 0; i < 2; i++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        u[i] = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

int main(int argc, char **argv) {
    char types_arg[256] = "turbo3,f16";
    int B = 32, L = 30, H = 3, Hq = 9, d = 64, threads = 2, steps = 15;
    size_t ctx = 4096;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--types") && i + 1 < argc) snprintf(types_arg, sizeof types_arg, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--seqs") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) ctx = (size_t)atoll(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) L = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kv-heads") && i + 1 < argc) H = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--q-heads") && i + 1 < argc) Hq = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc) d = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--clock") && i + 1 < argc) g_cpu_clock = !strcmp(argv[++i], "cpu");
        else {
            fprintf(stderr, "usage: dram_bench [--types T,...] [--seqs B] [--ctx N] [--layers L] [--kv-heads H] "
                            "[--q-heads Hq] [--dim d] [--threads N] [--steps N] [--clock wall|cpu]\n");
            return 2;
        }
    }
    if (B < 1 || L < 1 || H < 1 || Hq < H || Hq % H || d < 1 || threads < 1 || steps < 1 || !ctx) {
        fprintf(stderr, "dram_bench: bad arguments\n");
        return 2;
    }
    char *names[MAX_TYPES];
    int nt = split(types_arg, names, MAX_TYPES);
    rq_cache *caches[MAX_TYPES] = {0};
    const size_t row = (size_t)H * (size_t)d, chunk = 256;
    float *kv = malloc(2 * chunk * row * sizeof *kv), *q = malloc((size_t)B * (size_t)Hq * (size_t)d * sizeof *q);
    float *out = malloc((size_t)B * (size_t)Hq * (size_t)d * sizeof *out);
    rq_attn_seq *seqs = calloc((size_t)B, sizeof *seqs);
    double *t = malloc((size_t)nt * (size_t)steps * sizeof *t);
    if (!kv || !q || !out || !seqs || !t) return fprintf(stderr, "dram_bench: out of memory\n"), 1;
    unsigned long long rs = 42;
    for (size_t i = 0; i < (size_t)B * (size_t)Hq * (size_t)d; i++) q[i] = (float)gauss(&rs);
    for (int b = 0; b < B; b++) {
        seqs[b].seq = b + 1, seqs[b].q = q + (size_t)b * (size_t)Hq * (size_t)d, seqs[b].n_queries = 1;
        seqs[b].out = out + (size_t)b * (size_t)Hq * (size_t)d;
    }
    printf("# dram_bench: %d sequences x %zu tokens (distinct pages), %d layers, %d KV heads, %d query heads, "
           "head_dim %d, %d threads, %d steps per type (taking turns), %s clock\n",
           B, ctx, L, H, Hq, d, threads, steps, g_cpu_clock ? "CPU" : "wall");
    for (int k = 0; k < nt; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s", names[k]);
        char *plus = strstr(name, "+i8");
        if (plus) *plus = 0;
        rq_cache_config cfg = rq_cache_config_default();
        cfg.n_layers = L, cfg.n_kv_heads = H, cfg.head_dim = d, cfg.type_k = cfg.type_v = name;
        cfg.n_threads = threads, cfg.int8_scores = plus != NULL;
        rq_status st = rq_cache_init(&caches[k], &cfg);
        for (int l = 0; l < L && !st; l++)
            for (size_t t0 = 0; t0 < ctx && !st; t0 += chunk) {
                size_t n = ctx - t0 < chunk ? ctx - t0 : chunk;
                for (size_t i = 0; i < 2 * n * row; i++) kv[i] = (float)gauss(&rs);
                st = rq_cache_append(caches[k], l, kv, kv + n * row, n);
            }
        size_t nb = 0;
        void *bytes = NULL;
        if (!st) st = rq_cache_seq_save_mem(caches[k], 0, NULL, 0, &nb);
        if (!st && !(bytes = malloc(nb))) st = RQ_ERR_NOMEM;
        if (!st) st = rq_cache_seq_save_mem(caches[k], 0, bytes, nb, &nb);
        for (int b = 0; b < B && !st; b++) st = rq_cache_seq_load_mem(caches[k], b + 1, bytes, nb);
        if (!st) st = rq_cache_seq_remove(caches[k], 0);
        free(bytes);
        if (st) return fprintf(stderr, "dram_bench: %s: %s\n", names[k], rq_last_error()), 1;
        printf("# %s: %.1f MiB of pages\n", names[k], (double)rq_cache_bytes_allocated(caches[k]) / 1048576.0);
    }
    const rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
    for (int k = 0; k < nt; k++) /* one untimed step each: first touch */
        for (int l = 0; l < L; l++)
            if (rq_cache_attention_batch(caches[k], l, seqs, (size_t)B, &p))
                return fprintf(stderr, "dram_bench: %s: %s\n", names[k], rq_last_error()), 1;
    for (int s = 0; s < steps; s++)
        for (int k = 0; k < nt; k++) {
            double t0 = now_s();
            for (int l = 0; l < L; l++) (void)rq_cache_attention_batch(caches[k], l, seqs, (size_t)B, &p);
            t[k * steps + s] = now_s() - t0;
        }
    printf("\n| type | step ms (median) | step ms (min) | step / %s's (median) | step / %s's (min) |\n|---|---:|---:|---:|---:|\n",
           names[0], names[0]);
    double med0 = 0, min0 = 0;
    for (int k = 0; k < nt; k++) {
        double med = bench_median(t + k * steps, steps), mn = t[k * steps];
        if (!k) med0 = med, min0 = mn;
        printf("| %s | %.1f | %.1f | %.3f | %.3f |\n", names[k], 1e3 * med, 1e3 * mn, med / med0, mn / min0);
    }
    for (int k = 0; k < nt; k++) rq_cache_free(caches[k]);
    free(kv), free(q), free(out), free(seqs), free(t);
    return 0;
}
