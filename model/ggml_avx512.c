/*
 * ggml_avx512.c — AVX-512 versions of the matmul accumulation and of the
 * 32-element-block dequantizers of model/ggml.c, bit-identical to the scalar
 * reference. A 32-lane accumulator is two 16-float registers (lanes 0-15,
 * 16-31), every product is _mm512_mul_ps followed by _mm512_add_ps.
 *
 * A 4- or 5-bit block has only 16 or 32 distinct values, so instead of
 * converting each code, the block's values t[q] = d·q + m (the scalar
 * expression, same operands) are computed once into one or two registers
 * and the codes select from them (vpermps / vpermt2ps). Types not handled
 * here use the AVX2 dequantizers. Compiled with -mavx512f -mavx512bw
 * -mavx512vl -mavx512dq; called only when rq_simd_name() says "avx512".
 */
#include "ggml_kernels.h"

#include <immintrin.h>
#include <string.h>

/* ---- accumulation ------------------------------------------------------------------
 * The lanes of a 32-lane accumulator are two independent sums: lanes 0-15
 * see only columns 32b + 0..15, lanes 16-31 only 32b + 16..31. A register
 * tile therefore takes one half at a time: NX activation rows × NW weight
 * rows of 16-lane accumulators (up to 4 × 4 = 16 registers) stay in
 * registers for all n32 blocks of the call, each loaded weight vector
 * serves NX products and each activation vector NW — half a load per
 * product where a 2 × 2 tile of whole accumulators needs one. The driver
 * (model/ggml.c) calls with spans of up to 768 columns, so a tile's
 * accumulators leave registers only between spans. */
#define TX 4 /* activation rows per register tile */
#define TW 4 /* weight rows per register tile */

static inline __attribute__((always_inline)) void acc_tile(float *acc, size_t n_w, const float *w,
                                                           size_t w_stride, const float *x, size_t x_stride,
                                                           size_t n32, const int nx, const int nw) {
    for (int h = 0; h < 2; h++) {
        __m512 a[TX][TW];
#pragma GCC unroll 4
        for (int i = 0; i < nx; i++)
#pragma GCC unroll 4
            for (int r = 0; r < nw; r++) a[i][r] = _mm512_loadu_ps(acc + ((size_t)i * n_w + (size_t)r) * 32 + 16 * h);
        const float *wp = w + 16 * h, *xp = x + 16 * h;
        for (size_t b = 0; b < n32; b++, wp += 32, xp += 32) {
            __m512 xv[TX];
#pragma GCC unroll 4
            for (int i = 0; i < nx; i++) xv[i] = _mm512_loadu_ps(xp + (size_t)i * x_stride);
#pragma GCC unroll 4
            for (int r = 0; r < nw; r++) {
                __m512 wv = _mm512_loadu_ps(wp + (size_t)r * w_stride);
#pragma GCC unroll 4
                for (int i = 0; i < nx; i++) a[i][r] = _mm512_add_ps(a[i][r], _mm512_mul_ps(wv, xv[i]));
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < nx; i++)
#pragma GCC unroll 4
            for (int r = 0; r < nw; r++) _mm512_storeu_ps(acc + ((size_t)i * n_w + (size_t)r) * 32 + 16 * h, a[i][r]);
    }
}

#define TILE_FN(nx, nw)                                                                                    \
    static void acc_##nx##x##nw(float *acc, size_t n_w, const float *w, size_t w_stride, const float *x,   \
                                size_t x_stride, size_t n32) {                                             \
        acc_tile(acc, n_w, w, w_stride, x, x_stride, n32, nx, nw);                                         \
    }
TILE_FN(1, 1) TILE_FN(1, 2) TILE_FN(1, 3) TILE_FN(1, 4)
TILE_FN(2, 1) TILE_FN(2, 2) TILE_FN(2, 3) TILE_FN(2, 4)
TILE_FN(3, 1) TILE_FN(3, 2) TILE_FN(3, 3) TILE_FN(3, 4)
TILE_FN(4, 1) TILE_FN(4, 2) TILE_FN(4, 3) TILE_FN(4, 4)

