/*
 * attn_kernels.c — scalar reference of the attention inner loops (the
 * executable spec) and the choice of table per SIMD level.
 */
#include "attn_kernels.h"

#include <math.h>

static inline unsigned code_at(const uint8_t *p, int i, int bits) {
    size_t bit = (size_t)i * (size_t)bits;
    unsigned v = p[bit >> 3];
    if ((bit & 7) + (size_t)bits > 8) v |= (unsigned)p[(bit >> 3) + 1] << 8;
    return (v >> (bit & 7)) & ((1u << bits) - 1);
}

static inline float f16_at(const uint8_t *p) { return rq_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

static void decode_codes_ref(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale) {
    for (int j = 0; j < d; j++) out[j] = scale * cent[code_at(codes, j, bits)];
}

static void decode_signs_ref(float *out, const uint8_t *signs, int d, float scale) {
    for (int j = 0; j < d; j++) out[j] = ((signs[j >> 3] >> (j & 7)) & 1) ? scale : -scale;
}

static void decode_f16_ref(float *out, const uint8_t *x, int d) {
    for (int j = 0; j < d; j++) out[j] = f16_at(x + 2 * j);
}

static void decode_q8_0_ref(float *out, const uint8_t *x, int d) {
    for (int b = 0; b < d / 32; b++, x += 34, out += 32) {
        float s = f16_at(x);
        for (int j = 0; j < 32; j++) out[j] = s * (float)(int8_t)x[2 + j];
    }
}

static void decode_q4_0_ref(float *out, const uint8_t *x, int d) {
    for (int b = 0; b < d / 32; b++, x += 18, out += 32) {
        float s = f16_at(x);
        for (int j = 0; j < 16; j++) {
            out[j] = s * (float)((x[2 + j] & 15) - 8);
            out[16 + j] = s * (float)((x[2 + j] >> 4) - 8);
        }
    }
}

static void decode_mse_n_ref(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes,
                             const float *cent) {
    for (int t = 0; t < n; t++, blk += stride, out += d) decode_codes_ref(out, blk + off_codes, d, bits, cent, f16_at(blk));
}

static void decode_plain_n_ref(float *out, const uint8_t *blk, size_t stride, int n, int d, rq_family family) {
    void (*dec)(float *, const uint8_t *, int) = family == RQ_FAMILY_F16    ? decode_f16_ref
                                                 : family == RQ_FAMILY_Q8_0 ? decode_q8_0_ref
                                                                            : decode_q4_0_ref;
    for (int t = 0; t < n; t++, blk += stride, out += d) dec(out, blk, d);
}

static float dot_ref(const float *a, const float *b, int d) {
    float s = 0;
    for (int j = 0; j < d; j++) s += a[j] * b[j];
    return s;
}

static void axpy_ref(float *acc, float w, const float *x, int d) {
    for (int j = 0; j < d; j++) acc[j] += w * x[j];
}

static void scores_ref(const float *Q, int G, int ldq, const float *K, int n, int d, float *S, int lds) {
    for (int g = 0; g < G; g++)
        for (int t = 0; t < n; t++) S[(size_t)g * lds + t] += dot_ref(Q + (size_t)g * ldq, K + (size_t)t * d, d);
}

static void accum_ref(float *A, int G, int lda, const float *P, int ldp, const float *V, int n, int d) {
    for (int g = 0; g < G; g++)
        for (int t = 0; t < n; t++) axpy_ref(A + (size_t)g * lda, P[(size_t)g * ldp + t], V + (size_t)t * d, d);
}

static float exp_sum_ref(float *x, int n, float m) {
    float s = 0;
    for (int t = 0; t < n; t++) s += x[t] = expf(x[t] - m);
    return s;
}

const rq_attn_kernels rq__attn_ref = {
    "scalar", decode_codes_ref, decode_signs_ref, decode_f16_ref, decode_q8_0_ref, decode_q4_0_ref,
    decode_mse_n_ref, decode_plain_n_ref, dot_ref, axpy_ref,
    scores_ref, accum_ref, exp_sum_ref,
};

const rq_attn_kernels *rq__attn_kernels_for(rq_simd_level level) {
#ifndef RQ_NO_SIMD
    if (level >= RQ_SIMD_AVX512) return &rq__attn_avx512;
    if (level >= RQ_SIMD_AVX2) return &rq__attn_avx2;
#endif
    (void)level;
    return &rq__attn_ref;
}

const rq_attn_kernels *rq__attn_kernels(void) { return rq__attn_kernels_for(rq__simd_level()); }
