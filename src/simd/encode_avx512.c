/*
 * encode_avx512.c — AVX-512 (F/BW/VL/DQ) encode/decode kernels
 * (simd/kernels.h), bit-exact with the scalar reference in src/quant.c and
 * src/rotation*.c: the same float operations in the same order, no FMA.
 *
 * One zmm holds 16 floats, which is exactly the 16 interleaved partial sums
 * of rq__sumsq_ref / rq__dot_ref (lane i mod 16), reduced by the same
 * w = 8, 4, 2, 1 tree. Shapes: every n; partial vectors use masked loads and
 * stores (no access past an array's end).
 *
 *   hadamard  signs by multiplying by ±1 (as the reference: XOR would differ
 *             on NaN payloads of garbage blocks), the Walsh–Hadamard
 *             butterflies with strides 1, 2, 4, 8 inside a register
 *             (permute + add + masked sub), larger strides across registers;
 *             d = 16·2^k ≤ 256 runs entirely in registers. The odd factor
 *             Q_m (d = 2^k·m, m > 1) is a plain loop.
 *   dense     y = Πx vectorized over outputs with rows of Πᵀ (increasing j)
 *   blocks    rotor / planar / iso: all regular blocks at once (they are
 *             disjoint) with per-lane coefficients (simd_coef); rotor as 3×3
 *             matrices on the blocks in place (vpermt2ps brings each
 *             lane's block components); the overlapping tail block by the
 *             reference (in the fused encoder: in registers)
 *   quantize  branch-free binary search over the bounds with vpermps
 *             (code = number of bounds < y; 5 bits: vpermt2ps over the 31
 *             bounds in two registers), codes → bytes, then packing by
 *             multiply-add of adjacent codes (vpmaddubsw / vpmaddwd).
 *   unpack    b ≤ 4: 16 codes from one 64-bit word; 5 bits (16 codes =
 *             80 bits): a byte shuffle gives each lane the two bytes its
 *             code spans; centroids by vpermps (vpermt2ps for 32 levels)
 *   fp16      F16C conversion (IEEE round to nearest even = rq_f32_to_f16);
 *             decode fixes up signaling NaNs, which the hardware quiets.
 *   q8_0      roundf (half away from zero) as trunc + |frac| ≥ ½ correction
 *   q4_0      trunc(x·id + 8.5) by cvttps, clamp 15
 *   QJL       S r′ row by row with the 16 partial sums of each row reduced
 *             16 rows at a time by a transposing tree; k vectors per pass
 *   fused     MSE encode at d = 64, 128, 256, b = 1..5 (encode_mse): one
 *             function per (d, bits, rotation) keeps the vector in registers
 *             from load to packed codes, two vectors at a time (independent
 *             chains: one alone is bound by the latency of Σx² → √ → ÷ →
 *             rotation)
 */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>

static inline __mmask16 mask16(int n) { return (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1); }
static inline __mmask32 mask32(int n) { return (__mmask32)(n >= 32 ? 0xffffffffu : (1u << n) - 1); }

static inline uint16_t f16_bits(float f) { return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

static inline __m512 sign_bit(void) { return _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u)); }

/* ---- reductions ---------------------------------------------------------- */
/* The w = 8, 4, 2, 1 tree of rq__sumsq_ref over the 16 lanes. */
static inline float tree16(__m512 acc) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

/* 0x99 = QNaN | SNaN | +Inf | −Inf */
#define NONFINITE_CLASS 0x99

static float sumsq_finite_avx512(const float *x, int n, bool *finite) {
    __m512 acc = _mm512_setzero_ps();
    __mmask16 bad = 0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        bad |= _mm512_fpclass_ps_mask(v, NONFINITE_CLASS);
        acc = _mm512_add_ps(acc, _mm512_mul_ps(v, v));
    }
    if (i < n) {
        __mmask16 m = mask16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        bad |= _mm512_fpclass_ps_mask(v, NONFINITE_CLASS);
        acc = _mm512_mask_add_ps(acc, m, acc, _mm512_mul_ps(v, v));
    }
    *finite = bad == 0;
    return tree16(acc);
}

static float sumsq_avx512(const float *x, int n) {
    bool f;
    return sumsq_finite_avx512(x, n, &f);
}

static bool all_finite_avx512(const float *x, int n) {
    __mmask16 bad = 0;
    int i = 0;
    for (; i + 16 <= n; i += 16) bad |= _mm512_fpclass_ps_mask(_mm512_loadu_ps(x + i), NONFINITE_CLASS);
    if (i < n) bad |= _mm512_fpclass_ps_mask(_mm512_maskz_loadu_ps(mask16(n - i), x + i), NONFINITE_CLASS);
    return bad == 0;
}

/* dot_ref of 16 rows at once: acc[r] holds row r's 16 partial sums; returns
 * lane r = the tree of acc[r]. Each level adds the same pairs as the tree
 * (w = 8: 256-bit halves; 4: 128-bit quarters; 2, 1: within 128 bits), on
 * rows interleaved by shuffles; the last permute undoes the interleaving. */
static inline __m512 tree16x16(const __m512 a[16]) {
    __m512 t[8], u[4], c[2];
    for (int k = 0; k < 8; k++)
        t[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0xEE));
    for (int k = 0; k < 4; k++)
        u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0x88),
                             _mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0xDD));
    for (int k = 0; k < 2; k++)
        c[k] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0x44), _mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0xEE));
    __m512 r = _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], 0x88), _mm512_shuffle_ps(c[0], c[1], 0xDD));
    /* lane 4q + k now holds row 4k + q */
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), r);
}

static void matvec_rows_avx512(const float *m, int n_rows, int n, const float *v, float *out) {
    int nf = n & ~15;
    __mmask16 tm = mask16(n - nf);
    for (int i0 = 0; i0 < n_rows; i0 += 16) {
        int nr = n_rows - i0 < 16 ? n_rows - i0 : 16;
        __m512 acc[16];
        for (int r = 0; r < 16; r++) {
            __m512 a = _mm512_setzero_ps();
            if (r < nr) {
                const float *row = m + (size_t)(i0 + r) * (size_t)n;
                for (int j = 0; j < nf; j += 16) a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_loadu_ps(row + j), _mm512_loadu_ps(v + j)));
                if (nf < n)
                    a = _mm512_mask_add_ps(a, tm, a,
                                           _mm512_mul_ps(_mm512_maskz_loadu_ps(tm, row + nf), _mm512_maskz_loadu_ps(tm, v + nf)));
            }
            acc[r] = a;
        }
        _mm512_mask_storeu_ps(out + i0, mask16(nr), tree16x16(acc));
    }
}

/* k vectors: for each block of 16 rows, row by row, the K vectors' chains
 * side by side (one load of each row chunk, K independent add chains: one
 * chain alone is bound by the add latency), then the tree of each vector's
 * 16 accumulators at once. */