typedef void (*tile_fn)(float *, size_t, const float *, size_t, const float *, size_t, size_t);
static const tile_fn TILES[TX][TW] = {
    {acc_1x1, acc_1x2, acc_1x3, acc_1x4},
    {acc_2x1, acc_2x2, acc_2x3, acc_2x4},
    {acc_3x1, acc_3x2, acc_3x3, acc_3x4},
    {acc_4x1, acc_4x2, acc_4x3, acc_4x4},
};

/* Weight-row groups inside activation-row groups: the activation rows of a
 * group (TX × span floats) stay in L1 while every weight row of the
 * driver's tile passes them. */
static void accum_avx512(float *acc, const float *w, size_t w_stride, size_t n_w, const float *x, size_t x_stride,
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

/* ---- blocks of 32 ------------------------------------------------------------------------ */
static inline float half_at(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }

static uint32_t le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4); /* x86: little-endian */
    return v;
}

/* The codes of 16 nibble bytes as two index vectors: elements 0-15 are the
 * low nibbles, 16-31 the high ones. vpermps reads only the low 4 bits of
 * an index, so the other nibble need not be masked off. */
static inline void nibble_idx(const uint8_t *qs, __m512i *lo, __m512i *hi) {
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    *lo = _mm512_cvtepu8_epi32(v);
    *hi = _mm512_cvtepu8_epi32(_mm_srli_epi16(v, 4));
}

/* 5-bit codes: the nibble (masked, vpermt2ps reads 5 bits) plus 16 where the
 * element's qh bit is set. */
static inline void q5_idx(const uint8_t *qs, uint32_t qh, __m512i *lo, __m512i *hi) {
    const __m128i m4 = _mm_set1_epi8(15);
    const __m512i sixteen = _mm512_set1_epi32(16);
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m512i l = _mm512_cvtepu8_epi32(_mm_and_si128(v, m4));
    __m512i h = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(v, 4), m4));
    *lo = _mm512_mask_or_epi32(l, (__mmask16)(qh & 0xffff), l, sixteen);
    *hi = _mm512_mask_or_epi32(h, (__mmask16)(qh >> 16), h, sixteen);
}

static inline __m512 iota(float first) {
    return _mm512_add_ps(_mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_ps(first));
}

/* Each writes the block's 32 values as w[0] (elements 0-15), w[1] (16-31). */
static inline void blk_q4_0(const uint8_t *s, __m512 w[2]) {
    __m512 t = _mm512_mul_ps(_mm512_set1_ps(half_at(s)), iota(-8)); /* t[q] = d·(q − 8) */
    __m512i lo, hi;
    nibble_idx(s + 2, &lo, &hi);
    w[0] = _mm512_permutexvar_ps(lo, t), w[1] = _mm512_permutexvar_ps(hi, t);
}

static inline void blk_q4_1(const uint8_t *s, __m512 w[2]) {
    __m512 t = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(half_at(s)), iota(0)), _mm512_set1_ps(half_at(s + 2)));
    __m512i lo, hi;
    nibble_idx(s + 4, &lo, &hi);
    w[0] = _mm512_permutexvar_ps(lo, t), w[1] = _mm512_permutexvar_ps(hi, t);
}

static inline void blk_q5_0(const uint8_t *s, __m512 w[2]) {
    __m512 d = _mm512_set1_ps(half_at(s));
    __m512 t0 = _mm512_mul_ps(d, iota(-16)), t1 = _mm512_mul_ps(d, iota(0)); /* t[q] = d·(q − 16) */
    __m512i lo, hi;
    q5_idx(s + 6, le32(s + 2), &lo, &hi);
    w[0] = _mm512_permutex2var_ps(t0, lo, t1), w[1] = _mm512_permutex2var_ps(t0, hi, t1);
}

static inline void blk_q5_1(const uint8_t *s, __m512 w[2]) {
    __m512 d = _mm512_set1_ps(half_at(s)), m = _mm512_set1_ps(half_at(s + 2));
    __m512 t0 = _mm512_add_ps(_mm512_mul_ps(d, iota(0)), m), t1 = _mm512_add_ps(_mm512_mul_ps(d, iota(16)), m);
    __m512i lo, hi;
    q5_idx(s + 8, le32(s + 4), &lo, &hi);
    w[0] = _mm512_permutex2var_ps(t0, lo, t1), w[1] = _mm512_permutex2var_ps(t0, hi, t1);
}

