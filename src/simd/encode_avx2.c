/*
 * encode_avx2.c — AVX2 + F16C encode/decode kernels (simd/kernels.h),
 * bit-exact with the scalar reference (src/quant.c, src/rotation*.c): the
 * same float operations in the same order, no FMA.
 *
 * The 16 interleaved partial sums of rq__sumsq_ref / rq__dot_ref are two ymm
 * accumulators (lanes 0–7 and 8–15); their sum is the tree's w = 8 step.
 * Partial vectors: vmaskmovps (fault-free masked loads and stores) for the
 * reductions and rotations; the elementwise kernels hand the last n mod 8
 * (or mod 32) values to the reference, whose output there starts on a byte
 * boundary.
 *
 *   hadamard  butterflies with strides 1, 2, 4 inside a register (permute,
 *             add, sub, blend), larger strides across registers in L1
 *   dense     y = Πx vectorized over outputs with rows of Πᵀ
 *   blocks    planar / iso with per-lane coefficients; rotor as 3×3
 *             matrices in place (vpermps + blends bring each lane's block)
 *   quantize  branch-free binary search over the bounds with vpermps (two
 *             8-entry tables blended for 4 bits; for 5 bits tables holding
 *             only the bounds each step can probe, ≤ 16 entries), packing by
 *             vpmaddubsw / vpmaddwd of neighbouring codes
 *   unpack    8 codes from one word shifted per lane; 5 bits: a byte shuffle
 *             gives each lane the two bytes its code spans; the centroid
 *             lookup blends 2 (4 bits) or 4 (5 bits) 8-entry vpermps
 *   fp16      F16C (round to nearest even = rq_f32_to_f16); decode fixes up
 *             signaling NaNs, which the hardware quiets
 *   q8_0/q4_0 as encode_avx512.c, 8 lanes at a time; int8 results are the
 *             low bytes of the int32 (truncation, as the reference's casts)
 *   fused     MSE encode for d % 32 == 0, b = 1..5 (encode_mse): one
 *             function per (bits, rotation) through an L1 buffer, no
 *             per-kernel passes
 */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>

/* lanes < n set (n clamped to 0..8), for vmaskmovps */
static inline __m256i lanes8(int n) {
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline uint16_t f16_bits(float f) { return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

static inline __m256 sign_bit8(void) { return _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)); }

/* ---- reductions ---------------------------------------------------------- */
/* lo = partial sums 0–7, hi = 8–15: the tree w = 8, 4, 2, 1 */
static inline float tree16(__m256 lo, __m256 hi) {
    __m256 a = _mm256_add_ps(lo, hi);
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

/* exponent all ones (Inf/NaN) in any lane → nonzero lanes */
static inline __m256i nonfinite8(__m256 v) {
    const __m256i e = _mm256_set1_epi32(0x7f800000);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(v), e), e);
}

static float sumsq_finite_avx2(const float *x, int n, bool *finite) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    __m256i bad = _mm256_setzero_si256();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        bad = _mm256_or_si256(bad, _mm256_or_si256(nonfinite8(a), nonfinite8(b)));
        lo = _mm256_add_ps(lo, _mm256_mul_ps(a, a));
        hi = _mm256_add_ps(hi, _mm256_mul_ps(b, b));
    }
    if (i < n) { /* masked lanes load +0: acc + (+0) = acc, acc is never −0 */
        __m256 a = _mm256_maskload_ps(x + i, lanes8(n - i)), b = _mm256_maskload_ps(x + i + 8, lanes8(n - i - 8));
        bad = _mm256_or_si256(bad, _mm256_or_si256(nonfinite8(a), nonfinite8(b)));
        lo = _mm256_add_ps(lo, _mm256_mul_ps(a, a));
        hi = _mm256_add_ps(hi, _mm256_mul_ps(b, b));
    }
    *finite = _mm256_testz_si256(bad, bad);
    return tree16(lo, hi);
}

static float sumsq_avx2(const float *x, int n) {
    bool f;
    return sumsq_finite_avx2(x, n, &f);
}

static bool all_finite_avx2(const float *x, int n) {
    __m256i bad = _mm256_setzero_si256();
    int i = 0;
    for (; i + 8 <= n; i += 8) bad = _mm256_or_si256(bad, nonfinite8(_mm256_loadu_ps(x + i)));
    if (i < n) bad = _mm256_or_si256(bad, nonfinite8(_mm256_maskload_ps(x + i, lanes8(n - i))));
    return _mm256_testz_si256(bad, bad);
}

static void matvec_rows_avx2(const float *m, int n_rows, int n, const float *v, float *out) {
    int nf = n & ~15;
    __m256i t0 = lanes8(n - nf), t1 = lanes8(n - nf - 8);
    for (int i = 0; i < n_rows; i++) {
        const float *row = m + (size_t)i * (size_t)n;
        __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
        for (int j = 0; j < nf; j += 16) {
            lo = _mm256_add_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(v + j)));
            hi = _mm256_add_ps(hi, _mm256_mul_ps(_mm256_loadu_ps(row + j + 8), _mm256_loadu_ps(v + j + 8)));
        }
        if (nf < n) {
            lo = _mm256_add_ps(lo, _mm256_mul_ps(_mm256_maskload_ps(row + nf, t0), _mm256_maskload_ps(v + nf, t0)));
            hi = _mm256_add_ps(hi, _mm256_mul_ps(_mm256_maskload_ps(row + nf + 8, t1), _mm256_maskload_ps(v + nf + 8, t1)));
        }
        out[i] = tree16(lo, hi);
    }
}

