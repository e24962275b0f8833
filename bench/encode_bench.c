/*
 * encode_bench.c — encode throughput (vectors/s, one core) of the KV types
 * at every SIMD level the CPU has, against a memory-read bound measured in
 * the same run.
 *
 * Input: one array of `--mib` MiB of floats (default 1024, larger than the
 * last-level cache), vectors with outlier channels (rq_data_generate, tiled
 * with varying scales). Each repeat encodes the next run of vectors of that
 * array (wrapping), so the input streams from memory as it would when a
 * model writes its KV cache; the blocks go to a separate output buffer.
 * A repeat lasts ≥ `--min-time` s; the median of `--repeats` (≥ 7) is shown.
 *
 * Read bound: the rate at which the same array can merely be read (its
 * floats summed with four independent partial sums in the widest
 * registers the CPU has, over the whole array, median of as many repeats) — the ceiling for any
 * encoder that has to read its input once. Columns: vectors/s, GB/s of
 * input floats consumed, and that rate as a fraction of the read bound.
 *
 *   bench/encode_bench [--dims 64,128,256] [--types t1,t2,...] [--mib N]
 *                      [--repeats N] [--min-time S] [--level L] [--quick]
 * (--level: only that SIMD level; --mib below the LLC size measures
 * cache-resident speed instead, for diagnosis)
 */
#include "internal.h"

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>




/* Splits "a,b,c" into at most max entries (in place). */
static int split(char *s, char **out, int max) {
    int n = 0;
    for (char *t = strtok(s, ","); t && n < max; t = strtok(NULL, ",")) out[n++] = t;
    return n;
}

#define MAX_LIST 32

/* Σ x over n floats (n % 64 == 0) with four independent partial sums in
 * the widest registers the CPU has: single-core read bandwidth grows with
 * the load width here (fewer loads in flight per byte), so the bound is
 * taken with the widest. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SUM4(T, LOAD, ADD, W)                                                        \
    T a = (T){0}, b = a, c = a, e = a;                                             \
    for (size_t i = 0; i < n; i += 4 * W) {                                        \
        a = ADD(a, LOAD(x + i)), b = ADD(b, LOAD(x + i + W));                      \
        c = ADD(c, LOAD(x + i + 2 * W)), e = ADD(e, LOAD(x + i + 3 * W));          \
    }                                                                              \
    a = ADD(ADD(a, b), ADD(c, e));                                                 \
    float f[W], s = 0;                                                             \
    memcpy(f, &a, sizeof f);                                                       \
    for (int k = 0; k < W; k++) s += f[k];                                         \
    return s;
__attribute__((target("avx512f"))) static float sum512(const float *x, size_t n) {
    SUM4(__m512, _mm512_loadu_ps, _mm512_add_ps, 16)
}
__attribute__((target("avx"))) static float sum256(const float *x, size_t n) { SUM4(__m256, _mm256_loadu_ps, _mm256_add_ps, 8) }
static float sum128(const float *x, size_t n) { SUM4(__m128, _mm_loadu_ps, _mm_add_ps, 4) }
static float read_sum(const float *x, size_t n, const char **how) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return *how = "avx512", sum512(x, n);
    if (__builtin_cpu_supports("avx")) return *how = "avx", sum256(x, n);
    return *how = "sse", sum128(x, n);
}
#else
static float read_sum(const float *x, size_t n, const char **how) {
    float a[8] = {0};
    for (size_t i = 0; i < n; i++) a[i & 7] += x[i];
    *how = "scalar";
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}
#endif

/* GB/s of reading the whole array: median of `repeats` sums after one warm-up */
static double read_bound(const float *data, size_t n_floats, int repeats, double *ts, const char **how) {
    volatile float sink = 0;
    for (int r = -1; r < repeats; r++) {
        double t0 = bench_now();
        sink = sink + read_sum(data, n_floats, how);
        if (r >= 0) ts[r] = bench_now() - t0;
    }
    (void)sink;
    return (double)n_floats * 4.0 / bench_median(ts, repeats) / 1e9;
}

