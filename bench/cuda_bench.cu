/*
 * cuda_bench.cu — GPU benchmark for issue 6 (make CUDA=1 bench-cuda).
 *
 *   1. device-to-device copy bandwidth (the practical memory bound),
 *   2. fused encode throughput (vectors/s) for 1K … 1M vectors, d = 64/128/256,
 *   3. decode attention (one new token, GQA) over 4K … 128K tokens of packed
 *      blocks against the f16 kernel built the same way,
 * timed with CUDA events: each number is the median over batches of
 * back-to-back calls (after a warm-up), divided by the calls per batch.
 * Bandwidth fraction = bytes the kernel must read (+ write) / time, over the
 * H100's 3.35 TB/s and over the measured copy rate.
 *
 * Options: --quick (fewer sizes), --csv FILE (every row, machine-readable).
 */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotorquant.h"
#include "rotorquant_cuda.h"

#define HBM_PEAK 3.35e12 /* H100 SXM HBM3, bytes/s (datasheet) */

#define CK(x)                                                                                   \
    do {                                                                                        \
        cudaError_t e_ = (x);                                                                   \
        if (e_ != cudaSuccess) {                                                                \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            exit(1);                                                                            \
        }                                                                                       \
    } while (0)
#define RQ(x)                                                                                            \
    do {                                                                                                 \
        rq_status s_ = (x);                                                                              \
        if (s_ != RQ_OK) {                                                                               \
            fprintf(stderr, "%s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #x, rq_status_str(s_),          \
                    rq_cuda_error_str());                                                                \
            exit(1);                                                                                     \
        }                                                                                                \
    } while (0)

static FILE *g_csv;

/* hook of src/cuda/attention.cu: force the CUDA-core packed kernel */
extern "C" void rq__cuda_attn_force_simt(rq_cuda_attn *a, int on);

/* deterministic pseudo-random fill on the device (hash of the index) */
__device__ __forceinline__ float hash_unif(unsigned long long i, unsigned seed) {
    unsigned long long z = i * 0x9E3779B97F4A7C15ull + seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((z >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}
__global__ void fill_f32(float *x, size_t n, unsigned seed, float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = scale * hash_unif(i, seed);
}
__global__ void f32_to_f16(const float *x, __half *y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2half_rn(x[i]);
}

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* median seconds per call of fn over `batches` batches of `per` calls */
template <class F>
static double time_it(F fn, int per, int batches) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) fn(); /* warm-up */
    CK(cudaDeviceSynchronize());
    float ms[64];
    if (batches > 64) batches = 64;
    for (int k = 0; k < batches; k++) {
        CK(cudaEventRecord(a));
        for (int i = 0; i < per; i++) fn();
        CK(cudaEventRecord(b));
        CK(cudaEventSynchronize(b));
        CK(cudaEventElapsedTime(&ms[k], a, b));
    }
    CK(cudaGetLastError());
    qsort(ms, (size_t)batches, sizeof ms[0], cmp_f);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return ms[batches / 2] * 1e-3 / per;
}

static double bench_copy(void) {
    size_t n = (size_t)1 << 30; /* 1 GiB each way */
    void *a, *b;
    CK(cudaMalloc(&a, n));
    CK(cudaMalloc(&b, n));
    CK(cudaMemset(a, 1, n));
    double t = time_it([&] { CK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice)); }, 5, 7);
    double bw = 2.0 * n / t;
    printf("device-to-device copy: 1 GiB in %.3f ms = %.0f GB/s (read + write) = %.0f%% of %.2f TB/s\n", t * 1e3,
           bw / 1e9, 100 * bw / HBM_PEAK, HBM_PEAK / 1e12);
    if (g_csv) fprintf(g_csv, "copy,,,,%zu,%.9f,%.1f\n", n, t, bw / 1e9);
    CK(cudaFree(a));
    CK(cudaFree(b));
    return bw;
}

static void bench_encode(const char *type, int d, const size_t *ns, int n_ns, double copy_bw) {
    rq_quantizer *q = NULL;
    rq_cuda_quantizer *g = NULL;
    RQ(rq_quantizer_init(&q, type, d, NULL));
    RQ(rq_cuda_quantizer_init(&g, q));
    size_t bytes = rq_quantizer_bytes_per_vector(q), nmax = ns[n_ns - 1];
    float *x;
    uint8_t *blk;
    CK(cudaMalloc(&x, sizeof(float) * nmax * d));
    CK(cudaMalloc(&blk, bytes * nmax));
    fill_f32<<<1024, 256>>>(x, nmax * d, 7u, 1.0f);
    CK(cudaDeviceSynchronize());
    for (int k = 0; k < n_ns; k++) {
        size_t n = ns[k];
        int per = n <= 16384 ? 50 : n <= 262144 ? 10 : 3;
        double t = time_it([&] { RQ(rq_cuda_encode(g, x, blk, n, NULL)); }, per, 9);
        RQ(rq_cuda_quantizer_check(g));
        double moved = (double)n * (4.0 * d + bytes);
        printf("  encode %-8s d=%3d n=%8zu: %9.2f us  %8.3f G vectors/s  %6.0f GB/s (%.0f%% of copy)\n", type, d, n,
               t * 1e6, n / t / 1e9, moved / t / 1e9, 100 * moved / t / copy_bw);
        if (g_csv) fprintf(g_csv, "encode,%s,%d,%zu,%.0f,%.9f,%.1f\n", type, d, n, moved, t, moved / t / 1e9);
    }
    CK(cudaFree(x));
    CK(cudaFree(blk));
    rq_cuda_quantizer_free(g);
    rq_quantizer_free(q);
}

static void bench_attention(const char *tk, const char *tv, int n_q, int n_kv, int d, const size_t *ctxs, int n_ctx,
                            double copy_bw, int simt = 0) {
    size_t cmax = ctxs[n_ctx - 1], nvec = (size_t)n_kv * cmax;
    rq_quantizer *qk = NULL, *qv = NULL;
    rq_cuda_quantizer *gk = NULL, *gv = NULL;
    rq_quant_config cv = rq_quant_config_default();
    cv.seed = 4242;
    RQ(rq_quantizer_init(&qk, tk, d, NULL));
    RQ(rq_quantizer_init(&qv, tv, d, &cv));
    RQ(rq_cuda_quantizer_init(&gk, qk));
    RQ(rq_cuda_quantizer_init(&gv, qv));
    size_t bk = rq_quantizer_bytes_per_vector(qk), bv = rq_quantizer_bytes_per_vector(qv);
    float *x, *q, *o_p, *o_h;
    uint8_t *kb, *vb;
    __half *kh, *vh;
    CK(cudaMalloc(&x, sizeof(float) * nvec * d));
    CK(cudaMalloc(&kb, bk * nvec));
    CK(cudaMalloc(&vb, bv * nvec));
    CK(cudaMalloc(&kh, sizeof(__half) * nvec * d));
    CK(cudaMalloc(&vh, sizeof(__half) * nvec * d));
    CK(cudaMalloc(&q, sizeof(float) * n_q * d));
    CK(cudaMalloc(&o_p, sizeof(float) * n_q * d));
    CK(cudaMalloc(&o_h, sizeof(float) * n_q * d));
    /* keys: norm ~ √d/√3 · 1 (uniform entries); values likewise; one cache
     * layout [n_kv][cmax], the same data in f16 and packed */
    fill_f32<<<2048, 256>>>(x, nvec * d, 11u, 1.0f);
    f32_to_f16<<<2048, 256>>>(x, kh, nvec * d);
    RQ(rq_cuda_encode(gk, x, kb, nvec, NULL));
    fill_f32<<<2048, 256>>>(x, nvec * d, 12u, 1.0f);
    f32_to_f16<<<2048, 256>>>(x, vh, nvec * d);
    RQ(rq_cuda_encode(gv, x, vb, nvec, NULL));
    fill_f32<<<64, 256>>>(q, (size_t)n_q * d, 13u, 2.0f);
    RQ(rq_cuda_quantizer_check(gk));
    RQ(rq_cuda_quantizer_check(gv));
    rq_cuda_attn *a = NULL;
    RQ(rq_cuda_attn_init(&a, n_q, n_kv, d));
    rq__cuda_attn_force_simt(a, simt);
    printf("  attention %s/%s%s vs f16, %d q heads / %d KV heads, d=%d (K+V bytes per token per KV head: %zu vs %d)\n",
           tk, tv, simt == 1 ? " (CUDA-core kernel)" : simt == 2 ? " (generic tensor-core kernel)" : "", n_q, n_kv, d,
           bk + bv, 4 * d);
    for (int k = 0; k < n_ctx; k++) {
        size_t n = ctxs[k];
        int per = n <= 16384 ? 50 : 20;
        double tp = time_it([&] { RQ(rq_cuda_attention(a, gk, gv, q, kb, vb, n, cmax, 0.0f, o_p, NULL)); }, per, 9);
        double th = time_it([&] { RQ(rq_cuda_attention_f16(a, q, (const uint16_t *)kh, (const uint16_t *)vh, n,
                                                            cmax, 0.0f, o_h, NULL)); },
                            per, 9);
        /* sanity: the two outputs differ by the quantization error only */
        static float hp[16384], hh[16384]; /* n_q · d ≤ 16384 */
        CK(cudaMemcpy(hp, o_p, sizeof(float) * n_q * d, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(hh, o_h, sizeof(float) * n_q * d, cudaMemcpyDeviceToHost));
        double e2 = 0, r2 = 0;
        for (int i = 0; i < n_q * d; i++) {
            e2 += (double)(hp[i] - hh[i]) * (hp[i] - hh[i]);
            r2 += (double)hh[i] * hh[i];
        }
        double bp = (double)n * n_kv * (bk + bv), bh = (double)n * n_kv * 4.0 * d;
        printf("    ctx %7zu: packed %8.2f us (%5.0f GB/s, %4.1f%% of HBM peak, %4.1f%% of copy) | f16 %8.2f us "
               "(%5.0f GB/s, %4.1f%% of copy) | speed-up %.2fx | rel diff %.3f\n",
               n, tp * 1e6, bp / tp / 1e9, 100 * bp / tp / HBM_PEAK, 100 * bp / tp / copy_bw, th * 1e6,
               bh / th / 1e9, 100 * bh / th / copy_bw, th / tp, sqrt(e2 / (r2 > 0 ? r2 : 1)));
        if (g_csv) {
            fprintf(g_csv, "attn_packed,%s/%s,%d,%zu,%.0f,%.9f,%.1f\n", tk, tv, d, n, bp, tp, bp / tp / 1e9);
            fprintf(g_csv, "attn_f16,f16,%d,%zu,%.0f,%.9f,%.1f\n", d, n, bh, th, bh / th / 1e9);
        }
    }
    rq_cuda_attn_free(a);
    CK(cudaFree(x));
    CK(cudaFree(kb));
    CK(cudaFree(vb));
    CK(cudaFree(kh));
    CK(cudaFree(vh));
    CK(cudaFree(q));
    CK(cudaFree(o_p));
    CK(cudaFree(o_h));
    rq_cuda_quantizer_free(gk);
    rq_cuda_quantizer_free(gv);
    rq_quantizer_free(qk);
    rq_quantizer_free(qv);
}

int main(int argc, char **argv) {
    int quick = 0, profile = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--profile")) profile = 1; /* one attention shape, for ncu */
        else if (!strcmp(argv[i], "--csv") && i + 1 < argc) g_csv = fopen(argv[++i], "w");
    }
    if (!rq_cuda_available()) {
        printf("no CUDA device: %s\n", rq_cuda_error_str());
        return 0;
    }
    char name[160];
    RQ(rq_cuda_device_name(name, sizeof name));
    printf("device: %s\n", name);
    if (g_csv) fprintf(g_csv, "what,type,d,n,bytes,seconds,GBps\n");
    if (profile) {
        static const size_t c128k[] = {131072};
        bench_attention("turbo3", "turbo3", 32, 8, 128, c128k, 1, 3.0e12);
        bench_attention("turbo3", "turbo3", 8, 8, 128, c128k, 1, 3.0e12);
        bench_attention("turbo3", "turbo3", 32, 8, 128, c128k, 1, 3.0e12, 1);
        bench_attention("turbo3", "turbo3", 32, 8, 128, c128k, 1, 3.0e12, 2);
        return 0;
    }
    double bw = bench_copy();

    static const size_t ns_full[] = {1024, 4096, 16384, 65536, 262144, 1048576};
    static const size_t ns_quick[] = {1024, 16384, 1048576};
    const size_t *ns = quick ? ns_quick : ns_full;
    int n_ns = quick ? 3 : 6;
    printf("encode (fused: norm, rotation, codes, pack; f32 in, blocks out):\n");
    static const int dims[] = {64, 128, 256};
    for (int i = 0; i < 3; i++) bench_encode("turbo3", dims[i], ns, n_ns, bw);
    static const size_t n1m[] = {1048576};
    bench_encode("turbo1", 128, n1m, 1, bw);
    bench_encode("turbo2", 128, n1m, 1, bw);
    bench_encode("turbo4", 128, n1m, 1, bw);
    bench_encode("turbo3p", 128, n1m, 1, bw);
    bench_encode("rotor3", 128, n1m, 1, bw);
    bench_encode("planar3", 128, n1m, 1, bw);
    bench_encode("iso3", 128, n1m, 1, bw);
    bench_encode("dense3", 128, n1m, 1, bw);
    bench_encode("turbo3", 96, n1m, 1, bw);

    static const size_t ctx_full[] = {4096, 8192, 16384, 32768, 65536, 131072};
    static const size_t ctx_quick[] = {4096, 32768, 131072};
    const size_t *ctx = quick ? ctx_quick : ctx_full;
    int n_ctx = quick ? 3 : 6;
    printf("decode attention (1 new token; median of batches of back-to-back calls):\n");
    bench_attention("turbo3", "turbo3", 32, 8, 128, ctx, n_ctx, bw); /* Llama-3-8B layer shape */
    bench_attention("turbo3", "turbo3", 32, 8, 128, ctx, n_ctx, bw, 1); /* same, CUDA-core kernel */
    bench_attention("turbo3", "turbo3", 32, 8, 128, ctx, n_ctx, bw, 2); /* same, generic tensor-core kernel */
    bench_attention("turbo3", "turbo3", 64, 8, 128, ctx, n_ctx, bw);  /* Llama-3-70B: G = 8 */
    bench_attention("turbo4", "turbo4", 32, 8, 128, ctx, n_ctx, bw);
    bench_attention("turbo2", "turbo2", 32, 8, 128, ctx, n_ctx, bw);
    bench_attention("turbo3", "turbo3", 8, 8, 128, ctx, n_ctx, bw);  /* no GQA */
    bench_attention("turbo3", "turbo3", 8, 1, 256, ctx, n_ctx, bw);  /* gemma-3-like d = 256 */
    bench_attention("turbo3", "turbo3", 9, 3, 64, ctx, n_ctx, bw);   /* SmolLM2 d = 64 */
    if (g_csv) fclose(g_csv);
    return 0;
}
