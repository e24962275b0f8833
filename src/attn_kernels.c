/*
 * attn_kernels.c — scalar reference of the attention slots of the kernel
 * table (the executable spec; simd/kernels.h).
 */
#include "attn_kernels.h"

#include <math.h>

static inline unsigned code_at(const uint8_t *p, int i, int bits) {
    size_t bit = (size_t)i * (size_t)bits;
    unsigned v = p[bit >> 3];
    if ((bit & 7) + (size_t)bits > 8) v |= (unsigned)p[(bit >> 3) + 1] << 8;
    return (v >> (bit & 7)) & ((1u << bits) - 1);
}

void rq__decode_codes_ref(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale) {
    for (int j = 0; j < d; j++) out[j] = scale * cent[code_at(codes, j, bits)];
}

void rq__decode_signs_ref(float *out, const uint8_t *signs, int d, float scale) {
    for (int j = 0; j < d; j++) out[j] = ((signs[j >> 3] >> (j & 7)) & 1) ? scale : -scale;
}

void rq__decode_mse_n_ref(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes, const float *ntab,
                          const float *cent) {
    for (int t = 0; t < n; t++, blk += stride, out += d)
        rq__decode_codes_ref(out, blk + off_codes, d, bits, cent, rq__head_norm(blk, ntab));
}

static float dot_ref(const float *a, const float *b, int d) {
    float s = 0;
    for (int j = 0; j < d; j++) s += a[j] * b[j];
    return s;
}

void rq__scores_ref(const float *Q, int G, int ldq, const float *K, int n, int d, float *S, int lds) {
    for (int g = 0; g < G; g++)
        for (int t = 0; t < n; t++) S[(size_t)g * lds + t] += dot_ref(Q + (size_t)g * ldq, K + (size_t)t * d, d);
}

void rq__accum_ref(float *A, int G, int lda, const float *P, int ldp, const float *V, int n, int d) {
    for (int g = 0; g < G; g++)
        for (int t = 0; t < n; t++) {
            float w = P[(size_t)g * ldp + t], *acc = A + (size_t)g * lda;
            const float *x = V + (size_t)t * d;
            for (int j = 0; j < d; j++) acc[j] += w * x[j];
        }
}

/* decode_mse_n's keys fed to scores without storing them */
void rq__scores_mse_n_ref(const float *Q, int G, int ldq, const uint8_t *const *blk, int n, int d, int bits,
                          size_t off_codes, const float *ntab, const float *cent, float *S, int lds) {
    for (int g = 0; g < G; g++)
        for (int t = 0; t < n; t++) {
            const float scale = rq__head_norm(blk[t], ntab);
            const float *q = Q + (size_t)g * ldq;
            float sum = 0;
            for (int j = 0; j < d; j++) sum += q[j] * (scale * cent[code_at(blk[t] + off_codes, j, bits)]);
            S[(size_t)g * lds + t] += sum;
        }
}

/* decode_mse_n's values fed to accum without storing them: per accumulator
 * the same products and sums, in token order */
void rq__accum_mse_n_ref(float *A, int G, int lda, const float *P, int ldp, const uint8_t *blk, size_t stride, int n,
                         int d, int bits, size_t off_codes, const float *ntab, const float *cent) {
    for (int t = 0; t < n; t++, blk += stride) {
        const float scale = rq__head_norm(blk, ntab);
        for (int g = 0; g < G; g++) {
            const float w = P[(size_t)g * ldp + t];
            float *acc = A + (size_t)g * lda;
            for (int j = 0; j < d; j++) acc[j] += w * (scale * cent[code_at(blk + off_codes, j, bits)]);
        }
    }
}

float rq__exp_sum_ref(float *x, int n, float m) {
    float s = 0;
    for (int t = 0; t < n; t++) s += x[t] = expf(x[t] - m);
    return s;
}

/* ---- integer scores (rq_cache_config.int8_scores) ---------------------- */
void rq__decode_mse8_n_ref(uint8_t *tile, float *ks, int t0, const uint8_t *blk, size_t stride, int n, int d, int bits,
                           size_t off_codes, const float *ntab, const uint8_t *tab8, float cfac) {
    const int dp = (int)rq__i8_dp(d);
    for (int t = t0; t < t0 + n; t++, blk += stride) {
        ks[t] = rq__head_norm(blk, ntab) * cfac;
        for (int j = 0; j < dp; j++) tile[rq__i8_at(d, t, j)] = j < d ? tab8[code_at(blk + off_codes, j, bits)] : 128;
    }
}

void rq__decode_tcq8_n_ref(uint8_t *tile, float *ks, int t0, const uint8_t *blk, size_t stride, int n, int d, int bits,
                           size_t off_codes, const float *ntab, const uint8_t *tab8, float cfac) {
    const int dp = (int)rq__i8_dp(d);
    for (int t = t0; t < t0 + n; t++, blk += stride) {
        ks[t] = rq__head_norm(blk, ntab) * cfac;
        for (int j = 0; j < dp; j++)
            tile[rq__i8_at(d, t, j)] = j < d ? tab8[rq__tcq_window(blk + off_codes, d, bits, j)] : 128;
    }
}

void rq__scores_i8_ref(const int8_t *Q8, int G, int ldq, const float *qs, const int32_t *qsum, const uint8_t *K8,
                       const float *ks, int n, int d, float *S, int lds) {
    (void)qsum; /* the SIMD levels' correction; here each byte is unbiased */
    for (int g = 0; g < G; g++)
        for (int t = 0; t < n; t++) {
            const int8_t *q = Q8 + (size_t)g * ldq;
            int32_t dot = 0;
            for (int j = 0; j < d; j++) dot += (int32_t)q[j] * ((int32_t)K8[rq__i8_at(d, t, j)] - 128);
            S[(size_t)g * lds + t] += qs[g] * ks[t] * (float)dot;
        }
}

void rq__quantize_q8(const float *x, int d, int8_t *q8, float *qs, int32_t *qsum) {
    float amax = 0;
    for (int i = 0; i < d; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    for (int i = 0; i < d; i++) {
        long v = lrintf(x[i] * inv);
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q8[i] = (int8_t)v, sum += (int32_t)v;
    }
    *qs = amax / 127.0f, *qsum = sum;
}