static inline void blk_q8_0(const uint8_t *s, __m512 w[2]) {
    __m512 d = _mm512_set1_ps(half_at(s));
    for (int h = 0; h < 2; h++) {
        __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(s + 2 + 16 * h)));
        w[h] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(q));
    }
}

#define BLOCK_LOOP(blk_fn, bytes, body)                                                                    \
    for (size_t b = 0; b < nb; b++, s += (bytes)) {                                                        \
        blk_fn(s, w);                                                                                      \
        body;                                                                                              \
    }

#define BY_TYPE(body)                                                                                      \
    switch (t) {                                                                                           \
    case RQM_GGML_Q4_0: BLOCK_LOOP(blk_q4_0, 18, body) break;                                              \
    case RQM_GGML_Q4_1: BLOCK_LOOP(blk_q4_1, 20, body) break;                                              \
    case RQM_GGML_Q5_0: BLOCK_LOOP(blk_q5_0, 22, body) break;                                              \
    case RQM_GGML_Q5_1: BLOCK_LOOP(blk_q5_1, 24, body) break;                                              \
    case RQM_GGML_Q8_0: BLOCK_LOOP(blk_q8_0, 34, body) break;                                              \
    default: break;                                                                                        \
    }

#define OWN_TYPES                                                                                          \
    (RQM_TYPE_BIT(RQM_GGML_Q4_0) | RQM_TYPE_BIT(RQM_GGML_Q4_1) | RQM_TYPE_BIT(RQM_GGML_Q5_0) |             \
     RQM_TYPE_BIT(RQM_GGML_Q5_1) | RQM_TYPE_BIT(RQM_GGML_Q8_0))

static void dequant_avx512(rqm_ggml_type t, const uint8_t *s, float *y, size_t nb) {
    if (!(OWN_TYPES & RQM_TYPE_BIT(t))) {
        rqm__dequant_avx2(t, s, y, nb);
        return;
    }
    __m512 w[2];
    BY_TYPE((_mm512_storeu_ps(y, w[0]), _mm512_storeu_ps(y + 16, w[1]), y += 32))
}

/* The documented fold of lanes 0-15 (lo) and 16-31 (hi): the four 8-lane
 * quarters are a0 = lo[0:8], a1 = lo[8:16], a2 = hi[0:8], a3 = hi[8:16]. */
static inline float fold2(__m512 lo, __m512 hi) {
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm512_castps512_ps256(lo), _mm512_extractf32x8_ps(lo, 1)),
                             _mm256_add_ps(_mm512_castps512_ps256(hi), _mm512_extractf32x8_ps(hi, 1)));
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    __m128 u = _mm_add_ps(t, _mm_movehl_ps(t, t));
    return _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps(u, u, 1)));
}

/* The first step of the fold for outputs k and m (accumulators ak, am):
 * lanes 0-7 s_k[l] = (a[l] + a[l+8]) + (a[l+16] + a[l+24]), lanes 8-15 s_m. */
static inline __m512 fold_pair(const float *ak, const float *am) {
    __m512 lk = _mm512_loadu_ps(ak), hk = _mm512_loadu_ps(ak + 16);
    __m512 lm = _mm512_loadu_ps(am), hm = _mm512_loadu_ps(am + 16);
    __m512 l0 = _mm512_shuffle_f32x4(lk, lm, _MM_SHUFFLE(1, 0, 1, 0)), l8 = _mm512_shuffle_f32x4(lk, lm, _MM_SHUFFLE(3, 2, 3, 2));
    __m512 h0 = _mm512_shuffle_f32x4(hk, hm, _MM_SHUFFLE(1, 0, 1, 0)), h8 = _mm512_shuffle_f32x4(hk, hm, _MM_SHUFFLE(3, 2, 3, 2));
    return _mm512_add_ps(_mm512_add_ps(l0, l8), _mm512_add_ps(h0, h8));
}

/* Eight outputs at once, the same sums as fold2 on each: after fold_pair,
 * t[l] = s[l] + s[l+4] (l < 4) with the outputs in 128-bit lanes, then
 * (t0 + t2) + (t1 + t3) across the lanes of each. */
