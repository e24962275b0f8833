/*
 * attn_avx512.c — AVX-512 attention loops. Codes of b ≤ 4 bits: 16 per step,
 * looked up with one vpermps in a 16-entry table repeated every 2^b entries
 * (so no mask is needed): with AVX512_VBMI, one vpmultishiftqb puts code i's
 * bits in lane i from one broadcast 8-byte load; without, two b-byte words
 * (lanes 0–7 and 8–15) shifted per lane. 5 bits: 16 codes from 10 bytes by a
 * byte shuffle (each lane gets the two bytes its code spans), looked up with
 * vpermt2ps over the 32-entry table in two registers. Signs become a 16-bit
 * mask directly. Value blocks (f16, q8_0, q4_0) use the level's values_decode
 * slots (encode_avx512.c). Tails use the scalar reference. Scores: 4 heads ×
 * 4 tokens of accumulators summed by one transposing tree; accumulate: ≥ 8
 * independent FMA chains. accum_mse_n / scores_mse_n: the same loops with
 * each 16-code chunk decoded in registers instead of loaded from a tile.
 */
#include "attn_x86.h"

/* 5 bits: as encode_avx512.c's unpack16_b5 (code k in byte ⌊5k/8⌋ from bit
 * 5k mod 8, reaching into the next byte when that is > 3). */
static const int8_t B5_PICK[64] = { /* lane k: bytes ⌊5k/8⌋, ⌊5k/8⌋ + 1, zero, zero */
    0, 1, -1, -1, 0, 1, -1, -1, 1, 2, -1, -1, 1, 2, -1, -1, 2, 3, -1, -1, 3, 4, -1, -1, 3, 4, -1, -1, 4, 5, -1, -1,
    5, 6, -1, -1, 5, 6, -1, -1, 6, 7, -1, -1, 6, 7, -1, -1, 7, 8, -1, -1, 8, 9, -1, -1, 8, 9, -1, -1, 9, 10, -1, -1};

static void decode_codes_b5(float *out, const uint8_t *codes, int d, const float *cent, float scale) {
    /* the scaled table, 32 entries in two registers: one multiply per entry */
    const __m512 vs = _mm512_set1_ps(scale);
    const __m512 lo = _mm512_mul_ps(_mm512_loadu_ps(cent), vs), hi = _mm512_mul_ps(_mm512_loadu_ps(cent + 16), vs);
    const __m512i pick = _mm512_loadu_si512(B5_PICK), mask = _mm512_set1_epi32(31);
    const __m512i shifts = _mm512_setr_epi32(0, 5, 2, 7, 4, 1, 6, 3, 0, 5, 2, 7, 4, 1, 6, 3);
    int d16 = d & ~15;
    for (int k = 0; 16 * k < d16; k++) {
        __m512i w = _mm512_broadcast_i32x4(_mm_maskz_loadu_epi8(0x3ff, codes + 10 * k)); /* exactly the 10 bytes */
        __m512i idx = _mm512_and_si512(_mm512_srlv_epi32(_mm512_shuffle_epi8(w, pick), shifts), mask);
        _mm512_storeu_ps(out + 16 * k, _mm512_permutex2var_ps(lo, idx, hi));
    }
    if (d16 < d) rq__decode_codes_ref(out + d16, codes + (size_t)d16 * 5 / 8, d - d16, 5, cent, scale);
}

/* The 16-entry table the lookups read, scale·cent[i mod 2^b]: vpermps uses
 * only bits 0–3 of each index, so with the table repeated every 2^b
 * entries the bits of the next codes above a code need no mask. One
 * multiply per entry, as the reference. */
static inline __m512 table16(const float *cent, int bits, float scale) {
    const __m512i rep = _mm512_and_si512(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32((1 << bits) - 1));
    __m512 c = _mm512_permutexvar_ps(rep, _mm512_maskz_loadu_ps((__mmask16)((1u << (1 << bits)) - 1), cent));
    return _mm512_mul_ps(c, _mm512_set1_ps(scale));
}

/* b ≤ 4 without VBMI: 16 codes from two b-byte words (lanes 0–7 and 8–15)
 * shifted per lane; the code's bits end up in bits 0..b−1 of the lane. */
static inline __attribute__((always_inline)) void decode_codes_f(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale) {
    const __m512 tab = table16(cent, bits, scale);
    const __m512i shifts = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7), _mm512_set1_epi32(bits));
    int d16 = d & ~15;
    for (int k = 0; 16 * k < d16; k++) {
        const uint8_t *p = codes + 2 * k * bits;
        __m512i w = _mm512_inserti32x8(_mm512_castsi256_si512(_mm256_set1_epi32((int)load_u32(p))),
                                       _mm256_set1_epi32((int)load_u32(p + bits)), 1);
        _mm512_storeu_ps(out + 16 * k, _mm512_permutexvar_ps(_mm512_srlv_epi32(w, shifts), tab));
    }
    if (d16 < d) rq__decode_codes_ref(out + d16, codes + (size_t)d16 * bits / 8, d - d16, bits, cent, scale);
}

/* b ≤ 4 with AVX-512 VBMI: the 2b bytes of 16 codes (read as 8: the
 * slack) broadcast to every qword; vpmultishiftqb puts the 8 bits from bit
 * b·i of the word into the low byte of dword lane i (lanes 2q and 2q+1 are
 * bytes 0 and 4 of qword q); code i is their low b bits, and the lookup
 * ignores the rest. Two shuffle-port µops per 16 values (was four). */
#define VBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx2,fma,f16c")))
/* control bytes: byte 0 of dword lane i = b·i (< 64), the others unused */
VBMI static inline __m512i multishift_ctl(int bits) {
    return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(bits));
}

VBMI static inline __attribute__((always_inline)) void decode_codes_vbmi(float *out, const uint8_t *codes, int d, int bits, __m512i ctl, const float *cent, float scale) {
    const __m512 tab = table16(cent, bits, scale);
    int d16 = d & ~15;
    for (int k = 0; 16 * k < d16; k++) {
        uint64_t w;
        memcpy(&w, codes + 2 * k * bits, 8);
        __m512i idx = _mm512_multishift_epi64_epi8(ctl, _mm512_set1_epi64((long long)w));
        _mm512_storeu_ps(out + 16 * k, _mm512_permutexvar_ps(idx, tab));
    }
    if (d16 < d) rq__decode_codes_ref(out + d16, codes + (size_t)d16 * bits / 8, d - d16, bits, cent, scale);
}

/* the 16 code indices of a chunk of codes at p, for a vpermps lookup in
 * table16: with VBMI (ctl = multishift_ctl) or by shifts (ctl = the lanes'
 * shifts, two words) */
