/*
 * tcq_bench.c — the TCQ kernels (src/tcq.h) side by side: ns per block of
 * the decode slot (what fused attention calls per page run) at the
 * process's SIMD level, its scalar reference, and turbo's decode_mse_n at
 * the same bits; and the encoder (the tcq_encode slot and the reference) in
 * vectors per second. Medians over repeats (the VM is shared); one thread.
 *
 *   build/bench/tcq_bench [--reps R]     (R: repeats per median, 101)
 */
#include "internal.h"
#include "attn_kernels.h"
#include "bench.h"
#include "tcq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_BLOCKS 4096
#define N_ENC 64

int main(int argc, char **argv) {
    int reps = 101;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: tcq_bench [--reps R]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    const rq_kernels *K = rq__kernels();
    printf("TCQ kernels, SIMD level %s, medians of %d repeats, one thread\n\n", K->name, reps);
    printf("| d | type | decode ns/block | reference ns/block | turbo decode ns/block | ×turbo | encode vec/s | "
           "reference encode vec/s |\n|---:|---|---:|---:|---:|---:|---:|---:|\n");
    double *ts = malloc(sizeof(double) * (size_t)reps * 4);
    const int dims[] = {64, 128};
    for (int di = 0; di < 2; di++)
        for (int k = RQ_TCQ_MIN_BITS; k <= RQ_TCQ_MAX_BITS; k++) {
            const int d = dims[di];
            char tn[16], un[16];
            snprintf(tn, sizeof tn, "tcq%d", k);
            snprintf(un, sizeof un, "turbo%d", k);
            rq_quantizer *q = NULL, *u = NULL;
            if (rq_quantizer_init(&q, tn, d, NULL) || rq_quantizer_init(&u, un, d, NULL)) return 1;
            const size_t bq = rq_quantizer_bytes_per_vector(q), bu = rq_quantizer_bytes_per_vector(u);
            float *x = malloc(sizeof(float) * (size_t)N_BLOCKS * d), *y = malloc(sizeof(float) * (size_t)N_BLOCKS * d);
            uint8_t *a = malloc(bq * N_BLOCKS + RQ_PAGE_SLACK), *b = malloc(bu * N_BLOCKS + RQ_PAGE_SLACK);
            rq_rng r;
            rq_rng_seed(&r, 1);
            for (size_t i = 0; i < (size_t)N_BLOCKS * d; i++) x[i] = (float)rq_rng_gauss(&r);
            if (rq_quantizer_encode(q, x, a, N_BLOCKS) || rq_quantizer_encode(u, x, b, N_BLOCKS)) return 1;
            const rq_quantizer_view vq = rq__quantizer_view(q), vu = rq__quantizer_view(u);
            for (int rep = 0; rep < reps; rep++) {
                double t0 = bench_now();
                K->decode_tcq_n(y, a, bq, N_BLOCKS, d, k, vq.off_codes, vq.cent);
                double t1 = bench_now();
                rq__decode_tcq_n_ref(y, a, bq, N_BLOCKS, d, k, vq.off_codes, vq.cent);
                double t2 = bench_now();
                K->decode_mse_n(y, b, bu, N_BLOCKS, d, k, vu.off_codes, vu.cent);
                double t3 = bench_now();
                ts[rep] = t1 - t0, ts[reps + rep] = t2 - t1, ts[2 * reps + rep] = t3 - t2;
            }
            double dq = bench_median(ts, reps), dr = bench_median(ts + reps, reps), du = bench_median(ts + 2 * reps, reps);
            /* the encoder on rotated unit vectors (y = x / ‖x‖ suffices: the rotation is not timed) */
            int er = reps < 11 ? reps : 11;
            for (int v = 0; v < N_ENC; v++) {
                double s = 0;
                for (int i = 0; i < d; i++) s += (double)x[v * d + i] * x[v * d + i];
                for (int i = 0; i < d; i++) x[v * d + i] = (float)(x[v * d + i] / sqrt(s));
            }
            for (int rep = 0; rep < er; rep++) {
                double t0 = bench_now();
                for (int v = 0; v < N_ENC; v++) K->tcq_encode(x + (size_t)v * d, d, k, vq.cent, a + (size_t)v * bq);
                double t1 = bench_now();
                for (int v = 0; v < N_ENC; v++) rq__tcq_encode_ref(x + (size_t)v * d, d, k, vq.cent, a + (size_t)v * bq);
                double t2 = bench_now();
                ts[rep] = t1 - t0, ts[reps + rep] = t2 - t1;
            }
            double es = bench_median(ts, er), erf = bench_median(ts + reps, er);
            printf("| %d | %s | %.1f | %.1f | %.1f | %.2f | %.1fk | %.1fk |\n", d, tn, 1e9 * dq / N_BLOCKS,
                   1e9 * dr / N_BLOCKS, 1e9 * du / N_BLOCKS, dq / du, N_ENC / es / 1e3, N_ENC / erf / 1e3);
            free(x), free(y), free(a), free(b);
            rq_quantizer_free(q), rq_quantizer_free(u);
        }
    free(ts);
    return 0;
}