static inline __attribute__((always_inline)) void rows_k(const float *m, int n_rows, int n, const float *v, float *out,
                                                         const int K) {
    int nf = n & ~15;
    __mmask16 tm = mask16(n - nf);
    __m512 acc[8][16];
    for (int i0 = 0; i0 < n_rows; i0 += 16) {
        int nr = n_rows - i0 < 16 ? n_rows - i0 : 16;
        for (int r = 0; r < 16; r++) {
            __m512 a[8];
#pragma GCC unroll 8
            for (int t = 0; t < K; t++) a[t] = _mm512_setzero_ps();
            if (r < nr) {
                const float *row = m + (size_t)(i0 + r) * (size_t)n;
                for (int j = 0; j < nf; j += 16) {
                    __m512 rc = _mm512_loadu_ps(row + j);
#pragma GCC unroll 8
                    for (int t = 0; t < K; t++) a[t] = _mm512_add_ps(a[t], _mm512_mul_ps(rc, _mm512_loadu_ps(v + (size_t)t * n + j)));
                }
                if (nf < n) {
                    __m512 rc = _mm512_maskz_loadu_ps(tm, row + nf);
#pragma GCC unroll 8
                    for (int t = 0; t < K; t++)
                        a[t] = _mm512_mask_add_ps(a[t], tm, a[t], _mm512_mul_ps(rc, _mm512_maskz_loadu_ps(tm, v + (size_t)t * n + nf)));
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < K; t++) acc[t][r] = a[t];
        }
#pragma GCC unroll 8
        for (int t = 0; t < K; t++) _mm512_mask_storeu_ps(out + (size_t)t * (size_t)n_rows + i0, mask16(nr), tree16x16(acc[t]));
    }
}

static void matvec_rows_k_avx512(const float *m, int n_rows, int n, const float *v, int k, float *out) {
    switch (k) {
    case 1: rows_k(m, n_rows, n, v, out, 1); return;
    case 2: rows_k(m, n_rows, n, v, out, 2); return;
    case 3: rows_k(m, n_rows, n, v, out, 3); return;
    case 4: rows_k(m, n_rows, n, v, out, 4); return;
    case 5: rows_k(m, n_rows, n, v, out, 5); return;
    case 6: rows_k(m, n_rows, n, v, out, 6); return;
    case 7: rows_k(m, n_rows, n, v, out, 7); return;
    default: rows_k(m, n_rows, n, v, out, 8); return;
    }
}

/* ---- y_i = Σ_j mt[j·n + i] v_j, vectorized over i --------------------------
 * NR accumulators of 16 outputs (the last one masked), j increasing from +0:
 * exactly the reference's order for every output. */
static inline __attribute__((always_inline)) void cols_block(const float *mt, int n, const float *v, float *y, int i0,
                                                             const int NR, __mmask16 last) {
    __m512 acc[8];
#pragma GCC unroll 8
    for (int r = 0; r < NR; r++) acc[r] = _mm512_setzero_ps();
    const float *row = mt + i0;
    for (int j = 0; j < n; j++, row += n) {
        __m512 vj = _mm512_set1_ps(v[j]);
#pragma GCC unroll 8
        for (int r = 0; r < NR - 1; r++) acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(_mm512_loadu_ps(row + 16 * r), vj));
        acc[NR - 1] = _mm512_add_ps(acc[NR - 1], _mm512_mul_ps(_mm512_maskz_loadu_ps(last, row + 16 * (NR - 1)), vj));
    }
#pragma GCC unroll 8
    for (int r = 0; r < NR - 1; r++) _mm512_storeu_ps(y + i0 + 16 * r, acc[r]);
    _mm512_mask_storeu_ps(y + i0 + 16 * (NR - 1), last, acc[NR - 1]);
}

static void matvec_cols_avx512(const float *mt, int n, const float *v, float *y) {
    for (int i0 = 0; i0 < n; i0 += 128) {
        int rem = n - i0 < 128 ? n - i0 : 128, nr = (rem + 15) / 16;
        __mmask16 last = mask16(rem - 16 * (nr - 1));
        switch (nr) {
        case 1: cols_block(mt, n, v, y, i0, 1, last); break;
        case 2: cols_block(mt, n, v, y, i0, 2, last); break;
        case 3: cols_block(mt, n, v, y, i0, 3, last); break;
        case 4: cols_block(mt, n, v, y, i0, 4, last); break;
        case 5: cols_block(mt, n, v, y, i0, 5, last); break;
        case 6: cols_block(mt, n, v, y, i0, 6, last); break;
        case 7: cols_block(mt, n, v, y, i0, 7, last); break;
        default: cols_block(mt, n, v, y, i0, 8, last); break;
        }
    }
}

/* ---- Walsh–Hadamard ------------------------------------------------------ */
/* Butterflies (x_j, x_{j+h}) ← (x_j + x_{j+h}, x_j − x_{j+h}) for h = 1, 2, 4, 8
 * inside one register: p = the partner lanes; lanes with bit h set take
 * p − v (= x_j − x_{j+h}), the others v + p. */
static inline __m512 fwht16(__m512 v) {
    __m512 p = _mm512_permute_ps(v, 0xB1);
    v = _mm512_mask_sub_ps(_mm512_add_ps(v, p), 0xAAAA, p, v);
    p = _mm512_permute_ps(v, 0x4E);
    v = _mm512_mask_sub_ps(_mm512_add_ps(v, p), 0xCCCC, p, v);
    p = _mm512_shuffle_f32x4(v, v, 0xB1);
    v = _mm512_mask_sub_ps(_mm512_add_ps(v, p), 0xF0F0, p, v);
    p = _mm512_shuffle_f32x4(v, v, 0x4E);
    return _mm512_mask_sub_ps(_mm512_add_ps(v, p), 0xFF00, p, v);
}

/* d = 16·R ≤ 256, m = 1, entirely in registers. Forward: u = (x·s) ⊙ σ,
 * butterflies, × h_scale. Inverse: butterflies, × h_scale, ⊙ σ. */
static inline __attribute__((always_inline)) void had_pow2(const rq_rotation *r, const float *x, float s, float *y,
                                                           const int R, const bool inverse) {
    __m512 v[16];
    const __m512 vs = _mm512_set1_ps(s), hs = _mm512_set1_ps(r->h_scale);
#pragma GCC unroll 16
    for (int i = 0; i < R; i++) {
        __m512 u = _mm512_loadu_ps(x + 16 * i);
        if (!inverse) u = _mm512_mul_ps(_mm512_mul_ps(u, vs), _mm512_loadu_ps(r->signs + 16 * i));
        v[i] = fwht16(u);
    }
    /* strides 16, 32, … across registers: register j pairs with j + H */
#define CROSS(H)                                                                   \
    if (R > H) {                                                                   \
        _Pragma("GCC unroll 16") for (int j = 0; j < R; j++) if (!(j & H)) {      \
            __m512 a = v[j], b = v[j + H];                                         \
            v[j] = _mm512_add_ps(a, b);                                            \
            v[j + H] = _mm512_sub_ps(a, b);                                        \
        }                                                                          \
    }
    CROSS(1) CROSS(2) CROSS(4) CROSS(8)
#undef CROSS
#pragma GCC unroll 16
    for (int i = 0; i < R; i++) {
        __m512 u = _mm512_mul_ps(v[i], hs);
        if (inverse) u = _mm512_mul_ps(u, _mm512_loadu_ps(r->signs + 16 * i));
        _mm512_storeu_ps(y + 16 * i, u);
    }
}

/* Butterflies over elements of w floats, strides h = h0, 2h0, … < n (the
 * reference's fwht_wide from stride h0 on). Contiguous runs of L = h·w
 * floats pair up; runs shorter than a register use masks. */