VBMI static inline __m512i idx_vbmi(const uint8_t *p, __m512i ctl, int bits) {
    (void)bits;
    uint64_t w;
    memcpy(&w, p, 8);
    return _mm512_multishift_epi64_epi8(ctl, _mm512_set1_epi64((long long)w));
}
static inline __m512i shifts_f(int bits) {
    return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7), _mm512_set1_epi32(bits));
}
static inline __m512i idx_f(const uint8_t *p, __m512i shifts, int bits) {
    __m512i w = _mm512_inserti32x8(_mm512_castsi256_si512(_mm256_set1_epi32((int)load_u32(p))),
                                   _mm256_set1_epi32((int)load_u32(p + bits)), 1);
    return _mm512_srlv_epi32(w, shifts);
}
VBMI static void decode_mse_n_vbmi(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes, const float *ntab,
                                   const float *cent) {
    const __m512i ctl = multishift_ctl(bits);
    for (int t = 0; t < n; t++, blk += stride, out += d) decode_codes_vbmi(out, blk + off_codes, d, bits, ctl, cent, head_s(blk, ntab));
}

VBMI static void decode_codes_vbmi_1(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale) {
    decode_codes_vbmi(out, codes, d, bits, multishift_ctl(bits), cent, scale);
}

static int have_vbmi(void) { return __builtin_cpu_supports("avx512vbmi"); }

/* the AVX-512 decoder without VBMI (tests/test_attention.c compares both) */
void rq__decode_codes_avx512f(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale) {
    if (bits == 5) decode_codes_b5(out, codes, d, cent, scale);
    else decode_codes_f(out, codes, d, bits, cent, scale);
}

void rq__decode_signs_avx512(float *out, const uint8_t *signs, int d, float scale) {
    __m512 p = _mm512_set1_ps(scale), n = _mm512_set1_ps(-scale);
    int d16 = d & ~15;
    for (int j = 0; j < d16; j += 16)
        _mm512_storeu_ps(out + j, _mm512_mask_blend_ps((__mmask16)(signs[j / 8] | (signs[j / 8 + 1] << 8)), n, p));
    if (d16 < d) rq__decode_signs_ref(out + d16, signs + d16 / 8, d - d16, scale);
}

/* Batched over the tokens of a page run: the norm converted by F16C, the
 * loop-invariant constants of the decoder hoisted by inlining. */
void rq__decode_mse_n_avx512(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes, const float *ntab,
                               const float *cent) {
    if (bits == 5) {
        for (int t = 0; t < n; t++, blk += stride, out += d) decode_codes_b5(out, blk + off_codes, d, cent, head_s(blk, ntab));
    } else if (have_vbmi()) {
        decode_mse_n_vbmi(out, blk, stride, n, d, bits, off_codes, ntab, cent);
    } else {
        for (int t = 0; t < n; t++, blk += stride, out += d) decode_codes_f(out, blk + off_codes, d, bits, cent, head_s(blk, ntab));
    }
}

/* The bodies below are instantiated for each constant head count GN so the
 * accumulator arrays are unrolled into registers (a runtime bound would
 * leave them in memory: a load and a store around every FMA). */
#define RQ_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Sum of each of four vectors: [Σa, Σb, Σc, Σd] (a hadd tree, ~3 ops per sum). */
static inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
#define H(x) _mm256_add_ps(_mm512_castps512_ps256(x), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)))
    __m256 w = _mm256_hadd_ps(_mm256_hadd_ps(H(a), H(b)), _mm256_hadd_ps(H(c), H(d)));
#undef H
    return _mm_add_ps(_mm256_castps256_ps128(w), _mm256_extractf128_ps(w, 1));
}

/* The 16 sums of 16 vectors: r[i] = Σ x[i] (a transposing tree: 30
 * shuffles and 15 adds for 16 sums, where reduce4 takes ~19 µops per 4). */