/* k vectors, row by row, their chains side by side (see encode_avx512.c) */
static inline __attribute__((always_inline)) void rows_k(const float *m, int n_rows, int n, const float *v, float *out,
                                                         const int K) {
    int nf = n & ~15;
    __m256i t0 = lanes8(n - nf), t1 = lanes8(n - nf - 8);
    for (int i = 0; i < n_rows; i++) {
        const float *row = m + (size_t)i * (size_t)n;
        __m256 lo[4], hi[4];
#pragma GCC unroll 4
        for (int t = 0; t < K; t++) lo[t] = hi[t] = _mm256_setzero_ps();
        for (int j = 0; j < nf; j += 16) {
            __m256 r0 = _mm256_loadu_ps(row + j), r1 = _mm256_loadu_ps(row + j + 8);
#pragma GCC unroll 4
            for (int t = 0; t < K; t++) {
                lo[t] = _mm256_add_ps(lo[t], _mm256_mul_ps(r0, _mm256_loadu_ps(v + (size_t)t * n + j)));
                hi[t] = _mm256_add_ps(hi[t], _mm256_mul_ps(r1, _mm256_loadu_ps(v + (size_t)t * n + j + 8)));
            }
        }
        if (nf < n) {
            __m256 r0 = _mm256_maskload_ps(row + nf, t0), r1 = _mm256_maskload_ps(row + nf + 8, t1);
#pragma GCC unroll 4
            for (int t = 0; t < K; t++) {
                lo[t] = _mm256_add_ps(lo[t], _mm256_mul_ps(r0, _mm256_maskload_ps(v + (size_t)t * n + nf, t0)));
                hi[t] = _mm256_add_ps(hi[t], _mm256_mul_ps(r1, _mm256_maskload_ps(v + (size_t)t * n + nf + 8, t1)));
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < K; t++) out[(size_t)t * (size_t)n_rows + i] = tree16(lo[t], hi[t]);
    }
}

static void matvec_rows_k_avx2(const float *m, int n_rows, int n, const float *v, int k, float *out) {
    for (int t = 0; t < k; t += 4) {
        const float *vt = v + (size_t)t * (size_t)n;
        float *ot = out + (size_t)t * (size_t)n_rows;
        switch (k - t) {
        case 1: rows_k(m, n_rows, n, vt, ot, 1); break;
        case 2: rows_k(m, n_rows, n, vt, ot, 2); break;
        case 3: rows_k(m, n_rows, n, vt, ot, 3); break;
        default: rows_k(m, n_rows, n, vt, ot, 4); break;
        }
    }
}

/* y_i = Σ_j mt[j·n + i] v_j: NR accumulators of 8 outputs (last one masked),
 * j increasing from +0. */
static inline __attribute__((always_inline)) void cols_block(const float *mt, int n, const float *v, float *y, int i0,
                                                             const int NR, __m256i last) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int r = 0; r < NR; r++) acc[r] = _mm256_setzero_ps();
    const float *row = mt + i0;
    for (int j = 0; j < n; j++, row += n) {
        __m256 vj = _mm256_set1_ps(v[j]);
#pragma GCC unroll 8
        for (int r = 0; r < NR - 1; r++) acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(_mm256_loadu_ps(row + 8 * r), vj));
        acc[NR - 1] = _mm256_add_ps(acc[NR - 1], _mm256_mul_ps(_mm256_maskload_ps(row + 8 * (NR - 1), last), vj));
    }
#pragma GCC unroll 8
    for (int r = 0; r < NR - 1; r++) _mm256_storeu_ps(y + i0 + 8 * r, acc[r]);
    _mm256_maskstore_ps(y + i0 + 8 * (NR - 1), last, acc[NR - 1]);
}

static void matvec_cols_avx2(const float *mt, int n, const float *v, float *y) {
    for (int i0 = 0; i0 < n; i0 += 64) {
        int rem = n - i0 < 64 ? n - i0 : 64, nr = (rem + 7) / 8;
        __m256i last = lanes8(rem - 8 * (nr - 1));
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
/* strides 1, 2, 4 in one register: lanes with bit h set take p − v
 * (= x_j − x_{j+h}), the others v + p */
static inline __m256 fwht8(__m256 v) {
    __m256 p = _mm256_permute_ps(v, 0xB1);
    v = _mm256_blend_ps(_mm256_add_ps(v, p), _mm256_sub_ps(p, v), 0xAA);
    p = _mm256_permute_ps(v, 0x4E);
    v = _mm256_blend_ps(_mm256_add_ps(v, p), _mm256_sub_ps(p, v), 0xCC);
    p = _mm256_permute2f128_ps(v, v, 0x01);
    return _mm256_blend_ps(_mm256_add_ps(v, p), _mm256_sub_ps(p, v), 0xF0);
}

/* butterflies over elements of w floats, strides h0, 2h0, … < n */
static void fwht_wide_avx2(float *x, int n, int w, int h0) {
    for (int h = h0; h < n; h <<= 1) {
        int L = h * w;
        for (int i = 0; i < n; i += 2 * h) {
            float *a = x + (size_t)i * w, *b = a + L;
            int t = 0;
            for (; t + 8 <= L; t += 8) {
                __m256 u = _mm256_loadu_ps(a + t), v = _mm256_loadu_ps(b + t);
                _mm256_storeu_ps(a + t, _mm256_add_ps(u, v));
                _mm256_storeu_ps(b + t, _mm256_sub_ps(u, v));
            }
            for (; t < L; t++) {
                float u = a[t], v = b[t];
                a[t] = u + v;
                b[t] = u - v;
            }
        }
    }
}

/* y = (x·s)·σ, or x·s without signs, over n floats, any alias */
static void scale_signs(const float *x, float s, const float *signs, float *y, int n) {
    const __m256 vs = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 u = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        if (signs) u = _mm256_mul_ps(u, _mm256_loadu_ps(signs + i));
        _mm256_storeu_ps(y + i, u);
    }
    if (i < n) {
        __m256i m = lanes8(n - i);
        __m256 u = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), vs);
        if (signs) u = _mm256_mul_ps(u, _mm256_maskload_ps(signs + i, m));
        _mm256_maskstore_ps(y + i, m, u);
    }
}