static void fwht_wide_avx512(float *x, int n, int w, int h0) {
    for (int h = h0; h < n; h <<= 1) {
        int L = h * w;
        for (int i = 0; i < n; i += 2 * h) {
            float *a = x + (size_t)i * w, *b = a + L;
            int t = 0;
            for (; t + 16 <= L; t += 16) {
                __m512 u = _mm512_loadu_ps(a + t), v = _mm512_loadu_ps(b + t);
                _mm512_storeu_ps(a + t, _mm512_add_ps(u, v));
                _mm512_storeu_ps(b + t, _mm512_sub_ps(u, v));
            }
            if (t < L) {
                __mmask16 m = mask16(L - t);
                __m512 u = _mm512_maskz_loadu_ps(m, a + t), v = _mm512_maskz_loadu_ps(m, b + t);
                _mm512_mask_storeu_ps(a + t, m, _mm512_add_ps(u, v));
                _mm512_mask_storeu_ps(b + t, m, _mm512_sub_ps(u, v));
            }
        }
    }
}

/* y = (x·s)·σ, or x·s without signs, over n floats, any alias. */
static void scale_signs(const float *x, float s, const float *signs, float *y, int n) {
    const __m512 vs = _mm512_set1_ps(s);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i);
        __m512 u = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
        if (signs) u = _mm512_mul_ps(u, _mm512_maskz_loadu_ps(m, signs + i));
        _mm512_mask_storeu_ps(y + i, m, u);
    }
}

static void had_generic(const rq_rotation *r, const float *x, float s, float *y, bool inverse) {
    int d = r->n_dims, m = r->n_odd, p = r->n_pow2, h0 = 1;
    if (!inverse) {
        scale_signs(x, s, r->signs, y, d);
        if (m > 1) rq__hadamard_odd(r, y, false);
    } else if (y != x) {
        memcpy(y, x, sizeof(float) * (size_t)d);
    }
    if (m == 1 && p >= 16) { /* strides 1..8 inside registers */
        for (int i = 0; i < d; i += 16) _mm512_storeu_ps(y + i, fwht16(_mm512_loadu_ps(y + i)));
        h0 = 16;
    }
    fwht_wide_avx512(y, p, m, h0);
    scale_signs(y, r->h_scale, NULL, y, d);
    if (inverse) {
        if (m > 1) rq__hadamard_odd(r, y, true);
        scale_signs(y, 1.0f, r->signs, y, d); /* ·1 is exact: only the signs */
    }
}

static void hadamard(const rq_rotation *r, const float *x, float s, float *y, bool inverse) {
    if (r->n_odd == 1) {
        switch (r->n_dims) {
        case 16: had_pow2(r, x, s, y, 1, inverse); return;
        case 32: had_pow2(r, x, s, y, 2, inverse); return;
        case 64: had_pow2(r, x, s, y, 4, inverse); return;
        case 128: had_pow2(r, x, s, y, 8, inverse); return;
        case 256: had_pow2(r, x, s, y, 16, inverse); return;
        default: break;
        }
    }
    had_generic(r, x, s, y, inverse);
}

/* ---- block rotations (rotor / planar / iso): regular blocks at once ------ */
/* planar: pairs (x0, x1) → (c x0 − s x1, s x0 + c x1), as ((c·x0) + (−s·x1),
 * (s·x0) + (c·x1)) = [c, s]·dup_even(x) + [−s, c]·dup_odd(x), each term in
 * the reference's order; inverse (c x0 + s x1, c x1 − s x0) = [c, c]·x +
 * [s, −s]·swap(x). n = 2·n_reg floats, in place. */
static void planar_blocks(const rq_rotation *r, float *y, bool inverse) {
    const int n = 2 * (r->n_dims / 2), L = rq__simd_lanes(r);
    const float *fb = r->simd_coef, *cc = fb + L, *si = cc + L;
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i);
        __m512 x = _mm512_maskz_loadu_ps(m, y + i), o;
        if (!inverse)
            o = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, r->block_params + i), _mm512_moveldup_ps(x)),
                              _mm512_mul_ps(_mm512_loadu_ps(fb + i), _mm512_movehdup_ps(x)));
        else
            o = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(cc + i), x),
                              _mm512_mul_ps(_mm512_loadu_ps(si + i), _mm512_permute_ps(x, 0xB1)));
        _mm512_mask_storeu_ps(y + i, m, o);
    }
}

/* iso: two Hamilton products per 4-block, (a b)_i = Σ_k sgn(i,k) a_k b_(i⊕k):
 * first q_L·v: Σ_k A_k · v_(i⊕k) (in-lane permutes of v), then t·conj(q_R):
 * Σ_k t_k · Q_k (t_k broadcast within its block). Signs are folded into the
 * coefficients; a + (−b) = a − b and (−a)·b = −(a·b) exactly. */
static void iso_blocks(const rq_rotation *r, float *y, bool inverse) {
    const int n = 4 * (r->n_dims / 4), L = rq__simd_lanes(r);
    const float *A = r->simd_coef + (inverse ? 8 : 0) * L, *Q = r->simd_coef + (inverse ? 12 : 4) * L;
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i);
        __m512 x = _mm512_maskz_loadu_ps(m, y + i);
        __m512 t = _mm512_mul_ps(_mm512_loadu_ps(A + i), x);
        t = _mm512_add_ps(t, _mm512_mul_ps(_mm512_loadu_ps(A + L + i), _mm512_permute_ps(x, 0xB1)));
        t = _mm512_add_ps(t, _mm512_mul_ps(_mm512_loadu_ps(A + 2 * L + i), _mm512_permute_ps(x, 0x4E)));
        t = _mm512_add_ps(t, _mm512_mul_ps(_mm512_loadu_ps(A + 3 * L + i), _mm512_permute_ps(x, 0x1B)));
        __m512 o = _mm512_mul_ps(_mm512_permute_ps(t, 0x00), _mm512_loadu_ps(Q + i));
        o = _mm512_add_ps(o, _mm512_mul_ps(_mm512_permute_ps(t, 0x55), _mm512_loadu_ps(Q + L + i)));
        o = _mm512_add_ps(o, _mm512_mul_ps(_mm512_permute_ps(t, 0xAA), _mm512_loadu_ps(Q + 2 * L + i)));
        o = _mm512_add_ps(o, _mm512_mul_ps(_mm512_permute_ps(t, 0xFF), _mm512_loadu_ps(Q + 3 * L + i)));
        _mm512_mask_storeu_ps(y + i, m, o);
    }
}

/* rotor: y_i = (M_i0 v_0 + M_i1 v_1) + M_i2 v_2 per 3-block, in place on
 * the blocks' own lanes: lane f of block g = ⌊f/3⌋ needs component j of its
 * block, float 3g + j, which lies in this register or the previous one
 * (j = 0), this or the next (j = 2), one of the two (j = 1): one vpermt2ps
 * each, with index tables that repeat every 3 registers (16 ≡ 1 mod 3).
 * C_j (forward) or D_j (inverse) hold the matrix entry of each lane. */
static const int32_t ROTOR_IDX[3][3][16] = {
    {{16, 16, 16, 19, 19, 19, 22, 22, 22, 25, 25, 25, 28, 28, 28, 31},
     {1, 1, 1, 4, 4, 4, 7, 7, 7, 10, 10, 10, 13, 13, 13, 16},
     {2, 2, 2, 5, 5, 5, 8, 8, 8, 11, 11, 11, 14, 14, 14, 17}},
    {{15, 15, 18, 18, 18, 21, 21, 21, 24, 24, 24, 27, 27, 27, 30, 30},
     {0, 0, 3, 3, 3, 6, 6, 6, 9, 9, 9, 12, 12, 12, 15, 15},
     {1, 1, 4, 4, 4, 7, 7, 7, 10, 10, 10, 13, 13, 13, 16, 16}},
    {{14, 17, 17, 17, 20, 20, 20, 23, 23, 23, 26, 26, 26, 29, 29, 29},
     {15, 18, 18, 18, 21, 21, 21, 24, 24, 24, 27, 27, 27, 30, 30, 30},
     {0, 3, 3, 3, 6, 6, 6, 9, 9, 9, 12, 12, 12, 15, 15, 15}},
};

