/*
 * attn_avx512.c — AVX-512 versions of the attention inner loops. Codes: 16
 * codes per step from two b-byte words (lanes 0–7 and 8–15), shifted per
 * lane and masked; the lookup is one vpermps over the 16-entry table for
 * every b. Signs become a 16-bit mask directly. The 32-value ggml blocks use
 * the shared 256-bit loops (attn_x86.h). Tails use the scalar reference.
 */
#include "attn_x86.h"

static inline uint32_t load_bytes(const uint8_t *p, int n) {
    uint32_t w = 0;
    memcpy(&w, p, (size_t)n);
    return w;
}

/* Centroids of the 16 codes starting at code 16k. */
static inline __m512 lookup16(const uint8_t *codes, int k, int bits, __m512 tab, __m512i shifts, __m512i mask) {
    const uint8_t *p = codes + 2 * k * bits;
    __m512i w = _mm512_inserti32x8(_mm512_castsi256_si512(_mm256_set1_epi32((int)load_bytes(p, bits))),
                                   _mm256_set1_epi32((int)load_bytes(p + bits, bits)), 1);
    return _mm512_permutexvar_ps(_mm512_and_si512(_mm512_srlv_epi32(w, shifts), mask), tab);
}

#define CODE_SETUP                                                                              \
    float tab_[16] = {0};                                                                       \
    memcpy(tab_, cent, sizeof(float) * ((size_t)1 << bits));                                     \
    __m512 tab = _mm512_loadu_ps(tab_);                                                          \
    __m512i shifts = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7), \
                                        _mm512_set1_epi32(bits));                                \
    __m512i mask = _mm512_set1_epi32((1 << bits) - 1);                                           \
    int d16 = d & ~15;

static float dot_codes_avx512(const float *q, const uint8_t *codes, int d, int bits, const float *cent) {
    CODE_SETUP
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int k = 0;
    for (; 16 * k + 32 <= d16; k += 2) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * k), lookup16(codes, k, bits, tab, shifts, mask), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * k + 16), lookup16(codes, k + 1, bits, tab, shifts, mask), a1);
    }
    for (; 16 * k < d16; k++)
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * k), lookup16(codes, k, bits, tab, shifts, mask), a0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    if (d16 < d) s += rq__attn_ref.dot_codes(q + d16, codes + (size_t)d16 * bits / 8, d - d16, bits, cent);
    return s;
}

static void acc_codes_avx512(float *acc, float w, const uint8_t *codes, int d, int bits, const float *cent) {
    CODE_SETUP
    __m512 vw = _mm512_set1_ps(w);
    for (int k = 0; 16 * k < d16; k++)
        _mm512_storeu_ps(acc + 16 * k, _mm512_fmadd_ps(vw, lookup16(codes, k, bits, tab, shifts, mask),
                                                       _mm512_loadu_ps(acc + 16 * k)));
    if (d16 < d) rq__attn_ref.acc_codes(acc + d16, w, codes + (size_t)d16 * bits / 8, d - d16, bits, cent);
}

static inline __mmask16 mask16(const uint8_t *s) { return (__mmask16)(s[0] | (s[1] << 8)); }

static float dot_signs_avx512(const float *q, const uint8_t *signs, int d) {
    __m512 a = _mm512_setzero_ps();
    int d16 = d & ~15;
    for (int j = 0; j < d16; j += 16) {
        __m512 v = _mm512_loadu_ps(q + j);
        a = _mm512_add_ps(a, _mm512_mask_blend_ps(mask16(signs + j / 8), _mm512_sub_ps(_mm512_setzero_ps(), v), v));
    }
    float s = _mm512_reduce_add_ps(a);
    if (d16 < d) s += rq__attn_ref.dot_signs(q + d16, signs + d16 / 8, d - d16);
    return s;
}

static void acc_signs_avx512(float *acc, float w, const uint8_t *signs, int d) {
    __m512 vw = _mm512_set1_ps(w), nw = _mm512_set1_ps(-w);
    int d16 = d & ~15;
    for (int j = 0; j < d16; j += 16)
        _mm512_storeu_ps(acc + j, _mm512_add_ps(_mm512_loadu_ps(acc + j), _mm512_mask_blend_ps(mask16(signs + j / 8), nw, vw)));
    if (d16 < d) rq__attn_ref.acc_signs(acc + d16, w, signs + d16 / 8, d - d16);
}

static inline __m512 load_h16(const uint8_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p)); }

static float dot_f16_avx512(const float *q, const uint8_t *x, int d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int j = 0;
    for (; j + 32 <= d; j += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + j), load_h16(x + 2 * j), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + j + 16), load_h16(x + 2 * j + 32), a1);
    }
    for (; j + 16 <= d; j += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + j), load_h16(x + 2 * j), a0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    if (j < d) s += rq__attn_ref.dot_f16(q + j, x + 2 * (size_t)j, d - j);
    return s;
}

static void acc_f16_avx512(float *acc, float w, const uint8_t *x, int d) {
    __m512 vw = _mm512_set1_ps(w);
    int j = 0;
    for (; j + 16 <= d; j += 16) _mm512_storeu_ps(acc + j, _mm512_fmadd_ps(vw, load_h16(x + 2 * j), _mm512_loadu_ps(acc + j)));
    if (j < d) rq__attn_ref.acc_f16(acc + j, w, x + 2 * (size_t)j, d - j);
}

const rq_attn_kernels rq__attn_avx512 = {
    "avx512", dot_codes_avx512, acc_codes_avx512, dot_signs_avx512, acc_signs_avx512, dot_f32_x86, acc_f32_x86,
    dot_f16_avx512, acc_f16_avx512, dot_q8_0_x86, acc_q8_0_x86, dot_q4_0_x86, acc_q4_0_x86,
};
