/*
 * attn_kernels.c — scalar reference of the attention inner loops (the
 * executable spec) and the choice of table per SIMD level.
 */
#include "attn_kernels.h"

static inline unsigned code_at(const uint8_t *p, int i, int bits) {
    size_t bit = (size_t)i * (size_t)bits;
    unsigned v = p[bit >> 3];
    if ((bit & 7) + (size_t)bits > 8) v |= (unsigned)p[(bit >> 3) + 1] << 8;
    return (v >> (bit & 7)) & ((1u << bits) - 1);
}

static float dot_codes_ref(const float *q, const uint8_t *codes, int d, int bits, const float *cent) {
    float s = 0;
    for (int j = 0; j < d; j++) s += q[j] * cent[code_at(codes, j, bits)];
    return s;
}

static void acc_codes_ref(float *acc, float w, const uint8_t *codes, int d, int bits, const float *cent) {
    for (int j = 0; j < d; j++) acc[j] += w * cent[code_at(codes, j, bits)];
}

static float dot_signs_ref(const float *q, const uint8_t *signs, int d) {
    float s = 0;
    for (int j = 0; j < d; j++) s += ((signs[j >> 3] >> (j & 7)) & 1) ? q[j] : -q[j];
    return s;
}

static void acc_signs_ref(float *acc, float w, const uint8_t *signs, int d) {
    for (int j = 0; j < d; j++) acc[j] += ((signs[j >> 3] >> (j & 7)) & 1) ? w : -w;
}

static float load_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}
static float load_f16(const uint8_t *p) { return rq_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

static float dot_f32_ref(const float *q, const uint8_t *x, int d) {
    float s = 0;
    for (int j = 0; j < d; j++) s += q[j] * load_f32(x + 4 * j);
    return s;
}
static void acc_f32_ref(float *acc, float w, const uint8_t *x, int d) {
    for (int j = 0; j < d; j++) acc[j] += w * load_f32(x + 4 * j);
}
static float dot_f16_ref(const float *q, const uint8_t *x, int d) {
    float s = 0;
    for (int j = 0; j < d; j++) s += q[j] * load_f16(x + 2 * j);
    return s;
}
static void acc_f16_ref(float *acc, float w, const uint8_t *x, int d) {
    for (int j = 0; j < d; j++) acc[j] += w * load_f16(x + 2 * j);
}

static float dot_q8_0_ref(const float *q, const uint8_t *x, int d) {
    float s = 0;
    for (int b = 0; b < d / 32; b++, x += 34, q += 32) {
        float bs = 0;
        for (int j = 0; j < 32; j++) bs += q[j] * (float)(int8_t)x[2 + j];
        s += bs * load_f16(x);
    }
    return s;
}
static void acc_q8_0_ref(float *acc, float w, const uint8_t *x, int d) {
    for (int b = 0; b < d / 32; b++, x += 34, acc += 32) {
        float wd = w * load_f16(x);
        for (int j = 0; j < 32; j++) acc[j] += wd * (float)(int8_t)x[2 + j];
    }
}
static float dot_q4_0_ref(const float *q, const uint8_t *x, int d) {
    float s = 0;
    for (int b = 0; b < d / 32; b++, x += 18, q += 32) {
        float bs = 0;
        for (int j = 0; j < 16; j++)
            bs += q[j] * (float)((x[2 + j] & 15) - 8) + q[16 + j] * (float)((x[2 + j] >> 4) - 8);
        s += bs * load_f16(x);
    }
    return s;
}
static void acc_q4_0_ref(float *acc, float w, const uint8_t *x, int d) {
    for (int b = 0; b < d / 32; b++, x += 18, acc += 32) {
        float wd = w * load_f16(x);
        for (int j = 0; j < 16; j++) {
            acc[j] += wd * (float)((x[2 + j] & 15) - 8);
            acc[16 + j] += wd * (float)((x[2 + j] >> 4) - 8);
        }
    }
}

const rq_attn_kernels rq__attn_ref = {
    "scalar", dot_codes_ref, acc_codes_ref, dot_signs_ref, acc_signs_ref, dot_f32_ref, acc_f32_ref,
    dot_f16_ref, acc_f16_ref, dot_q8_0_ref, acc_q8_0_ref, dot_q4_0_ref, acc_q4_0_ref,
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
