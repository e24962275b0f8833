/*
 * attn_kernels.h — the inner loops of fused decode attention, one table per
 * SIMD level (scalar reference in attn_kernels.c; AVX2/AVX-512 in
 * src/simd/attn_*.c, tested against the reference in tests/test_attention.c).
 *
 * Per token, attention decodes each packed field of the block once into an
 * L1-resident float vector (codes: scale·cent[code_j]; signs: ±scale; the
 * ggml layouts: their values), then scores it against every query head of
 * the GQA group with `dot` and accumulates values with `axpy`: the unpack
 * cost is paid once per token, not once per query head.
 * The SIMD code readers may read up to RQ_PAGE_SLACK bytes past a field,
 * so every buffer they read needs that much readable tail padding.
 */
#ifndef RQ_ATTN_KERNELS_H
#define RQ_ATTN_KERNELS_H

#include "internal.h"

#define RQ_PAGE_SLACK 64

typedef struct {
    const char *name;
    /* one token's field → floats (the caller reuses them for every query
     * head of the GQA group) */
    void (*decode_codes)(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale);
    void (*decode_signs)(float *out, const uint8_t *signs, int d, float scale); /* ±scale */
    void (*decode_f16)(float *out, const uint8_t *x, int d);
    void (*decode_q8_0)(float *out, const uint8_t *x, int d); /* d % 32 == 0 */
    void (*decode_q4_0)(float *out, const uint8_t *x, int d);
    /* n consecutive blocks `stride` bytes apart → n·d floats (one call per
     * run of a page, not per token): MSE blocks (fp16 norm at offset 0,
     * codes at off_codes) as decode_codes with scale = norm; the baselines'
     * blocks (family f16, q8_0 or q4_0) as their decoders above. */
    void (*decode_mse_n)(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes,
                         const float *cent);
    void (*decode_plain_n)(float *out, const uint8_t *blk, size_t stride, int n, int d, rq_family family);
    float (*dot)(const float *a, const float *b, int d);
    void (*axpy)(float *acc, float w, const float *x, int d); /* acc += w x */
    /* S[g·lds + t] += Σ_j Q[g·ldq + j] · K[t·d + j]   (g < G, t < n) */
    void (*scores)(const float *Q, int G, int ldq, const float *K, int n, int d, float *S, int lds);
    /* A[g·lda + j] += Σ_t P[g·ldp + t] · V[t·d + j]   (g < G, j < d) */
    void (*accum)(float *A, int G, int lda, const float *P, int ldp, const float *V, int n, int d);
    /* x_t ← exp(x_t − m) for t < n; returns Σ_t of the results. SIMD
     * versions use a polynomial exp within 2e-7 relative of expf. */
    float (*exp_sum)(float *x, int n, float m);
} rq_attn_kernels;

extern const rq_attn_kernels rq__attn_ref;
#ifndef RQ_NO_SIMD
extern const rq_attn_kernels rq__attn_avx2;
extern const rq_attn_kernels rq__attn_avx512;
#endif
/* The table for the process's SIMD level (rq__simd_level()). */
const rq_attn_kernels *rq__attn_kernels(void);
/* The table for a given level (falls back to the best available below it). */
const rq_attn_kernels *rq__attn_kernels_for(rq_simd_level level);

#endif
