/*
 * attn_avx2.c — AVX2 + FMA + F16C attention loops (attn_kernels.h). Codes:
 * 8 codes of b bits fill exactly b bytes, so each step loads them, broadcasts,
 * shifts lane i right by i·b and masks; the centroid lookup is vpermps over
 * an 8-entry table (b ≤ 3) or two tables blended on bit 3 (b = 4). 5 bits
 * (40 bits: more than one 32-bit word): a byte shuffle gives each lane the
 * two bytes its code spans, and four tables are blended on bits 3 and 4.
 * Tails (d mod 8) use the scalar reference.
 */
#include "attn_x86.h"

#include <math.h>

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 5 bits, as encode_avx2.c's lookup8_b5: code k in byte ⌊5k/8⌋ from bit
 * 5k mod 8, reaching into the next byte when that is > 3. */
static void decode_codes_b5(float *out, const uint8_t *codes, int d, const float *cent, float scale) {
    /* the scaled table in four registers: one multiply per entry, as the reference */
    const __m256 vs = _mm256_set1_ps(scale);
    const __m256 t0 = _mm256_mul_ps(vs, _mm256_loadu_ps(cent)), t1 = _mm256_mul_ps(vs, _mm256_loadu_ps(cent + 8)),
                 t2 = _mm256_mul_ps(vs, _mm256_loadu_ps(cent + 16)), t3 = _mm256_mul_ps(vs, _mm256_loadu_ps(cent + 24));
    const __m256i pick = _mm256_setr_epi8(0, 1, -1, -1, 0, 1, -1, -1, 1, 2, -1, -1, 1, 2, -1, -1, 2, 3, -1, -1, 3, 4, -1, -1,
                                          3, 4, -1, -1, 4, 5, -1, -1);
    const __m256i shifts = _mm256_setr_epi32(0, 5, 2, 7, 4, 1, 6, 3), mask = _mm256_set1_epi32(31);
    int d8 = d & ~7;
    for (int k = 0; 8 * k < d8; k++) {
        /* the 5 bytes assembled in a register: a memcpy into a zeroed stack
         * word would be reloaded across three stores (no store forwarding,
         * ~5× slower) */
        uint32_t lo;
        memcpy(&lo, codes + 5 * k, 4);
        const uint64_t w = lo | (uint64_t)codes[5 * k + 4] << 32;
        __m256i idx = _mm256_shuffle_epi8(_mm256_set1_epi64x((long long)w), pick);
        idx = _mm256_and_si256(_mm256_srlv_epi32(idx, shifts), mask);
        __m256 b3 = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)), b4 = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 27));
        __m256 c01 = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t0, idx), _mm256_permutevar8x32_ps(t1, idx), b3);
        __m256 c23 = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t2, idx), _mm256_permutevar8x32_ps(t3, idx), b3);
        _mm256_storeu_ps(out + 8 * k, _mm256_blendv_ps(c01, c23, b4));
    }
    if (d8 < d) rq__decode_codes_ref(out + d8, codes + (size_t)d8 * 5 / 8, d - d8, 5, cent, scale);
}

static inline __attribute__((always_inline)) void decode_codes_avx2(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale) {
    if (bits == 5) {
        decode_codes_b5(out, codes, d, cent, scale);
        return;
    }
    /* the table repeated every 2^b entries: vpermps reads index bits 0–2
     * (and bit 3 picks the b = 4 half), so the next codes' bits above a
     * code need no mask */
    float tab[16];
    for (int i = 0; i < 16; i++) tab[i] = scale * cent[i & ((1 << bits) - 1)];
    __m256 lo = _mm256_loadu_ps(tab), hi = _mm256_loadu_ps(tab + 8);
    __m256i shifts = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(bits));
    int d8 = d & ~7;
    for (int k = 0; 8 * k < d8; k++) {
        __m256i idx = _mm256_srlv_epi32(_mm256_set1_epi32((int)load_u32(codes + k * bits)), shifts);
        __m256 c = _mm256_permutevar8x32_ps(lo, idx);
        if (bits == 4)
            c = _mm256_blendv_ps(c, _mm256_permutevar8x32_ps(hi, idx), _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
        _mm256_storeu_ps(out + 8 * k, c);
    }
    if (d8 < d) rq__decode_codes_ref(out + d8, codes + (size_t)d8 * bits / 8, d - d8, bits, cent, scale);
}

