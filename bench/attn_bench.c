/*
 * attn_bench.c — decode attention time per generated token (one layer, all
 * heads) on the compressed cache, for every KV type and thread count side by
 * side in one run, each placed against the machine's roofline.
 *
 * Per configuration (head_dim, KV heads, GQA ratio), type and thread count:
 * fill a cache with the largest context of keys with outlier channels and
 * Gaussian values, then time rq_cache_attention for one query position at
 * each context (n_ctx limits on the same cache). Median of repeats; the
 * ratios to f16 and q8_0 (and of N threads to 1) compare medians measured
 * in this same run.
 *
 * Roofline. "bytes" = the K and V blocks of every head for the context (what
 * a call must read); "GB/s" = bytes / time. "FMAs" = the float
 * multiply-adds the kernels do: 2·Hq·ctx·d (scores and value accumulation,
 * twice that for QJL `p` types). The machine's limits are measured here:
 * streaming read bandwidth over a buffer of the same size as the call's bytes
 * (so a context that fits in the last-level cache is held to that
 * cache's bandwidth), and the FMA peak (independent vfmadd chains), each with
 * the same thread count. roof = max(bytes / read BW, FMAs / FMA peak);
 * "%roof" = roof / time.
 *
 *   bench/attn_bench [--threads 1,2] [--types f16,q8_0,...] [--ctx 16384,65536]
 *                    [--dims 128,64] [--target SECONDS] [--quick] [--clock wall|cpu] [--stat median|min]
 *   bench/attn_bench --roofline [--threads 1,2]    the machine's limits only
 *   bench/attn_bench --kernels    the attention slots alone on one L1-resident
 *                                 64-token tile (decode_mse_n, scores, accum;
 *                                 the int8 key path's decode_mse8_n, scores_i8;
 *                                 TCQ keys' decode_tcq_n against decode_tcq8_n):
 *                                 ns per token and KV head, fastest of 3000
 *
 * A type named T+i8 (e.g. --types f16,turbo3,turbo3+i8) is type T with
 * rq_cache_config.int8_scores: its rows sit beside T's in the same run.
 * A type K/V (e.g. turbo3/turbo3n8) is keys K, values V; k8 keys
 * (turbo3k8/turbo3n8) run with key centring (they need it), other types
 * without.
 */
#include "rotorquant.h"

#include "attn_kernels.h" /* --kernels: the kernel table's attention slots */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1
#endif

/* ---- the machine's limits ------------------------------------------------ */
typedef struct {
    const uint8_t *buf;
    size_t bytes, slice;
    double *sink;
} read_job;

#ifdef HAVE_X86
__attribute__((target("avx512f"))) static double read_slice_512(const uint8_t *p, size_t n) {
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a = _mm512_xor_si512(a, _mm512_load_si512((const void *)(p + i)));
        b = _mm512_xor_si512(b, _mm512_load_si512((const void *)(p + i + 64)));
        c = _mm512_xor_si512(c, _mm512_load_si512((const void *)(p + i + 128)));
        d = _mm512_xor_si512(d, _mm512_load_si512((const void *)(p + i + 192)));
    }
    a = _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d));
    return (double)_mm512_reduce_add_epi64(a);
}
#endif

static double read_slice_plain(const uint8_t *p, size_t n) {
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        uint64_t x, y;
        memcpy(&x, p + i, 8), memcpy(&y, p + i + 8, 8);
        a ^= x, b ^= y;
    }
    return (double)(a ^ b);
}

static int g_avx512;

static void read_task(void *arg, int t) {
    read_job *j = arg;
    size_t off = (size_t)t * j->slice, n = off + j->slice > j->bytes ? j->bytes - off : j->slice;
#ifdef HAVE_X86
    if (g_avx512) {
        j->sink[t] = read_slice_512(j->buf + off, n);
        return;
    }
#endif
    j->sink[t] = read_slice_plain(j->buf + off, n);
}

/* Median streaming read bandwidth (bytes/s) over `bytes` with n threads:
 * the buffer is cut into 64 KiB slices handed out by the library's pool. */
