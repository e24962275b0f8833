/*
 * ggml_avx2.c — AVX2 versions of the matmul kernels of model/ggml.c (the
 * lane accumulation, the lane fold, the one-row product straight from
 * quantized blocks) and of its dequantizers, bit-identical to the scalar
 * reference: every product is _mm256_mul_ps followed by _mm256_add_ps
 * (never an FMA) on the same operands in the same lanes, and every
 * dequantized value is the same float expression. Compiled with -mavx2
 * -mfma -mf16c; called only when rq_simd_name() says "avx2" (the AVX-512
 * table reuses its dequantizers for the K-quants and f16).
 */
#include "ggml_kernels.h"

#include <immintrin.h>
#include <string.h>

/* ---- accumulation -------------------------------------------------------------
 * Lanes j of a 32-lane accumulator are four independent sums by quarter
 * (j / 8: quarter q sees only columns 32b + 8q .. 32b + 8q + 7). A register
 * tile takes one quarter at a time: TX activation rows × TW weight rows of
 * 8-lane accumulators (3 × 3 = 9 of the 16 registers, with the TX
 * activation vectors, a weight vector and a product) stay in registers for
 * all n32 blocks of the call; each loaded vector serves 3 products (the
 * 2 × 1 tiles of whole accumulators this replaces loaded 1.5 vectors per
 * product and reloaded the accumulators every 256 columns). */
#define TX 3 /* activation rows per register tile */
#define TW 3 /* weight rows per register tile */

static inline __attribute__((always_inline)) void acc_tile(float *acc, size_t n_w, const float *w,
                                                           size_t w_stride, const float *x, size_t x_stride,
                                                           size_t n32, const int nx, const int nw) {
    for (int q = 0; q < 4; q++) {
        __m256 a[TX][TW];
#pragma GCC unroll 4
        for (int i = 0; i < nx; i++)
#pragma GCC unroll 4
            for (int r = 0; r < nw; r++) a[i][r] = _mm256_loadu_ps(acc + ((size_t)i * n_w + (size_t)r) * 32 + 8 * q);
        const float *wp = w + 8 * q, *xp = x + 8 * q;
        for (size_t b = 0; b < n32; b++, wp += 32, xp += 32) {
            __m256 xv[TX];
#pragma GCC unroll 4
            for (int i = 0; i < nx; i++) xv[i] = _mm256_loadu_ps(xp + (size_t)i * x_stride);
#pragma GCC unroll 4
            for (int r = 0; r < nw; r++) {
                __m256 wv = _mm256_loadu_ps(wp + (size_t)r * w_stride);
#pragma GCC unroll 4
                for (int i = 0; i < nx; i++) a[i][r] = _mm256_add_ps(a[i][r], _mm256_mul_ps(wv, xv[i]));
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < nx; i++)
#pragma GCC unroll 4
            for (int r = 0; r < nw; r++) _mm256_storeu_ps(acc + ((size_t)i * n_w + (size_t)r) * 32 + 8 * q, a[i][r]);
    }
}

#define TILE_FN(nx, nw)                                                                                    \
    static void acc_##nx##x##nw(float *acc, size_t n_w, const float *w, size_t w_stride, const float *x,   \
                                size_t x_stride, size_t n32) {                                             \
        acc_tile(acc, n_w, w, w_stride, x, x_stride, n32, nx, nw);                                         \
    }
TILE_FN(1, 1) TILE_FN(1, 2) TILE_FN(1, 3)
TILE_FN(2, 1) TILE_FN(2, 2) TILE_FN(2, 3)
TILE_FN(3, 1) TILE_FN(3, 2) TILE_FN(3, 3)

typedef void (*tile_fn)(float *, size_t, const float *, size_t, const float *, size_t, size_t);
static const tile_fn TILES[TX][TW] = {
    {acc_1x1, acc_1x2, acc_1x3},
    {acc_2x1, acc_2x2, acc_2x3},
    {acc_3x1, acc_3x2, acc_3x3},
};

/* Weight-row groups inside activation-row groups, as in ggml_avx512.c. */
static void accum_avx2(float *acc, const float *w, size_t w_stride, size_t n_w, const float *x, size_t x_stride,
                       size_t n_x, size_t n32) {
    for (size_t ix = 0; ix < n_x; ix += TX) {
        size_t nx = n_x - ix < TX ? n_x - ix : TX;
        for (size_t iw = 0; iw < n_w; iw += TW) {
            size_t nw = n_w - iw < TW ? n_w - iw : TW;
            TILES[nx - 1][nw - 1](acc + (ix * n_w + iw) * RQM_LANES, n_w, w + iw * w_stride, w_stride,
                                  x + ix * x_stride, x_stride, n32);
        }
    }
}