/* one register of outputs from (prev, cur, next) originals; class = r mod 3 */
static inline __m512 rotor_reg(__m512 prev, __m512 cur, __m512 next, int cls, const float *c0, const float *c1,
                               const float *c2) {
    const __m512i i0 = _mm512_loadu_si512(ROTOR_IDX[cls][0]), i1 = _mm512_loadu_si512(ROTOR_IDX[cls][1]),
                  i2 = _mm512_loadu_si512(ROTOR_IDX[cls][2]);
    __m512 p0 = _mm512_permutex2var_ps(prev, i0, cur);
    __m512 p1 = cls == 2 ? _mm512_permutex2var_ps(prev, i1, cur) : _mm512_permutex2var_ps(cur, i1, next);
    __m512 p2 = _mm512_permutex2var_ps(cur, i2, next);
    return _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(c0), p0), _mm512_mul_ps(_mm512_loadu_ps(c1), p1)),
                         _mm512_mul_ps(_mm512_loadu_ps(c2), p2));
}

static void rotor_blocks(const rq_rotation *r, float *y, bool inverse) {
    const int n = 3 * (r->n_dims / 3), L = rq__simd_lanes(r);
    const float *c = r->simd_coef + (inverse ? 3 : 0) * L;
    __m512 prev = _mm512_setzero_ps(), cur = _mm512_maskz_loadu_ps(mask16(n), y);
    for (int i = 0, cls = 0; i < n; i += 16, cls = cls == 2 ? 0 : cls + 1) {
        __mmask16 m = mask16(n - i);
        __m512 next = _mm512_maskz_loadu_ps(mask16(n - i - 16 > 0 ? n - i - 16 : 0), y + i + 16);
        _mm512_mask_storeu_ps(y + i, m, rotor_reg(prev, cur, next, cls, c + i, c + L + i, c + 2 * L + i));
        prev = cur, cur = next;
    }
}

/* ---- codes ----------------------------------------------------------------- */
/* Binary search over the ascending bounds, branch-free: step s = 2^l probes
 * bounds[idx + s − 1] and adds s if that bound is < y. tab[l] holds
 * bounds[i + 2^l − 1] at lane i, so each probe is one vpermps by idx; the
 * first step (idx = 0) is a broadcast. The result is #{k : bounds[k] < y},
 * the reference's count, for every float y (the comparisons are the same).
 * 5 bits: idx reaches 30, so each table has 32 lanes, tab[l] (lanes 0–15)
 * and hi[l] (16–31), and the probe is one vpermt2ps over the pair. */
typedef struct {
    __m512 tab[4], hi[4], first;
} search_tabs;

static inline __attribute__((always_inline)) void search_init(search_tabs *st, const float *bounds, const int B) {
    const int nb = (1 << B) - 1; /* masked loads: no copy through the stack */
    for (int l = 0; l < B - 1; l++) {
        const int off = (1 << l) - 1;
        st->tab[l] = _mm512_maskz_loadu_ps(mask16(nb - off), bounds + off);
        if (B == 5) st->hi[l] = _mm512_maskz_loadu_ps(mask16(nb - off - 16), bounds + off + 16);
    }
    st->first = _mm512_set1_ps(bounds[(1 << (B - 1)) - 1]);
}

static inline __attribute__((always_inline)) __m512i search16(const search_tabs *st, __m512 y, const int B) {
    __m512i idx = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(st->first, y, _CMP_LT_OQ), _mm512_set1_epi32(1 << (B - 1)));
#pragma GCC unroll 4
    for (int l = B - 2; l >= 0; l--) {
        __m512 probe = B == 5 ? _mm512_permutex2var_ps(st->tab[l], idx, st->hi[l]) : _mm512_permutexvar_ps(idx, st->tab[l]);
        idx = _mm512_mask_add_epi32(idx, _mm512_cmp_ps_mask(probe, y, _CMP_LT_OQ), idx, _mm512_set1_epi32(1 << l));
    }
    return idx;
}

/* 4 × 16 codes (int32 lanes) → 64 bytes in order: two saturating packs
 * leave dword 4L + s = codes 16s + 4L .. + 3; one permute transposes. */
static inline __m512i codes_to_bytes(__m512i c0, __m512i c1, __m512i c2, __m512i c3) {
    __m512i z = _mm512_packus_epi16(_mm512_packus_epi32(c0, c1), _mm512_packus_epi32(c2, c3));
    return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), z);
}

/* 64 codes of B = 2..5 bits (bytes) → 8B packed bytes by multiply-adds
 * of neighbours; stores the first nb (all when nb = 8B). */
static inline __attribute__((always_inline)) void pack64(__m512i z, uint8_t *out, int nb, const int B) {
    if (B == 5) { /* 8 codes = 40 bits per qword, 5 bytes of each: 10 per 128-bit lane */
        __m512i t = _mm512_maddubs_epi16(z, _mm512_set1_epi16(0x2001)); /* c0 + 32c1 (10 bits)     */
        t = _mm512_madd_epi16(t, _mm512_set1_epi32(0x04000001));       /* 4 codes (20 bits)       */
        t = _mm512_or_si512(_mm512_and_si512(t, _mm512_set1_epi64(0xFFFFF)), /* low dword + high << 20 */
                            _mm512_and_si512(_mm512_srli_epi64(t, 12), _mm512_set1_epi64(0xFFFFF00000)));
        t = _mm512_shuffle_epi8(t, _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 4, 8, 9, 10, 11, 12, -1, -1, -1, -1,
                                                                          -1, -1)));
        const __m128i q[4] = {_mm512_castsi512_si128(t), _mm512_extracti32x4_epi32(t, 1), _mm512_extracti32x4_epi32(t, 2),
                              _mm512_extracti32x4_epi32(t, 3)};
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            int m = nb - 10 * k;
            if (m > 0) _mm_mask_storeu_epi8(out + 10 * k, mask16(m > 10 ? 10 : m), q[k]);
        }
    } else if (B == 2) {
        __m512i t = _mm512_maddubs_epi16(z, _mm512_set1_epi16(0x0401)); /* c0 + 4c1        */
        t = _mm512_madd_epi16(t, _mm512_set1_epi32(0x00100001));       /* + 16c2 + 64c3   */
        __m128i w = _mm512_cvtepi32_epi8(t);
        if (nb == 16) _mm_storeu_si128((__m128i *)(void *)out, w);
        else _mm_mask_storeu_epi8(out, mask16(nb), w);
    } else if (B == 4) {
        __m256i w = _mm512_cvtepi16_epi8(_mm512_maddubs_epi16(z, _mm512_set1_epi16(0x1001))); /* c0 + 16c1 */
        if (nb == 32) _mm256_storeu_si256((__m256i *)(void *)out, w);
        else _mm256_mask_storeu_epi8(out, mask32(nb), w);
    } else { /* 3: 8 codes = 24 bits per qword, then 3 bytes of every dword */
        __m512i t = _mm512_maddubs_epi16(z, _mm512_set1_epi16(0x0801)); /* c0 + 8c1 (6 bits)  */
        t = _mm512_madd_epi16(t, _mm512_set1_epi32(0x00400001));       /* 4 codes (12 bits)  */
        t = _mm512_or_si512(t, _mm512_srli_epi64(t, 20));               /* 8 codes (24 bits)  */
        __m256i w = _mm512_cvtepi64_epi32(t);
        w = _mm256_shuffle_epi8(w, _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1, 0, 1, 2, 4, 5,
                                                    6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
        w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7));
        _mm256_mask_storeu_epi8(out, mask32(nb), w);
    }
}