static void hadamard(const rq_rotation *r, const float *x, float s, float *y, bool inverse) {
    int d = r->n_dims, m = r->n_odd, p = r->n_pow2, h0 = 1;
    if (!inverse) {
        scale_signs(x, s, r->signs, y, d);
        if (m > 1) rq__hadamard_odd(r, y, false);
    } else if (y != x) {
        memcpy(y, x, sizeof(float) * (size_t)d);
    }
    if (m == 1 && p >= 8) { /* strides 1, 2, 4 inside registers */
        for (int i = 0; i < d; i += 8) _mm256_storeu_ps(y + i, fwht8(_mm256_loadu_ps(y + i)));
        h0 = 8;
    }
    fwht_wide_avx2(y, p, m, h0);
    scale_signs(y, r->h_scale, NULL, y, d);
    if (inverse) {
        if (m > 1) rq__hadamard_odd(r, y, true);
        scale_signs(y, 1.0f, r->signs, y, d); /* ·1 is exact: only the signs */
    }
}

/* ---- block rotations (see encode_avx512.c for the algebra) ----------------- */
static void planar_blocks(const rq_rotation *r, float *y, bool inverse) {
    const int n = 2 * (r->n_dims / 2), L = rq__simd_lanes(r);
    const float *fb = r->simd_coef, *cc = fb + L, *si = cc + L;
    for (int i = 0; i < n; i += 8) {
        __m256i m = lanes8(n - i);
        __m256 x = _mm256_maskload_ps(y + i, m), o;
        if (!inverse)
            o = _mm256_add_ps(_mm256_mul_ps(_mm256_maskload_ps(r->block_params + i, m), _mm256_moveldup_ps(x)),
                              _mm256_mul_ps(_mm256_loadu_ps(fb + i), _mm256_movehdup_ps(x)));
        else
            o = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(cc + i), x),
                              _mm256_mul_ps(_mm256_loadu_ps(si + i), _mm256_permute_ps(x, 0xB1)));
        _mm256_maskstore_ps(y + i, m, o);
    }
}

static void iso_blocks(const rq_rotation *r, float *y, bool inverse) {
    const int n = 4 * (r->n_dims / 4), L = rq__simd_lanes(r);
    const float *A = r->simd_coef + (inverse ? 8 : 0) * L, *Q = r->simd_coef + (inverse ? 12 : 4) * L;
    for (int i = 0; i < n; i += 8) {
        __m256i m = lanes8(n - i);
        __m256 x = _mm256_maskload_ps(y + i, m);
        __m256 t = _mm256_mul_ps(_mm256_loadu_ps(A + i), x);
        t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_loadu_ps(A + L + i), _mm256_permute_ps(x, 0xB1)));
        t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_loadu_ps(A + 2 * L + i), _mm256_permute_ps(x, 0x4E)));
        t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_loadu_ps(A + 3 * L + i), _mm256_permute_ps(x, 0x1B)));
        __m256 o = _mm256_mul_ps(_mm256_permute_ps(t, 0x00), _mm256_loadu_ps(Q + i));
        o = _mm256_add_ps(o, _mm256_mul_ps(_mm256_permute_ps(t, 0x55), _mm256_loadu_ps(Q + L + i)));
        o = _mm256_add_ps(o, _mm256_mul_ps(_mm256_permute_ps(t, 0xAA), _mm256_loadu_ps(Q + 2 * L + i)));
        o = _mm256_add_ps(o, _mm256_mul_ps(_mm256_permute_ps(t, 0xFF), _mm256_loadu_ps(Q + 3 * L + i)));
        _mm256_maskstore_ps(y + i, m, o);
    }
}

/* rotor: 3×3 matrices on the blocks in place (see encode_avx512.c). 24
 * floats (3 registers) hold 8 whole blocks, so groups of 3 registers are
 * independent; lane f needs float 3⌊f/3⌋ + j of its group: vpermps of one or
 * two registers and immediate blends. */
