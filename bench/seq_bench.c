/*
 * seq_bench.c — the multi-sequence cache (include/rotorquant.h, "Many
 * sequences"): batched decode attention against a loop of per-sequence
 * calls, and what fork and truncate cost.
 *
 * Batched: one layer, head_dim 128, 8 KV heads, GQA 4:1; B sequences, one
 * long (--long tokens) and B − 1 short ones (256 .. 1024 tokens), one query
 * each. Median time of one rq_cache_attention_batch call against B calls of
 * rq_cache_seq_attention, per type and thread count (both on the same cache,
 * in the same run). Fork: a sequence of 4000 tokens (15 full pages of 256 +
 * a partly filled one) forked, then one token appended to the child: the
 * pages in use before, after the fork and after the append (the copy of
 * the last page only), the median time of fork + remove and of truncating
 * a 4000-token child to 100 tokens. Save/restore: the 4000-token sequence
 * saved to memory and loaded back as a new sequence (medians).
 *
 *   bench/seq_bench [--threads N] [--seqs B] [--long N]
 */
#include "rotorquant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define REPS 31
static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof(double), cmp_d);
    return t[n / 2];
}

static void die(const char *what, rq_status st) {
    fprintf(stderr, "seq_bench: %s: %s: %s\n", what, rq_status_str(st), rq_last_error());
    exit(1);
}