static inline __attribute__((always_inline)) void qpack(const float *y, int n, const float *bounds, uint8_t *out,
                                                        const int B) {
    search_tabs st;
    search_init(&st, bounds, B);
    int i = 0;
    for (; i + 64 <= n; i += 64)
        pack64(codes_to_bytes(search16(&st, _mm512_loadu_ps(y + i), B), search16(&st, _mm512_loadu_ps(y + i + 16), B),
                              search16(&st, _mm512_loadu_ps(y + i + 32), B), search16(&st, _mm512_loadu_ps(y + i + 48), B)),
               out + (size_t)i / 8 * B, 8 * B, B);
    if (i < n) { /* masked: lanes past n get code 0, so unused bits stay 0 */
        int rem = n - i;
        __m512i c[4];
        for (int k = 0; k < 4; k++) {
            __mmask16 m = mask16(rem - 16 * k > 0 ? rem - 16 * k : 0);
            c[k] = _mm512_maskz_mov_epi32(m, search16(&st, _mm512_maskz_loadu_ps(m, y + i + 16 * k), B));
        }
        pack64(codes_to_bytes(c[0], c[1], c[2], c[3]), out + (size_t)i / 8 * B, (rem * B + 7) / 8, B);
    }
}

static void quantize_pack_avx512(const float *y, int n, int bits, const float *bounds, uint8_t *out) {
    switch (bits) {
    case 2: qpack(y, n, bounds, out, 2); return;
    case 3: qpack(y, n, bounds, out, 3); return;
    case 4: qpack(y, n, bounds, out, 4); return;
    case 5: qpack(y, n, bounds, out, 5); return;
    default: break;
    }
    /* 1 bit: one bound; the compare mask is the packed bitstream */
    const __m512 b0 = _mm512_set1_ps(bounds[0]);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i);
        uint16_t bitsv = (uint16_t)(_mm512_mask_cmp_ps_mask(m, b0, _mm512_maskz_loadu_ps(m, y + i), _CMP_LT_OQ));
        memcpy(out + i / 8, &bitsv, (size_t)(n - i >= 16 ? 2 : (n - i + 7) / 8));
    }
}

/* 16 codes of 5 bits (80 bits, more than one 64-bit word): code k lies in
 * byte ⌊5k/8⌋ from bit 5k mod 8, reaching into the next byte when that is
 * > 3. The 10 bytes, broadcast to every 128-bit lane, are shuffled so that
 * lane k holds those two bytes, then shifted and masked. Reads exactly
 * nbytes bytes (masked load). Also in attn_avx512.c. */
static const int8_t B5_PICK[64] = { /* lane k: bytes ⌊5k/8⌋, ⌊5k/8⌋ + 1, zero, zero */
    0, 1, -1, -1, 0, 1, -1, -1, 1, 2, -1, -1, 1, 2, -1, -1, 2, 3, -1, -1, 3, 4, -1, -1, 3, 4, -1, -1, 4, 5, -1, -1,
    5, 6, -1, -1, 5, 6, -1, -1, 6, 7, -1, -1, 6, 7, -1, -1, 7, 8, -1, -1, 8, 9, -1, -1, 8, 9, -1, -1, 9, 10, -1, -1};

static inline __m512i unpack16_b5(const uint8_t *in, int nbytes) {
    __m512i w = _mm512_broadcast_i32x4(_mm_maskz_loadu_epi8(mask16(nbytes), in));
    w = _mm512_shuffle_epi8(w, _mm512_loadu_si512(B5_PICK));
    w = _mm512_srlv_epi32(w, _mm512_setr_epi32(0, 5, 2, 7, 4, 1, 6, 3, 0, 5, 2, 7, 4, 1, 6, 3)); /* 5k mod 8 */
    return _mm512_and_si512(w, _mm512_set1_epi32(31));
}

/* Codes i0 .. i0 + cnt − 1 (cnt ≤ 16, 8 | i0: byte aligned) → int32 lanes.
 * Reads exactly the ⌈cnt·b/8⌉ bytes that hold them: qword j of the
 * broadcast word shifted by 2j·b, low dword duplicated, odd lanes shifted by
 * b more, masked (b = 5: unpack16_b5). */
static inline __attribute__((always_inline)) __m512i unpack16(const uint8_t *in, int cnt, const int B) {
    if (B == 5) return unpack16_b5(in, (cnt * 5 + 7) / 8);
    uint64_t u = 0;
    memcpy(&u, in, cnt == 16 ? (size_t)(2 * B) : (size_t)(cnt * B + 7) / 8);
    __m512i q = _mm512_srlv_epi64(_mm512_set1_epi64((long long)u),
                                  _mm512_setr_epi64(0, 2 * B, 4 * B, 6 * B, 8 * B, 10 * B, 12 * B, 14 * B));
    q = _mm512_shuffle_epi32(q, (_MM_PERM_ENUM)0xA0);
    q = _mm512_srlv_epi32(q, _mm512_setr_epi32(0, B, 0, B, 0, B, 0, B, 0, B, 0, B, 0, B, 0, B));
    return _mm512_and_si512(q, _mm512_set1_epi32((1 << B) - 1));
}

/* centroids of 16 codes: one vpermps over ≤ 16 levels, vpermt2ps over 32 */
static inline __attribute__((always_inline)) __m512 lookup16(__m512i idx, __m512 c, __m512 c_hi, const int B) {
    return B == 5 ? _mm512_permutex2var_ps(c, idx, c_hi) : _mm512_permutexvar_ps(idx, c);
}

static inline __attribute__((always_inline)) void unpack_scale_b(const uint8_t *in, int n, const float *cent, float s,
                                                                 float *y, const int B) {
    const __m512 c = _mm512_maskz_loadu_ps(mask16(1 << B), cent), vs = _mm512_set1_ps(s);
    const __m512 c_hi = B == 5 ? _mm512_loadu_ps(cent + 16) : c;
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_mul_ps(vs, lookup16(unpack16(in + (size_t)i / 8 * B, 16, B), c, c_hi, B)));
    if (i < n)
        _mm512_mask_storeu_ps(y + i, mask16(n - i),
                              _mm512_mul_ps(vs, lookup16(unpack16(in + (size_t)i / 8 * B, n - i, B), c, c_hi, B)));
}

static void unpack_scale_avx512(const uint8_t *in, int n, int bits, const float *cent, float s, float *y) {
    switch (bits) {
    case 1: unpack_scale_b(in, n, cent, s, y, 1); return;
    case 2: unpack_scale_b(in, n, cent, s, y, 2); return;
    case 3: unpack_scale_b(in, n, cent, s, y, 3); return;
    case 4: unpack_scale_b(in, n, cent, s, y, 4); return;
    default: unpack_scale_b(in, n, cent, s, y, 5); return;
    }
}

static void pack_signs_avx512(const float *v, int n, uint8_t *out) {
    const __m512 z = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i);
        uint16_t b = (uint16_t)_mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, v + i), z, _CMP_GE_OQ);
        memcpy(out + i / 8, &b, (size_t)(n - i >= 16 ? 2 : (n - i + 7) / 8));
    }
}