#define PERM _mm256_permutevar8x32_ps
#define IDX(...) _mm256_setr_epi32(__VA_ARGS__)
static inline void rotor_group(__m256 a, __m256 b, __m256 e, const float *c, int L, __m256 *oa, __m256 *ob, __m256 *oe) {
    /* components j = 0, 1, 2 for the lanes of a (floats 0–7), b (8–15), e (16–23) */
    __m256 a0 = PERM(a, IDX(0, 0, 0, 3, 3, 3, 6, 6)), a1 = PERM(a, IDX(1, 1, 1, 4, 4, 4, 7, 7));
    __m256 a2 = _mm256_blend_ps(PERM(a, IDX(2, 2, 2, 5, 5, 5, 0, 0)), PERM(b, IDX(2, 2, 2, 5, 5, 5, 0, 0)), 0xc0);
    __m256 b0 = _mm256_blend_ps(PERM(b, IDX(6, 1, 1, 1, 4, 4, 4, 7)), PERM(a, IDX(6, 1, 1, 1, 4, 4, 4, 7)), 0x01);
    __m256 b1 = _mm256_blend_ps(_mm256_blend_ps(PERM(b, IDX(7, 2, 2, 2, 5, 5, 5, 0)), PERM(a, IDX(7, 2, 2, 2, 5, 5, 5, 0)), 0x01),
                                PERM(e, IDX(7, 2, 2, 2, 5, 5, 5, 0)), 0x80);
    __m256 b2 = _mm256_blend_ps(PERM(b, IDX(0, 3, 3, 3, 6, 6, 6, 1)), PERM(e, IDX(0, 3, 3, 3, 6, 6, 6, 1)), 0x80);
    __m256 e0 = _mm256_blend_ps(PERM(e, IDX(7, 7, 2, 2, 2, 5, 5, 5)), PERM(b, IDX(7, 7, 2, 2, 2, 5, 5, 5)), 0x03);
    __m256 e1 = PERM(e, IDX(0, 0, 3, 3, 3, 6, 6, 6)), e2 = PERM(e, IDX(1, 1, 4, 4, 4, 7, 7, 7));
#define ROW(x0, x1, x2, k)                                                                                               \
    _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(c + k), x0), _mm256_mul_ps(_mm256_loadu_ps(c + L + k), x1)), \
                  _mm256_mul_ps(_mm256_loadu_ps(c + 2 * L + k), x2))
    *oa = ROW(a0, a1, a2, 0);
    *ob = ROW(b0, b1, b2, 8);
    *oe = ROW(e0, e1, e2, 16);
#undef ROW
}
#undef PERM
#undef IDX

static void rotor_blocks(const rq_rotation *r, float *y, bool inverse) {
    const int n = 3 * (r->n_dims / 3), L = rq__simd_lanes(r);
    const float *c = r->simd_coef + (inverse ? 3 : 0) * L;
    __m256 a, b, e;
    int i = 0;
    for (; i + 24 <= n; i += 24) {
        rotor_group(_mm256_loadu_ps(y + i), _mm256_loadu_ps(y + i + 8), _mm256_loadu_ps(y + i + 16), c + i, L, &a, &b, &e);
        _mm256_storeu_ps(y + i, a), _mm256_storeu_ps(y + i + 8, b), _mm256_storeu_ps(y + i + 16, e);
    }
    if (i < n) { /* a partial group: whole blocks, masked */
        const __m256i m0 = lanes8(n - i), m1 = lanes8(n - i - 8), m2 = lanes8(n - i - 16);
        rotor_group(_mm256_maskload_ps(y + i, m0), _mm256_maskload_ps(y + i + 8, m1), _mm256_maskload_ps(y + i + 16, m2), c + i,
                    L, &a, &b, &e);
        _mm256_maskstore_ps(y + i, m0, a), _mm256_maskstore_ps(y + i + 8, m1, b), _mm256_maskstore_ps(y + i + 16, m2, e);
    }
}

/* ---- codes ----------------------------------------------------------------- */
/* Branch-free binary search (see encode_avx512.c): step 2^l probes
 * bounds[idx + 2^l − 1] = tab[l][idx]; 16-entry tables (4 bits) are two
 * 8-entry halves chosen by idx bit 3.
 * 5 bits: at step l, idx is a multiple of 2^(l+1), so only 16 >> l bounds
 * can be probed: lo[l][j] = bounds[j·2^(l+1) + 2^l − 1] is read at
 * j = idx >> (l+1) — one 8-entry table for l ≥ 1, two halves (lo, hi)
 * chosen by j bit 3 for l = 0. Gathered once per call. */
typedef struct {
    __m256 lo[4], hi[3], first;
} search_tabs;

static inline __attribute__((always_inline)) void search_init(search_tabs *st, const float *bounds, const int B) {
    const int nb = (1 << B) - 1;
    if (B == 5) {
        st->lo[0] = _mm256_i32gather_ps(bounds, _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), 4);
        st->hi[0] = _mm256_i32gather_ps(bounds, _mm256_setr_epi32(16, 18, 20, 22, 24, 26, 28, 30), 4);
        st->lo[1] = _mm256_i32gather_ps(bounds, _mm256_setr_epi32(1, 5, 9, 13, 17, 21, 25, 29), 4);
        st->lo[2] = _mm256_i32gather_ps(bounds, _mm256_setr_epi32(3, 11, 19, 27, 3, 3, 3, 3), 4); /* lanes ≥ 4 unused */
        st->lo[3] = _mm256_i32gather_ps(bounds, _mm256_setr_epi32(7, 23, 7, 7, 7, 7, 7, 7), 4);   /* lanes ≥ 2 unused */
        st->first = _mm256_set1_ps(bounds[15]);
        return;
    }
    for (int l = 0; l < B - 1; l++) {
        int off = (1 << l) - 1;
        st->lo[l] = _mm256_maskload_ps(bounds + off, lanes8(nb - off));
        st->hi[l] = _mm256_maskload_ps(bounds + off + 8, lanes8(nb - off - 8));
    }
    st->first = _mm256_set1_ps(bounds[(1 << (B - 1)) - 1]);
}

static inline __attribute__((always_inline)) __m256i search8(const search_tabs *st, __m256 y, const int B) {
    __m256i idx = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(st->first, y, _CMP_LT_OQ)), _mm256_set1_epi32(1 << (B - 1)));