static double read_bw(size_t bytes, int threads) {
    bytes = (bytes + 4095) & ~(size_t)4095;
    if (bytes < 65536) bytes = 65536;
    uint8_t *buf = aligned_alloc(64, bytes);
    if (!buf) return 0;
    memset(buf, 1, bytes);
    size_t slice = 65536;
    int n_tasks = (int)((bytes + slice - 1) / slice);
    double *sink = calloc((size_t)n_tasks, sizeof(double));
    read_job j = {buf, bytes, slice, sink};
    double ts[15];
    int reps = bytes > ((size_t)256 << 20) ? 7 : 15;
    rq_parallel_for(threads, n_tasks, read_task, &j); /* warm */
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        rq_parallel_for(threads, n_tasks, read_task, &j);
        ts[r] = bench_now() - t0;
    }
    double m = bench_median(ts, reps);
    free(sink), free(buf);
    return (double)bytes / m;
}

typedef struct {
    long iters;
    double *sink;
} fma_job;

#define FMA_CHAINS 12 /* independent chains: ≥ latency (4) × ports (2) */
#ifdef HAVE_X86
__attribute__((target("avx512f"))) static double fma_512(long iters) {
    __m512 a[FMA_CHAINS], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < FMA_CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
        for (int i = 0; i < FMA_CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
    __m512 s = a[0];
    for (int i = 1; i < FMA_CHAINS; i++) s = _mm512_add_ps(s, a[i]);
    return (double)_mm512_reduce_add_ps(s);
}
__attribute__((target("avx2,fma"))) static double fma_256(long iters) {
    __m256 a[FMA_CHAINS], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < FMA_CHAINS; i++) a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
        for (int i = 0; i < FMA_CHAINS; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
    float v[8];
    __m256 s = a[0];
    for (int i = 1; i < FMA_CHAINS; i++) s = _mm256_add_ps(s, a[i]);
    _mm256_storeu_ps(v, s);
    return (double)(v[0] + v[7]);
}
#endif

static int fma_lanes(void) {
#ifdef HAVE_X86
    if (g_avx512) return 16;
    if (__builtin_cpu_supports("fma")) return 8;
#endif
    return 1;
}

static void fma_task(void *arg, int t) {
    fma_job *j = arg;
#ifdef HAVE_X86
    if (g_avx512) j->sink[t] = fma_512(j->iters);
    else if (fma_lanes() == 8) j->sink[t] = fma_256(j->iters);
    else
#endif
    {
        float a = (float)t;
        for (long i = 0; i < j->iters * FMA_CHAINS; i++) a = a * 0.999999f + 1e-7f;
        j->sink[t] = a;
    }
}

/* Median float FMA peak (lane-FMAs/s) with n threads. */
static double fma_peak(int threads) {
    enum { TASKS = 32 };
    double sink[TASKS], ts[9];
    fma_job j = {200000, sink};
    rq_parallel_for(threads, TASKS, fma_task, &j);
    for (int r = 0; r < 9; r++) {
        double t0 = bench_now();
        rq_parallel_for(threads, TASKS, fma_task, &j);
        ts[r] = bench_now() - t0;
    }
    return (double)TASKS * (double)j.iters * FMA_CHAINS * fma_lanes() / bench_median(ts, 9);
}

/* ---- attention ------------------------------------------------------------ */
/* --clock cpu: the process's CPU time instead of wall time — with 1 thread
 * the time the call ran, whatever else the (shared) machine runs meanwhile;
 * with more, the sum over threads (spinning included), so only 1-thread rows
 * are meaningful then. */
static int g_cpu_clock;
static int g_min; /* --stat min: the fastest repeat instead of the median (A/B runs on a loaded machine) */
static double now_s(void) {
    if (!g_cpu_clock) return bench_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* median seconds per call over repeats filling ~target seconds */
static double time_attention(rq_cache *c, const float *q, size_t ctx, const rq_attn_params *p, float *out, double target) {
    double t0 = now_s();
    rq_cache_attention(c, 0, q, 1, &ctx, p, out); /* warm-up */
    double one = now_s() - t0;
    int reps = (int)(target / (one > 1e-7 ? one : 1e-7));
    reps = reps < 5 ? 5 : reps > 201 ? 201 : reps;
    double *ts = malloc(sizeof(double) * (size_t)reps);
    for (int r = 0; r < reps; r++) {
        t0 = now_s();
        rq_cache_attention(c, 0, q, 1, &ctx, p, out);
        ts[r] = now_s() - t0;
    }
    double m = bench_median(ts, reps);
    if (g_min) m = ts[0]; /* sorted */
    free(ts);
    return m;
}

/* ---- the kernels alone ---------------------------------------------------- */
static int kernels_bench(void) {
    const rq_attn_kernels *K = rq__attn_kernels();
    static uint8_t blk[64 * 170 + RQ_PAGE_SLACK];
    static float tile[64 * 128], Q[4 * 128], S[4 * 64], A[4 * 128], ks[64], qs[4];
    static uint8_t tile8[64 * 128], tab8[16];
    static int8_t Q8[4 * 128];
    int32_t qsum[4] = {0};
    float cent[16];
    for (int i = 0; i < 16; i++) cent[i] = (float)(i - 7.5) * 0.1f;
    rq_rng r;
    rq_rng_seed(&r, 3);
    for (size_t i = 0; i < sizeof blk; i++) blk[i] = (uint8_t)rq_rng_next(&r);
    for (int i = 0; i < 4 * 128; i++) Q[i] = (float)rq_rng_gauss(&r), Q8[i] = (int8_t)(rq_rng_next(&r) % 255 - 127);
    for (int i = 0; i < 16; i++) tab8[i] = (uint8_t)(128 + (int)lrintf(cent[i] * 127 / 0.75f));
    for (int g = 0; g < 4; g++) qs[g] = 0.01f;
    printf("attention kernels alone (table %s), one 64-token tile in L1, ns per token and KV head, fastest of 3000\n\n", K->name);
    printf("| head_dim | GQA | bits | decode_mse_n | scores | accum | K+V total | decode_mse8_n | scores_i8 | K+V total, int8 K "
           "| accum_mse_n | scores_mse_n | K+V fused | K+V fused V, int8 K |\n"
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int di = 0; di < 2; di++) {
        int d = di ? 64 : 128, G = di ? 3 : 4;
        for (int bits = 2; bits <= 4; bits++) {
            size_t stride = 2 + (size_t)d * (size_t)bits / 8;
            for (int t = 0; t < 64; t++) blk[(size_t)t * stride] = 0, blk[(size_t)t * stride + 1] = 0x3c; /* norm 1.0 */
            double bd = 1e9, bs = 1e9, ba = 1e9, bd8 = 1e9, bs8 = 1e9, bf = 1e9, bsf = 1e9;
            const uint8_t *kp[64];
            for (int t = 0; t < 64; t++) kp[t] = blk + (size_t)t * stride;
            for (int rep = 0; rep < 3000; rep++) {
                double t0 = bench_now();
                K->decode_mse_n(tile, blk, stride, 64, d, bits, 2, NULL, cent);
                double t1 = bench_now();
                memset(S, 0, sizeof S);
                K->scores(Q, G, d, tile, 64, d, S, 64);
                double t2 = bench_now();
                K->accum(A, G, d, S, 64, tile, 64, d);
                double t3 = bench_now();
                K->decode_mse8_n(tile8, ks, 0, blk, stride, 64, d, bits, 2, NULL, tab8, 0.75f / 127);
                double t4 = bench_now();
                memset(S, 0, sizeof S);
                K->scores_i8(Q8, G, d, qs, qsum, tile8, ks, 64, d, S, 64);
                double t5 = bench_now();
                bd = t1 - t0 < bd ? t1 - t0 : bd, bs = t2 - t1 < bs ? t2 - t1 : bs, ba = t3 - t2 < ba ? t3 - t2 : ba;
                bd8 = t4 - t3 < bd8 ? t4 - t3 : bd8, bs8 = t5 - t4 < bs8 ? t5 - t4 : bs8;
            }
            /* the fused slots in a loop of their own (interleaved with the
             * others they read slower: the others' columns stay as before) */
            for (int rep = 0; rep < 3000; rep++) {
                double t5 = bench_now();
                if (K->accum_mse_n) K->accum_mse_n(A, G, d, S, 64, blk, stride, 64, d, bits, 2, NULL, cent);
                else K->decode_mse_n(tile, blk, stride, 64, d, bits, 2, NULL, cent), K->accum(A, G, d, S, 64, tile, 64, d);
                double t6 = bench_now();
                memset(S, 0, sizeof S);
                double t7 = bench_now();
                if (K->scores_mse_n) K->scores_mse_n(Q, G, d, kp, 64, d, bits, 2, NULL, cent, S, 64);
                else K->decode_mse_n(tile, blk, stride, 64, d, bits, 2, NULL, cent), K->scores(Q, G, d, tile, 64, d, S, 64);
                double t8 = bench_now();
                bf = t6 - t5 < bf ? t6 - t5 : bf, bsf = t8 - t7 < bsf ? t8 - t7 : bsf;
            }
            double k = 1e9 / 64;
            printf("| %d | %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", d, G,
                   bits, bd * k, bs * k, ba * k, (2 * bd + bs + ba) * k, bd8 * k, bs8 * k, (bd8 + bs8 + bd + ba) * k, bf * k,
                   bsf * k, (bsf + bf) * k, (bd8 + bs8 + bf) * k);
        }
    }
    /* TCQ keys: the float decode against the int8 one (one 256-entry table) */
    static float lut[256];
    static uint8_t tab8t[256];
    for (int i = 0; i < 256; i++) lut[i] = (float)rq_rng_gauss(&r) * 0.1f;
    for (int i = 0; i < 256; i++) tab8t[i] = (uint8_t)(rq_rng_next(&r) & 0xff);
    printf("\nTCQ keys, the same tile: decode_tcq_n (floats) vs decode_tcq8_n (int8 tile bytes)\n\n"
           "| head_dim | bits | decode_tcq_n | decode_tcq8_n |\n|---:|---:|---:|---:|\n");
    for (int di = 0; di < 2; di++) {
        int d = di ? 64 : 128;
        for (int bits = 2; bits <= 5; bits++) {
            size_t stride = 2 + (size_t)d * (size_t)bits / 8;
            for (int t = 0; t < 64; t++) blk[(size_t)t * stride] = 0, blk[(size_t)t * stride + 1] = 0x3c;
            double bd = 1e9, bd8 = 1e9;
            for (int rep = 0; rep < 3000; rep++) {
                double t0 = bench_now();
                K->decode_tcq_n(tile, blk, stride, 64, d, bits, 2, NULL, lut);
                double t1 = bench_now();
                K->decode_tcq8_n(tile8, ks, 0, blk, stride, 64, d, bits, 2, NULL, tab8t, 0.01f);
                double t2 = bench_now();
                bd = t1 - t0 < bd ? t1 - t0 : bd, bd8 = t2 - t1 < bd8 ? t2 - t1 : bd8;
            }
            printf("| %d | %d | %.1f | %.1f |\n", d, bits, bd * 1e9 / 64, bd8 * 1e9 / 64);
        }
    }
    return 0;
}

#define MAX_LIST 16
static int parse_list(const char *s, char out[][32]) {
    int n = 0;
    while (*s && n < MAX_LIST) {
        size_t l = strcspn(s, ",");
        if (l > 31) l = 31;
        memcpy(out[n], s, l), out[n][l] = 0;
        if (l) n++;
        s += strcspn(s, ",");
        if (*s) s++;
    }
    return n;
}

static int usage(void) {
    fprintf(stderr, "usage: attn_bench [--threads 1,2] [--types f16,q8_0,...] [--ctx 16384,65536] [--dims 128,64]\n"
                    "                  [--target SECONDS] [--quick] [--roofline] [--kernels] [--clock wall|cpu] [--stat median|min]\n"
                    "  a type T+i8 (e.g. turbo3+i8) is T with int8 key scores (rq_cache_config.int8_scores)\n"
                    "  a type K/V (e.g. turbo3/turbo3n8) is keys K, values V\n");
    return 2;
}

static const char *const DEFAULT_TYPES = "f16,q8_0,q4_0,turbo4,turbo3,turbo2,rotor4,rotor3,planar4,planar3,iso4,iso3,turbo3p";

int main(int argc, char **argv) {
    char tl[MAX_LIST][32], types[MAX_LIST][32], cl[MAX_LIST][32], dl[MAX_LIST][32];
    int n_thr = parse_list("1,2", tl), n_types = parse_list(DEFAULT_TYPES, types);
    int n_ctx = parse_list("16384,65536", cl), n_dims = parse_list("128,64", dl);
    double target = 0.25;
    int roof_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_thr = parse_list(argv[++i], tl);
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) n_types = parse_list(argv[++i], types);
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) n_ctx = parse_list(argv[++i], cl);
        else if (!strcmp(argv[i], "--dims") && i + 1 < argc) n_dims = parse_list(argv[++i], dl);
        else if (!strcmp(argv[i], "--target") && i + 1 < argc) target = atof(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) n_ctx = parse_list("4096", cl), target = 0.05;
        else if (!strcmp(argv[i], "--roofline")) roof_only = 1;
        else if (!strcmp(argv[i], "--kernels")) return kernels_bench();
        else if (!strcmp(argv[i], "--stat") && i + 1 < argc) g_min = !strcmp(argv[++i], "min");
        else if (!strcmp(argv[i], "--clock") && i + 1 < argc) g_cpu_clock = !strcmp(argv[++i], "cpu");
        else return usage();
    }
    int thr[MAX_LIST], dims[MAX_LIST];
    size_t ctxs[MAX_LIST], max_ctx = 0;
    for (int i = 0; i < n_thr; i++)
        if ((thr[i] = atoi(tl[i])) < 1) return usage();
    for (int i = 0; i < n_dims; i++)
        if ((dims[i] = atoi(dl[i])) != 128 && dims[i] != 64) return usage();
    for (int i = 0; i < n_ctx; i++) {
        ctxs[i] = (size_t)atoll(cl[i]);
        if (!ctxs[i]) return usage();
        max_ctx = ctxs[i] > max_ctx ? ctxs[i] : max_ctx;
    }
    char tnames[MAX_LIST][32], vnames[MAX_LIST][32]; /* the K and V types of each entry: T for T+i8, K/V for pairs */
    int int8[MAX_LIST];
    for (int i = 0; i < n_types; i++) {
        size_t l = strlen(types[i]);
        if (l >= sizeof tnames[i]) return usage();
        int8[i] = l > 3 && !strcmp(types[i] + l - 3, "+i8");
        memcpy(tnames[i], types[i], l + 1);
        if (int8[i]) tnames[i][l - 3] = 0;
        char *slash = strchr(tnames[i], '/');
        if (slash) *slash = 0;
        strcpy(vnames[i], slash ? slash + 1 : tnames[i]);
    }
    for (int i = 0; i < n_types; i++)
        if (!rq_type_find(tnames[i]) || !rq_type_find(vnames[i])) {
            fprintf(stderr, "attn_bench: unknown type %s\n", types[i]);
            return 2;
        }