/* ---- fused MSE encode: the whole pipeline in registers ------------------------
 * For d = 16·R (R = 4, 8, 16: d = 64, 128, 256), b = 1..5 bits, no norm
 * correction, rotation hadamard (d a power of two), rotor, planar or iso:
 * load x once; Σx² in the reference order (lane i mod 16, then the tree);
 * checks; u = x·(1/n); the rotation; codes; packing; the fp16 norm. The
 * same operations as quant.c's encode_one composed from the kernels above,
 * without the round trips through memory. */

static inline __attribute__((always_inline)) void rotor_regs(const rq_rotation *r, __m512 *v, const int R) {
    const int d = 16 * R, n = 3 * (d / 3), L = rq__simd_lanes(r);
    const float *c = r->simd_coef;
    const __m512 z = _mm512_setzero_ps();
    __m512 prev = z;
#pragma GCC unroll 16
    for (int i = 0; i < R; i++) {
        __m512 cur = v[i], o = rotor_reg(prev, cur, i + 1 < R ? v[i + 1] : z, i % 3, c + 16 * i, c + L + 16 * i,
                                         c + 2 * L + 16 * i);
        v[i] = 16 * i + 16 <= n ? o : _mm512_mask_mov_ps(cur, mask16(n - 16 * i), o);
        prev = cur;
    }
    if (d % 3) { /* tail block: floats d − 3 .. d − 1 = lanes 13..15 of the last register */
        const float *m = r->block_mats + (size_t)(r->n_blocks - 1) * 9;
        const __m512 mv = _mm512_maskz_loadu_ps(0x1ff, m), w = v[R - 1];
        /* lane 13 + i: M_ij for j = 0, 1, 2 */
        const __m512i j0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 6),
                      j1 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 4, 7),
                      j2 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 5, 8);
        __m512 o = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_permutexvar_ps(j0, mv), _mm512_permutexvar_ps(_mm512_set1_epi32(13), w)),
                                               _mm512_mul_ps(_mm512_permutexvar_ps(j1, mv), _mm512_permutexvar_ps(_mm512_set1_epi32(14), w))),
                                 _mm512_mul_ps(_mm512_permutexvar_ps(j2, mv), _mm512_permutexvar_ps(_mm512_set1_epi32(15), w)));
        v[R - 1] = _mm512_mask_mov_ps(w, 0xe000, o);
    }
}

/* natural position e ← lane (e0 + 2e3 + 4e1 + 8e2) of the pair-wise
 * transform: as byte shuffle (per 16-code group) and as lane permute */
static const int8_t HAD_LANE_FIX8[64] = {
    0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
    0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15};
static const int32_t HAD_LANE_FIX32[16] = {0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15};

static inline __attribute__((always_inline)) void rotate_regs(const rq_rotation *r, __m512 *v, const int R,
                                                              const rq_rot_kind K) {
    switch (K) {
    case RQ_ROT_HADAMARD: {
        /* Strides 1..16 (element bits e0..e4) on register pairs (v[2p],
         * v[2p+1], which differ in e4): each stage gathers the lanes with
         * the stage's bit 0 (lo) and 1 (hi) from both registers and writes
         * lo + hi, lo − hi — the butterflies x_j ± x_{j+h} — into the two:
         * one shuffle and one add or sub per register instead of a shuffle,
         * an add and a masked sub. Each stage moves bits between lane and
         * register positions; after e0 (ps), e1 (ps), e2 (x4), e3 (x4),
         * e4 (ps) the pair is again (e4 = 0, e4 = 1) and lane bits
         * (L0, L1, L2, L3) hold (e0, e3, e1, e2): HAD_LANE_FIX reorders the
         * codes. Strides 32, 64, 128 then pair whole registers. */
        const __m512 hs = _mm512_set1_ps(r->h_scale);
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) v[i] = _mm512_mul_ps(v[i], _mm512_loadu_ps(r->signs + 16 * i));
#define STAGE(SHUF)                                                                \
    _Pragma("GCC unroll 8") for (int p = 0; p < R; p += 2) {                       \
        __m512 lo = SHUF(v[p], v[p + 1], 0x88), hi = SHUF(v[p], v[p + 1], 0xDD);  \
        v[p] = _mm512_add_ps(lo, hi);                                              \
        v[p + 1] = _mm512_sub_ps(lo, hi);                                          \
    }
        STAGE(_mm512_shuffle_ps) STAGE(_mm512_shuffle_ps) STAGE(_mm512_shuffle_f32x4) STAGE(_mm512_shuffle_f32x4)
        STAGE(_mm512_shuffle_ps)
#undef STAGE
#define CROSS(H)                                                                   \
    if (R > H) {                                                                   \
        _Pragma("GCC unroll 16") for (int j = 0; j < R; j++) if (!(j & H)) {      \
            __m512 a = v[j], b = v[j + H];                                         \
            v[j] = _mm512_add_ps(a, b);                                            \
            v[j + H] = _mm512_sub_ps(a, b);                                        \
        }                                                                          \
    }
        CROSS(2) CROSS(4) CROSS(8)
#undef CROSS
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) v[i] = _mm512_mul_ps(v[i], hs);
        return;
    }
    case RQ_ROT_PLANAR: {
        const float *fb = r->simd_coef;
#pragma GCC unroll 16
        for (int i = 0; i < R; i++)
            v[i] = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(r->block_params + 16 * i), _mm512_moveldup_ps(v[i])),
                                 _mm512_mul_ps(_mm512_loadu_ps(fb + 16 * i), _mm512_movehdup_ps(v[i])));
        return;
    }
    case RQ_ROT_ISO: {
        const int L = rq__simd_lanes(r);
        const float *A = r->simd_coef, *Q = r->simd_coef + 4 * L;
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) {
            __m512 x = v[i];
            __m512 t = _mm512_mul_ps(_mm512_loadu_ps(A + 16 * i), x);
            t = _mm512_add_ps(t, _mm512_mul_ps(_mm512_loadu_ps(A + L + 16 * i), _mm512_permute_ps(x, 0xB1)));
            t = _mm512_add_ps(t, _mm512_mul_ps(_mm512_loadu_ps(A + 2 * L + 16 * i), _mm512_permute_ps(x, 0x4E)));
            t = _mm512_add_ps(t, _mm512_mul_ps(_mm512_loadu_ps(A + 3 * L + 16 * i), _mm512_permute_ps(x, 0x1B)));
            __m512 o = _mm512_mul_ps(_mm512_permute_ps(t, 0x00), _mm512_loadu_ps(Q + 16 * i));
            o = _mm512_add_ps(o, _mm512_mul_ps(_mm512_permute_ps(t, 0x55), _mm512_loadu_ps(Q + L + 16 * i)));
            o = _mm512_add_ps(o, _mm512_mul_ps(_mm512_permute_ps(t, 0xAA), _mm512_loadu_ps(Q + 2 * L + 16 * i)));
            v[i] = _mm512_add_ps(o, _mm512_mul_ps(_mm512_permute_ps(t, 0xFF), _mm512_loadu_ps(Q + 3 * L + 16 * i)));
        }
        return;
    }
    default: rotor_regs(r, v, R); return;
    }
}

/* N vectors at once (independent dependency chains: one vector alone is
 * bound by the latency of Σx² → √ → ÷ → rotation → search). Returns N when
 * all were encoded; on any non-finite, out-of-range or zero vector returns
 * −1 having written nothing, and the caller takes them one by one (N = 1
 * handles every case). */