static inline __m512 hsum16(const __m512 x[16]) {
    __m512 y[8], z[4];
    for (int p = 0; p < 8; p++) /* lane k: [a0+a2, b0+b2, a1+a3, b1+b3] */
        y[p] = _mm512_add_ps(_mm512_unpacklo_ps(x[2 * p], x[2 * p + 1]), _mm512_unpackhi_ps(x[2 * p], x[2 * p + 1]));
    for (int p = 0; p < 4; p++) { /* lane k: the lane's sums of x[4p .. 4p+3] */
        __m512d c = _mm512_castps_pd(y[2 * p]), e = _mm512_castps_pd(y[2 * p + 1]);
        z[p] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(c, e)), _mm512_castpd_ps(_mm512_unpackhi_pd(c, e)));
    }
    const __m512 w01 = _mm512_add_ps(_mm512_shuffle_f32x4(z[0], z[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_f32x4(z[0], z[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512 w23 = _mm512_add_ps(_mm512_shuffle_f32x4(z[2], z[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_f32x4(z[2], z[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w01, w23, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w01, w23, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* GN heads × 4 tokens per step: 16 accumulators; each key chunk and each
 * query chunk is loaded once per step. Masked tail over d. GN = 4: the 4×4
 * sums by one hsum16 (with fewer heads, reduce4 costs less than padding). */
RQ_ALWAYS_INLINE void scores_gn(const int GN, const float *q, int ldq, const float *K, int n, int d, float *S, int lds) {
    int d16 = d & ~15;
    __mmask16 tm = (__mmask16)((1u << (d - d16)) - 1);
    int t = 0;
    for (; t + 4 <= n; t += 4) {
        const float *k = K + (size_t)t * d;
        __m512 a[4][4];
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++)
            #pragma GCC unroll 4
            for (int u = 0; u < 4; u++) a[g][u] = _mm512_setzero_ps();
        /* whole chunks with plain loads (a zero-masking load costs an
         * extra µop on the FMA ports), then the masked tail */
        for (int j = 0; j < d16; j += 16) {
            __m512 k0 = _mm512_loadu_ps(k + j), k1 = _mm512_loadu_ps(k + d + j);
            __m512 k2 = _mm512_loadu_ps(k + 2 * d + j), k3 = _mm512_loadu_ps(k + 3 * d + j);
            #pragma GCC unroll 8
            for (int g = 0; g < GN; g++) {
                __m512 qg = _mm512_loadu_ps(q + (size_t)g * ldq + j);
                a[g][0] = _mm512_fmadd_ps(qg, k0, a[g][0]);
                a[g][1] = _mm512_fmadd_ps(qg, k1, a[g][1]);
                a[g][2] = _mm512_fmadd_ps(qg, k2, a[g][2]);
                a[g][3] = _mm512_fmadd_ps(qg, k3, a[g][3]);
            }
        }
        if (d16 < d) {
            __m512 k0 = _mm512_maskz_loadu_ps(tm, k + d16), k1 = _mm512_maskz_loadu_ps(tm, k + d + d16);
            __m512 k2 = _mm512_maskz_loadu_ps(tm, k + 2 * d + d16), k3 = _mm512_maskz_loadu_ps(tm, k + 3 * d + d16);
            #pragma GCC unroll 8
            for (int g = 0; g < GN; g++) {
                __m512 qg = _mm512_maskz_loadu_ps(tm, q + (size_t)g * ldq + d16);
                a[g][0] = _mm512_fmadd_ps(qg, k0, a[g][0]);
                a[g][1] = _mm512_fmadd_ps(qg, k1, a[g][1]);
                a[g][2] = _mm512_fmadd_ps(qg, k2, a[g][2]);
                a[g][3] = _mm512_fmadd_ps(qg, k3, a[g][3]);
            }
        }
        if (GN == 4) {
            __m512 x[16];
            #pragma GCC unroll 16
            for (int i = 0; i < 16; i++) x[i] = a[i / 4][i % 4];
            const __m512 r = hsum16(x);
            __m128 rs[4] = {_mm512_castps512_ps128(r), _mm512_extractf32x4_ps(r, 1), _mm512_extractf32x4_ps(r, 2),
                            _mm512_extractf32x4_ps(r, 3)};
            #pragma GCC unroll 8
            for (int g = 0; g < GN; g++) {
                float *dst = S + (size_t)g * lds + t;
                _mm_storeu_ps(dst, _mm_add_ps(_mm_loadu_ps(dst), rs[g]));
            }
        } else {
            #pragma GCC unroll 8
            for (int g = 0; g < GN; g++) {
                float *dst = S + (size_t)g * lds + t;
                _mm_storeu_ps(dst, _mm_add_ps(_mm_loadu_ps(dst), reduce4(a[g][0], a[g][1], a[g][2], a[g][3])));
            }
        }
    }
    for (; t < n; t++) { /* remaining tokens one at a time */
        const float *k = K + (size_t)t * d;
        __m512 a[4];
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++) a[g] = _mm512_setzero_ps();
        for (int j = 0; j < d; j += 16) {
            __mmask16 m = j < d16 ? (__mmask16)0xffff : tm;
            __m512 kv = _mm512_maskz_loadu_ps(m, k + j);
            #pragma GCC unroll 8
            for (int g = 0; g < GN; g++) a[g] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + (size_t)g * ldq + j), kv, a[g]);
        }
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++) S[(size_t)g * lds + t] += _mm512_reduce_add_ps(a[g]);
    }
}

/* scores_mse_n: scores_gn with each key chunk decoded in registers (the
 * table scaled by the token's norm, as decode_mse_n) instead of loaded
 * from a tile: the same FMAs in the same order, the same reductions, the
 * same grouping of tokens by 4 from the first (d a multiple of 16). */
#define SCORES_MSE_GN(NAME, ATTR, IDX)                                                                             \
    ATTR static inline __attribute__((always_inline)) void NAME(const int GN, const float *q, int ldq,            \
                                                                const uint8_t *const *b, int n, int d, int bits,   \
                                                                size_t off, const float *ntab, __m512 tab0, __m512i ctl, float *S,    \
                                                                int lds) {                                          \
        const size_t cb = 2 * (size_t)bits; /* bytes per 16 codes */                                              \
        int t = 0;                                                                                                 \
        for (; t + 4 <= n; t += 4) {                                                                               \
            const uint8_t *c0 = b[t] + off, *c1 = b[t + 1] + off, *c2 = b[t + 2] + off, *c3 = b[t + 3] + off;     \
            const __m512 tb0 = _mm512_mul_ps(tab0, _mm512_set1_ps(head_s(b[t], ntab))),                                   \
                         tb1 = _mm512_mul_ps(tab0, _mm512_set1_ps(head_s(b[t + 1], ntab))),                               \
                         tb2 = _mm512_mul_ps(tab0, _mm512_set1_ps(head_s(b[t + 2], ntab))),                               \
                         tb3 = _mm512_mul_ps(tab0, _mm512_set1_ps(head_s(b[t + 3], ntab)));                               \
            __m512 a[4][4];                                                                                        \
            _Pragma("GCC unroll 8") for (int g = 0; g < GN; g++)                                                   \
                _Pragma("GCC unroll 4") for (int u = 0; u < 4; u++) a[g][u] = _mm512_setzero_ps();                 \
            for (int j = 0; j < d; j += 16, c0 += cb, c1 += cb, c2 += cb, c3 += cb) {                              \
                __m512 k0 = _mm512_permutexvar_ps(IDX(c0, ctl, bits), tb0);                                        \
                __m512 k1 = _mm512_permutexvar_ps(IDX(c1, ctl, bits), tb1);                                        \
                __m512 k2 = _mm512_permutexvar_ps(IDX(c2, ctl, bits), tb2);                                        \
                __m512 k3 = _mm512_permutexvar_ps(IDX(c3, ctl, bits), tb3);                                        \
                _Pragma("GCC unroll 8") for (int g = 0; g < GN; g++) {                                             \
                    __m512 qg = _mm512_loadu_ps(q + (size_t)g * ldq + j);                                          \
                    a[g][0] = _mm512_fmadd_ps(qg, k0, a[g][0]);                                                    \
                    a[g][1] = _mm512_fmadd_ps(qg, k1, a[g][1]);                                                    \
                    a[g][2] = _mm512_fmadd_ps(qg, k2, a[g][2]);                                                    \
                    a[g][3] = _mm512_fmadd_ps(qg, k3, a[g][3]);                                                    \
                }                                                                                                  \
            }                                                                                                      \
            if (GN == 4) {                                                                                         \
                __m512 x[16];                                                                                      \
                _Pragma("GCC unroll 16") for (int i = 0; i < 16; i++) x[i] = a[i / 4][i % 4];                      \
                const __m512 r = hsum16(x);                                                                        \
                __m128 rs[4] = {_mm512_castps512_ps128(r), _mm512_extractf32x4_ps(r, 1), _mm512_extractf32x4_ps(r, 2), \
                                _mm512_extractf32x4_ps(r, 3)};                                                     \
                _Pragma("GCC unroll 8") for (int g = 0; g < GN; g++) {                                             \
                    float *dst = S + (size_t)g * lds + t;                                                          \
                    _mm_storeu_ps(dst, _mm_add_ps(_mm_loadu_ps(dst), rs[g]));                                      \
                }                                                                                                  \
            } else {                                                                                               \
                _Pragma("GCC unroll 8") for (int g = 0; g < GN; g++) {                                             \
                    float *dst = S + (size_t)g * lds + t;                                                          \
                    _mm_storeu_ps(dst, _mm_add_ps(_mm_loadu_ps(dst), reduce4(a[g][0], a[g][1], a[g][2], a[g][3]))); \
                }                                                                                                  \
            }                                                                                                      \
        }                                                                                                          \
        for (; t < n; t++) { /* remaining tokens one at a time */                                                  \
            const uint8_t *c0 = b[t] + off;                                                                        \
            const __m512 tb0 = _mm512_mul_ps(tab0, _mm512_set1_ps(head_s(b[t], ntab)));                                   \
            __m512 a[4];                                                                                           \
            _Pragma("GCC unroll 8") for (int g = 0; g < GN; g++) a[g] = _mm512_setzero_ps();                       \
            for (int j = 0; j < d; j += 16, c0 += cb) {                                                            \
                __m512 kv = _mm512_permutexvar_ps(IDX(c0, ctl, bits), tb0);                                        \
                _Pragma("GCC unroll 8") for (int g = 0; g < GN; g++)                                               \
                    a[g] = _mm512_fmadd_ps(_mm512_loadu_ps(q + (size_t)g * ldq + j), kv, a[g]);                    \
            }                                                                                                      \
            _Pragma("GCC unroll 8") for (int g = 0; g < GN; g++) S[(size_t)g * lds + t] += _mm512_reduce_add_ps(a[g]); \
        }                                                                                                          \
    }
SCORES_MSE_GN(scores_mse_gn_vbmi, VBMI, idx_vbmi)
SCORES_MSE_GN(scores_mse_gn_f, , idx_f)
#undef SCORES_MSE_GN

#define SCORES_MSE(NAME, ATTR, GN_FN)                                                                              \
    ATTR static void NAME(const float *Q, int G, int ldq, const uint8_t *const *b, int n, int d, int bits,         \
                          size_t off, const float *ntab, __m512 tab0, __m512i ctl, float *S, int lds) {                               \
        for (int g0 = 0; g0 < G; g0 += 4) {                                                                        \
            const float *q = Q + (size_t)g0 * ldq;                                                                 \
            float *s = S + (size_t)g0 * lds;                                                                       \
            switch (G - g0 < 4 ? G - g0 : 4) {                                                                     \
            case 1: GN_FN(1, q, ldq, b, n, d, bits, off, ntab, tab0, ctl, s, lds); break;                                \
            case 2: GN_FN(2, q, ldq, b, n, d, bits, off, ntab, tab0, ctl, s, lds); break;                                \
            case 3: GN_FN(3, q, ldq, b, n, d, bits, off, ntab, tab0, ctl, s, lds); break;                                \
            default: GN_FN(4, q, ldq, b, n, d, bits, off, ntab, tab0, ctl, s, lds); break;                               \
            }                                                                                                      \
        }                                                                                                          \
    }
SCORES_MSE(scores_mse_vbmi, VBMI, scores_mse_gn_vbmi)
SCORES_MSE(scores_mse_f, , scores_mse_gn_f)
#undef SCORES_MSE

void rq__scores_avx512(const float *Q, int G, int ldq, const float *K, int n, int d, float *S, int lds) {
    for (int g0 = 0; g0 < G; g0 += 4) {
        const float *q = Q + (size_t)g0 * ldq;
        float *s = S + (size_t)g0 * lds;
        switch (G - g0 < 4 ? G - g0 : 4) {
        case 1: scores_gn(1, q, ldq, K, n, d, s, lds); break;
        case 2: scores_gn(2, q, ldq, K, n, d, s, lds); break;
        case 3: scores_gn(3, q, ldq, K, n, d, s, lds); break;
        default: scores_gn(4, q, ldq, K, n, d, s, lds); break;
        }
    }
}

/* Columns j0.. of GN heads one 16-float chunk at a time, the last masked:
 * all of them for GN < 4 (measured faster at d = 64, GQA 3 than accum_gn's
 * multi-chunk loop: 4.3 vs 4.8 ns per token), and accum_gn's remainder */
RQ_ALWAYS_INLINE void accum_gn_1(const int GN, float *A, int lda, const float *P, int ldp, const float *V, int n, int d,
                                  int j0) {
    for (int j = j0; j < d; j += 16) {
        __mmask16 m = d - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (d - j)) - 1);
        __m512 a[8];
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++) a[g] = _mm512_maskz_loadu_ps(m, A + (size_t)g * lda + j);
        for (int t = 0; t < n; t++) {
            __m512 v = _mm512_maskz_loadu_ps(m, V + (size_t)t * d + j);
            #pragma GCC unroll 8
            for (int g = 0; g < GN; g++) a[g] = _mm512_fmadd_ps(_mm512_set1_ps(P[(size_t)g * ldp + t]), v, a[g]);
        }
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++) _mm512_mask_storeu_ps(A + (size_t)g * lda + j, m, a[g]);
    }
}

/* GN heads' accumulators for JN 16-float output chunks stay in registers
 * across all n tokens: GN·JN ≥ 8 independent FMA chains (one chain per
 * accumulator waits 4 cycles per FMA; two FMA ports need 8 in flight). Each
 * accumulator sums the tokens in order, as the reference. */
RQ_ALWAYS_INLINE void accum_gn(const int GN, float *A, int lda, const float *P, int ldp, const float *V, int n, int d) {
    const int JN = GN >= 8 ? 1 : 2; /* GN ≥ 4 (fewer: accum_gn_1) */
    int j = 0;
    for (; j + 16 * JN <= d; j += 16 * JN) {
        __m512 a[8][4];
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++)
            #pragma GCC unroll 4
            for (int u = 0; u < JN; u++) a[g][u] = _mm512_loadu_ps(A + (size_t)g * lda + j + 16 * u);
        for (int t = 0; t < n; t++) {
            __m512 v[4];
            #pragma GCC unroll 4
            for (int u = 0; u < JN; u++) v[u] = _mm512_loadu_ps(V + (size_t)t * d + j + 16 * u);
            #pragma GCC unroll 8
            for (int g = 0; g < GN; g++) {
                const __m512 w = _mm512_set1_ps(P[(size_t)g * ldp + t]);
                #pragma GCC unroll 4
                for (int u = 0; u < JN; u++) a[g][u] = _mm512_fmadd_ps(w, v[u], a[g][u]);
            }
        }
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++)
            #pragma GCC unroll 4
            for (int u = 0; u < JN; u++) _mm512_storeu_ps(A + (size_t)g * lda + j + 16 * u, a[g][u]);
    }
    accum_gn_1(GN, A, lda, P, ldp, V, n, d, j); /* the rest */
}