static inline void fold8(const float *acc, float *y) {
    __m512 s01 = fold_pair(acc, acc + 32), s23 = fold_pair(acc + 64, acc + 96);
    __m512 s45 = fold_pair(acc + 128, acc + 160), s67 = fold_pair(acc + 192, acc + 224);
    __m512 t0123 = _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
    __m512 t4567 = _mm512_add_ps(_mm512_shuffle_f32x4(s45, s67, _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_f32x4(s45, s67, _MM_SHUFFLE(3, 1, 3, 1)));
    /* 128-bit lane k: t0 + t2, t1 + t3 of output k, then of output k + 4 */
    __m512 e = _mm512_add_ps(_mm512_shuffle_ps(t0123, t4567, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(t0123, t4567, _MM_SHUFFLE(3, 2, 3, 2)));
    /* 128-bit lane k: y_k, y_{k+4} (twice) */
    __m512 r = _mm512_add_ps(_mm512_shuffle_ps(e, e, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(e, e, _MM_SHUFFLE(3, 1, 3, 1)));
    r = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0), r);
    _mm256_storeu_ps(y, _mm512_castps512_ps256(r));
}

static void fold_avx512(const float *acc, size_t n, float *y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8, acc += 8 * RQM_LANES) fold8(acc, y + i);
    for (; i < n; i++, acc += RQM_LANES) y[i] = fold2(_mm512_loadu_ps(acc), _mm512_loadu_ps(acc + 16));
}

#define STEP(lo, hi, wl, wh, xl, xh)                                                                       \
    lo = _mm512_add_ps(lo, _mm512_mul_ps(wl, xl)), hi = _mm512_add_ps(hi, _mm512_mul_ps(wh, xh))

/* Two rows at a time: four independent add chains. */
#define DOT_ROWS(blk_fn, bytes)                                                                            \
    for (; o + 2 <= n_rows; o += 2, w += 2 * row_bytes) {                                                  \
        __m512 al = _mm512_setzero_ps(), ah = al, cl = al, ch = al, q[2];                                  \
        const uint8_t *s0 = w, *s1 = w + row_bytes;                                                        \
        for (size_t b = 0; b < nb; b++, s0 += (bytes), s1 += (bytes)) {                                    \
            __m512 xl = _mm512_loadu_ps(x + 32 * b), xh = _mm512_loadu_ps(x + 32 * b + 16);                \
            blk_fn(s0, q);                                                                                 \
            STEP(al, ah, q[0], q[1], xl, xh);                                                              \
            blk_fn(s1, q);                                                                                 \
            STEP(cl, ch, q[0], q[1], xl, xh);                                                              \
        }                                                                                                  \
        y[o] = fold2(al, ah), y[o + 1] = fold2(cl, ch);                                                    \
    }                                                                                                      \
    if (o < n_rows) {                                                                                      \
        __m512 al = _mm512_setzero_ps(), ah = al, q[2];                                                    \
        const uint8_t *s0 = w;                                                                             \
        for (size_t b = 0; b < nb; b++, s0 += (bytes)) {                                                   \
            blk_fn(s0, q);                                                                                 \
            STEP(al, ah, q[0], q[1], _mm512_loadu_ps(x + 32 * b), _mm512_loadu_ps(x + 32 * b + 16));      \
        }                                                                                                  \
        y[o] = fold2(al, ah);                                                                              \
    }

static void dot_rows_avx512(rqm_ggml_type t, const uint8_t *w, size_t row_bytes, size_t n_rows, const float *x,
                            size_t nb, float *y) {
    size_t o = 0;
    switch (t) {
    case RQM_GGML_Q4_0: DOT_ROWS(blk_q4_0, 18) break;
    case RQM_GGML_Q4_1: DOT_ROWS(blk_q4_1, 20) break;
    case RQM_GGML_Q5_0: DOT_ROWS(blk_q5_0, 22) break;
    case RQM_GGML_Q5_1: DOT_ROWS(blk_q5_1, 24) break;
    case RQM_GGML_Q8_0: DOT_ROWS(blk_q8_0, 34) break;
    default: break; /* not in OWN_TYPES */
    }
}

const rqm_ggml_kernels rqm__ggml_avx512 = {accum_avx512, dequant_avx512,  RQM_AVX2_DEQUANT_TYPES | OWN_TYPES,
                                           fold_avx512,  dot_rows_avx512, OWN_TYPES};