int main(int argc, char **argv) {
    char dims_s[256] = "64,128,256";
    char types_s[512] = "turbo3,turbo4,rotor3,planar3,iso3,dense3,turbo3p,q8_0,q4_0h,f16";
    size_t mib = 1024;
    int repeats = 7, lv_max = -1;
    double min_time = 0.08;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dims") && i + 1 < argc) snprintf(dims_s, sizeof dims_s, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) snprintf(types_s, sizeof types_s, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = (size_t)atoll(argv[++i]);
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--level") && i + 1 < argc) {
            const char *l = argv[++i];
            lv_max = !strcmp(l, "scalar") ? RQ_SIMD_SCALAR : !strcmp(l, "avx2") ? RQ_SIMD_AVX2 : RQ_SIMD_AVX512;
        } else if (!strcmp(argv[i], "--quick")) mib = 128, min_time = 0.02;
        else {
            fprintf(stderr,
                    "usage: encode_bench [--dims 64,128,256] [--types t1,t2] [--mib N] [--repeats N] [--min-time S] "
                    "[--level L] [--quick]\n");
            return 2;
        }
    }
    if (repeats < 7) repeats = 7;
    if (mib < 1) mib = 1;
    char *dims_v[MAX_LIST], *types_v[MAX_LIST];
    int n_dims = split(dims_s, dims_v, MAX_LIST), n_types = split(types_s, types_v, MAX_LIST);

    /* ---- the input array ---- */
    size_t n_floats = mib << 18; /* MiB × 2^20 / 4 */
    float *data = malloc(sizeof(float) * n_floats);
    const size_t tile = (size_t)1 << 20; /* 4 MiB of generated vectors, tiled */
    if (!data) {
        fprintf(stderr, "encode_bench: cannot allocate %zu MiB\n", mib);
        return 1;
    }
    rq_data_generate(RQ_DATA_OUTLIER, 1, data, (n_floats < tile ? n_floats : tile) / 256, 256);
    for (size_t off = tile; off < n_floats; off += tile) {
        size_t n = n_floats - off < tile ? n_floats - off : tile;
        float sc = 0.5f + (float)((off / tile) % 7);
        for (size_t i = 0; i < n; i++) data[off + i] = data[i] * sc;
    }

    double *ts = malloc(sizeof(double) * (size_t)repeats);
    const char *how = "";
    double read_gbs = read_bound(data, n_floats, repeats, ts, &how);

    printf("encode throughput, 1 core, input streamed from a %zu MiB array%s (median of %d repeats)\n", mib,
           mib < 64 ? " — small enough to stay in cache: compute only" : "", repeats);
    printf("read bound at start: %.2f GB/s (sum of the same array, %s loads)\n", read_gbs, how);
    printf("%-8s %-8s %5s %14s %9s %8s\n", "level", "type", "d", "vectors/s", "GB/s in", "x read");

    /* turbo3 / rotor3 at d = 128 per level, for the summary */
    double turbo3[3] = {0}, rotor3[3] = {0};
    rq_simd_level saved = rq__simd_level();
    for (int lv = RQ_SIMD_SCALAR; lv <= (int)rq__simd_cpu_level(); lv++) {
        if (lv_max >= 0 && lv != lv_max) continue;
        rq__simd_force((rq_simd_level)lv);
        for (int di = 0; di < n_dims; di++) {
            int d = atoi(dims_v[di]);
            size_t n_vec = n_floats / (size_t)d;
            for (int ti = 0; ti < n_types; ti++) {
                rq_quantizer *q = NULL;
                rq_status st = rq_quantizer_init(&q, types_v[ti], d, NULL);
                if (st) {
                    printf("%-8s %-8s %5d  (%s)\n", rq__simd_level_name((rq_simd_level)lv), types_v[ti], d, rq_status_str(st));
                    continue;
                }
                size_t bpv = rq_quantizer_bytes_per_vector(q);
                /* calibrate: vectors per repeat for ≥ min_time */
                size_t probe = 2000, per = probe, pos = 0;
                uint8_t *out = malloc(bpv * probe);
                double t0 = bench_now();
                rq_quantizer_encode(q, data, out, probe);
                double one = (bench_now() - t0) / (double)probe;
                per = (size_t)(min_time / (one > 1e-10 ? one : 1e-10));
                if (per < probe) per = probe;
                if (per > n_vec) per = n_vec;
                free(out);
                out = malloc(bpv * per);
                for (int r = -1; r < repeats; r++) {
                    if (pos + per > n_vec) pos = 0;
                    t0 = bench_now();
                    st = rq_quantizer_encode(q, data + pos * (size_t)d, out, per);
                    double dt = bench_now() - t0;
                    if (st) {
                        fprintf(stderr, "encode_bench: %s: %s\n", types_v[ti], rq_status_str(st));
                        return 1;
                    }
                    if (r >= 0) ts[r] = dt;
                    pos += per;
                }
                double vps = (double)per / bench_median(ts, repeats), gbs = vps * 4.0 * d / 1e9;
                printf("%-8s %-8s %5d %14.0f %9.2f %8.2f\n", rq__simd_level_name((rq_simd_level)lv), types_v[ti], d, vps, gbs,
                       gbs / read_gbs);
                fflush(stdout);
                if (d == 128 && !strcmp(types_v[ti], "turbo3")) turbo3[lv] = vps;
                if (d == 128 && !strcmp(types_v[ti], "rotor3")) rotor3[lv] = vps;
                free(out);
                rq_quantizer_free(q);
            }
        }
    }
    rq__simd_force(saved);
    /* the bound again: other load on the machine lowers one measurement; the
     * larger of the two is the conservative denominator for the summary */
    double read_end = read_bound(data, n_floats, repeats, ts, &how);
    printf("read bound at end: %.2f GB/s (the column \"x read\" uses the one at start)\n", read_end);
    double bound = read_end > read_gbs ? read_end : read_gbs;
    printf("\ntargets at d = 128: turbo3 >= 0.5 x read bound; rotor3 >= turbo3 (bound: %.2f GB/s, the larger)\n", bound);
    for (int lv = RQ_SIMD_SCALAR; lv <= (int)rq__simd_cpu_level(); lv++)
        if (turbo3[lv] > 0)
            printf("  %-7s turbo3 %.2f x read bound; rotor3/turbo3 = %.2f\n", rq__simd_level_name((rq_simd_level)lv),
                   turbo3[lv] * 512.0 / 1e9 / bound, rotor3[lv] > 0 ? rotor3[lv] / turbo3[lv] : 0.0);
    free(ts);
    free(data);
    return 0;
}