void rq__accum_avx512(float *A, int G, int lda, const float *P, int ldp, const float *V, int n, int d) {
    for (int g0 = 0; g0 < G; g0 += 8) {
        float *a = A + (size_t)g0 * lda;
        const float *p = P + (size_t)g0 * ldp;
        switch (G - g0 < 8 ? G - g0 : 8) {
        case 1: accum_gn_1(1, a, lda, p, ldp, V, n, d, 0); break;
        case 2: accum_gn_1(2, a, lda, p, ldp, V, n, d, 0); break;
        case 3: accum_gn_1(3, a, lda, p, ldp, V, n, d, 0); break;
        case 4: accum_gn(4, a, lda, p, ldp, V, n, d); break;
        case 5: accum_gn(5, a, lda, p, ldp, V, n, d); break;
        case 6: accum_gn(6, a, lda, p, ldp, V, n, d); break;
        case 7: accum_gn(7, a, lda, p, ldp, V, n, d); break;
        default: accum_gn(8, a, lda, p, ldp, V, n, d); break;
        }
    }
}

/* accum_mse_n: the value codes decoded in registers and accumulated at
 * once (no tile stored and loaded again). GN ≤ 8 heads × JN 16-float
 * chunks of accumulators stay in registers across the n tokens (GN·JN ≤
 * 16 chains); per token the table is scaled by its norm (the reference's
 * one multiply per entry) and each chunk's 16 codes are looked up as
 * decode_mse_n does, then FMA'd into the GN heads in token order: the
 * level's decode_mse_n + accum bits. IDX(p) gives the 16 code indices of
 * the chunk at p (VBMI: one vpmultishiftqb; else two words shifted). */