#pragma GCC unroll 4
    for (int l = B - 2; l >= 0; l--) {
        __m256 probe;
        if (B == 5) {
            __m256i j = _mm256_srli_epi32(idx, l + 1);
            probe = _mm256_permutevar8x32_ps(st->lo[l], j);
            if (l == 0)
                probe = _mm256_blendv_ps(probe, _mm256_permutevar8x32_ps(st->hi[0], j),
                                         _mm256_castsi256_ps(_mm256_slli_epi32(j, 28)));
        } else {
            probe = _mm256_permutevar8x32_ps(st->lo[l], idx);
        }
        if (B == 4)
            probe = _mm256_blendv_ps(probe, _mm256_permutevar8x32_ps(st->hi[l], idx),
                                     _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
        __m256i gt = _mm256_castps_si256(_mm256_cmp_ps(probe, y, _CMP_LT_OQ));
        idx = _mm256_add_epi32(idx, _mm256_and_si256(gt, _mm256_set1_epi32(1 << l)));
    }
    return idx;
}

/* 32 codes of B = 2..5 bits from y (4 registers) → 4B bytes */
static inline __attribute__((always_inline)) void qpack32s(const search_tabs *st, const float *y, uint8_t *out, const int B,
                                                           const bool scale, __m256 hs) {
#define LD(k) (scale ? _mm256_mul_ps(_mm256_loadu_ps(y + (k)), hs) : _mm256_loadu_ps(y + (k)))
    __m256i c0 = search8(st, LD(0), B), c1 = search8(st, LD(8), B);
    __m256i c2 = search8(st, LD(16), B), c3 = search8(st, LD(24), B);
#undef LD
    /* dword 4h + s (h = 128-bit half) = codes 8s + 4h .. + 3 → natural order */
    __m256i z = _mm256_packus_epi16(_mm256_packus_epi32(c0, c1), _mm256_packus_epi32(c2, c3));
    z = _mm256_permutevar8x32_epi32(z, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    if (B == 5) { /* 8 codes = 40 bits per qword: its low 5 bytes */
        __m256i t = _mm256_madd_epi16(_mm256_maddubs_epi16(z, _mm256_set1_epi16(0x2001)), _mm256_set1_epi32(0x04000001));
        t = _mm256_or_si256(_mm256_and_si256(t, _mm256_set1_epi64x(0xFFFFF)), /* low dword + high dword << 20 */
                            _mm256_and_si256(_mm256_srli_epi64(t, 12), _mm256_set1_epi64x(0xFFFFF00000)));
        uint64_t w[4] = {(uint64_t)_mm256_extract_epi64(t, 0), (uint64_t)_mm256_extract_epi64(t, 1),
                         (uint64_t)_mm256_extract_epi64(t, 2), (uint64_t)_mm256_extract_epi64(t, 3)};
        for (int k = 0; k < 4; k++) memcpy(out + 5 * k, &w[k], 5); /* little-endian: the low 5 bytes */
    } else if (B == 2) {
        __m256i t = _mm256_madd_epi16(_mm256_maddubs_epi16(z, _mm256_set1_epi16(0x0401)), _mm256_set1_epi32(0x00100001));
        t = _mm256_shuffle_epi8(t, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12,
                                                    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
        uint32_t w0 = (uint32_t)_mm256_extract_epi32(t, 0), w1 = (uint32_t)_mm256_extract_epi32(t, 4);
        memcpy(out, &w0, 4), memcpy(out + 4, &w1, 4);
    } else if (B == 4) {
        __m256i t = _mm256_maddubs_epi16(z, _mm256_set1_epi16(0x1001));
        t = _mm256_permute4x64_epi64(_mm256_packus_epi16(t, t), 0x08); /* qwords 0, 2 */
        _mm_storeu_si128((__m128i *)(void *)out, _mm256_castsi256_si128(t));
    } else {
        __m256i t = _mm256_madd_epi16(_mm256_maddubs_epi16(z, _mm256_set1_epi16(0x0801)), _mm256_set1_epi32(0x00400001));
        t = _mm256_or_si256(t, _mm256_srli_epi64(t, 20)); /* 24 bits per qword */
        t = _mm256_shuffle_epi8(t, _mm256_setr_epi8(0, 1, 2, 8, 9, 10, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 2, 8, 9,
                                                    10, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
        uint64_t w0 = (uint64_t)_mm256_extract_epi64(t, 0), w1 = (uint64_t)_mm256_extract_epi64(t, 2);
        memcpy(out, &w0, 6), memcpy(out + 6, &w1, 6);
    }
}

static inline __attribute__((always_inline)) void qpack32(const search_tabs *st, const float *y, uint8_t *out, const int B) {
    qpack32s(st, y, out, B, false, _mm256_setzero_ps());
}

static inline __attribute__((always_inline)) void qpack(const float *y, int n, const float *bounds, uint8_t *out,
                                                        const int B) {
    search_tabs st;
    search_init(&st, bounds, B);
    int i = 0;
    for (; i + 32 <= n; i += 32) qpack32(&st, y + i, out + (size_t)i / 8 * B, B);
    if (i < n) rq__quantize_pack_ref(y + i, n - i, B, bounds, out + (size_t)i / 8 * B);
}

static void quantize_pack_avx2(const float *y, int n, int bits, const float *bounds, uint8_t *out) {
    switch (bits) {
    case 2: qpack(y, n, bounds, out, 2); return;
    case 3: qpack(y, n, bounds, out, 3); return;
    case 4: qpack(y, n, bounds, out, 4); return;
    case 5: qpack(y, n, bounds, out, 5); return;
    default: break;
    }
    const __m256 b0 = _mm256_set1_ps(bounds[0]);
    int i = 0;
    for (; i + 8 <= n; i += 8) out[i / 8] = (uint8_t)_mm256_movemask_ps(_mm256_cmp_ps(b0, _mm256_loadu_ps(y + i), _CMP_LT_OQ));
    if (i < n) rq__quantize_pack_ref(y + i, n - i, 1, bounds, out + i / 8);
}

/* centroids of the 8 codes of B bits in the B bytes at p */
static inline __attribute__((always_inline)) __m256 lookup8(const uint8_t *p, __m256 lo, __m256 hi, const int B) {
    uint32_t w = 0;
    memcpy(&w, p, (size_t)B);
    __m256i idx = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_set1_epi32((int)w), _mm256_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B)),
        _mm256_set1_epi32((1 << B) - 1));
    __m256 c = _mm256_permutevar8x32_ps(lo, idx);
    if (B == 4) c = _mm256_blendv_ps(c, _mm256_permutevar8x32_ps(hi, idx), _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
    return c;
}

/* 5 bits: the 8 codes in the 5 bytes at p (code k: byte ⌊5k/8⌋ from bit
 * 5k mod 8, into the next byte when that is > 3), each lane given its two
 * bytes by a shuffle; centroids from 4 tables of 8 blended on bits 3 and 4.
 * (The same unpacking is in attn_avx2.c.) */
static inline __m256 lookup8_b5(const uint8_t *p, const __m256 t[4]) {
    uint32_t lo; /* exactly the 5 bytes, assembled in a register (a memcpy into a
                  * stack word defeats store forwarding) */
    memcpy(&lo, p, 4);
    const uint64_t w = lo | (uint64_t)p[4] << 32;
    __m256i idx = _mm256_shuffle_epi8(_mm256_set1_epi64x((long long)w),
                                      _mm256_setr_epi8(0, 1, -1, -1, 0, 1, -1, -1, 1, 2, -1, -1, 1, 2, -1, -1, 2, 3, -1, -1,
                                                       3, 4, -1, -1, 3, 4, -1, -1, 4, 5, -1, -1));
    idx = _mm256_and_si256(_mm256_srlv_epi32(idx, _mm256_setr_epi32(0, 5, 2, 7, 4, 1, 6, 3)), _mm256_set1_epi32(31));
    __m256 b3 = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)), b4 = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 27));
    __m256 c01 = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t[0], idx), _mm256_permutevar8x32_ps(t[1], idx), b3);
    __m256 c23 = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t[2], idx), _mm256_permutevar8x32_ps(t[3], idx), b3);
    return _mm256_blendv_ps(c01, c23, b4);
}

