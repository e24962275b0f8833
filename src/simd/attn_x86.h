/*
 * attn_x86.h — 256-bit (AVX2 + FMA + F16C) attention loops shared by the AVX2
 * and AVX-512 tables: f32, q8_0 and q4_0, whose 32-value blocks map onto
 * 256-bit registers. Included by src/simd/attn_avx2.c and attn_avx512.c only.
 */
#ifndef RQ_ATTN_X86_H
#define RQ_ATTN_X86_H

#include "attn_kernels.h"

#include <immintrin.h>

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float dot_f32_x86(const float *q, const uint8_t *x, int d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    const float *f = (const float *)(const void *)x;
    int j = 0;
    for (; j + 16 <= d; j += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), _mm256_loadu_ps(f + j), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 8), _mm256_loadu_ps(f + j + 8), a1);
    }
    float s = hsum256(_mm256_add_ps(a0, a1));
    if (j < d) s += rq__attn_ref.dot_f32(q + j, x + 4 * (size_t)j, d - j);
    return s;
}

static void acc_f32_x86(float *acc, float w, const uint8_t *x, int d) {
    __m256 vw = _mm256_set1_ps(w);
    const float *f = (const float *)(const void *)x;
    int j = 0;
    for (; j + 8 <= d; j += 8) _mm256_storeu_ps(acc + j, _mm256_fmadd_ps(vw, _mm256_loadu_ps(f + j), _mm256_loadu_ps(acc + j)));
    if (j < d) rq__attn_ref.acc_f32(acc + j, w, x + 4 * (size_t)j, d - j);
}

static inline float f16s(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | (p[1] << 8))); }

static inline __m256 i8x8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p)));
}

static float dot_q8_0_x86(const float *q, const uint8_t *x, int d) {
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < d / 32; b++, x += 34, q += 32) {
        __m256 s = _mm256_mul_ps(_mm256_loadu_ps(q), i8x8(x + 2));
        s = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8), i8x8(x + 10), s);
        s = _mm256_fmadd_ps(_mm256_loadu_ps(q + 16), i8x8(x + 18), s);
        s = _mm256_fmadd_ps(_mm256_loadu_ps(q + 24), i8x8(x + 26), s);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16s(x)), s, acc);
    }
    return hsum256(acc);
}

static void acc_q8_0_x86(float *acc, float w, const uint8_t *x, int d) {
    for (int b = 0; b < d / 32; b++, x += 34, acc += 32) {
        __m256 wd = _mm256_set1_ps(w * f16s(x));
        for (int k = 0; k < 4; k++)
            _mm256_storeu_ps(acc + 8 * k, _mm256_fmadd_ps(wd, i8x8(x + 2 + 8 * k), _mm256_loadu_ps(acc + 8 * k)));
    }
}

/* the 32 values (q − 8) of a q4_0 block as 4 × 8 floats */
static inline void q4_unpack(const uint8_t *x, __m256 v[4]) {
    __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(x + 2));
    __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, _mm_set1_epi8(15)), _mm_set1_epi8(8));
    __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(15)), _mm_set1_epi8(8));
    v[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
    v[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
    v[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
    v[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

static float dot_q4_0_x86(const float *q, const uint8_t *x, int d) {
    __m256 acc = _mm256_setzero_ps(), v[4];
    for (int b = 0; b < d / 32; b++, x += 18, q += 32) {
        q4_unpack(x, v);
        __m256 s = _mm256_mul_ps(_mm256_loadu_ps(q), v[0]);
        for (int k = 1; k < 4; k++) s = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * k), v[k], s);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16s(x)), s, acc);
    }
    return hsum256(acc);
}

static void acc_q4_0_x86(float *acc, float w, const uint8_t *x, int d) {
    __m256 v[4];
    for (int b = 0; b < d / 32; b++, x += 18, acc += 32) {
        __m256 wd = _mm256_set1_ps(w * f16s(x));
        q4_unpack(x, v);
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(acc + 8 * k, _mm256_fmadd_ps(wd, v[k], _mm256_loadu_ps(acc + 8 * k)));
    }
}

#endif