#define ACCUM_MSE_GROUP(NAME, ATTR, IDX)                                                                           \
    ATTR static inline __attribute__((always_inline)) void NAME(const int GN, const int JN, float *A, int lda,      \
                                                                const float *P, int ldp, const uint8_t *blk,        \
                                                                size_t stride, int n, int bits, size_t off, const float *ntab,         \
                                                                __m512 tab0, __m512i ctl, int j0) {                 \
        __m512 a[8][4];                                                                                            \
        _Pragma("GCC unroll 8") for (int g = 0; g < GN; g++)                                                       \
            _Pragma("GCC unroll 4") for (int u = 0; u < JN; u++) a[g][u] = _mm512_loadu_ps(A + (size_t)g * lda + j0 + 16 * u); \
        const uint8_t *c0 = blk + off + (size_t)(j0 / 16) * 2 * (size_t)bits;                                      \
        for (int t = 0; t < n; t++, c0 += stride, blk += stride) {                                                 \
            const __m512 tab = _mm512_mul_ps(tab0, _mm512_set1_ps(head_s(blk, ntab)));                                     \
            __m512 v[4];                                                                                           \
            _Pragma("GCC unroll 4") for (int u = 0; u < JN; u++)                                                   \
                v[u] = _mm512_permutexvar_ps(IDX(c0 + 2 * u * bits, ctl, bits), tab);                              \
            _Pragma("GCC unroll 8") for (int g = 0; g < GN; g++) {                                                 \
                const __m512 w = _mm512_set1_ps(P[(size_t)g * ldp + t]);                                           \
                _Pragma("GCC unroll 4") for (int u = 0; u < JN; u++) a[g][u] = _mm512_fmadd_ps(w, v[u], a[g][u]);  \
            }                                                                                                      \
        }                                                                                                          \
        _Pragma("GCC unroll 8") for (int g = 0; g < GN; g++)                                                       \
            _Pragma("GCC unroll 4") for (int u = 0; u < JN; u++) _mm512_storeu_ps(A + (size_t)g * lda + j0 + 16 * u, a[g][u]); \
    }

ACCUM_MSE_GROUP(accum_mse_group_vbmi, VBMI, idx_vbmi)
ACCUM_MSE_GROUP(accum_mse_group_f, , idx_f)
#undef ACCUM_MSE_GROUP

/* all chunks of GN heads: groups of JN chunks, then single chunks */
#define ACCUM_MSE_HEADS(NAME, ATTR, GROUP)                                                                         \
    ATTR static inline __attribute__((always_inline)) void NAME(const int GN, float *A, int lda, const float *P,   \
                                                                int ldp, const uint8_t *blk, size_t stride, int n,  \
                                                                int d, int bits, size_t off, const float *ntab, __m512 tab0,           \
                                                                __m512i ctl) {                                      \
        const int JN = GN <= 4 ? 4 : 2;                                                                            \
        int j = 0;                                                                                                 \
        for (; j + 16 * JN <= d; j += 16 * JN) GROUP(GN, JN, A, lda, P, ldp, blk, stride, n, bits, off, ntab, tab0, ctl, j); \
        for (; j < d; j += 16) GROUP(GN, 1, A, lda, P, ldp, blk, stride, n, bits, off, ntab, tab0, ctl, j);              \
    }
ACCUM_MSE_HEADS(accum_mse_heads_vbmi, VBMI, accum_mse_group_vbmi)
ACCUM_MSE_HEADS(accum_mse_heads_f, , accum_mse_group_f)
#undef ACCUM_MSE_HEADS

#define ACCUM_MSE(NAME, ATTR, HEADS)                                                                               \
    ATTR static void NAME(float *A, int G, int lda, const float *P, int ldp, const uint8_t *blk, size_t stride,    \
                          int n, int d, int bits, size_t off, const float *ntab, __m512 tab0, __m512i ctl) {                           \
        for (int g0 = 0; g0 < G; g0 += 8) {                                                                        \
            float *a = A + (size_t)g0 * lda;                                                                       \
            const float *p = P + (size_t)g0 * ldp;                                                                 \
            switch (G - g0 < 8 ? G - g0 : 8) {                                                                     \
            case 1: HEADS(1, a, lda, p, ldp, blk, stride, n, d, bits, off, ntab, tab0, ctl); break;                      \
            case 2: HEADS(2, a, lda, p, ldp, blk, stride, n, d, bits, off, ntab, tab0, ctl); break;                      \
            case 3: HEADS(3, a, lda, p, ldp, blk, stride, n, d, bits, off, ntab, tab0, ctl); break;                      \
            case 4: HEADS(4, a, lda, p, ldp, blk, stride, n, d, bits, off, ntab, tab0, ctl); break;                      \
            case 5: HEADS(5, a, lda, p, ldp, blk, stride, n, d, bits, off, ntab, tab0, ctl); break;                      \
            case 6: HEADS(6, a, lda, p, ldp, blk, stride, n, d, bits, off, ntab, tab0, ctl); break;                      \
            case 7: HEADS(7, a, lda, p, ldp, blk, stride, n, d, bits, off, ntab, tab0, ctl); break;                      \
            default: HEADS(8, a, lda, p, ldp, blk, stride, n, d, bits, off, ntab, tab0, ctl); break;                     \
            }                                                                                                      \
        }                                                                                                          \
    }