static inline __attribute__((always_inline)) void unpack_scale_b(const uint8_t *in, int n, const float *cent, float s,
                                                                 float *y, const int B) {
    const __m256 vs = _mm256_set1_ps(s);
    int i = 0;
    if (B == 5) {
        const __m256 t[4] = {_mm256_loadu_ps(cent), _mm256_loadu_ps(cent + 8), _mm256_loadu_ps(cent + 16),
                             _mm256_loadu_ps(cent + 24)};
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(vs, lookup8_b5(in + (size_t)i / 8 * B, t)));
    } else {
        const __m256 lo = _mm256_maskload_ps(cent, lanes8(1 << B)), hi = _mm256_maskload_ps(cent + 8, lanes8((1 << B) - 8));
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(vs, lookup8(in + (size_t)i / 8 * B, lo, hi, B)));
    }
    if (i < n) rq__unpack_scale_ref(in + (size_t)i / 8 * B, n - i, B, cent, s, y + i);
}

static void unpack_scale_avx2(const uint8_t *in, int n, int bits, const float *cent, float s, float *y) {
    switch (bits) {
    case 1: unpack_scale_b(in, n, cent, s, y, 1); return;
    case 2: unpack_scale_b(in, n, cent, s, y, 2); return;
    case 3: unpack_scale_b(in, n, cent, s, y, 3); return;
    case 4: unpack_scale_b(in, n, cent, s, y, 4); return;
    default: unpack_scale_b(in, n, cent, s, y, 5); return;
    }
}

static void pack_signs_avx2(const float *v, int n, uint8_t *out) {
    const __m256 z = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) out[i / 8] = (uint8_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v + i), z, _CMP_GE_OQ));
    if (i < n) rq__pack_signs_ref(v + i, n - i, out + i / 8);
}

/* ---- fused MSE encode ----------------------------------------------------------
 * One vector through the whole pipeline in one function, for d % 32 == 0, no
 * norm correction, rotation hadamard (d a power of two), rotor, planar or
 * iso: Σx² and the checks, u = x·(1/n) (·σ and the in-register butterflies
 * for hadamard) into an L1 buffer, the rotation there, then h_scale (hadamard),
 * codes and packing in one pass. The reference's operations, without the
 * separate kernel passes. */