static inline __attribute__((always_inline)) int mse_fused(const rq_quantizer *q, const float *x, uint8_t *blk,
                                                           rq_status *st, const int N, const int R, const int B,
                                                           const rq_rot_kind K) {
    __m512 v[2][16], acc[2];
    uint16_t h[2];
    const int d = 16 * R;
#pragma GCC unroll 2
    for (int n = 0; n < N; n++) {
        acc[n] = _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) {
            v[n][i] = _mm512_loadu_ps(x + n * d + 16 * i);
            acc[n] = _mm512_add_ps(acc[n], _mm512_mul_ps(v[n][i], v[n][i]));
        }
    }
    float inv[2];
#pragma GCC unroll 2
    for (int n = 0; n < N; n++) {
        float ss = tree16(acc[n]);
        /* Σx² finite ⇒ every x finite (an Inf or NaN would make it Inf or
         * NaN), so the class test is only needed when it is not */
        if (!rq__finite(ss)) {
            __mmask16 bad = 0;
#pragma GCC unroll 16
            for (int i = 0; i < R; i++) bad |= _mm512_fpclass_ps_mask(v[n][i], NONFINITE_CLASS);
            if (N > 1) return -1;
            if (bad) {
                *st = RQ_ERR_NONFINITE;
                return 0;
            }
        }
        float norm = sqrtf(ss);
        h[n] = f16_bits(norm);
        if ((h[n] & 0x7c00u) == 0x7c00u || norm == 0.0f) {
            if (N > 1) return -1;
            if (norm == 0.0f) { /* zero vector: all-zero block */
                memset(blk, 0, q->bytes);
                *st = RQ_OK;
                return 1;
            }
            *st = RQ_ERR_RANGE;
            return 0;
        }
        inv[n] = 1.0f / norm;
    }
#pragma GCC unroll 2
    for (int n = 0; n < N; n++) {
        const __m512 vi = _mm512_set1_ps(inv[n]);
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) v[n][i] = _mm512_mul_ps(v[n][i], vi);
        rotate_regs(q->rot, v[n], R, K);
    }
    search_tabs st_;
    if (B > 1) search_init(&st_, q->cb.bounds, B);
#pragma GCC unroll 2
    for (int n = 0; n < N; n++) {
            uint8_t *out = blk + n * q->bytes + 2;
        if (B == 1) {
            const __m512 b0 = _mm512_set1_ps(q->cb.bounds[0]);
#pragma GCC unroll 16
            for (int i = 0; i < R; i++) {
                __m512 y = K == RQ_ROT_HADAMARD ? _mm512_permutexvar_ps(_mm512_loadu_si512(HAD_LANE_FIX32), v[n][i]) : v[n][i];
                uint16_t m = (uint16_t)_mm512_cmp_ps_mask(b0, y, _CMP_LT_OQ);
                memcpy(out + 2 * i, &m, 2);
            }
        } else {
#pragma GCC unroll 4
            for (int i = 0; i < R; i += 4) {
                __m512i z = codes_to_bytes(search16(&st_, v[n][i], B), search16(&st_, v[n][i + 1], B),
                                           search16(&st_, v[n][i + 2], B), search16(&st_, v[n][i + 3], B));
                if (K == RQ_ROT_HADAMARD) z = _mm512_shuffle_epi8(z, _mm512_loadu_si512(HAD_LANE_FIX8));
                pack64(z, out + 8 * B * (i / 4), 8 * B, B);
            }
        }
        blk[n * q->bytes] = (uint8_t)h[n], blk[n * q->bytes + 1] = (uint8_t)(h[n] >> 8);
    }
    *st = RQ_OK;
    return N;
}

/* A batch: pairs while they encode cleanly, singles otherwise (and for the
 * last odd one). Returns the vectors encoded; *st = the first error. */
static inline __attribute__((always_inline)) size_t mse_batch(const rq_quantizer *q, const float *x, uint8_t *blk,
                                                             size_t n_vec, rq_status *st, const int R, const int B,
                                                             const rq_rot_kind K) {
    const size_t d = (size_t)(16 * R);
    const int N = R <= 8 ? 2 : 1;
    size_t v = 0;
    *st = RQ_OK;
    while (v < n_vec) {
        for (size_t b = 0; b < (size_t)N * d * sizeof(float); b += 64)
            __builtin_prefetch((const char *)(x + (v + RQ_PREFETCH_VECS) * d) + b);
        int done = -1;
        if (N == 2 && v + 2 <= n_vec) done = mse_fused(q, x + v * d, blk + v * q->bytes, st, 2, R, B, K);
        if (done < 0) done = mse_fused(q, x + v * d, blk + v * q->bytes, st, 1, R, B, K);
        v += (size_t)done;
        if (*st) break;
    }
    return v;
}

/* one function per (d, bits, kind), so that each keeps its vectors in
 * registers: batch_<R>_<B>_<kind> */
typedef size_t (*batch_fn)(const rq_quantizer *q, const float *x, uint8_t *blk, size_t n_vec, rq_status *st);
#define BATCH(R, B, K, NAME)                                                                                       \
    static __attribute__((noinline)) size_t batch_##R##_##B##_##NAME(const rq_quantizer *q, const float *x,       \
                                                                     uint8_t *blk, size_t n_vec, rq_status *st) { \
        return mse_batch(q, x, blk, n_vec, st, R, B, K);                                                           \
    }
#define BATCH_K(R, B) BATCH(R, B, RQ_ROT_HADAMARD, had) BATCH(R, B, RQ_ROT_ROTOR, rotor) \
    BATCH(R, B, RQ_ROT_PLANAR, planar) BATCH(R, B, RQ_ROT_ISO, iso)
#define BATCH_B(R) BATCH_K(R, 1) BATCH_K(R, 2) BATCH_K(R, 3) BATCH_K(R, 4) BATCH_K(R, 5)
BATCH_B(4)
BATCH_B(8)
BATCH_B(16)
#define ROW_K(R, B)                                                                                     \
    {[RQ_ROT_HADAMARD] = batch_##R##_##B##_had, [RQ_ROT_ROTOR] = batch_##R##_##B##_rotor,              \
     [RQ_ROT_PLANAR] = batch_##R##_##B##_planar, [RQ_ROT_ISO] = batch_##R##_##B##_iso}
#define ROW_B(R) {ROW_K(R, 1), ROW_K(R, 2), ROW_K(R, 3), ROW_K(R, 4), ROW_K(R, 5)}
/* [d = 64, 128, 256][bits − 1][rotation kind]; NULL: no fused encoder */
static const batch_fn BATCHES[3][RQ_MAX_BITS][RQ_ROT_COUNT] = {ROW_B(4), ROW_B(8), ROW_B(16)};
#undef ROW_B
#undef ROW_K
#undef BATCH_B
#undef BATCH_K
#undef BATCH

static bool encode_mse_avx512(const rq_quantizer *q, const float *x, uint8_t *blk, size_t n_vec, size_t *n_done,
                              rq_status *st) {
    const rq_rotation *r = q->rot;
    if (q->traits->block != RQ_BLOCK_MSE || q->cfg.norm_correct || (r->kind == RQ_ROT_HADAMARD && r->n_odd != 1))
        return false;
    int di = q->n_dims == 64 ? 0 : q->n_dims == 128 ? 1 : q->n_dims == 256 ? 2 : -1;
    if (di < 0 || !BATCHES[di][q->mse_bits - 1][r->kind]) return false;
    *n_done = BATCHES[di][q->mse_bits - 1][r->kind](q, x, blk, n_vec, st);
    return true;
}

/* ---- fp16 ------------------------------------------------------------------ */
static rq_status f16_encode_avx512(const float *x, int n, uint8_t *out) {
    const __m256i e = _mm256_set1_epi16(0x7c00);
    __mmask16 inf = 0;
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        inf |= _mm256_cmpeq_epi16_mask(_mm256_and_si256(h, e), e);
        _mm256_mask_storeu_epi16(out + 2 * i, m, h);
    }
    return inf ? RQ_ERR_RANGE : RQ_OK;
}