ACCUM_MSE(accum_mse_vbmi, VBMI, accum_mse_heads_vbmi)
ACCUM_MSE(accum_mse_f, , accum_mse_heads_f)
#undef ACCUM_MSE

/* the fused slots without VBMI (tests/test_attention.c compares both) */
void rq__scores_mse_n_avx512f(const float *Q, int G, int ldq, const uint8_t *const *blk, int n, int d, int bits,
                              size_t off_codes, const float *ntab, const float *cent, float *S, int lds) {
    scores_mse_f(Q, G, ldq, blk, n, d, bits, off_codes, ntab, table16(cent, bits, 1.0f), shifts_f(bits), S, lds);
}

void rq__accum_mse_n_avx512f(float *A, int G, int lda, const float *P, int ldp, const uint8_t *blk, size_t stride,
                             int n, int d, int bits, size_t off_codes, const float *ntab, const float *cent) {
    accum_mse_f(A, G, lda, P, ldp, blk, stride, n, d, bits, off_codes, ntab, table16(cent, bits, 1.0f), shifts_f(bits));
}

void rq__scores_mse_n_avx512(const float *Q, int G, int ldq, const uint8_t *const *blk, int n, int d, int bits,
                             size_t off_codes, const float *ntab, const float *cent, float *S, int lds) {
    const __m512 tab0 = table16(cent, bits, 1.0f); /* cent[i mod 2^b]; × 1 is exact */
    if (have_vbmi()) scores_mse_vbmi(Q, G, ldq, blk, n, d, bits, off_codes, ntab, tab0, multishift_ctl(bits), S, lds);
    else scores_mse_f(Q, G, ldq, blk, n, d, bits, off_codes, ntab, tab0, shifts_f(bits), S, lds);
}

void rq__accum_mse_n_avx512(float *A, int G, int lda, const float *P, int ldp, const uint8_t *blk, size_t stride,
                            int n, int d, int bits, size_t off_codes, const float *ntab, const float *cent) {
    const __m512 tab0 = table16(cent, bits, 1.0f); /* cent[i mod 2^b]; × 1 is exact */
    if (have_vbmi()) accum_mse_vbmi(A, G, lda, P, ldp, blk, stride, n, d, bits, off_codes, ntab, tab0, multishift_ctl(bits));
    else accum_mse_f(A, G, lda, P, ldp, blk, stride, n, d, bits, off_codes, ntab, tab0, shifts_f(bits));
}

/* exp(x) for x ≤ 0 (softmax arguments): x = k·ln2 + r, |r| ≤ ln2/2, e^r by a
 * degree-6 Taylor polynomial (error < 2e-7 relative), 2^k by vscalefps;
 * x < −87 gives 0 (expf would give a subnormal below 1.6e−38, which no softmax
 * weight notices). */
static inline __m512 exp512(__m512 x) {
    const __m512 log2e = _mm512_set1_ps(1.44269504f), ln2hi = _mm512_set1_ps(0.693145751953125f),
                 ln2lo = _mm512_set1_ps(1.428606765330187e-06f);
    __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, ln2lo, _mm512_fnmadd_ps(k, ln2hi, x));
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(live, p, k);
}

float rq__exp_sum_avx512(float *x, int n, float m) {
    __m512 vm = _mm512_set1_ps(m), s = _mm512_setzero_ps();
    for (int t = 0; t < n; t += 16) {
        __mmask16 k = n - t >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - t)) - 1);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + t), vm));
        e = _mm512_maskz_mov_ps(k, e);
        _mm512_mask_storeu_ps(x + t, k, e);
        s = _mm512_add_ps(s, e);
    }
    return _mm512_reduce_add_ps(s);
}

void rq__decode_codes_avx512(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale) {
    if (bits == 5) decode_codes_b5(out, codes, d, cent, scale);
    else if (have_vbmi()) decode_codes_vbmi_1(out, codes, d, bits, cent, scale);
    else decode_codes_f(out, codes, d, bits, cent, scale);
}

/* ---- integer scores (rq_cache_config.int8_scores) -----------------------
 * Decode with VBMI, 64 codes per step: the 8b bytes of 64 codes loaded
 * exactly (masked); vpermb spreads them so that qword q holds the 8 bytes
 * from byte q·b (codes 8q .. 8q+7 at bits 0 .. 8b); vpmultishiftqb puts the
 * 8 bits from bit i·b of qword q into byte 8q + i (code 8q + i in its low b
 * bits); vpermb looks the bytes up in the 64-entry table tab8[i mod 2^b]
 * (it reads only the low 6 bits, and the table repeats every 2^b entries,
 * so the next codes' bits above a code need no mask). Three shuffle µops
 * per 64 values; the four 16-byte pieces go to their places in the tile
 * (attn_kernels.h) by plain stores. Without VBMI: the AVX2 level's decoder. */
/* Bytes 16p .. 16p+15 of x to dst + 64p (p < np). */
static inline void store_pieces(uint8_t *dst, __m512i x, int np) {
    _mm_storeu_si128((__m128i *)(void *)dst, _mm512_castsi512_si128(x));
    if (np > 1) _mm_storeu_si128((__m128i *)(void *)(dst + 64), _mm512_extracti32x4_epi32(x, 1));
    if (np > 2) _mm_storeu_si128((__m128i *)(void *)(dst + 128), _mm512_extracti32x4_epi32(x, 2));
    if (np > 3) _mm_storeu_si128((__m128i *)(void *)(dst + 192), _mm512_extracti32x4_epi32(x, 3));
}

static const uint8_t IOTA64[64] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                   22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
                                   44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

/* 64 codes of b bits at c → 64 table bytes (the three lookups) */
VBMI static inline __m512i codes64(const uint8_t *c, __mmask64 in, __m512i sp, __m512i sh, __m512i tab) {
    __m512i w = _mm512_maskz_loadu_epi8(in, c);
    return _mm512_permutexvar_epi8(_mm512_multishift_epi64_epi8(sh, _mm512_permutexvar_epi8(sp, w)), tab);
}

