/*
 * attn_x86.h — 256-bit (AVX2 + F16C) decoders shared by the AVX2 and AVX-512
 * attention tables: q8_0 and q4_0, whose 32-value blocks map onto 256-bit
 * registers, and the 4-byte code loader. Included by src/simd/attn_avx2.c
 * and attn_avx512.c only.
 */
#ifndef RQ_ATTN_X86_H
#define RQ_ATTN_X86_H

#include "attn_kernels.h"

#include <immintrin.h>

/* 4 bytes from p (little-endian); only the low 8·b bits are used. Readers
 * may touch up to 3 bytes past the codes: blocks live in pages with
 * RQ_PAGE_SLACK bytes of tail padding (kvcache.c). */
static inline uint32_t load_u32(const uint8_t *p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

static inline float f16s(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | (p[1] << 8))); }

static void decode_q8_0_x86(float *out, const uint8_t *x, int d) {
    for (int b = 0; b < d / 32; b++, x += 34, out += 32) {
        __m256 s = _mm256_set1_ps(f16s(x));
        for (int k = 0; k < 4; k++) {
            __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(x + 2 + 8 * k))));
            _mm256_storeu_ps(out + 8 * k, _mm256_mul_ps(s, v));
        }
    }
}

static void decode_q4_0_x86(float *out, const uint8_t *x, int d) {
    for (int b = 0; b < d / 32; b++, x += 18, out += 32) {
        __m256 s = _mm256_set1_ps(f16s(x));
        __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(x + 2));
        __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, _mm_set1_epi8(15)), _mm_set1_epi8(8));
        __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(15)), _mm_set1_epi8(8));
        _mm256_storeu_ps(out, _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
        _mm256_storeu_ps(out + 8, _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
        _mm256_storeu_ps(out + 16, _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
        _mm256_storeu_ps(out + 24, _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
    }
}

#endif