static inline __attribute__((always_inline)) rq_status mse_one(const rq_quantizer *q, const float *x, uint8_t *blk,
                                                               const int B, const rq_rot_kind K) {
    const rq_rotation *r = q->rot;
    const int d = q->n_dims;
    bool finite;
    float norm = sqrtf(sumsq_finite_avx2(x, d, &finite));
    if (!finite) return RQ_ERR_NONFINITE;
    uint16_t h = f16_bits(norm);
    if ((h & 0x7c00u) == 0x7c00u) return RQ_ERR_RANGE;
    if (norm == 0.0f) {
        memset(blk, 0, q->bytes);
        return RQ_OK;
    }
    float y[RQ_MAX_DIMS] __attribute__((aligned(32)));
    const __m256 inv = _mm256_set1_ps(1.0f / norm);
    if (K == RQ_ROT_HADAMARD) {
        for (int i = 0; i < d; i += 8)
            _mm256_store_ps(y + i, fwht8(_mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv), _mm256_loadu_ps(r->signs + i))));
        fwht_wide_avx2(y, d, 1, 8);
    } else {
        for (int i = 0; i < d; i += 8) _mm256_store_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
        rq__rotate_blocks(&rq__kernels_avx2, r, y, false);
    }
    uint8_t *out = blk + 2;
    const __m256 hs = _mm256_set1_ps(r->h_scale);
    if (B == 1) {
        const __m256 b0 = _mm256_set1_ps(q->cb.bounds[0]);
        for (int i = 0; i < d; i += 8) {
            __m256 v = _mm256_load_ps(y + i);
            if (K == RQ_ROT_HADAMARD) v = _mm256_mul_ps(v, hs);
            out[i / 8] = (uint8_t)_mm256_movemask_ps(_mm256_cmp_ps(b0, v, _CMP_LT_OQ));
        }
    } else {
        search_tabs st;
        search_init(&st, q->cb.bounds, B);
        for (int i = 0; i < d; i += 32) qpack32s(&st, y + i, out + i / 8 * B, B, K == RQ_ROT_HADAMARD, hs);
    }
    blk[0] = (uint8_t)h, blk[1] = (uint8_t)(h >> 8);
    return RQ_OK;
}

typedef rq_status (*one_fn)(const rq_quantizer *q, const float *x, uint8_t *blk);
#define ONE(B, K, NAME)                                                                                             \
    static rq_status one_##B##_##NAME(const rq_quantizer *q, const float *x, uint8_t *blk) { return mse_one(q, x, blk, B, K); }
#define ONE_K(B) ONE(B, RQ_ROT_HADAMARD, had) ONE(B, RQ_ROT_ROTOR, blk)
ONE_K(1)
ONE_K(2)
ONE_K(3)
ONE_K(4)
ONE_K(5)
/* [bits − 1][hadamard, any block-diagonal family] */
static const one_fn ONES[RQ_MAX_BITS][2] = {{one_1_had, one_1_blk}, {one_2_had, one_2_blk}, {one_3_had, one_3_blk},
                                            {one_4_had, one_4_blk}, {one_5_had, one_5_blk}};
#undef ONE_K
#undef ONE

static bool encode_mse_avx2(const rq_quantizer *q, const float *x, uint8_t *blk, size_t n_vec, size_t *n_done,
                            rq_status *st) {
    const rq_rotation *r = q->rot;
    const size_t d = (size_t)q->n_dims;
    if (q->traits->block != RQ_BLOCK_MSE || q->cfg.norm_correct || d % 32) return false;
    const bool had = r->kind == RQ_ROT_HADAMARD && r->n_odd == 1, blocks = rq__rot_ops(r->kind)->block != 0;
    if (!had && !blocks) return false;
    const one_fn f = ONES[q->mse_bits - 1][had ? 0 : 1];
    *st = RQ_OK;
    size_t v = 0;
    for (; v < n_vec; v++) {
        for (size_t b = 0; b < d * sizeof(float); b += 64)
            __builtin_prefetch((const char *)(x + (v + RQ_PREFETCH_VECS) * d) + b);
        if ((*st = f(q, x + v * d, blk + v * q->bytes)) != RQ_OK) break;
    }
    *n_done = v;
    return true;
}

/* ---- fp16 ------------------------------------------------------------------ */
static rq_status f16_encode_avx2(const float *x, int n, uint8_t *out) {
    const __m128i e = _mm_set1_epi16(0x7c00);
    __m128i inf = _mm_setzero_si128();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        inf = _mm_or_si128(inf, _mm_cmpeq_epi16(_mm_and_si128(h, e), e));
        _mm_storeu_si128((__m128i *)(void *)(out + 2 * i), h);
    }
    if (!_mm_testz_si128(inf, inf)) return RQ_ERR_RANGE;
    return i < n ? rq__blocks[RQ_BLOCK_F16].encode_ref(x + i, n - i, out + 2 * i) : RQ_OK;
}

static void f16_decode_avx2(const uint8_t *in, int n, float *x) {
    const __m128i e = _mm_set1_epi16(0x7c00);
    __m128i special = _mm_setzero_si128();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(in + 2 * i));
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
        special = _mm_or_si128(special, _mm_cmpeq_epi16(_mm_and_si128(h, e), e));
    }
    /* Inf/NaN halves: the hardware quiets signaling NaNs, the format keeps
     * them; valid blocks have none, so they are redone only when seen */
    if (!_mm_testz_si128(special, special)) rq__blocks[RQ_BLOCK_F16].decode_ref(in, i, x);
    if (i < n) rq__blocks[RQ_BLOCK_F16].decode_ref(in + 2 * i, n - i, x + i);
}

/* ---- q8_0 / q4_0 (32 values = 4 registers) --------------------------------- */
static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}


/* roundf (half away from zero) of |t| < 2^23 */
static inline __m256i round_away(__m256 t) {
    const __m256 sb = sign_bit8();
    __m256 r = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_andnot_ps(sb, _mm256_sub_ps(t, r));
    __m256 up = _mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    r = _mm256_add_ps(r, _mm256_and_ps(up, _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(t, sb))));
    return _mm256_cvtps_epi32(r);
}