/* Inf/NaN halves: the hardware quiets signaling NaNs; the format's
 * conversion keeps the payload as is (rq_f16_to_f32). Valid blocks have
 * none, so the loop only notes them and they are redone afterwards. */
static void f16_fix_special(const uint8_t *in, int n, float *x) {
    for (int i = 0; i < n; i++)
        if ((in[2 * i + 1] & 0x7c) == 0x7c) x[i] = rq_f16_to_f32((uint16_t)(in[2 * i] | (in[2 * i + 1] << 8)));
}

static void f16_decode_avx512(const uint8_t *in, int n, float *x) {
    const __m256i e = _mm256_set1_epi16(0x7c00);
    __mmask16 special = 0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(in + 2 * i));
        _mm512_storeu_ps(x + i, _mm512_cvtph_ps(h));
        special |= _mm256_cmpeq_epi16_mask(_mm256_and_si256(h, e), e);
    }
    if (i < n) {
        __mmask16 m = mask16(n - i);
        __m256i h = _mm256_maskz_loadu_epi16(m, in + 2 * i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_cvtph_ps(h));
        special |= _mm256_mask_cmpeq_epi16_mask(m, _mm256_and_si256(h, e), e);
    }
    if (special) f16_fix_special(in, n, x);
}

/* ---- q8_0 / q4_0 (32-value blocks: two registers) -------------------------- */
static inline float hmax16(__m512 v) { return _mm512_reduce_max_ps(v); }


/* roundf (half away from zero) of |t| < 2^23: trunc, then ±1 if |frac| ≥ ½. */
static inline __m512i round_away(__m512 t) {
    const __m512 sb = sign_bit();
    __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_andnot_ps(sb, _mm512_sub_ps(t, r));
    __mmask16 up = _mm512_cmp_ps_mask(f, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    r = _mm512_mask_add_ps(r, up, r, _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(t, sb)));
    return _mm512_cvtps_epi32(r);
}

static rq_status q8_0_encode_avx512(const float *x, int n, uint8_t *out) {
    const __m512 sb = sign_bit();
    for (int b = 0; b < n / 32; b++, x += 32, out += 34) {
        __m512 a = _mm512_loadu_ps(x), c = _mm512_loadu_ps(x + 16);
        float amax = hmax16(_mm512_max_ps(_mm512_andnot_ps(sb, a), _mm512_andnot_ps(sb, c)));
        float dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
        uint16_t h = f16_bits(dd);
        if ((h & 0x7c00u) == 0x7c00u) return RQ_ERR_RANGE;
        out[0] = (uint8_t)h, out[1] = (uint8_t)(h >> 8);
        __m512 vid = _mm512_set1_ps(id);
        _mm_storeu_si128((__m128i *)(void *)(out + 2), _mm512_cvtepi32_epi8(round_away(_mm512_mul_ps(a, vid))));
        _mm_storeu_si128((__m128i *)(void *)(out + 18), _mm512_cvtepi32_epi8(round_away(_mm512_mul_ps(c, vid))));
    }
    return RQ_OK;
}

static void q8_0_decode_avx512(const uint8_t *in, int n, float *x) {
    for (int b = 0; b < n / 32; b++, in += 34, x += 32) {
        __m512 dd = _mm512_set1_ps(rq_f16_to_f32((uint16_t)(in[0] | (in[1] << 8))));
        __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(in + 2));
        _mm512_storeu_ps(x, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))), dd));
        _mm512_storeu_ps(x + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))), dd));
    }
}

static rq_status q4_0_encode_avx512(const float *x, int n, uint8_t *out) {
    const __m512 sb = sign_bit();
    for (int b = 0; b < n / 32; b++, x += 32, out += 18) {
        __m512 a = _mm512_loadu_ps(x), c = _mm512_loadu_ps(x + 16);
        __m512 aa = _mm512_andnot_ps(sb, a), ac = _mm512_andnot_ps(sb, c);
        float amax = hmax16(_mm512_max_ps(aa, ac)), max = 0.0f;
        if (amax != 0.0f) { /* the first value of largest magnitude (reference: strict <) */
            __m512 vm = _mm512_set1_ps(amax);
            uint32_t hit = (uint32_t)_mm512_cmp_ps_mask(aa, vm, _CMP_EQ_OQ) |
                           ((uint32_t)_mm512_cmp_ps_mask(ac, vm, _CMP_EQ_OQ) << 16);
            max = x[__builtin_ctz(hit)];
        }
        float dd = max / -8.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
        uint16_t h = f16_bits(dd);
        if ((h & 0x7c00u) == 0x7c00u) return RQ_ERR_RANGE;
        out[0] = (uint8_t)h, out[1] = (uint8_t)(h >> 8);
        const __m512 vid = _mm512_set1_ps(id), half8 = _mm512_set1_ps(8.5f);
        const __m512i fifteen = _mm512_set1_epi32(15);
        __m512i qa = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(a, vid), half8)), fifteen);
        __m512i qc = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(c, vid), half8)), fifteen);
        __m128i lo = _mm512_cvtepi32_epi8(qa), hi = _mm512_cvtepi32_epi8(qc);
        _mm_storeu_si128((__m128i *)(void *)(out + 2), _mm_or_si128(lo, _mm_slli_epi16(hi, 4)));
    }
    return RQ_OK;
}

static void q4_0_decode_avx512(const uint8_t *in, int n, float *x) {
    for (int b = 0; b < n / 32; b++, in += 18, x += 32) {
        __m512 dd = _mm512_set1_ps(rq_f16_to_f32((uint16_t)(in[0] | (in[1] << 8))));
        __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(in + 2));
        __m512i lo = _mm512_cvtepu8_epi32(_mm_and_si128(raw, _mm_set1_epi8(15)));
        __m512i hi = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(15)));
        const __m512i eight = _mm512_set1_epi32(8);
        _mm512_storeu_ps(x, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(lo, eight)), dd));
        _mm512_storeu_ps(x + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(hi, eight)), dd));
    }
}

/* y = x·s, any alias */
static void scale_avx512(const float *x, float s, float *y, int n) { scale_signs(x, s, NULL, y, n); }

/* the reference, overridden by every slot this level implements */
RQ_KERNELS_OVERRIDE_BEGIN
const rq_kernels rq__kernels_avx512 = {RQ_KERNELS_REF, RQ_KERNELS_X86(avx512),
                                       .decode_tcq_n = rq__decode_tcq_n_avx512, .tcq_encode = rq__tcq_encode_avx512,
                                       .decode_tcq8_n = rq__decode_tcq8_n_avx512,
                                       .accum_mse_n = rq__accum_mse_n_avx512,
                                       .scores_mse_n = rq__scores_mse_n_avx512};
RQ_KERNELS_OVERRIDE_END