void rq__decode_signs_avx2(float *out, const uint8_t *signs, int d, float scale) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256 v = _mm256_set1_ps(scale);
    int d8 = d & ~7;
    for (int j = 0; j < d8; j += 8) {
        __m256i m = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(signs[j >> 3]), bit), _mm256_setzero_si256());
        _mm256_storeu_ps(out + j, _mm256_xor_ps(v, _mm256_castsi256_ps(_mm256_slli_epi32(m, 31)))); /* bit 0 → −scale */
    }
    if (d8 < d) rq__decode_signs_ref(out + d8, signs + d8 / 8, d - d8, scale);
}

/* Batched over the tokens of a page run: the norm converted by F16C, the
 * loop-invariant constants of the decoder hoisted by inlining. */
void rq__decode_mse_n_avx2(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes, const float *ntab,
                               const float *cent) {
    for (int t = 0; t < n; t++, blk += stride, out += d) decode_codes_avx2(out, blk + off_codes, d, bits, cent, head_s(blk, ntab));
}

/* Instantiated per constant head count GN so accumulators stay in registers
 * (see attn_avx512.c). */
#define RQ_ALWAYS_INLINE static inline __attribute__((always_inline))

RQ_ALWAYS_INLINE void scores_gn(const int GN, const float *q, int ldq, const float *K, int n, int d, float *S, int lds) {
    int d8 = d & ~7;
    for (int t = 0; t < n; t++) {
        const float *k = K + (size_t)t * d;
        __m256 a[4];
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++) a[g] = _mm256_setzero_ps();
        for (int j = 0; j < d8; j += 8) {
            __m256 kv = _mm256_loadu_ps(k + j);
            #pragma GCC unroll 8
            for (int g = 0; g < GN; g++) a[g] = _mm256_fmadd_ps(_mm256_loadu_ps(q + (size_t)g * ldq + j), kv, a[g]);
        }
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++) {
            float s = hsum256(a[g]);
            for (int j = d8; j < d; j++) s += q[(size_t)g * ldq + j] * k[j];
            S[(size_t)g * lds + t] += s;
        }
    }
}

void rq__scores_avx2(const float *Q, int G, int ldq, const float *K, int n, int d, float *S, int lds) {
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

/* ≥ 8 independent FMA chains (GN heads × JN 8-float chunks; one chain
 * waits 4 cycles per FMA), each summing the tokens in order */
RQ_ALWAYS_INLINE void accum_gn(const int GN, float *A, int lda, const float *P, int ldp, const float *V, int n, int d) {
    const int JN = GN >= 8 ? 1 : GN >= 4 ? 2 : 4;
    int d8 = d & ~7, j = 0;
    for (; j + 8 * JN <= d8; j += 8 * JN) {
        __m256 a[8][4];
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++)
            #pragma GCC unroll 4
            for (int u = 0; u < JN; u++) a[g][u] = _mm256_loadu_ps(A + (size_t)g * lda + j + 8 * u);
        for (int t = 0; t < n; t++) {
            __m256 v[4];
            #pragma GCC unroll 4
            for (int u = 0; u < JN; u++) v[u] = _mm256_loadu_ps(V + (size_t)t * d + j + 8 * u);
            #pragma GCC unroll 8
            for (int g = 0; g < GN; g++) {
                const __m256 w = _mm256_set1_ps(P[(size_t)g * ldp + t]);
                #pragma GCC unroll 4
                for (int u = 0; u < JN; u++) a[g][u] = _mm256_fmadd_ps(w, v[u], a[g][u]);
            }
        }
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++)
            #pragma GCC unroll 4
            for (int u = 0; u < JN; u++) _mm256_storeu_ps(A + (size_t)g * lda + j + 8 * u, a[g][u]);
    }
    for (; j < d8; j += 8) {
        __m256 a[8];
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++) a[g] = _mm256_loadu_ps(A + (size_t)g * lda + j);
        for (int t = 0; t < n; t++) {
            __m256 v = _mm256_loadu_ps(V + (size_t)t * d + j);
            #pragma GCC unroll 8
            for (int g = 0; g < GN; g++) a[g] = _mm256_fmadd_ps(_mm256_set1_ps(P[(size_t)g * ldp + t]), v, a[g]);
        }
        #pragma GCC unroll 8
        for (int g = 0; g < GN; g++) _mm256_storeu_ps(A + (size_t)g * lda + j, a[g]);
    }
    #pragma GCC unroll 8
    for (int g = 0; g < GN; g++)
        for (int t = 0; t < n; t++)
            for (int x = d8; x < d; x++) A[(size_t)g * lda + x] += P[(size_t)g * ldp + t] * V[(size_t)t * d + x];
}