/* ---- dequantization -------------------------------------------------------------- */
static inline float half_at(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }

/* 8 unsigned bytes (the low 8 of v) as floats. */
static inline __m256 u8_to_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }

static uint32_t le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4); /* x86: little-endian */
    return v;
}

static void dq_f16(const uint8_t *s, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 2 * i))));
    for (; i < n; i++) y[i] = half_at(s + 2 * i);
}

/* ---- blocks of 32 -----------------------------------------------------------------
 * A block's 32 values as four 8-lane vectors (elements 8k .. 8k+7 in vk),
 * named fields rather than an array so that they stay in registers. */
typedef struct {
    __m256 v0, v1, v2, v3;
} f32x32;
typedef struct {
    __m256i v0, v1, v2, v3;
} i32x32;

/* The 32 nibble codes of 16 bytes: elements 0-15 the low nibbles, 16-31 the high ones. */
static inline i32x32 nibbles(const uint8_t *qs) {
    const __m128i m4 = _mm_set1_epi8(15);
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m128i lo = _mm_and_si128(v, m4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
    return (i32x32){_mm256_cvtepu8_epi32(lo), _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)),
                    _mm256_cvtepu8_epi32(hi), _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))};
}

/* 16 where bit j of qh is set, for the 8 elements j = 8g .. 8g+7. */
static inline __m256i q5_high(uint32_t qh, int g) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i h = _mm256_and_si256(_mm256_set1_epi32((int)(qh >> (8 * g) & 0xff)), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi32(h, bit), _mm256_set1_epi32(16));
}

static inline i32x32 add_q5_high(i32x32 q, uint32_t qh) {
    return (i32x32){_mm256_or_si256(q.v0, q5_high(qh, 0)), _mm256_or_si256(q.v1, q5_high(qh, 1)),
                    _mm256_or_si256(q.v2, q5_high(qh, 2)), _mm256_or_si256(q.v3, q5_high(qh, 3))};
}

/* d·(q − zero) */
static inline f32x32 scale_sym(i32x32 q, __m256 d, int zero) {
    const __m256i z = _mm256_set1_epi32(zero);
    return (f32x32){_mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(q.v0, z))),
                    _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(q.v1, z))),
                    _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(q.v2, z))),
                    _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(q.v3, z)))};
}

/* d·q + m */
static inline f32x32 scale_affine(i32x32 q, __m256 d, __m256 m) {
    return (f32x32){_mm256_add_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(q.v0)), m),
                    _mm256_add_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(q.v1)), m),
                    _mm256_add_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(q.v2)), m),
                    _mm256_add_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(q.v3)), m)};
}

static inline f32x32 blk_q4_0(const uint8_t *s) { return scale_sym(nibbles(s + 2), _mm256_set1_ps(half_at(s)), 8); }

static inline f32x32 blk_q4_1(const uint8_t *s) {
    return scale_affine(nibbles(s + 4), _mm256_set1_ps(half_at(s)), _mm256_set1_ps(half_at(s + 2)));
}

static inline f32x32 blk_q5_0(const uint8_t *s) {
    return scale_sym(add_q5_high(nibbles(s + 6), le32(s + 2)), _mm256_set1_ps(half_at(s)), 16);
}

static inline f32x32 blk_q5_1(const uint8_t *s) {
    return scale_affine(add_q5_high(nibbles(s + 8), le32(s + 4)), _mm256_set1_ps(half_at(s)),
                        _mm256_set1_ps(half_at(s + 2)));
}

static inline f32x32 blk_q8_0(const uint8_t *s) {
#define Q8(g) _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(s + 2 + 8 * (g))))
    return scale_sym((i32x32){Q8(0), Q8(1), Q8(2), Q8(3)}, _mm256_set1_ps(half_at(s)), 0);
#undef Q8
}

static inline void store32(float *y, f32x32 w) {
    _mm256_storeu_ps(y, w.v0), _mm256_storeu_ps(y + 8, w.v1), _mm256_storeu_ps(y + 16, w.v2),
        _mm256_storeu_ps(y + 24, w.v3);
}

/* a + w·x, lane by lane: a product, then a sum */
static inline f32x32 madd32(f32x32 a, f32x32 w, const float *x) {
    return (f32x32){_mm256_add_ps(a.v0, _mm256_mul_ps(w.v0, _mm256_loadu_ps(x))),
                    _mm256_add_ps(a.v1, _mm256_mul_ps(w.v1, _mm256_loadu_ps(x + 8))),
                    _mm256_add_ps(a.v2, _mm256_mul_ps(w.v2, _mm256_loadu_ps(x + 16))),
                    _mm256_add_ps(a.v3, _mm256_mul_ps(w.v3, _mm256_loadu_ps(x + 24)))};
}