#ifdef HAVE_X86
    const char *simd = getenv("RQ_SIMD");
    g_avx512 = __builtin_cpu_supports("avx512f") && !(simd && strcmp(simd, "avx512") && strcmp(simd, "auto"));
#endif
    double peak[MAX_LIST];
    printf("machine: FMA peak (%d-lane float FMA, %d chains)", fma_lanes(), FMA_CHAINS);
    for (int i = 0; i < n_thr; i++) printf("%s %d thread(s) %.1f GFMA/s", i ? "," : ":", thr[i], 1e-9 * (peak[i] = fma_peak(thr[i])));
    printf("\nmachine: streaming read bandwidth by buffer size (GB/s)");
    static const size_t bw_sizes[] = {(size_t)4 << 20, (size_t)16 << 20, (size_t)64 << 20, (size_t)256 << 20, (size_t)1 << 30};
    for (size_t s = 0; s < sizeof bw_sizes / sizeof bw_sizes[0]; s++) {
        printf("\n  %5zu MiB:", bw_sizes[s] >> 20);
        for (int i = 0; i < n_thr; i++) printf(" %d thread(s) %.1f", thr[i], 1e-9 * read_bw(bw_sizes[s], thr[i]));
    }
    printf("\n");
    if (roof_only) return 0;

    printf("\ndecode attention, one query position, one layer (all heads), SIMD %s; %s of repeats in one run (%s time)\n",
           getenv("RQ_SIMD") ? getenv("RQ_SIMD") : "auto", g_min ? "fastest" : "medians", g_cpu_clock ? "process CPU" : "wall");
    for (int di = 0; di < n_dims; di++) {
        int d = dims[di], H = d == 128 ? 8 : 3, gqa = d == 128 ? 4 : 3, Hq = H * gqa;
        size_t n = max_ctx;
        float *k = malloc(sizeof(float) * n * (size_t)H * (size_t)d), *v = malloc(sizeof(float) * n * (size_t)H * (size_t)d);
        float *q = malloc(sizeof(float) * (size_t)Hq * (size_t)d), *out = malloc(sizeof(float) * (size_t)Hq * (size_t)d);
        double *t = malloc(sizeof(double) * (size_t)(n_types * n_ctx * n_thr));
        size_t *bpt = malloc(sizeof(size_t) * (size_t)n_types);
        if (!k || !v || !q || !out || !t || !bpt) return 1;
        rq_rng r;
        rq_rng_seed(&r, 7);
        for (size_t i = 0; i < n * (size_t)H * (size_t)d; i++) {
            k[i] = (float)rq_rng_gauss(&r) * ((i % (size_t)d) % 23 == 5 ? 10.0f : 1.0f);
            v[i] = (float)rq_rng_gauss(&r);
        }
        for (int i = 0; i < Hq * d; i++) q[i] = (float)rq_rng_gauss(&r);
#define T(ti, ci, hi) t[((ti) * n_ctx + (ci)) * n_thr + (hi)]
        for (int ti = 0; ti < n_types; ti++)
            for (int hi = 0; hi < n_thr; hi++) {
                rq_cache_config cc = rq_cache_config_default();
                cc.n_layers = 1, cc.n_kv_heads = H, cc.head_dim = d, cc.type_k = tnames[ti], cc.type_v = vnames[ti];
                cc.n_threads = thr[hi], cc.int8_scores = int8[ti];
                const size_t nk = strlen(tnames[ti]); /* k8 keys (1-byte norm relative to σ) need key centring */
                cc.centre_keys = nk > 2 && tnames[ti][nk - 2] == 'k' && tnames[ti][nk - 1] == '8';
                rq_cache *c;
                rq_status st = rq_cache_init(&c, &cc);
                if (!st) st = rq_cache_append(c, 0, k, v, n);
                if (st) {
                    fprintf(stderr, "%s: %s\n", types[ti], rq_status_str(st));
                    return 1;
                }
                bpt[ti] = rq_cache_bytes_per_token(c);
                rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
                for (int ci = 0; ci < n_ctx; ci++) T(ti, ci, hi) = time_attention(c, q, ctxs[ci], &p, out, target);
                rq_cache_free(c);
            }
        int i16 = -1, i8 = -1;
        for (int ti = 0; ti < n_types; ti++) {
            if (!strcmp(types[ti], "f16")) i16 = ti;
            if (!strcmp(types[ti], "q8_0")) i8 = ti;
        }
        printf("\n### head_dim %d, %d KV heads, GQA %d:1 (%d query heads)\n\n", d, H, gqa, Hq);
        printf("| type | ctx | threads | bytes/token | µs | GB/s | read BW GB/s | roof µs | %%roof | bound | ×f16 | ×q8_0 | ×1 thread |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|\n");
        for (int ti = 0; ti < n_types; ti++)
            for (int ci = 0; ci < n_ctx; ci++)
                for (int hi = 0; hi < n_thr; hi++) {
                    double s = T(ti, ci, hi), bytes = (double)bpt[ti] * (double)ctxs[ci];
                    double bw = read_bw((size_t)bytes, thr[hi]);
                    int prod = tnames[ti][strlen(tnames[ti]) - 1] == 'p', vprod = vnames[ti][strlen(vnames[ti]) - 1] == 'p';
                    double fmas = (2.0 + prod + vprod) * Hq * (double)ctxs[ci] * d;
                    double tb = bytes / bw, tf = fmas / peak[hi], roof = tb > tf ? tb : tf;
                    printf("| %s | %zuK | %d | %zu | %.1f | %.1f | %.1f | %.1f | %.0f%% | %s |", types[ti], ctxs[ci] / 1024,
                           thr[hi], bpt[ti], 1e6 * s, bytes / s / 1e9, bw / 1e9, 1e6 * roof, 100 * roof / s,
                           tb > tf ? "read" : "FMA");
                    if (i16 >= 0) printf(" %.2f |", T(i16, ci, hi) / s);
                    else printf(" – |");
                    if (i8 >= 0) printf(" %.2f |", T(i8, ci, hi) / s);
                    else printf(" – |");
                    printf(" %.2f |\n", T(ti, ci, 0) / s);
                }
#undef T
        fflush(stdout);
        free(k), free(v), free(q), free(out), free(t), free(bpt);
    }
    return 0;
}