void rq__accum_avx2(float *A, int G, int lda, const float *P, int ldp, const float *V, int n, int d) {
    for (int g0 = 0; g0 < G; g0 += 8) {
        float *a = A + (size_t)g0 * lda;
        const float *p = P + (size_t)g0 * ldp;
        switch (G - g0 < 8 ? G - g0 : 8) {
        case 1: accum_gn(1, a, lda, p, ldp, V, n, d); break;
        case 2: accum_gn(2, a, lda, p, ldp, V, n, d); break;
        case 3: accum_gn(3, a, lda, p, ldp, V, n, d); break;
        case 4: accum_gn(4, a, lda, p, ldp, V, n, d); break;
        case 5: accum_gn(5, a, lda, p, ldp, V, n, d); break;
        case 6: accum_gn(6, a, lda, p, ldp, V, n, d); break;
        case 7: accum_gn(7, a, lda, p, ldp, V, n, d); break;
        default: accum_gn(8, a, lda, p, ldp, V, n, d); break;
        }
    }
}

/* exp(x) for x ≤ 0, as exp512 in attn_avx512.c; 2^k built in the exponent
 * field (k ≥ −126 after the clamp). */
static inline __m256 exp256(__m256 x) {
    const __m256 log2e = _mm256_set1_ps(1.44269504f), ln2hi = _mm256_set1_ps(0.693145751953125f),
                 ln2lo = _mm256_set1_ps(1.428606765330187e-06f);
    __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ); /* below: 0 */
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, ln2lo, _mm256_fnmadd_ps(k, ln2hi, x));
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(live, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

float rq__exp_sum_avx2(float *x, int n, float m) {
    __m256 vm = _mm256_set1_ps(m), s = _mm256_setzero_ps();
    int t = 0;
    for (; t + 8 <= n; t += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + t), vm));
        _mm256_storeu_ps(x + t, e);
        s = _mm256_add_ps(s, e);
    }
    float sum = hsum256(s);
    for (; t < n; t++) sum += x[t] = expf(x[t] - m);
    return sum;
}

void rq__decode_codes_avx2(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale) {
    decode_codes_avx2(out, codes, d, bits, cent, scale);
}

/* ---- integer scores (rq_cache_config.int8_scores) -----------------------
 * Decode, b ≤ 4: 16 codes per step from two b-byte words (codes 0–7 and
 * 8–15, as decode_codes_avx2), shifted per lane so that after the two
 * saturating packs (in-lane) and one qword permute the 16 code bytes come
 * out in order; vpshufb looks them up in the 16-byte table tab8 (b = 5,
 * and a d mod 16 tail: the reference's rule). Each 16-byte piece is stored
 * at its place in the tile (attn_kernels.h). Scores: one head × one group of
 * 4 tokens per step, each 16-byte piece widened to int16 (key zero-, query
 * sign-extended) and multiplied pairwise into 8 int32 lanes by vpmaddwd
 * (exact); then the reference's float operations in its order. The AVX-512
 * level uses this decoder where the CPU lacks VBMI. */
static inline unsigned code_at8(const uint8_t *p, int i, int bits) {
    size_t bit = (size_t)i * (size_t)bits;
    unsigned v = p[bit >> 3];
    if ((bit & 7) + (size_t)bits > 8) v |= (unsigned)p[(bit >> 3) + 1] << 8;
    return (v >> (bit & 7)) & ((1u << bits) - 1);
}