#define DEQUANT(name, blk_fn, bytes)                                                                       \
    static void name(const uint8_t *s, float *y, size_t nb) {                                              \
        for (size_t b = 0; b < nb; b++, s += (bytes), y += 32) store32(y, blk_fn(s));                      \
    }
DEQUANT(dq_q4_0, blk_q4_0, 18)
DEQUANT(dq_q4_1, blk_q4_1, 20)
DEQUANT(dq_q5_0, blk_q5_0, 22)
DEQUANT(dq_q5_1, blk_q5_1, 24)
DEQUANT(dq_q8_0, blk_q8_0, 34)

/* Q4_K: per 64-element chunk c, 32 bytes of qs give the low nibbles of
 * sub-block 2c and the high nibbles of sub-block 2c+1. */
static inline void k_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0f) | (q[j - 4] >> 6) << 4;
        *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

static void dq_q4_k(const uint8_t *s, float *y, size_t nb) {
    const __m128i m4 = _mm_set1_epi8(15);
    for (size_t b = 0; b < nb; b++, s += 144, y += 256) {
        float d = half_at(s), dmin = half_at(s + 2);
        const uint8_t *sc = s + 4, *qs = s + 16;
        for (int c = 0; c < 4; c++) {
            int s1, m1, s2, m2;
            k_scale_min(2 * c, sc, &s1, &m1);
            k_scale_min(2 * c + 1, sc, &s2, &m2);
            __m256 d1 = _mm256_set1_ps(d * (float)s1), n1 = _mm256_set1_ps(dmin * (float)m1);
            __m256 d2 = _mm256_set1_ps(d * (float)s2), n2 = _mm256_set1_ps(dmin * (float)m2);
            for (int h = 0; h < 2; h++) {
                __m128i v = _mm_loadu_si128((const __m128i *)(qs + 32 * c + 16 * h));
                __m128i lo = _mm_and_si128(v, m4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
                float *y1 = y + 64 * c + 16 * h, *y2 = y1 + 32;
                _mm256_storeu_ps(y1, _mm256_sub_ps(_mm256_mul_ps(d1, u8_to_ps(lo)), n1));
                _mm256_storeu_ps(y1 + 8, _mm256_sub_ps(_mm256_mul_ps(d1, u8_to_ps(_mm_srli_si128(lo, 8))), n1));
                _mm256_storeu_ps(y2, _mm256_sub_ps(_mm256_mul_ps(d2, u8_to_ps(hi)), n2));
                _mm256_storeu_ps(y2 + 8, _mm256_sub_ps(_mm256_mul_ps(d2, u8_to_ps(_mm_srli_si128(hi, 8))), n2));
            }
        }
    }
}

/* Q6_K: for 8 consecutive l, the four quarters' 6-bit codes minus 32. */
static void dq_q6_k(const uint8_t *s, float *y, size_t nb) {
    const __m256i m4 = _mm256_set1_epi32(15), m2 = _mm256_set1_epi32(3), off = _mm256_set1_epi32(32);
    for (size_t b = 0; b < nb; b++, s += 210, y += 256) {
        float d = half_at(s + 208);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = s + 64 * h, *qh = s + 128 + 32 * h;
            const int8_t *sc = (const int8_t *)(s + 192) + 8 * h;
            for (int l = 0; l < 32; l += 8) {
                int is = l / 16;
                __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(ql + l)));
                __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(ql + l + 32)));
                __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qh + l)));
                __m256i q1 = _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_slli_epi32(_mm256_and_si256(e, m2), 4));
                __m256i q2 = _mm256_or_si256(_mm256_and_si256(c, m4),
                                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(e, 2), m2), 4));
                __m256i q3 = _mm256_or_si256(_mm256_srli_epi32(a, 4),
                                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(e, 4), m2), 4));
                __m256i q4 = _mm256_or_si256(_mm256_srli_epi32(c, 4), _mm256_slli_epi32(_mm256_srli_epi32(e, 6), 4));
                float *yh = y + 128 * h + l;
                _mm256_storeu_ps(yh, _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[is]),
                                                   _mm256_cvtepi32_ps(_mm256_sub_epi32(q1, off))));
                _mm256_storeu_ps(yh + 32, _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[is + 2]),
                                                        _mm256_cvtepi32_ps(_mm256_sub_epi32(q2, off))));
                _mm256_storeu_ps(yh + 64, _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[is + 4]),
                                                        _mm256_cvtepi32_ps(_mm256_sub_epi32(q3, off))));
                _mm256_storeu_ps(yh + 96, _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[is + 6]),
                                                        _mm256_cvtepi32_ps(_mm256_sub_epi32(q4, off))));
            }
        }
    }
}

