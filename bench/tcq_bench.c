/*
 * tcq_bench.c — the TCQ kernels (src/tcq.h) side by side: ns per block of
 * the decode slot (what fused attention calls per page run) at the
 * process's SIMD level, its scalar reference, and turbo's decode_mse_n at
 * the same bits; and the encoder (the tcq_encode slot and the reference) in
 * vectors per second. Medians over repeats (the VM is shared); one thread.
 * On AVX-512 the slot's two ways are timed too: the LUT read by gathers
 * and by VBMI byte permutes (where the CPU has VBMI).
 *
 *   build/bench/tcq_bench [--reps R] [--blocks N] [--clock wall|cpu] [--stat median|min]
 *     R: repeats (101); N: blocks decoded per call (4096; 64 is fused
 *     attention's tile, in L1), calls repeated to 4096 blocks a time;
 *     cpu: this thread's CPU time (the shared VM's other jobs excluded);
 *     min: the fastest repeat instead of the median
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

typedef void (*decode_fn)(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes, const float *ntab,
                          const float *lut);

static int g_cpu_clock; /* --clock cpu */

static double now(void) {
    if (!g_cpu_clock) return bench_now();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double stat_of(double *v, int n, int min) {
    if (!min) return bench_median(v, n);
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

/* seconds for N_BLOCKS blocks, decoded `blocks` a call */
static double time_decode(decode_fn f, float *y, const uint8_t *a, size_t bq, int blocks, int d, int k, size_t off,
                          const float *lut) {
    double t0 = now();
    for (int b = 0; b < N_BLOCKS; b += blocks) f(y, a + (size_t)b * bq, bq, blocks, d, k, off, NULL, lut);
    return now() - t0;
}

int main(int argc, char **argv) {
    int reps = 101, blocks = N_BLOCKS, smin = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--blocks") && i + 1 < argc) blocks = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--clock") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "wall") || !strcmp(argv[i + 1], "cpu")))
            g_cpu_clock = !strcmp(argv[++i], "cpu");
        else if (!strcmp(argv[i], "--stat") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "median") || !strcmp(argv[i + 1], "min")))
            smin = !strcmp(argv[++i], "min");
        else {
            fprintf(stderr, "usage: tcq_bench [--reps R] [--blocks N] [--clock wall|cpu] [--stat median|min]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (blocks < 1 || blocks > N_BLOCKS || N_BLOCKS % blocks) {
        fprintf(stderr, "tcq_bench: --blocks must divide %d\n", N_BLOCKS);
        return 2;
    }
    const rq_kernels *K = rq__kernels();
    decode_fn ways[2] = {NULL, NULL}; /* AVX-512: gather, VBMI */
#ifndef RQ_NO_SIMD
    if (rq__simd_level() >= RQ_SIMD_AVX512) {
        ways[0] = rq__decode_tcq_n_avx512_gather;
        if (rq__tcq_has_vbmi()) ways[1] = rq__decode_tcq_n_avx512_vbmi;
    }
#endif
    printf("TCQ kernels, SIMD level %s, %s of %d repeats (%s time), one thread, %d blocks a decode call\n\n",
           K->name, smin ? "fastest" : "medians", reps, g_cpu_clock ? "CPU" : "wall", blocks);
    printf("| d | type | decode ns/block | gather | vbmi | reference ns/block | turbo decode ns/block | ×turbo | "
           "encode vec/s | reference encode vec/s |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    double *ts = malloc(sizeof(double) * (size_t)reps * 5);
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
                ts[rep] = time_decode(K->decode_tcq_n, y, a, bq, blocks, d, k, vq.off_codes, vq.cent);
                ts[reps + rep] = time_decode(rq__decode_tcq_n_ref, y, a, bq, blocks, d, k, vq.off_codes, vq.cent);
                ts[2 * reps + rep] = time_decode(K->decode_mse_n, y, b, bu, blocks, d, k, vu.off_codes, vu.cent);
                for (int w = 0; w < 2; w++)
                    ts[(3 + w) * reps + rep] =
                        ways[w] ? time_decode(ways[w], y, a, bq, blocks, d, k, vq.off_codes, vq.cent) : 0;
            }
            double dq = stat_of(ts, reps, smin), dr = stat_of(ts + reps, reps, smin);
            double du = stat_of(ts + 2 * reps, reps, smin);
            char wn[2][16];
            for (int w = 0; w < 2; w++) {
                if (ways[w])
                    snprintf(wn[w], sizeof wn[w], "%.1f", 1e9 * stat_of(ts + (3 + w) * reps, reps, smin) / N_BLOCKS);
                else snprintf(wn[w], sizeof wn[w], "–");
            }
            /* the encoder on rotated unit vectors (y = x / ‖x‖ suffices: the rotation is not timed) */
            int er = reps < 11 ? reps : 11;
            for (int v = 0; v < N_ENC; v++) {
                double s = 0;
                for (int i = 0; i < d; i++) s += (double)x[v * d + i] * x[v * d + i];
                for (int i = 0; i < d; i++) x[v * d + i] = (float)(x[v * d + i] / sqrt(s));
            }
            for (int rep = 0; rep < er; rep++) {
                double t0 = now();
                for (int v = 0; v < N_ENC; v++) K->tcq_encode(x + (size_t)v * d, d, k, vq.cent, a + (size_t)v * bq);
                double t1 = now();
                for (int v = 0; v < N_ENC; v++) rq__tcq_encode_ref(x + (size_t)v * d, d, k, vq.cent, a + (size_t)v * bq);
                double t2 = now();
                ts[rep] = t1 - t0, ts[reps + rep] = t2 - t1;
            }
            double es = stat_of(ts, er, smin), erf = stat_of(ts + reps, er, smin);
            printf("| %d | %s | %.1f | %s | %s | %.1f | %.1f | %.2f | %.1fk | %.1fk |\n", d, tn, 1e9 * dq / N_BLOCKS,
                   wn[0], wn[1], 1e9 * dr / N_BLOCKS, 1e9 * du / N_BLOCKS, dq / du, N_ENC / es / 1e3, N_ENC / erf / 1e3);
            free(x), free(y), free(a), free(b);
            rq_quantizer_free(q), rq_quantizer_free(u);
        }
    free(ts);
    return 0;
}