VBMI static void decode_mse8_n_vbmi(uint8_t *tile, float *ks, int t0, const uint8_t *blk, size_t stride, int n, int d,
                                    int bits, size_t off_codes, const float *ntab, const uint8_t *tab8, float cfac) {
    /* the constants by vector ops (a 64-step scalar loop per call cost ~8
     * instructions per token of a 64-token sub-block): lane i of iota = i;
     * tab = tab8[i mod 2^b] (one vpermb over the 2^b table bytes), spread
     * = (i/8)·b + i%8, ctl = (i%8)·b — the bytes the loop wrote; 2^b ≤ 32 */
    const __m512i iota = _mm512_loadu_si512(IOTA64), lo3 = _mm512_set1_epi8(7);
    const __m512i tab = _mm512_permutexvar_epi8(_mm512_and_si512(iota, _mm512_set1_epi8((char)((1 << bits) - 1))),
                                                _mm512_maskz_loadu_epi8(((__mmask64)1 << (1 << bits)) - 1, tab8));
    const __m512i vb = _mm512_set1_epi16((short)bits), i7 = _mm512_and_si512(iota, lo3);
    /* byte products of values < 64 by bits ≤ 5 fit a byte: multiply 16-bit lanes, keep the low bytes */
    const __m512i lowb = _mm512_set1_epi16(0x00ff);
#define MULB(x) _mm512_or_si512(_mm512_and_si512(_mm512_mullo_epi16(x, vb), lowb),                                 \
                                _mm512_slli_epi16(_mm512_mullo_epi16(_mm512_srli_epi16(x, 8), vb), 8))
    const __m512i sh = MULB(i7);
    const __m512i sp = _mm512_add_epi8(MULB(_mm512_and_si512(_mm512_srli_epi16(iota, 3), _mm512_set1_epi8(0x1f))), i7);
#undef MULB
    const int d64 = d & ~63, rem = d - d64, dp = (int)rq__i8_dp(d);
    const __mmask64 in_full = ((__mmask64)1 << (8 * bits)) - 1;                  /* bits ≤ 5: 8b < 64 */
    const __mmask64 in_tail = ((__mmask64)1 << ((rem * bits + 7) / 8)) - 1;      /* < 40 bytes */
    const __mmask64 live = ((__mmask64)1 << rem) - 1;                            /* the tail's bytes j < d */
    int t = t0;
    /* whole groups of 4 tokens, their rows' 64-byte chunks transposed by
     * 128-bit blocks in registers (8 shuffles, 4 full stores per 4 chunks
     * instead of 12 extracts and 16 stores) */
    for (; d64 && t % 4 == 0 && t + 4 <= t0 + n; t += 4, blk += 4 * stride) {
        for (int u = 0; u < 4; u++) ks[t + u] = head_s(blk + u * stride, ntab) * cfac;
        uint8_t *dst = tile + (size_t)(t / 4) * 4 * (size_t)dp;
        for (int j = 0; j < d64; j += 64, dst += 256) {
            const size_t o = off_codes + (size_t)j * bits / 8;
            __m512i x0 = codes64(blk + o, in_full, sp, sh, tab), x1 = codes64(blk + stride + o, in_full, sp, sh, tab);
            __m512i x2 = codes64(blk + 2 * stride + o, in_full, sp, sh, tab);
            __m512i x3 = codes64(blk + 3 * stride + o, in_full, sp, sh, tab);
            __m512i a = _mm512_shuffle_i64x2(x0, x1, 0x44), b = _mm512_shuffle_i64x2(x0, x1, 0xee);
            __m512i e = _mm512_shuffle_i64x2(x2, x3, 0x44), f = _mm512_shuffle_i64x2(x2, x3, 0xee);
            _mm512_storeu_si512(dst, _mm512_shuffle_i64x2(a, e, 0x88));
            _mm512_storeu_si512(dst + 64, _mm512_shuffle_i64x2(a, e, 0xdd));
            _mm512_storeu_si512(dst + 128, _mm512_shuffle_i64x2(b, f, 0x88));
            _mm512_storeu_si512(dst + 192, _mm512_shuffle_i64x2(b, f, 0xdd));
        }
        for (int u = 0; rem && u < 4; u++) {
            __m512i x = codes64(blk + u * stride + off_codes + (size_t)d64 * bits / 8, in_tail, sp, sh, tab);
            store_pieces(dst + 16 * u, _mm512_mask_blend_epi8(live, _mm512_set1_epi8((char)128), x), (rem + 15) / 16);
        }
    }
    for (; t < t0 + n; t++, blk += stride) {
        ks[t] = head_s(blk, ntab) * cfac;
        const uint8_t *c = blk + off_codes;
        uint8_t *dst = tile + (size_t)(t / 4) * 4 * (size_t)dp + (size_t)(t % 4) * 16;
        for (int j = 0; j < d64; j += 64, dst += 256) {
            __m512i w = _mm512_maskz_loadu_epi8(in_full, c + (size_t)j * bits / 8);
            __m512i x = _mm512_permutexvar_epi8(_mm512_multishift_epi64_epi8(sh, _mm512_permutexvar_epi8(sp, w)), tab);
            store_pieces(dst, x, 4);
        }
        if (rem) { /* bytes from d to dp are 128 */
            __m512i w = _mm512_maskz_loadu_epi8(in_tail, c + (size_t)d64 * bits / 8);
            __m512i x = _mm512_permutexvar_epi8(_mm512_multishift_epi64_epi8(sh, _mm512_permutexvar_epi8(sp, w)), tab);
            store_pieces(dst, _mm512_mask_blend_epi8(live, _mm512_set1_epi8((char)128), x), (rem + 15) / 16);
        }
    }
}

void rq__decode_mse8_n_avx512(uint8_t *tile, float *ks, int t0, const uint8_t *blk, size_t stride, int n, int d,
                              int bits, size_t off_codes, const float *ntab, const uint8_t *tab8, float cfac) {
    if (bits <= 5 && have_vbmi()) decode_mse8_n_vbmi(tile, ks, t0, blk, stride, n, d, bits, off_codes, ntab, tab8, cfac);
    else rq__decode_mse8_n_avx2(tile, ks, t0, blk, stride, n, d, bits, off_codes, ntab, tab8, cfac);
}

/* Each int32 lane += the dot product of its 4 unsigned key bytes and 4
 * signed query bytes: with AVX512_VNNI one vpdpbusd; without, the even and
 * odd bytes widened in place to int16 and two vpmaddwd (the same sums,
 * exact). */
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
VNNI static inline __m512i dot8_vnni(__m512i acc, __m512i k, __m512i q) { return _mm512_dpbusd_epi32(acc, k, q); }
static inline __m512i dot8_bw(__m512i acc, __m512i k, __m512i q) {
    const __m512i lo = _mm512_set1_epi16(0xff);
    __m512i ke = _mm512_and_si512(k, lo), ko = _mm512_srli_epi16(k, 8);
    __m512i qe = _mm512_srai_epi16(_mm512_slli_epi16(q, 8), 8), qo = _mm512_srai_epi16(q, 8);
    return _mm512_add_epi32(acc, _mm512_add_epi32(_mm512_madd_epi16(ke, qe), _mm512_madd_epi16(ko, qo)));
}