void rqm__dequant_avx2(rqm_ggml_type t, const uint8_t *src, float *dst, size_t n_blocks) {
    switch (t) {
    case RQM_GGML_F16: dq_f16(src, dst, n_blocks); break;
    case RQM_GGML_Q4_0: dq_q4_0(src, dst, n_blocks); break;
    case RQM_GGML_Q4_1: dq_q4_1(src, dst, n_blocks); break;
    case RQM_GGML_Q5_0: dq_q5_0(src, dst, n_blocks); break;
    case RQM_GGML_Q5_1: dq_q5_1(src, dst, n_blocks); break;
    case RQM_GGML_Q8_0: dq_q8_0(src, dst, n_blocks); break;
    case RQM_GGML_Q4_K: dq_q4_k(src, dst, n_blocks); break;
    case RQM_GGML_Q6_K: dq_q6_k(src, dst, n_blocks); break;
    default: break; /* not in RQM_AVX2_DEQUANT_TYPES: f32, bf16, q5_K stay scalar */
    }
}

/* ---- one activation row straight from quantized blocks ------------------------- */
/* The documented fold of a 32-lane accumulator held as four vectors:
 * s = (a0 + a1) + (a2 + a3), then s_i + s_{i+4}, then pairs, then the two. */
static inline float fold4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    __m128 u = _mm_add_ps(t, _mm_movehl_ps(t, t));
    return _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps(u, u, 1)));
}

static void fold_avx2(const float *acc, size_t n, float *y) {
    for (size_t i = 0; i < n; i++, acc += RQM_LANES)
        y[i] = fold4(_mm256_loadu_ps(acc), _mm256_loadu_ps(acc + 8), _mm256_loadu_ps(acc + 16),
                     _mm256_loadu_ps(acc + 24));
}

/* Two rows at a time: eight independent add chains hide the add latency
 * (each lane's own sum stays strictly sequential). */
#define DOT_ROWS(blk_fn, bytes)                                                                            \
    for (; o + 2 <= n_rows; o += 2, w += 2 * row_bytes) {                                                  \
        f32x32 a = {zero, zero, zero, zero}, c = a;                                                        \
        const uint8_t *s0 = w, *s1 = w + row_bytes;                                                        \
        for (size_t b = 0; b < nb; b++, s0 += (bytes), s1 += (bytes)) {                                    \
            a = madd32(a, blk_fn(s0), x + 32 * b);                                                         \
            c = madd32(c, blk_fn(s1), x + 32 * b);                                                         \
        }                                                                                                  \
        y[o] = fold4(a.v0, a.v1, a.v2, a.v3), y[o + 1] = fold4(c.v0, c.v1, c.v2, c.v3);                    \
    }                                                                                                      \
    if (o < n_rows) {                                                                                      \
        f32x32 a = {zero, zero, zero, zero};                                                               \
        const uint8_t *s0 = w;                                                                             \
        for (size_t b = 0; b < nb; b++, s0 += (bytes)) a = madd32(a, blk_fn(s0), x + 32 * b);              \
        y[o] = fold4(a.v0, a.v1, a.v2, a.v3);                                                              \
    }

static void dot_rows_avx2(rqm_ggml_type t, const uint8_t *w, size_t row_bytes, size_t n_rows, const float *x,
                          size_t nb, float *y) {
    const __m256 zero = _mm256_setzero_ps();
    size_t o = 0;
    switch (t) {
    case RQM_GGML_Q4_0: DOT_ROWS(blk_q4_0, 18) break;
    case RQM_GGML_Q4_1: DOT_ROWS(blk_q4_1, 20) break;
    case RQM_GGML_Q5_0: DOT_ROWS(blk_q5_0, 22) break;
    case RQM_GGML_Q5_1: DOT_ROWS(blk_q5_1, 24) break;
    case RQM_GGML_Q8_0: DOT_ROWS(blk_q8_0, 34) break;
    default: break; /* not in DOT_TYPES */
    }
}

#define DOT_TYPES                                                                                          \
    (RQM_TYPE_BIT(RQM_GGML_Q4_0) | RQM_TYPE_BIT(RQM_GGML_Q4_1) | RQM_TYPE_BIT(RQM_GGML_Q5_0) |             \
     RQM_TYPE_BIT(RQM_GGML_Q5_1) | RQM_TYPE_BIT(RQM_GGML_Q8_0))

const rqm_ggml_kernels rqm__ggml_avx2 = {accum_avx2,    rqm__dequant_avx2, RQM_AVX2_DEQUANT_TYPES,
                                         fold_avx2,     dot_rows_avx2,     DOT_TYPES};