/* the low byte of each int32 of 4 registers (32 values) → 32 bytes */
static inline void store_low_bytes(uint8_t *out, __m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i m = _mm256_set1_epi32(0xff);
    __m256i z = _mm256_packus_epi16(_mm256_packus_epi32(_mm256_and_si256(a, m), _mm256_and_si256(b, m)),
                                    _mm256_packus_epi32(_mm256_and_si256(c, m), _mm256_and_si256(d, m)));
    _mm256_storeu_si256((__m256i *)(void *)out, _mm256_permutevar8x32_epi32(z, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

static rq_status q8_0_encode_avx2(const float *x, int n, uint8_t *out) {
    const __m256 sb = sign_bit8(), z = _mm256_setzero_ps();
    for (int b = 0; b < n / 32; b++, x += 32, out += 34) {
        __m256 v[4], mx = z;
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            mx = _mm256_max_ps(_mm256_andnot_ps(sb, v[k]), mx); /* NaN lanes keep mx (fmaxf) */
        }
        float amax = hmax8(mx);
        float dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
        uint16_t h = f16_bits(dd);
        if ((h & 0x7c00u) == 0x7c00u) return RQ_ERR_RANGE;
        out[0] = (uint8_t)h, out[1] = (uint8_t)(h >> 8);
        __m256 vid = _mm256_set1_ps(id);
        store_low_bytes(out + 2, round_away(_mm256_mul_ps(v[0], vid)), round_away(_mm256_mul_ps(v[1], vid)),
                        round_away(_mm256_mul_ps(v[2], vid)), round_away(_mm256_mul_ps(v[3], vid)));
    }
    return RQ_OK;
}

static void q8_0_decode_avx2(const uint8_t *in, int n, float *x) {
    for (int b = 0; b < n / 32; b++, in += 34, x += 32) {
        __m256 dd = _mm256_set1_ps(rq_f16_to_f32((uint16_t)(in[0] | (in[1] << 8))));
        for (int k = 0; k < 4; k++) {
            __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(in + 2 + 8 * k)));
            _mm256_storeu_ps(x + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(q), dd));
        }
    }
}

static rq_status q4_0_encode_avx2(const float *x, int n, uint8_t *out) {
    const __m256 sb = sign_bit8(), z = _mm256_setzero_ps();
    for (int b = 0; b < n / 32; b++, x += 32, out += 18) {
        __m256 v[4], av[4], mx = z;
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            av[k] = _mm256_andnot_ps(sb, v[k]);
            mx = _mm256_max_ps(av[k], mx);
        }
        float amax = hmax8(mx), max = 0.0f;
        if (amax != 0.0f) { /* the first value of largest magnitude */
            __m256 vm = _mm256_set1_ps(amax);
            uint32_t hit = 0;
            for (int k = 0; k < 4; k++) hit |= (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(av[k], vm, _CMP_EQ_OQ)) << (8 * k);
            max = x[__builtin_ctz(hit)];
        }
        float dd = max / -8.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
        uint16_t h = f16_bits(dd);
        if ((h & 0x7c00u) == 0x7c00u) return RQ_ERR_RANGE;
        out[0] = (uint8_t)h, out[1] = (uint8_t)(h >> 8);
        const __m256 vid = _mm256_set1_ps(id), half8 = _mm256_set1_ps(8.5f);
        const __m256i fifteen = _mm256_set1_epi32(15), m = _mm256_set1_epi32(0xff);
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_and_si256(_mm256_min_epi32(_mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v[k], vid), half8)), fifteen), m);
        /* byte j = q_j | q_{j+16} << 4 (low bytes: truncation as the reference's int8 cast) */
        __m256i lo = _mm256_packus_epi16(_mm256_packus_epi32(q[0], q[1]), _mm256_setzero_si256());
        __m256i hi = _mm256_packus_epi16(_mm256_packus_epi32(q[2], q[3]), _mm256_setzero_si256());
        __m256i w = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
        w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 3, 6, 7));
        _mm_storeu_si128((__m128i *)(void *)(out + 2), _mm256_castsi256_si128(w));
    }
    return RQ_OK;
}

static void q4_0_decode_avx2(const uint8_t *in, int n, float *x) {
    for (int b = 0; b < n / 32; b++, in += 18, x += 32) {
        __m256 dd = _mm256_set1_ps(rq_f16_to_f32((uint16_t)(in[0] | (in[1] << 8))));
        __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(in + 2));
        __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(15)), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(15));
        const __m256i eight = _mm256_set1_epi32(8);
        _mm256_storeu_ps(x, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(lo), eight)), dd));
        _mm256_storeu_ps(x + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), eight)), dd));
        _mm256_storeu_ps(x + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(hi), eight)), dd));
        _mm256_storeu_ps(x + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), eight)), dd));
    }
}

/* y = x·s, any alias */
static void scale_avx2(const float *x, float s, float *y, int n) { scale_signs(x, s, NULL, y, n); }

/* the reference, overridden by every slot this level implements */
RQ_KERNELS_OVERRIDE_BEGIN
const rq_kernels rq__kernels_avx2 = {RQ_KERNELS_REF, RQ_KERNELS_X86(avx2), .decode_tcq_n = rq__decode_tcq_n_avx2,
                                     .tcq_encode = rq__tcq_encode_avx2};
RQ_KERNELS_OVERRIDE_END