/* One group of 4 tokens (nt of them live) × GN ≤ 4 heads: accumulator g,
 * 128-bit lane u = token u's 4 partial sums over the 16-byte pieces. The
 * sums of the 4 lanes of each, for all heads at once, by two unpack
 * stages: lane 4u + g = head g, token u. Then the reference's float
 * operations, and the heads' rows of S. */
#define SCORES8_GROUP(NAME, ATTR, DOT)                                                                             \
    ATTR static inline __attribute__((always_inline)) void NAME(const int GN, const int8_t *q, int ldq,           \
                                                                __m512 qsv, __m512i corr, const uint8_t *kg,        \
                                                                const float *ks, int nt, int dp, float *S, int lds) { \
        __m512i a[4];                                                                                              \
        _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) a[g] = _mm512_setzero_si512();                         \
        for (int c = 0; c < dp / 16; c++) {                                                                        \
            const __m512i kc = _mm512_loadu_si512(kg + 64 * c);                                                    \
            _Pragma("GCC unroll 4") for (int g = 0; g < GN; g++) a[g] = DOT(a[g], kc,                              \
                _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)(q + (size_t)g * ldq + 16 * c)))); \
        }                                                                                                          \
        __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(a[0], a[1]), _mm512_unpackhi_epi32(a[0], a[1]));     \
        __m512i s23 = GN > 2 ? _mm512_add_epi32(_mm512_unpacklo_epi32(a[2], a[3]), _mm512_unpackhi_epi32(a[2], a[3])) \
                             : _mm512_setzero_si512();                                                             \
        __m512i r = _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));            \
        const __mmask16 km = (__mmask16)((1u << nt) - 1);                                                          \
        __m512 ksv = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),      \
                                           _mm512_castps128_ps512(_mm_maskz_loadu_ps(km, ks)));                    \
        __m512 x = _mm512_cvtepi32_ps(_mm512_sub_epi32(r, corr));                                                  \
        __m512 val = _mm512_mul_ps(_mm512_mul_ps(qsv, ksv), x);                                                    \
        /* lane 4g + u = head g, token u */                                                                        \
        val = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), val);   \
        if (nt == 4) {                                                                                             \
            float *s0 = S;                                                                                         \
            _mm_storeu_ps(s0, _mm_add_ps(_mm_loadu_ps(s0), _mm512_castps512_ps128(val)));                          \
            if (GN > 1) _mm_storeu_ps(S + lds, _mm_add_ps(_mm_loadu_ps(S + lds), _mm512_extractf32x4_ps(val, 1))); \
            if (GN > 2)                                                                                            \
                _mm_storeu_ps(S + 2 * (size_t)lds, _mm_add_ps(_mm_loadu_ps(S + 2 * (size_t)lds), _mm512_extractf32x4_ps(val, 2))); \
            if (GN > 3)                                                                                            \
                _mm_storeu_ps(S + 3 * (size_t)lds, _mm_add_ps(_mm_loadu_ps(S + 3 * (size_t)lds), _mm512_extractf32x4_ps(val, 3))); \
        } else {                                                                                                   \
            float v[16];                                                                                           \
            _mm512_storeu_ps(v, val);                                                                              \
            for (int g = 0; g < GN; g++)                                                                           \
                for (int u = 0; u < nt; u++) S[(size_t)g * lds + u] += v[4 * g + u];                               \
        }                                                                                                          \
    }
SCORES8_GROUP(scores8_group_vnni, VNNI, dot8_vnni)
SCORES8_GROUP(scores8_group_bw, , dot8_bw)
#undef SCORES8_GROUP

/* Every group of 4 tokens, heads 4 at a time (the group's 4·dp key bytes
 * stay in L1 across the head blocks). */
#define SCORES8(NAME, ATTR, GROUP_FN)                                                                              \
    ATTR static void NAME(const int8_t *Q8, int G, int ldq, const float *qs, const int32_t *qsum, const uint8_t *K8, \
                          const float *ks, int n, int d, float *S, int lds) {                                      \
        const int dp = (int)rq__i8_dp(d);                                                                          \
        for (int g0 = 0; g0 < G; g0 += 4) {                                                                        \
            const int gn = G - g0 < 4 ? G - g0 : 4;                                                                \
            float qv[4] = {0, 0, 0, 0};                                                                            \
            int32_t cv[4] = {0, 0, 0, 0};                                                                          \
            for (int g = 0; g < gn; g++) qv[g] = qs[g0 + g], cv[g] = 128 * qsum[g0 + g];                          \
            const __m512 qsv = _mm512_broadcast_f32x4(_mm_loadu_ps(qv));                                           \
            const __m512i corr = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)cv));       \
            const int8_t *q = Q8 + (size_t)g0 * ldq;                                                               \
            float *s = S + (size_t)g0 * lds;                                                                       \
            for (int t = 0; t < n; t += 4) {                                                                       \
                const uint8_t *kg = K8 + (size_t)t * dp;                                                           \
                const int nt = n - t < 4 ? n - t : 4;                                                              \
                switch (gn) {                                                                                      \
                case 1: GROUP_FN(1, q, ldq, qsv, corr, kg, ks + t, nt, dp, s + t, lds); break;                     \
                case 2: GROUP_FN(2, q, ldq, qsv, corr, kg, ks + t, nt, dp, s + t, lds); break;                     \
                case 3: GROUP_FN(3, q, ldq, qsv, corr, kg, ks + t, nt, dp, s + t, lds); break;                     \
                default: GROUP_FN(4, q, ldq, qsv, corr, kg, ks + t, nt, dp, s + t, lds); break;                    \
                }                                                                                                  \
            }                                                                                                      \
        }                                                                                                          \
    }
SCORES8(scores_i8_vnni, VNNI, scores8_group_vnni)
SCORES8(scores_i8_bw, , scores8_group_bw)
#undef SCORES8

static int have_vnni(void) { return __builtin_cpu_supports("avx512vnni"); }

/* the level's integer scores without VNNI (tests compare both with the reference) */
void rq__scores_i8_avx512bw(const int8_t *Q8, int G, int ldq, const float *qs, const int32_t *qsum, const uint8_t *K8,
                            const float *ks, int n, int d, float *S, int lds) {
    scores_i8_bw(Q8, G, ldq, qs, qsum, K8, ks, n, d, S, lds);
}

void rq__scores_i8_avx512(const int8_t *Q8, int G, int ldq, const float *qs, const int32_t *qsum, const uint8_t *K8,
                          const float *ks, int n, int d, float *S, int lds) {
    if (have_vnni()) scores_i8_vnni(Q8, G, ldq, qs, qsum, K8, ks, n, d, S, lds);
    else scores_i8_bw(Q8, G, ldq, qs, qsum, K8, ks, n, d, S, lds);
}