int main(int argc, char **argv) {
    int threads = 2, B = 32;
    size_t n_long = 16384;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seqs") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--long") && i + 1 < argc) n_long = (size_t)atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: seq_bench [--threads N] [--seqs B] [--long N]\n");
            return 2;
        }
    }
    if (B < 1 || B > 4096 || n_long < 1024) {
        fprintf(stderr, "seq_bench: --seqs 1..4096, --long ≥ 1024\n");
        return 2;
    }
    const int d = 128, H = 8, Hq = 32;
    const size_t vec = (size_t)H * d, qn = (size_t)Hq * d;
    float *k = malloc(sizeof(float) * n_long * vec), *v = malloc(sizeof(float) * n_long * vec);
    float *q = malloc(sizeof(float) * (size_t)B * qn), *out = malloc(sizeof(float) * (size_t)B * qn);
    rq_rng r;
    rq_rng_seed(&r, 9);
    for (size_t i = 0; i < n_long * vec; i++) {
        k[i] = (float)rq_rng_gauss(&r) * ((i % (size_t)d) % 23 == 5 ? 10.0f : 1.0f);
        v[i] = (float)rq_rng_gauss(&r);
    }
    for (size_t i = 0; i < (size_t)B * qn; i++) q[i] = (float)rq_rng_gauss(&r);
    printf("batched decode attention: %d sequences (one of %zu tokens, the others 256..1024), head_dim %d, %d KV "
           "heads, GQA 4:1, %d thread(s)\n\n",
           B, n_long, d, H, threads);
    printf("| type | tokens | per-sequence calls: µs | one batched call: µs | speed-up |\n|---|---:|---:|---:|---:|\n");
    static const char *types[] = {"f16", "q8_0", "turbo3", "turbo4"};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        rq_cache_config cc = rq_cache_config_default();
        cc.n_layers = 1, cc.n_kv_heads = H, cc.head_dim = d, cc.type_k = cc.type_v = types[ti];
        cc.n_threads = threads;
        rq_cache *c;
        rq_status st = rq_cache_init(&c, &cc);
        if (st) die("init", st);
        rq_attn_seq *items = malloc(sizeof *items * (size_t)B);
        size_t total = 0;
        for (int s = 0; s < B; s++) {
            size_t n = s == 0 ? n_long : 256 + (size_t)(s * 97) % 769;
            if (s && (st = rq_cache_seq_add(c, s))) die("seq_add", st);
            if ((st = rq_cache_seq_append(c, s, 0, k, v, n))) die("append", st);
            items[s] = (rq_attn_seq){.seq = s, .q = q + (size_t)s * qn, .n_queries = 1, .out = out + (size_t)s * qn};
            total += n;
        }
        rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
        double t1[REPS], t2[REPS];
        for (int rep = -2; rep < REPS; rep++) { /* two warm-up rounds */
            double t0 = now();
            for (int s = 0; s < B; s++)
                if ((st = rq_cache_seq_attention(c, s, 0, items[s].q, 1, NULL, &p, items[s].out)))
                    die("attention", st);
            double t_mid = now();
            if ((st = rq_cache_attention_batch(c, 0, items, (size_t)B, &p))) die("batch", st);
            if (rep >= 0) t1[rep] = t_mid - t0, t2[rep] = now() - t_mid;
        }
        double a = median(t1, REPS), b = median(t2, REPS);
        printf("| %s | %zu | %.1f | %.1f | %.2f |\n", types[ti], total, 1e6 * a, 1e6 * b, a / b);
        free(items);
        rq_cache_free(c);
    }

    printf("\nfork and truncate: turbo3, 28 layers × 8 KV heads × head_dim 128, pages of 256 tokens\n\n");
    rq_cache_config cc = rq_cache_config_default();
    cc.n_layers = 28, cc.n_kv_heads = H, cc.head_dim = d, cc.type_k = cc.type_v = "turbo3";
    rq_cache *c;
    rq_status st = rq_cache_init(&c, &cc);
    if (st) die("init", st);
    const size_t n_prefix = 4000;
    if (n_long < n_prefix) n_long = n_prefix;
    for (int l = 0; l < 28; l++)
        if ((st = rq_cache_append(c, l, k, v, n_prefix))) die("append", st);
    const size_t p0 = rq_cache_pages_in_use(c);
    double tf[REPS], tt[REPS], ta[REPS];
    size_t p1 = 0, p2 = 0, p3 = 0;
    for (int rep = 0; rep < REPS; rep++) {
        double t0 = now();
        if ((st = rq_cache_seq_fork(c, 0, 1))) die("fork", st);
        tf[rep] = now() - t0;
        p1 = rq_cache_pages_in_use(c);
        t0 = now();
        for (int l = 0; l < 28; l++)
            if ((st = rq_cache_seq_append(c, 1, l, k + n_prefix * 0, v, 1))) die("append", st);
        ta[rep] = now() - t0;
        p2 = rq_cache_pages_in_use(c);
        t0 = now();
        if ((st = rq_cache_seq_truncate(c, 1, 100))) die("truncate", st);
        tt[rep] = now() - t0;
        p3 = rq_cache_pages_in_use(c);
        if ((st = rq_cache_seq_remove(c, 1))) die("remove", st);
    }
    printf("| %zu-token prefix | pages in use | time (median of %d) |\n|---|---:|---:|\n", n_prefix, REPS);
    printf("| before | %zu | |\n", p0);
    printf("| fork | %zu (+%zu copied) | %.1f µs |\n", p1, p1 - p0, 1e6 * median(tf, REPS));
    printf("| child appends 1 token to every layer | %zu (+%zu: the shared last page of each layer) | %.1f µs |\n", p2,
           p2 - p1, 1e6 * median(ta, REPS));
    printf("| child truncated to 100 tokens | %zu (its copies freed at once) | %.1f µs |\n", p3,
           1e6 * median(tt, REPS));

    /* save/restore: the prefix saved to memory, then loaded as sequence 1
     * (every page checked and copied in) and removed again */
    size_t nb = 0;
    if ((st = rq_cache_seq_save_mem(c, 0, NULL, 0, &nb))) die("save size", st);
    unsigned char *saved = malloc(nb);
    if (!saved) die("alloc", RQ_ERR_NOMEM);
    double tsv[REPS], tld[REPS];
    for (int rep = 0; rep < REPS; rep++) {
        double t0 = now();
        if ((st = rq_cache_seq_save_mem(c, 0, saved, nb, &nb))) die("save", st);
        tsv[rep] = now() - t0;
        t0 = now();
        if ((st = rq_cache_seq_load_mem(c, 1, saved, nb))) die("load", st);
        tld[rep] = now() - t0;
        if ((st = rq_cache_seq_remove(c, 1))) die("remove", st);
    }
    printf("\nsave/restore of the %zu-token sequence (%.1f MiB): save to memory %.2f ms, load from memory %.2f ms "
           "(%.2f GB/s; medians of %d)\n",
           n_prefix, (double)nb / (1 << 20), 1e3 * median(tsv, REPS), 1e3 * median(tld, REPS),
           (double)nb / median(tld, REPS) / 1e9, REPS);
    free(saved);
    rq_cache_free(c);
    free(k), free(v), free(q), free(out);
    return 0;
}
