/*
 * attn_avx2.c — AVX2 + FMA versions of the attention inner loops
 * (attn_kernels.h). Codes: 8 codes of b bits fill exactly b bytes, so each
 * step loads b bytes, broadcasts them, shifts lane i right by i·b and masks;
 * the centroid lookup is vpermps over an 8-entry table (b ≤ 3) or two tables
 * blended on bit 3 (b = 4). Tails (d mod 8) use the scalar reference.
 */
#include "attn_x86.h"

static inline uint32_t load_bytes(const uint8_t *p, int n) {
    uint32_t w = 0;
    memcpy(&w, p, (size_t)n); /* little-endian */
    return w;
}

/* Centroids of the 8 codes starting at code 8k. */
static inline __m256 lookup8(const uint8_t *codes, int k, int bits, __m256 lo, __m256 hi, __m256i shifts,
                             __m256i mask) {
    __m256i idx = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_set1_epi32((int)load_bytes(codes + k * bits, bits)), shifts), mask);
    __m256 c = _mm256_permutevar8x32_ps(lo, idx);
    if (bits == 4) c = _mm256_blendv_ps(c, _mm256_permutevar8x32_ps(hi, idx), _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
    return c;
}

#define CODE_SETUP                                                                         \
    float tab[16] = {0};                                                                   \
    memcpy(tab, cent, sizeof(float) * ((size_t)1 << bits));                                 \
    __m256 lo = _mm256_loadu_ps(tab), hi = _mm256_loadu_ps(tab + 8);                        \
    __m256i shifts = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(bits)); \
    __m256i mask = _mm256_set1_epi32((1 << bits) - 1);                                      \
    int d8 = d & ~7;

static float dot_codes_avx2(const float *q, const uint8_t *codes, int d, int bits, const float *cent) {
    CODE_SETUP
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int k = 0;
    for (; 8 * k + 16 <= d8; k += 2) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * k), lookup8(codes, k, bits, lo, hi, shifts, mask), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * k + 8), lookup8(codes, k + 1, bits, lo, hi, shifts, mask), a1);
    }
    for (; 8 * k < d8; k++)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * k), lookup8(codes, k, bits, lo, hi, shifts, mask), a0);
    float s = hsum256(_mm256_add_ps(a0, a1));
    if (d8 < d) s += rq__attn_ref.dot_codes(q + d8, codes + (size_t)d8 * bits / 8, d - d8, bits, cent);
    return s;
}

static void acc_codes_avx2(float *acc, float w, const uint8_t *codes, int d, int bits, const float *cent) {
    CODE_SETUP
    __m256 vw = _mm256_set1_ps(w);
    for (int k = 0; 8 * k < d8; k++)
        _mm256_storeu_ps(acc + 8 * k, _mm256_fmadd_ps(vw, lookup8(codes, k, bits, lo, hi, shifts, mask),
                                                      _mm256_loadu_ps(acc + 8 * k)));
    if (d8 < d) rq__attn_ref.acc_codes(acc + d8, w, codes + (size_t)d8 * bits / 8, d - d8, bits, cent);
}

/* lanes whose sign bit is set: 1 → +x, 0 → −x */
static inline __m256 sign_mask8(uint8_t byte) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i m = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(byte), bit), _mm256_setzero_si256());
    return _mm256_castsi256_ps(_mm256_slli_epi32(m, 31)); /* −0.0f where the bit is 0 */
}

static float dot_signs_avx2(const float *q, const uint8_t *signs, int d) {
    __m256 a = _mm256_setzero_ps();
    int d8 = d & ~7;
    for (int j = 0; j < d8; j += 8) a = _mm256_add_ps(a, _mm256_xor_ps(_mm256_loadu_ps(q + j), sign_mask8(signs[j >> 3])));
    float s = hsum256(a);
    if (d8 < d) s += rq__attn_ref.dot_signs(q + d8, signs + d8 / 8, d - d8);
    return s;
}

static void acc_signs_avx2(float *acc, float w, const uint8_t *signs, int d) {
    __m256 vw = _mm256_set1_ps(w);
    int d8 = d & ~7;
    for (int j = 0; j < d8; j += 8)
        _mm256_storeu_ps(acc + j, _mm256_add_ps(_mm256_loadu_ps(acc + j), _mm256_xor_ps(vw, sign_mask8(signs[j >> 3]))));
    if (d8 < d) rq__attn_ref.acc_signs(acc + d8, w, signs + d8 / 8, d - d8);
}

static inline __m256 load_h8(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p)); }

static float dot_f16_avx2(const float *q, const uint8_t *x, int d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int j = 0;
    for (; j + 16 <= d; j += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), load_h8(x + 2 * j), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 8), load_h8(x + 2 * j + 16), a1);
    }
    float s = hsum256(_mm256_add_ps(a0, a1));
    if (j < d) s += rq__attn_ref.dot_f16(q + j, x + 2 * (size_t)j, d - j);
    return s;
}

static void acc_f16_avx2(float *acc, float w, const uint8_t *x, int d) {
    __m256 vw = _mm256_set1_ps(w);
    int j = 0;
    for (; j + 8 <= d; j += 8) _mm256_storeu_ps(acc + j, _mm256_fmadd_ps(vw, load_h8(x + 2 * j), _mm256_loadu_ps(acc + j)));
    if (j < d) rq__attn_ref.acc_f16(acc + j, w, x + 2 * (size_t)j, d - j);
}

const rq_attn_kernels rq__attn_avx2 = {
    "avx2", dot_codes_avx2, acc_codes_avx2, dot_signs_avx2, acc_signs_avx2, dot_f32_x86, acc_f32_x86,
    dot_f16_avx2, acc_f16_avx2, dot_q8_0_x86, acc_q8_0_x86, dot_q4_0_x86, acc_q4_0_x86,
};