void rq__decode_mse8_n_avx2(uint8_t *tile, float *ks, int t0, const uint8_t *blk, size_t stride, int n, int d,
                            int bits, size_t off_codes, const float *ntab, const uint8_t *tab8, float cfac) {
    if (bits > 4) {
        rq__decode_mse8_n_ref(tile, ks, t0, blk, stride, n, d, bits, off_codes, ntab, tab8, cfac);
        return;
    }
    uint8_t t16[16];
    for (int i = 0; i < 16; i++) t16[i] = tab8[i & ((1 << bits) - 1)];
    const __m128i tab = _mm_loadu_si128((const __m128i *)(const void *)t16);
    /* lanes 0–3: codes 0–3 (word 0), 4–7: codes 8–11 (word 1); the second
     * vector codes 4–7 and 12–15 */
    const __m256i sa = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3), _mm256_set1_epi32(bits));
    const __m256i sb = _mm256_add_epi32(sa, _mm256_set1_epi32(4 * bits)), mask = _mm256_set1_epi32((1 << bits) - 1);
    const int d16 = d & ~15;
    const size_t dp = rq__i8_dp(d);
    for (int t = t0; t < t0 + n; t++, blk += stride) {
        ks[t] = head_s(blk, ntab) * cfac;
        const uint8_t *c = blk + off_codes;
        uint8_t *dst = tile + (size_t)(t / 4) * 4 * dp + (size_t)(t % 4) * 16;
        for (int j = 0; j < d16; j += 16, dst += 64) {
            const uint8_t *p = c + (size_t)j * bits / 8;
            __m256i w = _mm256_setr_m128i(_mm_set1_epi32((int)load_u32(p)), _mm_set1_epi32((int)load_u32(p + bits)));
            __m256i a = _mm256_and_si256(_mm256_srlv_epi32(w, sa), mask), b = _mm256_and_si256(_mm256_srlv_epi32(w, sb), mask);
            __m256i x = _mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_setzero_si256());
            __m128i idx = _mm256_castsi256_si128(_mm256_permute4x64_epi64(x, 0x08));
            _mm_storeu_si128((__m128i *)(void *)dst, _mm_shuffle_epi8(tab, idx));
        }
        for (int j = d16; j < (int)dp; j++) dst[j - d16] = j < d ? tab8[code_at8(c, j, bits)] : 128;
    }
}

static inline __m256i dot16(__m256i acc, const uint8_t *k, __m256i qw) {
    __m256i kw = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)k));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(kw, qw));
}

void rq__scores_i8_avx2(const int8_t *Q8, int G, int ldq, const float *qs, const int32_t *qsum, const uint8_t *K8,
                        const float *ks, int n, int d, float *S, int lds) {
    const int dp = (int)rq__i8_dp(d);
    for (int g = 0; g < G; g++) {
        const int8_t *q = Q8 + (size_t)g * ldq;
        float *s = S + (size_t)g * lds;
        for (int t = 0; t < n; t += 4) {
            const uint8_t *k = K8 + (size_t)t * dp;
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < dp / 16; c++, k += 64) {
                __m256i qw = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(q + 16 * c)));
                a0 = dot16(a0, k, qw), a1 = dot16(a1, k + 16, qw), a2 = dot16(a2, k + 32, qw), a3 = dot16(a3, k + 48, qw);
            }
            __m256i w = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
            __m128i r = _mm_add_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
            __m128 x = _mm_cvtepi32_ps(_mm_sub_epi32(r, _mm_set1_epi32(128 * qsum[g])));
            if (n - t >= 4) {
                __m128 wq = _mm_mul_ps(_mm_set1_ps(qs[g]), _mm_loadu_ps(ks + t));
                _mm_storeu_ps(s + t, _mm_add_ps(_mm_loadu_ps(s + t), _mm_mul_ps(wq, x)));
            } else {
                float v[4];
                _mm_storeu_ps(v, x);
                for (int u = 0; u < n - t; u++) s[t + u] += qs[g] * ks[t + u] * v[u];
            }
        }
    }
}
